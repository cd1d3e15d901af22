"""SlideClassifier: the scikit-learn estimator around the SLIDE engine."""

import inspect
import time
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_consistent_length, check_is_fitted

from . import _derived_cache as derived_cache
from . import _label_clusters as label_clusters
from . import _lr_schedule as lr_schedule
from ._model_lock import reads_model, trains_model
from . import _network_state as state
from ._compat import Interval, StrOptions, _fit_context, validate_data
from ._engine import active_kernels, core, csr_buffers, resolve_n_threads
from .metrics import precision_at_k
from ._targets import TargetKind, label_counts, label_lists, target_kind, topk_to_indicator

# Below this many labels, hash_family="auto" trains the output layer exactly:
# scoring every neuron then costs about what hashing and sampling would.
AUTO_EXACT_MAX_LABELS = 4096

# Dense (n_samples, n_labels) results (predict_proba, dense predict) above this
# many bytes are refused: use predict_topk, which never materialises them.
DENSE_OUTPUT_LIMIT_BYTES = 2**30

HASH_FAMILIES = ("simhash", "wta", "dwta", "minhash")

# Upper bounds of integer parameters: what the engine's C++ types hold (int,
# int64 with headroom for sums), and a thread count OpenMP can create (libgomp
# exits the process when it cannot start a thread).
_INT32_MAX = 2**31 - 1
_INT62_MAX = 2**62
MAX_THREADS = 1024


