"""Fitted state of a SlideClassifier: plain numpy arrays plus a few scalars.

The C++ engine borrows these arrays (it never owns fitted state), so pickle,
joblib and ``joblib.load(mmap_mode="r")`` work without custom code. The dict
layout is versioned: a model pickled with another layout is refused on load.
"""

import math

import numpy as np

from . import _engine as engine
from ._config import HASH_FAMILIES, MAX_HASH_BITS, MAX_TABLES

FORMAT_VERSION = 1

# The entries of a network dict (``new_network``), checked on unpickling.
NETWORK_KEYS = ("format_version", "params", "hash_family", "hash_bits", "tables", "schedule",
                "sampling_seed")

# Largest bucket index width: keeps the offsets array of one table <= 4 MiB * 4.
MAX_TABLE_BITS = 22


def table_bits_for(hash_family, hash_bits, n_labels, hidden_size):
    """Bucket index width of one table.

    The K codes are concatenated when they fit; otherwise they are hashed into
    at most as many buckets as there are neurons (the largest power of two not
    above n_labels): more would only add empty buckets, each costing 4 bytes of
    offsets per table (at 670k labels and 50 tables, 2^20 buckets cost 210 MB).
    """
    code_bits = engine.code_bits(hash_family, hidden_size, hash_bits)
    wanted = max(8, math.floor(math.log2(max(n_labels, 2))))
    return int(min(hash_bits * code_bits, wanted, MAX_TABLE_BITS))


def check_network(network):
    """ValueError/TypeError unless ``network`` has the layout this version writes.

    Run on unpickling: a corrupted or hand-edited model is refused with the name
    of the bad entry instead of reaching the engine (which checks sizes again).
    """
    if not isinstance(network, dict):
        raise TypeError(f"corrupt model: _network is a {type(network).__name__}, not a dict")
    for key in NETWORK_KEYS:
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
    for name, (shape, _) in layer_layout(sizes).items():
        for key in (name, name + "_adam_m", name + "_adam_v"):
            _check_array(params, key, shape, np.float32, "params")
    _check_array(params, "input_row_step", (sizes[0],), np.int64, "params")
    _check_array(params, "output_row_step", (sizes[-1],), np.int64, "params")
    tables = network["tables"]
    if tables is not None:
        if not isinstance(tables, dict):
            raise TypeError("corrupt model: hash tables are not a dict")
        n_tables, bits = tables.get("n_tables"), tables.get("table_bits")
        if not (isinstance(n_tables, (int, np.integer)) and 1 <= n_tables <= MAX_TABLES
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
    _check_int(network["hash_bits"], 1, MAX_HASH_BITS, "hash_bits")
    _check_int(network["sampling_seed"], 0, 2**64 - 1, "sampling_seed")
    if network["hash_family"] is not None and network["hash_family"] not in HASH_FAMILIES:
        raise ValueError(f"corrupt model: unknown hash_family {network['hash_family']!r}")
    # Sampled training may have no tables (candidates="clusters"); exact has none.
    if network["hash_family"] is None and tables is not None:
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


def layer_layout(layer_sizes):
    """{name: (shape, initial std)} of the weights and biases of a network.

    The input layer's weights are input-major (one row per feature: a sparse
    row touches only its features' rows); the other layers are neuron-major.
    The binding (cpp/bindings.cpp, ``network_from``) reads the same layout.
    """
    sizes = layer_sizes
    layout = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-2], sizes[1:-1])):
        shape = (n_in, n_out) if i == 0 else (n_out, n_in)
        layout[f"hidden_weights_{i}"] = (shape, INPUT_INIT_STD if i == 0 else math.sqrt(2.0 / n_in))
        layout[f"hidden_biases_{i}"] = ((n_out,), 0.0)
    layout["output_weights"] = ((sizes[-1], sizes[-2]), math.sqrt(1.0 / sizes[-2]))
    layout["output_biases"] = ((sizes[-1],), 0.0)
    return layout


# Sparse tf-idf-like rows have unit norm, so each hidden pre-activation is a
# N(0, std^2) mixture regardless of the number of features.
INPUT_INIT_STD = 0.1


