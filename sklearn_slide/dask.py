"""Scale out with Dask: hyper-parameter search, top-k prediction, streaming
training and data-parallel training on a ``distributed`` cluster.

Needs the ``dask`` extra (``pip install "sklearn-slide[dask]"``, which brings
``dask[distributed]``); ``import sklearn_slide`` never imports this module.

- :func:`search_on_cluster` runs a ``GridSearchCV`` (or any scikit-learn search)
  with joblib's Dask backend, sending ``X`` and ``y`` to the cluster once and
  giving each fit the worker's share of cores.
- :func:`predict_topk` ranks the rows of a Dask array, a big matrix or a
  sequence of row blocks on the workers; the model is shipped once, and only
  the ``(n, k)`` top-k arrays come back.
- :func:`partial_fit_stream` trains one model over data larger than memory by
  a chain of ``partial_fit`` calls, one per row block, with blocks loaded on the
  workers a few steps ahead. The chain is sequential: one model's training
  (threads sharing its weights) stays on one machine at a time.
- :func:`fit_distributed` trains one model on every worker at once (data
  parallel): each worker trains a replica on its rows, and the replicas'
  changes are merged every ``sync_every`` batches or once per epoch.
- :func:`cluster_threads` reports, per worker, the cores it sees, what
  ``n_threads=None`` resolves to there and the thread counts these helpers use.

The thread-count trap: Dask's nanny starts worker processes with
``OMP_NUM_THREADS=1`` (unless that variable is already set where the workers
are launched), so an estimator with ``n_threads=None`` trains and predicts with
one thread on a worker. The helpers here replace ``n_threads=None`` by the
worker's share of cores (``n_threads="auto"``); an explicit integer on the
estimator is kept.

Why one module of ~700 lines: it is the public Dask surface, and its helpers
share the pieces that make a model behave on a worker (the thread plan above,
the client lookup, the row blocks of a Dask array, a matrix or a sequence);
with ``_dask_fit`` (which it imports), it is the only module that imports
``dask``. The data-parallel machinery of ``fit_distributed`` (rounds,
replicas, faults) is ``_dask_fit``'s, its Dask-free algorithm
``_data_parallel``'s.
"""

import copy
import numbers
import socket
from collections import deque

import joblib
import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from ._input import check_sparse_structure

try:
    import dask
    import dask.array as da
    import distributed
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "sklearn_slide.dask needs dask and distributed: "
        'pip install "sklearn-slide[dask]" (or "dask[distributed]")'
    ) from exc

# Data-parallel training of one model (its own module: the replicas, the rounds, the faults).
from ._dask_fit import DEFAULT_COMBINE, DEFAULT_SYNC_EVERY, _is_lazy, fit_distributed  # noqa: E402

__all__ = ["cluster_threads", "fit_distributed", "partial_fit_stream", "predict_topk",
           "search_on_cluster"]

# Rows per block when predict_topk splits one in-memory matrix.
DEFAULT_BLOCK_ROWS = 10_000


# ----------------------------------------------------------------- threads


def _worker_info():
    """Run on each worker by ``Client.run``: its machine, cores and OpenMP default."""
    from dask.system import CPU_COUNT  # honours CPU affinity and cgroup quotas

    from ._engine import effective_n_threads

    return {
        "host": socket.gethostname(),
        "cores": int(CPU_COUNT),
        "openmp_default": effective_n_threads(None),
    }


