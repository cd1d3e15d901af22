"""Synthetic extreme multi-label data with the shape of real XMC benchmarks.

The generative story, one document at a time (but vectorised over all
documents of a chunk):

1. Labels have Zipf-Mandelbrot popularities and are partitioned into groups
   of similar labels.  A document draws a few labels (1 to 5 by default):
   the first by popularity, each further one from the first label's group
   with probability 1/2 (co-occurring labels tend to be related), else by
   popularity again.
2. Every group owns a set of "topic words" and every label a smaller set of
   its own words.  A document's signal words come from the topic and own
   words of its labels; its noise words from a Zipf vocabulary.  Labels of a
   group share their topic words, so telling them apart needs their own,
   rarer words: the task is learnable but not trivial.
3. Word counts become sublinear tf-idf weights and rows are L2-normalised.

Everything is drawn with NumPy in a few chunks of rows, so memory is
O(nnz) and 500k x 670k-label data takes well under a minute.
"""

import numbers

import numpy as np
import scipy.sparse as sp

# Rows generated at once; fixed so the output does not depend on anything
# but the arguments and the seed.
_CHUNK_ROWS = 1 << 16

# Popularity of rank r is (r + _ZIPF_OFFSET) ** -exponent.  The offset
# flattens the head (Zipf-Mandelbrot), as in real XMC data where even the
# most frequent label tags only a few percent of the documents.
_ZIPF_OFFSET = 10.0

# Probability that a document's 2nd, 3rd, ... label comes from the group of
# its first label instead of the global popularity law.
_SAME_GROUP = 0.5

# Words owned by each group and by each label, and the share of a label's
# signal words that are its group's (shared) words.
_GROUP_WORDS = 24
_LABEL_WORDS = 8
_GROUP_SHARE = 0.8

# Words within a group's or label's set are drawn with Zipf weights too, so
# each has a few dominant words and a tail of occasional ones.
_WORD_EXPONENT = 0.7

# Document lengths are log-normal (sigma below) around nnz_per_sample.
_LENGTH_SIGMA = 0.5

# Distinct words per word draw, measured at the defaults: repeated draws merge
# into one entry with a larger term frequency, and signal draws (from a few
# dozen words per label) repeat far more often than noise draws.
_DISTINCT_PER_NOISE_DRAW = 0.91
_DISTINCT_PER_SIGNAL_DRAW = 0.49


def _check_int(value, name, low, high=None):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bounds}, got {value}")
    return int(value)


def _check_real(value, name, low, high=None):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    if not (value >= low and (high is None or value <= high)):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bounds}, got {value}")
    return float(value)


def _make_rng(random_state):
    """A ``numpy.random.Generator`` from scikit-learn style ``random_state``.

    Generator is several times faster than RandomState for the bulk draws.
    A RandomState instance is consumed (one seed drawn from it), as
    scikit-learn functions do.
    """
    if random_state is None or isinstance(random_state, np.random.Generator):
        return np.random.default_rng(random_state)
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0, got {random_state}")
        return np.random.default_rng(int(random_state))
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    raise ValueError(
        "random_state must be None, an int, a numpy RandomState or Generator, "
        f"got {random_state!r}"
    )


def _zipf_cdf(n, exponent, offset=1.0):
    """Cumulative probabilities of ranks 0..n-1 under (r + offset) ** -exponent."""
    weights = (np.arange(n, dtype=np.float64) + offset) ** -exponent
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    return cdf


def _draw(cdf, u):
    """Inverse-CDF sampling; ``u`` uniform in [0, 1)."""
    return np.minimum(np.searchsorted(cdf, u, side="right"), cdf.size - 1)


