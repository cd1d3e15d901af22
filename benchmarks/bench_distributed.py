"""Data-parallel training (``sklearn_slide.dask.fit_distributed``, issue 15).

Parts (each run in its own process; results in benchmarks/results/distributed/):

- ``local``: ``SlideClassifier.fit`` in one process with 1 and 2 threads
  (warm start, one epoch at a time), exact P@1 on the test rows after each epoch.
- ``dask``: ``fit_distributed`` on a ``LocalCluster`` of worker processes (1
  thread each), the test rows as its ``validation``; every round's bytes and
  seconds from its ``callback``; CPU seconds of the client and the workers.
- ``simulate``: the same algorithm with K replicas in one process, one after
  another (``_data_parallel.InProcessPool``: bit-identical to the cluster for
  the same K and blocks): learning per epoch by combination rule, ``sync_every``
  and K, and the bytes each round would send.

Every run stops after the epoch that reaches ``--target`` (P@1) or after
``--epochs``. Training seconds exclude the P@1 measurements.

    python benchmarks/bench_distributed.py --parts simulate --rules average sum touched_average
    python benchmarks/bench_distributed.py --parts simulate --rules sum --sync-every 10 50 200 0
    python benchmarks/bench_distributed.py --parts simulate --rules sqrt_sum sum average \\
        --sync-every 0 --replicas 2 4
    python benchmarks/bench_distributed.py --parts local dask --sync-every 0
    python benchmarks/bench_distributed.py --report-only

``--sync-every 0`` means None (once per epoch, and at the table rehashes).
Results: ``benchmarks/results/distributed.json`` (merged), ``distributed.md``.
"""

import argparse
import math
import os
import time
from pathlib import Path

import _common as C

NAME = "distributed"


def _data(spec):
    X, Y, X_test, Y_test = C.load_dataset(spec["dataset"])
    rows = spec.get("test_rows") or X_test.shape[0]
    return X, Y, X_test[:rows], Y_test[:rows]


def _p_at_1(model, X_test, Y_test):
    from sklearn_slide.metrics import precision_at_k

    labels, _ = model.predict_topk(X_test, k=1)
    return precision_at_k(Y_test, labels, k=1)


class _Reached(Exception):
    """Raised by a callback to end a run once the target P@1 is reached."""


def _model_params(spec):
    return {"random_state": 0, "n_threads": spec.get("threads", 1), **spec.get("params", {})}


# ------------------------------------------------------------------- workers

def work_local(spec):
    """One process: epochs of a warm-started fit until the target P@1."""
    from sklearn_slide import SlideClassifier

    X, Y, X_test, Y_test = _data(spec)
    clf = SlideClassifier(max_iter=1, warm_start=True, **_model_params(spec))
    epochs = []
    for _ in range(spec["epochs"]):
        with C.Timer() as t:
            clf.fit(X, Y)
        epochs.append({"wall_s": t.wall, "cpu_s": t.cpu, "P@1": _p_at_1(clf, X_test, Y_test)})
        print(f"epoch {len(epochs)}: {t.wall:.1f} s, {t.cpu:.1f} CPU s, "
              f"P@1 {epochs[-1]['P@1']:.4f}", flush=True)
        C.save_partial({"epochs": epochs})
        if epochs[-1]["P@1"] >= spec["target"]:
            break
    return {"epochs": epochs, "rounds": []}


class _Recorder:
    """The callback of a data-parallel run: rounds, epochs, CPU seconds, early stop."""

    def __init__(self, target, cpu_seconds):
        self.target, self.cpu_seconds = target, cpu_seconds
        self.rounds, self.epochs = [], []
        self._cpu_at_epoch_start = cpu_seconds()
        self._cpu_before_validation = None

    def __call__(self, info):
        if info["kind"] == "round":
            self.rounds.append({k: v for k, v in info.items() if k != "kind"})
            self._cpu_before_validation = self.cpu_seconds()
            return
        cpu_now = self.cpu_seconds()
        self.epochs.append({
            "wall_s": info["seconds"],
            "cpu_s": self._cpu_before_validation - self._cpu_at_epoch_start,
            "P@1": info["validation_p_at_1"], "loss": info["loss"], "rounds": info["rounds"],
            "lost": info["lost_replica_rounds"],
        })
        self._cpu_at_epoch_start = cpu_now
        e = self.epochs[-1]
        print(f"epoch {len(self.epochs)}: {e['wall_s']:.1f} s, {e['cpu_s']:.1f} CPU s, "
              f"{e['rounds']} rounds, P@1 {e['P@1']:.4f}", flush=True)
        C.save_partial({"epochs": self.epochs, "rounds": self.rounds})
        if info["validation_p_at_1"] >= self.target:
            raise _Reached()


