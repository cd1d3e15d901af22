"""The one place that imports scikit-learn's private helpers (they may move between releases)."""

from sklearn.base import _fit_context
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.validation import validate_data

__all__ = ["Interval", "InvalidParameterError", "StrOptions", "_fit_context", "validate_data",
           "validate_parameter_constraints"]
