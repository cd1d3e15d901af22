"""learning_rate_schedule="plateau": divide the learning rate when P@1 on
held-out training rows stops improving.

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


def after_epoch(schedule, score, n_iter_no_change):
    """Record one epoch's validation P@1; lowers the rate after ``n_iter_no_change``
    epochs without improvement. Returns whether it was lowered."""
    if score > schedule["best"] + TOL:
        schedule["best"] = float(score)
        schedule["stalled"] = 0
        return False
    schedule["stalled"] += 1
    if schedule["stalled"] < n_iter_no_change:
        return False
    schedule["learning_rate"] /= DECAY
    schedule["stalled"] = 0
    return True


def split_validation(n_rows, fraction, rng):
    """(train rows, validation rows), sorted; at least one row in each."""
    n_validation = int(round(fraction * n_rows))
    if n_validation < 1 or n_validation >= n_rows:
        raise ValueError(
            f'learning_rate_schedule="plateau" holds out validation_fraction={fraction:g} '
            f"of the {n_rows} training rows, which leaves {n_validation} for validation "
            f"and {n_rows - n_validation} for training; each needs at least one"
        )
    order = rng.permutation(n_rows)
    return np.sort(order[n_validation:]), np.sort(order[:n_validation])