def cluster_threads(client=None):
    """Cores and thread counts of every worker of a Dask cluster.

    Parameters
    ----------
    client : distributed.Client, default=None
        The cluster's client; None uses the current default client.

    Returns
    -------
    threads : dict
        Maps each worker address to a dict with

        - ``"host"``: host name of the worker's machine;
        - ``"nthreads"``: tasks the worker runs at once (its thread pool);
        - ``"cores"``: CPUs the worker process may use (``dask.system.CPU_COUNT``:
          CPU affinity and cgroup quotas count);
        - ``"openmp_default"``: what ``n_threads=None`` resolves to in a task
          there (1 under Dask's default ``OMP_NUM_THREADS=1``);
        - ``"per_worker"``: ``cores // workers on that host`` (at least 1), the
          worker's share of its machine; :func:`partial_fit_stream` gives this to
          each step of its chain, which runs one task at a time;
        - ``"per_task"``: ``per_worker // nthreads`` (at least 1), the share of
          one task when the worker runs ``nthreads`` tasks at once, as in a
          search or in :func:`predict_topk`.

    Examples
    --------
    >>> from distributed import Client, LocalCluster  # doctest: +SKIP
    >>> client = Client(LocalCluster(n_workers=2, threads_per_worker=1))  # doctest: +SKIP
    >>> cluster_threads(client)  # doctest: +SKIP
    {'tcp://127.0.0.1:40235': {'host': 'box', 'nthreads': 1, 'cores': 8,
      'openmp_default': 1, 'per_worker': 4, 'per_task': 4}, ...}
    """
    client = _get_client(client)
    info = client.run(_worker_info)
    for address, nthreads in client.nthreads().items():
        if address in info:
            info[address]["nthreads"] = int(nthreads)
    workers_on_host = {}
    for worker in info.values():
        workers_on_host[worker["host"]] = workers_on_host.get(worker["host"], 0) + 1
    for worker in info.values():
        per_worker = max(1, worker["cores"] // workers_on_host[worker["host"]])
        worker["per_worker"] = per_worker
        worker["per_task"] = max(1, per_worker // max(worker.get("nthreads", 1), 1))
    return info


def _check_n_threads_arg(n_threads):
    if n_threads is None or n_threads == "auto":
        return n_threads
    if isinstance(n_threads, (bool, np.bool_)) or not isinstance(n_threads, numbers.Integral):
        raise TypeError(f'n_threads must be "auto", None or a positive int, got {n_threads!r}')
    if n_threads < 1:
        raise ValueError(f'n_threads must be "auto", None or a positive int, got {n_threads}')
    return int(n_threads)


def _threads_plan(model, n_threads, client, share):
    """Thread counts to give ``model`` on the workers.

    Returns None (leave ``model.n_threads`` alone), an int, or a dict mapping a
    worker address to its ``share`` (``"per_task"`` or ``"per_worker"``).
    """
    n_threads = _check_n_threads_arg(n_threads)
    if n_threads is None or "n_threads" not in model.get_params(deep=False):
        return None
    if n_threads == "auto":
        if model.get_params(deep=False)["n_threads"] is not None or client is None:
            return None  # an explicit int on the model wins; no client: nothing to ask
        return {address: w[share] for address, w in cluster_threads(client).items()}
    return n_threads


def _threads_here(threads):
    """The thread count of ``threads`` (see ``_threads_plan``) for this worker."""
    if not isinstance(threads, dict):
        return threads
    try:
        address = distributed.get_worker().address
    except ValueError:  # not on a worker (dask's local scheduler)
        address = None
    # A worker that joined after the plan was made gets the smallest share.
    return threads.get(address, min(threads.values()))


def _with_threads(model, threads):
    """``model`` itself, or a shallow copy with this worker's ``n_threads``."""
    if threads is None:
        return model
    model = copy.copy(model)  # shares the fitted arrays; only n_threads differs
    model.n_threads = _threads_here(threads)
    return model


# ------------------------------------------------------------------ helpers


def _get_client(client, required=True):
    if client is not None:
        return client
    try:
        return distributed.get_client()
    except ValueError:
        if not required:
            return None
        raise ValueError(
            "no Dask client: pass client=, or create one first, e.g. "
            "distributed.Client(distributed.LocalCluster()) or "
            'distributed.Client("tcp://scheduler:8786")'
        ) from None


def _is_dask_array(obj):
    return isinstance(obj, da.Array)


def _as_matrix(block):
    """A block as something SlideClassifier reads: ndarray or scipy sparse.

    Chunks of a Dask array may be pydata/sparse arrays (``.tocsr()``) or other
    array types (``np.asarray``).
    """
    if sp.issparse(block) or isinstance(block, np.ndarray):
        return block
    if hasattr(block, "tocsr"):
        return block.tocsr()
    return np.asarray(block)


def _check_positive_int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


# --------------------------------------------------------------- search


def _searched_params(search):
    """Names of the parameters a search object varies."""
    names = set()
    for attr in ("param_grid", "param_distributions"):
        grid = getattr(search, attr, None)
        if grid is None:
            continue
        for part in grid if isinstance(grid, (list, tuple)) else [grid]:
            names.update(part)
    return names


def search_on_cluster(search, X, y=None, *, client=None, n_threads="auto", **fit_params):
    """Fit a scikit-learn search (``GridSearchCV``, ...) on a Dask cluster.

    The search runs unchanged under ``joblib.parallel_config(backend="dask")``:
    every (candidate, fold) fit is a task on a worker. This helper adds what
    makes that efficient:

    - ``X`` and ``y`` go to the cluster once per search, not with each task
      (joblib scatters large arguments once per ``Parallel`` call, without
      content hashing; workers then fetch them from each other). Not joblib's
      ``scatter=[X, y]`` broadcast: it names the data by a hash of its content,
      so searching the same data twice in a row could scatter it again while
      the previous search's copy was being released; a task then waited forever
      for data the scheduler had dropped ("Could not find data", seen in our
      tests on a loaded machine; dask/distributed#3703 is the same family);
    - the estimator's ``n_threads=None``, which would mean one thread on a
      worker (Dask starts workers with ``OMP_NUM_THREADS=1``), is replaced by
      the workers' per-task share of cores for the duration of the search.

    Parameters
    ----------
    search : BaseSearchCV
        An unfitted search, e.g. ``GridSearchCV(SlideClassifier(...), grid,
        scoring=xmc_scorer(), refit="P@1")``. Leave its ``n_jobs`` at None (or
        -1): with the Dask backend that means every thread of the cluster.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
    y : array-like or sparse matrix of shape (n_samples,) or (n_samples, n_labels)
        Targets; a sparse label matrix works (``GridSearchCV`` accepts one).
    client : distributed.Client, default=None
        The cluster's client; None uses the current default client.
    n_threads : "auto", int or None, default="auto"
        Threads of each fit on the workers, set on every ``n_threads``
        parameter of ``search.estimator`` (``n_threads`` or ``<step>__n_threads``
        in a Pipeline) that the search does not vary itself:

        - ``"auto"``: parameters that are None get the smallest ``per_task``
          share of :func:`cluster_threads` (cores of a machine divided by the
          tasks that run on it at once); explicit integers are kept;
        - an int: that many threads for every fit;
        - None: leave the estimator alone (``n_threads=None`` then means 1
          thread on a default Dask worker).

        The original values are restored on ``search.estimator`` and
        ``search.best_estimator_`` afterwards, so the fitted model uses the
        caller's default when predicting locally.
    **fit_params : dict
        Passed to ``search.fit``.

    Returns
    -------
    search : BaseSearchCV
        The same object, fitted.

    Notes
    -----
    The final refit of the best candidate (``refit=...``) happens in this
    process, as scikit-learn does it, with the thread count chosen above.

    Examples
    --------
    >>> from distributed import Client, LocalCluster  # doctest: +SKIP
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn_slide import SlideClassifier
    >>> from sklearn_slide.metrics import xmc_scorer
    >>> client = Client(LocalCluster(n_workers=2, threads_per_worker=1))  # doctest: +SKIP
    >>> search = GridSearchCV(
    ...     SlideClassifier(hash_family="dwta", max_iter=3, random_state=0),
    ...     {"hash_bits": [4, 6], "n_tables": [16, 50]},
    ...     scoring=xmc_scorer(), refit="P@1", cv=3)
    >>> search_on_cluster(search, X, Y).best_params_  # doctest: +SKIP
    {'hash_bits': 6, 'n_tables': 50}
    """
    client = _get_client(client)
    n_threads = _check_n_threads_arg(n_threads)
    # Before the search slices them into folds: scipy's slicing trusts the index arrays.
    check_sparse_structure(X, "X")
    check_sparse_structure(y, "y")
    original_estimator = search.estimator
    params = original_estimator.get_params(deep=True)
    searched = _searched_params(search)
    candidates = [
        name for name in params
        if (name == "n_threads" or name.endswith("__n_threads")) and name not in searched
    ]
    updates = {}
    if n_threads == "auto":
        auto = [name for name in candidates if params[name] is None]
        if auto:
            share = min(w["per_task"] for w in cluster_threads(client).values())
            updates = dict.fromkeys(auto, share)
    elif n_threads is not None:
        updates = dict.fromkeys(candidates, n_threads)

    if updates:
        search.set_params(estimator=clone(original_estimator).set_params(**updates))
    try:
        with joblib.parallel_config(backend="dask", client=client):
            search.fit(X, y, **fit_params)
    finally:
        search.set_params(estimator=original_estimator)
    best = getattr(search, "best_estimator_", None)
    if updates and best is not None:
        best.set_params(**{name: params[name] for name in updates})
    return search


# ------------------------------------------------------------ prediction


def _topk_block(model, block, k, threads):
    """Task: top-k of one row block, as (int32 labels, float32 scores)."""
    block = _as_matrix(block)
    if block.ndim != 2:
        raise ValueError(f"a block of X must be 2-D, got shape {block.shape}")
    if block.shape[0] == 0:
        return np.empty((0, k), dtype=np.int32), np.empty((0, k), dtype=np.float32)
    labels, scores = _with_threads(model, threads).predict_topk(block, k=k)
    return (
        np.asarray(labels).astype(np.int32, copy=False),
        np.asarray(scores).astype(np.float32, copy=False),
    )


def _row_blocks(X, block_rows):
    """Blocks of rows of one matrix, or the items of a sequence of blocks."""
    if sp.issparse(X) or isinstance(X, np.ndarray):
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D, got shape {X.shape}")
        check_sparse_structure(X, "X")  # before scipy slices it (blocks are checked by predict_topk)
        if sp.issparse(X) and X.format not in ("csr", "csc", "lil", "dok"):
            X = X.tocsr()  # formats without row slicing
        for start in range(0, X.shape[0], block_rows):
            yield X[start:start + block_rows]
        return
    if isinstance(X, (str, bytes)) or not hasattr(X, "__iter__"):
        raise TypeError(
            "X must be a Dask array, a 2-D array or sparse matrix, or an iterable of "
            f"row blocks (arrays, sparse matrices or Dask futures), got {type(X).__name__}"
        )
    yield from X


def _predict_dask_array(model, X, k, client, threads):
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got a Dask array of shape {X.shape}")
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})  # a block must hold whole rows
    if client is not None:
        model_ref = client.scatter(model, broadcast=True, hash=False)
    else:
        model_ref = dask.delayed(model, pure=False)  # one key in the graph, not one per block
    tops = [
        dask.delayed(_topk_block, pure=True)(model_ref, part, k, threads)
        for part in X.to_delayed().ravel()
    ]
    rows = X.chunks[0]
    labels = da.concatenate([
        da.from_delayed(top[0], shape=(n, k), dtype=np.int32) for top, n in zip(tops, rows)
    ])
    scores = da.concatenate([
        da.from_delayed(top[1], shape=(n, k), dtype=np.float32) for top, n in zip(tops, rows)
    ])
    return labels, scores


