"""Time ``load_xc`` against a plain-Python line-by-line reader.

Writes a synthetic dataset in the Extreme Classification Repository format
(plain text and gzip), then loads it with both readers and prints a table.

Usage::

    python benchmarks/bench_xc_reader.py           # ~50 MB text file
    python benchmarks/bench_xc_reader.py --quick   # ~5 MB, a few seconds
"""

import argparse
import gzip
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from sklearn_slide.datasets import dump_xc, load_xc, make_extreme_multilabel


def load_xc_python(path):
    """Reference reader: one Python ``split`` per line and per token."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as fh:
        n_points, n_features, n_labels = map(int, fh.readline().split())
        x_indptr, x_indices, x_data = [0], [], []
        y_indptr, y_indices = [0], []
        for line in fh:
            fields = line.rstrip("\n").split(" ")
            if fields[0] and ":" not in fields[0]:
                y_indices.extend(int(label) for label in fields[0].split(","))
                fields = fields[1:]
            for field in fields:
                if field:
                    index, value = field.split(":")
                    x_indices.append(int(index))
                    x_data.append(float(value))
            x_indptr.append(len(x_indices))
            y_indptr.append(len(y_indices))
    X = sp.csr_matrix(
        (np.array(x_data, dtype=np.float32), np.array(x_indices), np.array(x_indptr)),
        shape=(n_points, n_features),
    )
    Y = sp.csr_matrix(
        (np.ones(len(y_indices), dtype=np.int32), np.array(y_indices), np.array(y_indptr)),
        shape=(n_points, n_labels),
    )
    X.sort_indices()
    Y.sort_indices()
    return X, Y


def best_time(func, path, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = func(path)
        times.append(time.perf_counter() - start)
    return min(times), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small file (~5 MB)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per reader (best is shown)")
    parser.add_argument("--out", default=None, help="results folder (default benchmarks/results; "
                        "./results-quick with --quick)")
    args = parser.parse_args()
    lines = []

    def emit(text):
        print(text, flush=True)
        lines.append(text)

    # About 1.4 kB of text per row at the default 75 non-zeros per row.
    n_samples = 3_700 if args.quick else 37_000
    X, Y = make_extreme_multilabel(n_samples, 100_000, 30_000, random_state=0)
    emit(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
         f"numpy {np.__version__}, {time.strftime('%Y-%m-%d %H:%M')}, "
         f"load average {os.getloadavg()[0]:.1f}")
    emit(f"# data: {X.shape[0]} rows, {X.nnz} features nnz, {Y.nnz} labels nnz")
    emit(f"{'file':<12} {'MB':>7} {'reader':<12} {'seconds':>8} {'text MB/s':>9} {'speed-up':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("train.txt", "train.txt.gz"):
            path = os.path.join(tmp, name)
            dump_xc(X, Y, path)
            size = os.path.getsize(path) / 1e6
            # Throughput is per byte of text, also for the gzip file.
            text_size = os.path.getsize(os.path.join(tmp, "train.txt")) / 1e6
            t_fast, (X1, Y1) = best_time(load_xc, path, args.repeat)
            t_slow, (X2, Y2) = best_time(load_xc_python, path, 1 if not args.quick else args.repeat)
            assert (X1 != X2).nnz == 0 and (Y1 != Y2).nnz == 0, "readers disagree"
            for reader, seconds in (("load_xc", t_fast), ("pure Python", t_slow)):
                emit(f"{name:<12} {size:7.1f} {reader:<12} {seconds:8.2f} "
                     f"{text_size / seconds:9.1f} {t_slow / seconds:7.1f}x")
    out = Path(args.out) if args.out else (
        Path.cwd() / "results-quick" if args.quick else Path(__file__).resolve().parent / "results")
    out.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python", "benchmarks/bench_xc_reader.py"] + sys.argv[1:])
    (out / "xc_reader.md").write_text(
        f"Command: `{command}`\n\n```\n" + "\n".join(lines) + "\n```\n")


if __name__ == "__main__":
    main()
