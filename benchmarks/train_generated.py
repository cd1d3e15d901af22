"""Train SlideClassifier on generated XMC data; P@k after every epoch.

    python benchmarks/train_generated.py --labels 100000 --epochs 10
    python benchmarks/train_generated.py --learning-rates "3e-3*8,1e-3*3,3e-4*2"
    python benchmarks/train_generated.py --quick

Evaluation (exact top-5 on the test rows) runs outside the timed region. Prints
one line per epoch and a closing summary with peak RSS.
"""

import argparse
import json
import resource
import time

from sklearn_slide import SlideClassifier
from sklearn_slide.datasets import make_extreme_multilabel
from sklearn_slide.metrics import precision_at_k


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=100_000)
    parser.add_argument("--train", type=int, default=50_000)
    parser.add_argument("--test", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--params", default="{}", help="JSON dict of SlideClassifier parameters")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learning-rates", default=None,
                        help='learning rate of each epoch, "rate*epochs,..." (sets --epochs)')
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rates = _epoch_rates(args.learning_rates) if args.learning_rates else None
    if rates:
        args.epochs = len(rates)
    if args.quick:
        args.labels, args.features, args.train, args.test, args.epochs = 3000, 5000, 3000, 500, 2

    X, Y = make_extreme_multilabel(
        args.train + args.test, args.features, args.labels, random_state=args.seed
    )
    X_train, Y_train = X[: args.train], Y[: args.train]
    X_test, Y_test = X[args.train :], Y[args.train :]
    params = {"hash_family": "dwta", "random_state": args.seed, **json.loads(args.params)}
    clf = SlideClassifier(max_iter=1, warm_start=True, **params)
    print(f"data {args.train:,} train / {args.test:,} test, {args.features:,} features, "
          f"{args.labels:,} labels; params {params}")
    train_seconds = 0.0
    for epoch in range(1, args.epochs + 1):
        if rates:  # a step schedule through warm starts: the Adam state carries over
            clf.set_params(learning_rate=rates[epoch - 1])
        start = time.perf_counter()
        clf.fit(X_train, Y_train)
        train_seconds += time.perf_counter() - start
        start = time.perf_counter()
        labels, _ = clf.predict_topk(X_test, k=5)
        predict_seconds = time.perf_counter() - start
        print(
            f"epoch {epoch:2d}  train {train_seconds:7.1f} s  "
            f"{epoch * args.train / train_seconds:7,.0f} samples/s  "
            f"P@1 {precision_at_k(Y_test, labels, k=1):.3f}  "
            f"P@5 {precision_at_k(Y_test, labels, k=5):.3f}  "
            f"exact top-5 {args.test / predict_seconds:6,.0f} rows/s  "
            f"lr {clf.learning_rate:g}",
            flush=True,
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mb:,.0f} MB (data included)")


def _epoch_rates(text):
    """"3e-3*8,1e-3*2" -> [3e-3] * 8 + [1e-3] * 2."""
    rates = []
    for part in text.split(","):
        rate, _, count = part.partition("*")
        rates += [float(rate)] * int(count or 1)
    return rates


if __name__ == "__main__":
    main()