class SlideClassifier(ClassifierMixin, BaseEstimator):
    """Wide softmax network trained with SLIDE's hash-sampled active sets.

    ``sparse input -> dense ReLU hidden layer(s) -> output layer over all labels``.
    Hidden layers are trained exactly. For the output layer, locality-sensitive
    hash tables of the neurons' weight rows retrieve, per sample, the neurons
    likely to score high; forward, softmax and backward run only over those, the
    sample's true labels and a few random negatives (the active set). Samples of
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
    validation_fraction : float, default=0.1
        Rows held out by ``learning_rate_schedule="plateau"`` (not trained on).
    n_iter_no_change : int, default=2
        Epochs without a gain in validation P@1 before the rate is divided.
    batch_size : int, default=128
        Samples per Adam step.
    max_iter : int, default=10
        Epochs of ``fit``.
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
    inference : {"exact", "clusters", "lsh"}, default="exact"
        How ``predict_topk`` and ``predict`` score. "exact": every output neuron.
        "clusters": the output neurons are grouped once by the direction of their
        weights (about ``4 sqrt(n_labels)`` clusters, built at the first such call
        after fitting: 0.5 s at 100k labels, 2 s at 670k); each row scores the
        cluster centres, then only the labels of its ``n_probes`` best clusters.
        Measured at 100k and 670k labels: recall@5 of the exact top 5 0.997,
        15x and 43x faster than exact (BENCHMARKS.md, inference). "lsh": only the
        neurons the training hash tables return (SLIDE's inference); with the
        training tables' settings it misses most of the exact top-k (recall@5
        0.03 measured at 100k labels), so prefer "clusters".
    n_probes : int or None, default=None
        Clusters scored per row with ``inference="clusters"`` (more clusters are
        scored while fewer than k labels were). More: higher recall, slower.
        None: enough clusters to score about 1,000 labels, and at least 16
        (recall@5 of exact was 0.97-0.99 with ~1,000 labels scored at 5k and
        100k labels).
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
        1 prints one line per epoch (loss, samples/s, elapsed).
    warm_start : bool, default=False
        Continue training the fitted network in ``fit`` instead of starting over.

    Attributes
    ----------
    classes_ : ndarray of shape (n_labels,)
        Class labels; for multilabel targets ``np.arange(n_labels)``.
    n_features_in_ : int
    n_iter_ : int
        Epochs run (by the last ``fit``, plus ``partial_fit`` calls).
    loss_curve_ : list of float
        Mean training loss per epoch (sampled softmax cross-entropy).
    label_counts_ : ndarray of shape (n_labels,)
        Training rows per label (for propensity-scored metrics).
    n_samples_seen_ : int
        Training rows seen.

    Notes
    -----
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

    _parameter_constraints = {
        "hidden_layer_sizes": ["array-like"],
        "hash_family": [StrOptions({"auto", *HASH_FAMILIES}), None],
        "hash_bits": [Interval(Integral, 1, 32, closed="both")],
        "n_tables": [Interval(Integral, 1, 4096, closed="both")],
        "bucket_size": [Interval(Integral, 1, _INT32_MAX, closed="both")],
        "bucket_policy": [StrOptions({"fifo", "reservoir"})],
        "min_active": [Interval(Integral, 0, _INT62_MAX, closed="both")],
        "max_active": [Interval(Integral, 1, _INT62_MAX, closed="both")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "learning_rate_schedule": [StrOptions({"constant", "plateau"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, _INT62_MAX, closed="both")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "rehash_interval": [Interval(Integral, 1, _INT62_MAX, closed="both")],
        "rehash_growth": [Interval(Real, 1, None, closed="left")],
        "rebuild_every": [Interval(Integral, 0, _INT62_MAX, closed="both")],
        "adam_updates": [StrOptions({"lazy", "dense"})],
        "logq_correction": ["boolean"],
        "inference": [StrOptions({"exact", "clusters", "lsh"})],
        "n_probes": [Interval(Integral, 1, _INT32_MAX, closed="both"), None],
        "precision": [StrOptions({"float32", "bfloat16"})],
        "predict_k": [Interval(Integral, 1, None, closed="left"), None],
        "shuffle": ["boolean"],
        "n_threads": [Interval(Integral, 1, MAX_THREADS, closed="both"), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }

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
        validation_fraction=0.1,
        n_iter_no_change=2,
        batch_size=128,
        max_iter=10,
        rehash_interval=50,
        rehash_growth=1.1,
        rebuild_every=20,
        adam_updates="lazy",
        logq_correction=True,
        inference="exact",
        n_probes=None,
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
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.rehash_interval = rehash_interval
        self.rehash_growth = rehash_growth
        self.rebuild_every = rebuild_every
        self.adam_updates = adam_updates
        self.logq_correction = logq_correction
        self.inference = inference
        self.n_probes = n_probes
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
        X, y = self._validate_training_data(X, y, reset=not continuing)
        kind = target_kind(y)
        if continuing:
            self._check_same_target_kind(kind, y)
            classes = self.classes_
        else:
            classes = self._classes_from(y, kind)
        Y = label_lists(y, kind, classes)
        # Fit from scratch builds everything aside and commits only at the end:
        # an interrupted or failed fit leaves the estimator as it was.
        fitted = self._fitted_view() if continuing else self._new_fit(X, y, Y, kind, classes)
        rows = validation = None
        if self.learning_rate_schedule == "plateau":
            # The engine trains on `rows` of X in place: only the held-out part is copied.
            rows, held_out = lr_schedule.split_validation(
                X.shape[0], self.validation_fraction, fitted["rng"])
            validation = (X[held_out], Y[held_out])
        self._train(fitted, X, Y, self.max_iter, first_call=not continuing,
                    rows=rows, validation=validation)
        if fitted["network"]["tables"] is not None:
            self._refresh_tables(fitted)
        self._commit(fitted)
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
        if first_call:
            self._validate_params()
        X, y = self._validate_training_data(X, y, reset=first_call)
        kind = target_kind(y)
        if first_call:
            if kind == TargetKind.MULTICLASS:
                if classes is None:
                    raise ValueError(
                        "classes must be passed on the first call to partial_fit with 1-D y"
                    )
                classes = np.unique(np.asarray(classes))
            else:
                n_labels = y.shape[1]
                if classes is not None and len(classes) != n_labels:
                    raise ValueError(
                        f"classes has {len(classes)} entries but y has {n_labels} label columns"
                    )
                classes = np.arange(n_labels) if classes is None else np.asarray(classes)
            if len(classes) < 2:
                raise ValueError("SlideClassifier needs at least 2 classes (labels)")
            Y = label_lists(y, kind, classes)
            fitted = self._new_fit(X, y, Y, kind, classes)
        else:
            self._check_same_target_kind(kind, y)
            if classes is not None and not np.array_equal(np.asarray(classes), self.classes_):
                raise ValueError("classes differs from the classes of the first partial_fit call")
            Y = label_lists(y, kind, self.classes_)
            fitted = self._fitted_view()
        self._train(fitted, X, Y, 1, first_call=first_call)
        self._commit(fitted)
        return self

    @contextmanager
    def _input_attributes_restored_on_error(self):
        """A failed or interrupted fit leaves the estimator as it was: validation
        (reset=True) sets n_features_in_ before training, so it is restored."""
        names = ("n_features_in_", "feature_names_in_")
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

    def _validate_training_data(self, X, y, reset):
        if y is None:
            raise ValueError("requires y to be passed, but the target y is None")
        _check_sparse_structure(X, "X")
        _check_sparse_structure(y, "y")
        X, y = validate_data(
            self, X, y, accept_sparse="csr", dtype=np.float32, multi_output=True, reset=reset
        )
        if not sp.issparse(y) and y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if sp.issparse(y):
            y = y.tocsr()
        check_classification_targets(y)
        return _as_canonical_csr(X), y

    def _classes_from(self, y, kind):
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

    def _check_same_target_kind(self, kind, y):
        if kind != self._target_kind:
            raise ValueError(
                f"y is {kind} but the model was fitted on {self._target_kind} targets"
            )

    def _new_fit(self, X, y, Y, kind, classes):
        """Fresh network, tables and schedule for this data (nothing assigned to self)."""
        hidden = self._hidden_sizes()
        rng = check_random_state(self.random_state)
        n_labels = len(classes)
        family = self._resolved_hash_family(n_labels)
        bits = None
        if family is not None:
            bits = state.table_bits_for(family, self.hash_bits, n_labels, hidden[-1])
        self._check_training_memory(X.shape[0], X.shape[1], hidden, n_labels, bits,
                                    new_model=True)
        network = {
            "format_version": state.FORMAT_VERSION,
            "params": state.init_params(X.shape[1], hidden, n_labels, rng),
            "hash_family": family,
            "hash_bits": int(self.hash_bits),
            "tables": None,
            "schedule": state.init_schedule(
                self.rehash_interval, rng.randint(np.iinfo(np.int64).max)
            ),
            "sampling_seed": int(rng.randint(np.iinfo(np.int64).max)),
        }
        if family is not None:
            network["tables"] = state.init_tables(self.n_tables, bits, n_labels)
        return {
            "network": network,
            "rng": rng,
            "classes": classes,
            "target_kind": kind,
            "sparse_output": sp.issparse(y),
            "y_dtype": np.asarray(y.data if sp.issparse(y) else y).dtype,
            "label_counts": np.zeros(n_labels, dtype=np.int64),
            "n_samples_seen": 0,
            "n_iter": 0,
            "loss_curve": [],
            "mean_labels": 0.0,
            "lr_schedule": lr_schedule.new_state(self.learning_rate),
            "validation_scores": None,
        }

    def _fitted_view(self):
        network = self._network
        state.make_writable(network["params"])
        if network["tables"] is not None:
            state.make_writable(network["tables"])
        return {
            "network": network,
            "rng": self._rng,
            "classes": self.classes_,
            "target_kind": self._target_kind,
            "sparse_output": self._sparse_output,
            "y_dtype": self._y_dtype,
            "label_counts": self.label_counts_,
            "n_samples_seen": self.n_samples_seen_,
            "n_iter": self.n_iter_,
            "loss_curve": list(self.loss_curve_),
            "mean_labels": self._mean_labels,
            "lr_schedule": dict(self._lr_schedule),
            "validation_scores": (None if self.validation_scores_ is None
                                  else list(self.validation_scores_)),
        }

    def _commit(self, fitted):
        derived_cache.forget(self)
        self._network = fitted["network"]
        self._rng = fitted["rng"]
        self.classes_ = fitted["classes"]
        self._target_kind = fitted["target_kind"]
        self._sparse_output = fitted["sparse_output"]
        self._y_dtype = fitted["y_dtype"]
        self.label_counts_ = fitted["label_counts"]
        self.n_samples_seen_ = fitted["n_samples_seen"]
        self.n_iter_ = fitted["n_iter"]
        self.loss_curve_ = fitted["loss_curve"]
        self._mean_labels = fitted["mean_labels"]
        self._lr_schedule = fitted["lr_schedule"]
        self.learning_rate_ = fitted["lr_schedule"]["learning_rate"]
        self.validation_scores_ = fitted["validation_scores"]

    def _train_config(self, network, n_labels):
        return {
            "exact": network["tables"] is None,
            "hash_family": network["hash_family"] or "dwta",
            "hash_bits": network["hash_bits"],
            "bucket_size": int(self.bucket_size),
            "bucket_policy": self.bucket_policy,
            "min_active": int(self.min_active),
            "max_active": int(max(self.max_active, 1)),
            "learning_rate": float(self.learning_rate),
            "beta_1": 0.9,
            "beta_2": 0.999,
            "epsilon": 1e-8,
            "batch_size": int(self.batch_size),
            "n_threads": resolve_n_threads(self.n_threads),
            "seed": network["sampling_seed"],
            "rehash_growth": float(self.rehash_growth),
            "rebuild_every": int(self.rebuild_every),
            "dense_adam": self.adam_updates == "dense",
            "logq_correction": bool(self.logq_correction),
        }

    def _check_training_memory(self, n_samples, n_features, hidden, n_labels, table_bits,
                               new_model):
        n_threads = resolve_n_threads(self.n_threads)
        n_tables = 0 if table_bits is None else int(self.n_tables)
        parts = {}
        if new_model:
            parts["network"] = state.network_bytes(n_features, hidden, n_labels)
            parts["hash tables"] = (
                state.table_bytes(n_tables, table_bits, n_labels) if n_tables else 0
            )
            parts["initialisation"] = state.init_peak_bytes(n_features, hidden, n_labels)
        parts["training buffers"] = state.training_scratch_bytes(
            n_features, hidden, n_labels, n_tables, table_bits or 0, n_threads,
            batch_size=int(self.batch_size), max_active=int(self.max_active), n_samples=n_samples,
        )
        state.check_memory("training", parts)

    def _epoch_learning_rate(self, fitted):
        # "constant" follows the parameter (set_params between warm starts
        # works); "plateau" continues from the rate it reached. Either way the
        # rate used last is learning_rate_.
        schedule = fitted["lr_schedule"]
        if self.learning_rate_schedule == "constant":
            schedule["learning_rate"] = float(self.learning_rate)
        return schedule["learning_rate"]

    def _validation_p_at_1(self, network, validation):
        X_val, Y_val = validation
        top1, _ = core.predict_topk(network["params"], *csr_buffers(X_val), 1,
                                    resolve_n_threads(self.n_threads))
        return precision_at_k(Y_val, top1, k=1)

    def _train(self, fitted, X, Y, n_epochs, first_call, rows=None, validation=None):
        """Train n_epochs over the rows `rows` of (X, Y) (None: all of them),
        measuring P@1 on `validation` (X_val, Y_val) after each epoch if given."""
        derived_cache.forget(self)  # the weights are about to change
        network = fitted["network"]
        n_labels = len(fitted["classes"])
        if not first_call:  # the model exists: only the engine's buffers are new
            tables = network["tables"]
            self._check_training_memory(
                X.shape[0], X.shape[1], network["params"]["layer_sizes"][1:-1], n_labels,
                None if tables is None else tables["table_bits"], new_model=False,
            )
        config = self._train_config(network, n_labels)
        x_buffers = csr_buffers(X)
        y_buffers = csr_buffers(Y)
        if rows is None:
            rows = np.arange(X.shape[0])
        Y_trained = Y[rows]
        n = len(rows)
        seen_before = fitted["n_samples_seen"]
        fitted["label_counts"] = fitted["label_counts"] + label_counts(Y_trained)
        fitted["n_samples_seen"] = seen_before + n
        total_labels = fitted["mean_labels"] * seen_before + Y_trained.nnz
        fitted["mean_labels"] = total_labels / fitted["n_samples_seen"]
        start = time.perf_counter()
        if validation is not None and fitted["validation_scores"] is None:
            fitted["validation_scores"] = []
        for epoch in range(n_epochs):
            config["learning_rate"] = self._epoch_learning_rate(fitted)
            order = rows[fitted["rng"].permutation(n)] if self.shuffle else rows
            epoch_start = time.perf_counter()
            stats = core.train_epoch(
                network["params"],
                network["tables"],
                *x_buffers,
                *y_buffers,
                order.astype(np.int64),
                config,
                network["schedule"],
            )
            loss = stats["loss_sum"] / max(stats["n_labelled"], 1)
            mean_active = stats["active_sum"] / max(stats["n_labelled"], 1)
            problem = state.divergence(network["params"], loss, mean_active)
            if problem:
                raise RuntimeError(
                    f"training diverged in epoch {fitted['n_iter'] + 1}: {problem}. Lower "
                    f"learning_rate (now {config['learning_rate']:g}) or scale the features "
                    "(e.g. unit-norm rows). "
                    + ("The estimator is unchanged." if first_call else
                       "The network's weights were changed by the failed epoch: refit it.")
                )
            fitted["loss_curve"].append(float(loss))
            fitted["n_iter"] += 1
            lowered = False
            if validation is not None:
                score = self._validation_p_at_1(network, validation)
                fitted["validation_scores"].append(score)
                lowered = lr_schedule.after_epoch(
                    fitted["lr_schedule"], score, int(self.n_iter_no_change))
            if self.verbose:
                elapsed = time.perf_counter() - epoch_start
                active = stats["active_sum"] / max(stats["n_labelled"], 1)
                print(
                    f"Epoch {fitted['n_iter']}: loss {loss:.4f}, "
                    f"{n / max(elapsed, 1e-9):,.0f} samples/s, "
                    f"mean active set {active:,.0f}, "
                    f"elapsed {time.perf_counter() - start:.1f} s"
                    + (f", validation P@1 {fitted['validation_scores'][-1]:.4f}"
                       if validation is not None else "")
                    + (f", learning rate now {fitted['lr_schedule']['learning_rate']:g}"
                       if lowered else ""),
                    flush=True,
                )

    def _refresh_tables(self, fitted):
        """Re-insert the final weights so LSH inference sees the trained model."""
        network = fitted["network"]
        config = self._train_config(network, len(fitted["classes"]))
        core.rebuild_tables(
            network["params"], network["tables"], config, network["schedule"]
        )

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
        X = self._validate_prediction_data(X)
        n_labels = len(self.classes_)
        if not isinstance(k, Integral) or isinstance(k, bool) or not 1 <= k <= n_labels:
            raise ValueError(f"k must be an integer in [1, {n_labels}], got {k!r}")
        state.check_memory("predict_topk", {"labels and scores": 8 * X.shape[0] * k,
                                            **self._bfloat16_copy_bytes()})
        network = self._network
        lsh = clusters = None
        if self.inference == "clusters":
            index = self._label_clusters()
            n_probes = self.n_probes or label_clusters.default_n_probes(
                n_labels, len(index["centroid_biases"]))
            clusters = dict(index, n_probes=int(n_probes))
        elif self.inference == "lsh":
            if network["tables"] is None:
                raise ValueError(
                    'inference="lsh" needs hash tables, but this model was trained exactly '
                    '(hash_family=None or "auto" with few labels); use inference="exact"'
                )
            lsh = {
                "tables": network["tables"],
                "hash_family": network["hash_family"],
                "hash_bits": network["hash_bits"],
                "hash_seed": network["schedule"]["hash_seed"],
                "max_candidates": int(self.max_active),
                "fallback": self._fallback_labels(int(k)),
            }
        return core.predict_topk(
            network["params"], *csr_buffers(X), int(k), resolve_n_threads(self.n_threads),
            lsh=lsh, clusters=clusters, precision=self.precision,
            packed_bf16=self._packed_bfloat16() if lsh is None and clusters is None else None,
        )

    @reads_model
    def predict(self, X):
        """Class of each row (1-D y), or the indicator of its top ``predict_k`` labels.

        For multilabel targets the result is CSR when the model was fitted on a
        sparse y, dense otherwise.
        """
        check_is_fitted(self)
        if self._target_kind == TargetKind.MULTICLASS:
            labels, _ = self.predict_topk(X, k=1)
            return self.classes_[labels[:, 0]]
        k = self.predict_k or max(1, int(round(self._mean_labels)))
        k = min(k, len(self.classes_))
        labels, _ = self.predict_topk(X, k=k)
        if not self._sparse_output:
            self._check_dense_output_size(labels.shape[0], "predict")
        return topk_to_indicator(
            labels, len(self.classes_), sparse=self._sparse_output, dtype=self._y_dtype
        )

    @reads_model
    def predict_proba(self, X):
        """Softmax probabilities over all labels, shape (n_samples, n_labels).

        Refused with ValueError when the dense result would exceed
        ``DENSE_OUTPUT_LIMIT_BYTES`` (1 GiB): use ``predict_topk`` for large label sets.
        """
        check_is_fitted(self)
        X = self._validate_prediction_data(X)
        self._check_dense_output_size(X.shape[0], "predict_proba", self._bfloat16_copy_bytes())
        proba = core.predict_scores(
            self._network["params"], *csr_buffers(X), True, resolve_n_threads(self.n_threads),
            precision=self.precision, packed_bf16=self._packed_bfloat16(),
        )
        return proba

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
            _check_sparse_structure(y, "y")
            Y = sp.csr_matrix(y) if not sp.issparse(y) else y.tocsr()
            if Y.shape != (n, len(self.classes_)):
                raise ValueError(
                    f"y has shape {Y.shape}; expected ({n}, {len(self.classes_)}): one row per "
                    "sample of X and one column per label of the fitted model"
                )
            hits = np.asarray(Y[np.arange(n), labels[:, 0]]).ravel() != 0
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, labels)
        return float(np.average(hits, weights=sample_weight))

    def _validate_prediction_data(self, X):
        _check_sparse_structure(X, "X")
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float32, reset=False)
        return _as_canonical_csr(X)

    def _check_dense_output_size(self, n_rows, method, also_needed=None):
        needed = 4 * n_rows * len(self.classes_)
        if needed > DENSE_OUTPUT_LIMIT_BYTES:
            raise ValueError(
                f"{method} would allocate a dense ({n_rows}, {len(self.classes_)}) array "
                f"({needed:,} bytes, {needed / 2**30:.1f} GiB; limit "
                f"{DENSE_OUTPUT_LIMIT_BYTES / 2**30:.1f} GiB); "
                "use predict_topk(X, k), or predict in smaller row batches"
            )
        state.check_memory(method, {"dense output": needed, **(also_needed or {})})

    def _bfloat16_copy_bytes(self):
        # Native bfloat16 kernels score a bfloat16 copy of the output layer
        # (counted whatever the kernels, and even when cached: an upper bound).
        if self.precision != "bfloat16":
            return {}
        return {"bfloat16 output layer": 2 * self._network["params"]["output_weights"].size}

    def _packed_bfloat16(self):
        """The output layer packed for the native bfloat16 kernels, or None.

        None with precision="float32" or kernels without native bfloat16 (the
        engine then scores the float32 weights). Packed once per model and
        kernel set, cached like the cluster index (``_derived_cache``), so that
        small prediction calls do not repack the whole layer (60 ms at 670k
        labels).
        """
        if self.precision != "bfloat16":
            return None
        params = self._network["params"]
        key = (id(params), int(self._network["schedule"]["step"]), active_kernels())
        return derived_cache.cached(
            self, "bfloat16 output layer", key,
            lambda: core.pack_output_bf16(params, resolve_n_threads(self.n_threads)))

    def _label_clusters(self):
        """The cluster index of the current output layer, built on first use.

        Dropped whenever training starts or a new network is committed, and
        keyed by the parameter arrays and the Adam step count (a shallow copy
        sharing the arrays sees the steps its twin took).
        Held outside the estimator (``_derived_cache``: not pickled; a loaded
        model rebuilds it). Concurrent first calls may both build it; the
        results are identical.
        """
        params = self._network["params"]
        key = (id(params), int(self._network["schedule"]["step"]))

        def build():
            weights = params["output_weights"]
            state.check_memory("label clusters", {
                "label clusters": label_clusters.index_nbytes(*weights.shape)})
            return label_clusters.build_label_clusters(weights, params["output_biases"])

        return derived_cache.cached(self, "label clusters", key, build)

    def _fallback_labels(self, k):
        # Most frequent training labels first (ties: lower index first): what LSH
        # inference scores when the buckets return fewer than k candidates. At
        # most k - 1 of them can be candidates already, so 2k are enough: a
        # partition, not a sort of every label on each call (670k labels: 50 ms).
        n_labels = len(self.label_counts_)
        key = -self.label_counts_.astype(np.int64) * n_labels + np.arange(n_labels)  # unique
        n = min(2 * k, n_labels)
        top = np.argpartition(key, n - 1)[:n] if n < n_labels else np.arange(n_labels)
        return top[np.argsort(key[top])].astype(np.int32)

    # ------------------------------------------------------------------ helpers

    def _hidden_sizes(self):
        sizes = np.atleast_1d(np.asarray(self.hidden_layer_sizes))
        if sizes.ndim != 1 or sizes.size == 0:
            raise ValueError("hidden_layer_sizes must be a non-empty sequence of positive ints")
        if not all(
            isinstance(s, Integral) and not isinstance(s, bool) and 1 <= s <= _INT32_MAX
            for s in sizes.tolist()
        ):
            raise ValueError(
                "hidden_layer_sizes must contain ints in [1, 2**31 - 1], got "
                f"{self.hidden_layer_sizes!r}"
            )
        return [int(s) for s in sizes]

    def _resolved_hash_family(self, n_labels):
        if self.hash_family == "auto":
            return None if n_labels <= AUTO_EXACT_MAX_LABELS else "dwta"
        return self.hash_family

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
        return super().__getstate__()

    def __setstate__(self, state_dict):
        network = state_dict.get("_network")
        if network is not None and network.get("format_version") != state.FORMAT_VERSION:
            raise ValueError(
                "this SlideClassifier was saved with model format version "
                f"{network.get('format_version')!r}; this sklearn_slide reads version "
                f"{state.FORMAT_VERSION}. Refit the model with this version."
            )
        if network is not None:
            state.check_network(network)
        # Parameters added after the model was saved take the value that keeps
        # the saved model's behaviour (get_params and clone need them all): their
        # default, or what the model did before the parameter existed.
        for name, default in _constructor_defaults(type(self)).items():
            state_dict.setdefault(name, _BEHAVIOUR_BEFORE_PARAMETER.get(name, default))
        if network is not None and "_lr_schedule" not in state_dict:
            # Fitted before learning-rate schedules: it trained at learning_rate.
            state_dict["_lr_schedule"] = lr_schedule.new_state(state_dict["learning_rate"])
            state_dict["learning_rate_"] = float(state_dict["learning_rate"])
            state_dict["validation_scores_"] = None
        super().__setstate__(state_dict)


# Parameters whose default differs from what the engine did before they existed.
_BEHAVIOUR_BEFORE_PARAMETER = {"logq_correction": False}


def _constructor_defaults(cls):
    return {
        name: parameter.default
        for name, parameter in inspect.signature(cls.__init__).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


def _as_canonical_csr(X):
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
        or not _is_canonical(X)
        or not np.all(X.data)
    ):
        X = X.copy()
        X.has_sorted_indices = False
        X.has_canonical_format = False
        X.sum_duplicates()  # sorts, sums duplicates and drops unused storage
        X.eliminate_zeros()
    return X


def _is_canonical(X):
    """Whether every row's column indices strictly increase (X's structure is
    checked). A new matrix over the same arrays has no cached flag to trust."""
    fresh = sp.csr_matrix((X.data, X.indices, X.indptr), shape=X.shape, copy=False)
    return bool(fresh.has_canonical_format)


def _check_sparse_structure(A, name):
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
