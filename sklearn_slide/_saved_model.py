"""What a loaded SlideClassifier must hold before it is used.

A pickle is data from outside: ``__setstate__`` checks it before the
estimator accepts it, so a damaged or hand-edited model is refused with the
name of the bad entry instead of reaching the engine or failing later with an
AttributeError:

- the network: ``_network_state.check_network`` (layout, dtypes, shapes);
- every fitted attribute, against the network it describes: ``classes_`` and
  ``label_counts_`` hold one entry per output neuron (LSH inference turns
  ``label_counts_`` into neuron ids), ``n_features_in_`` is the input width,
  and the scalars the training and prediction code compute with have their
  types and ranges;
- memory-mapped arrays (``joblib.load(..., mmap_mode="r")``): the file behind
  each one must still hold its bytes. Reading a page past the end of a
  truncated file kills the process with SIGBUS, so the same check runs again
  before every native call (``check_mapped_files``).

Array contents are not scanned (a zero-copy load must stay zero-copy); the
binding checks the hash tables and row steps before it relies on them.
"""

import numbers
import os

import numpy as np

from . import _network_state as network_state
from ._targets import TargetKind


def check_saved_state(state):
    """ValueError/TypeError unless the pickled attributes ``state`` (a dict,
    old-pickle defaults already filled in) form a consistent fitted model."""
    network = state["_network"]
    network_state.check_network(network)
    sizes = network["params"]["layer_sizes"]
    n_features, n_labels = int(sizes[0]), int(sizes[-1])
    for name in _FITTED_ATTRIBUTES:
        if name not in state:
            raise ValueError(f"corrupt model: the fitted attribute {name} is missing")
    kind = state["_target_kind"]
    if kind not in (TargetKind.MULTICLASS, TargetKind.MULTILABEL):
        raise ValueError(f"corrupt model: _target_kind is {kind!r}")
    _check_classes(state["classes_"], kind, n_labels)
    counts = state["label_counts_"]
    if not isinstance(counts, np.ndarray) or counts.dtype.kind not in "iu" \
            or counts.shape != (n_labels,):
        raise ValueError(
            f"corrupt model: label_counts_ must be an integer array of shape ({n_labels},), "
            f"one count per label; got {_describe(counts)}"
        )
    if _int_or_none(state["n_features_in_"]) != n_features:
        raise ValueError(
            f"corrupt model: n_features_in_ is {state['n_features_in_']!r} but the network "
            f"takes {n_features} features"
        )
    names = state.get("feature_names_in_")
    if names is not None and (not isinstance(names, np.ndarray) or names.shape != (n_features,)):
        raise ValueError(
            f"corrupt model: feature_names_in_ must name the {n_features} features; got "
            f"{_describe(names)}"
        )
    for name in ("n_samples_seen_", "n_iter_"):
        value = _int_or_none(state[name])
        if value is None or not 0 <= value < 2**63:
            raise ValueError(f"corrupt model: {name} is {state[name]!r}, not an int in "
                             "[0, 2**63)")
    _check_real(state["_mean_labels"], "_mean_labels", 0.0, n_labels)
    _check_real(state["learning_rate_"], "learning_rate_", 0.0, np.inf, low_open=True)
    schedule = state["_lr_schedule"]
    if not isinstance(schedule, dict) or not {"learning_rate", "best", "stalled"} <= schedule.keys():
        raise ValueError(f"corrupt model: _lr_schedule is {schedule!r}")
    _check_real(schedule["learning_rate"], "_lr_schedule['learning_rate']", 0.0, np.inf,
                low_open=True)
    if not isinstance(state["_sparse_output"], (bool, np.bool_)):
        raise ValueError(f"corrupt model: _sparse_output is {state['_sparse_output']!r}")
    # The dtype of y: dense multilabel predictions are built in it (1-D y may
    # hold strings).
    y_dtype = state["_y_dtype"]
    if not isinstance(y_dtype, np.dtype) or (kind == TargetKind.MULTILABEL
                                             and y_dtype.kind not in "biuf"):
        raise ValueError(f"corrupt model: _y_dtype is {y_dtype!r}, not the dtype of a "
                         f"{'multilabel indicator' if kind == TargetKind.MULTILABEL else 'y'}")
    if not isinstance(state["_rng"], np.random.RandomState):
        raise ValueError(f"corrupt model: _rng is {type(state['_rng']).__name__}, "
                         "not a RandomState")
    if not isinstance(state["loss_curve_"], list):
        raise ValueError(f"corrupt model: loss_curve_ is {_describe(state['loss_curve_'])}")
    if state["validation_scores_"] is not None and not isinstance(state["validation_scores_"],
                                                                  list):
        raise ValueError("corrupt model: validation_scores_ is "
                         f"{_describe(state['validation_scores_'])}")
    _check_reranker(state["_reranker"], n_labels)
    check_mapped_files(network, state["_reranker"])


