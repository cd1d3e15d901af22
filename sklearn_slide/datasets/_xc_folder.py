"""A train/test split of the Extreme Classification Repository as one folder."""

from pathlib import Path

from ._xc_format import load_xc


def load_xc_folder(folder):
    """Load ``train.txt`` and ``test.txt`` (or ``.gz`` / ``.bz2``) from ``folder``.

    The test matrices get the training file's widths, so that a model fitted
    on the training part accepts the test part.

    Returns
    -------
    X_train, Y_train, X_test, Y_test : scipy.sparse.csr_matrix

    Raises
    ------
    FileNotFoundError
        If the folder lacks either file.
    ValueError
        If a file is malformed (see :func:`load_xc`).
    """
    folder = Path(folder)
    parts = {}
    for part in ("train", "test"):
        found = sorted(folder.glob(f"{part}.txt*"))
        if not found:
            raise FileNotFoundError(
                f"{folder} must contain {part}.txt (or {part}.txt.gz / .bz2) in the "
                "Extreme Classification Repository format"
            )
        parts[part] = found[0]
    X_train, Y_train = load_xc(parts["train"])
    X_test, Y_test = load_xc(parts["test"], n_features=X_train.shape[1],
                             n_labels=Y_train.shape[1])
    return X_train, Y_train, X_test, Y_test
