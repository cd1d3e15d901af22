"""Parameters changed by set_params after fitting are checked where they are used.

scikit-learn validates parameters in fit and partial_fit; the estimator also
reads some at prediction time (inference, n_probes, precision, n_threads,
max_active, predict_k). Before, an unknown or out-of-range value set after
fitting was accepted silently or failed deep in the binding ("incompatible
function arguments", "Unable to cast"), and a continued partial_fit did not
validate at all. A property test draws random values, valid and not, for every
parameter of a fitted model and calls every method: each call must raise a
clear ValueError/TypeError, naming the parameter when its value breaks the
constraints, or return correct results.
"""

import copy
import math

import numpy as np
import pytest
import scipy.sparse as sp

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sklearn_slide import SlideClassifier  # noqa: E402
from sklearn_slide._compat import InvalidParameterError  # noqa: E402
from sklearn_slide._config import (  # noqa: E402
    PARAMETER_CONSTRAINTS,
    PROBA_PARAMETERS,
    TOPK_PARAMETERS,
    check_parameters,
)
from sklearn_slide.datasets import make_extreme_multilabel  # noqa: E402

X, Y = make_extreme_multilabel(120, 40, 12, random_state=0)
N_LABELS = Y.shape[1]

# What each method reads: a value breaking the constraints must be named there.
READS = {
    "predict_topk": set(TOPK_PARAMETERS),
    "score": set(TOPK_PARAMETERS),
    "predict": set(TOPK_PARAMETERS) | {"predict_k"},
    "predict_proba": set(PROBA_PARAMETERS),
    "partial_fit": set(PARAMETER_CONSTRAINTS),
    # _call sets warm_start=True itself, replacing a drawn value.
    "warm_start_fit": set(PARAMETER_CONSTRAINTS) - {"warm_start"},
}

# Binding-level failures that must never reach a user.
RAW_BINDING_ERRORS = ("incompatible function arguments", "Unable to cast", "Invoked with")


def _fitted(hash_family):
    return SlideClassifier(max_iter=1, random_state=0, n_threads=1, hidden_layer_sizes=(8,),
                           hash_family=hash_family, n_tables=4).fit(X, Y)


MODELS = {"exact": _fitted(None), "dwta": _fitted("dwta")}

ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 1, 2**31, 2**62 + 1, 2**63, 1.5, -0.0, 1e308, 1e39,
                     math.nan, math.inf, -math.inf, "", "x", "auto", "exact", "lsh",
                     "clusters", "bfloat16", "float16", "dense", "plateau", (0,), (8, 8),
                     [], np.int64(3), np.float32(0.5)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
)
# Valid values that are cheap on this tiny problem (a valid max_iter of 2**60
# would train for ever; a valid n_threads of 1024 would start 1024 threads).
CHEAP_VALID = {
    "hidden_layer_sizes": st.sampled_from([(8,), (4, 4), [6], np.array([5])]),
    "hash_family": st.sampled_from(["auto", None, "simhash", "wta", "dwta", "minhash"]),
    "hash_bits": st.integers(1, 32),
    "n_tables": st.integers(1, 16),
    "bucket_size": st.integers(1, 2**31 - 1),
    "bucket_policy": st.sampled_from(["fifo", "reservoir"]),
    "min_active": st.integers(0, 2**62),
    "max_active": st.integers(1, 2**62),
    "learning_rate": st.floats(1e-6, 1.0),
    "learning_rate_schedule": st.sampled_from(["constant", "plateau"]),
    "early_stopping": st.booleans(),
    "validation_fraction": st.floats(0.05, 0.5),
    "n_iter_no_change": st.integers(1, 10**30),
    "batch_size": st.integers(1, 2**31 - 1),
    "max_iter": st.integers(1, 2),
    "rehash_interval": st.integers(1, 2**62),
    "rehash_growth": st.floats(1.0, 1e308),
    "rebuild_every": st.integers(0, 2**62),
    "adam_updates": st.sampled_from(["lazy", "dense"]),
    "logq_correction": st.booleans(),
    "candidates": st.sampled_from(["clusters", "lsh"]),
    "dropout": st.floats(0.0, 0.9),
    "inference": st.sampled_from(["exact", "clusters", "lsh"]),
    "n_probes": st.one_of(st.none(), st.integers(1, 2**31 - 1)),
    "reranker": st.sampled_from(["linear", None]),
    "reranker_weight": st.floats(0.0, 3e38),
    "precision": st.sampled_from(["float32", "bfloat16"]),
    "predict_k": st.one_of(st.none(), st.integers(1, 10**30)),
    "shuffle": st.booleans(),
    "n_threads": st.one_of(st.none(), st.integers(1, 3)),
    "random_state": st.one_of(st.none(), st.integers(0, 2**32 - 1)),
    "verbose": st.just(0),
    "warm_start": st.booleans(),
}
assert CHEAP_VALID.keys() == PARAMETER_CONSTRAINTS.keys()


