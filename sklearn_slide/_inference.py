"""Inference: which scorer a prediction runs (exact or label clusters;
float32 or bfloat16) and the data derived from the weights that it caches.

Derived data (the cluster index, the packed bfloat16 output layer) is held in
``_derived_cache``, outside the estimator: not pickled, dropped when training
starts, keyed by the weights it was derived from.
"""

import os
import sys
import warnings

import numpy as np
import scipy.sparse as sp

from . import _derived_cache as derived_cache
from . import _engine as engine
from . import _label_clusters as label_clusters
from . import _memory as memory
from . import _reranker as linear_reranker
from . import _saved_model as saved_model
from .metrics._ranking import _top_k_chunk


# inference="lsh" scored the neurons the training hash tables returned. Those
# tables are built for sampling, not retrieval: recall@5 of the exact top 5 was
# 0.05 at 100k labels and 0.006 at 670k (BENCHMARKS.md, inference), against
# 0.98-1.00 for the label clusters at 16-36x exact's speed on the same models.
# So the value now runs "clusters", warns for one release, and will then be refused.
LSH_DEPRECATION = (
    'inference="lsh" is deprecated (sklearn_slide 0.1) and will be refused from the next '
    'release; it now predicts as inference="clusters" (the training hash tables missed '
    'most of the exact top 5: recall@5 0.05 at 100k labels, 0.006 at 670k). '
    'Set inference="clusters" or "exact" to silence this warning.'
)


def resolved_inference(estimator):
    """The scorer ``estimator.inference`` selects: "exact" or "clusters"."""
    if estimator.inference == "lsh":
        warnings.warn(LSH_DEPRECATION, FutureWarning, stacklevel=_user_stacklevel())
        return "clusters"
    return estimator.inference


def inference_of_saved_model(value):
    """The ``inference`` a model saved with ``value`` loads with."""
    if value == "lsh":
        warnings.warn('this model was saved with inference="lsh", which is deprecated: it '
                      'loads with inference="clusters". ' + LSH_DEPRECATION.split("; ")[1],
                      FutureWarning, stacklevel=_user_stacklevel())
        return "clusters"
    return value


def _user_stacklevel():
    # The warning names the first caller outside this package (predict,
    # score, a scorer...), whichever public method led here.
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def predict_topk(estimator, X, k):
    """(labels, scores) of the top k labels of the rows of canonical CSR X: the
    network's, re-ranked when the model has a re-ranker and ``reranker`` is set."""
    network = estimator._network
    weights = _active_reranker(estimator)
    saved_model.check_mapped_files(network, weights)
    n_labels = len(estimator.classes_)
    n_scored = int(k) if weights is None else min(n_labels, max(int(k), linear_reranker.SHORTLIST))
    memory.check_memory("predict_topk", {"labels and scores": 8 * X.shape[0] * n_scored,
                                         **bfloat16_copy_bytes(estimator)})
    clusters = None
    if resolved_inference(estimator) == "clusters":
        index = cluster_index(estimator)
        n_probes = estimator.n_probes or label_clusters.default_n_probes(
            n_labels, len(index["centroid_biases"]))
        clusters = dict(index, n_probes=int(n_probes))
    n_threads = engine.effective_n_threads(estimator.n_threads)
    labels, scores = engine.predict_topk(
        network["params"], X, n_scored, n_threads,
        clusters=clusters, precision=estimator.precision,
        packed_bf16=_packed_bfloat16(estimator) if clusters is None else None,
    )
    if weights is None:
        return labels, scores
    return linear_reranker.rerank(weights, X, labels, scores, int(k),
                                  estimator.reranker_weight, n_threads)


def predict_proba(estimator, X):
    """Softmax over every label of the rows of canonical CSR X (dense float32)."""
    memory.check_dense_output("predict_proba", n_rows=X.shape[0],
                              n_labels=len(estimator.classes_),
                              also_needed=bfloat16_copy_bytes(estimator))
    return _probabilities(estimator, X)


# Sparse top-k probabilities score this many (row, label) entries at a time:
# the dense block and the temporaries of the top-k selection (~24 bytes per
# entry in all) stay near 100 MB whatever the number of rows.
PROBA_BLOCK_ENTRIES = 1 << 22


