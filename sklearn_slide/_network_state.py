"""Fitted state of a SlideClassifier: plain numpy arrays plus a few scalars.

The C++ engine borrows these arrays (it never owns fitted state), so pickle,
joblib and ``joblib.load(mmap_mode="r")`` work without custom code. The dict
layout is versioned: a model pickled with another layout is refused on load.
"""

import math
import os
import re

import numpy as np

from ._engine import core

FORMAT_VERSION = 1

# Largest bucket index width: keeps the offsets array of one table <= 4 MiB * 4.
MAX_TABLE_BITS = 22


def table_bits_for(hash_family, hash_bits, n_labels, hidden_size):
    """Bucket index width of one table.

    The K codes are concatenated when they fit; otherwise they are hashed into
    at most as many buckets as there are neurons (the largest power of two not
    above n_labels): more would only add empty buckets, each costing 4 bytes of
    offsets per table (at 670k labels and 50 tables, 2^20 buckets cost 210 MB).
    """
    code_bits = core.code_bits(hash_family, hidden_size, hash_bits)
    wanted = max(8, math.floor(math.log2(max(n_labels, 2))))
    return int(min(hash_bits * code_bits, wanted, MAX_TABLE_BITS))


def table_bytes(n_tables, table_bits, n_labels):
    """Memory of the compact tables: offsets plus one id slot per neuron and table."""
    return 4 * n_tables * ((2**table_bits + 1) + n_labels)


def network_bytes(n_features, hidden_layer_sizes, n_labels):
    """Memory of weights, biases and both Adam moments (float32, x3)."""
    sizes = [n_features, *hidden_layer_sizes, n_labels]
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    return 12 * n_params + 8 * (n_features + n_labels)


def training_scratch_bytes(n_features, hidden_layer_sizes, n_labels, n_tables, table_bits,
                           n_threads, batch_size=128, max_active=4096, n_samples=None):
    """Memory the engine allocates while training (cpp/slide/trainer.cpp, hash_tables.cpp).

    Gradients are never stored per parameter: a batch's contributions are kept
    per sample, then grouped by row (cpp/slide/row_groups.h: per thread a 4-byte
    cursor per input and output row; ~40 bytes per contribution of the batch's
    output neurons). Per thread an active-set sampler (6 bytes per label) and the dense
    gradients of the hidden layers, and the bucket arrays of a table rebuild
    (``n_tables=0``: exact training, no tables).
    """
    sizes = [n_features, *hidden_layer_sizes, n_labels]
    active = n_labels if not n_tables else min(n_labels, max_active)
    # The engine's batch: never more than the rows it trains on.
    batch = batch_size if n_samples is None else min(batch_size, max(n_samples, 1))
    groups = 4 * (n_features + n_labels) * n_threads + 40 * batch * active
    hidden_dense = sum(a * b + b for a, b in zip(sizes[1:-2], sizes[2:-1])) + sizes[1]
    per_thread = 6 * n_labels + 8 * hidden_dense + 4 * sum(hidden_layer_sizes) * 3
    rebuild = 0
    if n_tables:
        rebuild = 4 * n_labels * n_tables + n_threads * 4 * (2**table_bits + 1 + n_labels)
    return groups + n_threads * per_thread + rebuild


def init_peak_bytes(n_features, hidden_layer_sizes, n_labels):
    """Temporary float64 draws of the largest weight matrix during ``init_params``."""
    sizes = [n_features, *hidden_layer_sizes, n_labels]
    return 8 * max(a * b for a, b in zip(sizes[:-1], sizes[1:]))


# Memory budget: every allocation whose size grows with the data or the
# parameters (network, hash tables, training buffers, prediction outputs) is
# estimated first and refused above this budget, with the bytes it needs.
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


# Divergence: the sampled softmax loss of a sane network stays near or below
# log(active set size), a uniform guess. A mean loss this many nats above it
# means the true labels get probabilities e^-30 below chance: the weights have
# blown up (the loss of one label is capped at -log(1e-30) = 69 by the engine).
DIVERGED_LOSS_MARGIN = 30.0


