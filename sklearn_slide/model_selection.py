"""Cross-validation for estimators with sparse multi-label targets.

``sklearn.model_selection.cross_validate`` rejects a sparse ``y`` in its
parameter validation, although ``GridSearchCV`` and ``cross_val_predict``
accept one.  :func:`cross_validate_xmc` runs the same protocol (clone, fit,
score on every fold, in parallel with joblib) for sparse label matrices and
defaults to the XMC ranking metrics.
"""

import numbers
import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone, is_classifier
from sklearn.metrics import get_scorer
from sklearn.model_selection import check_cv
from sklearn.utils.parallel import Parallel, delayed

from ._input import check_sparse_structure
from .metrics import xmc_scorer


def _take(data, indices):
    """Rows ``indices`` of an array, sparse matrix, DataFrame or list."""
    if data is None:
        return None
    if hasattr(data, "iloc"):
        return data.iloc[indices]
    if sp.issparse(data) or hasattr(data, "shape"):
        return data[indices]
    return [data[i] for i in indices]


def _resolve_scoring(scoring):
    """A callable returning a dict of scores, or a float."""
    if scoring is None:
        return xmc_scorer()
    if isinstance(scoring, str):
        return get_scorer(scoring)
    if callable(scoring):
        return scoring
    if isinstance(scoring, dict) and scoring:
        scorers = {name: _resolve_scoring(s) for name, s in scoring.items()}

        def multi(estimator, X, y):
            return {name: scorer(estimator, X, y) for name, scorer in scorers.items()}

        return multi
    raise ValueError(
        "scoring must be None, a str, a callable scorer(estimator, X, y) or a "
        f"non-empty dict of them, got {scoring!r}"
    )


def _as_dict(scores):
    if isinstance(scores, dict):
        return {name: float(value) for name, value in scores.items()}
    return {"score": float(scores)}


def _fit_and_score(estimator, X, Y, scorer, train, test, return_train_score, error_score):
    """Fit on ``train`` and score on ``test``; ``None`` scores if fit failed."""
    result = {"estimator": estimator, "fit_error": None}
    start = time.perf_counter()
    try:
        estimator.fit(_take(X, train), _take(Y, train))
    except Exception as exc:
        if error_score == "raise":
            raise
        result.update(fit_time=time.perf_counter() - start, score_time=0.0, test=None, train=None)
        result["fit_error"] = f"{type(exc).__name__}: {exc}"
        return result
    result["fit_time"] = time.perf_counter() - start
    start = time.perf_counter()
    result["test"] = _as_dict(scorer(estimator, _take(X, test), _take(Y, test)))
    result["score_time"] = time.perf_counter() - start
    result["train"] = (
        _as_dict(scorer(estimator, _take(X, train), _take(Y, train))) if return_train_score else None
    )
    return result