def predict_top_proba(estimator, X, k):
    """CSR (n, n_labels) holding the k largest softmax probabilities of each row.

    The probabilities are those of ``predict_proba`` (every label scored, the
    softmax over all of them; ``inference`` does not apply), computed a block
    of rows at a time so that the dense matrix is never whole. Ties at the
    k-th probability go to the smaller label id. Every row stores exactly k
    entries, column indices sorted.
    """
    n_rows, n_labels = X.shape[0], len(estimator.classes_)
    block = max(1, PROBA_BLOCK_ENTRIES // n_labels)
    memory.check_memory("predict_proba", {
        "top-k probabilities": 8 * n_rows * k + 8 * (n_rows + 1),
        "row block of probabilities": 24 * min(block, n_rows) * n_labels,
        **bfloat16_copy_bytes(estimator)})
    columns = np.empty((n_rows, k), dtype=np.int32)
    values = np.empty((n_rows, k), dtype=np.float32)
    for start in range(0, n_rows, block):
        P = _probabilities(estimator, X[start:start + block])
        top = np.sort(_top_k_chunk(P, k), axis=1)
        columns[start:start + block] = top
        values[start:start + block] = np.take_along_axis(P, top, axis=1)
    indptr = np.arange(0, n_rows * k + 1, k, dtype=np.int64)
    result = sp.csr_matrix((values.ravel(), columns.ravel(), indptr), shape=(n_rows, n_labels))
    result.has_sorted_indices = True
    return result


def _probabilities(estimator, X):
    weights = _active_reranker(estimator)
    saved_model.check_mapped_files(estimator._network, weights)
    n_threads = engine.effective_n_threads(estimator.n_threads)
    scores = engine.predict_scores(
        estimator._network["params"], X, weights is None, n_threads,
        precision=estimator.precision, packed_bf16=_packed_bfloat16(estimator),
    )
    if weights is None:
        return scores
    # The re-ranked logits replace those of each row's shortlist (the same
    # shortlist and scores as predict_topk's), so both rank alike.
    shortlist = _top_k_chunk(scores, min(scores.shape[1], linear_reranker.SHORTLIST))
    shortlist = shortlist.astype(np.int32)
    np.put_along_axis(scores, shortlist, linear_reranker.adjusted_logits(
        weights, X, shortlist, np.take_along_axis(scores, shortlist, axis=1),
        estimator.reranker_weight, n_threads), axis=1)
    return _softmax_rows(scores)


def _active_reranker(estimator):
    """The fitted re-ranker's weights predictions use: None without one (not
    fitted, or dropped by partial_fit) or with ``reranker=None``."""
    return estimator._reranker if estimator.reranker is not None else None


def _softmax_rows(logits):
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True, dtype=np.float64).astype(np.float32)
    return logits


def bfloat16_copy_bytes(estimator):
    # Native bfloat16 kernels score a bfloat16 copy of the output layer
    # (counted whatever the kernels, and even when cached: an upper bound).
    if estimator.precision != "bfloat16":
        return {}
    return {"bfloat16 output layer": 2 * estimator._network["params"]["output_weights"].size}


def _packed_bfloat16(estimator):
    """The output layer packed for the native bfloat16 kernels, or None.

    None with precision="float32" or kernels without native bfloat16 (the
    engine then scores the float32 weights). Packed once per model and
    kernel set, cached like the cluster index, so that small prediction calls
    do not repack the whole layer (60 ms at 670k labels).
    """
    if estimator.precision != "bfloat16":
        return None
    network = estimator._network
    params = network["params"]
    key = (id(params), int(network["schedule"]["step"]), engine.active_kernels())
    return derived_cache.cached(
        estimator, "bfloat16 output layer", key,
        lambda: engine.pack_output_bf16(params, engine.effective_n_threads(estimator.n_threads)))


def cluster_index(estimator):
    """The cluster index of the current output layer, built on first use.

    Dropped whenever training starts or a new network is committed, and
    keyed by the parameter arrays and the Adam step count (a shallow copy
    sharing the arrays sees the steps its twin took). Concurrent first calls
    may both build it; the results are identical.
    """
    network = estimator._network
    params = network["params"]
    key = (id(params), int(network["schedule"]["step"]))

    def build():
        weights = params["output_weights"]
        memory.check_memory("label clusters", {
            "label clusters": label_clusters.index_nbytes(*weights.shape)})
        return label_clusters.build_label_clusters(weights, params["output_biases"])

    return derived_cache.cached(estimator, "label clusters", key, build)
