"""Scaling of SlideClassifier training: threads, labels, batch size, hash tables.

Parts (each system and setting in its own process, so peak RSS is its own):

- ``threads``: samples/s with 1 and 2 threads: steady-state epochs on a subset,
  alternating 1 and 2 threads on one model (``--pairs``), medians.
- ``labels``: time per training sample and peak RSS at 100k, 300k and 670k labels
  (same 50k-row data shape), SlideClassifier vs the dense PyTorch network of
  the same shape (full softmax: its cost grows linearly with labels).
- ``batch``: batch size 32, 128, 512: samples/s and P@1 after one epoch (``--epochs``).
- ``tables``: ``n_tables`` x ``hash_bits`` sweep: samples/s vs P@1 after one epoch.

Speed is measured on the second epoch over ``--rows`` training rows (the first
also builds the network and tables); the dense network is timed over 30
batches after 5 warm-up batches.

    python benchmarks/bench_scaling.py                       # all parts (~10 min on 2 quiet cores)
    python benchmarks/bench_scaling.py --parts labels threads
    python benchmarks/bench_scaling.py --systems slide       # keep the stored PyTorch rows
    python benchmarks/bench_scaling.py --quick

Results: ``benchmarks/results/scaling.json`` (merged), ``scaling.md``, ``scaling_*.png``.
"""

import argparse
import statistics
from pathlib import Path

import _common as C

LABEL_SETS = ["gen100k", "gen300k", "gen670k"]
BATCHES = [32, 128, 512]
TABLES = [(10, 6), (25, 6), (50, 6), (50, 4), (50, 8)]  # (n_tables, hash_bits)


# ------------------------------------------------------------------- workers

def work_slide_speed(spec):
    """Samples/s of a steady-state epoch over the first ``rows`` training rows."""
    from sklearn_slide import SlideClassifier

    X, Y, _, _ = C.load_dataset(spec["dataset"])
    X, Y = X[:spec["rows"]], Y[:spec["rows"]]
    rss_data = C.peak_rss_mb()
    clf = SlideClassifier(hash_family="dwta", max_iter=1, warm_start=True, random_state=0,
                          n_threads=spec["threads"], **spec.get("params", {}))
    with C.Timer() as first:
        clf.fit(X, Y)
    with C.Timer() as second:
        clf.fit(X, Y)
    return {"first_epoch_s": first.wall, "wall_s": second.wall, "cpu_s": second.cpu,
            "samples_per_s": X.shape[0] / second.wall, "rows": X.shape[0],
            "rss_after_data_mb": rss_data}


def work_slide_threads(spec):
    """Steady-state epochs alternating 1 and 2 threads on one warm-started model.

    Fits are bit-identical for any thread count, so every epoch does the same
    kind of work; alternating in pairs cancels the drift of a shared machine.
    """
    from sklearn_slide import SlideClassifier

    X, Y, _, _ = C.load_dataset(spec["dataset"])
    X, Y = X[:spec["rows"]], Y[:spec["rows"]]
    clf = SlideClassifier(hash_family="dwta", max_iter=1, warm_start=True, random_state=0,
                          n_threads=1).fit(X, Y)  # first epoch: tables, page faults
    epochs = {"1": [], "2": []}
    for _ in range(spec["pairs"]):
        for threads in ("1", "2"):
            with C.Timer() as t:
                clf.set_params(n_threads=int(threads)).fit(X, Y)
            epochs[threads].append({"wall_s": t.wall, "cpu_s": t.cpu})
    return {"rows": X.shape[0], "epochs": epochs}