def cross_validate_xmc(
    estimator,
    X,
    Y,
    *,
    groups=None,
    cv=5,
    scoring=None,
    n_jobs=None,
    verbose=0,
    pre_dispatch="2*n_jobs",
    return_train_score=False,
    return_estimator=False,
    return_indices=False,
    error_score=np.nan,
):
    """Evaluate XMC metrics by cross-validation, with sparse label matrices.

    Like :func:`sklearn.model_selection.cross_validate`, but ``Y`` may be a
    scipy sparse label indicator matrix, and the default scoring is
    :func:`sklearn_slide.metrics.xmc_scorer` (P@k, nDCG@k, PSP@k for k = 1,
    3, 5).  Each fold clones the estimator, fits it on the training rows and
    scores it on the test rows; folds run in parallel with joblib.

    Parameters
    ----------
    estimator : estimator
        Unfitted estimator (cloned for every fold).
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Features (an array, a sparse matrix, a DataFrame or a list).
    Y : {array-like, sparse matrix} of shape (n_samples, n_labels) or (n_samples,)
        Label indicator matrix (dense or sparse), or 1-D class labels.
    groups : array-like of shape (n_samples,), default=None
        Group labels for group-aware splitters.
    cv : int, cross-validation generator or iterable, default=5
        As in scikit-learn: an int gives ``KFold`` for multi-label ``Y``
        (``StratifiedKFold`` for 1-D class labels of a classifier).
    scoring : str, callable, dict or None, default=None
        None for ``xmc_scorer()``; a callable ``scorer(estimator, X, y)``
        returning a float or a dict of floats; a scikit-learn scorer name; or
        a dict mapping names to such scorers (each returning a float).
    n_jobs : int, default=None
        Folds fitted in parallel (joblib semantics; None means 1).
    verbose : int, default=0
        joblib verbosity.
    pre_dispatch : int or str, default="2*n_jobs"
        joblib's pre-dispatch, which bounds the copies of the data in flight.
    return_train_score : bool, default=False
        Also score the training rows of every fold.
    return_estimator : bool, default=False
        Also return the fitted estimator of every fold.
    return_indices : bool, default=False
        Also return the train and test indices of every fold.
    error_score : "raise" or float, default=np.nan
        Score recorded for a fold whose fit raised (with a warning), or
        "raise" to propagate the error.

    Returns
    -------
    results : dict of arrays
        ``"fit_time"``, ``"score_time"``, and ``"test_<name>"`` for every
        metric (``"test_P@1"``, ...; ``"test_score"`` for a scorer returning
        a float), each of shape ``(n_splits,)``; plus ``"train_<name>"``,
        ``"estimator"`` and ``"indices"`` (``{"train": [...], "test":
        [...]}``) when asked for.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.base import BaseEstimator, ClassifierMixin
    >>> from sklearn_slide.datasets import make_extreme_multilabel
    >>> from sklearn_slide.model_selection import cross_validate_xmc
    >>> class Popularity(ClassifierMixin, BaseEstimator):
    ...     # Ranks the labels by training frequency, whatever the row.
    ...     def fit(self, X, Y):
    ...         self.label_counts_ = np.asarray(Y.sum(axis=0)).ravel()
    ...         self.n_samples_seen_ = Y.shape[0]
    ...         self.classes_ = np.arange(Y.shape[1])
    ...         return self
    ...     def predict_topk(self, X, k):
    ...         top = np.argsort(-self.label_counts_, kind="stable")[:k]
    ...         return np.tile(top, (X.shape[0], 1)), np.ones((X.shape[0], k))
    >>> X, Y = make_extreme_multilabel(300, 500, 50, random_state=0)
    >>> results = cross_validate_xmc(Popularity(), X, Y, cv=3)  # Y is sparse
    >>> list(results)
    ['fit_time', 'score_time', 'test_P@1', 'test_P@3', 'test_P@5', 'test_nDCG@1', \
'test_nDCG@3', 'test_nDCG@5', 'test_PSP@1', 'test_PSP@3', 'test_PSP@5']
    >>> results["test_P@1"].shape
    (3,)
    """
    if not (error_score == "raise" or isinstance(error_score, numbers.Real)):
        raise ValueError(f"error_score must be 'raise' or a number, got {error_score!r}")
    # Before the folds slice them: scipy's row slicing trusts the index arrays.
    check_sparse_structure(X, "X")
    check_sparse_structure(Y, "Y")
    scorer = _resolve_scoring(scoring)
    cv = check_cv(cv, Y, classifier=is_classifier(estimator))
    splits = list(cv.split(X, Y, groups))

    parallel = Parallel(n_jobs=n_jobs, verbose=verbose, pre_dispatch=pre_dispatch)
    results = parallel(
        delayed(_fit_and_score)(
            clone(estimator), X, Y, scorer, train, test, return_train_score, error_score
        )
        for train, test in splits
    )

    failed = [r for r in results if r["fit_error"] is not None]
    if len(failed) == len(results):
        raise ValueError(
            f"All {len(results)} fits failed; the first error was: {failed[0]['fit_error']}"
        )
    if failed:
        warnings.warn(
            f"{len(failed)} of {len(results)} fits failed and were scored {error_score}; "
            f"the first error was: {failed[0]['fit_error']}",
            UserWarning,
            stacklevel=2,
        )
    names = next(r for r in results if r["fit_error"] is None)["test"].keys()
    out = {
        "fit_time": np.array([r["fit_time"] for r in results]),
        "score_time": np.array([r["score_time"] for r in results]),
    }
    for part in ("test", "train") if return_train_score else ("test",):
        for name in names:
            out[f"{part}_{name}"] = np.array(
                [error_score if r[part] is None else r[part][name] for r in results],
                dtype=np.float64,
            )
    if return_estimator:
        out["estimator"] = [r["estimator"] for r in results]
    if return_indices:
        out["indices"] = {"train": [s[0] for s in splits], "test": [s[1] for s in splits]}
    return out
