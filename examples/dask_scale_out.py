"""
Scale out with Dask: grid search, top-k prediction, streaming and data-parallel training
========================================================================================

Usage::

    python examples/dask_scale_out.py              # 2-worker LocalCluster, a few minutes
    python examples/dask_scale_out.py --quick      # small problem, seconds (used by the tests)
    python examples/dask_scale_out.py --scheduler tcp://host:8786   # an existing cluster

Needs the dask extra: pip install "sklearn-slide[dask]". The streaming part
writes its training blocks as XC-format files to a temporary directory and
loads them on the workers, so with --scheduler the workers must see this
machine's temporary directory (same machine or a shared file system); pass
--blocks-dir to put them elsewhere. The data-parallel part sends each worker
its rows from this process (no shared files needed).
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import GridSearchCV

from sklearn_slide import SlideClassifier
from sklearn_slide.datasets import dump_xc, load_xc, make_extreme_multilabel
from sklearn_slide.metrics import precision_at_k, xmc_scorer

try:
    import dask
    import dask.array as da
    from distributed import Client, LocalCluster

    from sklearn_slide import dask as slide_dask
except ImportError as exc:
    sys.exit(f'this example needs dask and distributed: pip install "sklearn-slide[dask]" ({exc})')


def grid_search(client, X, Y, args):
    """Path 1: GridSearchCV over hash parameters, one fit per task on the workers."""
    search = GridSearchCV(
        # candidates="lsh": the hash tables (and so their parameters) are used.
        SlideClassifier(hash_family="dwta", candidates="lsh", max_iter=args.epochs,
                        random_state=args.seed),
        {"hash_bits": [4, 6], "n_tables": [16, 32]},
        scoring=xmc_scorer(k_values=(1, 5)),
        refit="P@1",
        cv=2,
    )
    start = time.perf_counter()
    # Scatters X and Y once; n_threads=None becomes the workers' per-task share of cores.
    slide_dask.search_on_cluster(search, X, Y, client=client)
    seconds = time.perf_counter() - start
    results = search.cv_results_
    print(f"grid search: {len(results['params'])} candidates x 2 folds in {seconds:.1f} s")
    for params, p1, p5 in zip(
        results["params"], results["mean_test_P@1"], results["mean_test_P@5"]
    ):
        print(f"  hash_bits={params['hash_bits']} n_tables={params['n_tables']:>2}: "
              f"P@1 {p1:.3f}  P@5 {p5:.3f}")
    print(f"  best {search.best_params_} (P@1 {search.best_score_:.3f})")
    return search.best_estimator_


def distributed_prediction(client, model, X_test, Y_test, args):
    """Path 2: top-k of row blocks on the workers; only (n, k) arrays come back."""
    start = time.perf_counter()
    labels, scores = slide_dask.predict_topk(
        model, X_test, k=5, client=client, block_rows=args.block_rows
    )
    seconds = time.perf_counter() - start
    local = model.predict_topk(X_test, k=5)
    same = np.array_equal(labels, local[0]) and np.array_equal(scores, local[1])
    print(f"predict_topk over {X_test.shape[0]:,} rows in blocks of {args.block_rows:,}: "
          f"{seconds:.2f} s, P@1 {precision_at_k(Y_test, labels, k=1):.3f}  "
          f"P@5 {precision_at_k(Y_test, labels, k=5):.3f}, equal to local: {same}")

    # The same on a Dask array with sparse chunks: lazy results, computed together.
    X_dask = da.from_array(X_test, chunks=(args.block_rows, -1), asarray=False)
    lazy_labels, lazy_scores = slide_dask.predict_topk(model, X_dask, k=5)
    labels, scores = dask.compute(lazy_labels, lazy_scores)
    same = np.array_equal(labels, local[0]) and np.array_equal(scores, local[1])
    print(f"predict_topk of a {X_dask.numblocks[0]}-chunk Dask array: equal to local: {same}")


def streaming_training(client, X, Y, X_test, Y_test, args):
    """Path 3: one model trained by a chain of partial_fit calls over files."""
    n_labels = Y.shape[1]
    with tempfile.TemporaryDirectory(dir=args.blocks_dir) as folder:
        # Stand-in for a data set larger than memory: one file per row block.
        paths = []
        for i, start in enumerate(range(0, X.shape[0], args.block_rows)):
            path = Path(folder) / f"block-{i:04d}.txt"
            dump_xc(X[start:start + args.block_rows], Y[start:start + args.block_rows], path)
            paths.append(str(path))
        # Each block is read on a worker, a couple of steps ahead of the training.
        loads = [
            dask.delayed(load_xc)(path, n_features=X.shape[1], n_labels=n_labels)
            for path in paths
        ]
        model = SlideClassifier(hash_family="dwta", random_state=args.seed)
        start = time.perf_counter()
        model = slide_dask.partial_fit_stream(
            model, loads, classes=n_labels, epochs=args.epochs, client=client
        )
        seconds = time.perf_counter() - start
    labels, _ = model.predict_topk(X_test, k=5)
    print(f"partial_fit_stream: {len(paths)} blocks x {args.epochs} epochs in {seconds:.1f} s "
          f"(loss {model.loss_curve_[0]:.3f} -> {model.loss_curve_[-1]:.3f}), "
          f"P@1 {precision_at_k(Y_test, labels, k=1):.3f}")


def distributed_training(client, X, Y, X_test, Y_test, args):
    """Path 4: one model trained on every worker at once (data parallel), against fit."""
    params = {"hash_family": "dwta", "max_iter": args.epochs, "random_state": args.seed}
    start = time.perf_counter()
    local = SlideClassifier(**params).fit(X, Y)
    local_seconds = time.perf_counter() - start
    rounds = []
    start = time.perf_counter()
    # Each worker trains a replica on its share of the rows; the replicas are
    # merged every sync_every batches (and at the hash-table rebuilds).
    model = slide_dask.fit_distributed(SlideClassifier(**params), X, Y, client=client,
                                       sync_every=args.sync_every, callback=rounds.append)
    seconds = time.perf_counter() - start
    rounds = [r for r in rounds if r["kind"] == "round"]
    sent = sum(r["bytes_up"] + r["bytes_down"] for r in rounds) / max(len(rounds), 1)
    print(f"fit_distributed: {len(client.nthreads())} replicas, {len(rounds)} rounds in "
          f"{seconds:.1f} s ({sent / 1e6:,.1f} MB sent per round), "
          f"P@1 {model.score(X_test, Y_test):.3f}; "
          f"local fit {local_seconds:.1f} s, P@1 {local.score(X_test, Y_test):.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().partition("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small problem, few epochs")
    parser.add_argument("--scheduler", help="address of a running Dask scheduler")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--block-rows", type=int, default=None)
    parser.add_argument("--blocks-dir", default=None, help="where to write the training blocks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sync-every", type=int, default=slide_dask.DEFAULT_SYNC_EVERY,
                        help="batches between the synchronisations of fit_distributed")
    args = parser.parse_args()
    n_train, n_features, n_labels = (
        (1_000, 5_000, 2_000) if args.quick else (20_000, 50_000, 10_000)
    )
    args.epochs = args.epochs or (2 if args.quick else 3)
    args.block_rows = args.block_rows or (200 if args.quick else 2_500)

    X, Y = make_extreme_multilabel(
        n_train + n_train // 4, n_features, n_labels, random_state=args.seed
    )
    X_train, Y_train, X_test, Y_test = X[:n_train], Y[:n_train], X[n_train:], Y[n_train:]
    print(f"train {n_train:,} rows x {X.shape[1]:,} features, {n_labels:,} labels; "
          f"test {X_test.shape[0]:,} rows")

    if args.scheduler:
        cluster, client = None, Client(args.scheduler)
    else:
        # One thread per worker process: each task gets a whole share of cores
        # (search_on_cluster and predict_topk set n_threads to it).
        cluster = LocalCluster(
            n_workers=args.workers, threads_per_worker=1, host="127.0.0.1",
            dashboard_address=None,
        )
        client = Client(cluster)
    try:
        for address, worker in slide_dask.cluster_threads(client).items():
            print(f"worker {address}: {worker['nthreads']} task thread(s), "
                  f"{worker['cores']} cores, n_threads=None -> {worker['openmp_default']}, "
                  f"per task {worker['per_task']}")
        best = grid_search(client, X_train, Y_train, args)
        distributed_prediction(client, best, X_test, Y_test, args)
        streaming_training(client, X_train, Y_train, X_test, Y_test, args)
        distributed_training(client, X_train, Y_train, X_test, Y_test, args)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    main()
