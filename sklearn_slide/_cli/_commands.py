"""What the commands do: train, predict, evaluate and info.

Each takes the parsed arguments; results go to standard output (or the
``-o`` file), progress and status lines to standard error.  Problems a user
can fix raise ``FileProblem`` (a file) or ``UsageError`` (the command
line); ``main`` turns them into messages and exit statuses.
"""

import json
import os
import sys
import time

import joblib
import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

from .._classifier import SlideClassifier
from ..datasets import iter_xc, load_xc, read_xc_header
from ..metrics import inverse_propensity, ndcg_at_k, precision_at_k, psprecision_at_k
from ._errors import FileProblem, UsageError
from ._estimator_options import estimator_parameters
from ._prediction_files import PredictionWriter, check_writable, output_file, replaced_on_success

# Parameters that change how a fitted model predicts (predict and evaluate
# accept them); the others only matter for training.
PREDICTION_PARAMETERS = ("inference", "n_probes", "precision", "n_threads")

# Where train's defaults differ from the estimator's: a user at a terminal
# wants to see the epochs go by.
TRAIN_DEFAULTS = {"verbose": 1}

METRICS = (("P", precision_at_k), ("nDCG", ndcg_at_k), ("PSP", psprecision_at_k))


def status(message):
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ files


def _header(path):
    """``read_xc_header`` with its errors as FileProblem."""
    try:
        return read_xc_header(path)
    except (OSError, ValueError) as exc:
        raise FileProblem(_reading_error(path, exc)) from None


def _reading_error(path, exc):
    if isinstance(exc, OSError):
        return f"cannot read {os.fspath(path)}: {exc.strerror or exc}"
    return str(exc)  # the reader's messages name the file and the line


def _check_fits_model(path, model, with_labels):
    """The header of an XC file to predict on, checked against the model.

    Returns ``(n_rows, n_features, n_labels)``.
    """
    n_rows, n_features, n_labels = _header(path)
    if n_features > model.n_features_in_:
        raise FileProblem(
            f"{path} has {n_features:,} features (its header) but the model was trained "
            f"on {model.n_features_in_:,}"
        )
    if with_labels and n_labels > len(model.classes_):
        raise FileProblem(
            f"{path} has {n_labels:,} labels (its header) but the model was trained "
            f"on {len(model.classes_):,}"
        )
    return n_rows, n_features, n_labels


def _blocks(path, model, block_rows, with_labels):
    """(X, Y) row blocks of an XC file, in the model's widths."""
    n_labels = len(model.classes_) if with_labels else None
    try:
        yield from iter_xc(path, block_rows, n_features=model.n_features_in_, n_labels=n_labels)
    except (OSError, ValueError) as exc:
        raise FileProblem(_reading_error(path, exc)) from None


