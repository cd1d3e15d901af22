"""Data-parallel training of one network over replicas: the round loop.

Independent of Dask: the loop talks to a *pool* of replicas (``_replica``),
either ``InProcessPool`` (every replica in this process, one after another: the
correctness oracle and a simulator of many machines) or the Dask pool of
``_dask_fit``. Both give bit-identical models for the same plan.

The rule (docs/dask.md, "Training one model on the cluster"):

- Every epoch, each replica's rows are shuffled by the fit's random state (in
  replica order), as ``fit`` shuffles its rows.
- A round is at most ``sync_every`` Adam steps (batches) on every replica,
  all starting from the master's weights; it also ends where the engine's
  rehash schedule (in Adam steps) is due, so the hash tables are always rebuilt
  at the start of a round, from the synchronised weights, identically on every
  replica.
- After the round, the replicas' changes are merged into the master by the
  combination rule (``_model_sync.RULES``) and the update goes back to them.
- Replica k's samples draw their negatives from the streams that follow those
  of replicas 0..k-1 in the round: with one replica, training is the local
  ``fit`` exactly.
- A replica lost in a round (its worker died) contributes nothing to it; the
  pool re-creates it from the master for the next round.
"""

import math
import time

import numpy as np

from . import _model_sync as model_sync
from . import _training as training
from ._replica import config_options
from ._targets import check_same_target_kind


def round_steps(schedule, sync_every, hashed):
    """Adam steps of the next round: ``sync_every`` (None: no limit), cut where
    the next table rehash is due.

    The engine (cpp/slide/trainer.cpp, train_epoch) rehashes before the batch
    at which ``step >= next_rehash_step``, then schedules the next rehash
    ``max(1, llround(rehash_interval))`` steps later. A round that starts with
    a rehash is therefore cut at that distance; any other round where the next
    rehash is due.
    """
    limit = math.inf if sync_every is None else sync_every
    if not hashed:
        return limit
    step, due = schedule["step"], schedule["next_rehash_step"]
    if step >= due:
        interval = min(float(schedule["rehash_interval"]), 1e18)
        return min(limit, max(1, math.floor(interval + 0.5)))  # llround of a positive value
    return min(limit, due - step)


class InProcessPool:
    """Replicas in this process, trained one after another (no faults)."""

    def __init__(self, network, blocks_per_replica, kind, classes, n_threads=None):
        from ._replica import Replica

        self.replicas = [Replica(network, blocks, kind, classes, n_threads, tables_current=True)
                         for blocks in blocks_per_replica]
        self.summaries = [replica.summary() for replica in self.replicas]
        self._update = None

    def run_round(self, plans):
        return [replica.train_round(self._update, plan)
                for replica, plan in zip(self.replicas, plans)]

    def synchronise(self, update, network):
        self._update = update

    def close(self):
        self.replicas = []


def _adopt_schedule(state, reports, samples_seen):
    """The master's schedule after a round: that of the replica that took the
    most steps (the others took as many, or fewer at the end of an epoch)."""
    latest = max(reports, key=lambda report: report["schedule"]["step"])
    for report in reports:
        for key in ("n_rehashes", "hash_seed", "next_rehash_step", "rehash_interval"):
            if report["schedule"][key] != latest["schedule"][key]:
                raise RuntimeError(f"replicas disagree on the training schedule ({key})")
    schedule = state.network["schedule"]
    schedule.update(latest["schedule"])
    schedule["samples_seen"] = samples_seen


