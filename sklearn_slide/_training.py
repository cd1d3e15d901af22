"""Training: the state a fit works on, the epoch loop, divergence.

A fit works on a ``FitState``, never on the estimator: a new model is built
aside and committed only when training succeeded, so a failed or interrupted
``fit`` leaves the estimator as it was.
"""

import math
import time
from dataclasses import dataclass, field, fields

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

from . import _config as config
from . import _derived_cache as derived_cache
from . import _engine as engine
from . import _label_clusters as label_clusters
from . import _lr_schedule as lr_schedule
from . import _memory as memory
from . import _network_state as network_state
from . import _saved_model as saved_model
from ._progress import EpochProgress
from ._targets import label_counts
from .metrics import precision_at_k

def _attribute(name):
    """A FitState field committed to the estimator attribute ``name``."""
    return field(metadata={"attribute": name})


@dataclass
class FitState:
    """Everything a fit changes; each field is one fitted attribute of the estimator."""

    network: dict = _attribute("_network")
    rng: np.random.RandomState = _attribute("_rng")
    classes: np.ndarray = _attribute("classes_")
    target_kind: str = _attribute("_target_kind")
    sparse_output: bool = _attribute("_sparse_output")
    y_dtype: np.dtype = _attribute("_y_dtype")
    label_counts: np.ndarray = _attribute("label_counts_")
    n_samples_seen: int = _attribute("n_samples_seen_")
    n_iter: int = _attribute("n_iter_")
    loss_curve: list = _attribute("loss_curve_")
    mean_labels: float = _attribute("_mean_labels")
    lr_schedule: dict = _attribute("_lr_schedule")
    validation_scores: list = _attribute("validation_scores_")  # None without validation
    # The per-label linear re-ranker's weights (``_reranker``): trained by fit
    # after the network; None without one, and after partial_fit (stale).
    reranker: dict = field(default=None, metadata={"attribute": "_reranker"})

    @classmethod
    def of(cls, estimator):
        """The fitted estimator's state, to train further (its lists and dicts copied;
        the network is trained in place)."""
        state = cls(**{f.name: getattr(estimator, f.metadata["attribute"]) for f in fields(cls)})
        saved_model.check_mapped_files(state.network)  # copying a mapped array reads it
        network_state.make_writable(state.network["params"])
        if state.network["tables"] is not None:
            network_state.make_writable(state.network["tables"])
        state.loss_curve = list(state.loss_curve)
        state.lr_schedule = dict(state.lr_schedule)
        if state.validation_scores is not None:
            state.validation_scores = list(state.validation_scores)
        return state

    def commit(self, estimator):
        """Make this the estimator's fitted state."""
        derived_cache.forget(estimator)
        for f in fields(self):
            setattr(estimator, f.metadata["attribute"], getattr(self, f.name))
        estimator.learning_rate_ = self.lr_schedule["learning_rate"]


def new_fit_state(estimator, X, y, kind, classes):
    """Fresh network, tables and schedule for this data (nothing assigned to the estimator)."""
    return new_fit_state_of_shape(estimator, X.shape, kind, classes, sparse_output=sp.issparse(y),
                                  y_dtype=np.asarray(y.data if sp.issparse(y) else y).dtype)


def new_fit_state_of_shape(estimator, shape, kind, classes, sparse_output, y_dtype,
                           candidates=None):
    """``new_fit_state`` for training data of ``shape`` (rows, features) that is not
    in this process (``sklearn_slide.dask.fit_distributed``); ``sparse_output`` and
    ``y_dtype`` describe the targets; ``candidates`` overrides the estimator's."""
    hidden = config.hidden_sizes(estimator.hidden_layer_sizes)
    rng = check_random_state(estimator.random_state)
    n_labels = len(classes)
    family = config.resolved_hash_family(estimator.hash_family, n_labels)
    bits = None
    if family is not None and (candidates or estimator.candidates) == "lsh":
        bits = network_state.table_bits_for(family, estimator.hash_bits, n_labels, hidden[-1])
    check_training_memory(estimator, shape=shape, hidden=hidden, n_labels=n_labels,
                          table_bits=bits, new_model=True, sampled=family is not None)
    network = network_state.new_network(
        shape[1], hidden, n_labels, family, estimator.hash_bits, estimator.n_tables, bits,
        estimator.rehash_interval, rng,
    )
    return FitState(
        network=network,
        rng=rng,
        classes=classes,
        target_kind=kind,
        sparse_output=sparse_output,
        y_dtype=y_dtype,
        label_counts=np.zeros(n_labels, dtype=np.int64),
        n_samples_seen=0,
        n_iter=0,
        loss_curve=[],
        mean_labels=0.0,
        lr_schedule=lr_schedule.new_state(estimator.learning_rate),
        validation_scores=None,
    )