def predict_topk(model, X, k=5, *, client=None, block_rows=DEFAULT_BLOCK_ROWS, n_threads="auto"):
    """Top-k labels of every row, computed on a Dask cluster, block by block.

    The model is shipped to the workers once (``client.scatter(...,
    broadcast=True)``); each task ranks one row block with
    ``model.predict_topk``, so no ``(n, n_labels)`` score array is ever built,
    and only the ``(rows, k)`` results travel back. Results equal the
    single-machine ``model.predict_topk(X, k)`` (inference is per-row
    deterministic, whatever the thread count).

    Parameters
    ----------
    model : SlideClassifier
        A fitted estimator with ``predict_topk(X, k) -> (labels, scores)``.
    X : dask.array.Array, array-like, sparse matrix or iterable of blocks
        - A 2-D Dask array with dense or sparse (scipy CSR, pydata/sparse)
          chunks: the row chunks are the blocks (chunks along columns are
          merged first). Returns lazy Dask arrays.
        - A 2-D ndarray or scipy sparse matrix: split into blocks of
          ``block_rows`` rows, sent to the workers a few at a time.
        - An iterable of row blocks (ndarrays, sparse matrices, or
          ``distributed.Future`` objects of them, e.g. blocks loaded on the
          workers with ``client.map``), in row order; it is consumed lazily,
          so a generator reading blocks from disk keeps memory bounded.
    k : int, default=5
        Labels per row.
    client : distributed.Client, default=None
        The cluster's client; None uses the current default client. Required
        unless ``X`` is a Dask array (which then runs on whatever scheduler
        computes it).
    block_rows : int, default=10_000
        Rows per block when ``X`` is one matrix; ignored otherwise.
    n_threads : "auto", int or None, default="auto"
        Threads per block on the workers. ``"auto"`` replaces the model's
        ``n_threads=None`` (one thread on a default Dask worker) by the worker's
        ``per_task`` share of :func:`cluster_threads`, and keeps an explicit
        integer; an int overrides the model's; None uses the model as is.

    Returns
    -------
    labels : ndarray or dask.array.Array of shape (n_samples, k), int32
        Column indices into ``model.classes_``, best first.
    scores : ndarray or dask.array.Array of shape (n_samples, k), float32
        The model's scores (logits) of those labels.

        Dask arrays (when ``X`` is one) are lazy and share their tasks:
        compute them together, ``labels, scores = dask.compute(labels,
        scores)``, or each block is ranked twice. They reference the model
        scattered through ``client``, so compute them with that client.

    Examples
    --------
    >>> import dask.array as da  # doctest: +SKIP
    >>> X_dask = da.from_array(X_test, chunks=(10_000, -1), asarray=False)  # doctest: +SKIP
    >>> labels, scores = predict_topk(clf, X_dask, k=5)  # doctest: +SKIP
    >>> labels, scores = dask.compute(labels, scores)  # doctest: +SKIP
    >>> labels, scores = predict_topk(clf, X_test, k=5, block_rows=5_000)  # doctest: +SKIP
    """
    check_is_fitted(model)
    k = _check_positive_int(k, "k")
    n_labels = len(getattr(model, "classes_", ()))
    if n_labels and k > n_labels:
        raise ValueError(f"k must be an integer in [1, {n_labels}], got {k}")
    block_rows = _check_positive_int(block_rows, "block_rows")
    if _is_dask_array(X):
        client = _get_client(client, required=False)
        threads = _threads_plan(model, n_threads, client, "per_task")
        return _predict_dask_array(model, X, k, client, threads)

    client = _get_client(client)
    threads = _threads_plan(model, n_threads, client, "per_task")
    model_future = client.scatter(model, broadcast=True, hash=False)
    # Blocks in flight at once: enough to keep every worker thread busy while
    # the next blocks are sent, few enough to bound memory.
    window = max(2, 2 * sum(client.nthreads().values()))
    pending = {}  # future -> block index
    results = {}
    try:
        for index, block in enumerate(_row_blocks(X, block_rows)):
            if not isinstance(block, distributed.Future):
                block = client.scatter(_as_matrix(block), hash=False)
            task = client.submit(_topk_block, model_future, block, k, threads, pure=False)
            pending[task] = index
            if len(pending) >= window:
                _collect(pending, results, "FIRST_COMPLETED")
        _collect(pending, results, "ALL_COMPLETED")
    finally:
        if pending:  # an error or an interrupt: stop what is still queued
            client.cancel(list(pending))
        del model_future
    if not results:
        return np.empty((0, k), dtype=np.int32), np.empty((0, k), dtype=np.float32)
    ordered = [results[i] for i in range(len(results))]
    return (
        np.concatenate([labels for labels, _ in ordered]),
        np.concatenate([scores for _, scores in ordered]),
    )


