"""Fixed cost of the checks around a fit, separately from training.

    python benchmarks/bench_fit_overhead.py            # 100k rows, 7.4M nonzeros, 10k labels
    python benchmarks/bench_fit_overhead.py --rows 200000   # 15M nonzeros
    python benchmarks/bench_fit_overhead.py --quick

Measures, in CPU-seconds of this process (``--threads``, default 1):

- the Python validation of X and y that ``fit`` runs once, and its three
  checks of X (storage, scikit-learn's validate_data, canonical form: why
  three, ``sklearn_slide/_input.py``);
- ``training_data``: the engine's O(nnz) check of the CSR buffers of X and Y;
  since issue 13 once per fit (the handle is reused by every epoch), before it
  on every epoch;
- an epoch over zero rows with ``check_state=True`` (the first epoch of a call:
  it also scans the hash tables and the per-row Adam steps) and with
  ``check_state=False`` (the later epochs).

The per-epoch saving of a fit is (training_data + first epoch) - later epoch.
"""

import argparse
import time

import numpy as np

from sklearn_slide import SlideClassifier
# _engine: times the engine call alone against the fit around it.
from sklearn_slide import _engine as engine
from sklearn_slide import _training as training
from sklearn_slide._compat import validate_data
from sklearn_slide._input import as_canonical_csr, check_sparse_structure, validate_training_data
from sklearn_slide.datasets import make_extreme_multilabel


def cpu_seconds(fn, repeats):
    start = time.process_time()
    for _ in range(repeats):
        fn()
    return (time.process_time() - start) / repeats


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    shape = (2_000, 5_000, 1_000) if args.quick else (args.rows, 100_000, 10_000)
    X, Y = make_extreme_multilabel(*shape, random_state=0)
    clf = SlideClassifier(hidden_layer_sizes=(16,), hash_family="dwta", candidates="lsh", max_iter=1,
                          n_threads=args.threads, random_state=0)
    fit_seconds = cpu_seconds(lambda: clf.fit(X, Y), 1)
    network = training.FitState.of(clf).network
    options = training.train_config(clf, network)
    no_rows = np.zeros(0, dtype=np.int64)
    data = engine.training_data(X, Y)

    def empty_epoch(check_state):
        return lambda: engine.train_epoch(network["params"], network["tables"], data, no_rows,
                                          options, network["schedule"], check_state)

    rows = {
        "python validation (once per fit)":
            cpu_seconds(lambda: validate_training_data(SlideClassifier(), X, Y, reset=True),
                        args.repeats),
        "  of it, X's storage (check_sparse_structure)":
            cpu_seconds(lambda: check_sparse_structure(X, "X"), args.repeats),
        "  of it, X by scikit-learn's validate_data":
            cpu_seconds(lambda: validate_data(SlideClassifier(), X, accept_sparse="csr",
                                              dtype=np.float32), args.repeats),
        "  of it, X's canonical form (as_canonical_csr)":
            cpu_seconds(lambda: as_canonical_csr(X), args.repeats),
        "training_data: CSR check of X and Y":
            cpu_seconds(lambda: engine.training_data(X, Y), args.repeats),
        "epoch of 0 rows, check_state=True": cpu_seconds(empty_epoch(True), args.repeats),
        "epoch of 0 rows, check_state=False": cpu_seconds(empty_epoch(False), args.repeats),
    }
    print(f"X {X.shape} nnz {X.nnz:,}, Y nnz {Y.nnz:,}, 50 tables; one training epoch "
          f"(fit, max_iter=1) {fit_seconds:.2f} CPU-s")
    for name, seconds in rows.items():
        print(f"  {name:46s} {1e3 * seconds:8.2f} ms")
    before = rows["training_data: CSR check of X and Y"] + rows["epoch of 0 rows, check_state=True"]
    after = rows["epoch of 0 rows, check_state=False"]
    print(f"  saved per epoch after the first                {1e3 * (before - after):8.2f} ms "
          f"({100 * (before - after) / fit_seconds:.2f}% of a training epoch)")


if __name__ == "__main__":
    main()
