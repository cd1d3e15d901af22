"""SlideClassifier vs a dense PyTorch network of the same shape: time to accuracy.

Both train ``sparse input -> 128 ReLU -> softmax over all labels`` with Adam,
batch 128, on the same threads; SlideClassifier samples the output layer with
DWTA hash tables, PyTorch computes the full softmax. After every epoch P@1/P@5
on the full test set are computed outside the timed region. Each system runs in
its own process (peak RSS is per system).

    python benchmarks/bench_vs_dense.py                      # everything (~1.2 h on 2 quiet cores)
    python benchmarks/bench_vs_dense.py --datasets gen100k   # one dataset
    python benchmarks/bench_vs_dense.py --systems slide      # re-run SlideClassifier only,
                                                             # keep the stored PyTorch runs
    python benchmarks/bench_vs_dense.py --quick              # seconds (used by the tests)
    python benchmarks/bench_vs_dense.py --datasets gen100k --systems slide \
        --slide-params '{"adam_updates": "dense"}'           # stored as slide-adam_updates=dense

Results: ``benchmarks/results/vs_dense.json`` (every run, merged across
invocations), ``vs_dense.md`` (tables) and ``vs_dense_<dataset>.png``. A
SlideClassifier run with ``--slide-params`` is stored under a name that lists
them, next to the default run ("slide"), not over it.
"""

import argparse
import json
from pathlib import Path

import _common as C
import numpy as np

EPOCHS = {"gen100k": 10, "gen300k": 8, "bibtex": 30, "delicious": 30, "seqgo-direct": 30,
          "quick": 2}


# ------------------------------------------------------------------- workers

def _epoch_line(system, epoch, train_s, n_seen, p1, p5, eval_s):
    print(f"{system:<14} epoch {epoch:2d}  train {train_s:8.1f} s  "
          f"{n_seen / train_s:8,.0f} samples/s  P@1 {p1:.3f}  P@5 {p5:.3f}  "
          f"(eval {eval_s:.1f} s)", flush=True)


def work_slide(spec):
    from sklearn_slide import SlideClassifier
    from sklearn_slide.metrics import precision_at_k

    X_train, Y_train, X_test, Y_test = C.load_dataset(spec["dataset"])
    rss_data = C.peak_rss_mb()
    params = {"hash_family": "dwta", "random_state": spec["seed"], **spec.get("params", {})}
    clf = SlideClassifier(max_iter=1, warm_start=True, n_threads=spec["threads"], **params)
    curve, train_s, cpu_s = [], 0.0, 0.0
    for epoch in range(1, spec["epochs"] + 1):
        with C.Timer() as t:
            clf.fit(X_train, Y_train)
        train_s += t.wall
        cpu_s += t.cpu
        with C.Timer() as e:
            labels, _ = clf.predict_topk(X_test, k=5)
        p1, p5 = precision_at_k(Y_test, labels, 1), precision_at_k(Y_test, labels, 5)
        curve.append({"epoch": epoch, "train_s": train_s, "cpu_s": cpu_s, "P@1": p1, "P@5": p5})
        _epoch_line("SlideClassifier", epoch, train_s, epoch * X_train.shape[0], p1, p5, e.wall)
        C.save_partial({"curve": curve, "rss_after_data_mb": rss_data,
                        "n_train": X_train.shape[0], "params": params})
        if spec.get("max_train_s") and train_s > spec["max_train_s"]:
            break
    return {"curve": curve, "rss_after_data_mb": rss_data, "n_train": X_train.shape[0],
            "params": params}


def work_torch(spec):
    import _torch_dense as D
    import torch

    from sklearn_slide.metrics import precision_at_k

    X_train, Y_train, X_test, Y_test = C.load_dataset(spec["dataset"])
    rss_data = C.peak_rss_mb()
    model, opt = D.make_model(X_train.shape[1], Y_train.shape[1], lr=spec["lr"],
                              seed=spec["seed"], threads=spec["threads"])
    rng = np.random.RandomState(spec["seed"])
    curve, train_s, cpu_s = [], 0.0, 0.0
    for epoch in range(1, spec["epochs"] + 1):
        with C.Timer() as t:
            D.train_epoch(model, opt, X_train, Y_train, batch_size=128, rng=rng)
        train_s += t.wall
        cpu_s += t.cpu
        with C.Timer() as e:
            labels = D.predict_topk(model, X_test, k=5)
        p1, p5 = precision_at_k(Y_test, labels, 1), precision_at_k(Y_test, labels, 5)
        curve.append({"epoch": epoch, "train_s": train_s, "cpu_s": cpu_s, "P@1": p1, "P@5": p5})
        _epoch_line(f"torch lr {spec['lr']:g}", epoch, train_s, epoch * X_train.shape[0], p1, p5,
                    e.wall)
        C.save_partial({"curve": curve, "rss_after_data_mb": rss_data, "n_train": X_train.shape[0],
                        "params": {"lr": spec["lr"], "batch_size": 128}})
        if spec.get("max_train_s") and train_s > spec["max_train_s"]:
            break
    return {"curve": curve, "rss_after_data_mb": rss_data, "n_train": X_train.shape[0],
            "torch": torch.__version__, "params": {"lr": spec["lr"], "batch_size": 128}}


