"""Saving and loading: what fit accepts round-trips; what a pickle holds is checked.

- Whatever ``fit`` accepts round-trips pickle, joblib (also memory-mapped) and
  clone (a property test over extreme parameter values). Before, a fit with
  ``rehash_growth=1e308`` grew the stored rehash interval to inf, and the
  fitted model was then refused as "corrupt" by pickle, joblib and clone.
- Every fitted attribute that describes the network is checked on load
  (``classes_`` and ``label_counts_`` against the output layer,
  ``n_features_in_`` against the input layer, the scalars' types and ranges).
- A memory-mapped model whose file is truncated after loading is refused
  before the engine reads it (a read past the end of the file is SIGBUS).

The damaged-pickle and truncated-file cases run in child processes with a
time limit, so a crash fails the test instead of ending the session.
"""

import io
import json
import os
import pickle
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
from sklearn.base import clone

from sklearn_slide import SlideClassifier
from sklearn_slide.datasets import make_extreme_multilabel

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

X, Y = make_extreme_multilabel(120, 40, 12, random_state=0)


def _run_child(script, tmp_path, timeout=300):
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=timeout, cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    started = [line for line in proc.stderr.splitlines() if line.startswith("start ")][-1:]
    assert proc.returncode == 0, f"child died ({proc.returncode}) in {started}: {proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------- round trips

EXTREMES = {
    "hash_family": st.sampled_from([None, "simhash", "wta", "dwta", "minhash"]),
    "hash_bits": st.sampled_from([1, 2, 31, 32]),
    "n_tables": st.sampled_from([1, 2, 64]),
    "bucket_size": st.sampled_from([1, 2**31 - 1]),
    "bucket_policy": st.sampled_from(["fifo", "reservoir"]),
    "min_active": st.sampled_from([0, 1, 2**62]),
    "max_active": st.sampled_from([1, 2**62]),
    "learning_rate": st.sampled_from([1e-300, 1e-3, 0.1]),
    "learning_rate_schedule": st.sampled_from(["constant", "plateau"]),
    "validation_fraction": st.sampled_from([0.02, 0.5, 0.98]),
    "n_iter_no_change": st.sampled_from([1, 10**30]),
    "batch_size": st.sampled_from([1, 7, 2**31 - 1]),
    "max_iter": st.sampled_from([1, 2]),
    "rehash_interval": st.sampled_from([1, 2**62]),
    "rehash_growth": st.sampled_from([1.0, 1e10, 1e308, float(np.finfo(np.float64).max)]),
    "rebuild_every": st.sampled_from([0, 1, 2**62]),
    "adam_updates": st.sampled_from(["lazy", "dense"]),
    "logq_correction": st.booleans(),
    "inference": st.sampled_from(["exact", "clusters", "lsh"]),
    "n_probes": st.sampled_from([None, 1, 2**31 - 1]),
    "precision": st.sampled_from(["float32", "bfloat16"]),
    "predict_k": st.sampled_from([None, 1, 10**30]),
    "shuffle": st.booleans(),
    "random_state": st.sampled_from([0, 2**32 - 1]),
    "hidden_layer_sizes": st.sampled_from([(1,), (8,), (3, 5), np.array([4])]),
}


def _same_predictions(a, b):
    for mode in ("exact", "clusters"):
        np.testing.assert_array_equal(a.set_params(inference=mode).predict_topk(X, k=3)[0],
                                      b.set_params(inference=mode).predict_topk(X, k=3)[0])


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(params=st.fixed_dictionaries({}, optional=EXTREMES))
def test_what_fit_accepts_round_trips(tmp_path_factory, params):
    clf = SlideClassifier(n_threads=1, **{"random_state": 0, **params})
    try:
        clf.fit(X, Y)
    except (ValueError, TypeError):
        assert not hasattr(clf, "_network")  # refused before anything was committed
        return
    except RuntimeError as exc:
        assert "training diverged" in str(exc) and not hasattr(clf, "_network")
        return
    copies = [pickle.loads(pickle.dumps(clf))]
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    buffer.seek(0)
    copies.append(joblib.load(buffer))
    path = tmp_path_factory.mktemp("model") / "model.joblib"
    joblib.dump(clf, path)
    copies.append(joblib.load(path, mmap_mode="r"))
    for copy in copies:
        _same_predictions(clf, copy)
        copy.partial_fit(X, Y)  # and it trains on
    twin = clone(clf)
    assert repr(twin.get_params()) == repr(clf.get_params())
    _same_predictions(clf, twin.fit(X, Y))  # random_state is an int: the same model


# ------------------------------------------------------- damaged attributes