def _check_reranker(weights, n_labels):
    # Shapes and dtypes only; the binding scans indptr and feature ids at use.
    if weights is None:
        return
    want = {"indptr": ("int64", n_labels + 1), "indices": ("int32", None),
            "values": ("float32", None), "bias": ("float32", n_labels)}
    if not isinstance(weights, dict) or set(weights) != set(want):
        raise ValueError(f"corrupt model: _reranker is {_describe(weights)}, not the "
                         f"re-ranker's arrays {sorted(want)}")
    for name, (dtype, size) in want.items():
        value = weights[name]
        if not isinstance(value, np.ndarray) or value.dtype != dtype or value.ndim != 1 \
                or (size is not None and value.size != size):
            raise ValueError(f"corrupt model: _reranker[{name!r}] must be a 1-D {dtype} array"
                             + (f" of {size} values" if size is not None else "")
                             + f"; got {_describe(value)}")
    if weights["indices"].size != weights["values"].size:
        raise ValueError("corrupt model: _reranker's indices and values differ in length")


# The attributes a fit commits (``_training.FitState``) and validation sets.
_FITTED_ATTRIBUTES = (
    "classes_", "_target_kind", "_sparse_output", "_y_dtype", "label_counts_",
    "n_samples_seen_", "n_iter_", "loss_curve_", "_mean_labels", "_lr_schedule",
    "learning_rate_", "validation_scores_", "_rng", "n_features_in_", "_reranker",
)


def _check_classes(classes, kind, n_labels):
    if not isinstance(classes, np.ndarray) or classes.shape != (n_labels,):
        raise ValueError(
            f"corrupt model: classes_ must be a 1-D array of the {n_labels} labels of the "
            f"network; got {_describe(classes)}"
        )
    if kind == TargetKind.MULTICLASS:
        # Class labels are found by binary search in classes_ (np.unique order).
        try:
            ordered = bool(np.all(classes[1:] > classes[:-1]))
        except TypeError:
            ordered = False
        if not ordered:
            raise ValueError("corrupt model: classes_ of a multiclass model must be sorted "
                             "and unique")


def _int_or_none(value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        return None
    return int(value)


def _check_real(value, name, low, high, low_open=False):
    ok = (not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Real)
          and np.isfinite(value) and (value > low if low_open else value >= low)
          and value <= high)
    if not ok:
        bound = "(" if low_open else "["
        raise ValueError(f"corrupt model: {name} is {value!r}, not a finite number in "
                         f"{bound}{low:g}, {high:g}]")


def _describe(value):
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    return f"{type(value).__name__} {value!r:.60}"


def _arrays(network, reranker):
    # Tolerates a damaged network: pickling one must not fail here (its load does).
    for part in (network.get("params"), network.get("tables"), reranker):
        if isinstance(part, dict):
            yield from (v for v in part.values() if isinstance(v, np.ndarray))


def check_mapped_files(network, reranker=None):
    """ValueError when the file behind a memory-mapped array of the network (or
    of the ``reranker``'s weights) is shorter than the array: reading it would
    kill the process (SIGBUS).

    Cheap (one ``stat`` per mapped array); it cannot see a file truncated
    while a call runs, which is why a mapped model's file must not be
    rewritten in place (see docs/reliability.md).
    """
    for array in _arrays(network, reranker):
        mapped = array if isinstance(array, np.memmap) else None
        if mapped is None or not getattr(mapped, "filename", None):
            continue
        try:
            size = os.stat(mapped.filename).st_size
        except OSError as exc:
            raise ValueError(
                f"the memory-mapped model file {mapped.filename} cannot be read ({exc}); "
                "load the model again"
            ) from None
        needed = int(mapped.offset) + mapped.nbytes
        if size < needed:
            raise ValueError(
                f"the memory-mapped model file {mapped.filename} has {size:,} bytes but "
                f"its arrays need {needed:,}: it was truncated or rewritten after "
                "joblib.load(mmap_mode=...); load the model again"
            )
