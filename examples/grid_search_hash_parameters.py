"""
Grid search over SlideClassifier's hash parameters, scored by P@k
=================================================================

Usage::

    python examples/grid_search_hash_parameters.py             # generated data, ~1 min on 2 cores
    python examples/grid_search_hash_parameters.py --quick     # a few seconds (used by the tests)
    python examples/grid_search_hash_parameters.py --data DIR  # train.txt[.gz]/test.txt[.gz] (XC)

``GridSearchCV`` cross-validates every combination of ``hash_family``,
``hash_bits``, ``n_tables`` and ``bucket_size`` on the training rows, then
refits the best one and scores it on the held-out test rows.

- Scoring: ``scoring=xmc_scorer()`` calls ``predict_topk`` once per fold and
  returns P@1/3/5, nDCG@1/3/5 and PSP@1/3/5 (propensities from the fold's
  training label counts).  With a dict of metrics, ``refit="P@1"`` names the
  one that picks ``best_params_``; the others land in ``cv_results_`` as
  ``mean_test_<metric>``.
- Sparse labels: ``Y`` stays a CSR indicator matrix throughout (GridSearchCV
  accepts a sparse ``y``; scikit-learn's ``cross_validate`` does not, see
  ``sklearn_slide.model_selection.cross_validate_xmc``).
- Threads: ``SlideClassifier(n_threads=None)`` asks OpenMP for its thread
  count when ``fit`` starts, so it follows the limits of the process it runs
  in.  joblib's default (loky) backend starts its worker processes with
  ``OMP_NUM_THREADS = cpu_count() // n_jobs``: with ``n_jobs=2`` on 2 cores
  every fit of the search runs on 1 thread, 2 in all, and the machine is not
  oversubscribed; the final refit runs in this process on every core.  The
  script prints what the workers resolve.  Measured on a 2-core machine
  (``sklearn_slide.effective_n_threads()``, what ``fit`` calls):
  parent 2; loky workers 1 with ``n_jobs=2`` or ``-1``, 2 with
  ``parallel_config(inner_max_num_threads=2)``; but 2 per worker, 4 in all,
  when ``OMP_NUM_THREADS=2`` is already set in the parent (joblib passes a
  user's value on as is), and 2 per worker with the "threading" and
  "multiprocessing" backends, which set no limit: there, pass
  ``n_threads=1``.  Dask workers start with ``OMP_NUM_THREADS=1``.
  ``tests/test_model_selection.py`` checks the loky case inside ``fit``.

On generated data (10,000 labels) the family and the number of codes matter
most: SimHash with 8 bits per table found the right labels best, and a small
``bucket_size`` ruins tables with few buckets (SimHash with 4 bits: 16
buckets per table of ~600 labels each, of which 32 are kept).  DWTA buckets
are small at these sizes, so ``bucket_size`` changes nothing there.  With
few labels (``--data`` on bibtex: 159) the settings land within 0.05 of P@1.
"""

import argparse
import time

from sklearn.model_selection import GridSearchCV, KFold
from sklearn.utils.parallel import Parallel, delayed

from sklearn_slide import SlideClassifier, effective_n_threads
from sklearn_slide.datasets import load_xc_folder, make_extreme_multilabel
from sklearn_slide.metrics import xmc_scorer

# Default mode: 2 families x 2 code counts x 2 table counts x 2 bucket caps.
PARAM_GRID = {
    "hash_family": ["dwta", "simhash"],
    "hash_bits": [4, 8],
    "n_tables": [16, 48],
    "bucket_size": [32, 128],
}
# Quick mode: every parameter is still in the grid, two of them vary.
QUICK_PARAM_GRID = {
    "hash_family": ["dwta", "simhash"],
    "hash_bits": [6],
    "n_tables": [8, 24],
    "bucket_size": [64],
}
COLUMNS = ("hash_family", "hash_bits", "n_tables", "bucket_size")


