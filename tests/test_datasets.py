"""Tests of the XC-format reader/writer and the synthetic XMC generator."""

import bz2
import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from sklearn_slide.datasets import dump_xc, load_xc, load_xc_folder, make_extreme_multilabel


def _data_dir():
    """The shared real datasets: $SKLEARN_SLIDE_DATA or ../../shared/data."""
    env = os.environ.get("SKLEARN_SLIDE_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def _write(tmp_path, text, name="data.txt"):
    path = tmp_path / name
    data = text.encode("ascii") if isinstance(text, str) else text
    if name.endswith(".gz"):
        data = gzip.compress(data)
    elif name.endswith(".bz2"):
        data = bz2.compress(data)
    path.write_bytes(data)
    return path


def _assert_same_csr(A, B):
    assert A.shape == B.shape
    assert A.dtype == B.dtype
    np.testing.assert_array_equal(A.indptr, B.indptr)
    np.testing.assert_array_equal(A.indices, B.indices)
    np.testing.assert_array_equal(A.data, B.data)


# ---------------------------------------------------------------- load_xc

TINY = "3 5 4\n0,2 1:0.5 3:1\n 0:2\n3\n"


@pytest.mark.parametrize("name", ["tiny.txt", "tiny.txt.gz", "tiny.txt.bz2", "misnamed.txt"])
def test_load_xc_hand_written(tmp_path, name):
    text = TINY
    path = _write(tmp_path, text, name)
    if name == "misnamed.txt":  # compression is detected from the content
        path.write_bytes(gzip.compress(text.encode()))
    X, Y = load_xc(path)
    assert sp.issparse(X) and X.format == "csr" and X.dtype == np.float32
    assert sp.issparse(Y) and Y.format == "csr" and Y.dtype == np.int32
    np.testing.assert_array_equal(
        X.toarray(), [[0, 0.5, 0, 1, 0], [2, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
    )
    np.testing.assert_array_equal(Y.toarray(), [[1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 1]])
    assert X.has_sorted_indices and Y.has_sorted_indices


@pytest.mark.parametrize(
    "text, X_expected, Y_expected",
    [
        # CRLF line endings, tabs and runs of spaces between fields.
        ("2 3 2\r\n1\t0:0.5  2:1 \r\n\t1:2\r\n", [[0.5, 0, 1], [0, 2, 0]], [[0, 1], [0, 0]]),
        # Unsorted labels and features are sorted.
        ("1 3 3\n2,0 2:1 0:0.5\n", [[0.5, 0, 1]], [[1, 0, 1]]),
        # A row with only features (no leading space) has no labels.
        ("1 3 2\n0:1 2:3\n", [[1, 0, 3]], [[0, 0]]),
        # Blank lines are rows with neither labels nor features ...
        ("3 2 2\n\n1 0:1\n  \n", [[0, 0], [1, 0], [0, 0]], [[0, 0], [0, 1], [0, 0]]),
        # ... except after the last declared row, where they are ignored.
        ("1 2 2\n1 0:1\n\n\n", [[1, 0]], [[0, 1]]),
        # No final newline.
        ("1 2 2\n1 0:1", [[1, 0]], [[0, 1]]),
        # Every float syntax; explicit zeros are kept.
        ("1 5 1\n0 0:1e-5 1:-2.5E+3 2:+4 3:.5 4:0\n", [[1e-5, -2500, 4, 0.5, 0]], [[1]]),
        # Header only.
        ("0 3 2\n", np.zeros((0, 3)), np.zeros((0, 2))),
    ],
)
def test_load_xc_layouts(tmp_path, text, X_expected, Y_expected):
    X, Y = load_xc(_write(tmp_path, text))
    np.testing.assert_array_equal(X.toarray(), np.asarray(X_expected, dtype=np.float32))
    np.testing.assert_array_equal(Y.toarray(), Y_expected)


def test_load_xc_keeps_explicit_zeros(tmp_path):
    X, _ = load_xc(_write(tmp_path, "1 3 1\n0 0:0 2:1\n"))
    assert X.nnz == 2


def test_load_xc_size_overrides(tmp_path):
    path = _write(tmp_path, TINY)
    X, Y = load_xc(path, n_features=10, n_labels=7)
    assert X.shape == (3, 10) and Y.shape == (3, 7)
    with pytest.raises(ValueError, match="n_features=4 is smaller"):
        load_xc(path, n_features=4)
    with pytest.raises(ValueError, match="n_labels=3 is smaller"):
        load_xc(path, n_labels=3)
    with pytest.raises(ValueError, match="n_labels must be None or an int"):
        load_xc(path, n_labels=4.5)


MALFORMED = [
    ("", 1, "empty file"),
    ("3 5\n", 1, "bad header"),
    ("a b c\n", 1, "bad header"),
    ("1 5 4 7\n", 1, "bad header"),
    ("1 5 4\n0 1:1\n1 2:2\n", 3, "more rows than n_points"),
    ("3 5 4\n0 1:1\n1 2:2\n", 4, "file ends after 2 rows"),
    ("2 5 4\n0 1:1\n-1 1:1\n", 3, "label id '-1' is not a non-negative integer"),
    ("1 5 4\n1 -1:1\n", 2, "feature index '-1' is not a non-negative integer"),
    ("1 5 4\n1.0 1:1\n", 2, "label id '1.0'"),
    ("1 5 4\n1 1e0:1\n", 2, "feature index '1e0'"),
    ("1 5 4\n4 1:1\n", 2, "label id 4 out of range"),
    ("2 5 4\n1 1:1\n1 5:1\n", 3, "feature index 5 out of range"),
    ("1 5 4\n1 1:abc\n", 2, "unexpected character"),
    ("1 5 4\n1 1:nan\n", 2, "unexpected character"),
    ("1 5 4\n1 1:1 \xe9\n", 2, "unexpected character"),
    ("1 5 4\n1 1:1.2.3\n", 2, "'1.2.3' is not a number"),
    ("1 5 4\n1 1:1-2\n", 2, "'1-2' is not a number"),
    ("1 5 4\n1 1:1e400\n", 2, "out of float32 range"),
    ("1 5 4\n1 1:1e39\n", 2, "out of float32 range"),
    ("2 5 4\n0\n1,1 1:1\n", 3, "duplicate label id 1"),
    ("1 5 4\n1 2:1 1:1 2:2\n", 2, "duplicate feature index 2"),
    ("1 5 4\n1 1:\n", 2, "expected 'feature:value', got '1:'"),
    ("1 5 4\n1 :1\n", 2, "expected 'feature:value', got ':1'"),
    ("1 5 4\n1 1:2:3\n", 2, "expected 'feature:value'"),
    ("1 5 4\n1 1:2,3\n", 2, "expected 'feature:value'"),
    ("1 5 4\n 1,2 1:1\n", 2, "must be the first field"),
    ("1 5 4\n1:1 2\n", 2, "must be the first field"),
    ("1 5 4\n1,,2 1:1\n", 2, "malformed label list"),
    ("1 5 4\n1, 1:1\n", 2, "malformed label list"),
    ("1 5 4\n,1 1:1\n", 2, "malformed label list ',1'"),
    ("1 5 4\n1 , 1:1\n", 2, "stray ','"),
    ("1 5 4\n1 : 1:1\n", 2, "stray ':'"),
    ("2 5 4\n1 1:1\n2 3", 3, "truncated?"),
]


@pytest.mark.parametrize("name", ["bad.txt", "bad.txt.gz"])
@pytest.mark.parametrize("text, line, message", MALFORMED)
def test_load_xc_malformed(tmp_path, name, text, line, message):
    path = _write(tmp_path, text.encode("latin-1"), name)
    with pytest.raises(ValueError) as info:
        load_xc(path)
    error = str(info.value)
    assert error.startswith(f"{path}, line {line}: "), error
    assert message in error, error


@pytest.mark.parametrize("name", ["cut.txt.gz", "cut.txt.bz2"])
def test_load_xc_truncated_compressed(tmp_path, name):
    X, Y = make_extreme_multilabel(300, 500, 50, random_state=0)
    full = tmp_path / name
    dump_xc(X, Y, full)
    data = full.read_bytes()
    full.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"line \d+: truncated or corrupt compressed data"):
        load_xc(full)


def test_load_xc_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_xc(tmp_path / "nope.txt")


def test_load_xc_many_blocks(tmp_path, monkeypatch):
    """Errors keep exact line numbers and data stays whole across blocks."""
    from sklearn_slide.datasets import _xc_format

    X, Y = make_extreme_multilabel(400, 300, 40, nnz_per_sample=10, random_state=0)
    path = tmp_path / "blocks.txt"
    dump_xc(X, Y, path)
    monkeypatch.setattr(_xc_format, "_BLOCK_BYTES", 997)  # many tiny blocks
    X2, Y2 = load_xc(path)
    _assert_same_csr(X2, X)
    _assert_same_csr(Y2, Y)

    lines = path.read_text().splitlines(keepends=True)
    lines[300] = lines[300].replace(":", "::", 1)
    path.write_text("".join(lines))
    with pytest.raises(ValueError, match=f"line {301}: expected 'feature:value'"):
        load_xc(path)


# ---------------------------------------------------------------- dump_xc


@pytest.mark.parametrize("name", ["rt.txt", "rt.txt.gz", "rt.txt.bz2"])
def test_dump_load_round_trip(tmp_path, name):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 40)).astype(np.float32) * (rng.random((60, 40)) < 0.2)
    Y = (rng.random((60, 15)) < 0.1).astype(np.int32)
    X[1] = 0  # row without features
    Y[0] = 0  # row without labels
    X[2], Y[2] = 0, 0  # row with neither
    X[-1], Y[-1] = 0, 0  # ... also as the last row
    X, Y = sp.csr_matrix(X), sp.csr_matrix(Y)
    # Extreme float32 values (subnormals, max) and an explicit zero.
    X.data[:6] = [np.float32(1e-45), np.finfo(np.float32).max, -1.0, 0.0, np.float32(1 / 3), 3e-39]
    X.data[6:] = rng.random(X.data.size - 6).astype(np.float32) * 10.0 ** rng.integers(-30, 30, X.data.size - 6)
    path = tmp_path / name
    dump_xc(X, Y, path)
    X2, Y2 = load_xc(path)
    _assert_same_csr(X2, X)
    _assert_same_csr(Y2, Y)


