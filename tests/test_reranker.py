"""The per-label linear re-ranker (reranker="linear"): its solver against a
primal optimum found by scipy, its scores against NumPy, and how the
estimator uses it (order at weight 0, predict_proba agreeing with predict,
partial_fit dropping it, damaged weights refused)."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import minimize

from sklearn_slide import SlideClassifier
# _engine: the re-ranker's solver and scorer against a reference, without the network.
from sklearn_slide import _engine as engine
from sklearn_slide.datasets import make_extreme_multilabel


def _problem(seed=0, n=60, d=12, labels=5):
    rng = np.random.RandomState(seed)
    X = sp.random(n, d, density=0.4, format="csr", random_state=rng, dtype=np.float32)
    X.data += 0.1
    Y = sp.csr_matrix((rng.rand(n, labels) < 0.3).astype(np.float32))
    shortlist = np.tile(np.arange(labels, dtype=np.int32), (n, 1))
    return X, Y, shortlist


def _primal_optimum(X, y, C):
    """argmin 0.5 |w|^2 + 0.5 b^2 + C sum max(0, 1 - y (w x/|x| + b))^2 (LIBLINEAR's
    squared hinge with the bias as a feature of value 1)."""
    Xn = X.toarray().astype(np.float64)
    norms = np.linalg.norm(Xn, axis=1, keepdims=True)
    Xn = np.divide(Xn, norms, out=np.zeros_like(Xn), where=norms > 0)
    A = np.hstack([Xn, np.ones((len(Xn), 1))])

    def loss(v):
        slack = np.maximum(0.0, 1.0 - y * (A @ v))
        return 0.5 * v @ v + C * slack @ slack, v - 2 * C * A.T @ (y * slack)

    return minimize(loss, np.zeros(A.shape[1]), jac=True, method="L-BFGS-B",
                    options={"gtol": 1e-10, "maxiter": 10000}).x


@pytest.mark.parametrize("C", [0.5, 1.0, 4.0])
def test_solver_reaches_the_primal_optimum(C):
    X, Y, shortlist = _problem()
    W = engine.train_linear_reranker(X, Y, shortlist, C=C, max_iter=2000, tol=1e-7, prune=0.0,
                                     seed=0, n_threads=2)
    dense = sp.csr_matrix((W["values"], W["indices"], W["indptr"]),
                          shape=(Y.shape[1], X.shape[1])).toarray()
    for label in range(Y.shape[1]):
        y = np.where(Y[:, label].toarray().ravel() > 0, 1.0, -1.0)
        v = _primal_optimum(X, y, C)
        np.testing.assert_allclose(dense[label], v[:-1], atol=2e-3)
        assert W["bias"][label] == pytest.approx(v[-1], abs=2e-3)


def test_a_label_sees_only_its_shortlisted_and_positive_rows():
    X, Y, shortlist = _problem()
    shortlist = shortlist.copy()
    shortlist[:, 0] = -1  # label 0 leaves every shortlist: only its positives remain
    shortlist[:30, 1] = -1
    W = engine.train_linear_reranker(X, Y, shortlist, C=1.0, max_iter=50, tol=1e-4, prune=0.0,
                                     seed=0, n_threads=1)
    # Changing a row outside label 1's problem (not shortlisted, not positive)
    # leaves label 1's model unchanged; it changes a label whose problem holds it.
    row = next(r for r in range(30) if Y[r, 1] == 0)
    X2 = X.tolil()
    X2[row, :] = 0
    X2[row, 3] = 5.0
    W2 = engine.train_linear_reranker(X2.tocsr(), Y, shortlist, C=1.0, max_iter=50, tol=1e-4,
                                      prune=0.0, seed=0, n_threads=1)

    def model(W, label):
        span = slice(W["indptr"][label], W["indptr"][label + 1])
        return dict(zip(W["indices"][span], W["values"][span])), W["bias"][label]

    assert model(W, 1) == model(W2, 1)
    assert model(W, 2) != model(W2, 2)
    # Only positives: the bias and weights push every score up.
    weights, bias = model(W, 0)
    assert bias > 0 and all(v > 0 for v in weights.values())


def test_training_does_not_depend_on_the_thread_count():
    X, Y = make_extreme_multilabel(400, 300, 40, random_state=0)
    shortlist = np.random.RandomState(0).randint(-1, 40, size=(400, 8)).astype(np.int32)
    runs = [engine.train_linear_reranker(X, Y, shortlist, C=1.0, max_iter=20, tol=0.1,
                                         prune=0.1, seed=3, n_threads=t) for t in (1, 2, 3)]
    for other in runs[1:]:
        for name in runs[0]:
            np.testing.assert_array_equal(runs[0][name], other[name])


def test_linear_scores_match_numpy():
    X, Y, shortlist = _problem()
    W = engine.train_linear_reranker(X, Y, shortlist, C=1.0, max_iter=20, tol=0.1, prune=0.05,
                                     seed=0, n_threads=1)
    labels = np.random.RandomState(1).randint(-1, 5, size=(X.shape[0], 3)).astype(np.int32)
    scores = engine.linear_scores(W, 5, X, labels, 2)
    dense = sp.csr_matrix((W["values"], W["indices"], W["indptr"]), shape=(5, X.shape[1]))
    Xd = X.toarray().astype(np.float64)
    Xd /= np.maximum(np.linalg.norm(Xd, axis=1, keepdims=True), 1e-30)
    full = Xd @ dense.toarray().T.astype(np.float64) + W["bias"]
    expected = np.where(labels >= 0, np.take_along_axis(full, np.maximum(labels, 0), axis=1),
                        -np.inf)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)


def test_damaged_weights_are_refused():
    X, Y, shortlist = _problem()
    W = engine.train_linear_reranker(X, Y, shortlist, C=1.0, max_iter=5, tol=0.1, prune=0.0,
                                     seed=0, n_threads=1)
    labels = shortlist[:, :2].copy()
    bad = dict(W, indices=W["indices"].copy())
    bad["indices"][0] = X.shape[1]
    with pytest.raises(ValueError, match=rf"reranker: column index {X.shape[1]} out of range"):
        engine.linear_scores(bad, 5, X, labels, 1)
    with pytest.raises(ValueError, match="reranker bias"):
        engine.linear_scores(dict(W, bias=W["bias"][:-1]), 5, X, labels, 1)
    with pytest.raises(ValueError, match="shortlist"):
        engine.train_linear_reranker(X, Y, shortlist[:-1], C=1.0, max_iter=5, tol=0.1,
                                     prune=0.0, seed=0, n_threads=1)


@pytest.fixture(scope="module")
def fitted():
    X, Y = make_extreme_multilabel(1500, 800, 300, random_state=0)
    clf = SlideClassifier(max_iter=3, random_state=0, n_threads=2).fit(X[:1200], Y[:1200])
    return clf, X[1200:], Y[1200:]


def test_weight_zero_keeps_the_networks_order(fitted):
    clf, X, _ = fitted
    network, _ = clf.set_params(reranker=None).predict_topk(X, k=5)
    reranked, _ = clf.set_params(reranker="linear", reranker_weight=0.0).predict_topk(X, k=5)
    clf.set_params(reranker_weight=1.0)
    np.testing.assert_array_equal(reranked, network)


def test_reranker_changes_the_ranking_and_proba_agrees(fitted):
    clf, X, _ = fitted
    labels, scores = clf.predict_topk(X, k=5)
    network, _ = clf.set_params(reranker=None).predict_topk(X, k=5)
    clf.set_params(reranker="linear")
    assert (labels != network).any()
    assert (np.diff(scores, axis=1) <= 0).all()
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    # Rows without near-ties rank alike in both.
    clear = scores[:, 0] - scores[:, 1] > 1e-4
    np.testing.assert_array_equal(proba.argmax(axis=1)[clear], labels[clear, 0])


def test_partial_fit_drops_the_reranker_and_pickles_keep_it(fitted):
    clf, X, Y = fitted
    copy = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copy.predict_topk(X, k=5)[0], clf.predict_topk(X, k=5)[0])
    copy.partial_fit(X, Y)
    assert copy._reranker is None
    assert SlideClassifier(max_iter=1, reranker=None).fit(X, Y)._reranker is None


def test_a_pickle_with_a_damaged_reranker_is_refused(fitted):
    clf, _, _ = fitted
    state = clf.__getstate__()
    state["_reranker"] = dict(state["_reranker"], bias=state["_reranker"]["bias"][:3])
    with pytest.raises(ValueError, match="_reranker"):
        SlideClassifier().__setstate__(state)


def test_the_cluster_shortlist_of_many_labels_matches_exact_when_every_cluster_is_probed(
        monkeypatch):
    # Above EXACT_SHORTLIST_MAX_LABELS the training shortlist comes from the
    # label clusters; at 300 labels the default probes reach every cluster, so
    # both shortlists, hence both re-rankers, are the same.
    from sklearn_slide import _reranker

    X, Y = make_extreme_multilabel(800, 400, 300, random_state=0)
    params = dict(max_iter=1, random_state=0, n_threads=2)
    exact = SlideClassifier(**params).fit(X, Y)
    monkeypatch.setattr(_reranker, "EXACT_SHORTLIST_MAX_LABELS", 0)
    clustered = SlideClassifier(**params).fit(X, Y)
    for name in exact._reranker:
        np.testing.assert_array_equal(clustered._reranker[name], exact._reranker[name])