class _Model:
    """The random structure shared by all documents (labels, groups, words)."""

    def __init__(self, rng, n_features, n_labels, n_groups, exponent):
        self.n_features = n_features
        self.n_labels = n_labels
        # Popularity rank -> label id, so that ids carry no information.
        self.label_of_rank = rng.permutation(n_labels)
        self.label_cdf = _zipf_cdf(n_labels, exponent, _ZIPF_OFFSET)
        popularity = np.empty(n_labels)
        popularity[self.label_of_rank] = np.diff(self.label_cdf, prepend=0.0)
        # Balanced groups: every group has about n_labels / n_groups labels.
        self.group_of_label = rng.permutation(n_labels) % n_groups
        # Labels listed group by group, with cumulative popularity, so a
        # popularity-weighted draw within a group is one searchsorted.
        self.by_group = np.argsort(self.group_of_label, kind="stable")
        cum = np.cumsum(popularity[self.by_group])
        self.group_cum = cum / cum[-1]
        bounds = np.searchsorted(self.group_of_label[self.by_group], np.arange(n_groups + 1))
        self.group_lo = bounds[:-1]
        self.group_hi = bounds[1:]
        lo_cum = np.concatenate(([0.0], self.group_cum))[self.group_lo]
        self.group_cum_lo = lo_cum
        self.group_cum_hi = self.group_cum[self.group_hi - 1]

        self.group_words = rng.integers(0, n_features, size=(n_groups, _GROUP_WORDS), dtype=np.int32)
        self.label_words = rng.integers(0, n_features, size=(n_labels, _LABEL_WORDS), dtype=np.int32)
        self.group_word_cdf = _zipf_cdf(_GROUP_WORDS, _WORD_EXPONENT)
        self.label_word_cdf = _zipf_cdf(_LABEL_WORDS, _WORD_EXPONENT)
        # Background vocabulary: Zipf over a random order of the features.
        self.noise_word_of_rank = rng.permutation(n_features).astype(np.int32)
        self.noise_cdf = _zipf_cdf(n_features, 1.0)

    def draw_first_labels(self, rng, n):
        return self.label_of_rank[_draw(self.label_cdf, rng.random(n))]

    def draw_labels_in_groups(self, rng, groups):
        lo, hi = self.group_cum_lo[groups], self.group_cum_hi[groups]
        pos = np.searchsorted(self.group_cum, lo + rng.random(groups.size) * (hi - lo), side="right")
        pos = np.clip(pos, self.group_lo[groups], self.group_hi[groups] - 1)
        return self.by_group[pos]

    def label_features(self):
        """Expected signal-word distribution of every label, CSR (L, d)."""
        n_labels = self.n_labels
        group_p = np.diff(self.group_word_cdf, prepend=0.0) * _GROUP_SHARE
        label_p = np.diff(self.label_word_cdf, prepend=0.0) * (1.0 - _GROUP_SHARE)
        cols = np.hstack([self.group_words[self.group_of_label], self.label_words])
        vals = np.broadcast_to(np.concatenate([group_p, label_p]), cols.shape)
        rows = np.repeat(np.arange(n_labels), cols.shape[1])
        M = sp.csr_matrix(
            (vals.ravel().astype(np.float32), (rows, cols.ravel())),
            shape=(n_labels, self.n_features),
        )
        M.sum_duplicates()
        return M


def _chunk(model, rng, n, labels_range, nnz_per_sample, noise):
    """Generate ``n`` documents: (label counts, label ids, word counts, word ids, tf)."""
    n_labels, n_features = model.n_labels, model.n_features
    lo, hi = labels_range

    # Label sets.
    wanted = rng.integers(lo, hi + 1, size=n)
    row = np.repeat(np.arange(n), wanted)
    first_pos = np.concatenate(([0], np.cumsum(wanted)[:-1]))
    first = model.draw_first_labels(rng, n)
    label = model.draw_first_labels(rng, row.size)
    label[first_pos] = first
    related = rng.random(row.size) < _SAME_GROUP
    related[first_pos] = False
    label[related] = model.draw_labels_in_groups(rng, model.group_of_label[first[row[related]]])
    label_keys = np.unique(row.astype(np.int64) * n_labels + label)
    label_row, label = np.divmod(label_keys, n_labels)
    label_count = np.bincount(label_row, minlength=n)
    label_start = np.concatenate(([0], np.cumsum(label_count)[:-1]))

    # Words: log-normal lengths, each draw signal or noise.
    draws = nnz_per_sample / (noise * _DISTINCT_PER_NOISE_DRAW + (1 - noise) * _DISTINCT_PER_SIGNAL_DRAW)
    length = np.rint(draws * rng.lognormal(-0.5 * _LENGTH_SIGMA**2, _LENGTH_SIGMA, size=n))
    length = np.maximum(length, 1).astype(np.int64)
    word_row = np.repeat(np.arange(n), length)
    words = np.empty(word_row.size, dtype=np.int64)
    is_noise = rng.random(word_row.size) < noise
    n_noise = int(is_noise.sum())
    words[is_noise] = model.noise_word_of_rank[_draw(model.noise_cdf, rng.random(n_noise))]

    signal_row = word_row[~is_noise]
    # Each signal word serves one of the document's labels, chosen uniformly.
    pick = label_start[signal_row] + (rng.random(signal_row.size) * label_count[signal_row]).astype(np.int64)
    serves = label[pick]
    from_group = rng.random(signal_row.size) < _GROUP_SHARE
    signal = np.empty(signal_row.size, dtype=np.int64)
    g = model.group_of_label[serves[from_group]]
    signal[from_group] = model.group_words[g, _draw(model.group_word_cdf, rng.random(g.size))]
    own = serves[~from_group]
    signal[~from_group] = model.label_words[own, _draw(model.label_word_cdf, rng.random(own.size))]
    words[~is_noise] = signal

    # Term frequencies: sorting (row, word) keys also sorts each row's indices.
    word_keys, tf = np.unique(word_row * np.int64(n_features) + words, return_counts=True)
    word_row, words = np.divmod(word_keys, n_features)
    word_count = np.bincount(word_row, minlength=n)
    # 32-bit ids and counts halve the memory held until all chunks are joined.
    return label_count, label.astype(np.int32), word_count, words.astype(np.int32), tf.astype(np.int32)


