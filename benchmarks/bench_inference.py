"""Top-5 inference: exact vs LSH SlideClassifier, and PyTorch dense forward + topk.

For each label count, a SlideClassifier is trained for a few epochs (DWTA,
defaults), then the test rows are ranked with ``inference="exact"`` (every
output neuron scored) and ``inference="lsh"`` (only the hash-table candidates).
Reported: rows/s (median of repeats), recall@5 of LSH against exact (mean
``|top5_lsh & top5_exact| / 5``), P@1/P@5 of both. The dense PyTorch network of
the same shape does forward + ``torch.topk`` on the same rows in another
process of the same run (its weights are untrained: speed does not depend on them).

    python benchmarks/bench_inference.py                    # 100k and 670k labels (~3 min)
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


def work_slide(spec):
    from sklearn_slide import SlideClassifier
    from sklearn_slide.metrics import precision_at_k

    X, Y, X_test, Y_test = C.load_dataset(spec["dataset"])
    X_test, Y_test = X_test[:spec["rows"]], Y_test[:spec["rows"]]
    clf = SlideClassifier(hash_family="dwta", max_iter=spec["epochs"], random_state=0,
                          n_threads=spec["threads"]).fit(X, Y)
    out = {}
    tops = {}
    for mode in ("exact", "lsh"):
        clf.set_params(inference=mode)
        clf.predict_topk(X_test[:64], k=5)  # warm-up
        seconds, (labels, _) = _median_time(lambda: clf.predict_topk(X_test, k=5), spec["repeat"])
        tops[mode] = labels
        out[mode] = {"seconds": seconds, "rows_per_s": X_test.shape[0] / seconds,
                     "P@1": precision_at_k(Y_test, labels, 1),
                     "P@5": precision_at_k(Y_test, labels, 5)}
        print(f"{mode:<6} {out[mode]['rows_per_s']:10,.0f} rows/s  P@1 {out[mode]['P@1']:.3f}",
              flush=True)
    exact, lsh = tops["exact"], tops["lsh"]
    hits = [len(set(a) & set(b)) for a, b in zip(exact.tolist(), lsh.tolist())]
    out["recall@5"] = float(np.mean(hits)) / 5
    out["top1_agreement"] = float(np.mean(exact[:, 0] == lsh[:, 0]))
    out["rows"] = X_test.shape[0]
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
    rows = []
    for dataset in sorted({k.split("/")[0] for k in results},
                          key=lambda d: results.get(d + "/slide", results.get(d + "/torch", {}))
                          .get("shape", {}).get("labels", 0)):
        slide, torch = results.get(dataset + "/slide"), results.get(dataset + "/torch")
        if slide is None or "error" in slide:
            continue
        row = {"dataset": dataset, "labels": slide["shape"]["labels"],
               "epochs": slide["spec"]["epochs"], "rows": slide["rows"],
               "exact": slide["exact"]["rows_per_s"], "lsh": slide["lsh"]["rows_per_s"],
               "lsh/exact": slide["lsh"]["rows_per_s"] / slide["exact"]["rows_per_s"],
               "recall@5": slide["recall@5"], "P@1 exact": slide["exact"]["P@1"],
               "P@1 lsh": slide["lsh"]["P@1"], "commit": slide["machine"]["commit"],
               "date": slide["machine"]["date"]}
        if torch is not None and "error" not in torch:
            row["torch"] = torch["rows_per_s"]
            row["exact/torch"] = row["exact"] / row["torch"]
        rows.append(row)
    text = C.markdown_table(rows, [
        ("labels", "labels", ",d"), ("train epochs", "epochs", "d"), ("rows", "rows", ",d"),
        ("exact rows/s", "exact", ",.0f"), ("LSH rows/s", "lsh", ",.0f"),
        ("LSH / exact", "lsh/exact", ".1f"), ("recall@5 LSH vs exact", "recall@5", ".3f"),
        ("P@1 exact", "P@1 exact", ".3f"), ("P@1 LSH", "P@1 lsh", ".3f"),
        ("torch rows/s", "torch", ",.0f"), ("exact / torch", "exact/torch", ".2f"),
        ("commit", "commit", ""), ("date", "date", "")])
    if plt is not None and rows:
        fig, ax = plt.subplots(figsize=(5, 3.4))
        for key, name in (("exact", "SlideClassifier exact"), ("lsh", "SlideClassifier LSH"),
                          ("torch", "PyTorch dense + topk")):
            pts = [(r["labels"], r[key]) for r in rows if key in r]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("labels")
        ax.set_ylabel("top-5 rows/s (2 threads)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
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
    parser.add_argument("--report-only", action="store_true",
                        help="only re-draw the tables and plots from the stored runs")
    args = parser.parse_args()
    if args.quick:
        args.datasets, args.epochs, args.rows, args.repeat = ["quick5k"], 1, 400, 1
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
                    "repeat": args.repeat, "threads": args.threads}
            print(f"== {dataset}/{system}", flush=True)
            result = C.run_worker(Path(__file__), spec, threads=args.threads)
            if "error" in result:
                print(f"   FAILED: {result['error']}", flush=True)
            result.update(shape=shape, machine=C.machine_info(), spec=spec)
            results = C.save_run(out, "inference", f"{dataset}/{system}", result)
    text = report(results, out, C.pyplot())
    header = C.report_header("bench_inference.py", machine, args.report_only)
    (out / "inference.md").write_text(header + text)
    print(header + text)


if __name__ == "__main__":
    C.worker_entry({"slide": work_slide, "torch": work_torch})
    main()
