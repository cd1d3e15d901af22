"""fit_distributed: one model trained data-parallel on a real LocalCluster.

Worker processes (processes=True) on 127.0.0.1, no dashboard, one thread
each. Faults are injected on a worker by replacing its engine's train_epoch
(through ``client.run``) with one that kills the worker process, or the
scheduler, at its n-th call: in the middle of a round.
"""

import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import scipy.sparse as sp

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

import cloudpickle  # a dependency of distributed
import dask.array as da
from sklearn.base import clone

from sklearn_slide import SlideClassifier
from sklearn_slide import _data_parallel as data_parallel
from sklearn_slide import _model_sync as model_sync
from sklearn_slide._replica import describe_block
from sklearn_slide.dask import DEFAULT_COMBINE, fit_distributed
from sklearn_slide.datasets import make_extreme_multilabel

# The fault injectors below run on worker processes: ship them by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

SMALL = {"hidden_layer_sizes": (32,), "batch_size": 32, "min_active": 32, "max_active": 128,
         "hash_family": "dwta", "n_threads": 1, "random_state": 0,
         "candidates": "lsh", "dropout": 0.0,  # tuned before dropout; replicas use the tables
         "reranker": None}  # fit_distributed trains none: local fits compare without it


def _cluster(n_workers=2):
    return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                    host="127.0.0.1", dashboard_address=None)


@pytest.fixture(scope="module")
def client():
    with _cluster() as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def data():
    X, Y = make_extreme_multilabel(1500, 1500, 400, random_state=0)
    return X[:1200], Y[:1200], X[1200:], Y[1200:]


def _state(model):
    """Everything a fit produces, for exact comparisons."""
    network = model._network
    state = {f"params/{k}": v for k, v in network["params"].items() if isinstance(v, np.ndarray)}
    if network["tables"] is not None:
        state.update({f"tables/{k}": network["tables"][k] for k in ("offsets", "ids")})
    state.update(schedule=network["schedule"], classes=model.classes_, n_iter=model.n_iter_,
                 counts=model.label_counts_, seen=model.n_samples_seen_,
                 rng=model._rng.get_state(legacy=False)["state"]["key"],
                 features=model.n_features_in_, mean_labels=model._mean_labels)
    return state


def _assert_same_fit(a, b):
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    for key in sa:
        if isinstance(sa[key], np.ndarray):
            np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)
        else:
            assert sa[key] == sb[key], key
    # Each epoch's loss is summed per round, then over rounds: the last bits
    # of the double sum may differ from the engine's single running sum.
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12)


def _p_at_1(model, X, Y):
    return model.score(X, Y)


def _in_process(model, X, Y, n_replicas, **kwargs):
    """The same algorithm with every replica in this process (the oracle)."""
    bounds = np.linspace(0, X.shape[0], n_replicas + 1).astype(int)
    blocks = [[(X[a:b], Y[a:b], f"block {i}")] for i, (a, b) in
              enumerate(zip(bounds[:-1], bounds[1:]))]
    descriptions = [describe_block(*block[0]) for block in blocks]
    return data_parallel.fit(
        model, descriptions,
        lambda network, kind, classes: data_parallel.InProcessPool(network, blocks, kind, classes,
                                                                   1),
        **kwargs)


# ----------------------------------------------------------- the sync rule


def _toy_params(layer_sizes=(4, 2, 3)):
    from sklearn_slide._network_state import init_params

    return init_params(layer_sizes[0], layer_sizes[1:-1], layer_sizes[-1],
                       np.random.RandomState(0))


def _changed(params, input_rows, output_rows, step, shift):
    """A replica's changes: the given rows moved by ``shift`` at Adam step ``step``."""
    replica = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in params.items()}
    for rows, group in ((input_rows, "input"), (output_rows, "output")):
        step_key, keys = model_sync.row_groups()[group]
        replica[step_key][rows] = step
        for key in keys:
            replica[key][rows] += shift
    for key in model_sync.dense_keys(params):
        replica[key] += shift
    return model_sync.round_changes(replica, start_step=0)


