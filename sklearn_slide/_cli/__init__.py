"""The ``sklearn-slide`` command line (also ``python -m sklearn_slide``).

    sklearn-slide train TRAIN.txt -o MODEL [--validation FILE] [--PARAMETER VALUE ...]
    sklearn-slide predict MODEL TEST.txt [-k 5] [-o OUT] [--format xc|text]
    sklearn-slide evaluate MODEL TEST.txt [-k 1 3 5] [--json]
    sklearn-slide info MODEL [--json]

Exit status: 0 done; 1 the estimator failed (e.g. training diverged, or a
memory estimate was over the budget); 2 a bad command line or parameter
value; 3 a file that cannot be read or written, is malformed, or does not fit
the model; 130 interrupted.
"""

import argparse
import os
import sys

from .. import __version__
from .._compat import InvalidParameterError
from . import _commands as commands
from ._errors import FileProblem, UsageError
from ._estimator_options import add_parameter_options, parameter_defaults
from ._prediction_files import FORMATS

EXIT_FAILED, EXIT_USAGE, EXIT_FILE, EXIT_INTERRUPTED = 1, 2, 3, 130

_MODEL_TRUST = ("A model file is a pickle: load only models you trust (unpickling can run "
                "arbitrary code).")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _add_block_rows(parser):
    parser.add_argument(
        "--block-rows", type=_positive_int, default=10_000, metavar="N",
        help="rows read, predicted and written at a time: memory stays bounded whatever "
             "the file's size (default: 10000)")


def _add_model_and_data(parser, data_help):
    """MODEL and TEST, the rows per block and the prediction parameters."""
    parser.add_argument("model", metavar="MODEL", help="model saved by train")
    parser.add_argument("test", metavar="TEST", help=data_help)
    _add_block_rows(parser)
    add_parameter_options(parser.add_argument_group("prediction parameters"),
                          commands.PREDICTION_PARAMETERS)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="sklearn-slide",
        description="Train, apply and evaluate SlideClassifier models on Extreme "
                    "Classification Repository files (plain, .gz or .bz2).",
        epilog=__doc__.split("\n\n")[-1].replace("\n", " "),
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"sklearn-slide {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = sub.add_parser(
        "train", allow_abbrev=False, help="fit a model on an XC file and save it",
        description="Fit SlideClassifier on an XC-format file and save the model. Every "
                    "constructor parameter is an option; those not given keep their "
                    "defaults, except --verbose, 1 here (progress within each epoch and a "
                    "line per epoch).")
    train.add_argument("train", metavar="TRAIN", help="training data (XC format)")
    train.add_argument("-o", "--output", required=True, metavar="MODEL",
                       help="file to save the fitted model to")
    train.add_argument("--validation", metavar="FILE",
                       help="XC file to report P@k, nDCG@k and PSP@k on after training")
    train.add_argument("-k", nargs="+", type=_positive_int, default=[1, 3, 5], metavar="K",
                       help="cut-offs of the --validation metrics (default: 1 3 5)")
    _add_block_rows(train)
    defaults = {**parameter_defaults(), **commands.TRAIN_DEFAULTS}
    add_parameter_options(train.add_argument_group("SlideClassifier parameters"),
                          list(defaults), defaults)
    train.set_defaults(run=commands.train)

    predict = sub.add_parser(
        "predict", allow_abbrev=False, help="write the top-k labels of each row",
        description="Write the top-k labels and scores (output-layer logits, higher is "
                    "better, or probabilities with --probabilities) of every row of an XC "
                    "file, reading, predicting and writing a block of rows at a time. "
                    + _MODEL_TRUST)
    _add_model_and_data(predict, "data to predict on (XC format)")
    predict.add_argument("-k", type=_positive_int, default=5, help="labels per row (default: 5)")
    predict.add_argument("-o", "--output", metavar="OUT",
                         help="output file (.gz/.bz2 compress); default: standard output")
    predict.add_argument(
        "--format", choices=FORMATS, default="xc",
        help="xc: header 'n_rows n_labels', then one line of 'label:score' pairs per row "
             "(XC repository score files); text: one 'row label score' line per "
             "prediction (default: xc)")
    predict.add_argument(
        "--probabilities", action="store_true",
        help="write softmax probabilities (predict_proba(X, k)) instead of logits; this "
             "scores every label, whatever --inference")
    predict.set_defaults(run=commands.predict)

    evaluate = sub.add_parser(
        "evaluate", allow_abbrev=False, help="P@k, nDCG@k and PSP@k on a labelled XC file",
        description="Rank the rows of a labelled XC file and report P@k, nDCG@k and PSP@k "
                    "(propensities from the model's training label counts, A=0.55, "
                    "B=1.5). " + _MODEL_TRUST)
    _add_model_and_data(evaluate, "labelled data (XC format)")
    evaluate.add_argument("-k", nargs="+", type=_positive_int, default=[1, 3, 5], metavar="K",
                          help="cut-offs (default: 1 3 5)")
    evaluate.add_argument("--json", action="store_true", help="print a JSON object")
    evaluate.set_defaults(run=commands.evaluate)

    info = sub.add_parser(
        "info", allow_abbrev=False, help="describe a saved model",
        description="Sizes, training history and parameters of a saved model. "
                    + _MODEL_TRUST)
    info.add_argument("model", metavar="MODEL", help="model saved by train")
    info.add_argument("--json", action="store_true", help="print a JSON object")
    info.set_defaults(run=commands.info)
    return parser


def main(argv=None):
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with status 2 on a bad command line
    prog = f"{parser.prog} {args.command}"
    try:
        args.run(args)
    except (UsageError, InvalidParameterError) as exc:
        return _fail(prog, exc, EXIT_USAGE)
    except FileProblem as exc:
        return _fail(prog, exc, EXIT_FILE)
    except KeyboardInterrupt:
        return _fail(prog, "interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        # The reader of standard output went away (e.g. `| head`): stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except (ValueError, RuntimeError, MemoryError, OSError) as exc:
        return _fail(prog, exc, EXIT_FAILED)
    return 0


def _fail(prog, error, code):
    print(f"{prog}: error: {error}", file=sys.stderr)
    return code