def slide_run_name(params):
    """'slide' with the default parameters, else e.g. 'slide-adam_updates=dense'."""
    parts = [key + "=" + json.dumps(params[key]).strip('"') for key in sorted(params)]
    return "-".join(["slide", *parts]).replace("/", "_").replace(" ", "")


# ------------------------------------------------------------------ analysis

def time_to(curve, target):
    """Cumulative train seconds at the first epoch with P@1 >= target (None if never)."""
    for point in curve:
        if point["P@1"] >= target - 1e-12:
            return point["train_s"], point["epoch"]
    return None, None


def compare(dense, slide):
    """Time-to-accuracy ratios of SlideClassifier against one dense run."""
    best = max(dense["curve"], key=lambda p: p["P@1"])
    row = {"dense_best": best["P@1"], "dense_epoch": best["epoch"], "dense_s": best["train_s"]}
    cpu_at = lambda run, epoch: run["curve"][epoch - 1]["cpu_s"]
    for name, target in (("", best["P@1"]), ("_95", 0.95 * best["P@1"])):
        t_dense, e_dense = time_to(dense["curve"], target)
        t_slide, epoch = time_to(slide["curve"], target)
        row["slide_s" + name] = t_slide
        row["slide_epoch" + name] = epoch
        row["ratio" + name] = t_slide / t_dense if t_slide is not None else None
        row["ratio_cpu" + name] = (cpu_at(slide, epoch) / cpu_at(dense, e_dense)
                                   if t_slide is not None else None)
    row["slide_best"] = max(p["P@1"] for p in slide["curve"])
    # The other way round: both systems' time to SlideClassifier's best P@1.
    t_slide, e_slide = time_to(slide["curve"], row["slide_best"])
    t_dense, e_dense = time_to(dense["curve"], row["slide_best"])
    row["ratio_at_slide_best"] = t_slide / t_dense if t_dense is not None else None
    row["ratio_cpu_at_slide_best"] = (cpu_at(slide, e_slide) / cpu_at(dense, e_dense)
                                      if t_dense is not None else None)
    return row


def _sec(seconds):
    return f"{seconds:.0f} s" if seconds >= 100 else f"{seconds:.1f} s"


def summary_row(key, run):
    last = run["curve"][-1]
    best = max(run["curve"], key=lambda p: p["P@1"])
    return {"run": key, "epochs": last["epoch"], "s/epoch": last["train_s"] / last["epoch"],
            "samples/s": last["epoch"] * run["n_train"] / last["train_s"],
            "cpu/wall": last["cpu_s"] / last["train_s"],
            "P@1 by epoch": " ".join(f"{p['P@1']:.3f}".lstrip("0") for p in run["curve"]),
            "best P@1": best["P@1"], "best epoch": best["epoch"],
            "peak RSS MB": run["peak_rss_mb"], "data MB": run["rss_after_data_mb"],
            "commit": run["machine"]["commit"], "date": run["machine"]["date"]}


