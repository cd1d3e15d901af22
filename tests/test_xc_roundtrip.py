"""Whatever dump_xc writes, load_xc reads back identically; the rest is refused first.

A property test over random matrices (hypothesis): every shape from empty
files to rows without labels or features, every float32 value (subnormals,
the largest, signed zeros), dense and sparse inputs of every index width,
plain and compressed files.
"""

import numpy as np
import pytest
import scipy.sparse as sp

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from sklearn_slide.datasets import dump_xc, load_xc  # noqa: E402

FLOAT32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
SUFFIXES = ("txt", "txt.gz", "txt.bz2")


@st.composite
def datasets(draw):
    """(X, Y, X_expected, Y_expected): inputs as a user gives them, and the
    float32 / 0-1 matrices load_xc must return."""
    n_rows = draw(st.integers(0, 12))
    n_features = draw(st.integers(0, 9))
    n_labels = draw(st.integers(0, 7))
    has_feature = draw(hnp.arrays(np.bool_, (n_rows, n_features)))
    values = draw(hnp.arrays(np.float32, (n_rows, n_features), elements=FLOAT32))
    X_dense = np.where(has_feature, values, np.float32(0))
    Y_dense = draw(hnp.arrays(np.bool_, (n_rows, n_labels))).astype(np.int8)
    X = _as_user_input(draw, X_dense)
    Y = _as_user_input(draw, Y_dense)
    return X, Y, X_dense, Y_dense


def _as_user_input(draw, dense):
    kind = draw(st.sampled_from(["dense", "csr", "csc", "coo", "lil", "csr64"]))
    if kind == "dense":
        return dense
    if kind == "csr64":
        M = sp.csr_matrix(dense)
        M.indices, M.indptr = M.indices.astype(np.int64), M.indptr.astype(np.int64)
        return M
    return sp.csr_matrix(dense).asformat(kind)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(data=datasets(), suffix=st.sampled_from(SUFFIXES))
def test_load_reads_back_what_dump_wrote(tmp_path_factory, data, suffix):
    X, Y, X_expected, Y_expected = data
    path = tmp_path_factory.mktemp("xc") / f"data.{suffix}"
    dump_xc(X, Y, path)
    X_read, Y_read = load_xc(path)
    assert X_read.shape == X_expected.shape and Y_read.shape == Y_expected.shape
    assert X_read.dtype == np.float32 and Y_read.dtype == np.int32
    # Bit for bit: float32 values survive the text form (9 significant digits).
    np.testing.assert_array_equal(X_read.toarray().view(np.uint32),
                                  (X_expected + np.float32(0)).view(np.uint32))
    np.testing.assert_array_equal(Y_read.toarray(), Y_expected)


def test_empty_file_and_rows_without_anything(tmp_path):
    for n_rows in (0, 1, 3):
        path = tmp_path / f"empty{n_rows}.txt"
        dump_xc(sp.csr_matrix((n_rows, 4)), sp.csr_matrix((n_rows, 2)), path)
        X, Y = load_xc(path)
        assert X.shape == (n_rows, 4) and Y.shape == (n_rows, 2) and X.nnz == Y.nnz == 0


def _broken_column_index():
    X = sp.csr_matrix(np.eye(3))
    X.indices[0] = 7  # beyond the 3 columns
    return X


REFUSED = [
    ("out-of-range column", lambda: (_broken_column_index(), np.eye(3)), "out of range"),
    ("label value 2", lambda: (np.eye(3), 2 * np.eye(3)), "binary"),
    ("label value -1", lambda: (np.eye(3), -np.eye(3)), "binary"),
    ("NaN label", lambda: (np.eye(3), np.full((3, 3), np.nan)), "binary"),
    ("NaN feature", lambda: (np.full((3, 3), np.nan), np.eye(3)), "NaN"),
    ("feature beyond float32", lambda: (np.full((3, 3), 1e300), np.eye(3)), "float32"),
    ("complex features", lambda: (np.eye(3) * 1j, np.eye(3)), "real numbers"),
    ("string labels", lambda: (np.eye(3), np.array([["a"] * 3] * 3)), "real numbers"),
    ("width beyond 2**53", lambda: (sp.csr_matrix((1, 2**53)), sp.csr_matrix((1, 1))), "2\\*\\*53"),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("case, make, message", REFUSED, ids=[c[0] for c in REFUSED])
def test_what_cannot_be_read_back_is_refused_before_writing(tmp_path, case, make, message):
    X, Y = make()
    path = tmp_path / "refused.txt"
    with pytest.raises((ValueError, TypeError), match=message):
        dump_xc(X, Y, path)
    assert not path.exists()