def make_extreme_multilabel(
    n_samples=10000,
    n_features=100000,
    n_labels=10000,
    *,
    n_labels_per_sample=(1, 5),
    nnz_per_sample=75,
    label_frequency_exponent=1.0,
    n_label_groups=None,
    noise=0.5,
    return_label_features=False,
    random_state=None,
):
    """Generate a random extreme multi-label classification problem.

    Documents are sparse tf-idf vectors over a vocabulary; each has 1 to 5
    labels from a large label space whose frequencies follow a power law.
    Labels are learnable from the words: every label has characteristic
    words, labels of a group share most of them, and every document also
    contains background words.  This mimics the shape of XMC benchmarks such
    as Amazon-670K (490k points, 136k features, 670k labels, ~76 non-zeros
    and ~5 labels per point) at any size.

    Generative model:

    - Label popularity: the label of popularity rank ``r`` is drawn with
      probability proportional to ``(r + 10) ** -label_frequency_exponent``
      (Zipf-Mandelbrot; the offset keeps the most frequent label at a few
      percent of the documents).  Ranks are assigned to label ids at random.
    - Labels are split at random into ``n_label_groups`` groups of equal size.
      A document draws a number of labels uniformly from
      ``n_labels_per_sample``; the first by popularity, each further one from
      the first label's group with probability 1/2, else by popularity.
      Repeated draws merge, so a few documents get fewer labels.
    - Each group owns 24 words and each label 8 words (random features).  A
      fraction ``1 - noise`` of a document's word draws are signal: each
      serves one of its labels at random and is one of the group's words
      (probability 0.8) or of the label's own words, with Zipf weights within
      each set.  The other draws are noise words from a Zipf law over the
      whole vocabulary.
    - Document lengths are log-normal (sigma 0.5).  Counts become sublinear
      tf-idf weights ``(1 + log tf) * (log((1 + n) / (1 + df)) + 1)`` and
      rows are L2-normalised.

    Parameters
    ----------
    n_samples : int, default=10000
        Number of documents.
    n_features : int, default=100000
        Vocabulary size.
    n_labels : int, default=10000
        Number of labels.  Rare labels may not occur at all in small samples,
        as in real XMC data.
    n_labels_per_sample : int or tuple of (int, int), default=(1, 5)
        Inclusive range from which each document's number of label draws is
        drawn uniformly; an int ``k`` means exactly ``k`` draws.
    nnz_per_sample : int, default=75
        Approximate mean number of non-zero features per document.  Words
        drawn twice merge into one entry, so the realised mean varies a
        little with the other parameters (and is lower for small
        ``n_features``).
    label_frequency_exponent : float, default=1.0
        Exponent of the power law of label popularities; 0 makes all labels
        equally frequent, larger values make the head heavier.
    n_label_groups : int, default=None
        Number of groups of similar labels; defaults to
        ``max(1, n_labels // 20)``.  Fewer, larger groups make the labels
        harder to tell apart.
    noise : float, default=0.5
        Fraction of word draws that are background words unrelated to the
        labels, in [0, 1].  With ``noise=1`` labels are not learnable.
    return_label_features : bool, default=False
        If True, also return the expected signal-word distribution of every
        label (useful as an oracle or to inspect the problem).
    random_state : int, RandomState instance, Generator or None, default=None
        Seed for reproducible output.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_samples, n_features), dtype float32
        Non-negative tf-idf rows of unit L2 norm, sorted indices, no
        duplicates.
    Y : scipy.sparse.csr_matrix of shape (n_samples, n_labels), dtype int32
        Label indicator matrix (stored entries are 1), sorted indices; every
        row has at least one label.
    label_features : scipy.sparse.csr_matrix of shape (n_labels, n_features)
        Only if ``return_label_features``: row ``l`` holds the probabilities
        of label ``l``'s signal words (float32, each row sums to 1).

    Examples
    --------
    >>> from sklearn_slide.datasets import make_extreme_multilabel
    >>> X, Y = make_extreme_multilabel(1000, 5000, 500, random_state=0)
    >>> X.shape, Y.shape
    ((1000, 5000), (1000, 500))
    >>> bool(Y.getnnz(axis=1).min() >= 1 and Y.getnnz(axis=1).max() <= 5)
    True
    """
    n_samples = _check_int(n_samples, "n_samples", 1)
    n_features = _check_int(n_features, "n_features", 1, 2**31 - 1)
    n_labels = _check_int(n_labels, "n_labels", 1, 2**31 - 1)
    if isinstance(n_labels_per_sample, numbers.Integral) and not isinstance(
        n_labels_per_sample, (bool, np.bool_)
    ):
        n_labels_per_sample = (n_labels_per_sample, n_labels_per_sample)
    if not (isinstance(n_labels_per_sample, (tuple, list)) and len(n_labels_per_sample) == 2):
        raise ValueError(
            f"n_labels_per_sample must be an int or a pair (low, high), got {n_labels_per_sample!r}"
        )
    lo = _check_int(n_labels_per_sample[0], "n_labels_per_sample", 1, n_labels)
    hi = _check_int(n_labels_per_sample[1], "n_labels_per_sample", lo, n_labels)
    nnz_per_sample = _check_int(nnz_per_sample, "nnz_per_sample", 1)
    exponent = _check_real(label_frequency_exponent, "label_frequency_exponent", 0.0, 10.0)
    if n_label_groups is None:
        n_label_groups = max(1, n_labels // 20)
    n_groups = _check_int(n_label_groups, "n_label_groups", 1, n_labels)
    noise = _check_real(noise, "noise", 0.0, 1.0)
    if not isinstance(return_label_features, (bool, np.bool_)):
        raise ValueError(f"return_label_features must be a bool, got {return_label_features!r}")
    rng = _make_rng(random_state)

    model = _Model(rng, n_features, n_labels, n_groups, exponent)
    chunks = [
        _chunk(model, rng, min(_CHUNK_ROWS, n_samples - start), (lo, hi), nnz_per_sample, noise)
        for start in range(0, n_samples, _CHUNK_ROWS)
    ]
    label_count, labels, word_count, words, tf = (
        np.concatenate(parts) for parts in zip(*chunks)
    )
    del chunks

    Y = sp.csr_matrix(
        (np.ones(labels.size, dtype=np.int32), labels.astype(np.int32), _indptr(label_count)),
        shape=(n_samples, n_labels),
    )
    index_dtype = np.int32 if words.size < 2**31 else np.int64
    df = np.bincount(words, minlength=n_features)
    idf = (np.log((1.0 + n_samples) / (1.0 + df)) + 1.0).astype(np.float32)
    data = (1.0 + np.log(tf.astype(np.float32))) * idf[words]
    del tf
    indptr = _indptr(word_count, index_dtype)
    # Row norms: every row has at least one word, so reduceat is safe.
    norms = np.sqrt(np.add.reduceat(np.square(data, dtype=np.float64), indptr[:-1]))
    data /= np.repeat(norms, word_count).astype(np.float32)
    X = sp.csr_matrix((data, words, indptr), shape=(n_samples, n_features))
    X.has_sorted_indices = True
    Y.has_sorted_indices = True
    if return_label_features:
        return X, Y, model.label_features()
    return X, Y


def _indptr(counts, dtype=np.int32):
    indptr = np.zeros(counts.size + 1, dtype=np.int64 if counts.sum() >= 2**31 else dtype)
    np.cumsum(counts, out=indptr[1:])
    return indptr
