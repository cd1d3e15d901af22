"""Scorers that evaluate XMC ranking metrics inside scikit-learn model selection.

scikit-learn's ``make_scorer`` cannot call ``predict_topk`` (it rejects the
response method, and a Pipeline does not forward custom methods), so these
scorers are plain callables ``scorer(estimator, X, y)``, accepted by
``scoring=`` in ``GridSearchCV``, ``RandomizedSearchCV`` and
``cross_validate``.  They call ``predict_topk`` once (or, for estimators
without it, the sparse ``predict_proba(X, k=...)``) and derive every metric
from that ranking.
"""

import inspect

import numpy as np
import scipy.sparse as sp
from sklearn.pipeline import Pipeline

from .._targets import class_positions
from ._ranking import (
    _as_indicator,
    _check_bool,
    _check_k,
    _check_label_ids,
    _check_propensity_constants,
    _Ranking,
    _top_k_sparse,
    inverse_propensity,
)

_METRICS = {
    # key prefix -> _Ranking method
    "P": "precision",
    "R": "recall",
    "nDCG": "ndcg",
    "PSP": "psprecision",
    "PSnDCG": "psndcg",
}
_PROPENSITY_METRICS = ("PSP", "PSnDCG")


RESPONSE_METHODS = ("predict_topk", "predict_proba")


def _has_top_k_proba(estimator):
    """Whether ``estimator.predict_proba`` takes ``k`` (a sparse top-k result)."""
    method = getattr(estimator, "predict_proba", None)
    if method is None:
        return False
    try:
        return "k" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def _ranks(estimator, response_method):
    """Whether ``estimator`` ranks labels by ``response_method`` (None: either way)."""
    by_topk = hasattr(estimator, "predict_topk")
    by_proba = _has_top_k_proba(estimator)
    return {None: by_topk or by_proba, "predict_topk": by_topk,
            "predict_proba": by_proba}[response_method]


def _final_estimator(estimator, X, response_method=None):
    """The estimator that ranks labels, and X transformed for it.

    It ranks with ``predict_topk``, or with ``predict_proba(X, k=...)``
    returning a sparse top-k matrix; ``response_method`` None takes the
    first it has. A Pipeline is unwrapped (its previous steps transform X),
    as is a fitted search object (``best_estimator_``).
    """
    if _ranks(estimator, response_method):
        return estimator, X
    if isinstance(estimator, Pipeline):
        if len(estimator.steps) > 1:
            X = estimator[:-1].transform(X)
        return _final_estimator(estimator.steps[-1][1], X, response_method)
    if hasattr(estimator, "best_estimator_"):
        return _final_estimator(estimator.best_estimator_, X, response_method)
    has = {
        None: "no predict_topk method nor a predict_proba taking k",
        "predict_topk": "no predict_topk method",
        "predict_proba": "no predict_proba(X, k) (sparse top-k probabilities)",
    }[response_method]
    raise TypeError(
        f"{type(estimator).__name__} has {has}; XMC scorers need an estimator with "
        "predict_topk(X, k) -> (labels, scores) or predict_proba(X, k) -> sparse top-k "
        "probabilities, or a Pipeline ending in one"
    )


def _ranked_labels(final, X, n_rows, n_labels, depth, response_method):
    """Label ids (n_rows, depth), best first, -1 for none, from the estimator's ranking."""
    if response_method != "predict_proba" and hasattr(final, "predict_topk"):
        result = final.predict_topk(X, k=depth)
        labels = np.asarray(result[0] if isinstance(result, tuple) else result)
        if labels.ndim != 2 or labels.shape[0] != n_rows or labels.dtype.kind not in "iu":
            raise ValueError(
                f"predict_topk must return integer labels of shape ({n_rows}, {depth}), "
                f"got {labels.dtype} array of shape {labels.shape}"
            )
        return _check_label_ids(labels, n_labels, depth)
    top = final.predict_proba(X, k=depth)
    if not sp.issparse(top):
        raise ValueError(
            "predict_proba(X, k) must return a sparse matrix of the top-k probabilities, "
            f"got {type(top).__name__}"
        )
    labels = _top_k_sparse(top, n_rows, n_labels, depth, "XMC scorer")
    if labels.shape[1] < depth:  # rows with fewer stored entries: no label there
        labels = np.pad(labels, ((0, 0), (0, depth - labels.shape[1])), constant_values=-1)
    return labels