def check_training_memory(estimator, *, shape, hidden, n_labels, table_bits, new_model, sampled,
                          new_tables=False):
    """MemoryError before training on data of ``shape`` (rows, features) if the
    budget is too small. ``sampled`` and no ``table_bits``: the candidates come
    from a label-cluster index built every epoch. ``new_tables``: tables of
    ``table_bits`` are allocated for an existing model."""
    by_clusters = sampled and table_bits is None
    memory.check_training_memory(
        n_samples=shape[0], n_features=shape[1], hidden=hidden, n_labels=n_labels,
        n_tables=0 if table_bits is None else int(estimator.n_tables), table_bits=table_bits,
        n_threads=engine.effective_n_threads(estimator.n_threads),
        batch_size=int(estimator.batch_size), max_active=int(estimator.max_active),
        new_model=new_model, bucket_size=int(estimator.bucket_size),
        min_active=int(estimator.min_active),
        cluster_index=label_clusters.index_nbytes(n_labels, hidden[-1]) if by_clusters else None,
        new_tables=new_tables,
    )


def train_config(estimator, network):
    """The engine's TrainConfig: the parameters marked ``engine`` in the table,
    and what the network fixed when it was created."""
    options = {name: getattr(estimator, name)
               for name, parameter in config.PARAMETERS.items() if parameter.engine}
    # A fitted model may have been given max_active=0 by set_params (checked
    # only by fit and the first partial_fit): the engine needs >= 1.
    options["max_active"] = max(options["max_active"], 1)
    return engine.training_config(
        **options,
        exact=network["hash_family"] is None,
        hash_family=network["hash_family"] or "dwta",
        hash_bits=network["hash_bits"],
        n_threads=engine.effective_n_threads(estimator.n_threads),
        seed=network["sampling_seed"],
    )


# Divergence: the sampled softmax loss of a sane network stays near or below
# log(active set size), a uniform guess. A mean loss this many nats above it
# means the true labels get probabilities e^-30 below chance: the weights have
# blown up (the loss of one label is capped at -log(1e-30) = 69 by the engine).
DIVERGED_LOSS_MARGIN = 30.0


def divergence(params, loss, mean_active):
    """Why training diverged (a message), or None if it looks sane."""
    if not math.isfinite(loss):
        return f"the training loss is {loss}"
    chance = math.log(max(mean_active, 1.0))
    if loss > chance + DIVERGED_LOSS_MARGIN:
        return (
            f"the mean training loss {loss:.1f} is far above that of a uniform guess "
            f"({chance:.1f})"
        )
    for name, value in params.items():
        if isinstance(value, np.ndarray) and value.dtype == np.float32 and value.size:
            if not (math.isfinite(value.max()) and math.isfinite(value.min())):
                return f"{name} holds NaN or infinite values"
    return None


def _epoch_learning_rate(estimator, state):
    # "constant" follows the parameter (set_params between warm starts
    # works); "plateau" continues from the rate it reached. Either way the
    # rate used last is learning_rate_.
    schedule = state.lr_schedule
    if estimator.learning_rate_schedule == "constant":
        schedule["learning_rate"] = float(estimator.learning_rate)
    return schedule["learning_rate"]


def _validation_p_at_1(estimator, network, validation):
    X_val, Y_val = validation
    top1, _ = engine.predict_topk(network["params"], X_val, 1,
                                  engine.effective_n_threads(estimator.n_threads))
    return precision_at_k(Y_val, top1, k=1)


def count_training_rows(state, n_rows, counts, n_label_entries):
    """Record that a fit trains on ``n_rows`` more rows, whose labels occur
    ``counts`` times (per label), ``n_label_entries`` in all."""
    seen_before = state.n_samples_seen
    state.label_counts = state.label_counts + counts
    state.n_samples_seen = seen_before + n_rows
    total_labels = state.mean_labels * seen_before + n_label_entries
    state.mean_labels = total_labels / state.n_samples_seen


