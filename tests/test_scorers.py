"""Tests of the XMC scorers and of cross_validate_xmc with a fake estimator."""

import pickle
import warnings

import numpy as np
from joblib import parallel_config
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, normalize

from sklearn_slide.datasets import make_extreme_multilabel
from sklearn_slide.metrics import (
    inverse_propensity,
    ndcg_at_k,
    ndcg_at_k_scorer,
    precision_at_k,
    precision_at_k_scorer,
    psndcg_at_k,
    psndcg_at_k_scorer,
    psprecision_at_k,
    psprecision_at_k_scorer,
    recall_at_k,
    recall_at_k_scorer,
    xmc_scorer,
)
from sklearn_slide.model_selection import cross_validate_xmc


class CentroidTopK(ClassifierMixin, BaseEstimator):
    """Cosine label-centroid classifier with the SlideClassifier top-k API.

    ``prior`` mixes in label popularity, which hurts P@1: a parameter for the
    grid search to get right.
    """

    def __init__(self, prior=0.0, fail=False):
        self.prior = prior
        self.fail = fail

    def fit(self, X, y):
        if self.fail:
            raise RuntimeError("planned failure")
        X = sp.csr_matrix(X, dtype=np.float64)
        if sp.issparse(y) or np.ndim(y) == 2:
            Y = sp.csr_matrix(y, dtype=np.float64)
            self.classes_ = np.arange(Y.shape[1])
            self.multilabel_ = True
        else:
            self.classes_, codes = np.unique(y, return_inverse=True)
            Y = sp.csr_matrix((np.ones(len(codes)), (np.arange(len(codes)), codes)))
            self.multilabel_ = False
        self.centroids_ = normalize(sp.csr_matrix(Y.T @ X))
        self.label_counts_ = np.asarray(Y.sum(axis=0)).ravel().astype(np.int64)
        self.n_samples_seen_ = X.shape[0]
        self.popularity_ = self.label_counts_ / self.label_counts_.max()
        return self

    def _scores(self, X):
        S = (sp.csr_matrix(X, dtype=np.float64) @ self.centroids_.T).toarray()
        return S + self.prior * self.popularity_

    def predict_topk(self, X, k):
        S = self._scores(X)
        width = min(k, S.shape[1])
        labels = np.full((S.shape[0], k), -1, dtype=np.int64)
        labels[:, :width] = np.argsort(-S, axis=1, kind="stable")[:, :width]
        scores = np.where(labels >= 0, np.take_along_axis(S, np.maximum(labels, 0), axis=1), -np.inf)
        return labels, scores

    def predict(self, X):
        top = self.predict_topk(X, 1)[0][:, 0]
        if not self.multilabel_:
            return self.classes_[top]
        P = sp.csr_matrix((np.ones(len(top)), (np.arange(len(top)), top)), shape=(len(top), len(self.classes_)))
        return P


@pytest.fixture(scope="module")
def data():
    X, Y = make_extreme_multilabel(600, 2000, 60, random_state=0)
    return X, Y


def _split(X, Y, n_train=450):
    return X[:n_train], Y[:n_train], X[n_train:], Y[n_train:]


KEYS = ["P@1", "P@3", "P@5", "nDCG@1", "nDCG@3", "nDCG@5", "PSP@1", "PSP@3", "PSP@5"]


