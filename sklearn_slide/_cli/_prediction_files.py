"""Text files of top-k predictions, written a block of rows at a time.

Two formats:

- ``xc``: the Extreme Classification Repository's score-matrix format (read
  by pyxclib and the XC evaluation scripts): a header ``n_rows n_labels``,
  then one line per row of ``label:score`` pairs, best first.
- ``text``: one ``row label score`` line per prediction (0-based row of the
  input file), best first within a row: a table for pandas, awk or SQL.
"""

import contextlib
import os
import sys
import tempfile

import numpy as np

from ..datasets._xc_format import _open_for_writing
from ._errors import FileProblem

FORMATS = ("xc", "text")

# float32 scores print with 7 significant digits: enough to rank them as
# the engine did (ties aside) at half the text of a round-trip format.
_SCORE_FORMAT = "%.7g"


class PredictionWriter:
    """Writes the (labels, scores) blocks of ``predict_topk`` to ``out``.

    Parameters
    ----------
    out : file object with a ``write(bytes)`` method
    fmt : {"xc", "text"}
    n_rows, n_labels : int
        Shape of the whole prediction (the ``xc`` header).
    """

    def __init__(self, out, fmt, n_rows, n_labels):
        if fmt not in FORMATS:
            raise ValueError(f"unknown prediction format {fmt!r}; expected one of {FORMATS}")
        self.out = out
        self.fmt = fmt
        self.next_row = 0
        if fmt == "xc":
            out.write(f"{n_rows} {n_labels}\n".encode("ascii"))

    def write(self, labels, scores):
        """Append the predictions of the next ``labels.shape[0]`` rows.

        Labels ``-1`` (no label) are left out.
        """
        keep = labels >= 0
        per_row = keep.sum(axis=1)
        flat_labels = labels[keep].tolist()
        flat_scores = scores[keep].astype(np.float64).tolist()
        if self.fmt == "xc":
            pair = f"%d:{_SCORE_FORMAT}"
            if per_row.size and np.all(per_row == per_row[0]):
                template = (" ".join([pair] * int(per_row[0])) + "\n") * per_row.size
            else:
                template = "".join(" ".join([pair] * int(n)) + "\n" for n in per_row.tolist())
            items = [None] * (2 * len(flat_labels))
            items[0::2], items[1::2] = flat_labels, flat_scores
        else:
            template = f"%d %d {_SCORE_FORMAT}\n" * len(flat_labels)
            rows = np.repeat(np.arange(self.next_row, self.next_row + labels.shape[0]), per_row)
            items = [None] * (3 * len(flat_labels))
            items[0::3], items[1::3], items[2::3] = rows.tolist(), flat_labels, flat_scores
        self.out.write((template % tuple(items)).encode("ascii"))
        self.next_row += labels.shape[0]


def check_writable(path):
    """FileProblem unless a file can be created at ``path`` (None or '-' is
    standard output): checked before a long run rather than after it."""
    if path is None or str(path) == "-":
        return
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise FileProblem(f"cannot write {path}: it is a folder")
    if not os.path.isdir(folder):
        raise FileProblem(f"cannot write {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise FileProblem(f"cannot write {path}: folder {folder} is not writable")


@contextlib.contextmanager
def replaced_on_success(path):
    """A temporary path beside ``path``, renamed to it if the block succeeds.

    An interrupted or failed run thus never leaves a partial file that looks
    complete, nor destroys the file it was replacing.  The suffix of ``path``
    is kept (it chooses the compression).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    suffix = "".join(part for part in (".gz", ".bz2") if path.lower().endswith(part))
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".partial-", suffix=suffix)
    except OSError as exc:
        raise FileProblem(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would outlive the rename
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def output_file(path):
    """A binary file writing to ``path`` (see :func:`replaced_on_success`),
    or to standard output for None or '-'.  A ``.gz`` or ``.bz2`` suffix
    compresses."""
    if path is None or str(path) == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with replaced_on_success(path) as tmp, _open_for_writing(tmp) as fh:
        yield fh