def _true_indicator(final, y):
    """The truth as a canonical CSR indicator, and the label count offset.

    Returns ``(Y, n_unseen)``: for 1-D class labels, ``Y`` has one extra
    column gathering classes absent from ``final.classes_`` (such a row
    keeps its true label, which no prediction can hit), and ``n_unseen`` is 1.
    """
    if not sp.issparse(y):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()  # as the estimators do (column_or_1d)
    if sp.issparse(y) or y.ndim == 2:
        Y = _as_indicator(y)
        classes = getattr(final, "classes_", None)
        if classes is not None and len(classes) != Y.shape[1]:
            raise ValueError(
                f"y has {Y.shape[1]} label columns but the estimator was fitted on "
                f"{len(classes)} labels"
            )
        return Y, 0
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D class labels or a 2-D indicator, got shape {y.shape}")
    classes = np.asarray(final.classes_)
    # Multiclass: the true label of a row is the position of y in classes_
    # (the extra column classes.size for a class the estimator never saw).
    column = class_positions(y, classes)
    n = y.shape[0]
    Y = sp.csr_matrix(
        (np.ones(n, dtype=np.int8), column, np.arange(n + 1)), shape=(n, classes.size + 1)
    )
    return Y, 1


def _inverse_propensity(final, n_unseen, A, B):
    counts = getattr(final, "label_counts_", None)
    n_seen = getattr(final, "n_samples_seen_", None)
    if counts is None or n_seen is None:
        raise AttributeError(
            f"propensity-scored metrics need the fitted {type(final).__name__} to have "
            "label_counts_ (training frequency of each label) and n_samples_seen_ "
            "(number of training rows); use propensity=False to skip them"
        )
    counts = np.concatenate([np.asarray(counts, dtype=np.float64), np.zeros(n_unseen)])
    return inverse_propensity(counts, int(n_seen), A=A, B=B)


class _TopKScorer:
    """Callable ``scorer(estimator, X, y)`` for ranking metrics.

    Parameters
    ----------
    metrics : list of (prefix, k)
        Metrics to compute, e.g. ``[("P", 1), ("nDCG", 3)]``.
    single : bool
        Return the only metric as a float instead of a dict.
    A, B : float
        Propensity model constants, see ``inverse_propensity``.
    """

    def __init__(self, metrics, *, single=False, A=0.55, B=1.5, response_method=None):
        self.metrics = list(metrics)
        self.single = single
        self.A = A
        self.B = B
        self.response_method = response_method
        self.k_max = max(k for _, k in self.metrics)
        self.propensity = any(prefix in _PROPENSITY_METRICS for prefix, _ in self.metrics)

    def __call__(self, estimator, X, y):
        final, X = _final_estimator(estimator, X, self.response_method)
        Y, n_unseen = _true_indicator(final, y)
        inv_p = _inverse_propensity(final, n_unseen, self.A, self.B) if self.propensity else None
        n_labels = Y.shape[1] - n_unseen
        # No ranking has more positions than there are labels: asking for
        # more would be refused (or padded) by predict_topk.
        depth = min(self.k_max, n_labels)
        labels = _ranked_labels(final, X, Y.shape[0], n_labels, depth, self.response_method)
        ranking = _Ranking(Y, labels, self.k_max, inv_p)
        scores = {
            f"{prefix}@{k}": getattr(ranking, _METRICS[prefix])(k)
            for prefix, k in self.metrics
        }
        if self.single:
            return next(iter(scores.values()))
        return scores

    def __repr__(self):
        names = ", ".join(f"{prefix}@{k}" for prefix, k in self.metrics)
        return f"<XMC scorer: {names}>"


