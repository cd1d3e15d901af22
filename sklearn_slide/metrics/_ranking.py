"""Top-k ranking metrics of extreme multi-label classification.

Definitions follow the Extreme Classification Repository (and its reference
evaluation code, pyxclib), so numbers are comparable with published XMC
results:

- ``P@k = |top-k ∩ y| / k``;
- ``nDCG@k = DCG@k / IDCG@min(k, |y|)`` with ``DCG@k = sum_j hit_j / log2(j + 1)``;
- ``PSP@k`` and ``PSnDCG@k`` weight every hit by the label's inverse
  propensity (Jain et al., KDD 2016) and are normalised by the value of the
  best possible ranking, as a ratio of dataset means.

Every metric takes predictions either as top-k label ids (what
``predict_topk`` returns) or as a score matrix, and never materialises a
dense ``(n_samples, n_labels)`` array from sparse or top-k input.

Why one module of ~550 lines: every metric is a reduction of one object, the
tie-aware top-k ranking of each row and its hits (``_Ranking``), built from any
of the three kinds of prediction; the public functions are little more than
their docstrings (a third of the file). Splitting the metrics from the
ranking would separate each formula from the only data it reads.
"""

import numbers

import numpy as np
import scipy.sparse as sp

from .._memory import check_memory
from .._input import checked_csr
from .._targets import checked_label_ids

# Dense score matrices are ranked in row chunks of about this many entries,
# bounding the temporaries of the tie-aware top-k selection.
_SCORE_CHUNK = 1 << 22

# Bytes per ranked (row, position) pair: label ids, search keys and positions
# (int64), hits, gains and ideal gains (float64), sort temporaries.
_BYTES_PER_RANKED = 64


def _check_k(k, name="k"):
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"{name} must be a positive int, got {k!r}")
    return int(k)


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a bool, got {value!r}")


def _check_propensity_constants(A, B):
    for name, value in (("A", A), ("B", B)):
        if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)
                or not 0 < value < np.inf):
            raise ValueError(f"{name} must be a positive finite real number, got {value!r}")


def _as_indicator(y_true):
    """Canonical CSR copy of a binary indicator matrix (sorted, no zeros)."""
    if sp.issparse(y_true):
        if y_true.ndim != 2:
            raise ValueError(f"y_true must be 2-D, got shape {y_true.shape}")
        Y = sp.csr_matrix(checked_csr(y_true, "y_true"), copy=True)
        Y.sum_duplicates()  # also sorts the indices
        Y.eliminate_zeros()
        if Y.dtype.kind not in "biuf" or not np.all(Y.data == 1):
            raise ValueError("y_true must be a binary (0/1) label indicator matrix")
    else:
        y = np.asarray(y_true)
        if y.ndim != 2:
            raise ValueError(
                f"y_true must be a 2-D label indicator matrix, got shape {y.shape}"
            )
        if y.dtype.kind not in "biuf" or not np.all((y == 0) | (y == 1)):
            raise ValueError("y_true must be a binary (0/1) label indicator matrix")
        Y = sp.csr_matrix(y != 0)
    if Y.shape[0] == 0:
        raise ValueError("y_true has no samples")
    if Y.shape[1] == 0:
        raise ValueError("y_true has no label columns")
    return Y


def _top_k(y_pred, n_samples, n_labels, k, what):
    """Top-k label ids of every row, best first, ``-1`` where there is none.

    ``y_pred`` is an integer array of label ids (best first), or a dense or
    sparse score matrix of shape ``(n_samples, n_labels)``. A ranking never
    holds more than ``n_labels`` labels (nor, for sparse scores, more than a
    row's stored entries), so the result has ``min(k, n_labels)`` columns or
    fewer: a huge k costs no more than the labels there are.
    """
    if sp.issparse(y_pred):
        return _top_k_sparse(y_pred, n_samples, n_labels, k, what)
    y_pred = np.asarray(y_pred)
    if y_pred.ndim != 2 or y_pred.shape[0] != n_samples:
        raise ValueError(
            f"y_pred must be a 2-D array with {n_samples} rows like y_true, "
            f"got shape {y_pred.shape}"
        )
    if y_pred.dtype.kind in "iu":
        _check_ranking_memory(what, n_samples, min(k, n_labels, y_pred.shape[1]))
        return _check_label_ids(y_pred, n_labels, k)
    if y_pred.dtype.kind in "bf":
        return _top_k_dense(y_pred, n_labels, k, what)
    raise ValueError(
        "y_pred must hold integer label ids or real scores, got dtype "
        f"{y_pred.dtype}"
    )


