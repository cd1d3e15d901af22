"""Top-5 inference: exact and label-cluster SlideClassifier, and PyTorch dense + topk.

For each label count, a SlideClassifier is trained for a few epochs (DWTA,
defaults), then the test rows are ranked with ``inference="exact"`` (every
output neuron scored), ``inference="clusters"`` for several ``n_probes`` (only
the labels of the best-scoring clusters of output neurons; the deprecated
``inference="lsh"`` now runs them too, so it has no row of its own); exact and 16
probes also with ``precision="bfloat16"`` (on the kernel set picked for this
CPU: AMX tiles, AVX512_BF16 or emulated). Reported:
rows/s (median of repeats), speed-up over exact, recall@5 against exact (mean
``|top5 & top5_exact| / 5``), P@1/P@5, and the one-off time to build the
cluster index. The dense PyTorch network of the same shape does forward +
``torch.topk`` on the same rows in another process of the same run (its weights
are untrained: speed does not depend on them).

    python benchmarks/bench_inference.py                    # 100k and 670k labels (~5 min)
    python benchmarks/bench_inference.py --datasets gen100k
    python benchmarks/bench_inference.py --quick

Results: ``benchmarks/results/inference.json`` (merged), ``inference.md``, ``inference.png``.
"""

import argparse
import statistics
from pathlib import Path

import _common as C
import numpy as np


def _median_time(func, repeat):
    times, out = [], None
    for _ in range(repeat):
        with C.Timer() as t:
            out = func()
        times.append(t.wall)
    return statistics.median(times), out


def _modes(probes):
    bf16 = {"precision": "bfloat16"}
    return [("exact", {"inference": "exact", "precision": "float32"}),
            ("exact-bf16", {"inference": "exact", **bf16})] + [
        (f"clusters-{p}", {"inference": "clusters", "n_probes": p, "precision": "float32"})
        for p in probes
    ] + [("clusters-16-bf16", {"inference": "clusters", "n_probes": 16, **bf16})]


def work_slide(spec):
    from sklearn_slide import SlideClassifier
    from sklearn_slide.metrics import precision_at_k

    X, Y, X_test, Y_test = C.load_dataset(spec["dataset"])
    X_test, Y_test = X_test[:spec["rows"]], Y_test[:spec["rows"]]
    clf = SlideClassifier(hash_family="dwta", max_iter=spec["epochs"], random_state=0,
                          n_threads=spec["threads"]).fit(X, Y)
    # _engine: the table names the kernel set it was measured with.
    from sklearn_slide._engine import active_kernels

    out = {"rows": X_test.shape[0], "modes": {}, "kernels": active_kernels()}
    exact = None
    for name, params in _modes(spec["probes"]):
        clf.set_params(**params)
        with C.Timer() as first_call:  # builds the cluster index the first time
            clf.predict_topk(X_test[:64], k=5)
        seconds, (labels, _) = _median_time(lambda: clf.predict_topk(X_test, k=5), spec["repeat"])
        exact = labels if exact is None else exact
        hits = [len(set(a) & set(b)) for a, b in zip(exact.tolist(), labels.tolist())]
        out["modes"][name] = {"seconds": seconds, "rows_per_s": X_test.shape[0] / seconds,
                              "first_call_s": first_call.wall,
                              "recall@5": float(np.mean(hits)) / 5,
                              "P@1": precision_at_k(Y_test, labels, 1),
                              "P@5": precision_at_k(Y_test, labels, 5)}
        m = out["modes"][name]
        print(f"{name:<12} {m['rows_per_s']:10,.0f} rows/s  recall@5 {m['recall@5']:.3f}  "
              f"P@1 {m['P@1']:.3f}  first call {first_call.wall:.2f} s", flush=True)
    return out


def work_torch(spec):
    import _torch_dense as D

    _, Y, X_test, _ = C.load_dataset(spec["dataset"])
    X_test = X_test[:spec["rows"]]
    model, _ = D.make_model(X_test.shape[1], Y.shape[1], threads=spec["threads"])
    D.predict_topk(model, X_test[:64])
    seconds, _ = _median_time(lambda: D.predict_topk(model, X_test, k=5), spec["repeat"])
    print(f"torch  {X_test.shape[0] / seconds:10,.0f} rows/s", flush=True)
    return {"seconds": seconds, "rows_per_s": X_test.shape[0] / seconds, "rows": X_test.shape[0]}


