"""Clusters of output neurons for approximate top-k inference (``inference="clusters"``).

Top-k inference is a maximum-inner-product search: find the labels whose
weight row ``w`` and bias ``b`` maximise ``h . w + b`` for a hidden vector
``h``. The index groups the labels by the direction of their weights; a query
scores the cluster centres, then only the labels of the best ``n_probes``
clusters (the engine does both, ``cpp/slide/predictor.cpp``).

Two transforms make a plain spherical k-means fit the search:

- Centring: subtracting the mean row ``(w_mean, b_mean)`` from every label
  changes all of one query's scores by the same constant, so it keeps the
  ranking. Trained output layers share a large common component (most labels
  score low for every input); without centring every label points the same
  way and the clusters do not separate.
- Norms: rows are scaled by the largest norm M and given one more coordinate
  ``sqrt(1 - |a|^2 / M^2)``, so every row has unit length and, for the query
  ``(h, 1, 0)``, the ranking by cosine equals the ranking by inner product
  (Bachrach et al., RecSys 2014).

Measured on a 100k-label model (2 epochs on the generated benchmark set): 1,024
clusters, 32 probed: recall@5 of exact 1.00 with 1.8% of the labels scored;
SimHash tables over the same vectors needed ~14% of the labels for 0.97.
"""

import math

import numpy as np
import scipy.sparse as sp

from ._compat import blas_threads_limited

KMEANS_ITERATIONS = 8
SAMPLES_PER_CLUSTER = 40   # rows used to fit the centres, per cluster
ASSIGN_CHUNK = 8192        # rows per similarity block (bounds the temporary)
PROBED_LABELS = 1024       # default_n_probes: labels scored per row, on average
MIN_PROBES = 16
# Hard negatives (candidates="clusters"): labels a training sample takes from its
# best clusters, on average. On debian-deps (22,907 labels) ~300 and ~600 gave the
# same P@1 after 4-6 epochs (benchmarks/NOTES.md).
TRAINING_CANDIDATES = 256


def default_n_clusters(n_labels):
    """About 4 sqrt(n_labels): ~80 labels per cluster at 10^5 labels, ~200 at 10^6."""
    return int(min(n_labels, max(1, round(4 * math.sqrt(n_labels)))))


def default_n_probes(n_labels, n_clusters):
    """Clusters holding about PROBED_LABELS labels on average, at least MIN_PROBES.

    Recall tracks the number of labels scored more than the share of clusters:
    on 2-epoch models of generated data ~1,000 labels gave recall@5 of exact
    0.968 at 5k labels (58 of 284 clusters) and 0.994-0.997 at 100k (16 of
    ~1,270). On 15-epoch default networks far less: 0.475 on gen100k (16 of
    1,265), 0.915 on debian-deps (28 of 605; benchmarks/NOTES.md, "Label
    clusters"), where more probes cost most of the speed-up.
    """
    return int(min(n_clusters, max(MIN_PROBES, math.ceil(PROBED_LABELS * n_clusters / n_labels))))


def training_n_probes(n_labels, n_clusters):
    """Clusters holding about TRAINING_CANDIDATES labels on average (at least one)."""
    return int(min(n_clusters, max(1, math.ceil(TRAINING_CANDIDATES * n_clusters / n_labels))))


def index_nbytes(n_labels, hidden_size):
    """Memory of the index built for a model (what ``check_memory`` is given)."""
    n_clusters = default_n_clusters(n_labels)
    # Norms and three int64 arrays per label; the rows fitted at once and a block
    # of unit rows (with its copy); a block's similarities (at most every centre).
    fitted_rows = min(n_labels, SAMPLES_PER_CLUSTER * n_clusters) + 2 * ASSIGN_CHUNK
    build = 32 * n_labels + 4 * (hidden_size + 2) * fitted_rows + 4 * ASSIGN_CHUNK * n_clusters
    return build + 4 * n_clusters * (hidden_size + 1) + 4 * (n_labels + n_clusters + 1)


def build_label_clusters(weights, biases):
    """Index of the output layer: a dict of numpy arrays the engine reads.

    ``centroid_weights`` (n_clusters, hidden) and ``centroid_biases`` score the
    clusters like output neurons; the labels of cluster c are
    ``ids[offsets[c]:offsets[c + 1]]``. Two-level k-means: the labels are first
    split into about sqrt(n_clusters) groups, then each group into its share of
    the clusters, so the cost per iteration is ``n_labels * 2 sqrt(n_clusters)``
    similarities instead of ``n_labels * n_clusters`` (a flat k-means took ~9 s
    just to assign 670k labels once).
    """
    # One BLAS thread: the similarity blocks are small (8192 rows x ~sqrt(n_clusters)
    # centres) and OpenBLAS's other threads spin between them. At 670k labels: 1.6-1.9
    # CPU s instead of 4.0-5.4 (and less wall time on a busy machine). It also keeps
    # the index, and so training, independent of the BLAS thread count.
    with blas_threads_limited(1):
        return _build(np.asarray(weights, dtype=np.float32), np.asarray(biases, dtype=np.float32))


