"""Turning scikit-learn targets into the engine's label lists and back.

The engine sees every target as a CSR pattern (row -> ids of its true labels):
- 1-D binary/multiclass y: one id per row, the position of y in ``classes_``;
- multilabel indicator y (dense or CSR): the nonzero columns of the row.
"""

from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.utils.multiclass import type_of_target

from ._memory import check_memory


class TargetKind:
    MULTICLASS = "multiclass"
    MULTILABEL = "multilabel"


def target_kind(y):
    """'multiclass' or 'multilabel'; ValueError for anything a classifier cannot learn."""
    kind = type_of_target(y, input_name="y")
    if kind in ("binary", "multiclass"):
        return TargetKind.MULTICLASS
    if kind == "multilabel-indicator":
        check_indicator_values(y)
        return TargetKind.MULTILABEL
    raise ValueError(
        f"Unknown label type: {kind!r}. SlideClassifier takes 1-D class labels "
        "(binary or multiclass) or a multilabel indicator matrix (dense or CSR) of 0/1."
    )


def check_indicator_values(y, name="y"):
    """ValueError unless the multilabel indicator ``y`` holds only 0 and 1.

    scikit-learn calls any two-valued 2-D y a multilabel indicator, but reads
    it as {0, 1}; a {-1, +1} indicator would otherwise train as if every label
    were relevant on every row, and score 1.0.
    """
    values = y.tocsr().data if sp.issparse(y) else np.asarray(y)
    if values.dtype.kind == "b":
        return
    other = ~((values == 0) | (values == 1))
    if np.any(other):
        raise ValueError(
            f"{name} is a multilabel indicator with values other than 0 and 1 (e.g. "
            f"{values[other].flat[0].item()!r}); scikit-learn's multilabel indicator is {{0, 1}}: "
            f"map it first, e.g. {name} = ({name} > 0).astype(int)"
        )


def classes_of(y, kind):
    """The classes a fit learns from y: its sorted values, or the indicator's columns."""
    if kind == TargetKind.MULTICLASS:
        classes = np.unique(y)
    else:
        classes = np.arange(y.shape[1])
        if (y.nnz if sp.issparse(y) else np.count_nonzero(y)) == 0:
            raise ValueError("y has no positive label: every row of the indicator is empty")
    if len(classes) < 2:
        raise ValueError(
            f"SlideClassifier needs at least 2 classes (labels); y has {len(classes)} class"
        )
    return classes


def classes_for_partial_fit(y, kind, classes):
    """The classes of a first ``partial_fit`` call: ``classes`` (required for 1-D y),
    or the indicator's columns."""
    if kind == TargetKind.MULTICLASS:
        if classes is None:
            raise ValueError(
                "classes must be passed on the first call to partial_fit with 1-D y"
            )
        classes = _as_model_classes(classes, kind)
    else:
        n_labels = y.shape[1]
        classes = np.arange(n_labels) if classes is None else _as_model_classes(classes, kind)
        if len(classes) != n_labels:
            raise ValueError(
                f"classes has {len(classes)} entries but y has {n_labels} label columns"
            )
    if len(classes) < 2:
        raise ValueError("SlideClassifier needs at least 2 classes (labels)")
    return classes


def _as_model_classes(classes, kind):
    """``classes`` as a model stores them: sorted and unique for 1-D y (as
    ``np.unique(y)`` in fit), one name per column, in order, for an indicator."""
    classes = np.asarray(classes)
    if classes.ndim != 1:
        raise ValueError(f"classes must be a 1-D array-like, got shape {classes.shape}")
    return np.unique(classes) if kind == TargetKind.MULTICLASS else classes


def check_same_classes(classes, kind, fitted_classes):
    """ValueError when a later ``partial_fit`` passes other classes than the first
    (in any order and with repeats for 1-D y, as the first call took them)."""
    if classes is None:
        return
    classes = _as_model_classes(classes, kind)
    if not np.array_equal(classes, fitted_classes):
        raise ValueError(
            f"classes {classes[:10].tolist()} differ from the classes of the first "
            f"partial_fit call {fitted_classes[:10].tolist()}"
        )


def check_same_target_kind(kind, fitted_kind):
    """ValueError when training continues on another kind of target than the model's."""
    if kind != fitted_kind:
        raise ValueError(f"y is {kind} but the model was fitted on {fitted_kind} targets")


