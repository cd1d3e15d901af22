"""One replica of a network in data-parallel training: its rows of the
training data and its copy of the weights, trained one round at a time.

A replica lives where its data is (a Dask worker, or this process for the
in-process pool of ``_data_parallel``). Each round it receives the master's
update (``_model_sync``), the schedule and the rows to train; it trains them
with the engine's ``train_epoch`` and returns its changes. The data blocks are
checked and converted here (``describe_block``, ``prepare_block``), so the same
checks run on a worker for lazily loaded blocks and in the caller for
in-memory ones.
"""

import copy
import time

import numpy as np
import scipy.sparse as sp

from . import _engine as engine
from . import _model_sync as model_sync
from ._input import validate_training_data
from ._targets import TargetKind, label_counts, label_lists, target_kind


def config_options(config):
    """The values of an engine TrainConfig as keywords of ``engine.training_config``
    (a TrainConfig does not pickle; its values do)."""
    return {name: getattr(config, name) for name in dir(config)
            if not name.startswith("_") and not callable(getattr(config, name))}


def _checked(X, y, where):
    """(X canonical CSR float32, y) of a block, as ``fit`` checks them."""
    from ._classifier import SlideClassifier  # a throwaway estimator for validate_data

    try:
        return validate_training_data(SlideClassifier(), X, y, reset=True)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{where}: {exc}") from exc


def describe_block(X, y, where):
    """What the coordinator checks of a block before training: its shape and targets.

    ValueError/TypeError (prefixed with ``where``) for a block ``fit`` would refuse.
    """
    X, y = _checked(X, y, where)
    try:
        kind = target_kind(y)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc
    multiclass = kind == TargetKind.MULTICLASS
    return {
        "rows": X.shape[0],
        "features": X.shape[1],
        "kind": kind,
        # 1-D targets: the block's classes; indicators: their number of columns.
        "classes": np.unique(y) if multiclass else None,
        "label_columns": None if multiclass else y.shape[1],
        "positives": int(y.nnz if sp.issparse(y) else np.count_nonzero(y)) if not multiclass
        else X.shape[0],
        "y_sparse": sp.issparse(y),
        "y_dtype": np.asarray(y.data if sp.issparse(y) else y).dtype,
    }


def prepare_block(X, y, kind, classes, where):
    """(X canonical CSR float32, label pattern CSR) of a block for training."""
    X, y = _checked(X, y, where)
    try:
        return X, label_lists(y, kind, classes)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc


class Replica:
    """A copy of the network and the rows (blocks stacked in order) it trains on."""

    def __init__(self, network, blocks, kind, classes, n_threads=None, tables_current=False):
        """``network``: the master's (copied, not kept); ``blocks``: (X, y, where)
        triples; ``n_threads``: the engine's threads here (None: OpenMP's default);
        ``tables_current``: the network's hash tables are those its schedule says
        (true when a fit starts; the master's tables go stale while it trains)."""
        prepared = [prepare_block(X, y, kind, classes, where) for X, y, where in blocks]
        X = sp.vstack([x for x, _ in prepared], format="csr", dtype=np.float32)
        Y = sp.vstack([y for _, y in prepared], format="csr", dtype=np.float32)
        self.network = copy.deepcopy(network)
        self.data = engine.training_data(X, Y)
        self.n_rows = X.shape[0]
        self.n_threads = n_threads
        self.label_counts = label_counts(Y)
        self.n_label_entries = int(Y.nnz)
        # The schedule's n_rehashes when this replica's hash tables were built
        # (None: stale, built again before training).
        self.tables_version = network["schedule"]["n_rehashes"] if tables_current else None

    def summary(self):
        """What the coordinator records of the replica's data."""
        return {"rows": self.n_rows, "label_counts": self.label_counts,
                "label_entries": self.n_label_entries}

    def train_round(self, update, plan):
        """Apply the master's ``update`` (None: already in sync), train the rows of
        ``plan`` and return this round's changes, statistics and schedule (None
        without a plan: this replica has no rows left in the epoch)."""
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        params, tables = self.network["params"], self.network["tables"]
        if update is not None:
            model_sync.apply_update(params, update)
        if plan is None:
            return None
        schedule = self.network["schedule"]
        schedule.update(plan["schedule"])
        schedule["samples_seen"] = plan["samples_seen"]
        start_step = schedule["step"]
        config = engine.training_config(
            **dict(plan["options"], n_threads=engine.effective_n_threads(self.n_threads)))
        rehash_first = schedule["step"] >= schedule["next_rehash_step"]
        stale = self.tables_version != schedule["n_rehashes"]
        if tables is not None and not rehash_first and stale:
            # Tables older than the master's schedule (a new replica, or one that
            # had no rows in the round that rehashed): build them as that rehash
            # did (same hash functions and bucket seed) from the weights now.
            rehash = dict(schedule, n_rehashes=max(schedule["n_rehashes"] - 1, 0))
            engine.rebuild_tables(params, tables, config, rehash)
        # check_state: the row steps (and, for a new replica, the tables) came
        # over the network.
        stats = engine.train_epoch(params, tables, self.data,
                                   np.ascontiguousarray(plan["rows"], dtype=np.int64), config,
                                   schedule, check_state=True)
        self.tables_version = schedule["n_rehashes"]
        return {
            "changes": model_sync.round_changes(params, start_step),
            "stats": stats,
            "schedule": dict(schedule),
            "seconds": time.perf_counter() - start_wall,
            "cpu_seconds": time.process_time() - start_cpu,
        }