def divergence(params, loss, mean_active):
    """Why training diverged (a message), or None if it looks sane."""
    if not math.isfinite(loss):
        return f"the training loss is {loss}"
    chance = math.log(max(mean_active, 1.0))
    if loss > chance + DIVERGED_LOSS_MARGIN:
        return (
            f"the mean training loss {loss:.1f} is far above that of a uniform guess "
            f"({chance:.1f})"
        )
    for name, value in params.items():
        if isinstance(value, np.ndarray) and value.dtype == np.float32 and value.size:
            if not (math.isfinite(value.max()) and math.isfinite(value.min())):
                return f"{name} holds NaN or infinite values"
    return None


def check_network(network):
    """ValueError/TypeError unless ``network`` has the layout this version writes.

    Run on unpickling: a corrupted or hand-edited model is refused with the name
    of the bad entry instead of reaching the engine (which checks sizes again).
    """
    if not isinstance(network, dict):
        raise TypeError(f"corrupt model: _network is a {type(network).__name__}, not a dict")
    for key in ("params", "hash_family", "hash_bits", "tables", "schedule", "sampling_seed"):
        if key not in network:
            raise ValueError(f"corrupt model: _network has no {key!r} entry")
    params = network["params"]
    if not isinstance(params, dict) or "layer_sizes" not in params:
        raise ValueError("corrupt model: _network['params'] has no 'layer_sizes'")
    sizes = params["layer_sizes"]
    if (
        not isinstance(sizes, (list, tuple))
        or len(sizes) < 3
        or not all(isinstance(s, (int, np.integer)) and 1 <= s < 2**31 for s in sizes)
    ):
        raise ValueError(f"corrupt model: layer_sizes {sizes!r} is not a list of >= 3 sizes")
    sizes = [int(s) for s in sizes]
    expected = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-2], sizes[1:-1])):
        expected[f"hidden_weights_{i}"] = (n_in, n_out) if i == 0 else (n_out, n_in)
        expected[f"hidden_biases_{i}"] = (n_out,)
    expected["output_weights"] = (sizes[-1], sizes[-2])
    expected["output_biases"] = (sizes[-1],)
    for name, shape in expected.items():
        for key in (name, name + "_adam_m", name + "_adam_v"):
            _check_array(params, key, shape, np.float32, "params")
    _check_array(params, "input_row_step", (sizes[0],), np.int64, "params")
    _check_array(params, "output_row_step", (sizes[-1],), np.int64, "params")
    tables = network["tables"]
    if tables is not None:
        if not isinstance(tables, dict):
            raise TypeError("corrupt model: hash tables are not a dict")
        n_tables, bits = tables.get("n_tables"), tables.get("table_bits")
        if not (isinstance(n_tables, (int, np.integer)) and 1 <= n_tables <= 65535
                and isinstance(bits, (int, np.integer)) and 1 <= bits <= MAX_TABLE_BITS):
            raise ValueError(f"corrupt model: hash table shape n_tables={n_tables!r}, "
                             f"table_bits={bits!r}")
        _check_array(tables, "offsets", (n_tables, 2**bits + 1), np.int32, "tables")
        _check_array(tables, "ids", (n_tables, sizes[-1]), np.int32, "tables")
    schedule = network["schedule"]
    if not isinstance(schedule, dict) or not all(
        k in schedule for k in init_schedule(1, 0)
    ):
        raise ValueError("corrupt model: the training schedule is incomplete")
    for key in ("step", "samples_seen", "next_rehash_step", "n_rehashes"):
        _check_int(schedule[key], 0, 2**63 - 1, f"schedule[{key!r}]")
    _check_int(schedule["hash_seed"], 0, 2**64 - 1, "schedule['hash_seed']")
    interval = schedule["rehash_interval"]
    if not isinstance(interval, (float, int, np.floating, np.integer)) or not (
        1.0 <= float(interval) < math.inf
    ):
        raise ValueError(f"corrupt model: schedule['rehash_interval'] is {interval!r}")
    _check_int(network["hash_bits"], 1, 32, "hash_bits")
    _check_int(network["sampling_seed"], 0, 2**64 - 1, "sampling_seed")
    if network["hash_family"] not in (None, "simhash", "wta", "dwta", "minhash"):
        raise ValueError(f"corrupt model: unknown hash_family {network['hash_family']!r}")
    if (network["hash_family"] is None) != (tables is None):
        raise ValueError("corrupt model: hash_family and hash tables disagree")


