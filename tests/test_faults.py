"""Faults never crash or corrupt: diverging training, damaged models.

(Ctrl-C, including during partial_fit, is tested in test_interrupt.py.)
"""

import copy
import pickle

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from sklearn_slide import SlideClassifier
from sklearn_slide.datasets import make_extreme_multilabel

FAST = dict(max_iter=2, random_state=0, n_threads=1, hidden_layer_sizes=(16,))


@pytest.fixture(scope="module")
def data():
    return make_extreme_multilabel(600, 300, 50, random_state=0)


@pytest.fixture(scope="module")
def lsh_model(data):
    X, Y = data
    return SlideClassifier(**FAST, hash_family="dwta", candidates="lsh", min_active=8,
                           max_active=32).fit(X, Y)


def _state_copy(clf):
    return {
        "weights": {k: v.copy() for k, v in clf._network["params"].items()
                    if isinstance(v, np.ndarray)},
        "n_iter_": clf.n_iter_,
        "loss_curve_": list(clf.loss_curve_),
        "n_samples_seen_": clf.n_samples_seen_,
        "label_counts_": clf.label_counts_.copy(),
    }


def _assert_state_equal(clf, saved):
    assert clf.n_iter_ == saved["n_iter_"]
    assert clf.loss_curve_ == saved["loss_curve_"]
    assert clf.n_samples_seen_ == saved["n_samples_seen_"]
    np.testing.assert_array_equal(clf.label_counts_, saved["label_counts_"])
    for key, value in saved["weights"].items():
        np.testing.assert_array_equal(clf._network["params"][key], value, err_msg=key)


# --------------------------------------------------------------------- divergence


@pytest.mark.parametrize(
    "params, scale",
    [(dict(learning_rate=1e6), 1.0), (dict(learning_rate=100.0), 1.0), ({}, 1e30)],
    ids=["learning_rate=1e6", "learning_rate=100", "X*1e30"],
)
@pytest.mark.parametrize("hash_family", [None, "dwta"])
def test_diverging_fit_raises_and_leaves_the_estimator_unfitted(data, params, scale, hash_family):
    X, Y = data
    clf = SlideClassifier(**{**FAST, **params}, hash_family=hash_family)
    with pytest.raises(RuntimeError, match=r"training diverged in epoch 1: .*Lower learning_rate"):
        clf.fit(X * scale, Y)
    with pytest.raises(NotFittedError):
        clf.predict_topk(X)
    with pytest.raises(RuntimeError, match="diverged.*The estimator is unchanged"):
        clf.partial_fit(X * scale, Y)
    with pytest.raises(NotFittedError):
        clf.predict_topk(X)


def test_diverging_refit_keeps_the_previous_model(data):
    X, Y = data
    clf = SlideClassifier(**FAST).fit(X, Y)
    saved = _state_copy(clf)
    expected = clf.predict_topk(X, k=3)
    with pytest.raises(RuntimeError, match="diverged"):
        clf.set_params(learning_rate=1e6).fit(X, Y)
    _assert_state_equal(clf, saved)
    np.testing.assert_array_equal(clf.predict_topk(X, k=3)[1], expected[1])
    clf.set_params(learning_rate=3e-3).fit(X, Y)  # and it can still be refitted


def test_diverging_partial_fit_keeps_the_bookkeeping_and_says_to_refit(data):
    # A continued fit trains the fitted network in place: the attributes stay
    # at the last completed call and the message says the weights changed.
    X, Y = data
    clf = SlideClassifier(**FAST).partial_fit(X, Y)
    saved = _state_copy(clf)
    with pytest.raises(RuntimeError, match="weights were changed by the failed epoch: refit"):
        clf.set_params(learning_rate=1e6).partial_fit(X, Y)
    assert clf.n_iter_ == saved["n_iter_"] and clf.n_samples_seen_ == saved["n_samples_seen_"]
    assert clf.loss_curve_ == saved["loss_curve_"]
    labels, _ = clf.predict_topk(X, k=2)  # usable (if poor): no crash, valid ids
    assert ((labels >= 0) & (labels < Y.shape[1])).all()


