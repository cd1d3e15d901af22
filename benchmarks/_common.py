"""Shared helpers of the benchmark scripts (not part of the package).

Every measured system runs in its own subprocess (``run_worker``) so that its
peak RSS is its own and thread limits are set before any library loads. A
worker is the benchmark script itself called with ``--worker JSON``; it prints
progress lines and one closing ``RESULT {json}`` line.

This module imports only numpy and scipy at the top, so that a worker can run
in another environment (the PECOS venv, which has numpy < 2 and no
sklearn_slide).
"""

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
SHARED_DATA = Path(os.environ.get("SLIDE_BENCH_DATA", REPO_DIR.parent / "shared" / "data"))
CACHE_DIR = Path(
    os.environ.get("SLIDE_BENCH_CACHE", Path.home() / ".cache" / "sklearn-slide-bench")
)
REAL_DATASETS = ("bibtex", "delicious", "seqgo-direct")

# Generated problems: (train rows, test rows, features, labels). "gen100k" is
# the configuration of SLIDE.md section 6 and issue 5.
GENERATED = {
    "gen100k": (50_000, 10_000, 100_000, 100_000),
    "gen300k": (50_000, 10_000, 100_000, 300_000),
    "gen670k": (50_000, 10_000, 100_000, 670_000),
    "quick": (1_500, 300, 3_000, 1_000),
    "quick5k": (2_000, 400, 5_000, 5_000),
}


# --------------------------------------------------------------- measurement

def peak_rss_mb():
    """Peak resident set size of this process in MB.

    ``VmHWM`` of /proc/self/status: the high-water mark of this process's own
    address space. (``ru_maxrss`` would not do for a worker: Linux carries the
    forked parent's peak over ``exec``, so every worker would report at least
    the parent's RSS.)
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb():
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def cpu_seconds():
    """User + system CPU time of this process (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Timer:
    """Wall and CPU seconds of a ``with`` block."""

    def __enter__(self):
        self.wall0, self.cpu0 = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall0
        self.cpu = cpu_seconds() - self.cpu0


def thread_env(threads):
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                 "NUMBA_NUM_THREADS", "RAYON_NUM_THREADS"):
        env[name] = str(threads)
    return env