@pytest.mark.parametrize("rule", model_sync.RULES)
def test_merge_rules_on_rows_changed_by_one_or_both_replicas(rule):
    params = _toy_params()
    old = {k: v.copy() for k, v in params.items() if isinstance(v, np.ndarray)}
    # Output row 0: both replicas (+1, +3); row 1: only the first (+1); row 2: neither.
    first = _changed(params, [0], [0, 1], 1, np.float32(1.0))
    second = _changed(params, [0], [0], 2, np.float32(3.0))
    update = model_sync.merge(params, [first, second], rule)
    w, m = params["output_weights"], params["output_weights_adam_m"]
    both = {"average": 2.0, "sum": 4.0, "sqrt_sum": 4.0 / np.sqrt(2),
            "touched_average": 2.0}[rule]
    alone = {"average": 0.5, "sum": 1.0, "sqrt_sum": 1.0, "touched_average": 1.0}[rule]
    np.testing.assert_allclose(w[0] - old["output_weights"][0], both, rtol=1e-6)
    np.testing.assert_allclose(w[1] - old["output_weights"][1], alone, rtol=1e-6)
    np.testing.assert_array_equal(w[2], old["output_weights"][2])
    # Moments: averaged like the weights, except that "sum" and "sqrt_sum"
    # average them over the replicas that changed the row.
    moment_alone = 0.5 if rule == "average" else 1.0
    np.testing.assert_allclose(m[0] - old["output_weights_adam_m"][0], 2.0, rtol=1e-6)
    np.testing.assert_allclose(m[1] - old["output_weights_adam_m"][1], moment_alone, rtol=1e-6)
    np.testing.assert_array_equal(params["output_row_step"], [2, 1, 0])  # the latest step
    dense = {"average": 2.0, "sum": 4.0, "sqrt_sum": 4.0 / np.sqrt(2),
             "touched_average": 2.0}[rule]
    np.testing.assert_allclose(params["hidden_biases_0"] - old["hidden_biases_0"], dense,
                               rtol=1e-6)
    # The update carries the master's new values of every changed row.
    ids, values = update["rows"]["output"]
    np.testing.assert_array_equal(ids, [0, 1])
    np.testing.assert_array_equal(values["output_weights"], w[[0, 1]])
    replica = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in old.items()}
    model_sync.apply_update(replica, update)
    for key, value in old.items():
        np.testing.assert_array_equal(replica[key], params[key], err_msg=key)


@pytest.mark.parametrize("rule", model_sync.RULES)
def test_merging_one_replica_takes_its_values_exactly(rule):
    params = _toy_params()
    changes = _changed(params, [1, 3], [2], 1, np.float32(0.1))
    expected = {k: v.copy() for k, v in params.items() if isinstance(v, np.ndarray)}
    model_sync.apply_update(expected, changes)
    model_sync.merge(params, [changes], rule)
    for key, value in expected.items():
        np.testing.assert_array_equal(params[key], value, err_msg=key)


def test_rounds_end_where_the_engine_rehashes(data):
    """round_steps predicts the engine's rehash schedule (cpp/slide/trainer.cpp)."""
    # _engine: one engine call per batch, to see where it rehashes.
    from sklearn_slide import _engine as engine
    from sklearn_slide import _training as training

    X, Y, _, _ = data
    model = SlideClassifier(**{**SMALL, "rehash_interval": 3, "rehash_growth": 1.5}).partial_fit(
        X[:32], Y[:32])
    state = training.FitState.of(model)
    network = state.network
    options = training.train_config(model, network)
    data = engine.training_data(X, Y.tocsr().astype(np.float32))
    predicted_boundaries, seen_rehashes = [], []
    step = 0
    while network["schedule"]["step"] < 60:
        steps = data_parallel.round_steps(network["schedule"], None, hashed=True)
        predicted_boundaries.append(network["schedule"]["step"] + steps)
        for _ in range(steps):  # one batch at a time, noting where the engine rehashes
            before = network["schedule"]["n_rehashes"]
            rows = np.arange(step * 32, step * 32 + 32, dtype=np.int64) % X.shape[0]
            engine.train_epoch(network["params"], network["tables"], data, rows, options,
                               network["schedule"], check_state=False)
            if network["schedule"]["n_rehashes"] > before:
                seen_rehashes.append(network["schedule"]["step"] - 1)
            step += 1
    # Every predicted round ended where the engine rehashed next.
    assert seen_rehashes == predicted_boundaries[:len(seen_rehashes)]
    assert len(seen_rehashes) >= 5
    assert data_parallel.round_steps(network["schedule"], 4, hashed=True) <= 4
    assert data_parallel.round_steps(network["schedule"], 7, hashed=False) == 7


