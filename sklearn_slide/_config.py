"""The estimator's parameters: one table of their constraints and of how each
reaches the engine.

Defaults are written once, in ``SlideClassifier.__init__`` (where users and
``get_params`` read them); the docstring documents each parameter.
tests/test_parameters.py checks that the table, ``__init__`` and the docstring
list the same names, and that the documented defaults are the real ones.

To add a parameter: a row in ``PARAMETERS`` (its scikit-learn constraints;
``engine=True`` when the trainer reads it under the same name; ``before=`` the
value that reproduces models pickled before it existed, if that is not its
default), a keyword in ``__init__`` with its default, and an entry in the
class docstring.
"""

from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np

from ._compat import Interval, StrOptions, validate_parameter_constraints
from ._engine import BOUNDS, HASH_FAMILIES

# Below this many labels, hash_family="auto" trains the output layer exactly:
# scoring every neuron then costs about what hashing and sampling would.
AUTO_EXACT_MAX_LABELS = 4096

# Upper bounds of integer parameters: what the engine's C++ types hold (int,
# int64 with headroom for sums); the thread count OpenMP can create, codes per
# table and tables, from the engine (cpp/slide/bounds.h).
INT32_MAX = 2**31 - 1
INT62_MAX = 2**62
# learning_rate is a float32 in the engine: a larger value would become inf.
FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT64_MAX = float(np.finfo(np.float64).max)  # finite: Interval(Real, 1, None) admits inf
MAX_THREADS = BOUNDS["n_threads"]
MAX_HASH_BITS = BOUNDS["hash_bits"]
MAX_TABLES = BOUNDS["n_tables"]

_NO_PREVIOUS = object()


@dataclass(frozen=True)
class Parameter:
    constraints: list
    # Copied into the engine's TrainConfig, which has a field of this name
    # (``_training.train_config``; its default is checked against ours by a test).
    engine: bool = False
    # What a model pickled before the parameter existed did (when not the default).
    before: Any = field(default=_NO_PREVIOUS)


def _int(low, high=None):
    return [Interval(Integral, low, high, closed="both" if high is not None else "left")]


PARAMETERS = {
    "hidden_layer_sizes": Parameter(["array-like"]),
    "hash_family": Parameter([StrOptions({"auto", *HASH_FAMILIES}), None]),
    "hash_bits": Parameter(_int(1, MAX_HASH_BITS)),  # the network's, fixed at its creation
    "n_tables": Parameter(_int(1, MAX_TABLES)),
    "bucket_size": Parameter(_int(1, INT32_MAX), engine=True),
    "bucket_policy": Parameter([StrOptions({"fifo", "reservoir"})], engine=True),
    "min_active": Parameter(_int(0, INT62_MAX), engine=True),
    "max_active": Parameter(_int(1, INT62_MAX), engine=True),
    "learning_rate": Parameter([Interval(Real, 0, FLOAT32_MAX, closed="right")], engine=True),
    "learning_rate_schedule": Parameter([StrOptions({"constant", "plateau"})]),
    "early_stopping": Parameter(["boolean"], before=False),
    "validation_fraction": Parameter([Interval(Real, 0, 1, closed="neither")]),
    "n_iter_no_change": Parameter(_int(1)),
    "batch_size": Parameter(_int(1, INT32_MAX), engine=True),  # the engine's batch is an int
    "max_iter": Parameter(_int(1)),
    "rehash_interval": Parameter(_int(1, INT62_MAX)),
    "rehash_growth": Parameter([Interval(Real, 1, FLOAT64_MAX, closed="both")], engine=True),
    "rebuild_every": Parameter(_int(0, INT62_MAX), engine=True),
    "adam_updates": Parameter([StrOptions({"lazy", "dense"})], engine=True),
    "logq_correction": Parameter(["boolean"], engine=True, before=False),
    "candidates": Parameter([StrOptions({"clusters", "lsh"})], before="lsh"),
    "dropout": Parameter([Interval(Real, 0, 1, closed="left")], engine=True, before=0.0),
    # "lsh" is deprecated: it predicts as "clusters" (_inference.LSH_DEPRECATION).
    "inference": Parameter([StrOptions({"exact", "clusters", "lsh"}, deprecated={"lsh"})]),
    "n_probes": Parameter([*_int(1, INT32_MAX), None]),
    "reranker": Parameter([StrOptions({"linear"}), None], before=None),
    "reranker_weight": Parameter([Interval(Real, 0, FLOAT32_MAX, closed="both")]),
    "precision": Parameter([StrOptions({"float32", "bfloat16"})]),
    "predict_k": Parameter([*_int(1), None]),
    "shuffle": Parameter(["boolean"]),
    "n_threads": Parameter([*_int(1, MAX_THREADS), None]),
    "random_state": Parameter(["random_state"]),
    "verbose": Parameter(["verbose"]),
    "warm_start": Parameter(["boolean"]),
}

PARAMETER_CONSTRAINTS = {name: p.constraints for name, p in PARAMETERS.items()}

# The parameters each prediction method reads. fit and partial_fit validate
# every parameter (scikit-learn's _validate_params); a prediction validates
# these, so a value changed by set_params after fitting gets the same error
# where it is used instead of reaching the engine.
TOPK_PARAMETERS = ("inference", "n_probes", "precision", "n_threads", "max_active", "reranker",
                   "reranker_weight")
PROBA_PARAMETERS = ("precision", "n_threads", "reranker", "reranker_weight")


def check_parameters(estimator, names):
    """InvalidParameterError (a ValueError and TypeError) for a parameter in
    ``names`` whose value breaks the estimator's constraints."""
    validate_parameter_constraints(
        {name: PARAMETER_CONSTRAINTS[name] for name in names},
        {name: getattr(estimator, name) for name in names},
        caller_name=type(estimator).__name__,
    )


def value_before(name, default):
    """The value a parameter takes in a model pickled before it existed."""
    before = PARAMETERS[name].before
    return default if before is _NO_PREVIOUS else before


def hidden_sizes(hidden_layer_sizes):
    """``hidden_layer_sizes`` as a list of ints; ValueError unless it is a non-empty
    sequence of ints in [1, 2**31 - 1]."""
    sizes = np.atleast_1d(np.asarray(hidden_layer_sizes))
    if sizes.ndim != 1 or sizes.size == 0:
        raise ValueError("hidden_layer_sizes must be a non-empty sequence of positive ints")
    if not all(
        isinstance(s, Integral) and not isinstance(s, bool) and 1 <= s <= INT32_MAX
        for s in sizes.tolist()
    ):
        raise ValueError(
            "hidden_layer_sizes must contain ints in [1, 2**31 - 1], got "
            f"{hidden_layer_sizes!r}"
        )
    return [int(s) for s in sizes]


def resolved_hash_family(hash_family, n_labels):
    """The family the output layer is hashed with, None for exact training."""
    if hash_family == "auto":
        return None if n_labels <= AUTO_EXACT_MAX_LABELS else "dwta"
    return hash_family