def test_dump_xc_dense_inputs_and_format(tmp_path):
    path = tmp_path / "d.txt"
    dump_xc(np.array([[0, 0.25], [1, 0], [0, 0]]), np.array([[1, 1], [0, 0], [0, 1]]), path)
    assert path.read_text() == "3 2 2\n0,1 1:0.25\n 0:1\n1\n"


def test_dump_xc_validation(tmp_path):
    with pytest.raises(ValueError, match="different numbers of rows"):
        dump_xc(np.ones((2, 2)), np.ones((3, 2)), tmp_path / "a.txt")
    with pytest.raises(ValueError, match="NaN or infinity"):
        dump_xc(np.array([[np.nan]]), np.ones((1, 1)), tmp_path / "a.txt")
    with pytest.raises(ValueError, match="must be 2-D"):
        dump_xc(np.ones(3), np.ones((3, 1)), tmp_path / "a.txt")


# ---------------------------------------------------------------- real data

REAL = {
    # folder/split: (points, features, labels, label-less points)
    "bibtex/train": (4880, 1836, 159, 0),
    "bibtex/test": (2515, 1836, 159, 0),
    "delicious/train": (12920, 500, 983, 10),
    "delicious/test": (3185, 500, 983, 4),
    "seqgo-direct/train": (1692, 529, 4133, None),
    "seqgo-direct/valid": (876, 529, 4133, None),
    "seqgo-direct/test": (1332, 529, 4133, None),
}