def _collect(pending, results, return_when):
    """Move finished tasks of ``pending`` into ``results`` (raising their errors)."""
    if not pending:
        return
    done, _ = distributed.wait(list(pending), return_when=return_when)
    for task in done:
        results[pending.pop(task)] = task.result()


# ---------------------------------------------------------------- training


def _partial_fit_step(model, data, classes, threads, where):
    """Task: one ``partial_fit`` call on a copy of the model (inputs stay intact)."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(
            f"{where} must be (or load to) a pair (X, y), got {type(data).__name__}"
        )
    X, y = _as_matrix(data[0]), _as_matrix(data[1])
    if classes is not None and np.ndim(y) == 2 and y.shape[1] != len(classes):
        raise ValueError(
            f"{where}: y has {y.shape[1]} label columns but classes has {len(classes)}; "
            "every block must use the same label space"
        )
    model = copy.deepcopy(model)  # a task must not modify its input (Dask may reuse it)
    original = model.n_threads if threads is not None else None
    if threads is not None:
        model.n_threads = _threads_here(threads)
    try:
        model.partial_fit(X, y, classes=classes)
    finally:
        if threads is not None:
            model.n_threads = original
    return model


def _training_blocks(blocks):
    """The blocks as a re-iterable sequence, or an iterator (one pass only)."""
    if (
        isinstance(blocks, tuple)
        and len(blocks) == 2
        and _is_dask_array(blocks[0])
        and _is_dask_array(blocks[1])
    ):
        X, y = blocks
        if X.ndim != 2 or y.ndim not in (1, 2):
            raise ValueError(f"X must be 2-D and y 1-D or 2-D, got {X.shape} and {y.shape}")
        if X.numblocks[1] > 1:
            X = X.rechunk({1: -1})
        y = y.rechunk({0: X.chunks[0], **({1: -1} if y.ndim == 2 else {})})
        x_parts = X.to_delayed().ravel()
        y_parts = y.to_delayed().ravel()
        return list(zip(x_parts, y_parts))
    if not hasattr(blocks, "__iter__"):
        raise TypeError(
            "blocks must be an iterable of (X, y) pairs (or of Futures / Delayed objects "
            "loading to such pairs), or a pair of Dask arrays (X, y)"
        )
    return blocks


def _submit_block(client, block):
    """A Future of a block's (X, y), or a pair of Futures (loading starts now)."""
    if isinstance(block, distributed.Future):
        return block
    if _is_lazy(block):
        return client.compute(block)
    if isinstance(block, (tuple, list)) and len(block) == 2:
        lazy = [i for i, part in enumerate(block) if _is_lazy(part)]
        parts = list(block)
        # Delayed parts in one compute call, so a loader shared by X and y
        # (dask.delayed(load, nout=2)) runs once.
        for i, future in zip(lazy, client.compute([block[i] for i in lazy])):
            parts[i] = future
        for i, part in enumerate(parts):
            if not isinstance(part, distributed.Future) and part is not None:
                parts[i] = client.scatter(part, hash=False)
        return tuple(parts)
    raise TypeError(
        "each block must be a pair (X, y) of arrays, sparse matrices, Futures or Delayed "
        f"objects, or a Future / Delayed object loading to such a pair; got {type(block).__name__}"
    )


