"""``fit_distributed``: one SlideClassifier trained data-parallel on a Dask cluster.

The client process coordinates (``_data_parallel.train``: plans the rounds,
merges the replicas' changes into the master model); each replica
(``_replica.Replica``) lives on a worker with its blocks of rows, kept between
rounds in a per-process registry (``_REPLICAS``) and reached by tasks pinned
to its worker. Messages go directly between the client and the workers
(``direct=True``): a replica's changes and the master's updates are the size
of the rows a round touched, too big to relay through the scheduler.

Faults: a replica whose worker dies (or whose task fails with the worker) in
a round is *lost* for that round: its changes are missing from the merge, its
rows of the round are not trained in that epoch. Before the next round it is
re-created on a live worker from the master model (``synchronise``) and its
blocks are loaded again (in-memory blocks are sent again from this process,
Delayed and Dask-array blocks are recomputed, Futures are reused if the
cluster still has them). A lost scheduler ends the fit with RuntimeError; the
estimator is committed only at the end, so it is unchanged.

Why one module of ~500 lines: it is everything of ``fit_distributed`` that
talks to ``distributed`` (worker-side tasks, where blocks live, the pool that
runs a round and tells a dead worker from a failed task, the entry point), and
these pieces only make sense together; ``DaskPool`` (the fault handling) is
a third of it. The algorithm itself is Dask-free (``_data_parallel``, whose
in-process pool is the oracle the Dask pool is tested against).
"""

import asyncio
import concurrent.futures
import numbers
import uuid
import warnings

import numpy as np
import scipy.sparse as sp

import dask
import dask.array as da
import distributed

from . import _data_parallel as data_parallel
from . import _model_sync as model_sync
from ._model_lock import lock_of
from ._replica import Replica, describe_block

# Defaults of fit_distributed (docs/dask.md, "Training one model on the cluster").
DEFAULT_SYNC_EVERY = None
DEFAULT_COMBINE = "sqrt_sum"

# Seconds between checks that the workers of unfinished round tasks are alive.
POLL_SECONDS = 0.5
# How long to wait for a worker when none is left (a nanny restarts a killed one).
WORKER_WAIT_SECONDS = 60

# Worker side: the replicas of running fits in this worker process.
_REPLICAS = {}


class ReplicaLost(RuntimeError):
    """A task found no replica in its worker's registry (the worker restarted)."""


class SchedulerLost(RuntimeError):
    """The client lost its connection to the scheduler."""


# --------------------------------------------------------------- worker side


def _start_replica(fit_id, index, network, parts, kind, classes, n_threads, tables_current):
    """Task: build replica ``index`` from the master ``network`` and its blocks."""
    blocks = [(X, y, where) for (X, y), where in parts]
    replica = Replica(network, blocks, kind, classes, n_threads, tables_current)
    _REPLICAS[(fit_id, index)] = replica
    return replica.summary()


def _train_round(fit_id, index, update, plan):
    """Task: one round of replica ``index`` (see ``Replica.train_round``)."""
    replica = _REPLICAS.get((fit_id, index))
    if replica is None:
        raise ReplicaLost(f"replica {index} is not on this worker")
    return replica.train_round(update, plan)


def _drop_replicas(fit_id):
    """Run on every worker at the end of a fit: free its replicas."""
    for key in [key for key in _REPLICAS if key[0] == fit_id]:
        del _REPLICAS[key]


def _describe(part, where):
    X, y = part
    return describe_block(X, y, where)


# ------------------------------------------------------------------- blocks


def _is_lazy(obj):
    """A Dask collection such as a Delayed (computed on the cluster when needed)."""
    return dask.is_dask_collection(obj) and not isinstance(obj, distributed.Future)


def _is_in_memory(obj):
    return not isinstance(obj, distributed.Future) and not _is_lazy(obj)


class _Block:
    """One block of rows: where its X and y come from, and how to load it again."""

    def __init__(self, X, y, index):
        self.X, self.y, self.where = X, y, f"block {index}"

    @property
    def in_memory(self):
        return _is_in_memory(self.X) and _is_in_memory(self.y)

    def load(self, client, worker):
        """Futures of (X, y) on the cluster: in-memory parts are sent to ``worker``,
        Delayed parts computed, Futures kept."""
        parts = []
        lazy = [part for part in (self.X, self.y) if _is_lazy(part)]
        computed = iter(client.compute(lazy)) if lazy else iter(())
        for part in (self.X, self.y):
            if isinstance(part, distributed.Future):
                parts.append(part)
            elif _is_lazy(part):
                parts.append(next(computed))
            else:
                parts.append(client.scatter([part], workers=None if worker is None else [worker],
                                            hash=False, direct=True)[0])
        return parts


