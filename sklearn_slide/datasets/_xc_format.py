"""Reader and writer for the Extreme Classification Repository text format.

The format (used by the XC repository, Parabel, PfastreXML, napkinXC, ...) is::

    n_points n_features n_labels
    l1,l2,l3 f:v f:v ...
     f:v f:v ...              <- a point without labels starts with a space

Ids are 0-based.  The reader is vectorised: each block of lines is classified
byte by byte with NumPy, so no Python code runs per token or per line, and
the memory it needs is the output (O(nnz)) plus one block.

Why one module of ~650 lines: it is one file format. The reader is one
vectorised tokenizer (byte classes, token runs, per-line checks with the line
number in every error) whose intermediate arrays flow from step to step, so
splitting it would only pass them between files; the writer is the reader's
inverse (``dump_xc`` output loads back to the same matrices, which the tests
check), so the two change together. Streaming by blocks (``iter_xc``) is
``_xc_blocks``.
"""

import bz2
import gzip
import os
import warnings
import zlib

import numpy as np
import scipy.sparse as sp

from .._input import checked_csr

# Decompressed bytes parsed at once: the char-level temporaries cost about
# 30 bytes per input byte, so 8 MiB keeps the working set near 250 MB.
_BLOCK_BYTES = 1 << 23

# Ids are parsed as float64; keeping sizes below 2**53 keeps them exact.
_MAX_SIZE = 2**53

# Byte classes of the tokenizer.
_INVALID, _DIGIT, _NUMCHAR, _COLON, _COMMA, _SPACE, _NEWLINE = range(7)
_CLASS = np.zeros(256, dtype=np.uint8)
_CLASS[np.frombuffer(b"0123456789", dtype=np.uint8)] = _DIGIT
_CLASS[np.frombuffer(b".+-eE", dtype=np.uint8)] = _NUMCHAR
_CLASS[ord(":")] = _COLON
_CLASS[ord(",")] = _COMMA
_CLASS[np.frombuffer(b" \t\r", dtype=np.uint8)] = _SPACE
_CLASS[ord("\n")] = _NEWLINE

_VALID_BYTES = bytes(np.flatnonzero(_CLASS).tolist())

# The same classes as a bytes.translate table, which is several times faster
# than a NumPy lookup.
_CLASS_TABLE = _CLASS.tobytes()

# Turns "l1,l2 f:v" into "l1 l2 f v" so one np.fromstring call parses a block.
_TO_SPACES = bytes.maketrans(b":,", b"  ")

_GZIP_MAGIC = b"\x1f\x8b"
_BZ2_MAGIC = b"BZh"

# Errors the decompressors raise on truncated or corrupt input.
_DECOMPRESSION_ERRORS = (EOFError, OSError, zlib.error)


class _FormatError(ValueError):
    """A malformed file; carries the 1-based line number."""

    def __init__(self, line, message):
        super().__init__(message)
        self.line = line
        self.message = message


def _open_binary(path):
    """Open ``path`` for reading bytes, decompressing gzip or bzip2.

    The compression is detected from the magic bytes rather than the suffix,
    so a misnamed file still loads.  No valid plain XC file can start with
    either magic, because the header starts with a digit.
    """
    with open(path, "rb") as fh:
        magic = fh.read(3)
    if magic.startswith(_GZIP_MAGIC):
        return gzip.open(path, "rb")
    if magic.startswith(_BZ2_MAGIC):
        return bz2.open(path, "rb")
    return open(path, "rb")


def _open_for_writing(path):
    """Open ``path`` for writing bytes, compressing by its suffix."""
    name = os.fspath(path)
    lower = str(name).lower()
    if lower.endswith(".gz"):
        # Level 6 is gzip's own default: level 9 is several times slower
        # for a few percent smaller files.
        return gzip.open(path, "wb", compresslevel=6)
    if lower.endswith(".bz2"):
        return bz2.open(path, "wb")
    return open(path, "wb")


def _parse_header(line):
    """Parse ``n_points n_features n_labels``; raise ``_FormatError``."""
    if not line:
        raise _FormatError(1, "empty file: expected a header 'n_points n_features n_labels'")
    fields = line.split()
    if len(fields) != 3 or not all(f.isdigit() for f in fields):
        shown = line[:60].decode("ascii", errors="replace").strip()
        raise _FormatError(
            1, f"bad header {shown!r}: expected three non-negative integers "
            "'n_points n_features n_labels'"
        )
    sizes = tuple(int(f) for f in fields)
    if max(sizes) >= _MAX_SIZE:
        raise _FormatError(1, f"header sizes {sizes} are too large")
    return sizes


