"""Label-cluster inference (inference="clusters"): the index and its use."""

import pickle

import numpy as np
import pytest

from sklearn_slide import SlideClassifier
# _engine: the binding's checks of a damaged index, which the Python cache would rebuild.
from sklearn_slide import _engine as engine
from sklearn_slide._inference import cluster_index
from sklearn_slide._compat import blas_threads_limited
from sklearn_slide._label_clusters import (
    ASSIGN_CHUNK,
    _unit_rows,
    _UnitRows,
    build_label_clusters,
    default_n_clusters,
)

FAST = dict(hash_family="dwta", max_iter=3, random_state=0, n_threads=1)


@pytest.fixture(scope="module")
def fitted(xmc_small):
    X, Y, X_test, _ = xmc_small
    return SlideClassifier(**FAST).fit(X, Y), X_test


def _recall(a, b):
    return np.mean([len(set(x) & set(y)) / len(x) for x, y in zip(a.tolist(), b.tolist())])


def test_index_partitions_the_labels_deterministically():
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((5000, 16)).astype(np.float32)
    biases = rng.standard_normal(5000).astype(np.float32)
    index = build_label_clusters(weights, biases)
    n_clusters = len(index["offsets"]) - 1
    assert abs(n_clusters - default_n_clusters(5000)) <= 0.1 * default_n_clusters(5000)
    np.testing.assert_array_equal(np.sort(index["ids"]), np.arange(5000))
    assert index["offsets"][0] == 0 and index["offsets"][-1] == 5000
    assert np.all(np.diff(index["offsets"]) >= 0)
    assert index["centroid_weights"].shape == (n_clusters, 16)
    again = build_label_clusters(weights, biases)
    for key in index:
        np.testing.assert_array_equal(index[key], again[key])


def test_unit_rows_rank_labels_like_the_logits():
    # Centring and the norm coordinate must not change any query's ranking.
    rng = np.random.default_rng(1)
    weights = (rng.standard_normal((300, 8)) + 3.0).astype(np.float32)  # shared component
    biases = rng.standard_normal(300).astype(np.float32)
    units = _unit_rows(weights, biases)
    np.testing.assert_allclose(np.linalg.norm(units, axis=1), 1.0, rtol=1e-5)
    for h in rng.random((5, 8)):
        logits = weights @ h + biases
        transformed = units @ np.concatenate([h, [1.0, 0.0]])
        np.testing.assert_array_equal(np.argsort(-logits)[:20], np.argsort(-transformed)[:20])


def test_unit_rows_made_on_demand_equal_the_whole_array():
    # The k-means reads the unit rows by blocks and by index arrays, never whole.
    rng = np.random.default_rng(2)
    n = 2 * ASSIGN_CHUNK + 5
    weights = (rng.standard_normal((n, 6)) + 1.0).astype(np.float32)
    biases = rng.standard_normal(n).astype(np.float32)
    whole = _unit_rows(weights, biases)
    units = _UnitRows(weights, biases)
    index = rng.permutation(n)[:1000]
    np.testing.assert_array_equal(units[index], whole[index])
    np.testing.assert_array_equal(units[ASSIGN_CHUNK:n], whole[ASSIGN_CHUNK:])


def test_index_does_not_depend_on_the_blas_thread_count():
    rng = np.random.default_rng(3)
    weights = rng.standard_normal((20000, 32)).astype(np.float32)
    biases = rng.standard_normal(20000).astype(np.float32)
    indexes = []
    for n_threads in (1, 2):
        with blas_threads_limited(n_threads):
            indexes.append(build_label_clusters(weights, biases))
    for key in indexes[0]:
        np.testing.assert_array_equal(indexes[0][key], indexes[1][key])


def test_probing_every_cluster_equals_exact(fitted):
    clf, X_test = fitted
    exact = clf.set_params(inference="exact").predict_topk(X_test, k=5)
    clf.set_params(inference="clusters", n_probes=10**6)
    labels, scores = clf.predict_topk(X_test, k=5)
    np.testing.assert_array_equal(labels, exact[0])
    np.testing.assert_allclose(scores, exact[1], rtol=1e-5, atol=1e-6)


