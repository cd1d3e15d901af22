"""The per-label linear re-ranker (``reranker="linear"``).

A network with a 128-wide hidden layer sees a bag of words through that
bottleneck and loses the rare, specific words that the tree libraries' leaf
classifiers (one linear model per label on the raw features) rank by. So,
after the network has trained, ``fit`` trains one such linear model per label,
but only on the rows that need it: those whose network shortlist (top
``SHORTLIST`` labels) or true labels hold the label -- the network's hard
negatives, as in Slice (Jain et al., WSDM 2019) and the re-rankers of Astec and
DEXML. Each model is LIBLINEAR's L2-regularised squared hinge on the
L2-normalised row, trained by dual coordinate descent in the engine
(``cpp/slide/linear_reranker*``), weights of magnitude <= ``PRUNE`` dropped.

A prediction scores the network's top ``max(k, SHORTLIST)`` labels with both
and ranks them by ``z(logit) + reranker_weight * z(-max(0, 1 - margin)**2)``,
``z`` standardising over the row's shortlist (mean 0, standard deviation 1):
the network's log-probability (up to the row's log-normaliser) plus the linear
model's squared-hinge penalty, each on a scale free of the other's. Without
``z`` the best weight ran from 0.25 (delicious) to 2 (debian-deps): the spread
of the network's logits differs from set to set.
Measured (benchmarks/NOTES.md, "Re-ranker"): P@1 -0.2 to +3.6, P@5 +0.5 to
+3.0, PSP@5 +0.6 to +4.4 on the four real sets, for 1-15% of the fit's CPU.
"""

import numpy as np

from . import _engine as engine
from . import _label_clusters as label_clusters
from . import _memory as memory

# Labels per training row whose models see that row (its true labels besides).
SHORTLIST = 32
# LIBLINEAR's defaults for its dual solvers (C, and tol 0.1 as in its -s 1), a
# cap on the passes (most labels stop within a few), and the weight cutoff of
# Parabel / Bonsai's leaves (which keeps the models small: ~100-900 weights
# per label on the real sets).
C = 1.0
MAX_ITER = 20
TOL = 0.1
PRUNE = 0.1
# Above this many labels the training shortlist comes from the label-cluster
# index instead of scoring every label of every training row. Exact costs ~10%
# of the network's fit (gen100k: 13.7 CPU s for 50k rows x 100k labels, fit
# 158), and the shortlist decides what the linear models learn: with the
# cluster index's default probes (recall@5 of exact 0.47 on that model) the
# re-ranker gave P@1 77.5, with the exact shortlist 80.4 (NOTES, "Re-ranker").
EXACT_SHORTLIST_MAX_LABELS = 1_048_576
TIE_BREAK = 1e-3


def train(network, X, Y, rng, n_threads=None):
    """The re-ranker's weights (a dict of arrays) for the trained ``network``,
    on CSR X and the label pattern Y it was trained on; ``n_threads`` as the
    estimator's parameter."""
    n_threads = engine.effective_n_threads(n_threads)
    n_rows, n_features = X.shape
    n_labels = Y.shape[1]
    k = min(SHORTLIST, n_labels)
    memory.check_memory("re-ranker", {
        "shortlist": 8 * n_rows * k,
        "label problems": 8 * (n_rows * k + Y.nnz) + 8 * n_labels,
        "solver scratch": 13 * n_features * n_threads,
    })
    shortlist = _network_shortlist(network, X, k, n_threads)
    return engine.train_linear_reranker(X, Y, shortlist, C=C, max_iter=MAX_ITER, tol=TOL,
                                        prune=PRUNE, seed=int(rng.randint(2**31)),
                                        n_threads=n_threads)


def rerank(weights, X, labels, logits, k, weight, n_threads):
    """The best k of the shortlist ``labels`` (n, m) of rows X by the combined
    score; returns (labels int32, re-ranked logits float32), each (n, k), best first."""
    adjusted = adjusted_logits(weights, X, labels, logits, weight, n_threads)
    # Equal scores go to the smaller label id, as predict_proba's argmax does.
    order = np.lexsort((labels, -adjusted), axis=1)[:, :k]
    return np.take_along_axis(labels, order, axis=1), np.take_along_axis(adjusted, order, axis=1)


def adjusted_logits(weights, X, labels, logits, weight, n_threads):
    """The combined scores of the shortlist ``labels`` (n, m) with network
    ``logits``, mapped back onto the logit scale: the shortlist's lowest logit
    plus (combined - its lowest) * std(logits) / (1 + weight). So they order
    the shortlist as the combined score does, stay at or above every label
    outside it (which ``predict_proba`` keeps at its logit), and equal the
    logits when ``weight`` is 0."""
    n_labels = len(weights["bias"])
    margins = engine.linear_scores(weights, n_labels, X, labels, n_threads)
    penalties = -np.square(np.maximum(0.0, 1.0 - margins.astype(np.float64)))
    logits = logits.astype(np.float64)  # float64: a weight near float32's max stays finite
    # TIE_BREAK: where the two terms cancel exactly (a shortlist of two labels
    # on which network and linear models disagree, at weight 1), the network wins.
    combined = (1 + TIE_BREAK) * _standardised(logits) + weight * _standardised(penalties)
    spread = logits.std(axis=1, keepdims=True) / (1.0 + weight)
    return (logits.min(axis=1, keepdims=True)
            + (combined - combined.min(axis=1, keepdims=True)) * spread).astype(np.float32)


def _standardised(scores):
    # Per row; a row of equal scores (std 0) contributes nothing.
    centred = scores - scores.mean(axis=1, keepdims=True)
    std = centred.std(axis=1, keepdims=True)
    return np.divide(centred, std, out=np.zeros_like(centred), where=std > 0)


def _network_shortlist(network, X, k, n_threads):
    params = network["params"]
    n_labels = params["output_biases"].size
    clusters = None
    if n_labels > EXACT_SHORTLIST_MAX_LABELS:
        index = label_clusters.build_label_clusters(params["output_weights"],
                                                    params["output_biases"])
        n_probes = label_clusters.default_n_probes(n_labels, len(index["centroid_biases"]))
        clusters = dict(index, n_probes=int(n_probes))
    labels, _ = engine.predict_topk(params, X, k, n_threads, clusters=clusters)
    return labels
