"""Data derived from a fitted model's weights (the label-cluster index, the
bfloat16 copy of the output layer), built on first use and cached per estimator.

Held outside the estimator: prediction must not change its ``__dict__``
(scikit-learn's check_dict_unchanged), and derived data is not pickled with the
model. Each entry has a key saying which weights it was derived from; a stale
key rebuilds it, and training drops everything first (``forget``).
"""

import weakref

# Estimator -> {name: (key, value)}
_CACHE = weakref.WeakKeyDictionary()


def cached(owner, name, key, build):
    """The ``name`` entry cached for ``owner`` under ``key``; ``build()`` when missing or stale."""
    entries = _CACHE.setdefault(owner, {})
    entry = entries.get(name)
    if entry is not None and entry[0] == key:
        return entry[1]
    value = build()
    entries[name] = (key, value)
    return value


def forget(owner):
    """Drop everything cached for ``owner`` (its weights are changing)."""
    _CACHE.pop(owner, None)