def class_positions(y, classes):
    """The position in ``classes`` (any order, no repeats) of each value of 1-D
    ``y``: its label id; ``len(classes)`` for a value not in ``classes``."""
    classes = np.asarray(classes)
    sorter = np.argsort(classes, kind="stable")
    found = sorter[np.minimum(np.searchsorted(classes, y, sorter=sorter), classes.size - 1)]
    return np.where(classes[found] == y, found, classes.size)


def label_lists(y, kind, classes):
    """CSR (n, n_labels) float32 pattern of the true labels of each row.

    For multiclass y, values outside ``classes`` raise ValueError.
    """
    n_labels = len(classes)
    if kind == TargetKind.MULTICLASS:
        y = np.asarray(y)
        ids = class_positions(y, classes)
        unknown = ids == n_labels
        if np.any(unknown):
            raise ValueError(
                f"y contains labels not in classes: {np.unique(y[unknown])[:10].tolist()}"
            )
        n = y.shape[0]
        return sp.csr_matrix(
            (np.ones(n, dtype=np.float32), ids.astype(np.int32), np.arange(n + 1)),
            shape=(n, n_labels),
        )
    Y = sp.csr_matrix(y) if not sp.issparse(y) else y.tocsr()
    if Y.shape[1] != n_labels:
        raise ValueError(
            f"y has {Y.shape[1]} label columns but the model has {n_labels} labels"
        )
    Y = Y.copy()
    Y.eliminate_zeros()
    Y.sum_duplicates()
    Y.data = np.ones_like(Y.data, dtype=np.float32)
    return Y


def label_counts(Y_pattern):
    """Number of training rows carrying each label (int64)."""
    return np.bincount(Y_pattern.indices, minlength=Y_pattern.shape[1]).astype(np.int64)


def topk_to_indicator(labels, n_labels, *, sparse=True, dtype=np.int64):
    """Indicator matrix (n, n_labels) with ones at the top-k ``labels`` (n, k).

    ``labels`` holds label ids in ``[0, n_labels)``, each at most once per row,
    or -1 (fewer than k labels available), which is skipped. Returns CSR when
    ``sparse``, else a dense array; ``dtype`` is the dtype of its values.
    """
    if isinstance(n_labels, (bool, np.bool_)) or not isinstance(n_labels, Integral) \
            or n_labels < 1:
        raise ValueError(f"n_labels must be a positive int, got {n_labels!r}")
    if not isinstance(sparse, (bool, np.bool_)):
        raise ValueError(f"sparse must be a bool, got {sparse!r}")
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a numeric dtype, got {dtype!r}") from None
    if dtype.kind not in "biuf":
        raise TypeError(f"dtype must be a numeric dtype, got {dtype}")
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be a 2-D array (n_samples, k), got shape {labels.shape}")
    if labels.size and labels.dtype.kind not in "iu":
        raise TypeError(f"labels must hold integer label ids, got dtype {labels.dtype}")
    labels = checked_label_ids(labels, n_labels, "labels")
    n = labels.shape[0]
    if not sparse:
        check_memory("topk_to_indicator", {"dense indicator": n * n_labels * dtype.itemsize})
    valid = labels >= 0
    indptr = np.concatenate([[0], np.cumsum(valid.sum(axis=1))])
    indices = labels[valid]
    data = np.ones(indices.shape[0], dtype=dtype)
    indicator = sp.csr_matrix((data, indices, indptr), shape=(n, n_labels))
    indicator.sort_indices()
    return indicator if sparse else indicator.toarray()


def checked_label_ids(labels, n_labels, name, repeat_hint=""):
    """int64 copy of a 2-D integer array of ranked label ids, after checking
    that they are in ``[-1, n_labels)`` (-1: no label) and unique in each row."""
    # Range check before the cast: a uint64 id of 2**64 - 1 would become -1.
    if labels.size and (labels.min() < -1 or labels.max() >= n_labels):
        raise ValueError(
            f"label ids in {name} must be in [-1, {n_labels}) (-1 means no label), "
            f"got values in [{labels.min()}, {labels.max()}]"
        )
    labels = labels.astype(np.int64)
    ordered = np.sort(labels, axis=1)
    if np.any((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)):
        raise ValueError(f"{name} repeats a label within a row{repeat_hint}")
    return labels