def train(estimator, state, pool, n_epochs, sync_every, rule, first_call, callback=None,
          validation=None):
    """Train the master ``state`` for ``n_epochs`` over the pool's replicas,
    measuring P@1 on ``validation`` (X_val, Y_val) after each epoch if given."""
    network = state.network
    params = network["params"]
    hashed = network["tables"] is not None
    batch = int(estimator.batch_size)
    rows_per_replica = [summary["rows"] for summary in pool.summaries]
    config = training.train_config(estimator, network)
    round_index = 0
    if validation is not None and state.validation_scores is None:
        state.validation_scores = []
    for _ in range(n_epochs):
        config.learning_rate = training._epoch_learning_rate(estimator, state)
        options = config_options(config)  # plain values: they travel to the workers
        orders = [state.rng.permutation(n) if estimator.shuffle else np.arange(n)
                  for n in rows_per_replica]
        positions = [0] * len(orders)
        epoch = {"loss_sum": 0.0, "n_labelled": 0, "active_sum": 0.0, "n_samples": 0,
                 "rounds": 0, "lost": 0}
        epoch_start = time.perf_counter()
        while any(p < len(order) for p, order in zip(positions, orders)):
            steps = round_steps(network["schedule"], sync_every, hashed)
            samples_seen = network["schedule"]["samples_seen"]
            plans = []
            for k, order in enumerate(orders):
                rows = order[positions[k]:positions[k] + min(steps * batch, len(order))]
                positions[k] += len(rows)
                plans.append(None if len(rows) == 0 else {
                    "rows": rows, "samples_seen": samples_seen,
                    "schedule": dict(network["schedule"]), "options": options,
                })
                samples_seen += len(rows)
            round_start = time.perf_counter()
            reports = pool.run_round(plans)
            trained = [r for r, plan in zip(reports, plans) if r is not None and plan is not None]
            lost = [k for k, (r, plan) in enumerate(zip(reports, plans))
                    if r is None and plan is not None]
            merge_start = time.perf_counter()
            update = None
            if trained:
                update = model_sync.merge(params, [r["changes"] for r in trained], rule)
                _adopt_schedule(state, trained, samples_seen)
            merge_seconds = time.perf_counter() - merge_start
            pool.synchronise(update, network)
            for report in trained:
                for key in ("loss_sum", "n_labelled", "active_sum", "n_samples"):
                    epoch[key] += report["stats"][key]
            epoch["rounds"] += 1
            epoch["lost"] += len(lost)
            if callback is not None:
                callback({
                    "kind": "round", "epoch": state.n_iter + 1, "round": round_index,
                    "steps": steps,
                    "rows": [0 if plan is None else len(plan["rows"]) for plan in plans],
                    "lost_replicas": lost,
                    "bytes_up": sum(model_sync.payload_bytes(r["changes"]) for r in trained),
                    "bytes_down": 0 if update is None else
                    model_sync.payload_bytes(update) * len(trained),
                    "round_seconds": time.perf_counter() - round_start,
                    "merge_seconds": merge_seconds,
                    "replica_seconds": [r["seconds"] for r in trained],
                    "replica_cpu_seconds": [r["cpu_seconds"] for r in trained],
                })
            round_index += 1
        _finish_epoch(estimator, state, epoch, config.learning_rate, first_call,
                      time.perf_counter() - epoch_start, validation, callback)


def _finish_epoch(estimator, state, epoch, learning_rate, first_call, seconds, validation,
                  callback):
    loss = epoch["loss_sum"] / max(epoch["n_labelled"], 1)
    mean_active = epoch["active_sum"] / max(epoch["n_labelled"], 1)
    training.check_divergence(state, loss, mean_active, learning_rate, first_call)
    state.loss_curve.append(float(loss))
    state.n_iter += 1
    validation_start = time.perf_counter()
    if validation is not None:
        state.validation_scores.append(
            training._validation_p_at_1(estimator, state.network, validation))
    if callback is not None:
        callback({
            "kind": "epoch", "epoch": state.n_iter, "loss": float(loss),
            "rounds": epoch["rounds"], "lost_replica_rounds": epoch["lost"],
            "samples": epoch["n_samples"], "seconds": seconds,
            "validation_p_at_1": None if validation is None else state.validation_scores[-1],
            "validation_seconds": time.perf_counter() - validation_start,
        })
    if estimator.verbose:
        print(
            f"Epoch {state.n_iter}: loss {loss:.4f}, "
            f"{epoch['n_samples'] / max(seconds, 1e-9):,.0f} samples/s over the replicas, "
            f"{epoch['rounds']} rounds"
            + (f", {epoch['lost']} replica rounds lost" if epoch["lost"] else "")
            + f", {seconds:.1f} s"
            + (f", validation P@1 {state.validation_scores[-1]:.4f}"
               if validation is not None else ""),
            flush=True,
        )


# ------------------------------------------------------------------ the fit


