"""The one place that imports scikit-learn's private helpers (they may move between releases)."""

from sklearn.base import _fit_context
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.fixes import _get_threadpool_controller
from sklearn.utils.validation import validate_data

__all__ = ["Interval", "InvalidParameterError", "StrOptions", "_fit_context", "blas_threads_limited",
           "validate_data", "validate_parameter_constraints"]


def blas_threads_limited(n_threads):
    """Context in which numpy's BLAS runs at most ``n_threads`` threads
    (scikit-learn's threadpoolctl controller, shared with its own estimators)."""
    return _get_threadpool_controller().limit(limits=n_threads, user_api="blas")
