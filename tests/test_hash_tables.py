"""Table builds: every output neuron lands in the bucket that hashing its weight
row alone gives (``bucket_indices``, the per-vector path queries use), with
every kernel set; full buckets keep the most recently updated neurons."""

import numpy as np
import pytest

from sklearn_slide import SlideClassifier
# _engine: table builds and bucket indices per kernel set.
from sklearn_slide import _engine as engine
from sklearn_slide import _network_state as network_state
from sklearn_slide._training import train_config


@pytest.fixture
def restore_kernels():
    before = engine.active_kernels()
    yield
    engine.select_kernels(before)


def awkward_network(n_labels, dim, hash_bits, n_tables, table_bits, seed=0):
    """A network whose output rows have ties, zeros (empty DWTA bins), NaN and inf."""
    rng = np.random.RandomState(seed)
    network = network_state.new_network(20, [dim], n_labels, "dwta", hash_bits, n_tables,
                                        table_bits, 50, rng)
    w = network["params"]["output_weights"]
    w[rng.rand(*w.shape) < 0.6] = 0  # ReLU-like sparsity: many empty bins
    w[:30] = np.round(w[:30] * 3)  # ties
    w[40, :5] = [np.nan, np.inf, -np.inf, 0, 1]
    w[41] = 0
    w[42, ::3] = np.nan
    return network


def rebuild(network, **params):
    clf = SlideClassifier(hash_family="dwta", hash_bits=network["hash_bits"], n_threads=2,
                          **params)
    engine.rebuild_tables(network["params"], network["tables"], train_config(clf, network),
                          network["schedule"])
    return network["tables"]


def per_vector_buckets(network):
    tables = network["tables"]
    return engine.bucket_indices("dwta", network["params"]["output_weights"],
                                 network["hash_bits"], tables["n_tables"],
                                 network["schedule"]["hash_seed"], tables["table_bits"])


# hash_bits 3 at 9 table bits concatenates the codes, hash_bits 6 mixes them;
# 1,003 neurons end in a partial block; dim 37 has a bin tail, dim 5 bins of 5.
@pytest.mark.parametrize("dim,hash_bits", [(128, 3), (128, 6), (37, 3), (5, 6)])
@pytest.mark.parametrize("kernels", engine.available_kernels())
def test_every_neuron_in_the_bucket_of_its_own_hash(restore_kernels, kernels, dim, hash_bits):
    engine.select_kernels(kernels)
    network = awkward_network(1003, dim, hash_bits, n_tables=7, table_bits=9)
    tables = rebuild(network, bucket_size=10**6)
    expected = per_vector_buckets(network)
    offsets, ids = tables["offsets"], tables["ids"]
    for t in range(tables["n_tables"]):
        assert offsets[t, -1] == 1003
        # Ids sorted by bucket, ascending within each: a stable sort of the neurons.
        order = np.argsort(expected[:, t], kind="stable")
        np.testing.assert_array_equal(ids[t], order)
        np.testing.assert_array_equal(
            offsets[t], np.searchsorted(expected[order, t], np.arange(2**9 + 1)))


def test_full_buckets_keep_the_most_recently_updated(restore_kernels):
    network = awkward_network(1003, 128, 3, n_tables=3, table_bits=9)
    steps = np.random.RandomState(1).randint(0, 5, size=1003)
    network["params"]["output_row_step"][:] = steps
    tables = rebuild(network, bucket_size=2)
    expected = per_vector_buckets(network)
    for t in range(3):
        for b in range(2**9):
            members = np.flatnonzero(expected[:, t] == b)
            # FIFO: the largest (row step, id) keys, listed in id order.
            kept = sorted(sorted(members, key=lambda i: (steps[i], i))[-2:])
            begin, end = tables["offsets"][t, b], tables["offsets"][t, b + 1]
            np.testing.assert_array_equal(tables["ids"][t, begin:end], kept)
