"""SlideClassifier vs XMC libraries: napkinXC, omikuji, LibMultiLabel, PECOS, and two
training-free baselines (cosine label centroid, 10 nearest neighbours).

Every system trains with its library defaults on 2 threads, in its own
process, on the same L2-normalised rows, and predicts the top 5 labels of the
test rows; P@1/3/5, nDCG@5 and PSP@5 (A=0.55, B=1.5 on the train label counts)
are computed by ``sklearn_slide.metrics`` in the parent process. Reported:
train wall and CPU seconds, predict wall seconds, peak RSS of the process.

    python benchmarks/bench_vs_xmc.py                        # all datasets and systems
    python benchmarks/bench_vs_xmc.py --datasets bibtex --systems slide napkinxc-plt
    python benchmarks/bench_vs_xmc.py --systems slide        # re-run SlideClassifier only
    python benchmarks/bench_vs_xmc.py --quick                # seconds (used by the tests)

PECOS pins numpy < 2, so it runs from its own venv: create it with

    python -m venv /tmp/pecos-venv
    /tmp/pecos-venv/bin/pip install "numpy<2" "scipy<1.14" scikit-learn
    /tmp/pecos-venv/bin/pip install --no-deps libpecos   # XR-Linear needs no torch

and pass ``--pecos-python /tmp/pecos-venv/bin/python`` (the default when it exists).

Results: ``benchmarks/results/vs_xmc.json`` (merged across invocations) and ``vs_xmc.md``.
"""

import argparse
import importlib.util
import json
import shutil
import tempfile
from pathlib import Path

import _common as C
import numpy as np

SYSTEMS = ["napkinxc-plt", "omikuji-parabel", "omikuji-bonsai", "lml-1vsrest", "lml-tree",
           "pecos-xrlinear", "centroid", "knn10", "slide"]
PACKAGE = {"napkinxc-plt": "napkinxc", "omikuji-parabel": "omikuji", "omikuji-bonsai": "omikuji",
           "lml-1vsrest": "libmultilabel", "lml-tree": "libmultilabel", "pecos-xrlinear": None,
           "centroid": "scipy", "knn10": "scipy", "slide": "sklearn_slide"}
# 1-vs-rest trains one LIBLINEAR model per label over all rows. Its CPU time per
# (label x non-zero) on delicious and seqgo-direct, 3.3e-8 to 7.1e-8 s,
# extrapolates to hours on the larger sets, so it is left out of them.
_ONE_VS_REST_COST = ("not run: extrapolated {} (one LIBLINEAR problem per label over all "
                     "training rows)")
SKIP = {("lml-1vsrest", "gen100k"): _ONE_VS_REST_COST.format("3-7 CPU-hours"),
        ("lml-1vsrest", "gen300k"): _ONE_VS_REST_COST.format("10-22 CPU-hours"),
        ("lml-1vsrest", "debian-deps"): _ONE_VS_REST_COST.format("0.4-0.9 CPU-hours")}
DEFAULT_PECOS_PYTHON = "/tmp/pecos-venv/bin/python"


# ------------------------------------------------------------------- workers

def _load(spec):
    import scipy.sparse as sp

    path = Path(spec["data_dir"])
    return [sp.load_npz(path / f"{p}.npz").tocsr() for p in ("X_train", "Y_train", "X_test")]


def _pad(rows, k=5):
    out = np.full((len(rows), k), -1, dtype=np.int64)
    for i, row in enumerate(rows):
        row = list(row)[:k]
        out[i, :len(row)] = row
    return out


def _topk_dense(scores, k=5):
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if scores.shape[1] > k else \
        np.tile(np.arange(scores.shape[1]), (scores.shape[0], 1))
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def _finish(spec, train, predict, labels):
    np.save(spec["pred_path"], labels)
    return {"train_wall_s": train.wall, "train_cpu_s": train.cpu, "predict_wall_s": predict.wall,
            "predict_cpu_s": predict.cpu}


def work_napkinxc(spec):
    from napkinxc.models import PLT

    X, Y, X_test = _load(spec)
    Y_lists = [Y.indices[Y.indptr[i]:Y.indptr[i + 1]].tolist() for i in range(Y.shape[0])]
    model_dir = tempfile.mkdtemp(prefix="nxc-")
    try:
        model = PLT(model_dir, threads=spec["threads"], seed=0)
        with C.Timer() as train:
            model.fit(X, Y_lists)
        with C.Timer() as predict:
            labels = _pad(model.predict(X_test, top_k=5))
    finally:
        shutil.rmtree(model_dir, ignore_errors=True)
    return _finish(spec, train, predict, labels)