def check_divergence(state, loss, mean_active, learning_rate, first_call):
    """RuntimeError naming the remedy when the epoch that ends now diverged."""
    problem = divergence(state.network["params"], loss, mean_active)
    if problem:
        raise RuntimeError(
            f"training diverged in epoch {state.n_iter + 1}: {problem}. Lower "
            f"learning_rate (now {learning_rate:g}) or scale the features "
            "(e.g. unit-norm rows). "
            + ("The estimator is unchanged." if first_call else
               "The network's weights were changed by the failed epoch: refit it.")
        )


def train(estimator, state, X, Y, n_epochs, first_call, rows=None, validation=None):
    """Train n_epochs over the rows `rows` of (X, Y) (None: all of them),
    measuring P@1 on `validation` (X_val, Y_val) after each epoch if given."""
    derived_cache.forget(estimator)  # the weights are about to change
    network = state.network
    n_labels = len(state.classes)
    hidden = network["params"]["layer_sizes"][1:-1]
    sampled = network["hash_family"] is not None
    by_clusters = sampled and estimator.candidates == "clusters"
    if sampled and not by_clusters and network["tables"] is None:
        _add_tables(estimator, network, X, hidden, n_labels)
    elif not first_call:  # the model exists: only the engine's buffers are new
        tables = None if by_clusters else network["tables"]
        check_training_memory(estimator, shape=X.shape, hidden=hidden, n_labels=n_labels,
                              table_bits=None if tables is None else tables["table_bits"],
                              new_model=False, sampled=sampled)
    options = train_config(estimator, network)
    data = engine.training_data(X, Y)  # checked once; every epoch reuses it
    if rows is None:
        rows = np.arange(X.shape[0])
    Y_trained = Y[rows]
    n = len(rows)
    count_training_rows(state, n, label_counts(Y_trained), Y_trained.nnz)
    start = time.perf_counter()
    if validation is not None and state.validation_scores is None:
        state.validation_scores = []
    for epoch in range(n_epochs):
        options.learning_rate = _epoch_learning_rate(estimator, state)
        order = rows[state.rng.permutation(n)] if estimator.shuffle else rows
        epoch_start = time.perf_counter()
        progress = (EpochProgress(state.n_iter + 1, n, estimator.verbose)
                    if estimator.verbose else None)
        # Hard negatives: an index of the weights as they are now.
        negatives = _cluster_negatives(network, n_labels) if by_clusters else None
        # Later epochs read tables and row steps the engine itself wrote.
        stats = _train_one_epoch(network, data, order.astype(np.int64), options,
                                 progress, check_state=epoch == 0, negatives=negatives)
        loss = stats["loss_sum"] / max(stats["n_labelled"], 1)
        mean_active = stats["active_sum"] / max(stats["n_labelled"], 1)
        check_divergence(state, loss, mean_active, options.learning_rate, first_call)
        state.loss_curve.append(float(loss))
        state.n_iter += 1
        # Readable while fit runs (as MLPClassifier's); the estimator's
        # _input_attributes_restored_on_error puts the old values back if it
        # fails. loss_curve_ first: a reader of n_iter_ then finds its epochs.
        estimator.loss_curve_ = list(state.loss_curve)
        estimator.n_iter_ = state.n_iter
        plateau = None
        if validation is not None:
            score = _validation_p_at_1(estimator, network, validation)
            state.validation_scores.append(score)
            plateau = lr_schedule.after_epoch(
                state.lr_schedule, score, int(estimator.n_iter_no_change),
                lower_rate=estimator.learning_rate_schedule == "plateau",
                stop=bool(estimator.early_stopping))
        if progress is not None:
            elapsed = time.perf_counter() - epoch_start
            progress.finish(
                f"Epoch {state.n_iter}: loss {loss:.4f}, "
                f"{n / max(elapsed, 1e-9):,.0f} samples/s, "
                f"mean active set {mean_active:,.0f}, "
                f"elapsed {time.perf_counter() - start:.1f} s"
                + (f", validation P@1 {state.validation_scores[-1]:.4f}"
                   if validation is not None else "")
                + (f", learning rate now {state.lr_schedule['learning_rate']:g}"
                   if plateau == "lowered" else "")
                + (", validation P@1 stalled: stopping" if plateau == "stop" else "")
            )
        if plateau == "stop":
            break