def _blocks_of(X, y, n_replicas):
    """The row blocks of (X, y): Dask arrays' row chunks, lists' items, or an
    in-memory matrix split into ``n_replicas`` contiguous blocks."""
    if isinstance(X, da.Array) or isinstance(y, da.Array):
        if not (isinstance(X, da.Array) and isinstance(y, da.Array)):
            raise TypeError("X and y must both be Dask arrays, or neither")
        if X.ndim != 2 or y.ndim not in (1, 2):
            raise ValueError(f"X must be 2-D and y 1-D or 2-D, got {X.shape} and {y.shape}")
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
        if X.numblocks[1] > 1:
            X = X.rechunk({1: -1})
        y = y.rechunk({0: X.chunks[0], **({1: -1} if y.ndim == 2 else {})})
        return [_Block(x, t, i) for i, (x, t) in
                enumerate(zip(X.to_delayed().ravel(), y.to_delayed().ravel()))]
    if isinstance(X, (list, tuple)) or isinstance(y, (list, tuple)):
        if not (isinstance(X, (list, tuple)) and isinstance(y, (list, tuple))):
            raise TypeError("X and y must both be lists of blocks, or neither")
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} blocks but y has {len(y)}: one y block per X block")
        return [_Block(x, t, i) for i, (x, t) in enumerate(zip(X, y))]
    if isinstance(X, distributed.Future) or _is_lazy(X):
        return [_Block(X, y, 0)]
    n_rows = X.shape[0]
    if np.shape(y)[0] != n_rows:
        raise ValueError(f"X has {n_rows} rows but y has {np.shape(y)[0]}")
    if sp.issparse(X) and X.format not in ("csr", "csc", "lil"):
        X = X.tocsr()
    if sp.issparse(y) and y.format not in ("csr", "csc", "lil"):
        y = y.tocsr()
    bounds = np.linspace(0, n_rows, min(n_replicas, max(n_rows, 1)) + 1).astype(int)
    return [_Block(X[a:b], y[a:b], i) for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))]


# --------------------------------------------------------------------- pool


# Errors of a task, or of fetching its result, that mean its worker died.
_WORKER_LOSS = (distributed.KilledWorker, ReplicaLost, OSError, asyncio.CancelledError,
                concurrent.futures.CancelledError)
# What the client raises when the scheduler is gone (its status says so).
_CONNECTION_ERRORS = (SchedulerLost, OSError, TimeoutError, asyncio.CancelledError,
                      concurrent.futures.CancelledError)


def _is_worker_loss(error):
    return isinstance(error, _WORKER_LOSS)


