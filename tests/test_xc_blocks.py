"""Reading XC files in blocks of rows: iter_xc and read_xc_header."""

import gzip

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_slide.datasets import dump_xc, iter_xc, load_xc, make_extreme_multilabel, read_xc_header
from sklearn_slide.datasets import _xc_format


@pytest.fixture
def xc_file(tmp_path):
    X, Y = make_extreme_multilabel(500, 300, 40, nnz_per_sample=10, random_state=0)
    path = tmp_path / "data.txt.gz"
    dump_xc(X, Y, path)
    return path, X, Y


def _assert_same_csr(A, B):
    assert A.shape == B.shape and A.dtype == B.dtype
    np.testing.assert_array_equal(A.indptr, B.indptr)
    np.testing.assert_array_equal(A.indices, B.indices)
    np.testing.assert_array_equal(A.data, B.data)


@pytest.mark.parametrize("block_rows", [1, 7, 128, 500, 10_000])
@pytest.mark.parametrize("block_bytes", [997, 1 << 23])
def test_blocks_stack_to_load_xc(xc_file, monkeypatch, block_rows, block_bytes):
    # Byte blocks smaller and larger than row blocks: rows are regrouped exactly.
    path, X, Y = xc_file
    monkeypatch.setattr(_xc_format, "_BLOCK_BYTES", block_bytes)
    blocks = list(iter_xc(path, block_rows))
    sizes = [Xb.shape[0] for Xb, _ in blocks]
    assert sizes == [block_rows] * (500 // block_rows) + ([500 % block_rows] if 500 % block_rows else [])
    _assert_same_csr(sp.vstack([b[0] for b in blocks], format="csr"), X)
    _assert_same_csr(sp.vstack([b[1] for b in blocks], format="csr"), Y.astype(np.int32))
    for Xb, Yb in blocks:
        assert Xb.format == Yb.format == "csr" and Xb.dtype == np.float32 and Yb.dtype == np.int32


def test_widths_overrides_and_header(xc_file):
    path, X, Y = xc_file
    assert read_xc_header(path) == (500, 300, 40)
    Xb, Yb = next(iter_xc(path, 100, n_features=350, n_labels=45))
    assert Xb.shape == (100, 350) and Yb.shape == (100, 45)
    with pytest.raises(ValueError, match="n_features=299 is smaller than the 300"):
        next(iter_xc(path, 100, n_features=299))


def test_empty_file_body_yields_nothing(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("0 10 5\n")
    assert list(iter_xc(path)) == []


@pytest.mark.parametrize("block_rows", [0, -1, 2.5, True, "10"])
def test_bad_block_rows(xc_file, block_rows):
    with pytest.raises(ValueError, match="block_rows must be a positive int"):
        next(iter_xc(xc_file[0], block_rows))


def test_error_in_a_later_block_names_its_line(tmp_path, monkeypatch):
    X, Y = make_extreme_multilabel(400, 300, 40, nnz_per_sample=10, random_state=0)
    path = tmp_path / "bad.txt"
    dump_xc(X, Y, path)
    lines = path.read_text().splitlines(keepends=True)
    lines[301] = lines[301].replace(":", "::", 1)
    path.write_text("".join(lines))
    monkeypatch.setattr(_xc_format, "_BLOCK_BYTES", 997)
    blocks = iter_xc(path, 50)
    good = [next(blocks) for _ in range(5)]  # rows before the bad line come through
    _assert_same_csr(sp.vstack([b[0] for b in good], format="csr"), X[:250])
    with pytest.raises(ValueError, match=f"{path}, line 302: expected 'feature:value'"):
        list(blocks)


def test_truncated_file_raises_at_the_end(tmp_path):
    X, Y = make_extreme_multilabel(100, 50, 10, random_state=0)
    full = tmp_path / "full.txt"
    dump_xc(X, Y, full)
    text = full.read_bytes()
    cut = tmp_path / "cut.txt.gz"
    cut.write_bytes(gzip.compress(text[: text.rfind(b"\n", 0, len(text) // 2) + 1]))
    with pytest.raises(ValueError, match="truncated file"):
        list(iter_xc(cut, 10))
    with pytest.raises(ValueError, match="truncated file"):
        load_xc(cut)  # the same check as the whole-file reader


def test_bad_header(tmp_path):
    path = tmp_path / "h.txt"
    path.write_text("3 x 4\n")
    with pytest.raises(ValueError, match="line 1: bad header"):
        read_xc_header(path)
    with pytest.raises(ValueError, match="line 1: bad header"):
        next(iter_xc(path))