# With progress shown, an epoch runs as several engine calls of about this
# many seconds each, reporting between them. The engine keeps all training
# state (Adam step, rehash schedule, per-sample random streams) in the
# network, and every call but the last covers whole batches, so the weights
# are bit-identical to those of one call.
PROGRESS_CALL_SECONDS = 0.25
_FIRST_CALL_BATCHES = 4


def _add_tables(estimator, network, X, hidden, n_labels):
    """Hash tables for a model trained so far with candidates="clusters" and now
    with "lsh": built from the current weights at the first step of this call."""
    bits = network_state.table_bits_for(network["hash_family"], network["hash_bits"], n_labels,
                                        hidden[-1])
    check_training_memory(estimator, shape=X.shape, hidden=hidden, n_labels=n_labels,
                          table_bits=bits, new_model=False, sampled=True, new_tables=True)
    network["tables"] = network_state.init_tables(int(estimator.n_tables), bits, n_labels)
    network["schedule"]["next_rehash_step"] = int(network["schedule"]["step"])


def _cluster_negatives(network, n_labels):
    """(label-cluster index of the output layer, probes per sample) for candidates="clusters"."""
    params = network["params"]
    index = label_clusters.build_label_clusters(params["output_weights"], params["output_biases"])
    return index, label_clusters.training_n_probes(n_labels, len(index["centroid_biases"]))


def _train_one_epoch(network, data, order, options, progress, check_state, negatives=None):
    """One epoch over the rows ``order``; the engine's statistics of it.

    Without ``progress``: one engine call. With it: calls of whole batches,
    sized to take ``PROGRESS_CALL_SECONDS``, each reported to ``progress``;
    with ``verbose >= 2`` the batch that rehashes the tables runs alone, so
    that the rebuild can be timed.
    """
    tables = network["tables"] if negatives is None else None
    clusters, n_probes = negatives if negatives is not None else (None, 0)

    def call(rows, check):
        try:
            return engine.train_epoch(network["params"], tables, data, rows, options,
                                      network["schedule"], check_state=check, clusters=clusters,
                                      n_probes=n_probes)
        finally:  # also after Ctrl-C: the steps done are kept
            network_state.cap_rehash_interval(network["schedule"])

    if progress is None or not len(order):
        return call(order, check_state)
    schedule = network["schedule"]
    batch = int(options.batch_size)
    totals = None
    n_batches, batch_seconds, begin = _FIRST_CALL_BATCHES, None, 0
    while begin < len(order):
        timing_rehash = False
        if progress.verbose >= 2 and tables is not None:
            before_rehash = int(schedule["next_rehash_step"]) - int(schedule["step"])
            timing_rehash = before_rehash <= 0
            n_batches = 1 if timing_rehash else min(n_batches, before_rehash)
        rows = order[begin:begin + n_batches * batch]
        start = time.perf_counter()
        stats = call(rows, check_state and begin == 0)
        seconds = time.perf_counter() - start
        totals = stats if totals is None else {key: totals[key] + stats[key] for key in totals}
        progress.update(stats)
        rebuild_seconds = None
        if timing_rehash and batch_seconds is not None:
            rebuild_seconds = max(seconds - batch_seconds, 0.0)
        if stats["n_rehashes"]:  # with verbose >= 2, only in a one-batch call
            progress.rehashed(schedule["n_rehashes"], schedule["step"] - 1,
                              bool(stats["n_rebuilds"]), schedule["next_rehash_step"],
                              rebuild_seconds)
        begin += len(rows)
        if not timing_rehash:
            batch_seconds = seconds / -(-len(rows) // batch)
            n_batches = max(1, int(PROGRESS_CALL_SECONDS / max(batch_seconds, 1e-9)))
    return totals


def refresh_tables(estimator, state):
    """Re-insert the final weights into the tables (what a pickle of the model holds)."""
    network = state.network
    try:
        engine.rebuild_tables(network["params"], network["tables"],
                              train_config(estimator, network), network["schedule"])
    except BaseException:
        # Ctrl-C (or an error) left the tables unbuilt, every bucket empty: the
        # next training call rebuilds them before its first step.
        network["schedule"]["next_rehash_step"] = int(network["schedule"]["step"])
        raise