def _build(weights, biases):
    n_labels, hidden = weights.shape
    n_clusters = default_n_clusters(n_labels)
    units = _UnitRows(weights, biases)
    rng = np.random.default_rng(0)  # the index depends on the weights only
    n_groups = max(1, round(math.sqrt(n_clusters)))
    _, groups = _kmeans(units, None, n_groups, rng)
    # Each group's members in increasing label order.
    by_group = np.argsort(groups, kind="stable")
    group_starts = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(np.bincount(groups, minlength=n_groups), out=group_starts[1:])
    centres, assignment = [], np.empty(n_labels, dtype=np.int64)
    n_done = 0
    for group in range(groups.max() + 1):
        members = by_group[group_starts[group]:group_starts[group + 1]]
        if members.size == 0:
            continue
        share = min(members.size, max(1, round(n_clusters * members.size / n_labels)))
        group_centres, local = _kmeans(units, members, share, rng)
        assignment[members] = local + n_done
        centres.append(group_centres)
        n_done += len(group_centres)
    centres = np.concatenate(centres)
    ids = np.argsort(assignment, kind="stable").astype(np.int32)
    offsets = np.zeros(n_done + 1, dtype=np.int32)
    np.cumsum(np.bincount(assignment, minlength=n_done), out=offsets[1:])
    # A query (h, 1, 0) scores centre c as h . c[:hidden] + c[hidden].
    return {
        "centroid_weights": np.ascontiguousarray(centres[:, :hidden]),
        "centroid_biases": np.ascontiguousarray(centres[:, hidden]),
        "offsets": offsets,
        "ids": ids,
    }


def _kmeans(units, members, n_clusters, rng):
    """Spherical k-means of the unit rows ``units[members]`` (None: all of them):
    (centres, assignment of every one of those rows).

    Fitted on a sample of at most SAMPLES_PER_CLUSTER rows per cluster, then
    every row is assigned to its most similar centre.
    """
    n_rows = len(units) if members is None else len(members)
    n_fit = min(n_rows, SAMPLES_PER_CLUSTER * n_clusters)
    if n_fit < n_rows:
        fit = rng.choice(n_rows, n_fit, replace=False)
        fit_rows = units[fit if members is None else members[fit]]
    else:
        fit_rows = units[:] if members is None else units[members]
    centres = fit_rows[rng.choice(len(fit_rows), n_clusters, replace=False)].copy()
    for _ in range(KMEANS_ITERATIONS):
        centres = _update_centres(fit_rows, _assign(fit_rows, centres), centres)
    return centres, _assign(units, centres, members)


def _unit_rows(weights, biases):
    """The unit rows of every label as one array (see :class:`_UnitRows`)."""
    return _UnitRows(weights, biases)[:]


class _UnitRows:
    """The labels' unit rows (module docstring: centred, scaled by the largest
    norm, one more coordinate for unit length), made on demand for the rows
    indexed (a slice or an index array) instead of held whole: a fresh
    (n_labels, hidden + 2) array per epoch cost more in page faults than the
    k-means itself (670k labels: ~1.4 s of a ~3.5 s build, on a busy machine)."""

    def __init__(self, weights, biases):
        self.weights, self.biases = weights, biases
        mean = np.append(weights.mean(axis=0, dtype=np.float64), biases.mean(dtype=np.float64))
        self.mean = mean.astype(np.float32)
        norms = np.empty(len(weights), dtype=np.float64)
        for start in range(0, len(weights), ASSIGN_CHUNK):
            block = self._centred(slice(start, start + ASSIGN_CHUNK))[:, :-1]
            norms[start:start + len(block)] = np.einsum("ij,ij->i", block, block,
                                                        dtype=np.float64)
        self.norms = np.sqrt(norms, out=norms)
        largest = norms.max()
        self.largest = 1.0 if largest == 0.0 else largest  # 0: every label alike

    def __len__(self):
        return len(self.weights)

    def __getitem__(self, index):
        rows = self._centred(index)
        rows[:, :-1] /= np.float32(self.largest)
        rows[:, -1] = np.sqrt(np.maximum(1.0 - (self.norms[index] / self.largest) ** 2, 0.0))
        return rows

    def _centred(self, index):
        weights = self.weights[index]
        rows = np.empty((len(weights), weights.shape[1] + 2), dtype=np.float32)
        rows[:, :-2] = weights
        rows[:, -2] = self.biases[index]
        rows[:, :-1] -= self.mean
        return rows


def _assign(units, centres, members=None):
    """The most similar centre of each row of ``units[members]`` (None: all)."""
    n_rows = len(units) if members is None else len(members)
    out = np.empty(n_rows, dtype=np.int64)
    for start in range(0, n_rows, ASSIGN_CHUNK):
        if members is None:
            block = units[start:start + ASSIGN_CHUNK]
        else:
            block = units[members[start:start + ASSIGN_CHUNK]]
        out[start:start + len(block)] = np.argmax(block @ centres.T, axis=1)
    return out


def _update_centres(rows, assignment, centres):
    members = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (assignment, np.arange(len(rows)))),
        shape=(len(centres), len(rows)),
    )
    sums = np.asarray(members @ rows)
    norms = np.linalg.norm(sums, axis=1)
    updated = centres.copy()
    filled = norms > 0  # an emptied cluster keeps its centre
    updated[filled] = (sums[filled] / norms[filled, None]).astype(np.float32)
    return updated
