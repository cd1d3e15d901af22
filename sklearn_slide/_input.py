"""Input validation of X and y, done once per call at the public methods.

``check_sparse_structure`` is the shared check of a sparse matrix's index
arrays: every public function that takes a sparse matrix (the estimator,
``sklearn_slide.metrics``, ``sklearn_slide.datasets.dump_xc``) should call it
first, since scipy trusts arrays that were modified after construction.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.utils import column_or_1d
from sklearn.utils.multiclass import check_classification_targets

from ._compat import validate_data

__all__ = ["as_canonical_csr", "check_sparse_structure", "validate_prediction_data",
           "validate_training_data"]


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
    of bounds. Formats converted by Python code (LIL, DOK, DIA) are checked
    after their conversion to CSR, by the engine's binding.
    """
    if not sp.issparse(A) or A.format not in ("csr", "csc", "bsr", "coo"):
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


def _check_index_dtype(index, name):
    if index.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {index.dtype}")


def _check_index_range(index, size, what):
    if index.size:
        low, high = index.min(), index.max()
        if low < 0 or high >= size:
            bad = low if low < 0 else high
            raise ValueError(f"{what} {bad} out of range [0, {size})")
