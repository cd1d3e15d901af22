"""
Training curves: P@1 against training wall time, and the loss per epoch
=======================================================================

Usage::

    python examples/plot_training_curve.py              # generated data, about a minute on 2 cores
    python examples/plot_training_curve.py --quick      # a few seconds (used by the tests)
    python examples/plot_training_curve.py --data DIR   # an XC train.txt(.gz)/test.txt(.gz) pair
    python examples/plot_training_curve.py --output curve.png

Trains two networks of the same shape one epoch at a time with
``partial_fit``: SLIDE (``hash_family="dwta"``: each sample trains only the
output neurons its hash tables retrieve, plus its labels and a few random
negatives) and the exact softmax (``hash_family=None``: every output neuron,
every sample).  Only ``partial_fit`` is timed; P@1 on the test rows is
computed after each epoch, outside the timed region.  The PNG has two
panels: test P@1 against cumulative training time, and the mean training
loss per epoch (``loss_curve_``; for SLIDE the softmax runs over the active
set only, so its loss is lower than the full cross-entropy).

On generated data (10,000 labels) SLIDE runs an epoch about 3x faster and
reaches a given P@1 sooner, while the exact softmax gains more per epoch.
With fewer labels than ``min_active`` (512; bibtex has 159) SLIDE's active
set is every label: both curves coincide, and hashing only costs time.

Needs matplotlib (the ``plot`` extra: ``pip install "sklearn-slide[plot]"``).
"""

import argparse
import sys
import time
from pathlib import Path

from sklearn_slide import SlideClassifier
from sklearn_slide.datasets import load_xc_folder, make_extreme_multilabel
from sklearn_slide.metrics import precision_at_k

MATPLOTLIB_MISSING = (
    "plot_training_curve.py needs matplotlib, which is not installed.\n"
    'Install it with the plot extra, pip install "sklearn-slide[plot]", or pip install matplotlib.'
)


def import_pyplot():
    """matplotlib.pyplot with a file-only backend, or exit with install advice."""
    try:
        import matplotlib
    except ImportError:
        sys.exit(MATPLOTLIB_MISSING)
    # Agg draws to files only: works without a display (CI, ssh).
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def load_data(args):
    """(X_train, Y_train, X_test, Y_test), all CSR."""
    if args.data:
        return load_xc_folder(args.data)
    quick = args.quick
    n_train, n_features, n_labels = (2_000, 3_000, 1_000) if quick else (10_000, 20_000, 10_000)
    X, Y = make_extreme_multilabel(
        n_train + n_train // 5, n_features, n_labels, random_state=args.seed
    )
    return X[:n_train], Y[:n_train], X[n_train:], Y[n_train:]


def train_curve(clf, X_train, Y_train, X_test, Y_test, epochs):
    """Cumulative training seconds, test P@1 and training loss after each epoch."""
    seconds, p_at_1 = [], []
    elapsed = 0.0
    for _ in range(epochs):
        start = time.perf_counter()
        clf.partial_fit(X_train, Y_train)
        elapsed += time.perf_counter() - start
        # Evaluation is outside the timed region: the x axis is training time only.
        labels, _ = clf.predict_topk(X_test, k=1)
        seconds.append(elapsed)
        p_at_1.append(precision_at_k(Y_test, labels, k=1))
        print(
            f"  epoch {clf.n_iter_:>2}: {elapsed:6.1f} s  loss {clf.loss_curve_[-1]:.3f}  "
            f"P@1 {p_at_1[-1]:.3f}",
            flush=True,
        )
    return seconds, p_at_1, list(clf.loss_curve_)


def plot(curves, title, output, plt):
    fig, (ax_p, ax_loss) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for name, (seconds, p_at_1, loss) in curves.items():
        ax_p.plot(seconds, p_at_1, marker="o", label=name)
        ax_loss.plot(range(1, len(loss) + 1), loss, marker="o", label=name)
    ax_p.set(xlabel="training time (s)", ylabel="test P@1", title="P@1 vs training time")
    ax_p.set_xlim(left=0)
    ax_loss.set(xlabel="epoch", ylabel="mean training loss", title="loss curve")
    ax_loss.set_xticks(range(1, max(len(c[2]) for c in curves.values()) + 1))
    for ax in (ax_p, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.savefig(output, dpi=100)
    # Left open: the documentation's gallery shows the figures a script leaves.


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().partition("\n")[0])
    parser.add_argument("--data", help="folder with train.txt[.gz] and test.txt[.gz] (XC format)")
    parser.add_argument("--quick", action="store_true", help="small problem, few epochs")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--output", default="training_curve.png", help="PNG to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    # Fail before minutes of training, not after.
    plt = import_pyplot()

    X_train, Y_train, X_test, Y_test = load_data(args)
    print(
        f"train {X_train.shape[0]:,} rows x {X_train.shape[1]:,} features, "
        f"{Y_train.shape[1]:,} labels; test {X_test.shape[0]:,} rows"
    )
    epochs = args.epochs or (3 if args.quick else 5)
    # Same network, same seed; only the output layer's training differs.
    shape = {"hidden_layer_sizes": (64,), "random_state": args.seed}
    models = {
        "SLIDE (dwta)": SlideClassifier(hash_family="dwta", **shape),
        "exact softmax": SlideClassifier(hash_family=None, **shape),
    }
    curves = {}
    for name, clf in models.items():
        print(name)
        curves[name] = train_curve(clf, X_train, Y_train, X_test, Y_test, epochs)

    source = Path(args.data).name if args.data else "generated"
    plot(
        curves,
        f"{source}: {X_train.shape[0]:,} rows, {Y_train.shape[1]:,} labels",
        args.output,
        plt,
    )
    print(f"wrote {Path(args.output).resolve()}")


if __name__ == "__main__":
    main()