class DaskPool:
    """The replicas of one fit on the workers of ``client`` (see module docstring)."""

    def __init__(self, client, blocks_per_replica, loaded, network, kind, classes, threads):
        self.client = client
        self.fit_id = uuid.uuid4().hex
        self.blocks = blocks_per_replica
        self.kind, self.classes, self.threads = kind, classes, threads
        self.workers = {}      # live replica -> its worker's address
        self.fresh = set()     # replicas built from the master after the last merge
        self.dropped = set()   # replicas whose blocks the cluster lost for good
        self.summaries = [None] * len(blocks_per_replica)
        self._update = None    # Future of the last merge's update
        self._round = 0
        self._fetcher = concurrent.futures.ThreadPoolExecutor(
            max_workers=len(blocks_per_replica), thread_name_prefix="slide-fetch")
        addresses = self._live_workers()
        placement = {k: addresses[k % len(addresses)] for k in range(len(blocks_per_replica))}
        try:
            self._start(placement, network, loaded, tables_current=True)
        except BaseException:
            self.close()  # replicas started before the error
            raise

    def _key(self, what, k):
        return f"slide-{what}-{self.fit_id}-{self._round}-{k}-{uuid.uuid4().hex[:6]}"

    # -- replicas

    def _start(self, placement, network, loaded=None, tables_current=False):
        """Start the replicas of ``placement`` (replica -> worker) from ``network``;
        those whose worker dies meanwhile are started elsewhere."""
        while placement:
            client = self.client
            workers = sorted(set(placement.values()))
            master = self._send(network, workers)
            tasks = {}
            for k, worker in placement.items():
                parts = [((loaded or {}).get(b.where) or b.load(client, worker), b.where)
                         for b in self.blocks[k]]
                tasks[k] = client.submit(
                    _start_replica, self.fit_id, k, master, parts, self.kind, self.classes,
                    _threads_for(self.threads, worker), tables_current, workers=[worker],
                    allow_other_workers=False, pure=False, key=self._key("replica", k))
            results, lost = self._wait(tasks, placement)
            del master, tasks
            for k, summary in results.items():
                self.summaries[k] = summary
                self.workers[k] = placement[k]
                self.fresh.add(k)
            placement = self._placement([k for k in lost if self._reloadable(k)])
            loaded = None

    def _reloadable(self, k):
        """Whether replica k's blocks can be loaded again (Futures the cluster lost
        without a way to recompute them cannot)."""
        for block in self.blocks[k]:
            for part in (block.X, block.y):
                if isinstance(part, distributed.Future) and part.status in (
                        "lost", "cancelled", "error"):
                    warnings.warn(
                        f"{block.where} was lost with its worker and cannot be recomputed "
                        "(a Future of scattered data): training continues without the "
                        f"blocks of replica {k}", RuntimeWarning, stacklevel=4)
                    self.dropped.add(k)
                    return False
        return True

    def _placement(self, replicas):
        """Replica -> live worker for re-created replicas: the least loaded first."""
        if not replicas:
            return {}
        live = self._live_workers()
        load = {w: sum(1 for a in self.workers.values() if a == w) for w in live}
        placement = {}
        for k in replicas:
            worker = min(live, key=lambda w: (load[w], w))
            load[worker] += 1
            placement[k] = worker
        return placement

    def _live_workers(self):
        workers = sorted(self.client.nthreads())
        if not workers:
            self.client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
            workers = sorted(self.client.nthreads())
        return workers

    # -- tasks

    def _send(self, message, workers):
        """A Future of ``message`` held by each of ``workers`` (sent from here directly)."""
        # In a list: scatter would take a dict's items for separate keys.
        return self.client.scatter([message], workers=workers, broadcast=True, hash=False,
                                   direct=True)[0]

    def _wait(self, tasks, placement):
        """({k: result}, {k: error}) of the tasks; a task whose worker died, or that
        failed because of it, is lost; any other error is raised.

        Results are fetched directly from the workers, in threads: a fetch from a
        worker that dies meanwhile would wait for the task to run again (on a
        worker that no longer exists); it is cancelled instead.
        """
        pending = dict(tasks)
        fetching = {}  # k -> concurrent future of the result's transfer
        results, lost = {}, {}
        while pending or fetching:
            try:
                if pending:
                    distributed.wait(list(pending.values()), timeout=POLL_SECONDS,
                                     return_when="FIRST_COMPLETED")
                else:
                    concurrent.futures.wait(list(fetching.values()), timeout=POLL_SECONDS,
                                            return_when="FIRST_COMPLETED")
            except (TimeoutError, concurrent.futures.CancelledError):
                pass  # nothing finished yet, or a task was cancelled: see below
            self._check_scheduler()
            alive = set(self.client.nthreads())
            for k, future in list(pending.items()):
                if future.status == "finished":
                    fetching[k] = self._fetcher.submit(self.client.gather, future, direct=True)
                elif future.status == "error":
                    error = future.exception()
                    if not _is_worker_loss(error):
                        raise error
                    lost[k] = error
                elif future.status in ("cancelled", "lost") or placement[k] not in alive:
                    lost[k] = RuntimeError(f"the worker {placement[k]} left")
                    future.cancel()  # a restricted task of a dead worker would wait forever
                else:
                    continue
                del pending[k]
            for k, transfer in list(fetching.items()):
                if transfer.done():
                    del fetching[k]
                    try:
                        results[k] = transfer.result()
                    except _WORKER_LOSS as error:
                        lost[k] = error
                    tasks[k].cancel()  # fetched (or lost): free it on the worker
                elif placement[k] not in alive:
                    tasks[k].cancel()  # ends the transfer with CancelledError
        return results, lost

    def _check_scheduler(self):
        if self.client.status != "running":
            raise SchedulerLost(f"the Dask client is {self.client.status!r}")

    # -- rounds (the interface of _data_parallel.train)

    def run_round(self, plans):
        self._round += 1
        tasks = {}
        for k, worker in self.workers.items():
            update = None if k in self.fresh else self._update
            tasks[k] = self.client.submit(
                _train_round, self.fit_id, k, update, plans[k], workers=[worker],
                allow_other_workers=False, pure=False, key=self._key("round", k))
        results, lost = self._wait(tasks, dict(self.workers))
        for k in lost:
            del self.workers[k]
        self.fresh.clear()
        return [results.get(k) for k in range(len(plans))]

    def synchronise(self, update, network):
        """Send the merge's ``update``; re-create lost replicas from ``network``."""
        self._update = None
        if update is not None and self.workers:
            self._update = self._send(update, sorted(set(self.workers.values())))
        lost = [k for k in range(len(self.blocks)) if k not in self.workers
                and k not in self.dropped and self._reloadable(k)]
        self._start(self._placement(lost), network)

    def close(self):
        self._update = None
        self._fetcher.shutdown(wait=False, cancel_futures=True)
        try:
            if self.client.status == "running":
                self.client.run(_drop_replicas, self.fit_id)
        except (OSError, TimeoutError):  # the scheduler is gone: so are the workers' tasks
            pass