def work_simulate(spec):
    """K replicas in this process (the in-process pool)."""
    import numpy as np

    from sklearn_slide import SlideClassifier
    from sklearn_slide import _data_parallel as data_parallel
    from sklearn_slide._replica import describe_block

    X, Y, X_test, Y_test = _data(spec)
    k = spec["replicas"]
    bounds = np.linspace(0, X.shape[0], k + 1).astype(int)
    blocks = [[(X[a:b], Y[a:b], f"block {i}")]
              for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))]
    descriptions = [describe_block(*block[0]) for block in blocks]
    model = SlideClassifier(max_iter=spec["epochs"], **_model_params(spec))
    recorder = _Recorder(spec["target"], C.cpu_seconds)
    try:
        data_parallel.fit(
            model, descriptions,
            lambda network, kind, classes: data_parallel.InProcessPool(
                network, blocks, kind, classes, model.n_threads),
            sync_every=spec["sync_every"], rule=spec["rule"], callback=recorder,
            validation=(X_test, Y_test))
    except _Reached:
        pass
    return {"epochs": recorder.epochs, "rounds": recorder.rounds}


def _process_cpu(pids):
    import psutil

    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.Error:  # a worker killed meanwhile
            pass
    return total


def work_dask(spec):
    """fit_distributed on a LocalCluster of ``workers`` processes x 1 thread."""
    from distributed import Client, LocalCluster

    from sklearn_slide import SlideClassifier
    from sklearn_slide.dask import fit_distributed

    X, Y, X_test, Y_test = _data(spec)
    with LocalCluster(n_workers=spec["workers"], threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster) as client:
        pids = [os.getpid(), *client.run(os.getpid).values()]
        recorder = _Recorder(spec["target"], lambda: _process_cpu(pids))
        model = SlideClassifier(max_iter=spec["epochs"], **_model_params(spec))
        start = time.perf_counter()
        try:
            fit_distributed(model, X, Y, client=client, sync_every=spec["sync_every"],
                            combine=spec["rule"], validation=(X_test, Y_test),
                            callback=recorder)
        except _Reached:
            pass
        total = time.perf_counter() - start
    return {"epochs": recorder.epochs, "rounds": recorder.rounds, "wall_total_fit_s": total}


HANDLERS = {"local": work_local, "simulate": work_simulate, "dask": work_dask}


# ---------------------------------------------------------------------- main

def _sync(value):
    return None if value == 0 else value


def plan(args):
    common = {"dataset": args.dataset, "epochs": args.epochs, "target": args.target,
              "test_rows": args.test_rows}
    runs = []
    if "local" in args.parts:
        for threads in (1, 2):
            runs.append((f"local/1x{threads}", {"kind": "local", "threads": threads, **common},
                         threads))
    for part, counts in (("simulate", args.replicas), ("dask", args.workers)):
        if part not in args.parts:
            continue
        for k in counts:
            for rule in args.rules:
                for every in args.sync_every:
                    key = f"{part}/{k}x1/{rule}/sync{every or 'epoch'}"
                    spec = {"kind": part, "sync_every": _sync(every), "rule": rule, **common,
                            ("replicas" if part == "simulate" else "workers"): k}
                    runs.append((key, spec, 1))
    return runs


def _first_reaching(epochs, target):
    """(epoch, cumulative wall, cumulative CPU) of the first epoch at or above target."""
    wall = cpu = 0.0
    for i, e in enumerate(epochs, 1):
        wall += e["wall_s"]
        cpu += e["cpu_s"]
        if e["P@1"] is not None and e["P@1"] >= target:
            return i, wall, cpu
    return None, wall, cpu


def _round_bytes(run):
    rounds = [r for r in run.get("rounds", []) if r["rows"]]
    if not rounds:
        return None, None
    up = sum(r["bytes_up"] for r in rounds) / len(rounds)
    down = sum(r["bytes_down"] for r in rounds) / len(rounds)
    return up, down