@pytest.mark.parametrize("split", sorted(REAL))
def test_load_real_datasets(split):
    path = _data_dir() / f"{split}.txt.gz"
    if not path.exists():
        pytest.skip(f"real dataset {path} not available (set SKLEARN_SLIDE_DATA)")
    n, d, L, n_empty = REAL[split]
    X, Y = load_xc(path)
    assert X.shape == (n, d) and Y.shape == (n, L)
    assert X.has_sorted_indices and Y.has_sorted_indices
    if n_empty is not None:
        assert int(np.sum(Y.getnnz(axis=1) == 0)) == n_empty
    if split.startswith("seqgo"):
        assert X.data.min() < 0  # z-scored dense features
        assert X.nnz / n == pytest.approx(439, abs=1)
    else:
        np.testing.assert_array_equal(X.data, 1)  # binary bag of words


def test_real_dataset_averages_match_readme():
    folder = _data_dir() / "bibtex"
    if not folder.exists():
        pytest.skip(f"real dataset folder {folder} not available (set SKLEARN_SLIDE_DATA)")
    Xs, Ys = zip(*(load_xc(folder / f"{s}.txt.gz") for s in ("train", "test")))
    X, Y = sp.vstack(Xs), sp.vstack(Ys)
    assert Y.nnz / Y.shape[0] == pytest.approx(2.4, abs=0.05)
    assert X.nnz / X.shape[0] == pytest.approx(68.6, abs=0.1)


