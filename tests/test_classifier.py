"""SlideClassifier behaviour that users rely on beyond the common checks."""

import io
import pickle
from contextlib import redirect_stdout

import joblib
import numpy as np
import pytest
import scipy.sparse as sp

import sklearn_slide._memory as memory
from sklearn_slide import SlideClassifier, topk_to_indicator
from sklearn_slide._memory import MEMORY_LIMIT_ENV

FAST = dict(max_iter=3, random_state=0, n_threads=1)


def test_sampled_training_learns_planted_problem(xmc_planted, precision_at_1):
    X, Y, X_test, Y_test = xmc_planted
    clf = SlideClassifier(hash_family="dwta", max_iter=5, random_state=0).fit(X, Y)
    labels, _ = clf.predict_topk(X_test, k=5)
    # Measured 0.64 (5,000 labels, 10k rows, ~4 s on 2 cores); "most frequent label" ~0.02.
    assert precision_at_1(labels, Y_test) > 0.5
    assert clf.score(X_test, Y_test) == pytest.approx(precision_at_1(labels, Y_test))
    # The sampled path trains far fewer than all 5,000 output neurons per sample.
    assert clf.n_iter_ == 5 and len(clf.loss_curve_) == 5
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]


@pytest.mark.parametrize("family", ["simhash", "wta", "dwta", "minhash"])
def test_every_hash_family_trains_with_lsh_candidates(xmc_small, precision_at_1, family):
    X, Y, X_test, Y_test = xmc_small
    clf = SlideClassifier(hash_family=family, candidates="lsh", min_active=64, max_active=256,
                          **FAST).fit(X, Y)
    labels, scores = clf.predict_topk(X_test, k=5)
    assert labels.shape == (X_test.shape[0], 5)
    assert np.all(np.diff(scores, axis=1) <= 0)  # best first
    assert precision_at_1(labels, Y_test) > 0.3


def test_csr_targets_give_csr_predictions_and_dense_give_dense(xmc_small):
    X, Y, X_test, _ = xmc_small
    sparse_clf = SlideClassifier(**FAST).fit(X, Y)
    pred = sparse_clf.predict(X_test)
    assert sp.issparse(pred) and pred.format == "csr" and pred.shape == (X_test.shape[0], Y.shape[1])
    # predict_k=None: the mean number of labels per training row, rounded.
    expected_k = int(round(Y.nnz / Y.shape[0]))
    np.testing.assert_array_equal(np.diff(pred.indptr), expected_k)
    dense_clf = SlideClassifier(**FAST).fit(X, Y.toarray())
    dense_pred = dense_clf.predict(X_test)
    assert isinstance(dense_pred, np.ndarray) and dense_pred.dtype == Y.dtype
    np.testing.assert_array_equal(dense_pred, pred.toarray())


