"""Input validation of X and y, done once per call at the public methods.

``check_sparse_structure`` is the shared check of a sparse matrix's index
arrays: every public function that takes a sparse matrix (the estimator,
``sklearn_slide.metrics``, ``sklearn_slide.datasets.dump_xc``,
``cross_validate_xmc``, the Dask helpers) calls it first, or ``checked_csr``,
since scipy trusts arrays that were modified after construction: converting
or slicing a damaged CSC/COO/DIA/LIL matrix wrote out of bounds (a crash) or
read uninitialised memory (silent garbage).

X passes three checks per call, each once and in this order, because each
needs what the one before guarantees:

1. ``check_sparse_structure`` on X as given: the storage is safe to convert
   (scipy's own conversions, run next, trust the index arrays).
2. scikit-learn's ``validate_data``: the estimator contract (dense or any
   sparse format to CSR float32, n_features_in_ / feature_names_in_, NaN and
   infinity refused with scikit-learn's messages, empty input, ...).
3. ``as_canonical_csr`` on the CSR it returns: sorted, duplicate-free indices
   and no stored zeros, so that a fit depends only on X's values.

The engine checks the CSR's index ranges once more when it takes the arrays
(once per fit, ``_engine.training_data``, and once per prediction call): it
trusts no caller. Merging 1-3 into one pass would mean re-implementing
``validate_data`` and gain little: on a CSR of 15M entries the three cost a
fraction of a per cent of one training epoch (benchmarks/NOTES.md, "Issue 13:
the checks of X per fit").
"""

import itertools

import numpy as np
import scipy.sparse as sp
from sklearn.utils import column_or_1d
from sklearn.utils.multiclass import check_classification_targets

from ._compat import validate_data

__all__ = ["as_canonical_csr", "check_sparse_structure", "checked_csr",
           "validate_prediction_data", "validate_training_data"]


def validate_training_data(estimator, X, y, reset):
    """(X as canonical CSR float32, y as 1-D labels or CSR/dense indicator);
    ``reset``: X defines the estimator's n_features_in_ (scikit-learn's validate_data)."""
    if y is None:
        raise ValueError("requires y to be passed, but the target y is None")
    check_sparse_structure(X, "X")
    check_sparse_structure(y, "y")
    X, y = validate_data(
        estimator, X, y, accept_sparse="csr", dtype=np.float32, multi_output=True, reset=reset
    )
    if not sp.issparse(y) and y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    if sp.issparse(y):
        y = y.tocsr()
    check_classification_targets(y)
    return as_canonical_csr(X), y


def validate_prediction_data(estimator, X):
    """X as canonical CSR float32 with the fitted number of features."""
    check_sparse_structure(X, "X")
    X = validate_data(estimator, X, accept_sparse="csr", dtype=np.float32, reset=False)
    return as_canonical_csr(X)


def as_canonical_csr(X):
    """CSR float32 with sorted, duplicate-free indices and no stored zeros.

    Unsorted or duplicate column indices are handled as scipy defines them
    (duplicates are summed) and explicit zeros are dropped, on a copy: the
    result depends only on the matrix's values, as for its dense equivalent.
    (A stored zero would mark its feature's weights as touched and move them
    by Adam's momentum.) Canonical form is recomputed rather than read from
    scipy's cached flag, which goes stale when ``.indices`` is modified in place.
    """
    X = sp.csr_matrix(X) if not sp.issparse(X) else X.tocsr()
    if X.shape[1] >= np.iinfo(np.int32).max:
        raise ValueError(f"X has {X.shape[1]} features; at most 2**31 - 2 are supported")
    nnz = int(X.indptr[-1])
    if (
        X.indices.shape[0] != nnz
        or X.data.shape[0] != nnz
        or not is_canonical(X)
        or not np.all(X.data)
    ):
        X = X.copy()
        X.has_sorted_indices = False
        X.has_canonical_format = False
        X.sum_duplicates()  # sorts, sums duplicates and drops unused storage
        X.eliminate_zeros()
    return X


def is_canonical(X):
    """Whether every row's column indices strictly increase (X's structure is
    checked). A new matrix over the same arrays has no cached flag to trust."""
    fresh = sp.csr_matrix((X.data, X.indices, X.indptr), shape=X.shape, copy=False)
    return bool(fresh.has_canonical_format)


