"""Warnings that point at the user's line, however deep the call came from."""

import os
import sys
import warnings

import joblib
import sklearn

# Frames in these packages are skipped; joblib runs the fits of a search.
_LIBRARY_DIRS = tuple(
    os.path.dirname(module.__file__) + os.sep
    for module in (sys.modules[__package__], sklearn, joblib)
)


def warn_at_caller(message, category):
    """Warn from the first frame outside skae, scikit-learn and joblib.

    ``fit`` is reached through ``fit_transform``, scikit-learn's
    ``_fit_context`` and ``set_output`` wrappers, or a search: a fixed
    ``stacklevel`` would point into one of them.
    """
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename.startswith(_LIBRARY_DIRS):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
