"""The seam to the compiled engine: the one module that imports ``_slide_core``.

Everything numerical happens in C++ (``cpp/``); the functions here hand over
the model's arrays and CSR matrices in the exact dtypes the binding checks,
and resolve the thread count. The estimator's modules call only these; so do
the tests of the engine itself (binding checks, hash families, kernels).
"""

import numpy as np
import scipy.sparse as sp

from ._openmp_wait import passive_wait_while_loading

with passive_wait_while_loading():
    from . import _slide_core as _core

CORE_FILE = _core.__file__  # which compiled engine was loaded (tools/fuzz_long.py --which)

__all__ = [
    "BOUNDS",
    "HASH_FAMILIES",
    "active_kernels",
    "available_kernels",
    "bucket_indices",
    "code_bits",
    "csr_buffers",
    "hash_codes",
    "linear_scores",
    "pack_output_bf16",
    "predict_scores",
    "predict_topk",
    "rebuild_tables",
    "effective_n_threads",
    "select_kernels",
    "train_epoch",
    "training_config",
    "train_linear_reranker",
    "training_data",
]

# Upper bounds of integer parameters ({"n_threads", "hash_bits", "n_tables"}: int)
# and the hash family names, as the engine defines them (cpp/slide/bounds.h).
BOUNDS = dict(_core.BOUNDS)
HASH_FAMILIES = tuple(_core.HASH_FAMILIES)


def effective_n_threads(n_threads=None):
    """The threads the engine runs with for ``SlideClassifier(n_threads=...)``.

    Parameters
    ----------
    n_threads : int or None, default=None
        ``None`` means OpenMP's thread count now (honours OMP_NUM_THREADS,
        threadpoolctl and joblib worker limits): what ``fit`` and the
        predictions of a model with ``n_threads=None`` use, in the process
        that calls this. A positive int is used as is.

    Returns
    -------
    int
        The number of threads.
    """
    if n_threads is None:
        return max(1, int(_core.omp_max_threads()))
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


def training_data(X, Y):
    """The engine's handle of CSR X and Y (label pattern) for one fit: their
    structure is checked once here, and every epoch reuses it."""
    return _core.TrainingData(*csr_buffers(X), X.shape[1], *csr_buffers(Y), Y.shape[1])


def training_config(**options):
    """The engine's TrainConfig: its defaults, with ``options`` (named like the
    estimator's parameters) set. Types are checked on assignment, ranges when an
    epoch starts."""
    config = _core.TrainConfig()
    for name, value in options.items():
        if not hasattr(config, name):
            raise AttributeError(f"the engine's TrainConfig has no option {name!r}")
        setattr(config, name, value)
    return config


def train_epoch(params, tables, data, order, config, schedule, check_state, clusters=None,
                n_probes=0):
    """One epoch over the rows ``order`` (int64) of ``data`` (``training_data``);
    updates params, tables and schedule in place and returns the epoch's
    statistics. ``check_state``: scan the tables and row steps first (needed on
    the first epoch of a call, when they may come from a pickle). ``clusters``
    (a label-cluster index) with ``n_probes``: each sample's candidates are the
    labels of its best clusters; ``tables`` may then be None."""
    return _core.train_epoch(params, tables, data, order, config, schedule, check_state,
                             clusters, int(n_probes))


def rebuild_tables(params, tables, config, schedule):
    """Re-inserts every output neuron into the tables (with the schedule's hash functions)."""
    _core.rebuild_tables(params, tables, config, schedule)


def predict_topk(params, X, k, n_threads, *, clusters=None, precision="float32", packed_bf16=None):
    """(labels int32, scores float32), each (n, k), of the CSR rows of X."""
    return _core.predict_topk(params, *csr_buffers(X), k, n_threads, clusters=clusters,
                              precision=precision, packed_bf16=packed_bf16)


def predict_scores(params, X, softmax, n_threads, *, precision="float32", packed_bf16=None):
    """Dense (n, n_labels) float32 logits, or probabilities when ``softmax``."""
    return _core.predict_scores(params, *csr_buffers(X), softmax, n_threads,
                                precision=precision, packed_bf16=packed_bf16)


def train_linear_reranker(X, Y, shortlist, *, C, max_iter, tol, prune, seed, n_threads):
    """Per-label linear models on the rows whose ``shortlist`` (n, k) int32 or true
    labels (CSR pattern Y) hold the label: dict of label-major CSR ``indptr``,
    ``indices``, ``values`` and ``bias`` (``sklearn_slide._reranker``)."""
    shortlist = np.ascontiguousarray(shortlist, dtype=np.int32)
    return _core.train_linear_reranker(*csr_buffers(X), X.shape[1], *csr_buffers(Y), Y.shape[1],
                                       shortlist, float(C), int(max_iter), float(tol),
                                       float(prune), int(seed), int(n_threads))


def linear_scores(weights, n_labels, X, labels, n_threads):
    """(n, k) float32 scores of the re-ranker's models of ``labels`` (n, k) on the rows of X."""
    labels = np.ascontiguousarray(labels, dtype=np.int32)
    return _core.linear_scores(weights, int(n_labels), *csr_buffers(X), X.shape[1], labels,
                               int(n_threads))


def pack_output_bf16(params, n_threads):
    """The output layer packed for the active native bfloat16 kernels, or None."""
    return _core.pack_output_bf16(params, n_threads)


def code_bits(family, dim, codes_per_table):
    """Bits one hash code of ``family`` takes for inputs of ``dim`` values."""
    return _core.code_bits(family, int(dim), int(codes_per_table))


def hash_codes(family, X, codes_per_table, n_tables, seed):
    """Codes (n, n_tables * codes_per_table) of the rows of dense float32 X."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    return _core.hash_codes(family, X, int(codes_per_table), int(n_tables), int(seed))


def bucket_indices(family, X, codes_per_table, n_tables, seed, table_bits):
    """Bucket index in each table (n, n_tables) of the rows of dense float32 X."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    return _core.bucket_indices(
        family, X, int(codes_per_table), int(n_tables), int(seed), int(table_bits)
    )


available_kernels = _core.available_kernels
active_kernels = _core.active_kernels
select_kernels = _core.select_kernels