def _runs(mask):
    """Start and end (exclusive) positions of the runs of True in ``mask``."""
    edges = np.diff(mask.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _field_text(buf, pos, limit=40):
    """The whitespace-delimited field around ``buf[pos]``, for error messages."""
    start = pos
    while start > 0 and _CLASS[buf[start - 1]] < _SPACE:
        start -= 1
    stop = pos
    while stop < len(buf) and _CLASS[buf[stop]] < _SPACE:
        stop += 1
    piece = buf[start:min(stop, start + limit)].decode("ascii", errors="replace")
    return piece + ("..." if stop - start > limit else "")


def _of_next(mask):
    """``mask`` of the next token (False for the last one)."""
    return np.append(mask[1:], False)


def _of_previous(mask):
    """``mask`` of the previous token (False for the first one)."""
    return np.insert(mask[:-1], 0, False)


def _sort_rows(rows, ids, n_cols, first_line, what, *payload):
    """Order entries by (row, id); reject a repeated id within a row.

    Files are nearly always sorted already, so the check is a cheap
    comparison and the sort runs only when needed.
    """
    keys = rows * np.int64(n_cols) + ids
    if keys.size < 2 or bool(np.all(keys[1:] > keys[:-1])):
        return (ids,) + payload
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    dup = np.flatnonzero(keys[1:] == keys[:-1])
    if dup.size:
        key = int(keys[dup[0]])
        raise _FormatError(
            first_line + key // n_cols, f"duplicate {what} {key % n_cols}"
        )
    return (ids[order],) + tuple(p[order] for p in payload)


def _parse_block(buf, first_line, rows_left, n_features, n_labels):
    """Parse a block; flag errors on an unterminated last line as truncation."""
    try:
        return _parse_lines(buf, first_line, rows_left, n_features, n_labels)
    except _FormatError as exc:
        last_line = first_line + buf.count(b"\n")
        if not buf.endswith(b"\n") and exc.line == last_line:
            exc.message += " (the file ends in this line without a newline: truncated?)"
        raise


def _parse_lines(buf, first_line, rows_left, n_features, n_labels):
    """Parse complete lines of the body into per-row label and feature ids.

    Every token (maximal run of number characters) gets its role from the
    separators around it: a token followed by ':' is a feature index, one
    preceded by ':' a value, any other a label id.  The layout rules are then
    checked on whole arrays of tokens.

    Parameters
    ----------
    buf : bytes
        Whole lines; only the last one may lack its newline.
    first_line : int
        1-based line number of the first line of ``buf``.
    rows_left : int
        Rows the header still expects; lines past them must be blank.
    n_features, n_labels : int
        Ids must be below these.

    Returns
    -------
    n_rows : int
        Rows contributed by this block.
    label_counts, labels, feature_counts, features, values : ndarray
        Labels and features of each row, sorted within rows.
    """
    # Padding with a newline on both sides makes the block edges line edges.
    pad = bytes([_NEWLINE])
    cls = np.frombuffer(pad + buf.translate(_CLASS_TABLE) + pad, dtype=np.uint8)
    body = cls[1:-1]
    newlines = np.flatnonzero(body == _NEWLINE)

    def line_of(pos):
        return first_line + int(np.searchsorted(newlines, pos))

    # Deleting the valid bytes is a fast C-level test for invalid ones.
    if buf.translate(None, _VALID_BYTES):
        pos = int(np.argmin(body))
        raise _FormatError(line_of(pos), f"unexpected character {buf[pos:pos + 1]!r}")

    n_lines = newlines.size + int(len(buf) > 0 and not buf.endswith(b"\n"))
    start, stop = _runs(body < _COLON)
    before = cls[start]  # cls is shifted by one: cls[i] is the char before body[i]
    after = cls[stop + 1]
    n_tokens = start.size

    # Line of every token, from the token count of every line (lines are far
    # fewer than tokens, so this beats a search per token).
    line_bounds = np.searchsorted(start, np.append(newlines, len(buf) + 1))[:n_lines]
    tokens_per_line = np.diff(line_bounds, prepend=0)
    token_line = np.repeat(np.arange(n_lines), tokens_per_line)
    beyond = np.flatnonzero(tokens_per_line[rows_left:])
    if beyond.size:
        raise _FormatError(
            first_line + rows_left + int(beyond[0]),
            "more rows than n_points declared in the header",
        )

    is_value = before == _COLON
    is_feature = after == _COLON
    is_label = ~(is_value | is_feature)
    # next_touches[t]: token t+1 starts right after the one separator ending t.
    next_touches = np.zeros(n_tokens, dtype=bool)
    next_touches[:-1] = stop[:-1] + 1 == start[1:]
    prev_touches = np.zeros(n_tokens, dtype=bool)
    prev_touches[1:] = next_touches[:-1]
    at_edge_before = (before == _SPACE) | (before == _NEWLINE)
    at_edge_after = (after == _SPACE) | (after == _NEWLINE)

    # "f:v" stands alone between whitespace; labels are "l1,l2,..." opening
    # the line (a label-less row starts with a space).
    ok = np.where(
        is_feature,
        at_edge_before & ~is_value & _of_next(is_value) & next_touches,
        np.where(
            is_value,
            at_edge_after & _of_previous(is_feature) & prev_touches,
            ((before == _NEWLINE) | ((before == _COMMA) & _of_previous(is_label) & prev_touches))
            & (at_edge_after | ((after == _COMMA) & _of_next(is_label) & next_touches)),
        ),
    )
    wrong = np.flatnonzero(~ok)
    if wrong.size:
        t = int(wrong[0])
        pos = int(start[t])
        field = _field_text(buf, pos)
        if is_label[t] and before[t] == _SPACE:
            message = f"label list {field!r} must be the first field of the line"
        elif is_label[t]:
            message = f"malformed label list {field!r}"
        else:
            message = f"expected 'feature:value', got {field!r}"
        raise _FormatError(line_of(pos), message)
    # Every ':' and ',' must belong to a checked token pair; a stray one
    # (e.g. " : ") touches no token and shows up as a count mismatch.
    n_colons = buf.count(b":")
    n_commas = buf.count(b",")
    if n_colons != np.count_nonzero(is_value) or n_commas != np.count_nonzero(is_label & (before == _COMMA)):
        seps = np.flatnonzero((body == _COLON) | (body == _COMMA))
        stray = seps[~((cls[seps] < _COLON) & (cls[seps + 2] < _COLON))]
        pos = int(stray[0]) if stray.size else 0
        raise _FormatError(line_of(pos), f"stray {buf[pos:pos + 1].decode()!r} in {_field_text(buf, pos)!r}")

    # Ids are plain digit strings: '+', '-', '.', 'e' only occur in values.
    # (logical_or over each token's segment: separators are never NUMCHAR.)
    has_numchar = np.logical_or.reduceat(body == _NUMCHAR, start) if n_tokens else is_value
    bad_id = np.flatnonzero(has_numchar & ~is_value)
    if bad_id.size:
        t = int(bad_id[0])
        what = "feature index" if is_feature[t] else "label id"
        text = buf[start[t]:stop[t]][:40].decode("ascii")
        raise _FormatError(line_of(int(start[t])), f"{what} {text!r} is not a non-negative integer")

    numbers = _parse_numbers(buf, start, stop, line_of)

    # A value just above the float32 maximum still rounds to it; only the
    # ones that overflow to infinity are out of range.
    with np.errstate(over="ignore"):
        values = numbers[is_value].astype(np.float32)
    bad_value = np.flatnonzero(~np.isfinite(values))
    if bad_value.size:
        t = int(np.flatnonzero(is_value)[bad_value[0]])
        text = buf[start[t]:stop[t]][:40].decode("ascii")
        raise _FormatError(line_of(int(start[t])), f"value {text!r} is out of float32 range")

    for mask, limit, what in ((is_label, n_labels, "label id"), (is_feature, n_features, "feature index")):
        out = np.flatnonzero(numbers[mask] >= limit)
        if out.size:
            t = int(np.flatnonzero(mask)[out[0]])
            raise _FormatError(
                line_of(int(start[t])),
                f"{what} {int(numbers[t])} out of range (must be < {limit})",
            )

    n_rows = min(n_lines, rows_left)
    label_rows = token_line[is_label]
    labels = numbers[is_label].astype(np.int64)
    (labels,) = _sort_rows(label_rows, labels, n_labels, first_line, "label id")
    feature_rows = token_line[is_feature]
    features = numbers[is_feature].astype(np.int64)
    features, values = _sort_rows(
        feature_rows, features, n_features, first_line, "feature index", values
    )
    return (
        n_rows,
        np.bincount(label_rows, minlength=n_rows),
        labels,
        np.bincount(feature_rows, minlength=n_rows),
        features,
        values,
    )


def _parse_numbers(buf, token_start, token_end, line_of):
    """Parse every token of ``buf`` as float64 with one C-level call."""
    if token_start.size == 0:  # blank lines only (rows without labels or features)
        return np.zeros(0)
    text = buf.translate(_TO_SPACES)
    try:
        with warnings.catch_warnings():
            # numpy < 2 only warns when it stops early; make it an error.
            warnings.simplefilter("error", DeprecationWarning)
            numbers = np.fromstring(text, dtype=np.float64, sep=" ")
        if numbers.size == token_start.size:
            return numbers
    except (ValueError, DeprecationWarning):
        pass
    # Error path only: find the first token Python cannot parse either.
    for start, stop in zip(token_start.tolist(), token_end.tolist()):
        try:
            float(buf[start:stop])
        except ValueError:
            raise _FormatError(
                line_of(start), f"{buf[start:stop][:40].decode('ascii')!r} is not a number"
            ) from None
    raise _FormatError(line_of(0), "could not parse the numbers of this block")


def _read(read, line, *args):
    """Call ``read(*args)``, turning decompression errors into format errors."""
    try:
        return read(*args)
    except _DECOMPRESSION_ERRORS as exc:
        raise _FormatError(line, f"truncated or corrupt compressed data ({exc})") from exc


def _read_blocks(fh, block_bytes, line):
    """Yield chunks of whole lines (the last chunk may lack a final newline).

    ``line`` is the number of the first line read, for error messages.
    """
    carry = b""
    while True:
        chunk = _read(fh.read, line, block_bytes)
        if not chunk:
            if carry:
                yield carry
            return
        buf = carry + chunk
        cut = buf.rfind(b"\n") + 1
        if cut == 0:
            carry = buf
            continue
        carry = buf[cut:]
        line += buf.count(b"\n", 0, cut)
        yield buf[:cut]


def _check_size_override(value, declared, name):
    if value is None:
        return declared
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be None or an int, got {value!r}")
    if value < declared:
        raise ValueError(
            f"{name}={value} is smaller than the {declared} declared in the file header"
        )
    return int(value)


def _index_dtype(size, nnz):
    return np.int32 if max(size, nnz) < 2**31 else np.int64


def load_xc(path, *, n_features=None, n_labels=None):
    """Load a dataset in the Extreme Classification Repository text format.

    The file starts with the header ``n_points n_features n_labels`` followed
    by one line per point: comma-separated 0-based label ids, then
    space-separated ``feature:value`` pairs, e.g. ``3,17 0:0.5 42:1``.
    gzip and bzip2 files are decompressed transparently (detected from their
    content, whatever the suffix).

    Parameters
    ----------
    path : str or path-like
        File to read.
    n_features : int, default=None
        Number of columns of ``X``; defaults to the header's value and must
        not be smaller.  Use it to give files that share a feature space
        (train and test) the same width.
    n_labels : int, default=None
        Number of columns of ``Y``; defaults to the header's value and must
        not be smaller.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_points, n_features), dtype float32
        Features, with sorted column indices within each row.
    Y : scipy.sparse.csr_matrix of shape (n_points, n_labels), dtype int32
        Label indicator matrix (stored entries are 1), sorted indices.

    Raises
    ------
    ValueError
        If the file is malformed; the message names the file and the line.
        Malformed means: empty file; a header that is not three non-negative
        integers; more or fewer rows than the header declares; a character
        other than digits, ``.+-eE:,``, spaces, tabs and newlines; a label or
        feature id that is not a non-negative integer or is out of range; a
        value that is not a finite float32; a field that is neither the
        leading label list nor ``feature:value``; a label or feature repeated
        within a row; truncated or corrupt compressed data.

    Notes
    -----
    Conventions chosen:

    - A row without labels starts with a space or directly with a
      ``feature:value`` field; a blank line is a row with neither labels nor
      features.  Blank lines after the header's ``n_points`` rows are ignored.
    - Duplicate feature indices within a row are rejected rather than summed:
      the format stores one value per feature, so a repeat signals a broken
      writer.  Rows need not be sorted; the returned matrices are.
    - Explicit zero values (``7:0``) are kept as stored entries so that
      :func:`dump_xc` and ``load_xc`` round-trip a matrix exactly.
    - Line endings may be ``\\n`` or ``\\r\\n``; runs of spaces or tabs are
      allowed between fields.

    Examples
    --------
    >>> import tempfile, os
    >>> from sklearn_slide.datasets import load_xc
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.txt")
    >>> with open(path, "w") as f:
    ...     _ = f.write("2 4 3\\n0,2 1:0.5 3:1\\n 0:2\\n")
    >>> X, Y = load_xc(path)
    >>> X.toarray()
    array([[0. , 0.5, 0. , 1. ],
           [2. , 0. , 0. , 0. ]], dtype=float32)
    >>> Y.toarray()
    array([[1, 0, 1],
           [0, 0, 0]], dtype=int32)
    """
    parts = ([], [], [], [], [])  # label counts, labels, feature counts, ...
    with _open_binary(path) as fh:
        header = _read_header(fh, path)
        n_points = header[0]
        n_cols = _check_size_override(n_features, header[1], "n_features")
        n_lab = _check_size_override(n_labels, header[2], "n_labels")
        for parsed in _parsed_blocks(fh, path, header):
            for out, part in zip(parts, parsed[1:]):
                out.append(part)
    return _assemble_xy(parts, n_points, n_cols, n_lab)


def _read_header(fh, path):
    """``(n_points, n_features, n_labels)`` from the first line of an open file."""
    try:
        return _parse_header(_read(fh.readline, 1))
    except _FormatError as exc:
        raise ValueError(f"{os.fspath(path)}, line {exc.line}: {exc.message}") from None


def _parsed_blocks(fh, path, header):
    """Parse the body of an open file, whose header was read, block by block.

    Yields the tuples of ``_parse_lines``, one per block of about
    ``_BLOCK_BYTES``; raises ValueError naming the file and line on a
    malformed body or on fewer rows than the header declares.
    """
    n_points, n_features, n_labels = header
    line, rows = 2, 0
    try:
        for buf in _read_blocks(fh, _BLOCK_BYTES, line):
            parsed = _parse_block(buf, line, n_points - rows, n_features, n_labels)
            rows += parsed[0]
            line += buf.count(b"\n") + (not buf.endswith(b"\n"))
            yield parsed
    except _FormatError as exc:
        raise ValueError(f"{os.fspath(path)}, line {exc.line}: {exc.message}") from None
    if rows < n_points:
        raise ValueError(
            f"{os.fspath(path)}, line {line}: file ends after {rows} rows but the header "
            f"declares n_points={n_points} (truncated file?)"
        )


def _assemble_xy(parts, n_rows, n_features, n_labels):
    """(X, Y) CSR matrices of the per-block ``parts`` lists."""
    label_counts, labels, feature_counts, features, values = parts
    X = _assemble(feature_counts, features, values, (n_rows, n_features), np.float32)
    Y = _assemble(label_counts, labels, None, (n_rows, n_labels), np.int32)
    return X, Y


def _assemble(counts, ids, values, shape, dtype):
    """Concatenate per-block rows into one CSR matrix without copying twice."""
    counts = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
    nnz = int(counts.sum())
    index_dtype = _index_dtype(shape[1], nnz)
    indptr = np.zeros(shape[0] + 1, dtype=index_dtype)
    np.cumsum(counts, out=indptr[1:])
    indices = np.concatenate(ids).astype(index_dtype) if ids else np.zeros(0, index_dtype)
    if values is None:
        data = np.ones(nnz, dtype=dtype)
    else:
        data = np.concatenate(values) if values else np.zeros(0, dtype)
    matrix = sp.csr_matrix((data, indices, indptr), shape=shape)
    matrix.has_sorted_indices = True
    return matrix


def _as_csr(M, name):
    """Canonical CSR copy of a dense or sparse 2-D real matrix, in its own dtype."""
    if sp.issparse(M):
        M = sp.csr_matrix(checked_csr(M, name), copy=True)
        M.sum_duplicates()  # also sorts the indices
    else:
        M = np.asarray(M)
        if M.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got shape {M.shape}")
        if M.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers, got dtype {M.dtype}")
        M = sp.csr_matrix(M)
    if M.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {M.dtype}")
    if max(M.shape) >= _MAX_SIZE:
        raise ValueError(f"{name} has shape {M.shape}; the format stores sizes below 2**53")
    return M


def _features_as_float32(X):
    """X's values as float32, the format's type; refuse what float32 cannot hold."""
    with np.errstate(over="ignore", invalid="ignore"):
        data = X.data.astype(np.float32)
    if not np.all(np.isfinite(data)):
        raise ValueError(
            "X contains NaN or infinity, or a value beyond the float32 range: the "
            "format cannot store them"
        )
    return sp.csr_matrix((data, X.indices, X.indptr), shape=X.shape)


def _labels_as_pattern(Y):
    """The stored ones of a 0/1 indicator; refuse other values (load_xc reads 1s)."""
    Y.eliminate_zeros()
    if not np.all(Y.data == 1):
        raise ValueError(
            "Y must be a binary (0/1) label indicator matrix: the format stores which "
            "labels are relevant, not values"
        )
    return Y


def dump_xc(X, Y, path):
    """Write a dataset in the Extreme Classification Repository text format.

    ``load_xc(path)`` returns the same matrices (X as float32, Y as int32),
    including rows without labels or features and matrices without rows:
    values are written with 9 significant digits, enough to round-trip every
    float32 exactly.  What the format cannot hold is refused before the file
    is opened.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Features; written as float32.  Stored entries (including explicit
        zeros of a sparse matrix) are written; zeros of a dense array are not.
    Y : {array-like, sparse matrix} of shape (n_samples, n_labels)
        Binary (0/1) label indicator matrix.
    path : str or path-like
        Output file; compressed with gzip if it ends with ``.gz``, with bzip2
        if it ends with ``.bz2``.

    Raises
    ------
    ValueError
        If X and Y differ in rows; X holds NaN, infinity or a value beyond
        float32; Y holds a value other than 0 and 1; a sparse matrix has
        inconsistent index arrays (e.g. an index out of range); a dimension
        is 2**53 or more.
    TypeError
        If X or Y does not hold real numbers.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn_slide.datasets import dump_xc, load_xc
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.txt.gz")
    >>> dump_xc(np.array([[0, 0.25], [1, 0]]), np.array([[1, 1], [0, 0]]), path)
    >>> X, Y = load_xc(path)
    >>> Y.toarray()
    array([[1, 1],
           [0, 0]], dtype=int32)
    """
    X = _features_as_float32(_as_csr(X, "X"))
    Y = _labels_as_pattern(_as_csr(Y, "Y"))
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y have different numbers of rows: {X.shape[0]} != {Y.shape[0]}")

    n_rows = X.shape[0]
    # Rows per formatting call: big enough to amortise the Python overhead,
    # small enough to bound the text held in memory.
    step = max(1, 4_000_000 // max(1, (X.nnz + Y.nnz) // max(1, n_rows)))
    with _open_for_writing(path) as fh:
        fh.write(f"{X.shape[0]} {X.shape[1]} {Y.shape[1]}\n".encode("ascii"))
        for start in range(0, n_rows, step):
            stop = min(n_rows, start + step)
            fh.write(_format_rows(X, Y, start, stop).encode("ascii"))


def _format_rows(X, Y, start, stop):
    """Text of rows ``start:stop`` through one ``%`` call on one long tuple."""
    n_labels = np.diff(Y.indptr[start:stop + 1])
    n_pairs = np.diff(X.indptr[start:stop + 1])
    templates = [
        ",".join(("%d",) * a) + " %d:%.9g" * b + "\n"
        for a, b in zip(n_labels.tolist(), n_pairs.tolist())
    ]
    # Interleave, row by row: the labels, then feature, value, feature, ...
    width = n_labels + 2 * n_pairs
    offset = np.concatenate(([0], np.cumsum(width)))
    items = np.empty(int(offset[-1]), dtype=object)
    rows = np.arange(stop - start)
    y_lo, y_hi = Y.indptr[start], Y.indptr[stop]
    x_lo, x_hi = X.indptr[start], X.indptr[stop]
    label_row = np.repeat(rows, n_labels)
    label_rank = np.arange(y_hi - y_lo) - (Y.indptr[start:stop] - y_lo)[label_row]
    items[offset[label_row] + label_rank] = Y.indices[y_lo:y_hi].tolist()
    pair_row = np.repeat(rows, n_pairs)
    pair_rank = np.arange(x_hi - x_lo) - (X.indptr[start:stop] - x_lo)[pair_row]
    slot = offset[pair_row] + n_labels[pair_row] + 2 * pair_rank
    items[slot] = X.indices[x_lo:x_hi].tolist()
    # float32 -> float64 is exact; '%.9g' then prints the float32 faithfully.
    items[slot + 1] = X.data[x_lo:x_hi].astype(np.float64).tolist()
    return "".join(templates) % tuple(items.tolist())