# ---------------------------------------------------------------- generator


def test_generator_shapes_dtypes_and_structure():
    X, Y = make_extreme_multilabel(2000, 3000, 400, random_state=0)
    assert X.shape == (2000, 3000) and Y.shape == (2000, 400)
    assert X.format == "csr" and Y.format == "csr"
    assert X.dtype == np.float32 and Y.dtype == np.int32
    for M in (X, Y):
        M.check_format(full_check=True)
        assert M.has_sorted_indices
        # sorted and no duplicates: strictly increasing within rows
        for i in (0, 1, 999, 1999):
            assert np.all(np.diff(M.indices[M.indptr[i]:M.indptr[i + 1]]) > 0)
    np.testing.assert_array_equal(Y.data, 1)
    assert X.data.min() > 0
    np.testing.assert_allclose(sp.linalg.norm(X, axis=1), 1, rtol=1e-5)
    per_row = Y.getnnz(axis=1)
    assert per_row.min() >= 1 and per_row.max() <= 5
    assert 2.0 < per_row.mean() < 3.5
    assert X.nnz / X.shape[0] == pytest.approx(75, rel=0.15)


def test_generator_options():
    X, Y, F = make_extreme_multilabel(
        500, 1000, 50, n_labels_per_sample=2, nnz_per_sample=20, n_label_groups=5,
        noise=0.0, return_label_features=True, random_state=1,
    )
    assert set(Y.getnnz(axis=1)) <= {1, 2}
    assert F.shape == (50, 1000) and F.dtype == np.float32
    np.testing.assert_allclose(np.asarray(F.sum(axis=1)).ravel(), 1, rtol=1e-5)
    # Without noise every word of a document is a signal word of its labels.
    allowed = (Y @ (F > 0).astype(np.int32)).toarray() > 0
    assert np.all(allowed[X.nonzero()])


def test_generator_determinism():
    a = make_extreme_multilabel(300, 500, 60, random_state=7)
    b = make_extreme_multilabel(300, 500, 60, random_state=np.random.RandomState(7))
    c = make_extreme_multilabel(300, 500, 60, random_state=7)
    d = make_extreme_multilabel(300, 500, 60, random_state=8)
    for A, C in zip(a, c):
        _assert_same_csr(A, C)
    assert (a[1] != d[1]).nnz > 0
    assert b[0].shape == a[0].shape


def test_generator_power_law():
    _, Y = make_extreme_multilabel(20000, 2000, 2000, random_state=0)
    counts = np.sort(np.bincount(Y.indices, minlength=2000))[::-1]
    # Head labels are far more frequent than torso and tail labels ...
    assert counts[0] > 10 * counts[200] and counts[200] >= 2 * counts[1500]
    # ... yet the most frequent label tags only a few percent of documents.
    assert counts[0] / 20000 < 0.1
    # Log-log slope of frequency against rank close to -1 in the tail.
    ranks = np.arange(100, 1000)
    slope = np.polyfit(np.log(ranks + 10), np.log(counts[ranks] + 0.5), 1)[0]
    assert -1.4 < slope < -0.7


def test_generator_steeper_exponent_gives_heavier_head():
    heads = []
    for exponent in (0.5, 1.5):
        _, Y = make_extreme_multilabel(3000, 500, 500, label_frequency_exponent=exponent, random_state=0)
        heads.append(np.bincount(Y.indices).max())
    assert heads[1] > 3 * heads[0]


