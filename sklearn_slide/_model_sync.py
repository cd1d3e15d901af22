"""Synchronising replicas of one network: what a replica sends after a round,
how the coordinator combines the replicas' changes, and the update it sends back.

A round starts with every replica holding the coordinator's (the master's)
arrays. Each replica trains some Adam steps on its rows; afterwards it sends
its **changes**: for the two row-sparse layers (the input layer, one row per
feature, and the output layer, one row per label, with its biases) only the
rows it updated in the round (``row_step`` past the round's first step), with
their weights, Adam moments and row steps; every other array (hidden biases,
hidden layers after the first) whole. The coordinator combines the changes
into the master (``merge``) and sends every replica the master's new values
of the rows any replica changed: the **update**, which makes the replicas
equal to the master again. Changes and updates have the same layout::

    {"rows": {group: (row ids int64, {key: values at those rows})},
     "dense": {key: array}}

Combination rules (``RULES``), per row r, from the master's old value ``w``
and the values ``v_k`` of the replicas k that changed the row (``n_r`` of the
``K`` replicas that reported):

- ``"average"``: model averaging (local SGD). Weights and moments become the
  mean over all K replicas, a replica that did not change the row counting
  with the old value: ``w + sum_k (v_k - w) / K``.
- ``"sum"``: the replicas' weight changes add up, ``w + sum_k (v_k - w)``, as
  if each replica's steps had been applied to one shared model (SLIDE's
  HOGWILD, without its lost updates); the moments become the mean over the
  replicas that changed the row (a sum of second moments would shrink every
  later step).
- ``"sqrt_sum"``: between "sum" and "touched_average": ``w + sum_k (v_k - w) / sqrt(n_r)``, the
  moments as for "sum". n_r replicas' steps of the same Adam step size act
  like one step of an n_r-times larger batch; Adam's step size is commonly
  scaled by the square root of the batch growth, rather than linearly
  ("sum") or not at all ("touched_average"). The default of fit_distributed:
  "sum" diverged with 4 replicas (docs/dask.md).
- ``"touched_average"``: weights and moments become the mean over the replicas
  that changed the row, ``w + sum_k (v_k - w) / n_r``: a row only one replica
  trained keeps that replica's value (not diluted K times, as by "average"),
  a row every replica trained gets the average (not the K-fold step of "sum").

Row steps become the latest of the replicas' (lazy Adam decays a row's moments
over the steps since). Dense arrays are changed by every replica (n_r = K).
Each rule is evaluated as ``w * (1 - sum_k c_k) + sum_k c_k * v_k`` with the
rule's coefficients c_k: exact (bit for bit) when one replica reports.
"""

import numpy as np

from . import _network_state as network_state

RULES = ("average", "sum", "sqrt_sum", "touched_average")

# The row-sparse groups: their row-step array and the arrays indexed by the same rows.
_ROW_GROUPS = {
    "input": ("input_row_step", ("hidden_weights_0",)),
    "output": ("output_row_step", ("output_weights", "output_biases")),
}


def _with_moments(names):
    return [key for name in names for key in (name, name + "_adam_m", name + "_adam_v")]


def row_groups():
    """{group: (row-step key, [keys of the arrays sharing its rows])}."""
    return {group: (step, _with_moments(names)) for group, (step, names) in _ROW_GROUPS.items()}


def dense_keys(params):
    """The arrays every step changes whole: all but the row-sparse groups'."""
    sparse = {"hidden_weights_0", "output_weights", "output_biases"}
    names = [name for name in network_state.layer_layout(params["layer_sizes"])
             if name not in sparse]
    return _with_moments(names)


def round_changes(params, start_step):
    """What a replica sends after a round that began at Adam step ``start_step``:
    the rows it updated (row step past ``start_step``) and every dense array."""
    rows = {}
    for group, (step_key, keys) in row_groups().items():
        ids = np.flatnonzero(params[step_key] > start_step)
        rows[group] = (ids, {key: params[key][ids] for key in (step_key, *keys)})
    return {"rows": rows, "dense": {key: params[key].copy() for key in dense_keys(params)}}


def apply_update(params, update):
    """Write an update (or any changes) into a replica's arrays, in place."""
    for ids, values in update["rows"].values():
        for key, value in values.items():
            params[key][ids] = value
    for key, value in update["dense"].items():
        params[key][...] = value


def full_update(params):
    """An update holding every row (what a replica built from scratch would need)."""
    rows = {}
    for group, (step_key, keys) in row_groups().items():
        ids = np.arange(params[step_key].shape[0])
        rows[group] = (ids, {key: params[key] for key in (step_key, *keys)})
    return {"rows": rows, "dense": {key: params[key] for key in dense_keys(params)}}


def payload_bytes(changes):
    """Bytes of the arrays of a changes or update message (what travels)."""
    total = sum(value.nbytes for value in changes["dense"].values())
    for ids, values in changes["rows"].values():
        total += ids.nbytes + sum(value.nbytes for value in values.values())
    return int(total)


def _coefficients(rule, is_moment, counts, n_reports):
    """(c, s): each changing replica's weight c per row, and s = sum of c over them."""
    counts = counts.astype(np.float32)
    if rule == "average":
        c = np.full_like(counts, 1.0 / n_reports)
    elif rule == "sum" and not is_moment:
        c = np.ones_like(counts)
    elif rule == "sqrt_sum" and not is_moment:
        c = 1.0 / np.sqrt(counts)
    else:  # touched_average, and the moments of "sum" and "sqrt_sum"
        c = 1.0 / counts
    return c, c * counts


def _combine(old, values_per_replica, positions, c, s):
    """old * (1 - s) + sum_k c * v_k at the rows ``positions[k]`` of each replica."""
    shape = (-1,) + (1,) * (old.ndim - 1)
    new = old * (np.float32(1.0) - s).reshape(shape)
    for value, pos in zip(values_per_replica, positions):
        new[pos] += c[pos].reshape(shape) * value
    return new


def merge(params, changes, rule):
    """Combine the replicas' ``changes`` (one per reporting replica, in replica
    order) into the master ``params`` in place; returns the update for the replicas."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    n_reports = len(changes)
    update = {"rows": {}, "dense": {}}
    for group, (step_key, keys) in row_groups().items():
        ids_per_replica = [c["rows"][group][0] for c in changes]
        union, counts = np.unique(np.concatenate(ids_per_replica), return_counts=True)
        positions = [np.searchsorted(union, ids) for ids in ids_per_replica]
        steps = params[step_key][union]
        for pos, c in zip(positions, changes):
            steps[pos] = np.maximum(steps[pos], c["rows"][group][1][step_key])
        params[step_key][union] = steps
        for key in keys:
            coef, total = _coefficients(rule, key.endswith(("_adam_m", "_adam_v")), counts,
                                        n_reports)
            values = [c["rows"][group][1][key] for c in changes]
            params[key][union] = _combine(params[key][union], values, positions, coef, total)
        update["rows"][group] = (union, {key: params[key][union] for key in (step_key, *keys)})
    everyone = np.full(1, n_reports)
    for key in dense_keys(params):
        coef, total = _coefficients(rule, key.endswith(("_adam_m", "_adam_v")), everyone,
                                    n_reports)
        old = params[key]
        values = [c["dense"][key] for c in changes]
        merged = old * (np.float32(1.0) - total[0])
        for value in values:
            merged += coef[0] * value
        params[key][...] = merged
        update["dense"][key] = merged
    return update
