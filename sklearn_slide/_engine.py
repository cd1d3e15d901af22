"""The one module that imports the compiled engine; thin helpers around it.

Everything numerical happens in C++ (``cpp/``); this module only resolves the
thread count and hands over buffers in the exact dtypes the binding checks.
"""

import numpy as np
import scipy.sparse as sp

from . import _slide_core as core

__all__ = [
    "active_kernels",
    "available_kernels",
    "bucket_indices",
    "core",
    "csr_buffers",
    "hash_codes",
    "resolve_n_threads",
    "select_kernels",
]


def resolve_n_threads(n_threads):
    """``None`` means OpenMP's thread count now (honours OMP_NUM_THREADS,
    threadpoolctl and joblib worker limits); a positive int is used as is."""
    if n_threads is None:
        return max(1, int(core.omp_max_threads()))
    return int(n_threads)


def csr_buffers(X):
    """(indptr int64, indices int32, data float32) of a CSR matrix, copying only
    when a dtype differs. The binding checks the structure again."""
    if not sp.issparse(X) or X.format != "csr":
        raise TypeError("expected a CSR matrix")
    indptr = np.ascontiguousarray(X.indptr, dtype=np.int64)
    indices = np.ascontiguousarray(X.indices, dtype=np.int32)
    data = np.ascontiguousarray(X.data, dtype=np.float32)
    return indptr, indices, data


def hash_codes(family, X, codes_per_table, n_tables, seed):
    """Codes (n, n_tables * codes_per_table) of the rows of dense float32 X."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    return core.hash_codes(family, X, int(codes_per_table), int(n_tables), int(seed))


def bucket_indices(family, X, codes_per_table, n_tables, seed, table_bits):
    """Bucket index in each table (n, n_tables) of the rows of dense float32 X."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    return core.bucket_indices(
        family, X, int(codes_per_table), int(n_tables), int(seed), int(table_bits)
    )


available_kernels = core.available_kernels
active_kernels = core.active_kernels
select_kernels = core.select_kernels