def test_non_finite_weights_stop_training(data):
    # NaN in the weights makes the loss NaN: the engine stops before applying
    # the step, and the estimator's bookkeeping is not advanced.
    X, Y = data
    clf = SlideClassifier(**FAST).fit(X, Y)
    clf._network["params"]["output_weights"][3, 0] = np.nan
    n_iter = clf.n_iter_
    with pytest.raises(RuntimeError, match="diverged"):
        clf.partial_fit(X, Y)
    assert clf.n_iter_ == n_iter
    clf._network["params"]["output_weights"][3, 0] = np.inf
    with pytest.raises(RuntimeError, match="diverged"):
        clf.partial_fit(X, Y)


def test_a_hard_but_sane_learning_rate_is_not_called_divergence(data):
    X, Y = data
    clf = SlideClassifier(**{**FAST, "learning_rate": 0.3, "max_iter": 4}).fit(X, Y)
    assert len(clf.loss_curve_) == 4


# ----------------------------------------------------------------- damaged models


def _reloaded(clf, damage):
    broken = copy.deepcopy(clf)
    damage(broken._network)
    return pickle.loads(pickle.dumps(broken))


@pytest.mark.parametrize(
    "damage, error, match",
    [
        (lambda n: n.update(format_version=0), ValueError, "format version 0"),
        (lambda n: n["params"].update(output_weights=n["params"]["output_weights"][:-1]),
         ValueError, r"output_weights'\] has shape \(49, 16\), expected \(50, 16\)"),
        (lambda n: n["params"].update(hidden_weights_0=n["params"]["hidden_weights_0"].T.copy()),
         ValueError, "hidden_weights_0'.* has shape"),
        (lambda n: n["params"].update(
            output_biases_adam_v=n["params"]["output_biases_adam_v"].astype(np.float64)),
         TypeError, "output_biases_adam_v'.* has dtype float64"),
        (lambda n: n["params"].pop("hidden_biases_0"), ValueError, "hidden_biases_0'.* missing"),
        (lambda n: n["params"].update(layer_sizes=[300, 16, 2**40]), ValueError, "layer_sizes"),
        (lambda n: n["params"].update(layer_sizes=[300, 50]), ValueError, "layer_sizes"),
        (lambda n: n["params"].update(input_row_step=np.zeros(3, np.int64)), ValueError,
         "input_row_step"),
        (lambda n: n.update(tables={**n["tables"], "table_bits": 40}), ValueError,
         "hash table shape"),
        (lambda n: n.update(tables={**n["tables"], "ids": n["tables"]["ids"][:, :-1]}), ValueError,
         r"tables\['ids'\] has shape"),
        (lambda n: n["schedule"].pop("step"), ValueError, "schedule is incomplete"),
        (lambda n: n.pop("params"), ValueError, "no 'params' entry"),
    ],
    ids=["version", "output rows", "transposed", "dtype", "missing array", "huge layer",
         "no hidden layer", "row steps", "table bits", "table ids", "schedule", "no params"],
)
def test_damaged_pickle_is_refused_on_load(lsh_model, damage, error, match):
    with pytest.raises(error, match=match):
        _reloaded(lsh_model, damage)


def test_damaged_table_contents_are_refused_at_use(data, lsh_model):
    # Array contents are not scanned on load (that would defeat memory-mapped
    # loading): the binding checks them before any lookup.
    X, Y = data

    def bad_id(n):
        n["tables"]["ids"][2, 0] = 10**6

    def bad_offsets(n):
        n["tables"]["offsets"][1, 5] = -7

    for damage, match in ((bad_id, "neuron id out of range"), (bad_offsets, "offsets")):
        broken = _reloaded(lsh_model, damage)
        # Training samples from the stored tables until its first rehash.
        broken._network["schedule"]["next_rehash_step"] = 10**9
        with pytest.raises(ValueError, match=f"corrupt hash tables: {match}"):
            broken.partial_fit(X, Y)
        broken.predict_topk(X)  # prediction does not use them