def test_topk_is_sorted_and_matches_predict_proba(xmc_small):
    X, Y, X_test, _ = xmc_small
    clf = SlideClassifier(**FAST).fit(X, Y)
    labels, scores = clf.predict_topk(X_test[:50], k=7)
    proba = clf.predict_proba(X_test[:50])
    assert proba.shape == (50, Y.shape[1])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    expected = np.argsort(-proba, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(labels, expected)
    assert np.all(np.diff(scores, axis=1) <= 0)
    indicator = topk_to_indicator(labels, Y.shape[1])
    np.testing.assert_array_equal(np.diff(indicator.indptr), 7)


def test_topk_to_indicator_skips_minus_one_and_keeps_the_dtype():
    indicator = topk_to_indicator(np.array([[2, 0], [1, -1]]), 3, dtype=np.float32)
    assert indicator.dtype == np.float32
    np.testing.assert_array_equal(indicator.toarray(), [[1, 0, 1], [0, 1, 0]])
    dense = topk_to_indicator(np.array([[2, 0]], dtype=np.uint8), 3, sparse=False)
    np.testing.assert_array_equal(dense, [[1, 0, 1]])


@pytest.mark.parametrize(
    "labels, n_labels, kwargs, error, message",
    [
        # Before: an id beyond n_labels built a CSR matrix with an out-of-range
        # index, and a repeated id a value of 2 (not an indicator).
        ([[1, 7]], 6, {}, ValueError, r"must be in \[-1, 6\)"),
        ([[-2, 0]], 6, {}, ValueError, r"must be in \[-1, 6\)"),
        ([[1, 1]], 6, {}, ValueError, "repeats a label"),
        ([[1.5, 2]], 6, {}, TypeError, "integer label ids"),
        ([1, 2], 6, {}, ValueError, "2-D"),
        ([[1, 2]], 0, {}, ValueError, "n_labels"),
        ([[1, 2]], 6.0, {}, ValueError, "n_labels"),
        ([[1, 2]], 6, {"sparse": "yes"}, ValueError, "sparse must be a bool"),
        ([[1, 2]], 6, {"dtype": object}, TypeError, "numeric dtype"),
    ],
)
def test_topk_to_indicator_validation(labels, n_labels, kwargs, error, message):
    with pytest.raises(error, match=message):
        topk_to_indicator(np.asarray(labels), n_labels, **kwargs)


def test_topk_to_indicator_dense_output_within_the_memory_budget(monkeypatch):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1M")
    with pytest.raises(ValueError, match="topk_to_indicator would need"):
        topk_to_indicator(np.zeros((1000, 1), dtype=int), 10**4, sparse=False)
    assert topk_to_indicator(np.zeros((1000, 1), dtype=int), 10**4).nnz == 1000


def test_multiclass_targets(xmc_small):
    X, Y, X_test, Y_test = xmc_small
    y = np.array([f"label-{Y.indices[Y.indptr[i]]}" for i in range(Y.shape[0])])
    clf = SlideClassifier(max_iter=5, random_state=0).fit(X, y)
    assert clf.classes_.dtype.kind == "U" and len(clf.classes_) == len(np.unique(y))
    pred = clf.predict(X_test)
    assert pred.dtype.kind == "U" and set(pred) <= set(clf.classes_)
    labels, _ = clf.predict_topk(X_test, k=3)
    np.testing.assert_array_equal(clf.classes_[labels[:, 0]], pred)


def test_pickle_and_joblib_mmap_round_trip_give_identical_topk(xmc_small, tmp_path):
    X, Y, X_test, _ = xmc_small
    clf = SlideClassifier(hash_family="dwta", candidates="lsh", **FAST).fit(X, Y)
    labels, scores = clf.predict_topk(X_test, k=5)
    restored = pickle.loads(pickle.dumps(clf))
    for inference in ("exact", "clusters"):
        clf.set_params(inference=inference)
        restored.set_params(inference=inference)
        a = clf.predict_topk(X_test, k=5)
        b = restored.predict_topk(X_test, k=5)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    path = tmp_path / "model.joblib"
    joblib.dump(clf.set_params(inference="exact"), path)
    mapped = joblib.load(path, mmap_mode="r")
    assert not mapped._network["params"]["output_weights"].flags.writeable
    mapped_labels, mapped_scores = mapped.predict_topk(X_test, k=5)
    np.testing.assert_array_equal(mapped_labels, labels)
    np.testing.assert_array_equal(mapped_scores, scores)
    # A memory-mapped model can keep training (its arrays are copied first).
    mapped.partial_fit(X[:100], Y[:100])


def test_model_saved_before_a_parameter_existed_loads_with_its_behaviour(xmc_small):
    X, Y, X_test, _ = xmc_small
    clf = SlideClassifier(**FAST).fit(X[:200], Y[:200])
    old_state = dict(clf.__getstate__())  # a copy: it is the live __dict__
    for name in ("n_probes", "adam_updates", "precision", "logq_correction"):  # added later
        del old_state[name]
    loaded = SlideClassifier.__new__(SlideClassifier)
    loaded.__setstate__(old_state)
    assert loaded.get_params()["n_probes"] is None
    assert loaded.get_params()["adam_updates"] == "lazy"
    assert loaded.get_params()["precision"] == "float32"
    # Its default is True, but the engine trained uncorrected before it existed.
    assert loaded.get_params()["logq_correction"] is False
    np.testing.assert_array_equal(loaded.predict_topk(X_test, k=3)[0],
                                  clf.predict_topk(X_test, k=3)[0])


def test_incompatible_format_version_is_refused(xmc_small):
    X, Y, _, _ = xmc_small
    clf = SlideClassifier(**FAST).fit(X[:200], Y[:200])
    blob = pickle.dumps(clf)
    clf._network["format_version"] = 999
    with pytest.raises(ValueError, match="format version"):
        pickle.loads(pickle.dumps(clf))
    pickle.loads(blob)  # the real one loads


# Batches of 32 leave output rows untouched: dense Adam then steps them in parallel too.
@pytest.mark.parametrize("adam_updates, batch_size", [("lazy", 128), ("dense", 32)])
def test_fit_is_bit_reproducible_for_any_thread_count(xmc_small, adam_updates, batch_size):
    X, Y, X_test, _ = xmc_small
    kwargs = dict(hash_family="dwta", min_active=32, max_active=128, adam_updates=adam_updates,
                  batch_size=batch_size, **FAST)
    a = SlideClassifier(**kwargs).fit(X, Y)
    b = SlideClassifier(**{**kwargs, "n_threads": 2}).fit(X, Y)
    for key in ("output_weights", "output_biases", "hidden_weights_0", "hidden_biases_0"):
        np.testing.assert_array_equal(a._network["params"][key], b._network["params"][key])
    np.testing.assert_array_equal(a._network["params"]["output_weights"],
                                  b._network["params"]["output_weights"])
    assert a.loss_curve_ == b.loss_curve_
    c = SlideClassifier(**{**kwargs, "random_state": 1}).fit(X, Y)
    assert not np.array_equal(a._network["params"]["output_weights"],
                              c._network["params"]["output_weights"])


def test_dense_and_lazy_adam_agree_when_every_row_gets_a_gradient():
    # Exact softmax over few labels and inputs without zeros: every output and
    # input row gets a gradient at every step, so dense Adam has nothing more to do.
    rng = np.random.RandomState(0)
    X = rng.rand(300, 20) + 0.1
    y = rng.randint(4, size=300)
    kwargs = dict(hash_family=None, hidden_layer_sizes=(16,), batch_size=32, **FAST)
    lazy = SlideClassifier(adam_updates="lazy", **kwargs).fit(X, y)
    dense = SlideClassifier(adam_updates="dense", **kwargs).fit(X, y)
    for key, value in lazy._network["params"].items():
        np.testing.assert_array_equal(value, dense._network["params"][key], err_msg=key)
    assert lazy.loss_curve_ == dense.loss_curve_


def test_dense_adam_trains_every_row_every_step(xmc_small):
    X, Y, _, _ = xmc_small
    # Small batches: each touches a fraction of the features and labels.
    kwargs = dict(hash_family="dwta", min_active=32, max_active=128, batch_size=16, **FAST)
    lazy = SlideClassifier(**kwargs).fit(X, Y)
    dense = SlideClassifier(adam_updates="dense", **kwargs).fit(X, Y)
    step = dense._network["schedule"]["step"]
    for key in ("input_row_step", "output_row_step"):
        assert np.all(dense._network["params"][key] == step)
        assert np.any(lazy._network["params"][key] < step)  # lazily, some rows skipped


def test_inference_is_invariant_to_thread_count_and_batching(xmc_small):
    X, Y, X_test, _ = xmc_small
    clf = SlideClassifier(hash_family="dwta", candidates="lsh", **FAST).fit(X, Y)
    for inference in ("exact", "clusters"):
        clf.set_params(inference=inference, n_threads=1)
        full = clf.predict_topk(X_test, k=5)
        clf.set_params(n_threads=2)
        parts = [clf.predict_topk(X_test[i:i + 37], k=5) for i in range(0, X_test.shape[0], 37)]
        np.testing.assert_array_equal(full[0], np.vstack([p[0] for p in parts]))
        np.testing.assert_array_equal(full[1], np.vstack([p[1] for p in parts]))


def test_partial_fit_and_warm_start_continue_training(xmc_small):
    X, Y, X_test, Y_test = xmc_small
    clf = SlideClassifier(**FAST)
    for start in range(0, X.shape[0], 500):
        clf.partial_fit(X[start:start + 500], Y[start:start + 500])
    assert clf.n_iter_ == 5 and clf.n_samples_seen_ == X.shape[0]
    np.testing.assert_array_equal(clf.label_counts_, np.asarray(Y.sum(axis=0)).ravel())
    warm = SlideClassifier(warm_start=True, **{**FAST, "max_iter": 1}).fit(X, Y)
    first = warm.loss_curve_[-1]
    warm.fit(X, Y)
    assert warm.n_iter_ == 2 and warm.loss_curve_[-1] < first


def test_partial_fit_multiclass_needs_classes_and_rejects_unknown_labels(xmc_small):
    X, _, _, _ = xmc_small
    y = np.arange(X.shape[0]) % 5
    clf = SlideClassifier(**FAST)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X[:100], y[:100])
    clf.partial_fit(X[:100], y[:100], classes=np.arange(6))
    assert list(clf.classes_) == list(range(6))
    with pytest.raises(ValueError, match="not in classes"):
        clf.partial_fit(X[:10], np.full(10, 7))