def check_blocks(descriptions, estimator, classes, continuing):
    """The training problem the blocks describe (``_replica.describe_block``), or
    ValueError when they disagree with each other, ``classes`` or a fitted model."""
    if not descriptions:
        raise ValueError("no training blocks: X and y hold no rows")
    first = descriptions[0]
    for i, d in enumerate(descriptions):
        if d["features"] != first["features"]:
            raise ValueError(f"block {i} has {d['features']} features, block 0 has "
                             f"{first['features']}: every block needs the same columns")
        if d["kind"] != first["kind"]:
            raise ValueError(f"block {i} has {d['kind']} targets, block 0 {first['kind']}")
        if d["label_columns"] != first["label_columns"]:
            raise ValueError(f"block {i} has {d['label_columns']} label columns, block 0 "
                             f"{first['label_columns']}: every block needs the same labels")
    kind = first["kind"]
    n_features = first["features"]
    if continuing:
        check_same_target_kind(kind, estimator._target_kind)
        if n_features != estimator.n_features_in_:
            raise ValueError(f"X has {n_features} features, but the fitted model is expecting "
                             f"{estimator.n_features_in_} features as input")
        known = estimator.classes_
    elif classes is not None:
        known = np.unique(np.asarray(classes)) if first["classes"] is not None \
            else np.asarray(classes)
    else:
        known = None
    if first["classes"] is not None:  # 1-D targets
        seen = np.unique(np.concatenate([d["classes"] for d in descriptions]))
        if known is not None:
            unknown = np.setdiff1d(seen, known)
            if unknown.size:
                raise ValueError(f"y contains labels not in classes: {unknown[:10].tolist()}")
        classes = seen if known is None else known
    else:
        n_labels = first["label_columns"]
        if known is not None and len(known) != n_labels:
            raise ValueError(f"y has {n_labels} label columns but classes (or the fitted "
                             f"model) has {len(known)} labels")
        if not continuing and sum(d["positives"] for d in descriptions) == 0:
            raise ValueError("y has no positive label: every row of the indicator is empty")
        classes = np.arange(n_labels) if known is None else known
    if len(classes) < 2:
        raise ValueError(f"SlideClassifier needs at least 2 classes (labels); y has "
                         f"{len(classes)} class")
    return {
        "kind": kind, "classes": classes, "n_features": n_features,
        "n_rows": sum(d["rows"] for d in descriptions),
        "sparse_output": first["y_sparse"], "y_dtype": first["y_dtype"],
    }


def fit(estimator, descriptions, make_pool, *, classes=None, sync_every, rule, callback=None,
        validation=None):
    """Train ``estimator`` data-parallel on the blocks ``descriptions`` describe.

    ``make_pool(network, kind, classes)`` starts the replicas. The estimator is
    changed only when training succeeded (also with ``warm_start``: the fitted
    model is copied first). ``validation``: (X_val, y_val) whose P@1 is measured
    after each epoch (``validation_scores_``).
    """
    import copy

    estimator._validate_params()
    if estimator.early_stopping:
        raise ValueError(
            "data-parallel training does not stop early (early_stopping=True): pass "
            "early_stopping=False, and validation= to follow P@1 per round"
        )
    if estimator.learning_rate_schedule != "constant":
        raise ValueError(
            'data-parallel training supports learning_rate_schedule="constant" only '
            f"(got {estimator.learning_rate_schedule!r}): the plateau schedule's "
            "validation rows would have to be held out of the blocks"
        )
    continuing = estimator.warm_start and hasattr(estimator, "_network")
    problem = check_blocks(descriptions, estimator, classes, continuing)
    if continuing:
        state = training.FitState.of(copy.deepcopy(estimator))
    else:
        state = training.new_fit_state_of_shape(
            estimator, (problem["n_rows"], problem["n_features"]), problem["kind"],
            problem["classes"], problem["sparse_output"], problem["y_dtype"],
            # Replicas sample with hash tables: candidates="clusters" would need
            # each replica's own index of the weights (not built yet).
            candidates="lsh")
    if validation is not None:
        validation = _validation_rows(validation, problem, state.classes)
    pool = make_pool(state.network, problem["kind"], state.classes)
    try:
        summaries = pool.summaries
        training.count_training_rows(
            state, sum(s["rows"] for s in summaries),
            np.sum([s["label_counts"] for s in summaries], axis=0),
            sum(s["label_entries"] for s in summaries))
        train(estimator, state, pool, estimator.max_iter, sync_every, rule,
              first_call=not continuing, callback=callback, validation=validation)
    finally:
        pool.close()
    if state.network["tables"] is not None:
        training.refresh_tables(estimator, state)
    state.reranker = None  # the rows are on the workers: no re-ranker (docs/dask.md)
    state.commit(estimator)
    estimator.n_features_in_ = problem["n_features"]
    if not continuing and hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_
    return estimator


def _validation_rows(validation, problem, classes):
    """(X_val canonical CSR, label pattern) of the ``validation`` pair."""
    from ._replica import prepare_block

    if not isinstance(validation, (tuple, list)) or len(validation) != 2:
        raise TypeError("validation must be a pair (X_val, y_val)")
    X_val, Y_val = prepare_block(*validation, problem["kind"], classes, "validation")
    if X_val.shape[1] != problem["n_features"]:
        raise ValueError(f"validation: X_val has {X_val.shape[1]} features, the training "
                         f"blocks {problem['n_features']}")
    return X_val, Y_val