def machine_info():
    """Cores, CPU model and SIMD flags, load, versions, date, commit."""
    info = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__}
    try:
        with open("/proc/cpuinfo") as fh:
            text = fh.read()
        model = [ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")]
        flags = [ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")]
        info["cpu"] = model[0] if model else platform.processor()
        wanted = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "amx_bf16")
        info["simd"] = " ".join(f for f in wanted if flags and f in flags[0])
    except OSError:
        info["cpu"] = platform.processor()
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        info["memory_gb"] = round(mem / 2**30, 1)
    except (ValueError, OSError):
        pass
    info["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    info["commit"] = git_commit()
    return info


def git_commit():
    """Short commit; '+dirty' when cpp/ or sklearn_slide/ have uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_DIR, check=False,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "cpp", "sklearn_slide"],
                               cwd=REPO_DIR, check=False, capture_output=True, text=True,
                               timeout=10).stdout.strip()
        return (head + ("+dirty" if dirty else "")) or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def report_header(script, machine, report_only):
    """First lines of a results .md: the command (or that it was re-drawn) and the machine."""
    if report_only:
        return ("Tables re-drawn from the stored runs (`--report-only`); every row carries the "
                "commit and date of its own run.\n\n")
    command = " ".join(["python", f"benchmarks/{script}"] + sys.argv[1:])
    return (f"Command: `{command}`  \n"
            f"Machine: {machine['cpus']} CPUs, {machine['cpu']}, {machine['simd']}; "
            f"commit {machine['commit']}; {machine['date']}; "
            f"{load_note(machine, machine_info())}\n\n")


def write_report(out, name, script, machine, report_only, text):
    """``out/<name>.md``: the report header, then ``text``; also printed."""
    page = report_header(script, machine, report_only) + text
    (out / f"{name}.md").write_text(page)
    print(page)


def load_note(info_before, info_after=None):
    """Say whether other work shared the machine (load average above our threads)."""
    loads = [info_before["load_avg"][0]] + ([info_after["load_avg"][0]] if info_after else [])
    return f"1-min load average at start/end: {', '.join(f'{x:.1f}' for x in loads)}"


# ------------------------------------------------------------------- workers

def run_worker(script, spec, threads=2, timeout=None, python=None, echo=True):
    """Run ``script --worker spec`` in a fresh process; return its RESULT dict.

    On failure returns ``{"error": ...}`` with the tail of stderr, so one broken
    peer does not stop a benchmark.
    """
    cmd = [python or sys.executable, str(script), "--worker", json.dumps(spec)]
    env = thread_env(threads)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(BENCH_DIR)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    start = time.perf_counter()
    partial = Path(tempfile.mkstemp(prefix="bench-partial-", suffix=".json")[1])
    env["SLIDE_BENCH_PARTIAL"] = str(partial)
    try:
        result = _run(cmd, env, timeout, echo, start)
        if "error" in result and partial.stat().st_size:
            # An interrupted run keeps what it measured (e.g. the epochs it finished).
            kept = json.loads(partial.read_text())
            kept["interrupted"] = result["error"]
            kept["peak_rss_mb"] = kept.get("peak_rss_mb", float("nan"))
            return kept
        return result
    finally:
        partial.unlink(missing_ok=True)


def save_partial(result):
    """Workers: record progress, returned by ``run_worker`` if the run dies later."""
    path = os.environ.get("SLIDE_BENCH_PARTIAL")
    if path:
        save_json(path, {**result, "peak_rss_mb": peak_rss_mb()})


def _run(cmd, env, timeout, echo, start):
    # stderr goes to a file: a chatty library filling a stderr pipe nobody reads
    # would block the worker.
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env,
                                bufsize=1)
        result = None
        killer = threading.Timer(timeout, proc.kill) if timeout else None
        if killer:
            killer.start()
        try:
            for line in proc.stdout:
                if line.startswith("RESULT "):
                    result = json.loads(line[7:])
                elif echo:
                    print("    | " + line.rstrip(), flush=True)
            proc.wait()
        finally:
            if killer:
                killer.cancel()
        if timeout and time.perf_counter() - start >= timeout:
            return {"error": f"timeout after {timeout:.0f} s"}
        err.seek(0)
        stderr = err.read()
    if proc.returncode != 0 or result is None:
        tail = "\n".join(stderr.strip().splitlines()[-6:])
        return {"error": f"exit {proc.returncode}: {tail}"}
    result.setdefault("wall_total_s", time.perf_counter() - start)
    return result


def worker_entry(handlers):
    """If called as a worker, run ``handlers[spec['kind']](spec)`` and exit."""
    if len(sys.argv) >= 3 and sys.argv[1] == "--worker":
        spec = json.loads(sys.argv[2])
        result = handlers[spec["kind"]](spec)
        result["peak_rss_mb"] = peak_rss_mb()
        print("RESULT " + json.dumps(result), flush=True)
        sys.exit(0)


# ---------------------------------------------------------------------- data

def _l2_normalize(X):
    X = sp.csr_matrix(X, dtype=np.float32)
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ X, dtype=np.float32)


def _cache_path(name):
    return CACHE_DIR / name


def prepare_dataset(name, split="test"):
    """Make sure ``name`` is cached as .npz files; return its directory.

    Real datasets are read with ``sklearn_slide.datasets.load_xc`` and
    L2-normalised per row (as in the data README); generated ones come from
    ``make_extreme_multilabel`` (already unit-norm) with ``random_state=0``.
    ``split`` "valid" uses seqgo-direct's validation split as the test set.
    """
    key = name if split == "test" else f"{name}-{split}"
    path = _cache_path(key)
    if (path / "done").exists():
        return path
    path.mkdir(parents=True, exist_ok=True)
    if name in GENERATED:
        from sklearn_slide.datasets import make_extreme_multilabel

        n_train, n_test, n_features, n_labels = GENERATED[name]
        X, Y = make_extreme_multilabel(n_train + n_test, n_features, n_labels, random_state=0)
        parts = {"X_train": X[:n_train], "Y_train": Y[:n_train],
                 "X_test": X[n_train:], "Y_test": Y[n_train:]}
    else:
        from sklearn_slide.datasets import load_xc

        folder = SHARED_DATA / name
        X_train, Y_train = load_xc(str(folder / "train.txt.gz"))
        X_test, Y_test = load_xc(str(folder / f"{split}.txt.gz"))
        parts = {"X_train": _l2_normalize(X_train), "Y_train": Y_train,
                 "X_test": _l2_normalize(X_test), "Y_test": Y_test}
    for part, M in parts.items():
        M = sp.csr_matrix(M, dtype=np.float32)
        M.sort_indices()
        sp.save_npz(path / f"{part}.npz", M, compressed=False)
    (path / "done").write_text("ok\n")
    return path


def load_dataset(name, split="test"):
    """(X_train, Y_train, X_test, Y_test) as CSR float32 (Y is 0/1)."""
    path = prepare_dataset(name, split)
    return tuple(sp.load_npz(path / f"{part}.npz").tocsr()
                 for part in ("X_train", "Y_train", "X_test", "Y_test"))


def dataset_shape(parts):
    X_train, Y_train, X_test, _ = parts
    return {"train": X_train.shape[0], "test": X_test.shape[0], "features": X_train.shape[1],
            "labels": Y_train.shape[1], "nnz_per_row": round(X_train.nnz / X_train.shape[0], 1),
            "labels_per_row": round(Y_train.nnz / Y_train.shape[0], 2)}


def topk_metrics(Y_test, labels, Y_train):
    """P@1/3/5, nDCG@5 and PSP@5 (A=0.55, B=1.5, train label counts)."""
    from sklearn_slide.metrics import (
        inverse_propensity,
        ndcg_at_k,
        precision_at_k,
        psprecision_at_k,
    )

    labels = np.asarray(labels)
    counts = np.asarray(Y_train.sum(axis=0)).ravel()
    w = inverse_propensity(counts, Y_train.shape[0])
    return {"P@1": precision_at_k(Y_test, labels, k=1),
            "P@3": precision_at_k(Y_test, labels, k=3),
            "P@5": precision_at_k(Y_test, labels, k=5),
            "nDCG@5": ndcg_at_k(Y_test, labels, k=5),
            "PSP@5": psprecision_at_k(Y_test, labels, k=5, inv_propensity=w)}


# ------------------------------------------------------------ output, plots

def out_dir(args):
    """Full runs write into benchmarks/results; quick runs into ./results-quick."""
    if args.out:
        path = Path(args.out)
    elif args.quick:
        path = Path.cwd() / "results-quick"
    else:
        path = BENCH_DIR / "results"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_json(path, payload):
    tmp = Path(str(path) + f".{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        json.dump(payload, fh, indent=1, default=float)
    os.replace(tmp, path)


def _run_file(folder, key):
    return folder / (key.replace("/", "__") + ".json")


def load_runs(out, name):
    """Every stored run of benchmark ``name``: ``{key: result}``.

    Runs live one per file in ``out/name/`` so that concurrent invocations (and
    re-runs of one system) never overwrite each other; ``out/name.json`` (the
    merged view written by ``save_run``) fills in keys without a file.
    """
    runs = {}
    merged = out / f"{name}.json"
    if merged.exists():
        runs.update(json.loads(merged.read_text()))
    folder = out / name
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            runs[path.stem.replace("__", "/")] = json.loads(path.read_text())
    return runs


def save_run(out, name, key, result):
    """Store one run and refresh the merged ``out/name.json``."""
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    save_json(_run_file(folder, key), result)
    save_json(out / f"{name}.json", load_runs(out, name))
    return load_runs(out, name)


def markdown_table(rows, columns):
    """``columns``: list of (header, key or callable, format)."""
    def cell(row, key, fmt):
        value = key(row) if callable(key) else row.get(key)
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return "-"
        return format(value, fmt) if fmt and not isinstance(value, str) else str(value)

    lines = ["| " + " | ".join(c[0] for c in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(cell(row, k, f) for _, k, f in columns) + " |")
    return "\n".join(lines)


def pyplot():
    """matplotlib.pyplot with the Agg backend, or None when matplotlib is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save_figure(fig, path):
    """Small PNGs (well under 200 KB)."""
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def add_common_args(parser):
    parser.add_argument("--quick", action="store_true", help="tiny problem, a few seconds")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None,
                        help="results folder (default benchmarks/results; ./results-quick "
                             "with --quick)")
    return parser