def xmc_scorer(k_values=(1, 3, 5), propensity=True, *, A=0.55, B=1.5, response_method=None):
    """Multi-metric scorer reporting P@k, nDCG@k and PSP@k for several k.

    The returned callable ``scorer(estimator, X, y) -> dict`` calls
    ``predict_topk(X, k=max(k_values))`` (or ``predict_proba(X, k=...)``, see
    ``response_method``) once on the fitted estimator and
    computes, for every k, ``"P@k"``, ``"nDCG@k"`` and (if ``propensity``)
    ``"PSP@k"``, defined as in :mod:`sklearn_slide.metrics`.  Use it as
    ``scoring=`` in ``GridSearchCV`` (with ``refit="P@1"``, say) or in
    :func:`sklearn_slide.model_selection.cross_validate_xmc`.

    Parameters
    ----------
    k_values : iterable of int, default=(1, 3, 5)
        Cut-offs to report.
    propensity : bool, default=True
        Also report PSP@k.  The inverse propensities come from the fitted
        estimator's training statistics ``label_counts_`` (array of shape
        ``(n_labels,)``) and ``n_samples_seen_`` (int); an estimator lacking
        them raises AttributeError.
    A, B : float, default=0.55, 1.5
        Constants of the propensity model, see
        :func:`~sklearn_slide.metrics.inverse_propensity`.
    response_method : {None, "predict_topk", "predict_proba"}, default=None
        How the estimator ranks the labels. "predict_topk": its
        ``predict_topk(X, k)``. "predict_proba": its ``predict_proba(X, k)``
        returning the top-k probabilities of each row as a sparse matrix
        (``SlideClassifier``'s scores every label exactly, whatever its
        ``inference``). None: the first of the two the estimator has.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)`` returning a dict of floats.

    Notes
    -----
    How the scorer reads its arguments:

    - ``estimator`` is anything with ``predict_topk(X, k) -> (labels,
      scores)`` (arrays of shape ``(n_samples, k)``, best first, label -1 for
      none) or with a ``predict_proba(X, k)`` returning a sparse
      ``(n_samples, n_labels)`` matrix of top-k probabilities (its largest
      stored entries rank first, ties to the smaller label), or a Pipeline
      whose last step has one (the earlier steps transform X first), or a
      fitted search object (its ``best_estimator_``).
    - ``y`` is a label indicator matrix (dense or sparse) whose columns are
      the estimator's labels, or 1-D class labels of a multiclass
      estimator: then the true label of a row is the position of ``y`` in
      ``classes_`` and ``predict_topk`` must return positions in
      ``classes_``.  A class absent from ``classes_`` counts as a true label
      that no prediction hits (with training count 0 for PSP).

    Examples
    --------
    >>> from sklearn_slide.metrics import xmc_scorer
    >>> xmc_scorer(k_values=(1, 5), propensity=False)
    <XMC scorer: P@1, P@5, nDCG@1, nDCG@5>
    """
    try:
        ks = [_check_k(k, "k_values") for k in k_values]
    except TypeError:
        raise ValueError(f"k_values must be an iterable of positive ints, got {k_values!r}") from None
    if not ks:
        raise ValueError("k_values must not be empty")
    ks = list(dict.fromkeys(ks))
    _check_bool(propensity, "propensity")
    _check_propensity_constants(A, B)
    if response_method is not None and response_method not in RESPONSE_METHODS:
        raise ValueError(
            f"response_method must be None or one of {RESPONSE_METHODS}, got {response_method!r}")
    prefixes = ["P", "nDCG"] + (["PSP"] if propensity else [])
    return _TopKScorer([(prefix, k) for prefix in prefixes for k in ks], A=A, B=B,
                       response_method=response_method)


def _single(prefix, k, A=0.55, B=1.5):
    k = _check_k(k)
    _check_propensity_constants(A, B)
    return _TopKScorer([(prefix, k)], single=True, A=A, B=B)


def precision_at_k_scorer(k=5):
    """Scorer ``scorer(estimator, X, y) -> float`` returning P@k.

    See :func:`xmc_scorer` for how the estimator and ``y`` are read.

    Parameters
    ----------
    k : int, default=5
        Cut-off.

    Returns
    -------
    scorer : callable

    Examples
    --------
    >>> from sklearn_slide.metrics import precision_at_k_scorer
    >>> precision_at_k_scorer(1)
    <XMC scorer: P@1>
    """
    return _single("P", k)


def recall_at_k_scorer(k=5):
    """Scorer ``scorer(estimator, X, y) -> float`` returning R@k.

    See :func:`xmc_scorer` for how the estimator and ``y`` are read.

    Parameters
    ----------
    k : int, default=5
        Cut-off.

    Returns
    -------
    scorer : callable
    """
    return _single("R", k)


def ndcg_at_k_scorer(k=5):
    """Scorer ``scorer(estimator, X, y) -> float`` returning nDCG@k.

    See :func:`xmc_scorer` for how the estimator and ``y`` are read.

    Parameters
    ----------
    k : int, default=5
        Cut-off.

    Returns
    -------
    scorer : callable
    """
    return _single("nDCG", k)


def psprecision_at_k_scorer(k=5, *, A=0.55, B=1.5):
    """Scorer ``scorer(estimator, X, y) -> float`` returning normalised PSP@k.

    Propensities come from the fitted estimator's ``label_counts_`` and
    ``n_samples_seen_``; see :func:`xmc_scorer`.

    Parameters
    ----------
    k : int, default=5
        Cut-off.
    A, B : float, default=0.55, 1.5
        Constants of the propensity model.

    Returns
    -------
    scorer : callable
    """
    return _single("PSP", k, A, B)


def psndcg_at_k_scorer(k=5, *, A=0.55, B=1.5):
    """Scorer ``scorer(estimator, X, y) -> float`` returning normalised PSnDCG@k.

    Propensities come from the fitted estimator's ``label_counts_`` and
    ``n_samples_seen_``; see :func:`xmc_scorer`.

    Parameters
    ----------
    k : int, default=5
        Cut-off.
    A, B : float, default=0.55, 1.5
        Constants of the propensity model.

    Returns
    -------
    scorer : callable
    """
    return _single("PSnDCG", k, A, B)