def _check_label_ids(labels, n_labels, k):
    """The first ``min(k, n_labels)`` ranked ids of every row, as int64."""
    depth = min(k, n_labels)  # no ranking has more positions than there are labels
    if labels.shape[1] < depth:
        raise ValueError(
            f"y_pred holds only {labels.shape[1]} labels per row, fewer than k={k}; "
            "pad the rows with -1 (no label)"
        )
    return checked_label_ids(
        labels[:, :depth], n_labels, "y_pred",
        "; an integer y_pred is read as top-k label ids (best first): pass a score "
        "matrix as floats",
    )


def _check_ranking_memory(what, n_rows, depth, extra=0):
    check_memory(what, {"rankings": _BYTES_PER_RANKED * n_rows * depth, "scores": extra})


def _top_k_dense(scores, n_labels, k, what):
    if scores.shape[1] != n_labels:
        raise ValueError(
            f"a score matrix y_pred must have {n_labels} columns like y_true, "
            f"got shape {scores.shape}"
        )
    n_samples = scores.shape[0]
    width = min(k, n_labels)
    step = max(1, _SCORE_CHUNK // max(1, n_labels))
    # A chunk's float64 copy and the selection's temporaries (~5 per entry).
    _check_ranking_memory(what, n_samples, width, 40 * min(step, n_samples) * n_labels)
    labels = np.empty((n_samples, width), dtype=np.int64)
    for start in range(0, n_samples, step):
        S = scores[start:start + step].astype(np.float64, copy=False)
        if np.isnan(S).any():
            raise ValueError("y_pred contains NaN scores")
        labels[start:start + step] = _top_k_chunk(S, width)
    return labels


def _top_k_chunk(S, k):
    """Top-k columns of each row of S, ties broken towards the smaller label."""
    if k < S.shape[1]:
        kth = -np.partition(-S, k - 1, axis=1)[:, k - 1:k]
        above = S > kth
        # Among the labels tied with the k-th score, keep the smallest ids.
        tied = S == kth
        room = k - above.sum(axis=1, keepdims=True)
        take = above | (tied & (np.cumsum(tied, axis=1) <= room))
        cols = np.nonzero(take)[1].reshape(-1, k)  # row-major, so ids ascend
    else:
        cols = np.broadcast_to(np.arange(S.shape[1]), S.shape)
    order = np.argsort(-np.take_along_axis(S, cols, axis=1), axis=1, kind="stable")
    return np.take_along_axis(cols, order, axis=1)


def _top_k_sparse(scores, n_samples, n_labels, k, what):
    """Top-k stored entries of each row; absent entries are never predicted."""
    if scores.ndim != 2 or scores.shape != (n_samples, n_labels):
        raise ValueError(
            f"a sparse score matrix y_pred must have shape {(n_samples, n_labels)} "
            f"like y_true, got {scores.shape}"
        )
    S = sp.csr_matrix(checked_csr(scores, "y_pred"), copy=True)
    S.sum_duplicates()
    if S.dtype.kind not in "biuf":
        raise ValueError(f"y_pred must hold real scores, got dtype {S.dtype}")
    if np.isnan(S.data).any():
        raise ValueError("y_pred contains NaN scores")
    longest = int(np.diff(S.indptr).max(initial=0))
    width = min(k, n_labels, longest)
    _check_ranking_memory(what, n_samples, width, 32 * S.nnz)
    return _rank_rows(S.indptr, S.indices, S.data, width)


def _rank_rows(indptr, ids, values, k):
    """Per CSR row, the ids of the k largest values (ties: smaller id first).

    Returns an int64 ``(n_rows, k)`` array padded with -1.
    """
    n_rows = indptr.size - 1
    rows = np.repeat(np.arange(n_rows), np.diff(indptr))
    # Sorted rows stay the primary key, so rows[order] == rows.
    order = np.lexsort((ids, -np.asarray(values, dtype=np.float64), rows))
    rank = np.arange(order.size) - indptr[rows]
    keep = rank < k
    out = np.full((n_rows, k), -1, dtype=np.int64)
    out[rows[keep], rank[keep]] = ids[order][keep]
    return out


def _discounts(k):
    return 1.0 / np.log2(np.arange(2, k + 2))


def _check_inverse_propensity(inv_propensity, n_labels):
    w = np.asarray(inv_propensity, dtype=np.float64)
    if w.shape != (n_labels,):
        raise ValueError(
            f"inv_propensity must have shape ({n_labels},), one weight per label, "
            f"got {w.shape}"
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("inv_propensity must hold finite non-negative weights")
    return w


class _Ranking:
    """Hits of a top-k ranking against the truth, shared by all metrics.

    Each metric method returns the dataset-level value (a float).

    Parameters
    ----------
    Y : csr_matrix of shape (n_samples, n_labels)
        Canonical binary indicator (see ``_as_indicator``).
    labels : ndarray of shape (n_samples, width)
        Ranked label ids, ``-1`` for none.
    depth : int
        Positions the ranking stands for (the largest k asked for); the
        positions after ``width`` hold no label. ``width`` is at most the
        number of labels, whatever the depth, so a huge k allocates nothing
        more: P@k still divides by k.
    inv_propensity : ndarray of shape (n_labels,), default=None
        Needed by the propensity-scored metrics only.
    """

    def __init__(self, Y, labels, depth, inv_propensity=None):
        n_samples, n_labels = Y.shape
        self.depth = depth
        self.width = labels.shape[1]
        self.n_true = np.diff(Y.indptr)
        # Membership of (row, label) pairs by binary search in the sorted
        # keys of y_true: no dense matrix, O((nnz + n k) log nnz).
        true_keys = np.repeat(np.arange(n_samples, dtype=np.int64), self.n_true) * n_labels
        true_keys += Y.indices
        pred_keys = np.arange(n_samples, dtype=np.int64)[:, None] * n_labels + labels
        pos = np.minimum(np.searchsorted(true_keys, pred_keys), max(true_keys.size - 1, 0))
        self.hits = (labels >= 0) & (true_keys.size > 0)
        if true_keys.size:
            self.hits &= true_keys[pos] == pred_keys
        # A perfect ranking has min(depth, |y|) hits: the ideal values need
        # that many positions, at most the largest row of y_true.
        self.ideal_width = min(depth, int(self.n_true.max(initial=0)))
        self.discounts = _discounts(max(self.width, self.ideal_width))
        # IDCG of each row: the discounts of min(k, |y|) hits.
        self.cum_discounts = np.concatenate(([0.0], np.cumsum(self.discounts)))
        if inv_propensity is not None:
            w = _check_inverse_propensity(inv_propensity, n_labels)
            self.gains = np.where(self.hits, w[np.maximum(labels, 0)], 0.0)
            # Best achievable gains: each row's true labels by decreasing weight.
            self.ideal_gains = self._ideal_values(Y, w)

    def _ideal_values(self, Y, w):
        """Each row's true-label weights, largest first, as flat (row, rank, weight).

        Flat rather than an (n_samples, depth) array: one row with many
        labels would otherwise make the array that wide for every row.
        """
        rows = np.repeat(np.arange(Y.shape[0]), self.n_true)
        values = w[Y.indices]
        order = np.lexsort((-values, rows))
        rank = np.arange(order.size) - Y.indptr[rows]
        return rows, rank, values[order]

    def _ideal_sum(self, k, discounted):
        """Per row, the sum of its first k ideal gains (discounted by rank)."""
        rows, rank, values = self.ideal_gains
        keep = rank < min(k, self.ideal_width)
        weights = values[keep] * (self.discounts[rank[keep]] if discounted else 1.0)
        return np.bincount(rows[keep], weights=weights, minlength=self.n_true.size)

    def _check(self, k):
        k = _check_k(k)
        if k > self.depth:
            raise ValueError(f"k={k} exceeds the {self.depth} ranked positions")
        return k

    def _idcg(self, k):
        # min(|y|, k) never exceeds ideal_width; capping k first keeps a huge
        # k out of NumPy integer arithmetic.
        return self.cum_discounts[np.minimum(self.n_true, min(k, self.ideal_width))]

    def _ranked(self, values, k):
        """The first k positions of ``values`` that exist (the rest hold no label)."""
        return values[:, :min(k, values.shape[1])]

    def precision(self, k):
        k = self._check(k)
        return float(np.mean(self._ranked(self.hits, k).sum(axis=1) / k))

    def recall(self, k):
        k = self._check(k)
        hits = self._ranked(self.hits, k).sum(axis=1)
        return float(np.mean(hits / np.maximum(self.n_true, 1)))

    def _dcg(self, values, k):
        ranked = self._ranked(values, k)
        return ranked @ self.discounts[:ranked.shape[1]]

    def ndcg(self, k):
        k = self._check(k)
        dcg = self._dcg(self.hits, k)
        return float(np.mean(dcg / np.maximum(self._idcg(k), np.finfo(float).tiny)))

    def psprecision(self, k, normalize=True):
        k = self._check(k)
        score = self._ranked(self.gains, k).sum(axis=1) / k
        if not normalize:
            return float(score.mean())
        best = self._ideal_sum(k, discounted=False).sum() / k
        return float(score.sum() / best) if best > 0 else 0.0

    def psndcg(self, k, normalize=True):
        k = self._check(k)
        idcg = np.maximum(self._idcg(k), np.finfo(float).tiny)
        score = self._dcg(self.gains, k) / idcg
        if not normalize:
            return float(score.mean())
        best = (self._ideal_sum(k, discounted=True) / idcg).sum()
        return float(score.sum() / best) if best > 0 else 0.0


def _ranking(y_true, y_pred, k, what, inv_propensity=None):
    k = _check_k(k)
    Y = _as_indicator(y_true)
    labels = _top_k(y_pred, Y.shape[0], Y.shape[1], k, what)
    return _Ranking(Y, labels, k, inv_propensity), k


_Y_DOC = """y_true : {array-like, sparse matrix} of shape (n_samples, n_labels)
        Binary label indicator matrix (dense or any scipy sparse format).
    y_pred : {array-like, sparse matrix}
        Either the ranked label ids of every row, an integer array of shape
        ``(n_samples, k')`` with ``k' >= k``, best first, where ``-1`` means
        "no label" (as returned by ``predict_topk``); or a score matrix of
        shape ``(n_samples, n_labels)``, dense float or sparse, from which the
        top ``k`` labels of each row are taken (ties go to the smaller label
        id; for a sparse matrix only stored entries are candidates).
        An integer dense array is always read as label ids."""


def precision_at_k(y_true, y_pred, k=5):
    """Precision at k: the fraction of the top-k predictions that are relevant.

    ``P@k = mean over rows of |top-k ∩ y| / k``.  A row without true labels
    scores 0, as in the XC repository.

    Parameters
    ----------
    {Y_DOC}
    k : int, default=5
        Number of top-ranked labels to evaluate.

    Returns
    -------
    score : float
        Mean P@k over the rows, in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_slide.metrics import precision_at_k
    >>> y_true = np.array([[1, 0, 1, 0], [0, 1, 0, 0]])
    >>> top = np.array([[2, 1], [3, -1]])
    >>> precision_at_k(y_true, top, k=2)
    0.25
    """
    ranking, k = _ranking(y_true, y_pred, k, "precision_at_k")
    return ranking.precision(k)


def recall_at_k(y_true, y_pred, k=5):
    """Recall at k: the fraction of a row's relevant labels in its top k.

    ``R@k = mean over rows of |top-k ∩ y| / |y|``.  A row without true
    labels scores 0.

    Parameters
    ----------
    {Y_DOC}
    k : int, default=5
        Number of top-ranked labels to evaluate.

    Returns
    -------
    score : float
        Mean R@k over the rows, in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_slide.metrics import recall_at_k
    >>> y_true = np.array([[1, 0, 1, 0], [0, 1, 0, 0]])
    >>> recall_at_k(y_true, np.array([[2, 1], [1, 0]]), k=2)
    0.75
    """
    ranking, k = _ranking(y_true, y_pred, k, "recall_at_k")
    return ranking.recall(k)


def ndcg_at_k(y_true, y_pred, k=5):
    """Normalised discounted cumulative gain at k, with binary relevance.

    ``DCG@k = sum_{j=1..k} hit_j / log2(j + 1)`` is divided by the DCG of
    a perfect ranking, whose ``min(k, |y|)`` first labels are all hits.  A
    row without true labels scores 0.  For binary relevance and untied scores
    this equals scikit-learn's ``ndcg_score(y_true, y_score, k=k)``, which
    needs dense ``(n_samples, n_labels)`` inputs.

    Parameters
    ----------
    {Y_DOC}
    k : int, default=5
        Number of top-ranked labels to evaluate.

    Returns
    -------
    score : float
        Mean nDCG@k over the rows, in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_slide.metrics import ndcg_at_k
    >>> y_true = np.array([[1, 0, 1, 0]])
    >>> round(ndcg_at_k(y_true, np.array([[1, 2]]), k=2), 4)  # (1/log2(3)) / (1 + 1/log2(3))
    0.3869
    """
    ranking, k = _ranking(y_true, y_pred, k, "ndcg_at_k")
    return ranking.ndcg(k)


def psprecision_at_k(y_true, y_pred, k=5, *, inv_propensity, normalize=True):
    """Propensity-scored precision at k (Jain et al., KDD 2016).

    Every hit counts its label's inverse propensity, so rare (tail) labels
    weigh more: ``PSP@k = mean over rows of sum_{l in top-k ∩ y} w_l / k``.
    With ``normalize=True`` (the XC repository's reported number) this is
    divided by the same mean for the best possible ranking, which puts each
    row's true labels with the largest ``w_l`` first: the result is in
    [0, 1], and 1 means no ranking could do better.  The normalisation is a
    ratio of means over the dataset (as in pyxclib), not a mean of per-row
    ratios.  Rows without true labels add 0 to both.

    Parameters
    ----------
    {Y_DOC}
    k : int, default=5
        Number of top-ranked labels to evaluate.
    inv_propensity : array-like of shape (n_labels,)
        Inverse propensity ``w_l`` of every label, e.g. from
        :func:`inverse_propensity` on the training label counts.
    normalize : bool, default=True
        Divide by the best achievable value.  False gives Jain et al.'s
        unnormalised PSP@k.

    Returns
    -------
    score : float
        PSP@k; 0 if no row has a true label.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_slide.metrics import psprecision_at_k
    >>> y_true = np.array([[1, 0, 1]])
    >>> w = np.array([1.0, 1.0, 3.0])
    >>> psprecision_at_k(y_true, np.array([[0]]), k=1, inv_propensity=w)  # 1 / 3
    0.3333333333333333
    """
    _check_bool(normalize, "normalize")
    ranking, k = _ranking(y_true, y_pred, k, "psprecision_at_k", inv_propensity)
    return ranking.psprecision(k, normalize)


def psndcg_at_k(y_true, y_pred, k=5, *, inv_propensity, normalize=True):
    """Propensity-scored nDCG at k (Jain et al., KDD 2016).

    Each hit at rank ``j`` gains ``w_l / log2(j + 1)``; every row is divided
    by its ideal binary DCG over ``min(k, |y|)`` ranks, as nDCG@k.  With
    ``normalize=True`` (the XC repository's reported number) the mean is
    divided by the same mean for the best possible ranking (each row's true
    labels by decreasing ``w_l``), a ratio of dataset means as in pyxclib.

    Parameters
    ----------
    {Y_DOC}
    k : int, default=5
        Number of top-ranked labels to evaluate.
    inv_propensity : array-like of shape (n_labels,)
        Inverse propensity of every label, see :func:`inverse_propensity`.
    normalize : bool, default=True
        Divide by the best achievable value.

    Returns
    -------
    score : float
        PSnDCG@k; 0 if no row has a true label.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_slide.metrics import psndcg_at_k
    >>> y_true = np.array([[1, 0, 1]])
    >>> w = np.array([1.0, 1.0, 3.0])
    >>> psndcg_at_k(y_true, np.array([[2, 0]]), k=2, inv_propensity=w)  # ideal order
    1.0
    """
    _check_bool(normalize, "normalize")
    ranking, k = _ranking(y_true, y_pred, k, "psndcg_at_k", inv_propensity)
    return ranking.psndcg(k, normalize)


for _function in (precision_at_k, recall_at_k, ndcg_at_k, psprecision_at_k, psndcg_at_k):
    _function.__doc__ = _function.__doc__.replace("{Y_DOC}", _Y_DOC)
del _function


def inverse_propensity(label_counts, n_samples, A=0.55, B=1.5):
    """Inverse propensities of labels, the weights of PSP@k and PSnDCG@k.

    Jain, Prabhu and Varma (KDD 2016) model the probability ``p_l`` that a
    relevant label ``l`` is observed as a function of its training frequency
    ``N_l`` among ``N`` samples::

        1 / p_l = 1 + C (N_l + B) ** -A,   C = (ln N - 1) (B + 1) ** A

    Parameters
    ----------
    label_counts : array-like of shape (n_labels,)
        Number of training samples tagged with each label.
    n_samples : int
        Number of training samples ``N``.
    A, B : float, default=0.55, 1.5
        Dataset constants of the model; the XC repository uses 0.55 and 1.5
        in general, 0.6 and 2.6 for Amazon, 0.5 and 0.4 for Wikipedia.

    Returns
    -------
    inv_propensity : ndarray of shape (n_labels,)
        ``1 / p_l`` for every label (>= 1).

    Notes
    -----
    For ``N < e`` the formula's ``C`` would be negative; it is clipped to 0,
    so every label gets weight 1.

    Examples
    --------
    >>> from sklearn_slide.metrics import inverse_propensity
    >>> inverse_propensity([0, 10, 1000], n_samples=1000).round(3)
    array([8.824, 3.552, 1.219])
    """
    counts = np.asarray(label_counts, dtype=np.float64)
    if counts.ndim != 1:
        raise ValueError(f"label_counts must be 1-D, got shape {counts.shape}")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError("label_counts must hold finite non-negative counts")
    n_samples = _check_k(n_samples, "n_samples")
    _check_propensity_constants(A, B)
    with np.errstate(over="ignore", invalid="ignore"):
        C = max(0.0, (np.log(n_samples) - 1.0) * np.power(np.float64(B) + 1.0, A))
        weights = 1.0 + C * np.power(counts + B, -float(A))
    if not np.all(np.isfinite(weights)):
        raise ValueError(
            f"A={A!r} and B={B!r} give infinite inverse propensities; the XC repository "
            "uses A in [0.4, 0.6] and B in [0.4, 2.6]"
        )
    return weights
