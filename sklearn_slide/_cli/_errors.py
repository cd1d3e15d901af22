"""The two kinds of mistakes a user of the command line can fix.

``main`` reports them as one line, without a traceback: a bad command line
or parameter value exits with status 2, a bad file with status 3.
"""


class UsageError(ValueError):
    """A bad command line or parameter value (exit status 2)."""


class FileProblem(ValueError):
    """A file that cannot be read or written, is malformed, or does not fit
    the model (exit status 3)."""