def _centroid_p_at_1(X, Y, n_train):
    Xtr, Ytr, Xte, Yte = X[:n_train], Y[:n_train], X[n_train:], Y[n_train:]
    centroids = normalize((Ytr.T.astype(np.float32) @ Xtr).tocsr())
    top = np.asarray((Xte @ centroids.T).toarray().argmax(axis=1)).ravel()
    centroid = np.asarray(Yte[np.arange(Yte.shape[0]), top]).ravel().mean()
    most_frequent = np.bincount(Ytr.indices, minlength=Y.shape[1]).argmax()
    baseline = np.asarray(Yte[:, most_frequent].toarray()).mean()
    return centroid, baseline


def test_generator_is_learnable_but_not_trivial():
    X, Y = make_extreme_multilabel(6000, 20000, 1000, random_state=0)
    centroid, baseline = _centroid_p_at_1(X, Y, 5000)
    assert 0.5 < centroid < 0.95
    assert baseline < 0.1
    # More noise makes it harder; full noise makes it unlearnable.
    harder, _ = _centroid_p_at_1(*make_extreme_multilabel(6000, 20000, 1000, noise=0.8, random_state=0), 5000)
    hopeless, _ = _centroid_p_at_1(*make_extreme_multilabel(6000, 20000, 1000, noise=1.0, random_state=0), 5000)
    assert hopeless < 0.1 < harder < centroid


def test_generator_moderately_large():
    X, Y = make_extreme_multilabel(50_000, 100_000, 100_000, random_state=0)
    assert X.shape == (50_000, 100_000) and Y.shape == (50_000, 100_000)
    assert Y.getnnz(axis=1).min() >= 1


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(n_samples=0), "n_samples"),
        (dict(n_samples=2.5), "n_samples"),
        (dict(n_features=0), "n_features"),
        (dict(n_labels=0), "n_labels"),
        (dict(n_labels=True), "n_labels"),
        (dict(n_labels_per_sample=(0, 3)), "n_labels_per_sample"),
        (dict(n_labels_per_sample=(3, 2)), "n_labels_per_sample"),
        (dict(n_labels_per_sample=(1, 50)), "n_labels_per_sample"),
        (dict(n_labels_per_sample=(1, 2, 3)), "n_labels_per_sample"),
        (dict(nnz_per_sample=0), "nnz_per_sample"),
        (dict(label_frequency_exponent=-1.0), "label_frequency_exponent"),
        (dict(label_frequency_exponent="1"), "label_frequency_exponent"),
        (dict(n_label_groups=0), "n_label_groups"),
        (dict(n_label_groups=100), "n_label_groups"),
        (dict(noise=1.5), "noise"),
        (dict(noise=float("nan")), "noise"),
        (dict(return_label_features="yes"), "return_label_features"),
        (dict(random_state="seed"), "random_state"),
    ],
)
def test_generator_validation(kwargs, name):
    params = dict(n_samples=10, n_features=20, n_labels=10)
    params.update(kwargs)
    with pytest.raises(ValueError, match=name):
        make_extreme_multilabel(**params)


# ---------------------------------------------------------- load_xc_folder


def test_load_xc_folder_gives_test_the_training_widths(tmp_path):
    X, Y = make_extreme_multilabel(60, 50, 30, random_state=0)
    dump_xc(X[:40], Y[:40], tmp_path / "train.txt")
    # The test part alone would declare narrower matrices in its header.
    X_test, Y_test = X[40:, :10], Y[40:, :5]
    dump_xc(X_test, Y_test, tmp_path / "test.txt.gz")
    X_train, Y_train, X_test_read, Y_test_read = load_xc_folder(tmp_path)
    assert X_train.shape == (40, 50) and Y_train.shape == (40, 30)
    assert X_test_read.shape == (20, 50) and Y_test_read.shape == (20, 30)
    np.testing.assert_array_equal(X_test_read[:, :10].toarray(), X_test.toarray())
    np.testing.assert_array_equal(Y_test_read[:, :5].toarray(), Y_test.toarray())


def test_load_xc_folder_names_the_missing_file(tmp_path):
    X, Y = make_extreme_multilabel(20, 10, 5, random_state=0)
    dump_xc(X, Y, tmp_path / "train.txt")
    with pytest.raises(FileNotFoundError, match="must contain test.txt"):
        load_xc_folder(tmp_path)