def init_params(n_features, hidden_layer_sizes, n_labels, rng):
    """Weights ~ N(0, std) with a fan-in scaled std, zero biases and moments.

    ``rng`` (a RandomState) seeds a Generator that draws float32 directly: no
    float64 temporary, which at 670k labels would be the fit's memory peak.
    """
    sizes = [int(n_features), *map(int, hidden_layer_sizes), int(n_labels)]
    params = {"layer_sizes": sizes}
    generator = np.random.default_rng(rng.randint(np.iinfo(np.int32).max))
    for name, (shape, std) in layer_layout(sizes).items():
        if std == 0.0:
            value = np.zeros(shape, dtype=np.float32)
        else:
            value = _standard_normal(generator, shape, np.float32(std))
        params[name] = value
        params[name + "_adam_m"] = np.zeros(shape, dtype=np.float32)
        params[name + "_adam_v"] = np.zeros(shape, dtype=np.float32)
    params["input_row_step"] = np.zeros(sizes[0], dtype=np.int64)
    params["output_row_step"] = np.zeros(sizes[-1], dtype=np.int64)
    return params


# Values drawn per NumPy call by _standard_normal: Python acts on Ctrl-C only
# between calls, and one call for a 670k x 128 layer takes seconds.
_DRAW_BLOCK_VALUES = 1 << 22


def _standard_normal(generator, shape, std):
    """``generator.standard_normal(size=shape, dtype=float32) * std``, drawn in
    blocks of rows: the same values (the generator's stream is sequential)."""
    value = np.empty(shape, dtype=np.float32)
    rows = value.reshape(shape[0], -1)
    step = max(1, _DRAW_BLOCK_VALUES // max(rows.shape[1], 1))
    for start in range(0, rows.shape[0], step):
        block = rows[start:start + step]
        generator.standard_normal(out=block, dtype=np.float32)
        block *= std
    return value


def init_tables(n_tables, table_bits, n_labels):
    return {
        "n_tables": int(n_tables),
        "table_bits": int(table_bits),
        "offsets": np.zeros((n_tables, 2**table_bits + 1), dtype=np.int32),
        "ids": np.zeros((n_tables, n_labels), dtype=np.int32),
    }


# The engine waits at most this many steps between rehashes (trainer.cpp takes
# min(interval, 1e18)); a stored interval grown beyond it (rehash_growth up to
# 1.8e308 overflows it to inf) is capped to it, which changes no schedule and
# keeps the saved model loadable.
MAX_REHASH_INTERVAL = 1e18


def cap_rehash_interval(schedule):
    schedule["rehash_interval"] = min(float(schedule["rehash_interval"]), MAX_REHASH_INTERVAL)


def init_schedule(rehash_interval, hash_seed):
    return {
        "step": 0,
        "samples_seen": 0,
        "next_rehash_step": 0,  # build the tables before the first step
        "rehash_interval": float(rehash_interval),
        "n_rehashes": 0,
        "hash_seed": int(hash_seed),
    }


def new_network(n_features, hidden, n_labels, hash_family, hash_bits, n_tables, table_bits,
                rehash_interval, rng):
    """A freshly initialised network (``hash_family`` None: exact training, no
    tables; ``table_bits`` None: no tables, the candidates come from label clusters)."""
    network = {
        "format_version": FORMAT_VERSION,
        "params": init_params(n_features, hidden, n_labels, rng),
        "hash_family": hash_family,
        "hash_bits": int(hash_bits),
        "tables": None,
        "schedule": init_schedule(rehash_interval, rng.randint(np.iinfo(np.int64).max)),
        "sampling_seed": int(rng.randint(np.iinfo(np.int64).max)),
    }
    if hash_family is not None and table_bits is not None:
        network["tables"] = init_tables(n_tables, table_bits, n_labels)
    return network


def make_writable(params):
    """Copies read-only arrays (e.g. from a memory-mapped pickle) before training."""
    for key, value in params.items():
        if isinstance(value, np.ndarray) and not value.flags.writeable:
            params[key] = np.array(value)
    return params
