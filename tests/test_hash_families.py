"""Tests of the LSH hash families (SimHash, WTA, DWTA, MinHash) of the C++ core.

They go through ``sklearn_slide._engine.hash_codes`` and ``bucket_indices``, which
hash every row of a float32 matrix with a family drawn from ``seed``.
"""

import numpy as np
import pytest

# _engine: the hash families themselves: no public API hashes a matrix.
from sklearn_slide._engine import bucket_indices, hash_codes

FAMILIES = ["simhash", "wta", "dwta", "minhash"]


def code_range(family, dim, codes_per_table):
    if family == "simhash":
        return 2
    if family in ("wta", "dwta"):
        return min(8, dim)
    return -(-dim // codes_per_table)  # minhash: bin width ceil(dim / K)


def awkward_inputs(dim, rng):
    """Rows that have broken LSH implementations: empty, one-hot, negative, constant."""
    rows = [np.zeros(dim)]
    for position in sorted({0, dim // 2, dim - 1}):
        one_hot = np.zeros(dim)
        one_hot[position] = 1.0
        rows.append(one_hot)
    negative_one_hot = np.zeros(dim)
    negative_one_hot[-1] = -3.0
    rows += [
        negative_one_hot,
        rng.standard_normal(dim),  # dense, mixed signs
        -np.abs(rng.standard_normal(dim)) - 0.1,  # dense, all negative
        np.full(dim, 2.5),  # all ties
        np.where(rng.random(dim) < 0.05, rng.random(dim), 0.0),  # very sparse
        np.maximum(rng.standard_normal(dim), 0.0),  # ReLU-like
        1e30 * rng.standard_normal(dim),  # huge magnitudes
    ]
    return np.ascontiguousarray(np.vstack(rows), dtype=np.float32)


def near_pairs(n_pairs, dim, cosine, rng, relu=False):
    """Pairs of rows at exactly `cosine` (before the optional ReLU)."""
    x = rng.standard_normal((n_pairs, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    z = rng.standard_normal((n_pairs, dim))
    z -= np.sum(z * x, axis=1, keepdims=True) * x
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    y = cosine * x + np.sqrt(1.0 - cosine**2) * z
    if relu:
        x, y = np.maximum(x, 0.0), np.maximum(y, 0.0)
    return x.astype(np.float32), y.astype(np.float32)


def collision_rate(family, x, y, codes_per_table, n_tables, table_bits, seed=7):
    """Fraction of (row, table) where x and y land in the same bucket."""
    bx = bucket_indices(family, x, codes_per_table, n_tables, seed, table_bits)
    by = bucket_indices(family, y, codes_per_table, n_tables, seed, table_bits)
    return float(np.mean(bx == by))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    "dim, codes_per_table, n_tables",
    [(1, 1, 1), (1, 3, 4), (3, 2, 5), (7, 16, 3), (8, 1, 100), (128, 6, 50), (1000, 16, 4)],
)
def test_codes_in_range(family, dim, codes_per_table, n_tables):
    X = awkward_inputs(dim, np.random.default_rng(dim))
    codes = hash_codes(family, X, codes_per_table, n_tables, 0)
    assert codes.dtype == np.uint32
    assert codes.shape == (X.shape[0], codes_per_table * n_tables)
    assert codes.max() < code_range(family, dim, codes_per_table)


@pytest.mark.parametrize("family", FAMILIES)
def test_zero_vector_gives_zero_codes(family):
    # The empty input has nothing to hash; every family maps it to code 0 rather
    # than leaving codes unset (a bug of the original DWTA).
    codes = hash_codes(family, np.zeros((1, 128), dtype=np.float32), 8, 50, 3)
    assert not codes.any()


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("codes_per_table", [1, 6, 16])
@pytest.mark.parametrize("table_bits", [1, 5, 18, 30])
def test_bucket_indices_in_range(family, codes_per_table, table_bits):
    X = awkward_inputs(128, np.random.default_rng(0))
    buckets = bucket_indices(family, X, codes_per_table, 20, 0, table_bits)
    assert buckets.dtype == np.uint32
    assert buckets.shape == (X.shape[0], 20)
    assert buckets.max() < 2**table_bits


def test_bucket_index_concatenates_codes_when_they_fit():
    # WTA codes take 3 bits: with K=2 and 18 table bits, bucket = c0 << 3 | c1.
    X = awkward_inputs(128, np.random.default_rng(1))
    codes = hash_codes("wta", X, 2, 10, 5).astype(np.int64).reshape(len(X), 10, 2)
    buckets = bucket_indices("wta", X, 2, 10, 5, 18)
    np.testing.assert_array_equal(buckets, (codes[:, :, 0] << 3) | codes[:, :, 1])


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_codes_other_seed_other_codes(family):
    X = awkward_inputs(128, np.random.default_rng(2))
    first = hash_codes(family, X, 6, 50, 123)
    np.testing.assert_array_equal(first, hash_codes(family, X, 6, 50, 123))
    assert not np.array_equal(first, hash_codes(family, X, 6, 50, 124))


@pytest.mark.parametrize("family", FAMILIES)
def test_rows_are_hashed_independently(family):
    # A row's codes do not depend on the other rows of the batch.
    X = awkward_inputs(128, np.random.default_rng(3))
    batch = hash_codes(family, X, 6, 20, 9)
    for i in range(len(X)):
        np.testing.assert_array_equal(batch[i], hash_codes(family, X[i : i + 1], 6, 20, 9)[0])


# Measured rates (dim 128, L=50, 500 pairs per similarity, the seeds below);
# "random" pairs each x with the y of another pair. ReLU barely changes the
# rank-based families, whose codes depend mostly on the largest coordinates.
#
#   family    K  table_bits  data   cos 0.95  cos 0.8  random
#   simhash   4  20          gauss  0.650     0.403    0.0649
#   simhash   4  20          relu   0.658     0.425    0.1310
#   simhash   6  12          gauss  0.527     0.252    0.0166
#   simhash   6  12          relu   0.535     0.281    0.0459
#   wta       4  20          gauss  0.337     0.090    0.0004
#   wta       6  12          gauss  0.197     0.028    0.0001
#   dwta      4  20          gauss  0.334     0.084    0.0002
#   dwta      6  12          gauss  0.192     0.026    0.0001
#   minhash   4  20          gauss  0.266     0.060    0.0004
#   minhash   6  12          gauss  0.131     0.015    0.0002
#
# (K=6 with 12 table bits exercises the mixed, not concatenated, bucket index.)
# Standard errors over pairs are 0.003-0.005, and the cos-0.95 rates move by
# less than 0.01 across hash seeds 0-9: the margins asserted below are wide.
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("codes_per_table, table_bits", [(4, 20), (6, 12)])
@pytest.mark.parametrize("relu", [False, True], ids=["gauss", "relu"])
def test_similar_vectors_collide_more(family, codes_per_table, table_bits, relu):
    rng = np.random.default_rng(0)
    x, y = near_pairs(500, 128, 0.95, rng, relu=relu)
    x_mid, y_mid = near_pairs(500, 128, 0.8, rng, relu=relu)
    near = collision_rate(family, x, y, codes_per_table, 50, table_bits)
    mid = collision_rate(family, x_mid, y_mid, codes_per_table, 50, table_bits)
    unrelated = collision_rate(family, x, np.roll(y, 1, axis=0), codes_per_table, 50, table_bits)
    assert near > 0.1
    assert near > 3 * unrelated
    # Locality sensitivity: the collision rate grows with similarity.
    assert near > mid + 0.05
    assert mid > unrelated


@pytest.mark.parametrize("family", FAMILIES)
def test_invalid_arguments(family):
    X = np.ones((2, 16), dtype=np.float32)
    with pytest.raises(ValueError):
        hash_codes(family, X, 0, 4, 0)
    with pytest.raises(ValueError):
        hash_codes(family, X, 4, 0, 0)


def test_unknown_family():
    with pytest.raises(ValueError, match="unknown hash family"):
        hash_codes("lsh", np.ones((1, 4), dtype=np.float32), 2, 2, 0)