def _threads_for(threads, worker):
    """The n_threads of a replica on ``worker`` (None: the estimator's n_threads=None)."""
    if isinstance(threads, dict):
        return threads.get(worker, min(threads.values()))
    return threads


# ------------------------------------------------------------------ the fit


def _describe_blocks(client, blocks):
    """Descriptions of every block, and the Futures of the lazy blocks loaded for it.

    In-memory blocks are checked here, before anything is sent; the others on
    the workers (their contents exist only there), before training starts.
    """
    descriptions, loaded, tasks = [None] * len(blocks), {}, {}
    for i, block in enumerate(blocks):
        if block.in_memory:
            descriptions[i] = describe_block(block.X, block.y, block.where)
    for i, block in enumerate(blocks):
        if not block.in_memory:
            parts = block.load(client, None)
            loaded[block.where] = parts
            tasks[i] = client.submit(_describe, parts, block.where, pure=False)
    for i, task in tasks.items():
        descriptions[i] = task.result()
    return descriptions, loaded


def _positive_int_or_none(value, name):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
            or value < 1:
        raise ValueError(f"{name} must be a positive int or None, got {value!r}")
    return int(value)


def fit_distributed(model, X, y, *, client=None, classes=None, sync_every=DEFAULT_SYNC_EVERY,
                    combine=DEFAULT_COMBINE, n_replicas=None, n_threads="auto", validation=None,
                    callback=None):
    """Train one SlideClassifier on every worker of a Dask cluster at once (data parallel).

    Each worker holds a *replica* of the network and its share of the rows; in
    a *round* every replica takes ``sync_every`` Adam steps (batches) on its
    own rows, starting from the same weights, then the replicas' changes
    (only the input and output rows they updated, with their Adam moments) are
    combined into one model by ``combine`` and sent back. Rounds also end
    where the hash tables are due to be rebuilt, so every replica rebuilds them
    from the synchronised weights. The model is trained in place and is an
    ordinary fitted SlideClassifier (pickle, predict, ``partial_fit``).
    docs/dask.md ("Training one model on the cluster") has the rule, the
    measurements behind the defaults and when this beats one machine.

    Parameters
    ----------
    model : SlideClassifier
        Trained for ``model.max_iter`` epochs with its parameters
        (``learning_rate_schedule="constant"`` only). Continues a fitted model
        when ``warm_start=True``. Changed only if training succeeds.
    X, y : dask arrays, lists of blocks, or in-memory matrices
        - Dask arrays (sparse or dense chunks) with the same number of rows:
          their row chunks are the blocks;
        - lists of the same length of row blocks ``X_i``, ``y_i``: arrays,
          sparse matrices, ``distributed.Future`` or ``dask.delayed`` objects;
        - one matrix X (sparse or dense) and its y: split into one contiguous
          block per replica.

        y is a multilabel indicator (dense or sparse) or 1-D class labels.
        Block i goes to replica ``i % n_replicas``, whose rows are its blocks in
        order. Blocks of similar sizes keep the replicas equally busy; rows
        should be in random order across blocks (each replica shuffles only
        its own rows).
    client : distributed.Client, default=None
        None: the current default client.
    classes : array-like, default=None
        Every class of 1-D targets (None: those found in the blocks), or
        ``np.arange(n_labels)``; labels outside it raise ValueError.
    sync_every : int or None, default=None
        Adam steps (batches) of each replica between synchronisations. None:
        once per epoch, and where the hash tables are rebuilt (which the
        engine's growing rehash interval makes a few rounds per epoch). Fewer
        steps send more bytes per epoch; on the measured problems they did not
        learn more per epoch (docs/dask.md).
    combine : {"sqrt_sum", "sum", "average", "touched_average"}, default="sqrt_sum"
        How the replicas' changes of a round become one model (see
        ``docs/dask.md``): "sqrt_sum" adds their weight changes divided by the
        square root of the number of replicas that changed the row, "sum"
        adds them (diverged with 4 replicas), "average" averages weights over
        all replicas (local SGD), "touched_average" over the replicas that
        changed each row; the Adam moments are averaged over the replicas that
        changed the row ("average": over all).
    n_replicas : int, default=None
        Replicas (None: one per worker). The result depends on the replicas
        and the blocks, not on the workers: with ``n_replicas`` given it is the
        same on any cluster (replicas share a worker when there are fewer).
    n_threads : "auto", int or None, default="auto"
        Engine threads of each replica. "auto" replaces the model's
        ``n_threads=None`` (1 on a default Dask worker) by the worker's share of
        its machine's cores; an explicit integer on the model is kept; an int
        here overrides it; None leaves the model's. Results do not depend on it.
    validation : (X_val, y_val), default=None
        Rows (in this process) whose P@1 is measured after every epoch, in
        ``model.validation_scores_``.
    callback : callable, default=None
        Called in this process after every round with a dict (``"kind":
        "round"``: epoch, round, steps, rows per replica, lost replicas,
        bytes sent up and down, seconds) and after every epoch (``"kind":
        "epoch"``: loss, rounds, seconds, validation P@1).

    Returns
    -------
    model : SlideClassifier
        The same object, fitted.

    Raises
    ------
    ValueError
        Blocks that disagree (rows of X and y, features, label columns),
        labels outside ``classes``, or bad arguments; in-memory blocks are
        checked before anything is sent to the cluster, lazy ones (Futures,
        Delayed, Dask arrays) on the workers before training starts.
    RuntimeError
        The scheduler was lost (the model is unchanged), or training diverged.

    Notes
    -----
    With one replica the fit equals ``model.fit`` on the rows of the blocks in
    order: the same weights, moments, tables and schedule, bit for bit; only
    ``loss_curve_`` may differ in the last bits (summed per round). A fixed
    ``random_state``, block layout and replica count give the same model on
    every run.

    A worker that dies in a round loses that round's work of its replica (its
    rows are skipped in that epoch); the replica is re-created on a live
    worker from the synchronised model before the next round, its blocks
    loaded again (sent again from this process, recomputed, or fetched from
    the cluster; a Future of scattered data that died with its worker cannot
    be: its rows are then left out, with a RuntimeWarning).
    """
    from .dask import _get_client, _threads_plan

    client = _get_client(client)
    sync_every = _positive_int_or_none(sync_every, "sync_every")
    n_replicas = _positive_int_or_none(n_replicas, "n_replicas")
    if combine not in model_sync.RULES:
        raise ValueError(f"combine must be one of {model_sync.RULES}, got {combine!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    try:
        with lock_of(model).writing():
            threads = _threads_plan(model, n_threads, client, "per_worker")
            if threads is None:
                threads = model.n_threads
            blocks = _blocks_of(X, y, n_replicas or len(client.nthreads()) or 1)
            n_replicas = min(n_replicas or len(client.nthreads()) or 1, len(blocks))
            per_replica = [blocks[k::n_replicas] for k in range(n_replicas)]
            descriptions, loaded = _describe_blocks(client, blocks)

            def make_pool(network, kind, fitted_classes):
                pool = DaskPool(client, per_replica, loaded, network, kind, fitted_classes,
                                threads)
                loaded.clear()  # the replicas hold their rows now
                return pool

            return data_parallel.fit(model, descriptions, make_pool, classes=classes,
                                     sync_every=sync_every, rule=combine, callback=callback,
                                     validation=validation)
    except _CONNECTION_ERRORS as exc:
        if client.status == "running" and not isinstance(exc, SchedulerLost):
            raise
        raise RuntimeError(
            f"fit_distributed lost the Dask scheduler ({type(exc).__name__}: {exc}); "
            "the model is unchanged"
        ) from exc
