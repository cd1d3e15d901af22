"""predict_proba(X, k): the top-k probabilities of each row as CSR."""

import numpy as np
import pytest
import scipy.sparse as sp

import sklearn_slide._inference as inference
from sklearn_slide import SlideClassifier


@pytest.fixture(scope="module")
def fitted(xmc_small):
    X, Y, X_test, _ = xmc_small
    return SlideClassifier(max_iter=2, random_state=0, n_threads=1).fit(X, Y), X_test


@pytest.mark.parametrize("k", [1, 5, 400])
def test_top_k_equals_the_dense_probabilities(fitted, k, monkeypatch):
    clf, X = fitted
    monkeypatch.setattr(inference, "PROBA_BLOCK_ENTRIES", 400 * 37)  # 37 rows per block
    dense = clf.predict_proba(X)
    top = clf.predict_proba(X, k=k)
    assert sp.issparse(top) and top.format == "csr" and top.dtype == np.float32
    assert top.shape == dense.shape
    assert np.all(np.diff(top.indptr) == k) and top.has_sorted_indices
    assert np.all(np.diff(top.indices.reshape(-1, k), axis=1) > 0)
    # Same values as the dense result, at its k largest entries of each row.
    rows = np.repeat(np.arange(X.shape[0]), k)
    np.testing.assert_array_equal(top.data, dense[rows, top.indices])
    kth = -np.sort(-dense, axis=1)[:, k - 1]
    assert np.all(top.toarray().max(axis=1) == dense.max(axis=1))
    assert np.all(top.data.reshape(-1, k).min(axis=1) >= kth)
    if k == 400:
        np.testing.assert_array_equal(top.toarray(), dense)


def test_ranking_agrees_with_predict_topk(fitted):
    clf, X = fitted
    labels, _ = clf.predict_topk(X, k=5)
    top = clf.predict_proba(X, k=5)
    order = np.argsort(-top.data.reshape(-1, 5), axis=1, kind="stable")
    ranked = np.take_along_axis(top.indices.reshape(-1, 5), order, axis=1)
    assert np.mean(ranked == labels) > 0.99  # near-ties may swap between the two kernels


def test_ties_at_the_kth_go_to_the_smaller_label(fitted, monkeypatch):
    clf, X = fitted
    n_labels = len(clf.classes_)
    flat = np.full((3, n_labels), 1.0 / n_labels, dtype=np.float32)
    monkeypatch.setattr(inference, "_probabilities", lambda estimator, X: flat[:X.shape[0]])
    top = clf.predict_proba(X[:3], k=4)
    assert top.indices.tolist() == [0, 1, 2, 3] * 3


@pytest.mark.parametrize("k", [0, -1, 401, 2.0, True, "5"])
def test_bad_k(fitted, k):
    clf, X = fitted
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 400\]"):
        clf.predict_proba(X, k=k)


def test_memory_does_not_need_the_dense_matrix(fitted, monkeypatch):
    import sklearn_slide._memory as memory

    clf, X = fitted
    monkeypatch.setattr(memory, "DENSE_OUTPUT_LIMIT_BYTES", 1000)
    with pytest.raises(ValueError, match="predict_topk"):
        clf.predict_proba(X)
    assert clf.predict_proba(X, k=3).nnz == 3 * X.shape[0]