def _check_classes(classes, model):
    try:
        check_is_fitted(model)
        fitted = True
    except NotFittedError:
        fitted = False
    if classes is None:
        if not fitted:
            raise ValueError(
                "classes is required to start a model: the label space is fixed up front "
                "(pass the number of labels, or every class for 1-D y)"
            )
        return None
    if isinstance(classes, numbers.Integral) and not isinstance(classes, (bool, np.bool_)):
        if classes < 2:
            raise ValueError(f"classes as a number of labels must be >= 2, got {classes}")
        return np.arange(int(classes))
    return np.asarray(classes)


def partial_fit_stream(model, blocks, *, classes=None, epochs=1, client=None,
                       n_threads="auto", prefetch=2):
    """Train over data larger than memory: a chain of ``partial_fit`` calls on a cluster.

    Every block becomes one ``partial_fit`` task on a worker (one epoch over
    that block). Each task takes the model produced by the previous one, so
    the chain runs one step at a time; the blocks are loaded on the workers
    (or sent there) up to ``prefetch`` steps ahead, and a block is dropped as
    soon as its step is done. Neither the client nor any worker ever holds the
    whole data set.

    What scales is the data loading, not the training: one model's training
    is a single-machine algorithm (its threads share the weights and
    synchronise every batch), so each step uses the threads of one worker while the
    rest of the cluster loads the next blocks. To use several machines at
    once, run several models (a search, :func:`search_on_cluster`) or
    predict (:func:`predict_topk`).

    Parameters
    ----------
    model : SlideClassifier
        The estimator to train, unfitted or fitted (training continues). It is
        not modified: the trained model is returned.
    blocks : iterable or tuple of two Dask arrays
        The training data, in order:

        - an iterable of pairs ``(X_i, y_i)``, each part an array, a sparse
          matrix, a ``distributed.Future`` or a ``dask.delayed`` object;
        - an iterable of Futures or Delayed objects each loading to a pair,
          e.g. ``[dask.delayed(load_block)(path) for path in paths]``: the load
          runs on a worker;
        - a pair ``(X, y)`` of Dask arrays (sparse or dense chunks): their row
          chunks are the blocks.

        With ``epochs > 1`` it must be re-iterable (a list, not a generator);
        Delayed blocks are loaded again in every epoch.
    classes : int or array-like, default=None
        The label space, fixed before the first block: the number of labels of
        a multilabel ``y`` (or ``np.arange(n_labels)``), or every class of a
        1-D ``y``. Required unless ``model`` is already fitted. Every block's
        ``y`` must have this many columns (multilabel).
    epochs : int, default=1
        Passes over the blocks.
    client : distributed.Client, default=None
        The cluster's client; None uses the current default client.
    n_threads : "auto", int or None, default="auto"
        Threads of each step. ``"auto"`` replaces the model's ``n_threads=None``
        (one thread on a default Dask worker) by the ``per_worker`` share of
        :func:`cluster_threads` of the worker that runs the step, and keeps an
        explicit integer; an int overrides the model's; None uses the model as
        is. The returned model keeps the original ``n_threads``.
    prefetch : int, default=2
        Blocks loaded ahead of the training step.

    Returns
    -------
    model : SlideClassifier
        A trained copy of ``model``. With ``n_threads=1`` on the model, it is
        bit-identical to the local chain ``for X_i, y_i in blocks:
        model.partial_fit(X_i, y_i, classes=classes)`` (repeated ``epochs``
        times).

    Notes
    -----
    ``partial_fit`` shuffles rows within a block only: blocks should be in
    random order (shuffle the files, or the rows when writing them). Each step
    copies the model (a Dask task must not modify its input), which costs a
    copy of the weights and Adam moments per block; blocks of some 10^4 to 10^5
    rows make that negligible.

    Examples
    --------
    >>> import dask  # doctest: +SKIP
    >>> from sklearn_slide.datasets import load_xc
    >>> loads = [dask.delayed(load_xc)(path, n_features=d, n_labels=L)
    ...          for path in sorted(paths)]  # doctest: +SKIP
    >>> clf = partial_fit_stream(SlideClassifier(random_state=0), loads,
    ...                          classes=L, epochs=3)  # doctest: +SKIP
    """
    client = _get_client(client)
    classes = _check_classes(classes, model)
    epochs = _check_positive_int(epochs, "epochs")
    if isinstance(prefetch, (bool, np.bool_)) or not isinstance(prefetch, numbers.Integral) \
            or prefetch < 0:
        raise ValueError(f"prefetch must be a non-negative int, got {prefetch!r}")
    blocks = _training_blocks(blocks)
    if epochs > 1 and iter(blocks) is blocks:
        raise TypeError(
            "with epochs > 1, blocks must be re-iterable (a list or tuple, not a generator)"
        )
    threads = _threads_plan(model, n_threads, client, "per_worker")

    current = client.scatter(model, hash=False)
    steps = deque()  # unfinished steps, oldest first
    try:
        for epoch in range(epochs):
            for index, block in enumerate(blocks):
                # Bound the blocks in memory: wait for old steps before loading more.
                while steps and (len(steps) > prefetch or steps[0].done()):
                    _finish(steps.popleft())
                data = _submit_block(client, block)
                where = f"block {index} (epoch {epoch + 1})"
                current = client.submit(
                    _partial_fit_step, current, data, classes, threads, where, pure=False
                )
                steps.append(current)
                del data
        trained = current.result()
        steps.clear()
    finally:
        if steps:  # an error or an interrupt: stop the rest of the chain
            client.cancel(list(steps))
    return trained


def _finish(step):
    distributed.wait(step)
    if step.status == "error":
        step.result()  # raises the task's exception

