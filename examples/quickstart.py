"""
Quickstart: train SlideClassifier on a generated XMC problem and report P@k
===========================================================================

Usage::

    python examples/quickstart.py                 # generated data, ~1 minute on 2 cores
    python examples/quickstart.py --quick         # a few seconds (used by the tests)
    python examples/quickstart.py --data DIR      # an XC-format train.txt(.gz)/test.txt(.gz) pair
"""

import argparse
import time

from sklearn_slide import SlideClassifier
from sklearn_slide.datasets import load_xc_folder, make_extreme_multilabel
from sklearn_slide.metrics import ndcg_at_k, precision_at_k


def load_data(args):
    if args.data:
        return load_xc_folder(args.data)
    n_train, n_labels = (4_000, 2_000) if args.quick else (50_000, 20_000)
    X, Y = make_extreme_multilabel(
        n_train + n_train // 5, 50_000, n_labels, random_state=args.seed
    )
    return X[:n_train], Y[:n_train], X[n_train:], Y[n_train:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().partition("\n")[0])
    parser.add_argument("--data", help="folder with train.txt[.gz] and test.txt[.gz] (XC format)")
    parser.add_argument("--quick", action="store_true", help="small problem, few epochs")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    X_train, Y_train, X_test, Y_test = load_data(args)
    print(
        f"train {X_train.shape[0]:,} rows x {X_train.shape[1]:,} features, "
        f"{Y_train.shape[1]:,} labels; test {X_test.shape[0]:,} rows"
    )
    epochs = args.epochs or (3 if args.quick else 5)
    clf = SlideClassifier(hash_family="dwta", max_iter=epochs, random_state=args.seed, verbose=1)
    start = time.perf_counter()
    clf.fit(X_train, Y_train)
    fit_seconds = time.perf_counter() - start

    start = time.perf_counter()
    labels, _ = clf.predict_topk(X_test, k=5)
    predict_seconds = time.perf_counter() - start
    print(
        f"P@1 {precision_at_k(Y_test, labels, k=1):.3f}  "
        f"P@5 {precision_at_k(Y_test, labels, k=5):.3f}  "
        f"nDCG@5 {ndcg_at_k(Y_test, labels, k=5):.3f}"
    )
    print(
        f"fit {fit_seconds:.1f} s ({epochs * X_train.shape[0] / fit_seconds:,.0f} samples/s), "
        f"predict {predict_seconds:.2f} s ({X_test.shape[0] / predict_seconds:,.0f} rows/s)"
    )


if __name__ == "__main__":
    main()
