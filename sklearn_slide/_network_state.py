"""Fitted state of a SlideClassifier: plain numpy arrays plus a few scalars.

The C++ engine borrows these arrays (it never owns fitted state), so pickle,
joblib and ``joblib.load(mmap_mode="r")`` work without custom code. The dict
layout is versioned: a model pickled with another layout is refused on load.
"""

import math

import numpy as np

from ._engine import core

FORMAT_VERSION = 1

# Largest bucket index width: keeps the offsets array of one table <= 4 MiB * 4.
MAX_TABLE_BITS = 22


def table_bits_for(hash_family, hash_bits, n_labels, hidden_size):
    """Bucket index width of one table.

    The K codes are concatenated when they fit; otherwise they are hashed into
    about as many buckets as there are neurons (more would only add empty
    buckets, each costing 4 bytes of offsets).
    """
    code_bits = core.code_bits(hash_family, hidden_size, hash_bits)
    wanted = max(8, math.ceil(math.log2(max(n_labels, 2))))
    return int(min(hash_bits * code_bits, wanted, MAX_TABLE_BITS))


def table_bytes(n_tables, table_bits, n_labels):
    """Memory of the compact tables: offsets plus one id slot per neuron and table."""
    return 4 * n_tables * ((2**table_bits + 1) + n_labels)


def network_bytes(n_features, hidden_layer_sizes, n_labels):
    """Memory of weights, biases and both Adam moments (float32, x3)."""
    sizes = [n_features, *hidden_layer_sizes, n_labels]
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    return 12 * n_params + 8 * (n_features + n_labels)


def init_params(n_features, hidden_layer_sizes, n_labels, rng):
    """Weights ~ N(0, std) with a fan-in scaled std, zero biases and moments."""
    sizes = [int(n_features), *map(int, hidden_layer_sizes), int(n_labels)]
    params = {"layer_sizes": sizes}

    def add(name, shape, std):
        if std == 0.0:
            value = np.zeros(shape, dtype=np.float32)
        else:
            value = rng.standard_normal(size=shape).astype(np.float32)
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