def test_default_probes_find_most_of_the_exact_top5(xmc_planted):
    X, Y, X_test, _ = xmc_planted
    clf = SlideClassifier(**{**FAST, "n_threads": 2}).fit(X, Y)
    exact, _ = clf.predict_topk(X_test, k=5)
    few, _ = clf.set_params(inference="clusters", n_probes=1).predict_topk(X_test, k=5)
    default, scores = clf.set_params(n_probes=None).predict_topk(X_test, k=5)
    assert np.all(np.diff(scores, axis=1) <= 0)
    # Measured 0.968 (58 of 284 clusters: ~1,000 of 5,000 labels), 1 cluster 0.378.
    assert _recall(exact, default) > 0.93
    assert _recall(exact, default) > _recall(exact, few)


def test_rows_get_k_labels_even_when_probed_clusters_are_small(fitted):
    clf, X_test = fitted
    n_labels = len(clf.classes_)
    labels, scores = clf.set_params(inference="clusters", n_probes=1).predict_topk(
        X_test[:20], k=n_labels)
    for row in labels:
        np.testing.assert_array_equal(np.sort(row), np.arange(n_labels))
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_index_follows_further_training(xmc_small):
    # A cached index must not outlive the weights it was built from.
    X, Y, X_test, _ = xmc_small
    params = dict(**FAST, inference="clusters", n_probes=2)
    cached = SlideClassifier(**params).fit(X[:1500], Y[:1500])
    cached.predict_topk(X_test, k=5)
    cached.partial_fit(X[1500:], Y[1500:])
    fresh = SlideClassifier(**params).fit(X[:1500], Y[:1500]).partial_fit(X[1500:], Y[1500:])
    np.testing.assert_array_equal(cached.predict_topk(X_test, k=5)[0],
                                  fresh.predict_topk(X_test, k=5)[0])


def test_refit_with_as_many_steps_gets_a_new_index(xmc_small):
    # Same step count after the refit: the cache must not rely on it alone.
    X, Y, X_test, _ = xmc_small
    params = dict(**FAST, inference="clusters", n_probes=2)
    refit = SlideClassifier(**params).fit(X, Y)
    refit.predict_topk(X_test, k=5)
    refit.set_params(random_state=1).fit(X, Y)
    fresh = SlideClassifier(**{**params, "random_state": 1}).fit(X, Y)
    np.testing.assert_array_equal(refit.predict_topk(X_test, k=5)[0],
                                  fresh.predict_topk(X_test, k=5)[0])


def test_index_leaves_the_estimator_and_its_pickle_unchanged(fitted):
    clf, X_test = fitted
    clf.set_params(inference="exact")
    blob_before = pickle.dumps(clf)
    clf.set_params(inference="clusters", n_probes=4)
    before = clf.predict_topk(X_test, k=5)
    blob = pickle.dumps(clf.set_params(inference="exact"))
    assert len(blob) == len(blob_before)  # the index is not saved with the model
    restored = pickle.loads(blob).set_params(inference="clusters")
    after = restored.set_params(n_probes=4).predict_topk(X_test, k=5)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])


@pytest.mark.parametrize("damage, match", [
    (lambda c: c["offsets"].__setitem__(-1, 7), "label clusters: offsets out of range"),
    (lambda c: c["offsets"].__setitem__(1, c["offsets"][2] + 1),
     "label clusters: offsets decrease"),
    (lambda c: c["ids"].__setitem__(0, 10**6), "label clusters: label id out of range"),
    (lambda c: c.__setitem__("ids", c["ids"][:-1].copy()), "ids: expected"),
    (lambda c: c.__setitem__("ids", c["ids"].astype(np.int64)), "ids: expected dtype"),
    (lambda c: c.__setitem__("n_probes", 0), "n_probes must be >= 1"),
])
def test_engine_refuses_a_damaged_index(fitted, damage, match):
    clf, X_test = fitted
    index = {key: value.copy() for key, value in cluster_index(clf).items()}
    index["n_probes"] = 4
    damage(index)
    with pytest.raises((ValueError, TypeError), match=match):
        engine.predict_topk(clf._network["params"], X_test, 5, 1, clusters=index)
