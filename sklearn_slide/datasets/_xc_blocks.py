"""Reading an Extreme Classification Repository file in blocks of rows.

For files larger than memory, or to predict while reading: the memory held is
one block of rows plus one block of decompressed bytes, whatever the file's
size.  Parsing and its checks are those of :func:`load_xc`.
"""

import numbers

import scipy.sparse as sp

from ._xc_format import (
    _assemble_xy,
    _check_size_override,
    _open_binary,
    _parsed_blocks,
    _read_header,
)


def read_xc_header(path):
    """The header of an XC file: ``(n_points, n_features, n_labels)``.

    Reads the first line only (of the decompressed content for gzip and
    bzip2 files).

    Raises
    ------
    ValueError
        If the header is not three non-negative integers.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_slide.datasets import read_xc_header
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.txt")
    >>> with open(path, "w") as f:
    ...     _ = f.write("2 4 3\\n0,2 1:0.5 3:1\\n 0:2\\n")
    >>> read_xc_header(path)
    (2, 4, 3)
    """
    with _open_binary(path) as fh:
        return _read_header(fh, path)


def iter_xc(path, block_rows=10_000, *, n_features=None, n_labels=None):
    """Read an XC file as consecutive blocks of ``block_rows`` rows.

    Yields what :func:`load_xc` returns, a block at a time; stacking the
    blocks gives ``load_xc(path)``.  A malformed line raises when the block
    holding it is read, so blocks before it may already have been yielded.

    Parameters
    ----------
    path : str or path-like
        File to read (plain, gzip or bzip2).
    block_rows : int, default=10_000
        Rows per block; the last block may have fewer.
    n_features, n_labels : int, default=None
        Widths of the blocks, as in :func:`load_xc`.

    Yields
    ------
    X : scipy.sparse.csr_matrix of shape (n_rows, n_features), dtype float32
    Y : scipy.sparse.csr_matrix of shape (n_rows, n_labels), dtype int32

    Raises
    ------
    ValueError
        If the file is malformed (see :func:`load_xc`) or ``block_rows`` is
        not a positive int.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_slide.datasets import iter_xc
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.txt")
    >>> with open(path, "w") as f:
    ...     _ = f.write("3 4 3\\n0,2 1:0.5 3:1\\n 0:2\\n1 2:1\\n")
    >>> [X.shape for X, Y in iter_xc(path, block_rows=2)]
    [(2, 4), (1, 4)]
    """
    if (isinstance(block_rows, bool) or not isinstance(block_rows, numbers.Integral)
            or block_rows < 1):
        raise ValueError(f"block_rows must be a positive int, got {block_rows!r}")
    with _open_binary(path) as fh:
        header = _read_header(fh, path)
        n_cols = _check_size_override(n_features, header[1], "n_features")
        n_lab = _check_size_override(n_labels, header[2], "n_labels")
        # Rows parsed but not yet yielded: X and Y, at most one byte block
        # beyond block_rows.
        held = None
        for parsed in _parsed_blocks(fh, path, header):
            X, Y = _assemble_xy([[part] for part in parsed[1:]], parsed[0], n_cols, n_lab)
            if held is not None:
                X, Y = sp.vstack([held[0], X], format="csr"), sp.vstack([held[1], Y], format="csr")
            full = X.shape[0] - X.shape[0] % block_rows
            for start in range(0, full, block_rows):
                yield X[start:start + block_rows], Y[start:start + block_rows]
            held = (X[full:], Y[full:])
        if held is not None and held[0].shape[0]:
            yield held