def check_sparse_structure(A, name):
    """ValueError for a sparse matrix whose index arrays are inconsistent.

    scipy only checks them on construction; a matrix whose ``indptr`` or
    ``indices`` were modified afterwards (or built with checks off) would make
    scipy's own conversions (e.g. CSC to CSR) and the engine read or write out
    of bounds. For the formats scipy converts with Python code (LIL, DOK, DIA)
    the arrays those conversions trust are checked here; the indices they
    produce are checked again in CSR form (``checked_csr``, and the binding).
    """
    if not sp.issparse(A):
        return
    if A.format in ("lil", "dok", "dia"):
        _check_python_formats(A, name)
        return
    if A.format not in ("csr", "csc", "bsr", "coo"):
        return
    if A.ndim != 2:
        raise ValueError(f"{name} must be a 2-D sparse matrix, got shape {A.shape}")
    n_rows, n_cols = A.shape
    if A.format == "coo":
        coords = (A.row, A.col)
        for axis, (index, size) in enumerate(zip(coords, (n_rows, n_cols))):
            index = np.asarray(index)
            _check_index_dtype(index, f"{name} {('row', 'column')[axis]} indices")
            if index.shape != np.shape(A.data):
                raise ValueError(f"{name}: COO row, column and data arrays differ in length")
            _check_index_range(index, size, f"{name}: {('row', 'column')[axis]} index")
        return
    if A.format == "bsr":
        block_rows, block_cols = A.blocksize
        n_major, n_minor = n_rows // block_rows, n_cols // block_cols
    else:
        n_major, n_minor = (n_rows, n_cols) if A.format == "csr" else (n_cols, n_rows)
    indptr, indices = np.asarray(A.indptr), np.asarray(A.indices)
    _check_index_dtype(indptr, f"{name}.indptr")
    _check_index_dtype(indices, f"{name}.indices")
    if indptr.ndim != 1 or indptr.shape[0] != n_major + 1:
        raise ValueError(
            f"{name}.indptr has shape {indptr.shape}; a {A.format.upper()} matrix of shape "
            f"{A.shape} needs {n_major + 1} entries"
        )
    if indptr[0] != 0:
        raise ValueError(f"{name}.indptr must start at 0, got {indptr[0]}")
    if n_major and np.any(indptr[1:] < indptr[:-1]):
        raise ValueError(f"{name}.indptr must be non-decreasing")
    nnz = int(indptr[-1])
    if indices.ndim != 1 or nnz > indices.shape[0] or nnz > np.shape(A.data)[0]:
        raise ValueError(
            f"{name}.indptr ends at {nnz} but {name}.indices and {name}.data hold "
            f"{indices.shape[0] if indices.ndim == 1 else indices.shape} and "
            f"{np.shape(A.data)[0]} entries"
        )
    what = "column" if A.format != "csc" else "row"
    _check_index_range(indices[:nnz], n_minor, f"{name}: {what} index")


def checked_csr(A, name):
    """Sparse ``A`` as CSR, its storage checked before and after the conversion
    (a LIL row index out of range survives the conversion).

    May return ``A`` itself when it is CSR already: copy before modifying it.
    """
    check_sparse_structure(A, name)
    csr = A.tocsr()
    if csr is not A:
        check_sparse_structure(csr, name)
    return csr


def _check_python_formats(A, name):
    """Checks of the LIL, DOK and DIA storage that scipy's conversions rely on."""
    if A.format not in ("lil", "dok", "dia"):
        return
    if A.ndim != 2:
        raise ValueError(f"{name} must be a 2-D sparse matrix, got shape {A.shape}")
    n_rows, n_cols = A.shape
    if A.format == "lil":
        _check_lil(A, name, n_rows)
    elif A.format == "dok":
        _check_dok(A, name, n_rows, n_cols)
    else:
        _check_dia(A, name, n_rows, n_cols)


def _check_lil(A, name, n_rows):
    rows, data = A.rows, A.data
    for what, array in (("rows", rows), ("data", data)):
        if not isinstance(array, np.ndarray) or array.shape != (n_rows,):
            raise ValueError(
                f"{name}.{what} must be an array of {n_rows} lists (one per row), got "
                f"{getattr(array, 'shape', type(array).__name__)}"
            )
    try:
        row_lengths = np.fromiter(map(len, rows), dtype=np.int64, count=n_rows)
        data_lengths = np.fromiter(map(len, data), dtype=np.int64, count=n_rows)
    except TypeError:
        raise TypeError(f"{name}.rows and {name}.data must hold one list per row") from None
    differ = np.flatnonzero(row_lengths != data_lengths)
    if differ.size:
        row = int(differ[0])
        raise ValueError(
            f"{name}: row {row} has {row_lengths[row]} column indices but "
            f"{data_lengths[row]} values"
        )
    ids = np.array(list(itertools.chain.from_iterable(rows)))
    if ids.size and ids.dtype.kind not in "iu":
        raise TypeError(f"{name}.rows must hold integer column indices, got dtype {ids.dtype}")


def _check_dok(A, name, n_rows, n_cols):
    keys = np.array(list(A.keys()))
    if keys.size == 0:
        return
    if keys.ndim != 2 or keys.shape[1] != 2 or keys.dtype.kind not in "iu":
        raise TypeError(f"{name}: the keys of a DOK matrix must be (row, column) integer pairs")
    for axis, size in enumerate((n_rows, n_cols)):
        low, high = keys[:, axis].min(), keys[:, axis].max()
        if low < 0 or high >= size:
            what = ("row", "column")[axis]
            raise ValueError(f"{name}: {what} index {low if low < 0 else high} out of range "
                             f"[0, {size})")


def _check_dia(A, name, n_rows, n_cols):
    offsets, data = np.asarray(A.offsets), np.asarray(A.data)
    if offsets.ndim != 1 or offsets.dtype.kind not in "iu":
        raise TypeError(f"{name}.offsets must be a 1-D integer array, got "
                        f"{offsets.dtype} of shape {offsets.shape}")
    if data.ndim != 2 or data.shape[0] != offsets.shape[0]:
        raise ValueError(
            f"{name}.data has shape {data.shape}; a DIA matrix with {offsets.shape[0]} "
            "offsets needs one row of data per offset"
        )
    if offsets.size:
        low, high = offsets.min(), offsets.max()
        if low < -n_rows or high > n_cols:
            raise ValueError(f"{name}.offsets holds diagonal {low if low < -n_rows else high} "
                             f"outside [-{n_rows}, {n_cols}]")
        if np.unique(offsets).size != offsets.size:
            raise ValueError(f"{name}.offsets repeats a diagonal")


def _check_index_dtype(index, name):
    if index.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {index.dtype}")


def _check_index_range(index, size, what):
    if index.size:
        low, high = index.min(), index.max()
        if low < 0 or high >= size:
            bad = low if low < 0 else high
            raise ValueError(f"{what} {bad} out of range [0, {size})")