def test_one_replica_in_process_equals_local_fit(data):
    X, Y, _, _ = data
    local = SlideClassifier(max_iter=3, **SMALL).fit(X, Y)
    model = _in_process(SlideClassifier(max_iter=3, **SMALL), X, Y, 1, sync_every=5,
                        rule="sum")
    _assert_same_fit(model, local)


# --------------------------------------------------------- on the cluster


def _input_forms(X, Y, client):
    blocks = [(X[:400], Y[:400]), (X[400:500], Y[400:500]), (X[500:], Y[500:])]
    return {
        "one matrix": (X, Y),
        "lists of blocks": ([b[0] for b in blocks], [b[1] for b in blocks]),
        "futures": (client.scatter([b[0] for b in blocks], hash=False),
                    client.scatter([b[1] for b in blocks], hash=False)),
        "delayed": ([dask.delayed(b[0]) for b in blocks], [dask.delayed(b[1]) for b in blocks]),
        "dask arrays": (da.from_array(X, chunks=(300, 700), asarray=False),
                        da.from_array(Y, chunks=(300, -1), asarray=False)),
    }


def test_one_worker_equals_local_fit_for_every_input_form(client, data):
    X, Y, _, _ = data
    local = SlideClassifier(max_iter=1, **SMALL).fit(X, Y)
    for name, (X_in, Y_in) in _input_forms(X, Y, client).items():
        model = fit_distributed(SlideClassifier(max_iter=1, **SMALL), X_in, Y_in,
                                client=client, n_replicas=1, sync_every=7)
        _assert_same_fit(model, local)
        assert isinstance(model, SlideClassifier), name


@pytest.mark.parametrize("rule", ["sqrt_sum", "average"])
def test_two_workers_equal_the_in_process_replicas(client, data, rule):
    X, Y, _, _ = data
    rounds = []
    cluster = fit_distributed(SlideClassifier(max_iter=2, **SMALL), X, Y, client=client,
                              sync_every=4, combine=rule, callback=rounds.append)
    oracle = _in_process(SlideClassifier(max_iter=2, **SMALL), X, Y, 2, sync_every=4, rule=rule)
    _assert_same_fit(cluster, oracle)
    rounds = [r for r in rounds if r["kind"] == "round"]
    assert all(len(r["rows"]) == 2 and r["steps"] <= 4 for r in rounds)
    assert not any(r["lost_replicas"] for r in rounds)
    assert all(r["bytes_up"] > 0 and r["bytes_down"] > 0 for r in rounds)
    again = fit_distributed(SlideClassifier(max_iter=2, **SMALL), X, Y, client=client,
                            sync_every=4, combine=rule)
    _assert_same_fit(again, cluster)  # deterministic


def test_two_workers_learn_a_planted_problem_as_well_as_local_fit(client):
    X, Y = make_extreme_multilabel(6000, 3000, 300, random_state=1)
    X_train, Y_train, X_test, Y_test = X[:4000], Y[:4000], X[4000:], Y[4000:]
    # Long enough for both to be near their plateau (the replicas take fewer
    # steps per epoch).
    # The networks are compared: fit_distributed trains no re-ranker.
    params = {**SMALL, "max_iter": 15, "learning_rate": 0.005, "reranker": None}
    local = SlideClassifier(**params).fit(X_train, Y_train)
    model = fit_distributed(SlideClassifier(**params), X_train, Y_train, client=client,
                            sync_every=8)
    local_p1, model_p1 = _p_at_1(local, X_test, Y_test), _p_at_1(model, X_test, Y_test)
    assert local_p1 > 0.5  # the problem is learnt at all
    assert abs(model_p1 - local_p1) <= 0.02, (model_p1, local_p1)
    # An ordinary fitted estimator: pickles, predicts, trains on.
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.predict_topk(X_test, k=3)[0],
                                  model.predict_topk(X_test, k=3)[0])
    assert loaded.predict(X_test[:5]).shape == (5, Y.shape[1])
    before = loaded.n_iter_
    loaded.partial_fit(X_train[:500], Y_train[:500])
    assert loaded.n_iter_ == before + 1


