"""SlideClassifier: the public API of the estimator (parameters, docstring,
fit / partial_fit / predict* / score, pickling).

The work is done by one module per concept: ``_config`` (the parameter table),
``_input`` (validation), ``_targets`` (y to label lists), ``_training`` (fit
state and epoch loop), ``_inference`` (scorer routing and caches),
``_network_state`` (the fitted arrays), ``_memory`` (estimates and budget), and
``_engine`` (the only door to the C++ engine).

One concept, the public surface, in one file: most of it is the class
docstring (every parameter's measured effect) and the constructor's keywords;
the rest is the order of the steps of each public method; no step is
implemented here.
"""

import inspect
from contextlib import contextmanager
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import column_or_1d
from sklearn.utils.validation import _check_sample_weight, check_consistent_length, check_is_fitted

from . import _config as config
from . import _inference as inference
from . import _lr_schedule as lr_schedule
from . import _memory as memory
from . import _network_state as network_state
from . import _reranker as linear_reranker
from . import _saved_model as saved_model
from . import _training as training
from ._compat import _fit_context
from ._input import check_sparse_structure, validate_prediction_data, validate_training_data
from ._model_lock import reads_model, trains_model
from ._targets import (TargetKind, check_indicator_values, check_same_classes,
                       check_same_target_kind, classes_for_partial_fit, classes_of, label_lists,
                       target_kind, topk_to_indicator)
from .metrics._ranking import _Ranking


