"""SlideClassifier inside scikit-learn model selection, with sparse label matrices.

GridSearchCV over the hash parameters with the XMC scorer (refit on P@1, two
process workers, one OpenMP thread each), cross_validate_xmc, a
TfidfVectorizer pipeline in a grid search, and clone of a fitted model.
"""

import os
import sys

import cloudpickle
import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MultiLabelBinarizer

from sklearn_slide import SlideClassifier, effective_n_threads
from sklearn_slide.datasets import make_extreme_multilabel
from sklearn_slide.metrics import precision_at_k, xmc_scorer
from sklearn_slide.model_selection import cross_validate_xmc

# Tiny network and few epochs: every fit below takes a fraction of a second.
SMALL = {
    "hidden_layer_sizes": (32,),
    "min_active": 16,
    "batch_size": 64,
    "learning_rate": 1e-2,
    "max_iter": 3,
    "random_state": 0,
}

HASH_GRID = {
    "hash_family": ["dwta", "simhash"],
    "hash_bits": [4],
    "n_tables": [4, 16],
    "bucket_size": [16, 64],
}


@pytest.fixture(scope="module")
def data():
    X, Y = make_extreme_multilabel(1200, 2000, 200, random_state=0)
    return X[:1000], Y[:1000], X[1000:], Y[1000:]


@pytest.fixture(scope="module")
def classes_by_value():
    """Let loky workers unpickle the classes and functions of this module.

    Process workers import a class's module to unpickle it, and tests/ is not
    an importable package under --import-mode=importlib: send them by value.
    """
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    yield
    cloudpickle.unregister_pickle_by_value(module)


def popularity_p_at_1(Y_train, Y_test):
    """P@1 of always predicting the most frequent training label."""
    top = int(np.argmax(np.asarray(Y_train.sum(axis=0)).ravel()))
    return float(Y_test[:, top].mean())


class ThreadRecordingSlide(SlideClassifier):
    """SlideClassifier that records what ``n_threads`` resolves to when fit starts."""

    def fit(self, X, y):
        self.fit_threads_ = effective_n_threads(self.n_threads)
        return super().fit(X, y)


def p_at_1_and_fit_threads(estimator, X, y):
    """Scorer: P@1 plus the thread count the fold's fit ran with."""
    scores = xmc_scorer(k_values=(1,), propensity=False)(estimator, X, y)
    scores["fit_threads"] = estimator.fit_threads_
    return scores