def work_torch_speed(spec):
    import _torch_dense as D

    X, Y, _, _ = C.load_dataset(spec["dataset"])
    rss_data = C.peak_rss_mb()
    model, opt = D.make_model(X.shape[1], Y.shape[1], threads=spec["threads"])
    warm, timed, batch = spec.get("warm_batches", 5), spec.get("timed_batches", 30), 128
    D.train_epoch(model, opt, X[:warm * batch], Y[:warm * batch])
    lo, hi = warm * batch, (warm + timed) * batch
    with C.Timer() as t:
        _, _, seen = D.train_epoch(model, opt, X[lo:hi], Y[lo:hi])
    return {"wall_s": t.wall, "cpu_s": t.cpu, "samples_per_s": seen / t.wall, "rows": seen,
            "rss_after_data_mb": rss_data}


def work_slide_quality(spec):
    """Samples/s over ``epochs`` full epochs and exact P@1/P@5 after them."""
    from sklearn_slide import SlideClassifier
    from sklearn_slide.metrics import precision_at_k

    X, Y, X_test, Y_test = C.load_dataset(spec["dataset"])
    clf = SlideClassifier(hash_family="dwta", max_iter=spec["epochs"], random_state=0,
                          n_threads=spec["threads"], **spec.get("params", {}))
    with C.Timer() as t:
        clf.fit(X, Y)
    labels, _ = clf.predict_topk(X_test, k=5)
    return {"wall_s": t.wall, "cpu_s": t.cpu,
            "samples_per_s": spec["epochs"] * X.shape[0] / t.wall,
            "P@1": precision_at_k(Y_test, labels, 1), "P@5": precision_at_k(Y_test, labels, 5)}


HANDLERS = {"slide_speed": work_slide_speed, "slide_threads": work_slide_threads,
            "torch_speed": work_torch_speed, "slide_quality": work_slide_quality}


# ---------------------------------------------------------------------- main

def plan(args):
    """(key, spec, threads) for every run of the selected parts."""
    runs = []
    big = "quick5k" if args.quick else "gen100k"
    rows = 1500 if args.quick else args.rows
    epochs = 1 if args.quick else args.epochs
    if "threads" in args.parts and "slide" in args.systems:
        runs.append(("threads/slide/paired",
                     {"kind": "slide_threads", "dataset": big, "rows": rows,
                      "pairs": 1 if args.quick else args.pairs},
                     2))
    if "labels" in args.parts:
        for dataset in (["quick"] if args.quick else LABEL_SETS):
            if "slide" in args.systems:
                runs.append((f"labels/slide/{dataset}", {"kind": "slide_speed", "dataset": dataset,
                                                         "rows": rows, "threads": args.threads},
                             args.threads))
            if "torch" in args.systems:
                runs.append((f"labels/torch/{dataset}",
                             {"kind": "torch_speed", "dataset": dataset, "threads": args.threads,
                              "timed_batches": 3 if args.quick else 30},
                             args.threads))
    if "batch" in args.parts and "slide" in args.systems:
        for batch in ([64] if args.quick else BATCHES):
            runs.append((f"batch/slide/{batch}",
                         {"kind": "slide_quality", "dataset": big, "epochs": epochs,
                          "threads": args.threads, "params": {"batch_size": batch}}, args.threads))
    if "tables" in args.parts and "slide" in args.systems:
        for n_tables, bits in ([(10, 6)] if args.quick else TABLES):
            runs.append((f"tables/slide/L{n_tables}-K{bits}",
                         {"kind": "slide_quality", "dataset": big, "epochs": epochs,
                          "threads": args.threads,
                          "params": {"n_tables": n_tables, "hash_bits": bits}}, args.threads))
    return runs