def work_omikuji(spec):
    import omikuji

    _, _, X_test = _load(spec)
    hp = omikuji.Model.default_hyper_param()
    if spec["system"] == "omikuji-bonsai":  # omikuji's README: unbalanced, k=100, depth 3
        hp.cluster_balanced = False
        hp.cluster_k = 100
        hp.max_depth = 3
    with C.Timer() as train:  # includes parsing the XC text file (omikuji trains from a file)
        model = omikuji.Model.train_on_data(spec["xc_path"], hp, n_threads=spec["threads"])
    model.init_prediction_thread_pool(spec["threads"])
    with C.Timer() as predict:  # omikuji's Python API predicts one row per call
        rows = []
        for i in range(X_test.shape[0]):
            lo, hi = X_test.indptr[i], X_test.indptr[i + 1]
            pairs = list(zip(X_test.indices[lo:hi].tolist(), X_test.data[lo:hi].tolist()))
            rows.append([label for label, _ in model.predict(pairs, top_k=5)])
        labels = _pad(rows)
    return _finish(spec, train, predict, labels)


def work_libmultilabel(spec):
    from libmultilabel import linear

    X, Y, X_test = _load(spec)
    X, X_test = X.astype(np.float64), X_test.astype(np.float64)
    # The tree's label clustering fails (graphblas InvalidValue) on labels without
    # a training row (seqgo-direct: 2,254 of 4,133): it is trained on the seen
    # labels, whose ids are mapped back. Unseen labels cannot be learned anyway.
    seen = np.flatnonzero(Y.getnnz(axis=0)) if spec["system"] == "lml-tree" else None
    with C.Timer() as train:
        if seen is not None:
            model = linear.train_tree(Y[:, seen].tocsr(), X, verbose=False)
        else:
            model = linear.train_1vsrest(Y, X, verbose=False)
    with C.Timer() as predict:
        chunk = max(1, 2**27 // (8 * Y.shape[1]))
        labels = np.vstack([
            _topk_dense(np.asarray(linear.predict_values(model, X_test[lo:lo + chunk])))
            for lo in range(0, X_test.shape[0], chunk)])
        if seen is not None:
            labels = seen[labels]
    return _finish(spec, train, predict, labels)


def work_pecos(spec):
    from pecos.xmc import Indexer, LabelEmbeddingFactory
    from pecos.xmc.xlinear.model import XLinearModel

    X, Y, X_test = _load(spec)
    threads = spec["threads"]
    with C.Timer() as train:  # PECOS README recipe: PIFA label embedding, hierarchical k-means
        label_feat = LabelEmbeddingFactory.create(Y, X, method="pifa")
        chain = Indexer.gen(label_feat, threads=threads)
        model = XLinearModel.train(X, Y, C=chain, threads=threads)
    with C.Timer() as predict:
        P = model.predict(X_test, only_topk=5, threads=threads).tocsr()
        rows = []
        for i in range(P.shape[0]):
            lo, hi = P.indptr[i], P.indptr[i + 1]
            order = np.argsort(-P.data[lo:hi], kind="stable")
            rows.append(P.indices[lo:hi][order])
        labels = _pad(rows)
    return _finish(spec, train, predict, labels)


def _row_blocks(n_rows, n_cols, budget_bytes=2**28):
    """Row ranges whose dense (rows x n_cols) float32 block stays within the budget."""
    step = max(1, budget_bytes // (4 * max(n_cols, 1)))
    return [(lo, min(n_rows, lo + step)) for lo in range(0, n_rows, step)]


def _unit_rows(M):
    import scipy.sparse as sp

    norms = np.sqrt(np.asarray(M.multiply(M).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ M, dtype=np.float32)


def work_centroid(spec):
    """Training-free baseline: cosine between a row and each label's L2-normalised
    centroid (the sum of the label's training rows)."""
    X, Y, X_test = _load(spec)
    with C.Timer() as train:
        centroids_t = _unit_rows((Y.T @ X).tocsr()).T.tocsr()  # features x labels
    with C.Timer() as predict:
        labels = np.vstack([_topk_dense((X_test[lo:hi] @ centroids_t).toarray())
                            for lo, hi in _row_blocks(X_test.shape[0], Y.shape[1])])
    return _finish(spec, train, predict, labels)


def work_knn10(spec):
    """Training-free baseline: the 10 most cosine-similar training rows vote for
    their labels (one vote each; ties go to the lower label id)."""
    X, Y, X_test = _load(spec)
    with C.Timer() as train:
        X_t = X.T.tocsr()
    with C.Timer() as predict:
        parts = []
        for lo, hi in _row_blocks(X_test.shape[0], 2 * max(X.shape[0], Y.shape[1])):
            sims = (X_test[lo:hi] @ X_t).toarray()
            neighbours = _topk_dense(sims, k=10)
            votes = np.zeros((hi - lo, Y.shape[1]), dtype=np.int64)
            for j in range(neighbours.shape[1]):
                votes += Y[neighbours[:, j]].toarray().astype(np.int64)
            # Exact tie-break towards the lower label id: votes first, then -id.
            n_labels = Y.shape[1]
            parts.append(_topk_dense(votes * n_labels + (n_labels - 1 - np.arange(n_labels))))
        labels = np.vstack(parts)
    return _finish(spec, train, predict, labels)


def work_slide(spec):
    from sklearn_slide import SlideClassifier

    X, Y, X_test = _load(spec)
    params = {"random_state": 0, "n_threads": spec["threads"], **spec.get("params", {})}
    with C.Timer() as train:
        clf = SlideClassifier(**params).fit(X, Y)
    with C.Timer() as predict:
        labels, _ = clf.predict_topk(X_test, k=5)
    result = _finish(spec, train, predict, labels)
    result["params"] = params
    return result


HANDLERS = {"napkinxc-plt": work_napkinxc, "omikuji-parabel": work_omikuji,
            "omikuji-bonsai": work_omikuji, "lml-1vsrest": work_libmultilabel,
            "lml-tree": work_libmultilabel, "pecos-xrlinear": work_pecos,
            "centroid": work_centroid, "knn10": work_knn10, "slide": work_slide}


def _dispatch(spec):
    return HANDLERS[spec["system"]](spec)


# ---------------------------------------------------------------------- main

def available(system, pecos_python):
    if system == "pecos-xrlinear":
        return pecos_python is not None and Path(pecos_python).exists()
    return importlib.util.find_spec(PACKAGE[system]) is not None


# Reference figures of /work/shared/data/README.md (P@1 / P@5, %).
REFERENCE = {
    "bibtex": {"napkinxc-plt": (63.3, 28.6), "omikuji-parabel": (63.2, 28.0),
               "pecos-xrlinear": (63.2, 28.1), "dense torch 30 ep": (61.8, 28.0)},
    "delicious": {"napkinxc-plt": (66.9, 55.3), "omikuji-parabel": (67.0, 55.6),
                  "pecos-xrlinear": (66.0, 55.3), "dense torch 30 ep": (65.5, 56.1)},
    "seqgo-direct": {"napkinxc-plt": (37.2, 22.9), "omikuji-parabel": (36.6, 23.1),
                     "pecos-xrlinear": (35.7, 21.2), "dense torch 30 ep": (39.6, 22.9)},
}


def report(results, datasets):
    lines = []
    for dataset in datasets:
        runs = {k.split("/", 1)[1]: v for k, v in results.items() if k.startswith(dataset + "/")}
        if not runs:
            continue
        shape = next(iter(runs.values())).get("shape", {})
        lines.append(f"### {dataset}: {shape.get('train', 0):,} train / {shape.get('test', 0):,} "
                     f"test, {shape.get('features', 0):,} features, {shape.get('labels', 0):,} "
                     f"labels\n")
        rows = []
        for system in SYSTEMS:
            run = runs.get(system)
            if run is None:
                continue
            if "error" in run or "skipped" in run:
                rows.append({"system": system, "note": run.get("skipped") or run["error"][:120]})
                continue
            ref = REFERENCE.get(dataset, {}).get(system)
            rows.append({"system": system, **run["metrics"], "train_wall_s": run["train_wall_s"],
                         "train_cpu_s": run["train_cpu_s"], "predict_wall_s": run["predict_wall_s"],
                         "peak_rss_mb": run["peak_rss_mb"],
                         "ref": f"{ref[0]:.1f} / {ref[1]:.1f}" if ref else "",
                         "note": f"{run['machine']['commit']}, {run['machine']['date']}"
                         if system == "slide" else run["machine"]["date"]})
        pct = lambda key: (lambda r: f"{100 * r[key]:.1f}" if key in r else "-")
        lines.append(C.markdown_table(rows, [
            ("system", "system", ""), ("P@1", pct("P@1"), ""), ("P@3", pct("P@3"), ""),
            ("P@5", pct("P@5"), ""), ("nDCG@5", pct("nDCG@5"), ""), ("PSP@5", pct("PSP@5"), ""),
            ("train wall s", "train_wall_s", ".1f"), ("train CPU s", "train_cpu_s", ".1f"),
            ("predict s", "predict_wall_s", ".2f"), ("peak RSS MB", "peak_rss_mb", ",.0f"),
            ("README ref P@1 / P@5", "ref", ""), ("note", "note", "")]))
        lines.append("")
    return "\n".join(lines)


def main():
    parser = C.add_common_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--datasets", nargs="+",
                        default=["bibtex", "delicious", "seqgo-direct", "debian-deps", "gen100k",
                                 "gen300k"])
    parser.add_argument("--systems", nargs="+", default=SYSTEMS, choices=SYSTEMS)
    parser.add_argument("--slide-params", default="{}",
                        help="JSON dict of SlideClassifier parameters (default: its defaults)")
    parser.add_argument("--pecos-python",
                        default=DEFAULT_PECOS_PYTHON if Path(DEFAULT_PECOS_PYTHON).exists() else None)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per system")
    parser.add_argument("--report-only", action="store_true",
                        help="only re-draw the tables and plots from the stored runs")
    args = parser.parse_args()
    if args.quick:
        args.datasets = ["quick"]
        args.systems = [s for s in args.systems if s != "lml-1vsrest"]
    out = C.out_dir(args)
    results = C.load_runs(out, "vs_xmc") if not args.quick else {}
    machine = C.machine_info()
    print(f"# {machine}")
    work = Path(tempfile.mkdtemp(prefix="bench-xmc-"))
    try:
        for dataset in ([] if args.report_only else args.datasets):
            parts = C.load_dataset(dataset)
            shape = C.dataset_shape(parts)
            data_dir = C.prepare_dataset(dataset)
            xc_path = data_dir / "train_l2.txt"
            if not xc_path.exists() and any(s.startswith("omikuji") for s in args.systems):
                from sklearn_slide.datasets import dump_xc

                dump_xc(parts[0], parts[1], str(xc_path))
            for system in args.systems:
                key = f"{dataset}/{system}"
                if (system, dataset) in SKIP:
                    results = C.save_run(out, "vs_xmc", key,
                                         {"skipped": SKIP[(system, dataset)], "shape": shape})
                    continue
                if not available(system, args.pecos_python):
                    print(f"== {key}: not installed, skipped", flush=True)
                    results.pop(key, None) if args.quick else None
                    continue
                spec = {"kind": "any", "system": system, "threads": args.threads,
                        "data_dir": str(data_dir), "xc_path": str(xc_path),
                        "pred_path": str(work / f"{dataset}-{system}.npy")}
                if system == "slide":
                    spec["params"] = json.loads(args.slide_params)
                print(f"== {key}", flush=True)
                python = args.pecos_python if system == "pecos-xrlinear" else None
                result = C.run_worker(Path(__file__), spec, threads=args.threads,
                                      timeout=args.timeout, python=python)
                result.update(shape=shape, machine=C.machine_info())
                if "error" not in result:
                    labels = np.load(spec["pred_path"])
                    result["metrics"] = C.topk_metrics(parts[3], labels, parts[1])
                    m = result["metrics"]
                    print(f"   P@1 {m['P@1']:.3f} P@5 {m['P@5']:.3f} train "
                          f"{result['train_wall_s']:.1f} s wall / {result['train_cpu_s']:.1f} s "
                          f"CPU, peak RSS {result['peak_rss_mb']:,.0f} MB", flush=True)
                else:
                    print(f"   FAILED: {result['error']}", flush=True)
                results = C.save_run(out, "vs_xmc", key, result)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    shown = list(dict.fromkeys(args.datasets + sorted({k.split("/")[0] for k in results})))
    text = report(results, shown)
    C.write_report(out, "vs_xmc", "bench_vs_xmc.py", machine, args.report_only, text)


if __name__ == "__main__":
    C.worker_entry({"any": _dispatch})
    main()