def test_predict_proba_refuses_huge_dense_output(xmc_small, monkeypatch):
    X, Y, X_test, _ = xmc_small
    clf = SlideClassifier(**FAST).fit(X, Y)
    monkeypatch.setattr(memory, "DENSE_OUTPUT_LIMIT_BYTES", 1000)
    with pytest.raises(ValueError, match="predict_topk"):
        clf.predict_proba(X_test)
    labels, _ = clf.predict_topk(X_test, k=2)  # still fine
    assert labels.shape == (X_test.shape[0], 2)


def test_verbose_prints_one_line_per_epoch(xmc_small):
    X, Y, _, _ = xmc_small
    out = io.StringIO()
    with redirect_stdout(out):
        SlideClassifier(verbose=1, **FAST).fit(X, Y)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 3
    assert all("loss" in line and "samples/s" in line and "elapsed" in line for line in lines)


def test_hidden_layers_and_exact_mode(xmc_small, precision_at_1):
    X, Y, X_test, Y_test = xmc_small
    clf = SlideClassifier(hidden_layer_sizes=(64, 32), hash_family=None, **FAST).fit(X, Y)
    labels, _ = clf.predict_topk(X_test, k=1)
    assert precision_at_1(labels, Y_test) > 0.2


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(hidden_layer_sizes=()), "hidden_layer_sizes"),
        (dict(hidden_layer_sizes=(0,)), "hidden_layer_sizes"),
        (dict(n_tables=0), "n_tables"),
        (dict(bucket_size=0), "bucket_size"),
        (dict(hash_family="lsh"), "hash_family"),
        (dict(learning_rate=-1.0), "learning_rate"),
        (dict(hash_bits=40), "hash_bits"),
        (dict(adam_updates="sparse"), "adam_updates"),
    ],
)
def test_bad_parameters_raise_early(xmc_small, params, match):
    X, Y, _, _ = xmc_small
    with pytest.raises(ValueError, match=match):
        SlideClassifier(**params).fit(X[:50], Y[:50])


def test_bad_k_and_feature_mismatch(xmc_small):
    X, Y, X_test, _ = xmc_small
    clf = SlideClassifier(**FAST).fit(X, Y)
    for k in (0, Y.shape[1] + 1, 2.5):
        with pytest.raises(ValueError, match="k must be"):
            clf.predict_topk(X_test, k=k)
    with pytest.raises(ValueError, match="features"):
        clf.predict_topk(X_test[:, :-1], k=1)