def test_damaged_schedule_and_row_steps_are_refused(data, lsh_model):
    X, Y = data
    with pytest.raises(ValueError, match=r"schedule\['step'\] = -5 is out of range"):
        _reloaded(lsh_model, lambda n: n["schedule"].update(step=-5))
    with pytest.raises(TypeError, match=r"schedule\['n_rehashes'\] is nan, not an int"):
        _reloaded(lsh_model, lambda n: n["schedule"].update(n_rehashes=float("nan")))
    with pytest.raises(ValueError, match="rehash_interval"):
        _reloaded(lsh_model, lambda n: n["schedule"].update(rehash_interval=float("inf")))
    # State changed after loading reaches the binding, which checks it again.
    broken = copy.deepcopy(lsh_model)
    broken._network["schedule"]["step"] = -5
    with pytest.raises(ValueError, match="corrupt training schedule"):
        broken.partial_fit(X, Y)
    # A row updated "after" the current step would give lazy Adam a negative gap.
    broken = copy.deepcopy(lsh_model)
    broken._network["params"]["output_row_step"][4] = broken._network["schedule"]["step"] + 7
    with pytest.raises(ValueError, match="corrupt model: output_row_step holds step"):
        broken.partial_fit(X, Y)


def test_engine_rejects_inconsistent_state_directly(data, lsh_model):
    # _engine: the binding's last line of defence, for state that bypassed unpickling checks.
    from sklearn_slide import _engine as engine

    X, _ = data
    params = dict(lsh_model._network["params"])
    X = X.astype(np.float32).tocsr()
    params["layer_sizes"] = [300, 16, 2**33]  # rows * cols must not wrap around
    with pytest.raises(ValueError, match="layer sizes must be in"):
        engine.predict_topk(params, X, 1, 1)
    params["layer_sizes"] = [300, 2**31 - 1, 2**31 - 1, 50]
    with pytest.raises(ValueError, match="layer sizes|expected"):
        engine.predict_topk(params, X, 1, 1)
    with pytest.raises(ValueError, match="n_threads must be in"):
        engine.predict_topk(lsh_model._network["params"], X, 1, 5000)
    with pytest.raises(ValueError, match="codes_per_table"):
        engine.hash_codes("dwta", np.ones((1, 8), np.float32), 5000, 5000, 0)


def test_engine_config_refuses_bad_options(data, lsh_model):
    # The typed seam: wrong names and types fail on assignment, ranges when an epoch starts.
    # _engine: the config's typed seam itself.
    from sklearn_slide import _engine as engine

    with pytest.raises(ValueError, match="adam_updates must be one of 'lazy', 'dense'"):
        engine.training_config(adam_updates="sparse")
    with pytest.raises(ValueError, match="unknown hash family 'lsh'"):
        engine.training_config(hash_family="lsh")
    with pytest.raises(TypeError):
        engine.training_config(bucket_size=1.5)
    with pytest.raises(AttributeError, match="no option 'codes_per_table'"):
        engine.training_config(codes_per_table=6)
    X, Y = data
    network = lsh_model._network
    tables = {k: v.copy() if hasattr(v, "copy") else v for k, v in network["tables"].items()}
    for bad, match in ((dict(hash_bits=33), r"hash_bits must be in \[1, 32\]"),
                       (dict(n_threads=0), "n_threads must be in"),
                       (dict(rehash_growth=0.5), "rehash_growth")):
        with pytest.raises(ValueError, match=match):
            engine.train_epoch(copy.deepcopy(network["params"]), tables,
                               engine.training_data(X.astype(np.float32).tocsr(),
                                                    Y.astype(np.float32).tocsr()),
                               np.zeros(0, dtype=np.int64), engine.training_config(**bad),
                               dict(network["schedule"]), check_state=True)
