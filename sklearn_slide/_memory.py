"""Memory: estimates of what a model, its training and its predictions
allocate, and the budget they are checked against before allocating.

Every allocation whose size grows with the data or the parameters (network,
hash tables, training buffers, prediction outputs) is estimated first and
refused above the budget, with the bytes it needs, instead of failing (or
being killed) half-way.

Sizes are keyword-only arguments: they are all ints, and two swapped (rows
for labels, tables for bits) would give a wrong estimate without an error.
"""

import os
import re


def table_bytes(*, n_tables, table_bits, n_labels):
    """Memory of the compact tables: offsets plus one id slot per neuron and table."""
    return 4 * n_tables * ((2**table_bits + 1) + n_labels)


def network_bytes(*, n_features, hidden_layer_sizes, n_labels):
    """Memory of weights, biases and both Adam moments (float32, x3)."""
    sizes = [n_features, *hidden_layer_sizes, n_labels]
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    return 12 * n_params + 8 * (n_features + n_labels)


def training_scratch_bytes(*, n_features, hidden_layer_sizes, n_labels, n_tables, table_bits,
                           n_threads, batch_size, max_active, n_samples=None, bucket_size=128,
                           min_active=512, exact=None):
    """Memory the engine allocates while training (cpp/slide/trainer.cpp, hash_tables.cpp).

    Gradients are never stored per parameter: a batch's contributions are kept
    per sample, then grouped by row (cpp/slide/row_groups.h: per thread a 4-byte
    cursor per input and output row; ~40 bytes per contribution of the batch's
    output neurons). Per thread an active-set sampler (cpp/slide/id_set.h: ~64
    bytes per id it meets in a sample, at most the union of the sample's buckets
    and its negatives), the dense gradients of the hidden layers, and the
    counting-sort arrays of a table rebuild (``n_tables=0``: no tables; exact
    training unless ``exact=False``, when the candidates come from label
    clusters; the neurons' buckets are written into the tables' own id arrays).
    """
    sizes = [n_features, *hidden_layer_sizes, n_labels]
    if exact is None:
        exact = not n_tables
    active = n_labels if exact else min(n_labels, max_active)
    # The engine's batch: never more than the rows it trains on.
    batch = batch_size if n_samples is None else min(batch_size, max(n_samples, 1))
    groups = 4 * (n_features + n_labels) * n_threads + 40 * batch * active
    hidden_dense = sum(a * b + b for a, b in zip(sizes[1:-2], sizes[2:-1])) + sizes[1]
    met = min(n_labels, n_tables * bucket_size + max(min_active, max_active))
    sampler = 12 * 4096 + 64 * met
    per_thread = sampler + 8 * hidden_dense + 4 * sum(hidden_layer_sizes) * 3
    rebuild = 0
    if n_tables:
        rebuild = n_threads * 4 * (2 * (2**table_bits + 1) + 2 * n_labels)
    return groups + n_threads * per_thread + rebuild


MEMORY_LIMIT_ENV = "SKLEARN_SLIDE_MEMORY_LIMIT"
_SUFFIXES = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def memory_budget():
    """(bytes or None, where it comes from) of the memory budget.

    ``SKLEARN_SLIDE_MEMORY_LIMIT`` (bytes, or with a K/M/G/T suffix, powers of
    1024; ``none`` disables the check) when set, else the memory available to
    this process now: ``MemAvailable`` of /proc/meminfo, lowered to the free
    room of a cgroup (container) memory limit when there is one. None when
    neither can be determined (no check).
    """
    text = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if text:
        if text.lower() in ("none", "off", "unlimited"):
            return None, f"{MEMORY_LIMIT_ENV}={text}"
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?", text.lower())
        if not match:
            raise ValueError(
                f"{MEMORY_LIMIT_ENV}={text!r}: expected a number of bytes with an optional "
                "K, M, G or T suffix (e.g. 16G), or 'none'"
            )
        return int(float(match.group(1)) * _SUFFIXES[match.group(2)]), f"{MEMORY_LIMIT_ENV}={text}"
    available = _available_memory()
    return available, "the memory available now"