def load_model(path):
    """The fitted SlideClassifier saved in ``path`` by ``train``.

    Arrays are memory-mapped: the model is not copied into memory, and
    several processes predicting with it share the pages.
    """
    try:
        model = joblib.load(path, mmap_mode="r")
    except OSError as exc:
        raise FileProblem(f"cannot read model {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # unpickling a foreign file can raise anything
        raise FileProblem(
            f"{path} is not a sklearn-slide model file ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(model, SlideClassifier):
        raise FileProblem(f"{path} holds a {type(model).__name__}, not a SlideClassifier")
    try:
        check_is_fitted(model)
    except Exception:
        raise FileProblem(f"{path} holds a SlideClassifier that was never fitted") from None
    return model


def _set_prediction_parameters(model, args):
    params = estimator_parameters(args)
    if params:
        model.set_params(**params)
        model._validate_params()


# --------------------------------------------------------------- commands


def train(args):
    params = {**TRAIN_DEFAULTS, **estimator_parameters(args)}
    model = SlideClassifier(**params)
    model._validate_params()  # before reading a large file
    check_writable(args.output)
    start = time.perf_counter()
    try:
        X, Y = load_xc(args.train)
    except (OSError, ValueError) as exc:
        raise FileProblem(_reading_error(args.train, exc)) from None
    status(f"read {args.train}: {X.shape[0]:,} rows, {X.shape[1]:,} features, "
           f"{Y.shape[1]:,} labels ({time.perf_counter() - start:.1f} s)")
    if args.validation is not None:  # fail before training, not after it
        n_rows, n_features, n_labels = _header(args.validation)
        if n_features > X.shape[1] or n_labels > Y.shape[1]:
            raise FileProblem(
                f"{args.validation} has {n_features:,} features and {n_labels:,} labels "
                f"(its header); {args.train} has only {X.shape[1]:,} and {Y.shape[1]:,}"
            )
    start = time.perf_counter()
    model.fit(X, Y)
    status(f"trained {model.n_iter_} epochs in {time.perf_counter() - start:.1f} s")
    del X, Y
    with replaced_on_success(args.output) as tmp:
        joblib.dump(model, tmp)
    status(f"saved the model to {args.output} ({os.path.getsize(args.output):,} bytes)")
    if args.validation is not None:
        scores = evaluate_file(model, args.validation, args.k, args.block_rows)
        print(f"validation ({args.validation}):")
        print(format_scores(scores, args.k))


def predict(args):
    model = load_model(args.model)
    _set_prediction_parameters(model, args)
    n_rows, _, _ = _check_fits_model(args.test, model, with_labels=False)
    check_writable(args.output)
    n_labels = len(model.classes_)
    if not 1 <= args.k <= n_labels:
        raise UsageError(f"-k {args.k}: the model has {n_labels:,} labels")
    start = time.perf_counter()
    with output_file(args.output) as out:
        writer = PredictionWriter(out, args.format, n_rows, n_labels)
        for X, _ in _blocks(args.test, model, args.block_rows, with_labels=False):
            if args.probabilities:
                writer.write(*_ranked(model.predict_proba(X, k=args.k), args.k))
            else:
                writer.write(*model.predict_topk(X, k=args.k))
    if args.output not in (None, "-"):
        seconds = time.perf_counter() - start
        status(f"wrote the top {args.k} labels of {n_rows:,} rows to {args.output} "
               f"({seconds:.1f} s, {n_rows / max(seconds, 1e-9):,.0f} rows/s)")


def _ranked(top, k):
    """(labels, scores) best first of a ``predict_proba(X, k)`` CSR (k entries a row)."""
    labels, scores = top.indices.reshape(-1, k), top.data.reshape(-1, k)
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.take_along_axis(labels, order, axis=1), np.take_along_axis(scores, order, axis=1)


def evaluate_file(model, path, k_values, block_rows):
    """``{"P@k": ..., "nDCG@k": ..., "PSP@k": ...}`` of ``model`` on an XC file.

    The file is read and ranked a block at a time: the memory held is the
    top-k labels and the true labels of every row, never all of X.
    PSP's propensities come from the model's training label counts.
    """
    n_rows, _, _ = _check_fits_model(path, model, with_labels=True)
    if n_rows == 0:
        raise FileProblem(f"{path} has no rows to evaluate on")
    k_max = max(k_values)
    if k_max > len(model.classes_):
        raise UsageError(f"-k {k_max}: the model has {len(model.classes_):,} labels")
    ranked, truth = [], []
    for X, Y in _blocks(path, model, block_rows, with_labels=True):
        ranked.append(model.predict_topk(X, k=k_max)[0])
        truth.append(Y)
    labels, Y = np.vstack(ranked), sp.vstack(truth, format="csr")
    inv_propensity = inverse_propensity(model.label_counts_, int(model.n_samples_seen_))
    scores = {}
    for name, metric in METRICS:
        for k in k_values:
            extra = {"inv_propensity": inv_propensity} if name == "PSP" else {}
            scores[f"{name}@{k}"] = metric(Y, labels, k=k, **extra)
    return scores


def format_scores(scores, k_values):
    """The metrics as a table: one row per metric, one column per k."""
    lines = ["      " + "".join(f"{'@' + str(k):>8}" for k in k_values)]
    for name, _ in METRICS:
        lines.append(f"{name:<6}" + "".join(f"{scores[f'{name}@{k}']:>8.4f}" for k in k_values))
    return "\n".join(lines)


def evaluate(args):
    model = load_model(args.model)
    _set_prediction_parameters(model, args)
    start = time.perf_counter()
    scores = evaluate_file(model, args.test, args.k, args.block_rows)
    seconds = time.perf_counter() - start
    if args.json:
        print(json.dumps(scores, indent=2))
    else:
        print(format_scores(scores, args.k))
        status(f"evaluated {args.test} in {seconds:.1f} s")


def model_summary(model, path):
    """What ``info`` reports, as a JSON-ready dict."""
    return {
        "file": os.fspath(path),
        "file_bytes": os.path.getsize(path),
        "n_features": int(model.n_features_in_),
        "n_labels": len(model.classes_),
        "n_samples_seen": int(model.n_samples_seen_),
        "n_iter": int(model.n_iter_),
        "loss_curve": [float(loss) for loss in model.loss_curve_],
        "learning_rate": float(model.learning_rate_),
        "validation_scores": model.validation_scores_,
        "parameters": model.get_params(deep=False),
    }


def info(args):
    summary = model_summary(load_model(args.model), args.model)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return
    parameters = summary.pop("parameters")
    losses = summary.pop("loss_curve")
    for key, value in summary.items():
        print(f"{key:<26} {value:,}" if isinstance(value, int) else f"{key:<26} {value}")
    print(f"{'loss per epoch':<26} " + " ".join(f"{loss:.4f}" for loss in losses))
    print("parameters:")
    for name, value in parameters.items():
        print(f"  {name:<24} {value!r}")