DAMAGED_ATTRIBUTES = textwrap.dedent(
    """
    import copy, json, pickle, sys, warnings
    import numpy as np
    warnings.simplefilter("ignore")
    from sklearn_slide import SlideClassifier
    from sklearn_slide.datasets import make_extreme_multilabel
    from sklearn_slide.metrics import xmc_scorer

    X, Y = make_extreme_multilabel(200, 60, 20, random_state=0)
    y = np.arange(200) % 5
    DAMAGES = {
        "classes_": [lambda n: np.arange(n + 10), lambda n: np.arange(n - 2),
                     lambda n: np.zeros((n, 2)), lambda n: None, lambda n: "abc"],
        "label_counts_": [lambda n: np.ones(n + 20, np.int64), lambda n: np.ones(2, np.int64),
                          lambda n: np.ones(n), lambda n: [1] * n, lambda n: None],
        "n_features_in_": [lambda n: 30, lambda n: 600, lambda n: -1, lambda n: None,
                           lambda n: "x"],
        "feature_names_in_": [lambda n: np.array(["a"]), lambda n: 5],
        "_target_kind": [lambda n: "bogus", lambda n: None],
        "_mean_labels": [lambda n: float("nan"), lambda n: -5.0, lambda n: "x", lambda n: None],
        "_sparse_output": [lambda n: "x", lambda n: None],
        "_y_dtype": [lambda n: None, lambda n: "x"],
        "n_samples_seen_": [lambda n: -1, lambda n: 1.5, lambda n: 2**70, lambda n: None],
        "n_iter_": [lambda n: -1, lambda n: None],
        "_lr_schedule": [lambda n: None, lambda n: {}, lambda n: {"learning_rate": float("nan"),
                                                                  "best": 0.0, "stalled": 0}],
        "learning_rate_": [lambda n: None, lambda n: float("nan"), lambda n: -1.0],
        "loss_curve_": [lambda n: None, lambda n: 5],
        "validation_scores_": [lambda n: 5],
        "_rng": [lambda n: None, lambda n: 5],
    }
    MISSING = ["classes_", "label_counts_", "n_features_in_", "_target_kind", "_rng",
               "_mean_labels", "n_samples_seen_"]

    def use(clf, target):
        # Everything a user may do with a loaded model.
        for inference in ("exact", "clusters"):
            try:
                clf.set_params(inference=inference).predict_topk(X, k=3)
            except ValueError:
                pass
        clf.set_params(inference="exact")
        clf.predict(X), clf.predict_proba(X), clf.score(X, target)
        xmc_scorer()(clf, X, target)
        clf.partial_fit(X, target)

    results = {}
    for kind, target in (("multilabel", Y), ("multiclass", y)):
        for family in (None, "dwta"):
            base = SlideClassifier(max_iter=1, random_state=0, n_threads=1,
                                   hidden_layer_sizes=(8,), hash_family=family).fit(X, target)
            n = len(base.classes_)
            cases = [(a, i, d) for a, ds in DAMAGES.items() for i, d in enumerate(ds)]
            cases += [(a, "missing", None) for a in MISSING]
            if kind == "multiclass":
                cases.append(("classes_", "unsorted", lambda n: np.arange(n)[::-1].copy()))
            else:  # predictions are built in it (1-D y may hold any dtype, e.g. strings)
                cases.append(("_y_dtype", "object", lambda n: np.dtype(object)))
            for attribute, index, damage in cases:
                case = f"{kind} {family} {attribute} {index}"
                print("start", case, file=sys.stderr, flush=True)
                state = copy.deepcopy(base.__getstate__())
                if damage is None:
                    del state[attribute]
                else:
                    state[attribute] = damage(n)
                try:
                    clf = pickle.loads(pickle.dumps(SlideClassifier()))
                    clf.__setstate__(state)
                except (ValueError, TypeError) as exc:
                    results[case] = "refused" if "corrupt model" in str(exc) else str(exc)
                    continue
                try:
                    use(clf, target)
                    results[case] = "accepted and worked"
                except Exception as exc:
                    results[case] = f"accepted, then {type(exc).__name__}: {exc}"[:200]
    print(json.dumps(results))
    """
)


def test_every_fitted_attribute_is_checked_on_load(tmp_path):
    results = _run_child(DAMAGED_ATTRIBUTES, tmp_path)
    assert len(results) > 100
    not_refused = {case: r for case, r in results.items() if r != "refused"}
    assert not not_refused, "\n".join(f"{case}: {r}" for case, r in not_refused.items())


def test_an_intact_model_loads_with_every_attribute_checked():
    clf = SlideClassifier(max_iter=1, random_state=0, hash_family="dwta").fit(X, Y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_topk(X, k=3)[0], clf.predict_topk(X, k=3)[0])


# ------------------------------------------------------- truncated mmap files

TRUNCATED = textwrap.dedent(
    """
    import json, os, pickle, sys
    import joblib
    import numpy as np
    from sklearn_slide import SlideClassifier
    from sklearn_slide.datasets import make_extreme_multilabel

    X, Y = make_extreme_multilabel(300, 300, 60, random_state=0)
    # candidates="lsh": the model has hash tables, which partial_fit reads.
    clf = SlideClassifier(max_iter=1, random_state=0, n_threads=1, hidden_layer_sizes=(64,),
                          hash_family="dwta", candidates="lsh").fit(X, Y)
    results = {}
    calls = {
        "predict_topk": lambda m: m.predict_topk(X, k=3),
        "clusters": lambda m: m.set_params(inference="clusters").predict_topk(X, k=3),
        "predict_proba": lambda m: m.predict_proba(X),
        "partial_fit": lambda m: m.partial_fit(X, Y),
        "pickle": lambda m: pickle.dumps(m),
    }
    for name, call in calls.items():
        path = f"model-{name}.joblib"
        joblib.dump(clf, path)
        model = joblib.load(path, mmap_mode="r")
        os.truncate(path, os.path.getsize(path) // 2)  # e.g. rewritten in place
        print("start", name, file=sys.stderr, flush=True)
        try:
            call(model)
            results[name] = "accepted"
        except ValueError as exc:
            results[name] = "refused" if "truncated" in str(exc) else str(exc)
    path = "model-before.joblib"
    joblib.dump(clf, path)
    os.truncate(path, os.path.getsize(path) // 2)
    print("start load", file=sys.stderr, flush=True)
    try:
        joblib.load(path, mmap_mode="r")
        results["load"] = "accepted"
    except ValueError:
        results["load"] = "refused"
    print(json.dumps(results))
    """
)


def test_a_truncated_memory_mapped_model_is_refused_not_a_crash(tmp_path):
    # Before: SIGBUS at predict (the engine read pages past the end of the file).
    results = _run_child(TRUNCATED, tmp_path)
    assert results == dict.fromkeys(
        ["predict_topk", "clusters", "predict_proba", "partial_fit", "pickle", "load"], "refused"
    )