def test_xmc_scorer_matches_metric_functions(data):
    Xtr, Ytr, Xte, Yte = _split(*data)
    est = CentroidTopK().fit(Xtr, Ytr)
    scores = xmc_scorer()(est, Xte, Yte)
    assert list(scores) == KEYS
    assert all(type(v) is float for v in scores.values())
    labels = est.predict_topk(Xte, 5)[0]
    w = inverse_propensity(est.label_counts_, est.n_samples_seen_)
    for k in (1, 3, 5):
        assert scores[f"P@{k}"] == precision_at_k(Yte, labels, k=k)
        assert scores[f"nDCG@{k}"] == ndcg_at_k(Yte, labels, k=k)
        assert scores[f"PSP@{k}"] == pytest.approx(psprecision_at_k(Yte, labels, k=k, inv_propensity=w))
    assert scores["P@1"] > 0.5  # the centroid classifier learns the problem

    # Single-metric scorers agree with the dict scorer.
    assert precision_at_k_scorer(3)(est, Xte, Yte) == scores["P@3"]
    assert ndcg_at_k_scorer(5)(est, Xte, Yte) == scores["nDCG@5"]
    assert psprecision_at_k_scorer(1)(est, Xte, Yte) == pytest.approx(scores["PSP@1"])
    assert recall_at_k_scorer(5)(est, Xte, Yte) == recall_at_k(Yte, labels, k=5)
    assert psndcg_at_k_scorer(3)(est, Xte, Yte) == pytest.approx(psndcg_at_k(Yte, labels, k=3, inv_propensity=w))
    # Dense y gives the same numbers as sparse y.
    assert xmc_scorer()(est, Xte, Yte.toarray()) == scores


def test_scorer_calls_predict_topk_once(data):
    Xtr, Ytr, Xte, Yte = _split(*data)
    est = CentroidTopK().fit(Xtr, Ytr)
    calls = []
    original = est.predict_topk

    def counting(X, k):
        calls.append(k)
        return original(X, k)

    est.predict_topk = counting
    xmc_scorer(k_values=(5, 1, 10))(est, Xte, Yte)
    assert calls == [10]


def test_scorer_options(data):
    Xtr, Ytr, Xte, Yte = _split(*data)
    est = CentroidTopK().fit(Xtr, Ytr)
    scores = xmc_scorer(k_values=(2, 2, 7), propensity=False)(est, Xte, Yte)
    assert list(scores) == ["P@2", "P@7", "nDCG@2", "nDCG@7"]
    other = xmc_scorer(k_values=(1,), A=0.6, B=2.6)(est, Xte, Yte)
    w = inverse_propensity(est.label_counts_, est.n_samples_seen_, A=0.6, B=2.6)
    labels = est.predict_topk(Xte, 1)[0]
    assert other["PSP@1"] == pytest.approx(psprecision_at_k(Yte, labels, k=1, inv_propensity=w))
    assert repr(xmc_scorer((1, 5), propensity=False)) == "<XMC scorer: P@1, P@5, nDCG@1, nDCG@5>"
    # Scorers pickle (joblib sends them to workers).
    assert pickle.loads(pickle.dumps(xmc_scorer()))(est, Xte, Yte) == xmc_scorer()(est, Xte, Yte)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(k_values=()), "must not be empty"),
        (dict(k_values=(1, 0)), "k_values"),
        (dict(k_values=5), "k_values"),
        (dict(propensity="yes"), "propensity"),
        (dict(A=0), "A must"),
    ],
)
def test_xmc_scorer_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        xmc_scorer(**kwargs)
    with pytest.raises(ValueError, match="k must be a positive int"):
        precision_at_k_scorer(0)


def test_scorer_errors(data):
    Xtr, Ytr, Xte, Yte = _split(*data)
    est = CentroidTopK().fit(Xtr, Ytr)
    del est.label_counts_
    with pytest.raises(AttributeError, match="label_counts_ .* propensity=False"):
        xmc_scorer()(est, Xte, Yte)
    assert "P@1" in xmc_scorer(propensity=False)(est, Xte, Yte)
    assert precision_at_k_scorer(1)(est, Xte, Yte) > 0
    with pytest.raises(TypeError, match="no predict_topk"):
        xmc_scorer()(FunctionTransformer().fit(Xtr), Xte, Yte)
    est = CentroidTopK().fit(Xtr, Ytr)
    with pytest.raises(ValueError, match="59 label columns"):
        xmc_scorer()(est, Xte, Yte[:, :59])