def _check_int(value, low, high, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"corrupt model: {name} is {value!r}, not an int")
    if not low <= int(value) <= high:
        raise ValueError(f"corrupt model: {name} = {value} is out of range [{low}, {high}]")


def _check_array(d, key, shape, dtype, where):
    value = d.get(key)
    if not isinstance(value, np.ndarray):
        raise ValueError(f"corrupt model: {where}[{key!r}] is missing or not an array")
    if value.dtype != dtype:
        raise TypeError(
            f"corrupt model: {where}[{key!r}] has dtype {value.dtype}, not {np.dtype(dtype)}"
        )
    if value.shape != tuple(shape):
        raise ValueError(
            f"corrupt model: {where}[{key!r}] has shape {value.shape}, expected {tuple(shape)}"
        )


def init_params(n_features, hidden_layer_sizes, n_labels, rng):
    """Weights ~ N(0, std) with a fan-in scaled std, zero biases and moments.

    ``rng`` (a RandomState) seeds a Generator that draws float32 directly: no
    float64 temporary, which at 670k labels would be the fit's memory peak.
    """
    sizes = [int(n_features), *map(int, hidden_layer_sizes), int(n_labels)]
    params = {"layer_sizes": sizes}
    generator = np.random.default_rng(rng.randint(np.iinfo(np.int32).max))

    def add(name, shape, std):
        if std == 0.0:
            value = np.zeros(shape, dtype=np.float32)
        else:
            value = generator.standard_normal(size=shape, dtype=np.float32)
            value *= np.float32(std)
        params[name] = value
        params[name + "_adam_m"] = np.zeros(shape, dtype=np.float32)
        params[name + "_adam_v"] = np.zeros(shape, dtype=np.float32)

    for i, (n_in, n_out) in enumerate(zip(sizes[:-2], sizes[1:-1])):
        # Input layer rows are per feature (input-major); the others per neuron.
        shape = (n_in, n_out) if i == 0 else (n_out, n_in)
        std = INPUT_INIT_STD if i == 0 else math.sqrt(2.0 / n_in)
        add(f"hidden_weights_{i}", shape, std)
        add(f"hidden_biases_{i}", (n_out,), 0.0)
    add("output_weights", (sizes[-1], sizes[-2]), math.sqrt(1.0 / sizes[-2]))
    add("output_biases", (sizes[-1],), 0.0)
    params["input_row_step"] = np.zeros(sizes[0], dtype=np.int64)
    params["output_row_step"] = np.zeros(sizes[-1], dtype=np.int64)
    return params


# Sparse tf-idf-like rows have unit norm, so each hidden pre-activation is a
# N(0, std^2) mixture regardless of the number of features.
INPUT_INIT_STD = 0.1


def init_tables(n_tables, table_bits, n_labels):
    return {
        "n_tables": int(n_tables),
        "table_bits": int(table_bits),
        "offsets": np.zeros((n_tables, 2**table_bits + 1), dtype=np.int32),
        "ids": np.zeros((n_tables, n_labels), dtype=np.int32),
    }


def init_schedule(rehash_interval, hash_seed):
    return {
        "step": 0,
        "samples_seen": 0,
        "next_rehash_step": 0,  # build the tables before the first step
        "rehash_interval": float(rehash_interval),
        "n_rehashes": 0,
        "hash_seed": int(hash_seed),
    }


def make_writable(params):
    """Copies read-only arrays (e.g. from a memory-mapped pickle) before training."""
    for key, value in params.items():
        if isinstance(value, np.ndarray) and not value.flags.writeable:
            params[key] = np.array(value)
    return params