def report(results, datasets, out, plt):
    lines = []
    for dataset in datasets:
        runs = {k.split("/", 1)[1]: v for k, v in results.items()
                if k.startswith(dataset + "/") and "curve" in v}
        if not runs:
            continue
        shape = next(iter(runs.values()))["shape"]
        lines.append(f"### {dataset}: {shape['train']:,} train / {shape['test']:,} test, "
                     f"{shape['features']:,} features, {shape['labels']:,} labels\n")
        rows = [summary_row(k, v) for k, v in sorted(runs.items())]
        lines.append(C.markdown_table(rows, [
            ("system", "run", ""), ("epochs", "epochs", "d"), ("s/epoch", "s/epoch", ".1f"),
            ("samples/s", "samples/s", ",.0f"), ("CPU/wall", "cpu/wall", ".2f"),
            ("best P@1 (epoch)", lambda r: f"{r['best P@1']:.3f} ({r['best epoch']})", ""),
            ("P@1 by epoch", "P@1 by epoch", ""), ("peak RSS MB", "peak RSS MB", ",.0f"),
            ("after data MB", "data MB", ",.0f"), ("commit", "commit", ""), ("date", "date", "")]))
        slide = runs.get("slide")
        ratios = []
        for key, dense in sorted(runs.items()):
            if key.startswith("torch") and slide is not None:
                ratios.append({"dense": key, **compare(dense, slide)})
        if ratios:
            lines.append("\nTime to the dense network's best P@1 (cumulative training wall time, "
                         "epoch granularity; ratio = SlideClassifier / dense, < 1 is faster; the CPU-s "
                         "ratio is less sensitive to other load on the machine):\n")
            lines.append(C.markdown_table(ratios, [
                ("dense run", "dense", ""),
                ("dense best P@1 (epoch, s)",
                 lambda r: f"{r['dense_best']:.3f} ({r['dense_epoch']}, {_sec(r['dense_s'])})", ""),
                ("SlideClassifier to it",
                 lambda r: (f"{_sec(r['slide_s'])} (epoch {r['slide_epoch']})"
                            if r["slide_s"] is not None
                            else f"not reached (best {r['slide_best']:.3f})"), ""),
                ("ratio (wall)", "ratio", ".2f"), ("ratio (CPU s)", "ratio_cpu", ".2f"),
                ("to 95% of it", lambda r: (f"{_sec(r['slide_s_95'])} (epoch {r['slide_epoch_95']})"
                                            if r["slide_s_95"] is not None else "not reached"), ""),
                ("ratio at 95% (wall / CPU s)",
                 lambda r: (f"{r['ratio_95']:.2f} / {r['ratio_cpu_95']:.2f}"
                            if r["ratio_95"] is not None else "-"), ""),
                ("ratio (wall / CPU s) at SlideClassifier's best P@1",
                 lambda r: (f"{r['ratio_at_slide_best']:.2f} / {r['ratio_cpu_at_slide_best']:.2f}"
                            if r["ratio_at_slide_best"] is not None else "dense never reached it"),
                 "")]))
        lines.append("")
        if plt is not None:
            # P@1 against time (the cost) and against epochs (what each update rule learns).
            fig, (by_time, by_epoch) = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
            for label, run in sorted(runs.items()):
                p1 = [0] + [p["P@1"] for p in run["curve"]]
                by_time.plot([0] + [p["train_s"] for p in run["curve"]], p1, marker="o", ms=3,
                             label=label)
                by_epoch.plot([0] + [p["epoch"] for p in run["curve"]], p1, marker="o", ms=3,
                              label=label)
            by_time.set_xlabel("training wall time (s), 2 threads")
            by_time.set_ylabel("test P@1")
            by_epoch.set_xlabel("epoch")
            by_epoch.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
            fig.suptitle(f"{dataset}: {shape['labels']:,} labels")
            for ax in (by_time, by_epoch):
                ax.grid(alpha=0.3)
            by_epoch.legend(fontsize=8)
            png = C.save_figure(fig, out / f"vs_dense_{dataset}.png")
            lines.append(f"![P@1 vs time and epoch on {dataset}]({png.name})\n")
    return "\n".join(lines)


def main():
    parser = C.add_common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--datasets", nargs="+",
                        default=["gen100k", "gen300k", "bibtex", "delicious", "seqgo-direct"])
    parser.add_argument("--systems", nargs="+", default=["slide", "torch"],
                        choices=["slide", "torch"])
    parser.add_argument("--torch-lr", nargs="+", type=float, default=[1e-3],
                        help="Adam learning rates of the dense network (1e-3 is the reference)")
    parser.add_argument("--epochs", type=int, default=None, help="override the per-dataset default")
    parser.add_argument("--slide-params", default="{}",
                        help="JSON dict of extra SlideClassifier parameters")
    parser.add_argument("--max-train-s", type=float, default=None,
                        help="stop a run after the epoch that crosses this training time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report-only", action="store_true",
                        help="only re-draw the tables and plots from the stored runs")
    args = parser.parse_args()
    if args.quick:
        args.datasets = ["quick"]
    out = C.out_dir(args)
    results = C.load_runs(out, "vs_dense") if not args.quick else {}
    machine = C.machine_info()
    print(f"# {machine}")
    for dataset in ([] if args.report_only else args.datasets):
        parts = C.load_dataset(dataset)
        shape = C.dataset_shape(parts)
        del parts
        epochs = args.epochs or EPOCHS.get(dataset, 10)
        specs = []
        if "slide" in args.systems:
            params = json.loads(args.slide_params)
            specs.append((slide_run_name(params), {"kind": "slide", "params": params}))
        if "torch" in args.systems:
            specs += [(f"torch-lr{lr:g}", {"kind": "torch", "lr": lr}) for lr in args.torch_lr]
        for name, spec in specs:
            spec.update(dataset=dataset, epochs=epochs, seed=args.seed, threads=args.threads,
                        max_train_s=args.max_train_s)
            print(f"== {dataset} / {name}", flush=True)
            result = C.run_worker(Path(__file__), spec, threads=args.threads)
            if "error" in result:
                print(f"   FAILED: {result['error']}", flush=True)
                continue
            if "interrupted" in result:
                print(f"   interrupted ({result['interrupted']}): keeping "
                      f"{len(result['curve'])} epochs", flush=True)
            result.update(shape=shape, machine=C.machine_info(), spec=spec)
            result["machine"]["load_avg_start"] = machine["load_avg"]
            results = C.save_run(out, "vs_dense", f"{dataset}/{name}", result)
    text = report(results, list(dict.fromkeys(args.datasets + sorted(
        {k.split("/")[0] for k in results}))), out, C.pyplot())
    C.write_report(out, "vs_dense", "bench_vs_dense.py", machine, args.report_only, text)


if __name__ == "__main__":
    C.worker_entry({"slide": work_slide, "torch": work_torch})
    main()