def report(results, out, plt):
    runs = []
    for dataset in {k.split("/")[0] for k in results}:
        slide, torch = results.get(dataset + "/slide"), results.get(dataset + "/torch")
        if slide is None or "modes" not in slide:
            continue
        torch_rate = torch["rows_per_s"] if torch and "error" not in torch else None
        runs.append((slide["shape"]["labels"], slide, torch_rate))
    runs.sort(key=lambda run: run[0])
    rows = []
    for labels, slide, torch_rate in runs:
        exact_rate = slide["modes"]["exact"]["rows_per_s"]
        for name, m in slide["modes"].items():
            rows.append({"labels": labels, "mode": name, "rows/s": m["rows_per_s"],
                         "speed-up": m["rows_per_s"] / exact_rate, "recall@5": m["recall@5"],
                         "P@1": m["P@1"], "P@5": m["P@5"], "first": m["first_call_s"],
                         "vs torch": m["rows_per_s"] / torch_rate if torch_rate else None,
                         "epochs": slide["spec"]["epochs"], "commit": slide["machine"]["commit"],
                         "date": slide["machine"]["date"]})
        if torch_rate:
            rows.append({"labels": labels, "mode": "torch dense + topk", "rows/s": torch_rate,
                         "speed-up": torch_rate / exact_rate, "vs torch": 1.0})
    text = C.markdown_table(rows, [
        ("labels", "labels", ",d"), ("inference", "mode", ""), ("rows/s", "rows/s", ",.0f"),
        ("/ exact", "speed-up", ".1f"), ("recall@5 vs exact", "recall@5", ".3f"),
        ("P@1", "P@1", ".3f"), ("P@5", "P@5", ".3f"), ("/ torch", "vs torch", ".2f"),
        ("first call s", "first", ".2f"), ("train epochs", "epochs", "d"),
        ("commit", "commit", ""), ("date", "date", "")])
    if plt is not None and rows:
        fig, ax = plt.subplots(figsize=(5, 3.4))
        for mode in dict.fromkeys(r["mode"] for r in rows):
            pts = [(r["labels"], r["rows/s"]) for r in rows if r["mode"] == mode]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=mode)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("labels")
        ax.set_ylabel("top-5 rows/s (2 threads)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
        png = C.save_figure(fig, out / "inference.png")
        text += f"\n\n![rows/s vs labels]({png.name})\n"
    return text


def main():
    parser = C.add_common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--datasets", nargs="+", default=["gen100k", "gen670k"])
    parser.add_argument("--systems", nargs="+", default=["slide", "torch"],
                        choices=["slide", "torch"])
    parser.add_argument("--epochs", type=int, default=2, help="training epochs before timing")
    parser.add_argument("--rows", type=int, default=2000, help="test rows ranked")
    parser.add_argument("--repeat", type=int, default=3, help="timed repeats (median)")
    parser.add_argument("--probes", type=int, nargs="+", default=[4, 8, 16, 32, 64],
                        help="n_probes values of the label-cluster inference")
    parser.add_argument("--report-only", action="store_true",
                        help="only re-draw the tables and plots from the stored runs")
    args = parser.parse_args()
    if args.quick:
        args.datasets, args.epochs, args.rows, args.repeat = ["quick5k"], 1, 400, 1
        args.probes = [4, 16]
    out = C.out_dir(args)
    results = C.load_runs(out, "inference") if not args.quick else {}
    machine = C.machine_info()
    print(f"# {machine}")
    import importlib.util

    for dataset in ([] if args.report_only else args.datasets):
        shape = C.dataset_shape(C.load_dataset(dataset))
        for system in args.systems:
            if system == "torch" and importlib.util.find_spec("torch") is None:
                print("== torch not installed, skipped")
                continue
            spec = {"kind": system, "dataset": dataset, "rows": args.rows, "epochs": args.epochs,
                    "repeat": args.repeat, "threads": args.threads, "probes": args.probes}
            print(f"== {dataset}/{system}", flush=True)
            result = C.run_worker(Path(__file__), spec, threads=args.threads)
            if "error" in result:
                print(f"   FAILED: {result['error']}", flush=True)
            result.update(shape=shape, machine=C.machine_info(), spec=spec)
            results = C.save_run(out, "inference", f"{dataset}/{system}", result)
    text = report(results, out, C.pyplot())
    C.write_report(out, "inference", "bench_inference.py", machine, args.report_only, text)


if __name__ == "__main__":
    C.worker_entry({"slide": work_slide, "torch": work_torch})
    main()
