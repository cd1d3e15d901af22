"""XMC scorers ranking with the sparse predict_proba(X, k) (response_method)."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin

from sklearn_slide import SlideClassifier
from sklearn_slide.metrics import (
    inverse_propensity,
    ndcg_at_k,
    precision_at_k,
    precision_at_k_scorer,
    psprecision_at_k,
    xmc_scorer,
)


class TopKProbaOnly(ClassifierMixin, BaseEstimator):
    """An estimator that ranks only through a sparse predict_proba(X, k) (no
    predict_topk), as a wrapper of another XMC library might."""

    def __init__(self, model=None, dense=False):
        self.model = model
        self.dense = dense

    def fit(self, X, y):
        return self

    def predict_proba(self, X, k=None):
        top = self.model.predict_proba(X, k=k)
        return top.toarray() if self.dense else top

    def __getattr__(self, name):  # classes_, label_counts_, n_samples_seen_
        if name.endswith("_") and not name.startswith("__") and "model" in self.__dict__:
            return getattr(self.__dict__["model"], name)
        raise AttributeError(name)


@pytest.fixture(scope="module")
def fitted(xmc_small):
    X, Y, X_test, Y_test = xmc_small
    model = SlideClassifier(max_iter=2, random_state=0, n_threads=1).fit(X, Y)
    return model, X_test, Y_test


def _expected_from_dense(model, X, Y, ks=(1, 3, 5)):
    proba = model.predict_proba(X)  # ranked with ties to the smaller label, as the scorer
    w = inverse_propensity(model.label_counts_, model.n_samples_seen_)
    expected = {}
    for name, metric in (("P", precision_at_k), ("nDCG", ndcg_at_k)):
        for k in ks:
            expected[f"{name}@{k}"] = metric(Y, proba, k=k)
    for k in ks:
        expected[f"PSP@{k}"] = psprecision_at_k(Y, proba, k=k, inv_propensity=w)
    return expected


def test_an_estimator_with_only_sparse_predict_proba_is_scored(fitted):
    model, X, Y = fitted
    scores = xmc_scorer()(TopKProbaOnly(model), X, Y)
    assert scores == pytest.approx(_expected_from_dense(model, X, Y), abs=1e-12)
    assert precision_at_k_scorer(3)(TopKProbaOnly(model), X, Y) == pytest.approx(scores["P@3"])


def test_response_method_predict_proba_ranks_every_label_exactly(fitted):
    model, X, Y = fitted
    approximate = SlideClassifier(**model.get_params())
    approximate.__setstate__(model.__getstate__())
    approximate.set_params(inference="clusters", n_probes=1)  # a coarse ranking
    by_proba = xmc_scorer(response_method="predict_proba")(approximate, X, Y)
    assert by_proba == pytest.approx(_expected_from_dense(model, X, Y), abs=1e-12)
    by_topk = xmc_scorer()(approximate, X, Y)  # predict_topk: the clusters' ranking
    labels, _ = approximate.predict_topk(X, k=5)
    assert by_topk["P@5"] == pytest.approx(precision_at_k(Y, labels, k=5))


def test_response_method_errors(fitted):
    model, X, Y = fitted
    with pytest.raises(ValueError, match="response_method must be None or one of"):
        xmc_scorer(response_method="decision_function")
    with pytest.raises(TypeError, match="predict_topk"):
        xmc_scorer(response_method="predict_topk")(TopKProbaOnly(model), X, Y)
    with pytest.raises(ValueError, match="must return a sparse matrix"):
        xmc_scorer()(TopKProbaOnly(model, dense=True), X, Y)