class SlideClassifier(ClassifierMixin, BaseEstimator):
    """Wide softmax network trained on sampled active sets of labels, as in SLIDE.

    ``sparse input -> dense ReLU hidden layer(s) -> output layer over all labels``.
    Hidden layers are trained exactly. For the output layer, an index of the
    neurons' weight rows (k-means clusters, or SLIDE's locality-sensitive hash
    tables: ``candidates``) retrieves, per sample, the neurons likely to score
    high; forward, softmax and backward run only over those, the sample's true
    labels and a few random negatives (the active set). Samples of
    a batch are trained in parallel; each touched row's gradient is then summed
    in sample order (no lost updates, unlike SLIDE's HOGWILD, and the same
    result for any thread count) and Adam updates only those rows.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(128,)
        Sizes of the hidden ReLU layers (at least one).
    hash_family : {"auto", "simhash", "wta", "dwta", "minhash"} or None, default="auto"
        Locality-sensitive hash of the output layer. None trains every output
        neuron (exact softmax; best below a few thousand labels). "auto" is None
        up to 4096 labels and "dwta" above.
    hash_bits : int, default=6
        Codes per hash table (K). More codes: smaller buckets, fewer candidates.
    n_tables : int, default=50
        Hash tables (L). More tables: more candidates, more memory
        (``4 * n_tables * (n_buckets + n_labels)`` bytes) and hashing time.
    bucket_size : int, default=128
        Most neuron ids one bucket keeps.
    bucket_policy : {"fifo", "reservoir"}, default="fifo"
        Which ids a full bucket keeps: the most recently updated neurons
        ("fifo") or a uniform random subset ("reservoir").
    min_active : int, default=512
        Active-set size below which random negative labels are added.
    max_active : int, default=4096
        Most candidates kept from the buckets (those found in most tables first).
    learning_rate : float, default=3e-3
        Adam step size. (On a generated 100k-label problem, 3e-3 reached P@1 0.75
        in 7 epochs, 1e-2 plateaued at 0.71 and 1e-3 learned 2-3x slower; the
        original SLIDE's 1e-4 barely moves on data this size.)
    learning_rate_schedule : {"constant", "plateau"}, default="constant"
        "constant": every epoch uses ``learning_rate`` (a warm start picks up a
        changed one). "plateau": ``fit`` holds out ``validation_fraction`` of
        the rows, measures P@1 on them after every epoch, and divides the rate
        by 3 after ``n_iter_no_change`` epochs without improvement; a warm start
        continues from the reached rate (``learning_rate_``); ``partial_fit``
        trains at that rate without validating. Measured (BENCHMARKS.md): best
        test P@1 0.780 vs 0.770 at 100k generated labels and 0.749 vs 0.740 at
        300k, but 0.375 vs 0.402 on SeqGO (1,692 rows: the held-out 10% cost
        more than the decay gives).
    early_stopping : bool, default=False
        ``fit`` holds out ``validation_fraction`` of the rows (not trained on),
        measures P@1 on them after every epoch and stops after
        ``n_iter_no_change`` epochs without improvement (``max_iter`` caps the
        epochs; the weights are those of the last epoch, within a few tenths
        of a point of the best with dropout). With ``learning_rate_schedule=
        "plateau"`` the first two plateaus divide the rate and the third stops.
        A warm start draws a new split (its scores start afresh);
        ``partial_fit`` never validates. Fits too small for a split (fewer
        rows than ``1 / (2 * validation_fraction)``) run all ``max_iter``
        epochs. Off by default: with dropout the test P@1 curves are flat near
        their top, so stopping saves little, while holding out 10% of the rows
        cost bibtex ~1 point (measured stops with ``n_iter_no_change=3``:
        bibtex 62.5, delicious 67.3, SeqGO 38.7, debian-deps 72.8).
    validation_fraction : float, default=0.1
        Rows held out by ``early_stopping`` and ``learning_rate_schedule=
        "plateau"``.
    n_iter_no_change : int, default=2
        Epochs without a gain in validation P@1 that make a plateau.
    batch_size : int, default=128
        Samples per Adam step.
    max_iter : int, default=15
        Epochs of ``fit``. 15 with the default dropout: P@1 is flat from about
        epoch 12 on the real sets of ``../shared/data`` (benchmarks/NOTES.md)
        and still rises slowly on 100k generated labels.
    rehash_interval : int, default=50
        Adam steps until the first re-insertion of the output neurons into the
        tables (the first build happens before the first step).
    rehash_growth : float, default=1.1
        Each rehash interval is this factor longer than the previous one: tables
        are refreshed often while the weights move fast, then less often.
    rebuild_every : int, default=20
        Every this many rehashes draws new hash functions (0: never).
    adam_updates : {"lazy", "dense"}, default="lazy"
        Which rows of the input and output layers Adam updates at each step.
        "lazy": only the rows that received a gradient (the output neurons of the
        batch's active sets, the features present in the batch); a row's moments
        decay over the steps it skipped when it is next updated, but the small
        momentum-only moves of those steps are not applied. "dense": every row
        and output bias takes every step, untouched ones with a zero gradient,
        as PyTorch's dense Adam and the original SLIDE do (for comparison). Dense
        updates touch every row at every step, so they cost
        ``O((n_features + n_labels) * hidden)`` per step whatever the batch:
        several times slower than lazy at 10^5 labels. (On a generated
        100k-label problem dense was ahead for 3 epochs, then plateaued at P@1
        0.725 where lazy reached 0.748.) Hidden layers after the first and all
        hidden biases are always updated densely.
    logq_correction : bool, default=True
        Sampled-softmax correction of the random negatives: each of the ``m``
        uniformly drawn negatives stands for ``pool / m`` labels of the full
        softmax's sum, so its logit gets ``+ log(pool / m)`` in the training
        softmax (true labels and hash-table candidates are unchanged). Without
        it each drawn negative counts once instead of ``pool / m`` times, and
        the sampled normaliser underestimates the full one. Measured
        (BENCHMARKS.md): best P@1 0.770 vs 0.748 at 100k generated labels, 0.740
        vs 0.705 at 300k, 0.649 vs 0.634 on Delicious, 0.402 vs 0.362 on
        SeqGO; the first epochs are slower (0.42 vs 0.50 after one epoch at 100k
        labels). No effect when every label is active (``min_active`` >=
        labels, or exact training).
    candidates : {"clusters", "lsh"}, default="clusters"
        Where a sample's candidate neurons come from when the output layer is
        sampled (``hash_family`` not None). "clusters": the labels of the
        sample's best clusters in an index of the output weights (the k-means
        index of ``inference="clusters"``), rebuilt before every epoch; about 256
        labels per sample, the ones the model currently scores highest, i.e.
        the hard negatives. "lsh": SLIDE's hash tables of ``hash_family``
        (``hash_bits``, ``n_tables``, ``bucket_size``, ``bucket_policy``,
        ``rehash_interval``, ``rehash_growth``, ``rebuild_every``; they are not
        built with "clusters"). Measured on debian-deps (22,907 labels): P@1
        ~71 vs ~66 after 4 epochs at the same CPU time (BENCHMARKS.md).
    dropout : float, default=0.5
        Fraction of the last hidden layer's units zeroed for each training
        sample (inverted dropout: the others are scaled by ``1 / (1 -
        dropout)``; prediction uses every unit). Without it the network
        overfits real bag-of-words data within a few epochs (debian-deps: P@1
        71.2 at epoch 4, 68.6 at epoch 6). Best P@1 with 0.5 vs 0.0: delicious
        67.9 vs 63.1, bibtex 64.0 vs 62.4, SeqGO 40.8 vs 38.6, debian-deps 72.9
        vs 71.2; it needs more epochs (hence ``max_iter=15``) and costs ~2
        points of PSP@5 on debian-deps. 0.0 trains as before the parameter
        existed.
    inference : {"exact", "clusters"}, default="exact"
        How ``predict_topk`` and ``predict`` score. "exact": every output neuron.
        "clusters": the output neurons are grouped once by the direction of their
        weights (about ``4 sqrt(n_labels)`` clusters, built at the first such call
        after fitting: 0.5 s at 100k labels, 2 s at 670k); each row scores the
        cluster centres, then only the labels of its ``n_probes`` best clusters.
        On 2-epoch models at 100k and 670k labels: recall@5 of the exact top 5
        0.98-1.00, 16x and 36x faster than exact. On the 15-epoch default
        networks far less: gen100k recall 0.475 at 3.9x exact's speed with 16
        probes, 0.858 at 1.4x with 128; debian-deps 0.915 at 1.5x with the
        default 28 (BENCHMARKS.md, inference). Check recall against "exact" on
        a sample of rows before relying on it.

        .. deprecated:: 0.1
           "lsh" (only the neurons the training hash tables return, SLIDE's
           inference) warns with a FutureWarning and predicts as "clusters"; it
           will be refused from the next release, and models saved with it load
           with "clusters". The training tables are built for sampling, not
           retrieval: recall@5 of the exact top 5 was 0.05 at 100k labels and
           0.006 at 670k.
    n_probes : int or None, default=None
        Clusters scored per row with ``inference="clusters"`` (more clusters are
        scored while fewer than k labels were). More: higher recall, slower.
        None: enough clusters to score about 1,000 labels, and at least 16
        (recall@5 of exact was 0.97-0.99 with ~1,000 labels scored at 5k and
        100k labels).
    reranker : {"linear"} or None, default="linear"
        "linear": after the network, ``fit`` trains one linear model per
        label (L2-regularised squared hinge on the L2-normalised row, weights
        below 0.1 in magnitude dropped) on the rows whose top 32 network labels
        or true labels hold it, and ``predict_topk`` / ``predict`` / ``score``
        rank the network's top ``max(k, 32)`` labels by ``z(logit) +
        reranker_weight * z(-max(0, 1 - margin)**2)``, ``z`` standardising
        over the row's shortlist. The linear models see every input feature,
        which the narrow hidden layer compresses. Measured on the real sets of
        ``../shared/data`` (benchmarks/NOTES.md, "Re-ranker"), P@1 with vs
        without: bibtex 64.5 vs 63.4, delicious 68.4 vs 67.0, SeqGO 39.6 vs
        39.8, debian-deps 76.0 vs 72.4; PSP@5 +0.6 to +4.4; 1-15% more
        training CPU. ``partial_fit`` and ``dask.fit_distributed`` train the
        network only and drop a fitted re-ranker. ``predict_proba`` is the
        softmax over the network's logits with those of each row's top 32
        replaced by the re-ranked ones, so it ranks as ``predict`` does. None:
        the network alone (set it after fitting to compare).
    reranker_weight : float, default=1.0
        Weight of the linear models' term in the re-ranked score (read at
        prediction: tunable after fitting). 0 keeps the network's order of
        its shortlist.
    precision : {"float32", "bfloat16"}, default="float32"
        Arithmetic of the output layer's scores at prediction (``predict_topk``,
        ``predict``, ``predict_proba``, every ``inference`` mode). "bfloat16":
        the last hidden layer and the output weights are rounded to bfloat16
        and their products summed in float32: on CPUs with AMX about 3x faster
        exact top-k (100k-670k labels, BENCHMARKS.md); with AVX512_BF16 alone
        or without either, the same numbers at float32 speed or slower. Scores
        move by up to ~0.2% of their range, so near-ties may swap (the top-1
        label agreed on 99.9% of test rows). Training always runs in float32
        (Adam's steps are below bfloat16's resolution); the model keeps float32
        weights, so precision can be switched after fitting. With native
        kernels a bfloat16 copy of the output layer (2 bytes per weight) is
        made at the first call and kept beside the model until it trains.
    predict_k : int or None, default=None
        Labels ``predict`` marks per row for multilabel targets. None: the mean
        number of labels per training row, rounded (at least 1).
    shuffle : bool, default=True
        Shuffle the training rows each epoch.
    n_threads : int or None, default=None
        Threads of the engine. None: OpenMP's default at call time (honours
        OMP_NUM_THREADS and threadpoolctl). Results do not depend on it: with a
        fixed ``random_state``, ``fit`` is bit-reproducible for any thread count.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling, hash functions and negative sampling.
    verbose : int, default=0
        Progress on standard output. 1: within each epoch, samples done,
        samples/s, running loss and time left (one line rewritten in place on a
        terminal, a plain line every 10 s otherwise), then one line per epoch
        (loss, samples/s, elapsed). 2: also a line per rehash of the hash tables
        (Adam step, new hash functions or not, estimated time). The weights are
        the same at every verbosity.
    warm_start : bool, default=False
        Continue training the fitted network in ``fit`` instead of starting over.

    Attributes
    ----------
    classes_ : ndarray of shape (n_labels,)
        Class labels; for multilabel targets ``np.arange(n_labels)``.
    n_features_in_ : int
    n_iter_ : int
        Epochs run (by the last ``fit``, plus ``partial_fit`` calls). Updated
        after every epoch while ``fit`` runs, as is ``loss_curve_``: another
        thread can follow the training (a fit that fails or is interrupted
        puts back the values it started from).
    loss_curve_ : list of float
        Mean training loss per epoch (sampled softmax cross-entropy).
    label_counts_ : ndarray of shape (n_labels,)
        Training rows per label (for propensity-scored metrics).
    n_samples_seen_ : int
        Training rows seen.

    Notes
    -----
    How to choose the parameters, and the measurements behind each default:
    the user guide's page docs/parameters.md.

    ``predict_topk`` returns column indices into ``classes_`` and logits (higher
    is better). ``score`` returns precision at 1 (for single-label targets this is
    accuracy): subset accuracy, scikit-learn's default, is near 0 for XMC.

    Examples
    --------
    >>> from sklearn_slide import SlideClassifier
    >>> from sklearn_slide.datasets import make_extreme_multilabel
    >>> X, Y = make_extreme_multilabel(2000, 5000, 300, random_state=0)
    >>> clf = SlideClassifier(max_iter=3, random_state=0).fit(X, Y)
    >>> labels, scores = clf.predict_topk(X[:5], k=3)
    >>> labels.shape
    (5, 3)
    """

    _parameter_constraints = config.PARAMETER_CONSTRAINTS

    def __init__(
        self,
        *,
        hidden_layer_sizes=(128,),
        hash_family="auto",
        hash_bits=6,
        n_tables=50,
        bucket_size=128,
        bucket_policy="fifo",
        min_active=512,
        max_active=4096,
        learning_rate=3e-3,
        learning_rate_schedule="constant",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=2,
        batch_size=128,
        max_iter=15,
        rehash_interval=50,
        rehash_growth=1.1,
        rebuild_every=20,
        adam_updates="lazy",
        logq_correction=True,
        candidates="clusters",
        dropout=0.5,
        inference="exact",
        n_probes=None,
        reranker="linear",
        reranker_weight=1.0,
        precision="float32",
        predict_k=None,
        shuffle=True,
        n_threads=None,
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.hash_family = hash_family
        self.hash_bits = hash_bits
        self.n_tables = n_tables
        self.bucket_size = bucket_size
        self.bucket_policy = bucket_policy
        self.min_active = min_active
        self.max_active = max_active
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.rehash_interval = rehash_interval
        self.rehash_growth = rehash_growth
        self.rebuild_every = rebuild_every
        self.adam_updates = adam_updates
        self.logq_correction = logq_correction
        self.candidates = candidates
        self.dropout = dropout
        self.inference = inference
        self.n_probes = n_probes
        self.reranker = reranker
        self.reranker_weight = reranker_weight
        self.precision = precision
        self.predict_k = predict_k
        self.shuffle = shuffle
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    # ------------------------------------------------------------------ fitting

    @trains_model
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Train for ``max_iter`` epochs.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Converted to CSR float32.
        y : array-like of shape (n_samples,) or {array-like, sparse matrix} of \
                shape (n_samples, n_labels)
            Class labels, or a multilabel 0/1 indicator matrix (dense or CSR).

        Returns
        -------
        self : SlideClassifier
        """
        with self._input_attributes_restored_on_error():
            return self._fit(X, y)

    def _fit(self, X, y):
        continuing = self.warm_start and hasattr(self, "_network")
        X, y = validate_training_data(self, X, y, reset=not continuing)
        kind = target_kind(y)
        if continuing:
            check_same_target_kind(kind, self._target_kind)
            classes = self.classes_
        else:
            classes = classes_of(y, kind)
        Y = label_lists(y, kind, classes)
        # Fit from scratch builds everything aside and commits only at the end:
        # an interrupted or failed fit leaves the estimator as it was.
        state = (training.FitState.of(self) if continuing
                 else training.new_fit_state(self, X, y, kind, classes))
        rows = validation = None
        if self.learning_rate_schedule == "plateau" or self.early_stopping:
            # The engine trains on `rows` of X in place: only the held-out part is
            # copied. Early stopping alone gives up on a split of too few rows.
            split = lr_schedule.split_validation(
                X.shape[0], self.validation_fraction, state.rng,
                required=self.learning_rate_schedule == "plateau")
            if split is not None:
                rows, held_out = split
                validation = (X[held_out], Y[held_out])
                # A new split: scores of an earlier fit's rows do not compare.
                state.lr_schedule.update(best=-np.inf, stalled=0)
        training.train(self, state, X, Y, self.max_iter, first_call=not continuing,
                       rows=rows, validation=validation)
        if state.network["tables"] is not None:
            training.refresh_tables(self, state)
        state.reranker = None
        if self.reranker == "linear":
            state.reranker = linear_reranker.train(state.network, X, Y, state.rng,
                                                   self.n_threads)
        state.commit(self)
        return self

    @trains_model
    def partial_fit(self, X, y, classes=None):
        """Train one epoch over (X, y), starting a new model on the first call.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
        classes : array-like of shape (n_labels,), default=None
            Every class of the problem. Required on the first call for 1-D y; for
            multilabel y the columns are the labels (``classes`` may be omitted).

        Returns
        -------
        self : SlideClassifier
        """
        with self._input_attributes_restored_on_error():
            return self._partial_fit(X, y, classes)

    def _partial_fit(self, X, y, classes):
        first_call = not hasattr(self, "_network")
        # Every call: parameters changed by set_params since the first are read too.
        self._validate_params()
        X, y = validate_training_data(self, X, y, reset=first_call)
        kind = target_kind(y)
        if first_call:
            classes = classes_for_partial_fit(y, kind, classes)
            Y = label_lists(y, kind, classes)
            state = training.new_fit_state(self, X, y, kind, classes)
        else:
            check_same_target_kind(kind, self._target_kind)
            check_same_classes(classes, kind, self.classes_)
            Y = label_lists(y, kind, self.classes_)
            state = training.FitState.of(self)
        training.train(self, state, X, Y, 1, first_call=first_call)
        # The network moved: a re-ranker trained on the old one would not match
        # its shortlists, and it cannot be updated from one batch.
        state.reranker = None
        state.commit(self)
        return self

    @contextmanager
    def _input_attributes_restored_on_error(self):
        """A failed or interrupted fit leaves the estimator as it was: validation
        (reset=True) sets n_features_in_ before training, and training updates
        loss_curve_ and n_iter_ after every epoch, so they are restored."""
        names = ("n_features_in_", "feature_names_in_", "loss_curve_", "n_iter_")
        saved = {name: getattr(self, name) for name in names if hasattr(self, name)}
        try:
            yield
        except BaseException:
            for name in names:
                if name in saved:
                    setattr(self, name, saved[name])
                elif hasattr(self, name):
                    delattr(self, name)
            raise

    def __sklearn_is_fitted__(self):
        return hasattr(self, "_network")

    # --------------------------------------------------------------- prediction

    @reads_model
    def predict_topk(self, X, k=5):
        """Top-k labels of each row, best first.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        k : int, default=5

        Returns
        -------
        labels : ndarray of shape (n_samples, k), int32
            Column indices into ``classes_`` (the label ids for multilabel targets).
        scores : ndarray of shape (n_samples, k), float32
            Output-layer logits of those labels.
        """
        check_is_fitted(self)
        config.check_parameters(self, config.TOPK_PARAMETERS)
        X = validate_prediction_data(self, X)
        return inference.predict_topk(self, X, _checked_k(k, len(self.classes_)))

    @reads_model
    def predict(self, X):
        """Class of each row (1-D y), or the indicator of its top ``predict_k`` labels.

        For multilabel targets the result is CSR when the model was fitted on a
        sparse y, dense otherwise.
        """
        check_is_fitted(self)
        config.check_parameters(self, ("predict_k",))  # predict_topk checks the others
        if self._target_kind == TargetKind.MULTICLASS:
            labels, _ = self.predict_topk(X, k=1)
            return self.classes_[labels[:, 0]]
        k = self.predict_k or max(1, int(round(self._mean_labels)))
        k = min(k, len(self.classes_))
        labels, _ = self.predict_topk(X, k=k)
        if not self._sparse_output:
            memory.check_dense_output("predict", n_rows=labels.shape[0],
                                      n_labels=len(self.classes_))
        return topk_to_indicator(
            labels, len(self.classes_), sparse=self._sparse_output, dtype=self._y_dtype
        )

    @reads_model
    def predict_proba(self, X, k=None):
        """Softmax probabilities over all labels: dense, or the top k of each row as CSR.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        k : int or None, default=None
            None: the dense ``(n_samples, n_labels)`` array, refused with
            ValueError when it would exceed ``DENSE_OUTPUT_LIMIT_BYTES`` (1 GiB,
            ``sklearn_slide._memory``). An int in ``[1, n_labels]``: a CSR
            matrix of the same shape storing only the k largest probabilities
            of each row (exactly k entries per row, ties at the k-th going to
            the smaller label id), with the same values as the dense result,
            computed a block of rows at a time: memory ``8 k`` bytes per row
            plus a block of about 100 MB, whatever ``n_samples``.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_labels), float32, or csr_matrix
            Rows sum to 1 (dense) or to the probability mass of their top k.

        Notes
        -----
        Every label is scored, as the softmax needs all logits: ``inference``
        does not apply (``precision`` does). For rankings alone,
        ``predict_topk`` is faster and honours ``inference``; its logits order
        the labels as these probabilities do.
        """
        check_is_fitted(self)
        config.check_parameters(self, config.PROBA_PARAMETERS)
        X = validate_prediction_data(self, X)
        if k is None:
            return inference.predict_proba(self, X)
        return inference.predict_top_proba(self, X, _checked_k(k, len(self.classes_)))

    def predict_log_proba(self, X):
        """Log of ``predict_proba``."""
        return np.log(self.predict_proba(X))

    @reads_model
    def score(self, X, y, sample_weight=None):
        """Precision at 1: the fraction of rows whose top label is a true label.

        For single-label targets this equals accuracy. (Subset accuracy,
        scikit-learn's default for multilabel classifiers, is near 0 on XMC data.)
        """
        check_is_fitted(self)
        labels, _ = self.predict_topk(X, k=1)
        n = labels.shape[0]
        if self._target_kind == TargetKind.MULTICLASS:
            # Classes never seen in training count as misses (as in accuracy_score).
            y = column_or_1d(np.asarray(y), warn=True)
            check_consistent_length(labels, y)
            hits = self.classes_[labels[:, 0]] == y
        else:
            check_sparse_structure(y, "y")
            check_indicator_values(y)
            shape = y.shape if sp.issparse(y) else np.shape(np.atleast_2d(y))
            if shape != (n, len(self.classes_)):
                raise ValueError(
                    f"y has shape {shape}; expected ({n}, {len(self.classes_)}): one row per "
                    "sample of X and one column per label of the fitted model"
                )
            # The true labels as training reads them, scored by the metrics' P@k.
            Y = label_lists(y, self._target_kind, self.classes_)
            hits = _Ranking(Y, labels, 1).hits[:, 0]
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, labels)
        return float(np.average(hits, weights=sample_weight))

    # ------------------------------------------------------------------ helpers

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_label = True
        # Gradients are summed in sample order whatever the thread count, so a
        # fixed random_state gives bit-identical fits with any n_threads.
        return tags

    @reads_model
    def __getstate__(self):
        # A consistent snapshot: not a network half-way through a training step.
        if hasattr(self, "_network"):
            saved_model.check_mapped_files(self._network)  # pickling reads every array
        return super().__getstate__()

    def __setstate__(self, state_dict):
        network = state_dict.get("_network")
        if network is not None and network.get("format_version") != network_state.FORMAT_VERSION:
            raise ValueError(
                "this SlideClassifier was saved with model format version "
                f"{network.get('format_version')!r}; this sklearn_slide reads version "
                f"{network_state.FORMAT_VERSION}. Refit the model with this version."
            )
        if network is not None:
            network_state.check_network(network)  # before anything reads its fields
        # Parameters added after the model was saved take the value that keeps
        # the saved model's behaviour (get_params and clone need them all): their
        # default, or what the model did before the parameter existed.
        for name, default in _constructor_defaults(type(self)).items():
            state_dict.setdefault(name, config.value_before(name, default))
        state_dict["inference"] = inference.inference_of_saved_model(state_dict["inference"])
        if network is not None:
            state_dict.setdefault("_reranker", None)  # fitted before the re-ranker existed
        if network is not None and "_lr_schedule" not in state_dict:
            # Fitted before learning-rate schedules: it trained at learning_rate.
            state_dict["_lr_schedule"] = lr_schedule.new_state(state_dict["learning_rate"])
            state_dict["learning_rate_"] = float(state_dict["learning_rate"])
            state_dict["validation_scores_"] = None
        if network is not None:
            saved_model.check_saved_state(state_dict)
        super().__setstate__(state_dict)


def _checked_k(k, n_labels):
    """``k`` of predict_topk and predict_proba: an int in [1, n_labels]."""
    if not isinstance(k, Integral) or isinstance(k, bool) or not 1 <= k <= n_labels:
        raise ValueError(f"k must be an integer in [1, {n_labels}], got {k!r}")
    return int(k)


def _constructor_defaults(cls):
    return {
        name: parameter.default
        for name, parameter in inspect.signature(cls.__init__).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