def test_warm_start_continues_the_fitted_model(client, data):
    X, Y, X_test, Y_test = data
    first = SlideClassifier(max_iter=1, warm_start=True, **SMALL).fit(X, Y)
    model = fit_distributed(clone(first), X, Y, client=client, n_replicas=1)  # from scratch
    _assert_same_fit(model, first)
    continued = fit_distributed(model, X, Y, client=client, n_replicas=1)
    local = first.fit(X, Y)  # fit's second epoch, from the same start
    assert continued is model and continued.n_iter_ == 2
    # fit refreshes the tables at the end of each call, as fit_distributed does.
    _assert_same_fit(continued, local)


def test_multiclass_targets_and_validation_scores(client):
    X, Y = make_extreme_multilabel(900, 1500, 20, random_state=2)
    y = np.array(["c%02d" % i for i in np.asarray(Y.argmax(axis=1)).ravel()])
    params = {**SMALL, "max_iter": 2, "hash_family": None}
    local = SlideClassifier(**params).fit(X, y)
    model = fit_distributed(SlideClassifier(**params), X, y, client=client, n_replicas=1,
                            validation=(X[:100], y[:100]))
    np.testing.assert_array_equal(model.classes_, local.classes_)
    np.testing.assert_array_equal(model.predict(X), local.predict(X))
    assert len(model.validation_scores_) == 2
    assert model.validation_scores_[-1] == pytest.approx(local.score(X[:100], y[:100]))


# ------------------------------------------------------------- bad input


class _NoWork:
    """Records every submit / scatter / compute of a client."""

    def __init__(self, client, monkeypatch):
        self.calls = []
        for name in ("submit", "scatter", "compute", "map"):
            real = getattr(client, name)
            monkeypatch.setattr(client, name, self._recording(name, real))

    def _recording(self, name, real):
        def call(*args, **kwargs):
            self.calls.append(name)
            return real(*args, **kwargs)
        return call


def test_bad_input_raises_before_any_work_is_sent(client, data, monkeypatch):
    X, Y, _, _ = data
    model = SlideClassifier(max_iter=1, **SMALL)
    work = _NoWork(client, monkeypatch)
    cases = [
        ((X, Y[:100]), "rows"),
        (([X[:10], X[10:20]], [Y[:10]]), "blocks"),
        (([X[:10], X[10:20, :50]], [Y[:10], Y[10:20]]), "features"),
        (([X[:10], X[10:20]], [Y[:10], Y[10:20, :50]]), "label columns"),
        (([X[:10], X[10:20]], [Y[:10], Y[10:19]]), "block 1"),
        ((da.from_array(X, chunks=(100, -1), asarray=False),
          da.from_array(Y[:500], chunks=(100, -1), asarray=False)), "rows"),
    ]
    for (X_in, Y_in), message in cases:
        with pytest.raises(ValueError, match=message):
            fit_distributed(model, X_in, Y_in, client=client)
    y = np.arange(X.shape[0]) % 5
    with pytest.raises(ValueError, match=r"labels not in classes: \[4\]"):
        fit_distributed(model, X, y, client=client, classes=[0, 1, 2, 3])
    for kwargs, error in (({"sync_every": 0}, ValueError), ({"combine": "mean"}, ValueError),
                          ({"n_replicas": -1}, ValueError), ({"callback": 3}, TypeError)):
        with pytest.raises(error):
            fit_distributed(model, X, Y, client=client, **kwargs)
    with pytest.raises(ValueError, match="plateau"):
        fit_distributed(clone(model).set_params(learning_rate_schedule="plateau"), X, Y,
                        client=client)
    assert work.calls == []
    assert not hasattr(model, "classes_")