def report(results, target):
    import statistics

    lines = [f"### Time to P@1 {target:.2f} (gen100k, exact P@1 on the test rows after each "
             "epoch)\n"]
    rows = []
    for key, run in sorted(results.items()):
        if "error" in run or not run.get("epochs"):
            continue
        epoch, wall, cpu = _first_reaching(run["epochs"], target)
        up, down = _round_bytes(run)
        rounds = run.get("rounds", [])
        rows.append({
            "run": key, "epoch": epoch or "-", "wall": wall if epoch else None,
            "cpu": cpu if epoch else None,
            "p1": " ".join(f"{e['P@1']:.3f}" for e in run["epochs"]),
            "rounds": statistics.mean(e.get("rounds", 0) for e in run["epochs"])
            if rounds else None,
            "up": None if up is None else up / 1e6, "down": None if down is None else down / 1e6,
            "load": run["machine"]["load_avg"][0], "commit": run["machine"]["commit"],
            "date": run["machine"]["date"],
        })
    lines.append(C.markdown_table(rows, [
        ("run", "run", ""), ("epochs to target", "epoch", ""), ("wall s", "wall", ".1f"),
        ("CPU s", "cpu", ".1f"), ("P@1 by epoch", "p1", ""), ("rounds / epoch", "rounds", ".1f"),
        ("MB up / round", "up", ",.0f"), ("MB down / round", "down", ",.0f"),
        ("load", "load", ".1f"), ("commit", "commit", ""), ("date", "date", "")]))
    costs = [_round_costs(key, run) for key, run in sorted(results.items())
             if key.startswith("dask/") and "error" not in run and run.get("rounds")]
    if costs:
        lines.append("\n### Per-round costs of the cluster runs (medians over rounds)\n")
        lines.append(C.markdown_table(costs, [
            ("run", "run", ""), ("rounds", "n", "d"), ("steps / round", "steps", ".0f"),
            ("round s", "round_s", ".2f"), ("slowest replica s", "replica_s", ".2f"),
            ("replica CPU s", "replica_cpu_s", ".2f"), ("sync s", "sync_s", ".2f"),
            ("merge s", "merge_s", ".2f"), ("MB up", "up", ",.0f"), ("MB down", "down", ",.0f"),
            ("sync s per GB", "s_per_gb", ".2f")]))
    local = results.get("local/1x1")
    cluster = [run for key, run in sorted(results.items())
               if key.startswith("dask/") and "error" not in run and run.get("rounds")]
    if local and cluster:
        lines.append(_extrapolation(local, cluster[0]))
    return "\n".join(lines) + "\n"


# The client's link to the workers assumed for the extrapolation (10 Gb/s Ethernet).
LINK_GB_PER_S = 1.25


def _cost_model(local, run):
    """Per-epoch CPU-second costs measured by a local 1x1 run and a cluster run:
    local CPU s per row; replica CPU s per row and per round (least squares over
    the rounds); the client's CPU s per GB moved (epoch CPU of all processes
    minus the replicas'); GB per replica per round (up + down); rounds per epoch."""
    import numpy as np

    epochs = local["epochs"]
    rounds = [r for r in run["rounds"] if r["rows"] and not r["lost_replicas"]]
    rows = np.array([n for r in rounds for n in r["rows"]], dtype=float)
    cpu = np.array([c for r in rounds for c in r["replica_cpu_seconds"]])
    per_row, per_round = np.linalg.lstsq(np.c_[rows, np.ones_like(rows)], cpu, rcond=None)[0]
    epoch_rows = sum(sum(r["rows"]) for r in run["rounds"]) / len(run["epochs"])
    replica_cpu = sum(sum(r["replica_cpu_seconds"]) for r in run["rounds"])
    gb = sum(r["bytes_up"] + r["bytes_down"] for r in run["rounds"]) / 1e9
    client_cpu = sum(e["cpu_s"] for e in run["epochs"]) - replica_cpu
    return {
        "local_per_row": sum(e["cpu_s"] for e in epochs) / (len(epochs) * epoch_rows),
        "replica_per_row": per_row, "replica_per_round": per_round,
        "client_s_per_gb": client_cpu / gb,
        "gb_per_replica_round": gb / sum(len(r["rows"]) for r in run["rounds"]),
        "rounds_per_epoch": len(run["rounds"]) / len(run["epochs"]),
        "epoch_rows": epoch_rows,
    }


def _epoch_seconds(m, n_rows, k):
    """Modelled seconds of one epoch over ``n_rows`` rows on ``k`` machines (1 thread each)."""
    if k == 1:
        return m["local_per_row"] * n_rows
    rounds = m["rounds_per_epoch"]
    train = m["replica_per_row"] * n_rows / k + rounds * m["replica_per_round"]
    sync = rounds * k * m["gb_per_replica_round"] * (m["client_s_per_gb"] + 1 / LINK_GB_PER_S)
    return train + sync, train, sync