def test_scorer_unwraps_pipeline(data):
    Xtr, Ytr, Xte, Yte = _split(*data)
    # Reversing the columns makes an un-transformed X score at chance level.
    reverse = FunctionTransformer(lambda X: X[:, ::-1], accept_sparse=True)
    pipe = make_pipeline(reverse, CentroidTopK()).fit(Xtr, Ytr)
    direct = CentroidTopK().fit(Xtr[:, ::-1], Ytr)
    assert xmc_scorer()(pipe, Xte, Yte) == xmc_scorer()(direct, Xte[:, ::-1], Yte)
    # A pipeline of one step, and a nested pipeline.
    assert xmc_scorer()(make_pipeline(CentroidTopK()).fit(Xtr, Ytr), Xte, Yte) == xmc_scorer()(
        CentroidTopK().fit(Xtr, Ytr), Xte, Yte
    )
    nested = make_pipeline(reverse, make_pipeline(FunctionTransformer(accept_sparse=True), CentroidTopK()))
    nested.fit(Xtr, Ytr)
    assert xmc_scorer()(nested, Xte, Yte) == xmc_scorer()(pipe, Xte, Yte)


def test_scorer_with_multiclass_targets():
    rng = np.random.default_rng(0)
    X = np.abs(rng.standard_normal((8, 4)))
    y = np.array(["b", "a", "c", "b", "a", "c", "b", "a"])
    est = CentroidTopK().fit(X, y)
    assert list(est.classes_) == ["a", "b", "c"]
    labels = est.predict_topk(X, 2)[0]
    y_test = y.copy()
    y_test[0] = "z"  # a class unseen in training: a miss that no prediction can hit
    positions = np.searchsorted(est.classes_, y_test[1:])
    Y = np.zeros((8, 4), dtype=int)
    Y[np.arange(1, 8), positions] = 1
    Y[0, 3] = 1
    expected_p1 = precision_at_k(Y, np.column_stack([labels, np.full((8, 1), -1)]), k=1)
    scores = xmc_scorer(k_values=(1, 2))(est, X, y_test)
    assert scores["P@1"] == pytest.approx(expected_p1)
    # The unseen class has training count 0, so it gets the largest weight.
    w = inverse_propensity(np.append(est.label_counts_, 0), est.n_samples_seen_)
    padded = np.column_stack([labels, np.full((8, 1), -1)])
    assert scores["PSP@2"] == pytest.approx(psprecision_at_k(Y, padded, k=2, inv_propensity=w))
    # A column vector is read as class labels too.
    assert xmc_scorer(k_values=(1, 2))(est, X, y_test[:, None]) == scores


def test_class_positions_follow_classes_in_any_order():
    # The scorers take classes_ of any estimator, which need not be sorted; the
    # estimator's label_lists uses the same mapping on its sorted classes_.
    from sklearn_slide._targets import class_positions

    classes = np.array(["c", "a", "b"])
    y = np.array(["a", "z", "c", "b", "a"])
    np.testing.assert_array_equal(class_positions(y, classes), [1, 3, 0, 2, 1])
    np.testing.assert_array_equal(class_positions(np.array([5, 1]), np.array([1, 5, 9])), [1, 0])


def test_scorer_in_grid_search_with_sparse_y(data):
    X, Y = data
    search = GridSearchCV(
        CentroidTopK(), {"prior": [0.0, 1.0, 10.0]}, scoring=xmc_scorer(), refit="P@1", cv=3
    )
    search.fit(X, Y)
    assert search.best_params_ == {"prior": 0.0}
    for key in KEYS:
        assert f"mean_test_{key}" in search.cv_results_
    assert search.cv_results_["mean_test_P@1"][0] > search.cv_results_["mean_test_P@1"][2]
    # The search object itself can be scored: its best estimator is used.
    assert xmc_scorer()(search, X, Y) == xmc_scorer()(search.best_estimator_, X, Y)


def test_scorer_in_grid_search_of_a_pipeline(data):
    X, Y = data
    pipe = make_pipeline(FunctionTransformer(accept_sparse=True), CentroidTopK())
    search = GridSearchCV(
        pipe,
        {"centroidtopk__prior": [0.0, 10.0]},
        scoring={"P@1": precision_at_k_scorer(1), "nDCG@3": ndcg_at_k_scorer(3)},
        refit="P@1",
        cv=KFold(3),
    )
    search.fit(X, Y)
    assert search.best_params_ == {"centroidtopk__prior": 0.0}
    assert "mean_test_nDCG@3" in search.cv_results_


