"""learning_rate_schedule="plateau" and early_stopping: divide the learning
rate, or stop, when P@1 on held-out training rows stops improving.

Why held-out rows: on XMC data the (sampled) training loss keeps falling long
after test P@1 has flattened (generated 100k labels: 8.9 -> 1.1 over 12
epochs, P@1 flat from epoch 6), so it cannot time the decay; and decaying
before the plateau costs as much as it gains after it (benchmarks/NOTES.md).
"""

import numpy as np

DECAY = 3.0  # 3e-3 -> 1e-3 -> 3e-4: the steps measured on generated data
TOL = 1e-4   # smaller P@1 gains count as no improvement


def new_state(learning_rate):
    """Schedule state of a new fit: the current rate, best validation P@1, epochs without gain."""
    return {"learning_rate": float(learning_rate), "best": -np.inf, "stalled": 0}


# With early stopping too, a plateau first lowers the rate; training stops at
# the plateau after this many cuts (3e-3 -> 3.3e-4).
CUTS_BEFORE_STOP = 2


def after_epoch(schedule, score, n_iter_no_change, lower_rate, stop):
    """Record one epoch's validation P@1. After ``n_iter_no_change`` epochs without
    improvement (a plateau): returns "lowered" when ``lower_rate`` and the rate was
    divided, "stop" when ``stop`` and training should end; otherwise None."""
    if score > schedule["best"] + TOL:
        schedule["best"] = float(score)
        schedule["stalled"] = 0
        return None
    schedule["stalled"] += 1
    if schedule["stalled"] < n_iter_no_change:
        return None
    cuts = schedule.get("cuts", 0)  # absent in models pickled before early stopping
    if stop and (not lower_rate or cuts >= CUTS_BEFORE_STOP):
        return "stop"
    if not lower_rate:
        return None
    schedule["learning_rate"] /= DECAY
    schedule["cuts"] = cuts + 1
    schedule["stalled"] = 0
    return "lowered"


def split_validation(n_rows, fraction, rng, required=True):
    """(train rows, validation rows), sorted; at least one row in each. When that
    is impossible: ValueError if ``required``, else None (train on every row)."""
    n_validation = int(round(fraction * n_rows))
    if n_validation < 1 or n_validation >= n_rows:
        if not required:
            return None
        raise ValueError(
            f'learning_rate_schedule="plateau" holds out validation_fraction={fraction:g} '
            f"of the {n_rows} training rows, which leaves {n_validation} for validation "
            f"and {n_rows - n_validation} for training; each needs at least one"
        )
    order = rng.permutation(n_rows)
    return np.sort(order[n_validation:]), np.sort(order[:n_validation])