def load_data(args):
    """(X_train, Y_train, X_test, Y_test), all CSR."""
    if args.data:
        return load_xc_folder(args.data)
    n_train, n_features, n_labels = (1_500, 3_000, 1_000) if args.quick else (9_000, 20_000, 10_000)
    X, Y = make_extreme_multilabel(
        n_train + n_train // 4, n_features, n_labels, random_state=args.seed
    )
    return X[:n_train], Y[:n_train], X[n_train:], Y[n_train:]


def format_table(cv_results):
    """Candidates sorted by rank: parameters, mean CV P@1, P@5, PSP@5, fit time."""
    header = f"{'rank':>4}  " + "  ".join(f"{c:>11}" for c in COLUMNS)
    header += f"  {'P@1':>6}  {'P@5':>6}  {'PSP@5':>6}  {'fit s':>6}"
    lines = [header, "-" * len(header)]
    order = sorted(range(len(cv_results["params"])), key=lambda i: cv_results["rank_test_P@1"][i])
    for i in order:
        params = cv_results["params"][i]
        lines.append(
            f"{cv_results['rank_test_P@1'][i]:>4}  "
            + "  ".join(f"{params[c]!s:>11}" for c in COLUMNS)
            + f"  {cv_results['mean_test_P@1'][i]:6.3f}  {cv_results['mean_test_P@5'][i]:6.3f}"
            + f"  {cv_results['mean_test_PSP@5'][i]:6.3f}  {cv_results['mean_fit_time'][i]:6.2f}"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().partition("\n")[0])
    parser.add_argument("--data", help="folder with train.txt[.gz] and test.txt[.gz] (XC format)")
    parser.add_argument("--quick", action="store_true", help="small problem and grid, few epochs")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per fit")
    parser.add_argument("--n-jobs", type=int, default=2, help="parallel fits (joblib)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    X_train, Y_train, X_test, Y_test = load_data(args)
    print(
        f"train {X_train.shape[0]:,} rows x {X_train.shape[1]:,} features, "
        f"{Y_train.shape[1]:,} labels (Y: {type(Y_train).__name__}); test {X_test.shape[0]:,} rows"
    )
    # What n_threads=None becomes inside the search's worker processes: this
    # Parallel call uses the same loky workers GridSearchCV will reuse.
    worker_threads = Parallel(n_jobs=args.n_jobs)(
        delayed(effective_n_threads)(None) for _ in range(max(args.n_jobs, 1))
    )
    print(
        f"threads per fit (n_threads=None): {sorted(set(worker_threads))} in the "
        f"n_jobs={args.n_jobs} workers, {effective_n_threads(None)} in this process (refit)"
    )

    epochs = args.epochs or (2 if args.quick else 3)
    estimator = SlideClassifier(
        # Negatives from SLIDE's hash tables (the default, "clusters", builds
        # none). A small hidden layer and few random negatives: the active set
        # is mostly what the tables retrieve, so their parameters matter.
        candidates="lsh",
        hidden_layer_sizes=(64,),
        min_active=32,
        max_iter=epochs,
        random_state=args.seed,
    )
    search = GridSearchCV(
        estimator,
        QUICK_PARAM_GRID if args.quick else PARAM_GRID,
        scoring=xmc_scorer(k_values=(1, 3, 5)),
        refit="P@1",
        cv=KFold(2, shuffle=True, random_state=args.seed),
        n_jobs=args.n_jobs,
    )
    start = time.perf_counter()
    search.fit(X_train, Y_train)
    search_seconds = time.perf_counter() - start
    n_fits = len(search.cv_results_["params"]) * search.n_splits_
    print(
        f"\n{n_fits} fits ({search.n_splits_}-fold CV, {epochs} epochs each) "
        f"in {search_seconds:.1f} s; mean over folds:"
    )
    print(format_table(search.cv_results_))

    test_scores = search.scorer_(search.best_estimator_, X_test, Y_test)
    print(f"\nbest (refit='P@1'): {search.best_params_}")
    print(
        f"refit on all {X_train.shape[0]:,} training rows in {search.refit_time_:.1f} s; test "
        + "  ".join(f"{name} {test_scores[name]:.3f}" for name in ("P@1", "P@3", "P@5", "PSP@5"))
    )


if __name__ == "__main__":
    main()
