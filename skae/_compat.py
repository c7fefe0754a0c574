"""Every private scikit-learn import of skae, in one place.

scikit-learn's parameter validation and ``validate_data`` are the tools its own
estimators use, but they live in private modules whose location moves between
releases. Keeping the imports here means a release that moves them breaks one
file, not the whole package.
"""

from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

__all__ = ["Interval", "StrOptions", "_fit_context", "validate_data"]