def _available_memory():
    candidates = []
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    candidates.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        pass
    if not candidates:
        try:
            candidates.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):
            pass
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
         "/sys/fs/cgroup/memory/memory.usage_in_bytes"),  # cgroup v1
    ):
        try:
            with open(limit_file) as fh:
                limit = fh.read().strip()
            with open(usage_file) as fh:
                usage = int(fh.read().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:  # "max" or a huge v1 value: no limit
            candidates.append(max(int(limit) - usage, 0))
        break
    return min(candidates) if candidates else None


# Below this, the default budget is not looked up (it reads /proc on every call).
_SMALL_BYTES = 2**26


def check_memory(what, parts):
    """ValueError when the bytes of ``parts`` ({name: bytes}) exceed the budget."""
    needed = int(sum(parts.values()))
    if needed < _SMALL_BYTES and not os.environ.get(MEMORY_LIMIT_ENV, "").strip():
        return
    budget, source = memory_budget()
    if budget is None or needed <= budget:
        return
    detail = ", ".join(f"{name} {_gib(n)}" for name, n in parts.items() if n)
    raise ValueError(
        f"{what} would need about {needed:,} bytes ({_gib(needed)}: {detail}), more than the "
        f"memory budget of {budget:,} bytes ({_gib(budget)}, {source}). Use a smaller "
        f"configuration, or set the environment variable {MEMORY_LIMIT_ENV} (e.g. 64G, "
        "or none) to change the budget."
    )


def _gib(n):
    return f"{n / 2**30:.2f} GiB"


# Dense (n_samples, n_labels) results (predict_proba, dense predict) above this
# many bytes are refused: use predict_topk, which never materialises them.
DENSE_OUTPUT_LIMIT_BYTES = 2**30


def check_dense_output(method, *, n_rows, n_labels, also_needed=None):
    """ValueError when a dense float32 (n_rows, n_labels) result is over the
    limit, or with ``also_needed`` ({name: bytes}) over the budget."""
    needed = 4 * n_rows * n_labels
    if needed > DENSE_OUTPUT_LIMIT_BYTES:
        raise ValueError(
            f"{method} would allocate a dense ({n_rows}, {n_labels}) array "
            f"({needed:,} bytes, {needed / 2**30:.1f} GiB; limit "
            f"{DENSE_OUTPUT_LIMIT_BYTES / 2**30:.1f} GiB); "
            "use predict_topk(X, k), or predict in smaller row batches"
        )
    check_memory(method, {"dense output": needed, **(also_needed or {})})


def check_training_memory(*, n_samples, n_features, hidden, n_labels, n_tables, table_bits,
                          n_threads, batch_size, max_active, new_model, bucket_size=128,
                          min_active=512, cluster_index=None, new_tables=False):
    """``check_memory`` of a training call; ``new_model``: the network and its
    tables are allocated too; ``new_tables``: only the tables (a model trained
    with label clusters switching to LSH). ``n_tables`` 0: no tables: exact
    training, or ``cluster_index`` (the bytes of the label-cluster index built
    every epoch)."""
    parts = {}
    if cluster_index is not None:
        parts["label clusters"] = cluster_index
    if new_model:
        # init_params draws float32 in place: no temporary beyond the network.
        parts["network"] = network_bytes(n_features=n_features, hidden_layer_sizes=hidden,
                                         n_labels=n_labels)
    if (new_model or new_tables) and n_tables:
        parts["hash tables"] = table_bytes(n_tables=n_tables, table_bits=table_bits,
                                           n_labels=n_labels)
    parts["training buffers"] = training_scratch_bytes(
        n_features=n_features, hidden_layer_sizes=hidden, n_labels=n_labels, n_tables=n_tables,
        table_bits=table_bits or 0, n_threads=n_threads, batch_size=batch_size,
        max_active=max_active, n_samples=n_samples, bucket_size=bucket_size, min_active=min_active,
        exact=not n_tables and cluster_index is None,
    )
    check_memory("training", parts)