def expected_worker_threads(n_jobs):
    """OpenMP threads joblib's loky backend grants each of ``n_jobs`` workers."""
    if "OMP_NUM_THREADS" in os.environ:  # a value set by the user is passed on as is
        return int(os.environ["OMP_NUM_THREADS"])
    return max(joblib.cpu_count() // n_jobs, 1)


def test_grid_search_over_hash_parameters_with_sparse_y(data):
    X, Y, X_test, Y_test = data
    assert sp.issparse(Y)
    search = GridSearchCV(
        SlideClassifier(candidates="lsh", **SMALL),
        HASH_GRID,
        scoring=xmc_scorer(),
        refit="P@1",
        cv=KFold(2, shuffle=True, random_state=0),
        n_jobs=2,
        error_score="raise",
    )
    search.fit(X, Y)

    results = search.cv_results_
    assert len(results["params"]) == 8
    for metric in ("P@1", "P@3", "P@5", "nDCG@5", "PSP@5"):
        values = results[f"mean_test_{metric}"]
        assert np.all((values > 0) & (values <= 1)), metric
    # The hash parameters reach the engine: the candidates do not all score alike.
    assert np.unique(results["mean_test_P@1"]).size > 1
    # refit="P@1" picks the candidate with the best mean P@1 ...
    assert search.best_index_ == int(np.argmax(results["mean_test_P@1"]))
    assert search.best_score_ == pytest.approx(results["mean_test_P@1"].max())
    assert search.best_params_ == results["params"][search.best_index_]
    # ... and refits it on every training row.
    best = search.best_estimator_
    assert {k: best.get_params()[k] for k in HASH_GRID} == search.best_params_
    assert best.n_samples_seen_ == X.shape[0]

    Y_pred = search.predict(X_test)
    assert sp.issparse(Y_pred) and Y_pred.shape == Y_test.shape
    labels, _ = best.predict_topk(X_test, k=1)
    test_p_at_1 = precision_at_k(Y_test, labels, k=1)
    assert search.score(X_test, Y_test) == pytest.approx(test_p_at_1)
    assert test_p_at_1 > 2 * popularity_p_at_1(Y, Y_test)


def test_grid_search_workers_fit_with_limited_threads(data, classes_by_value):
    # n_threads=None is resolved from OpenMP when fit starts; joblib's loky
    # workers start with OMP_NUM_THREADS = cpu_count() // n_jobs, so 2 workers
    # on 2 cores fit with 1 thread each instead of 2 (no oversubscription).
    X, Y, _, _ = data
    search = GridSearchCV(
        ThreadRecordingSlide(hash_family="dwta", **SMALL),
        {"n_tables": [4, 8]},
        scoring=p_at_1_and_fit_threads,
        refit="P@1",
        cv=2,
        n_jobs=2,
        error_score="raise",
    )
    search.fit(X, Y)

    per_fold = np.concatenate([search.cv_results_[f"split{i}_test_fit_threads"] for i in range(2)])
    assert np.all(per_fold == expected_worker_threads(2))
    if "OMP_NUM_THREADS" not in os.environ and joblib.cpu_count() >= 2:
        assert 2 * per_fold.max() <= joblib.cpu_count()
    # The refit runs in this process, which has every thread OpenMP allows.
    assert search.best_estimator_.fit_threads_ == effective_n_threads(None)


def test_cross_validate_xmc_with_sparse_y(data):
    X, Y, _, _ = data
    results = cross_validate_xmc(
        SlideClassifier(hash_family="dwta", **SMALL),
        X, Y,
        cv=KFold(3, shuffle=True, random_state=0),
        n_jobs=2,
        return_estimator=True,
        return_indices=True,
    )
    for metric in ("P@1", "P@3", "P@5", "nDCG@1", "nDCG@3", "nDCG@5", "PSP@1", "PSP@3", "PSP@5"):
        assert results[f"test_{metric}"].shape == (3,)
    assert np.all(results["fit_time"] > 0)
    folds = zip(results["estimator"], results["indices"]["train"], results["indices"]["test"])
    for i, (estimator, train, test) in enumerate(folds):
        assert estimator.n_samples_seen_ == len(train)
        assert sp.issparse(estimator.predict(X[test]))
        # The reported score is the fold estimator's P@1 on the fold's test rows.
        labels, _ = estimator.predict_topk(X[test], k=1)
        assert results["test_P@1"][i] == pytest.approx(precision_at_k(Y[test], labels, k=1))
        assert results["test_P@1"][i] > 2 * popularity_p_at_1(Y[train], Y[test])


def test_sklearn_cross_validate_rejects_sparse_y_cross_validate_xmc_does_not(data):
    X, Y, _, _ = data
    estimator = SlideClassifier(hash_family="dwta", n_threads=1, **SMALL)
    cv = KFold(2, shuffle=True, random_state=0)
    # scikit-learn's parameter validation refuses a sparse y (InvalidParameterError).
    with pytest.raises(ValueError, match="'y' parameter of cross_validate"):
        cross_validate(estimator, X, Y, scoring=xmc_scorer(), cv=cv)

    ours = cross_validate_xmc(estimator, X, Y, cv=cv)
    # The same protocol on a dense copy of Y (what cross_validate accepts) gives
    # the same scores: with n_threads=1 every fit is bit-reproducible.
    dense = cross_validate(estimator, X, Y.toarray(), scoring=xmc_scorer(), cv=cv)
    for metric in ("P@1", "P@5", "nDCG@5", "PSP@5"):
        np.testing.assert_allclose(ours[f"test_{metric}"], dense[f"test_{metric}"])


def text_corpus(n_samples, random_state):
    """Documents of word tokens ``w<feature id>`` and their tag lists."""
    X, Y = make_extreme_multilabel(n_samples, 800, 60, random_state=random_state)
    documents = [" ".join(f"w{j}" for j in X[i].indices) for i in range(n_samples)]
    tags = [[f"tag{j}" for j in Y[i].indices] for i in range(n_samples)]
    return documents, tags


def test_text_pipeline_in_grid_search():
    documents, tags = text_corpus(700, random_state=0)
    mlb = MultiLabelBinarizer(sparse_output=True).fit(tags)
    Y = mlb.transform(tags)
    assert sp.issparse(Y)
    docs_train, docs_test, Y_train, Y_test = documents[:600], documents[600:], Y[:600], Y[600:]

    pipe = Pipeline([
        ("tfidf", TfidfVectorizer(dtype=np.float32)),
        ("slide", SlideClassifier(n_threads=1, **SMALL)),
    ])
    grid = {"tfidf__sublinear_tf": [False, True], "slide__hash_family": [None, "dwta"]}
    search = GridSearchCV(
        pipe, grid, scoring=xmc_scorer(), refit="P@1", cv=2, n_jobs=2, error_score="raise"
    )
    search.fit(docs_train, Y_train)

    assert len(search.cv_results_["params"]) == 4
    assert isinstance(search.best_estimator_, Pipeline)
    assert set(search.best_params_) == set(grid)
    # The scorer unwraps the pipeline: raw text in, P@k out.
    scores = xmc_scorer()(search.best_estimator_, docs_test, Y_test)
    assert scores["P@1"] == pytest.approx(search.score(docs_test, Y_test))
    assert scores["P@1"] > 2 * popularity_p_at_1(Y_train, Y_test)
    Y_pred = search.predict(docs_test)
    assert sp.issparse(Y_pred) and Y_pred.shape == Y_test.shape
    predicted_tags = mlb.inverse_transform(Y_pred)
    assert len(predicted_tags) == len(docs_test)
    assert predicted_tags[0] and set(predicted_tags[0]) <= set(mlb.classes_)


def test_clone_of_a_fitted_estimator(data):
    X, Y, X_test, _ = data
    fitted = SlideClassifier(hash_family="dwta", n_threads=1, **SMALL).fit(X, Y)
    labels, scores = fitted.predict_topk(X_test, k=5)

    copy = clone(fitted)
    assert copy is not fitted
    assert copy.get_params() == fitted.get_params()
    # clone copies the parameters only, not the trained network.
    with pytest.raises(NotFittedError):
        copy.predict_topk(X_test, k=5)
    assert not hasattr(copy, "classes_") and not hasattr(copy, "loss_curve_")
    # The original is untouched, and refitting the clone (one thread, same
    # seed) reproduces it exactly.
    np.testing.assert_array_equal(fitted.predict_topk(X_test, k=5)[0], labels)
    copy.fit(X, Y)
    np.testing.assert_array_equal(copy.predict_topk(X_test, k=5)[0], labels)
    np.testing.assert_array_equal(copy.predict_topk(X_test, k=5)[1], scores)
    assert copy.loss_curve_ == fitted.loss_curve_