def test_bad_lazy_blocks_are_found_before_training(client, data):
    X, Y, _, _ = data
    rounds = []
    y = np.arange(X.shape[0]) % 5
    lazy = [dask.delayed(y[:600]), dask.delayed(y[600:])]
    with pytest.raises(ValueError, match=r"labels not in classes: \[4\]"):
        fit_distributed(SlideClassifier(**SMALL), [X[:600], X[600:]], lazy, client=client,
                        classes=[0, 1, 2, 3], callback=rounds.append)
    with pytest.raises(ValueError, match="block 1.*features"):
        fit_distributed(SlideClassifier(**SMALL), [X[:600], dask.delayed(X[600:, :7])],
                        [Y[:600], Y[600:]], client=client, callback=rounds.append)
    assert rounds == []  # no round started


# ----------------------------------------------------------------- faults


def _die_at_call(n_calls, how, pid=None):
    """On a worker: its engine's train_epoch kills the worker process (``how`` =
    "worker") or the process ``pid`` ("pid") at its n-th call."""
    # _engine: every round of a replica calls train_epoch: a fault injected there hits mid-round.
    from sklearn_slide import _engine

    real = _engine.train_epoch
    calls = [0]

    def dying(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n_calls:
            if how == "worker":
                os._exit(1)
            os.kill(pid, signal.SIGKILL)
        return real(*args, **kwargs)

    _engine.train_epoch = dying


def test_a_worker_killed_mid_round_loses_only_that_round(data):
    X, Y, X_test, Y_test = data
    params = {**SMALL, "max_iter": 3}
    # Bit-identical to the fit on a healthy 2-worker cluster (tested above).
    reference = _in_process(SlideClassifier(**params), X, Y, 2, sync_every=4,
                            rule=DEFAULT_COMBINE)
    with _cluster() as cluster, distributed.Client(cluster) as client:
        victim = sorted(client.nthreads())[1]
        client.run(_die_at_call, 3, "worker", workers=[victim])
        rounds = []
        model = fit_distributed(SlideClassifier(**params), X, Y, client=client, sync_every=4,
                                callback=rounds.append)
    rounds = [r for r in rounds if r["kind"] == "round"]
    lost = [r for r in rounds if r["lost_replicas"]]
    assert len(lost) == 1 and lost[0]["round"] == 2 and lost[0]["lost_replicas"] == [1]
    # Every other round had both replicas: the lost one was re-created at once.
    assert all(len([n for n in r["rows"] if n]) == len(r["replica_seconds"])
               for r in rounds if r is not lost[0])
    assert model.n_iter_ == 3
    # A valid model, close to the one trained without the fault.
    assert abs(_p_at_1(model, X_test, Y_test) - _p_at_1(reference, X_test, Y_test)) < 0.05
    assert np.all(np.isfinite(model._network["params"]["output_weights"]))
    pickle.loads(pickle.dumps(model)).partial_fit(X[:100], Y[:100])


def _wait_for(path, seconds=120):
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear")
        time.sleep(0.2)


def test_a_dead_scheduler_raises_and_leaves_the_model_unchanged(data, tmp_path):
    X, Y, _, _ = data
    scheduler_file = str(tmp_path / "scheduler.json")
    # cwd: the source tree has no compiled core.
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", "0", "--no-dashboard", "--scheduler-file", scheduler_file],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    try:
        _wait_for(scheduler_file)
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
             scheduler_file, "--nthreads", "1", "--no-dashboard", "--no-nanny"],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        model = SlideClassifier(max_iter=1, warm_start=True, **SMALL).fit(X, Y)
        before = pickle.dumps(model)
        with dask.config.set({"distributed.comm.timeouts.connect": "5s"}):
            client = distributed.Client(scheduler_file=scheduler_file)
            try:
                client.wait_for_workers(1, timeout=120)
                client.run(_die_at_call, 3, "pid", scheduler.pid)
                with pytest.raises(RuntimeError, match="lost the Dask scheduler.*unchanged"):
                    fit_distributed(model, X, Y, client=client, sync_every=4)
            finally:
                client.close(timeout=5)
        assert pickle.dumps(model) == before
    finally:
        for process in (scheduler, worker):
            if process is not None:
                process.kill()
                process.wait()