def _extrapolation(local, run):
    m = _cost_model(local, run)
    lines = [
        "\n### Per-round cost model and extrapolation\n",
        f"Measured (CPU seconds): local fit {m['local_per_row'] * 1e3:.3f} ms per row; a "
        f"replica {m['replica_per_row'] * 1e3:.3f} ms per row + {m['replica_per_round']:.2f} s "
        f"per round (applying the update, collecting its changes); the client "
        f"{m['client_s_per_gb']:.2f} s per GB moved (serialising, merging; all processes' CPU "
        f"minus the replicas'); {m['gb_per_replica_round']:.2f} GB per replica per round "
        f"(up + down); {m['rounds_per_epoch']:.1f} rounds per epoch.\n",
        "Model of one epoch on K machines x 1 thread, the client's link at "
        f"{LINK_GB_PER_S * 8:.0f} Gb/s: `replica_per_row * rows / K + rounds * "
        "replica_per_round` (training, in parallel) `+ rounds * K * GB_per_replica_round * "
        "(client_s_per_GB + 1 / link)` (synchronisation, through the client). Same model "
        "size as measured (the message is ~the whole model once a round touches every row); "
        "the learning per epoch is not modelled (measured: K = 2 on the cluster, K = 4 "
        "simulated).\n",
    ]
    rows = []
    for n_rows in (m["epoch_rows"], 1.7e6, 1e8):
        one = _epoch_seconds(m, n_rows, 1)
        best = math.sqrt(m["replica_per_row"] * n_rows / (
            m["rounds_per_epoch"] * m["gb_per_replica_round"]
            * (m["client_s_per_gb"] + 1 / LINK_GB_PER_S)))
        row = {"rows": f"{n_rows:,.0f}", "one": one, "best": best}
        for k in (2, 8, 32):
            total, train, sync = _epoch_seconds(m, n_rows, k)
            row[f"k{k}"] = f"{total:,.0f} s ({one / total:.1f}x; sync {sync / total:.0%})"
        rows.append(row)
    lines.append(C.markdown_table(rows, [
        ("rows per epoch", "rows", ""), ("1 machine s", "one", ",.0f"),
        ("2 machines", "k2", ""), ("8 machines", "k8", ""), ("32 machines", "k32", ""),
        ("K where sync time = training time", "best", ".1f")]))
    return "\n".join(lines)


def _round_costs(key, run):
    """Median per-round figures; sync = the round's seconds beyond its slowest
    replica's (transfers, merge and update: the round's seconds include them)."""
    import statistics

    rounds = [r for r in run["rounds"] if r["rows"] and not r["lost_replicas"]]
    med = statistics.median
    sync = [r["round_seconds"] - max(r["replica_seconds"]) for r in rounds]
    total_bytes = [r["bytes_up"] + r["bytes_down"] for r in rounds]
    return {"run": key, "n": len(rounds), "steps": med(r["steps"] for r in rounds),
            "round_s": med(r["round_seconds"] for r in rounds),
            "replica_s": med(max(r["replica_seconds"]) for r in rounds),
            "replica_cpu_s": med(max(r["replica_cpu_seconds"]) for r in rounds),
            "sync_s": med(sync), "merge_s": med(r["merge_seconds"] for r in rounds),
            "up": med(r["bytes_up"] for r in rounds) / 1e6,
            "down": med(r["bytes_down"] for r in rounds) / 1e6,
            "s_per_gb": sum(sync) / max(sum(total_bytes) / 1e9, 1e-9)}


def main():
    parser = C.add_common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--parts", nargs="+", default=["local", "dask"],
                        choices=["local", "dask", "simulate"])
    parser.add_argument("--dataset", default="gen100k")
    parser.add_argument("--epochs", type=int, default=10, help="at most this many epochs")
    parser.add_argument("--target", type=float, default=0.70, help="stop at this test P@1")
    parser.add_argument("--test-rows", type=int, default=None,
                        help="measure P@1 on the first N test rows (default: all)")
    parser.add_argument("--rules", nargs="+", default=["sqrt_sum"])
    parser.add_argument("--sync-every", nargs="+", type=int, default=[50])
    parser.add_argument("--replicas", nargs="+", type=int, default=[2],
                        help="replicas of the simulate part")
    parser.add_argument("--workers", nargs="+", type=int, default=[2],
                        help="worker processes of the dask part")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    out = C.out_dir(args)
    results = C.load_runs(out, NAME) if not args.quick else {}
    machine = C.machine_info()
    for key, spec, threads in ([] if args.report_only else plan(args)):
        print(f"== {key} (load {os.getloadavg()[0]:.1f})", flush=True)
        result = C.run_worker(Path(__file__), spec, threads=threads)
        if "error" in result:
            print(f"   FAILED: {result['error']}", flush=True)
        result.update(machine=C.machine_info(), spec=spec)
        results = C.save_run(out, NAME, key, result)
    text = report(results, args.target)
    C.write_report(out, NAME, "bench_distributed.py", machine, args.report_only, text)


if __name__ == "__main__":
    C.worker_entry(HANDLERS)
    main()