@st.composite
def changes(draw):
    names = draw(st.lists(st.sampled_from(sorted(PARAMETER_CONSTRAINTS)), min_size=1,
                          max_size=3, unique=True))
    drawn = {name: draw(st.one_of(CHEAP_VALID[name], ODD_VALUES)) for name in names}
    if "max_iter" in drawn and _is_valid("max_iter", drawn["max_iter"]):
        drawn["max_iter"] = min(drawn["max_iter"], 2)  # valid, and cheap
    return drawn


def _is_valid(name, value):
    probe = SlideClassifier()
    setattr(probe, name, value)
    try:
        check_parameters(probe, [name])
    except InvalidParameterError:
        return False
    return True


def _call(clf, method):
    if method == "partial_fit":
        return clf.partial_fit(X, Y)
    if method == "warm_start_fit":
        return clf.set_params(warm_start=True).fit(X, Y)
    if method == "score":
        return clf.score(X, Y)
    return getattr(clf, method)(X)


def _assert_correct(clf, method, result):
    if method == "predict_topk":
        labels, scores = result
        assert labels.shape == scores.shape == (X.shape[0], 5)
        assert ((labels >= 0) & (labels < N_LABELS)).all()
        assert (np.sort(labels, axis=1)[:, 1:] != np.sort(labels, axis=1)[:, :-1]).all()
        assert np.isfinite(scores).all() and (np.diff(scores, axis=1) <= 0).all()
    elif method == "predict":
        indicator = result.toarray() if sp.issparse(result) else result
        assert indicator.shape == Y.shape and set(np.unique(indicator)) <= {0, 1}
        assert (indicator.sum(axis=1) >= 1).all()
    elif method == "predict_proba":
        assert result.shape == Y.shape
        np.testing.assert_allclose(result.sum(axis=1), 1.0, rtol=1e-4)
    elif method == "score":
        assert 0.0 <= result <= 1.0
    else:  # trained: the model still predicts valid labels
        assert result is clf
        labels, _ = clf.set_params(inference="exact", precision="float32",
                                   n_threads=1).predict_topk(X[:10], k=3)
        assert ((labels >= 0) & (labels < N_LABELS)).all()


@settings(max_examples=250, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(family=st.sampled_from(sorted(MODELS)), params=changes(),
       method=st.sampled_from(sorted(READS)))
def test_random_set_params_after_fit(family, params, method):
    clf = copy.deepcopy(MODELS[family])
    clf.set_params(**params)
    invalid = sorted(name for name, value in params.items()
                     if name in READS[method] and not _is_valid(name, value))
    try:
        result = _call(clf, method)
    except RuntimeError as exc:  # a valid but huge learning_rate: documented divergence
        assert "training diverged" in str(exc) and not invalid, str(exc)
        return
    except (ValueError, TypeError) as exc:
        message = str(exc)
        assert not any(raw in message for raw in RAW_BINDING_ERRORS), message
        if invalid:
            assert isinstance(exc, InvalidParameterError), message
            assert any(repr(name) in message or name in message for name in invalid), message
        return
    assert not invalid, f"{invalid} accepted by {method}"
    _assert_correct(clf, method, result)


@pytest.mark.parametrize(
    "name, value",
    [
        ("inference", "bogus"), ("n_probes", 0), ("n_probes", 1.5), ("precision", None),
        ("n_threads", 10**6), ("n_threads", 0), ("max_active", 0), ("predict_k", 0),
    ],
)
def test_prediction_parameters_are_checked_at_prediction(name, value):
    clf = copy.deepcopy(MODELS["dwta"]).set_params(**{name: value})
    methods = ["predict_proba"] if name in PROBA_PARAMETERS else []
    methods += ["predict_topk", "predict", "score"] if name != "predict_k" else ["predict"]
    for method in methods:
        with pytest.raises(InvalidParameterError, match=name):
            _call(clf, method)


@pytest.mark.parametrize(
    "name, value",
    [("batch_size", 1.5), ("learning_rate", -1.0), ("learning_rate", math.nan),
     ("adam_updates", "x"), ("max_active", 2**70), ("logq_correction", "yes"),
     ("rehash_growth", 0.5), ("bucket_size", 0)],
)
def test_a_continued_partial_fit_validates_its_parameters(name, value):
    clf = copy.deepcopy(MODELS["dwta"])
    before = clf._network["params"]["output_weights"].copy()
    with pytest.raises(InvalidParameterError, match=name):
        clf.set_params(**{name: value}).partial_fit(X, Y)
    np.testing.assert_array_equal(clf._network["params"]["output_weights"], before)