def report(results, out, plt):
    def rows_of(part):
        return {k.split("/", 1)[1]: v for k, v in results.items()
                if k.startswith(part + "/") and "error" not in v}

    lines = []
    paired = rows_of("threads").get("slide/paired")
    if paired:
        lines.append("### Threads (SlideClassifier, steady-state epochs alternating 1 and 2 "
                     "threads on one model)\n")
        rows, median = [], {}
        for threads, epochs in paired["epochs"].items():
            rates = [paired["rows"] / e["wall_s"] for e in epochs]
            median[threads] = statistics.median(rates)
            rows.append({"threads": threads, "rows": paired["rows"], "n": len(rates),
                         "median": median[threads],
                         "all": " ".join(f"{r:,.0f}" for r in rates),
                         "cpu/wall": statistics.median(e["cpu_s"] / e["wall_s"] for e in epochs),
                         "date": paired["machine"]["date"]})
        lines.append(C.markdown_table(rows, [
            ("threads", "threads", ""), ("rows", "rows", ",d"), ("epochs", "n", "d"),
            ("median samples/s", "median", ",.0f"), ("each epoch, samples/s", "all", ""),
            ("CPU/wall", "cpu/wall", ".2f"), ("date", "date", "")]))
        pairs = [paired["epochs"]["1"][i]["wall_s"] / paired["epochs"]["2"][i]["wall_s"]
                 for i in range(len(paired["epochs"]["1"]))]
        lines.append(f"\nSpeed-up 2 threads / 1 thread: **{median['2'] / median['1']:.2f}x** "
                     f"(ratio of medians; per pair: {' '.join(f'{p:.2f}' for p in pairs)})\n")
    labels = rows_of("labels")
    if labels:
        lines.append("### Labels (time per training sample, peak RSS)\n")
        rows = []
        for key, run in sorted(labels.items(), key=lambda kv: (kv[0].split("/")[0],
                                                                kv[1]["shape"]["labels"])):
            system = key.split("/")[0]
            rows.append({"system": system, "labels": run["shape"]["labels"],
                         "ms/sample": 1000 / run["samples_per_s"],
                         "cpu ms/sample": 1000 * run["cpu_s"] / run["rows"], **run})
        lines.append(C.markdown_table(rows, [
            ("system", "system", ""), ("labels", "labels", ",d"), ("samples/s", "samples_per_s",
                                                                   ",.0f"),
            ("ms / sample", "ms/sample", ".2f"), ("CPU ms / sample", "cpu ms/sample", ".2f"),
            ("CPU/wall", lambda r: r["cpu_s"] / r["wall_s"], ".2f"),
            ("peak RSS MB", "peak_rss_mb", ",.0f"), ("after data MB", "rss_after_data_mb", ",.0f"),
            ("commit", lambda r: r["machine"]["commit"], ""),
            ("date", lambda r: r["machine"]["date"], "")]))
        by_label = {}
        for row in rows:
            by_label.setdefault(row["labels"], {})[row["system"]] = row
        ratios = [f"{n:,} labels: {v['torch']['ms/sample'] / v['slide']['ms/sample']:.1f}x wall, "
                  f"{v['torch']['cpu ms/sample'] / v['slide']['cpu ms/sample']:.1f}x CPU"
                  for n, v in sorted(by_label.items()) if "torch" in v and "slide" in v]
        if ratios:
            lines.append("\nDense / SlideClassifier time per sample: " + "; ".join(ratios) + "\n")
        if plt is not None:
            fig, axes = plt.subplots(1, 2, figsize=(8, 3.3))
            for system in ("slide", "torch"):
                pts = sorted((r["labels"], r["cpu ms/sample"], r["peak_rss_mb"]) for r in rows
                             if r["system"] == system)
                if pts:
                    name = "SlideClassifier" if system == "slide" else "dense PyTorch"
                    axes[0].plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=name)
                    axes[1].plot([p[0] for p in pts], [p[2] for p in pts], "o-", label=name)
            axes[0].set_ylabel("CPU ms per training sample")
            axes[1].set_ylabel("peak RSS (MB)")
            for ax in axes:
                ax.set_xlabel("labels")
                ax.grid(alpha=0.3)
                ax.legend(fontsize=8)
            png = C.save_figure(fig, out / "scaling_labels.png")
            lines.append(f"![time per sample and memory vs labels]({png.name})\n")
    for part, title, param in (("batch", "Batch size", "batch_size"),
                               ("tables", "Hash tables (n_tables L, hash_bits K)", None)):
        runs = rows_of(part)
        if not runs:
            continue
        lines.append(f"### {title}: {runs[next(iter(runs))]['spec']['epochs']} epoch(s) on "
                     f"{runs[next(iter(runs))]['spec']['dataset']}, exact P@1 after them\n")
        rows = [{"setting": k, **v} for k, v in runs.items()]
        if part == "batch":
            rows.sort(key=lambda r: int(r["setting"].split("/")[1]))
        lines.append(C.markdown_table(rows, [
            ("setting", lambda r: r["setting"].split("/", 1)[1], ""),
            ("samples/s", "samples_per_s", ",.0f"), ("CPU/wall", lambda r: r["cpu_s"] / r["wall_s"],
                                                     ".2f"),
            ("P@1", "P@1", ".3f"), ("P@5", "P@5", ".3f"), ("peak RSS MB", "peak_rss_mb", ",.0f"),
            ("date", lambda r: r["machine"]["date"], "")]))
        lines.append("")
        if plt is not None:
            fig, ax = plt.subplots(figsize=(5, 3.4))
            for r in rows:
                ax.plot(r["samples_per_s"], r["P@1"], "o")
                ax.annotate(r["setting"].split("/", 1)[1], (r["samples_per_s"], r["P@1"]),
                            fontsize=7, xytext=(3, 3), textcoords="offset points")
            ax.set_xlabel("training samples/s")
            ax.set_ylabel("test P@1")
            ax.set_title(title, fontsize=9)
            ax.grid(alpha=0.3)
            png = C.save_figure(fig, out / f"scaling_{part}.png")
            lines.append(f"![{title}]({png.name})\n")
    return "\n".join(lines)