def test_scorer_in_sklearn_cross_validate_with_dense_y(data):
    X, Y = data
    res = cross_validate(CentroidTopK(), X, Y.toarray(), scoring=xmc_scorer(), cv=3)
    for key in KEYS:
        assert res[f"test_{key}"].shape == (3,)


# ------------------------------------------------------- cross_validate_xmc


def test_cross_validate_xmc_sparse_y(data):
    X, Y = data
    res = cross_validate_xmc(CentroidTopK(), X, Y, cv=3)
    assert list(res) == ["fit_time", "score_time"] + [f"test_{key}" for key in KEYS]
    assert all(v.shape == (3,) for v in res.values())
    # Same folds and scores as a manual loop.
    for i, (train, test) in enumerate(KFold(3).split(X)):
        est = CentroidTopK().fit(X[train], Y[train])
        assert res["test_P@1"][i] == xmc_scorer()(est, X[test], Y[test])["P@1"]


def test_cross_validate_xmc_options(data):
    X, Y = data
    # Threads: process workers cannot unpickle a class defined in a test module
    # (tests/ is not an importable package under --import-mode=importlib).
    with parallel_config(backend="threading"):
        res = cross_validate_xmc(
            CentroidTopK(), X, Y, cv=KFold(2, shuffle=True, random_state=0),
            scoring=precision_at_k_scorer(1), n_jobs=2,
            return_train_score=True, return_estimator=True, return_indices=True,
        )
    assert set(res) == {"fit_time", "score_time", "test_score", "train_score", "estimator", "indices"}
    assert len(res["estimator"]) == 2 and hasattr(res["estimator"][0], "centroids_")
    assert np.all(res["train_score"] >= res["test_score"])
    train, test = res["indices"]["train"][0], res["indices"]["test"][0]
    assert len(train) + len(test) == X.shape[0]
    res = cross_validate_xmc(
        CentroidTopK(), X, Y, cv=2, scoring={"a": precision_at_k_scorer(1), "b": "f1_samples"}
    )
    assert {"test_a", "test_b"} <= set(res)


def test_cross_validate_xmc_multiclass_and_lists():
    rng = np.random.default_rng(0)
    X = np.abs(rng.standard_normal((30, 5)))
    y = np.repeat([0, 1, 2], 10)
    res = cross_validate_xmc(CentroidTopK(), X.tolist(), y, cv=3, scoring=xmc_scorer((1,)))
    assert res["test_P@1"].shape == (3,)


def test_cross_validate_xmc_errors(data):
    X, Y = data
    with pytest.raises(ValueError, match="All 3 fits failed.*planned failure"):
        cross_validate_xmc(CentroidTopK(fail=True), X, Y, cv=3)
    with pytest.raises(RuntimeError, match="planned failure"):
        cross_validate_xmc(CentroidTopK(fail=True), X, Y, cv=3, error_score="raise")
    with pytest.raises(ValueError, match="scoring must be"):
        cross_validate_xmc(CentroidTopK(), X, Y, scoring=42)
    with pytest.raises(ValueError, match="error_score"):
        cross_validate_xmc(CentroidTopK(), X, Y, error_score="ignore")


def test_cross_validate_xmc_partial_failure(data):
    X, Y = data

    class FailsOnSmallFolds(CentroidTopK):
        def fit(self, X, y):
            if X.shape[0] < 450:
                raise RuntimeError("too small")
            return super().fit(X, y)

    # Folds of 600 rows with a custom split: one training set is small.
    splits = [(np.arange(0, 500), np.arange(500, 600)), (np.arange(0, 200), np.arange(200, 600))]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = cross_validate_xmc(FailsOnSmallFolds(), X, Y, cv=splits, error_score=-1.0)
    assert any("1 of 2 fits failed" in str(w.message) for w in caught)
    assert res["test_P@1"][1] == -1.0 and res["test_P@1"][0] > 0