def main():
    parser = C.add_common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--parts", nargs="+", default=["threads", "labels", "batch", "tables"],
                        choices=["threads", "labels", "batch", "tables"])
    parser.add_argument("--systems", nargs="+", default=["slide", "torch"],
                        choices=["slide", "torch"])
    parser.add_argument("--rows", type=int, default=20_000, help="rows of the speed epochs")
    parser.add_argument("--pairs", type=int, default=5,
                        help="1-thread/2-thread epoch pairs of the threads part")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of the batch/tables sweeps")
    parser.add_argument("--report-only", action="store_true",
                        help="only re-draw the tables and plots from the stored runs")
    args = parser.parse_args()
    out = C.out_dir(args)
    results = C.load_runs(out, "scaling") if not args.quick else {}
    machine = C.machine_info()
    print(f"# {machine}")
    for key, spec, threads in ([] if args.report_only else plan(args)):
        if spec["kind"] == "torch_speed" and not _has_torch():
            print(f"== {key}: torch not installed, skipped")
            continue
        shape = C.dataset_shape(C.load_dataset(spec["dataset"]))
        print(f"== {key}", flush=True)
        result = C.run_worker(Path(__file__), spec, threads=threads)
        if "error" in result:
            print(f"   FAILED: {result['error']}", flush=True)
        elif "epochs" in result:
            for threads, epochs in result["epochs"].items():
                print(f"   {threads} thread(s): " + " ".join(
                    f"{result['rows'] / e['wall_s']:,.0f}" for e in epochs) + " samples/s",
                    flush=True)
        else:
            print(f"   {result['samples_per_s']:,.0f} samples/s, peak RSS "
                  f"{result['peak_rss_mb']:,.0f} MB" +
                  (f", P@1 {result['P@1']:.3f}" if "P@1" in result else ""), flush=True)
        result.update(shape=shape, machine=C.machine_info(), spec=spec)
        results = C.save_run(out, "scaling", key, result)
    text = report(results, out, C.pyplot())
    C.write_report(out, "scaling", "bench_scaling.py", machine, args.report_only, text)


def _has_torch():
    import importlib.util

    return importlib.util.find_spec("torch") is not None


if __name__ == "__main__":
    C.worker_entry(HANDLERS)
    main()
