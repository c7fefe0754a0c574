"""Scores that compare any dimensionality reducer with an inverse on one scale.

``PCA.score`` is an exact Gaussian log-likelihood, ``AutoencoderTransformer.score``
minus a mean squared error and ``VAETransformer.score`` an evidence lower
bound: a search over several of them that ranks on ``score`` compares
numbers on different scales. :func:`reconstruction_error` and the scorer
:func:`neg_reconstruction_error` measure every transformer with an
``inverse_transform`` (PCA, ``KernelPCA(fit_inverse_transform=True)``, both
skae estimators, a Pipeline of them) the same way, in the data's units.
"""

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike
from sklearn.base import TransformerMixin
from sklearn.utils.validation import check_array

__all__ = ["neg_reconstruction_error", "reconstruction_error"]


def reconstruction_error(estimator: TransformerMixin, X: ArrayLike) -> float:
    """Mean squared error of ``estimator``'s reconstruction of ``X``, over all entries.

    Parameters
    ----------
    estimator : fitted transformer with ``transform`` and ``inverse_transform``
        A Pipeline counts when all of its steps have both.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)

    Returns
    -------
    error : float
        ``mean((inverse_transform(transform(X)) - X) ** 2)``, in the square
        of the data's units (float64 arithmetic).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.decomposition import PCA
    >>> from skae.metrics import reconstruction_error
    >>> X, _ = load_iris(return_X_y=True)
    >>> round(reconstruction_error(PCA(n_components=2).fit(X), X), 4)
    0.0253
    """
    if not hasattr(estimator, "inverse_transform"):
        raise ValueError(
            f"{type(estimator).__name__} has no inverse_transform, so its reconstruction "
            "error is undefined; use a transformer that can map codes back to the data."
        )
    X = check_array(X, accept_sparse=("csr", "csc"), dtype=(np.float64, np.float32))
    reconstruction = estimator.inverse_transform(estimator.transform(X))
    dense = X.toarray() if sp.issparse(X) else X
    residual = np.asarray(reconstruction, dtype=np.float64) - dense.astype(np.float64)
    return float(np.mean(residual**2))


def neg_reconstruction_error(estimator: TransformerMixin, X: ArrayLike, y: None = None) -> float:
    """Scorer: minus :func:`reconstruction_error`, for ``scoring=`` (greater is better).

    Parameters
    ----------
    estimator : fitted transformer with ``transform`` and ``inverse_transform``
        As for :func:`reconstruction_error`.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The rows to reconstruct.
    y : None
        Ignored; present for the scorer signature.

    Returns
    -------
    score : float
        Minus the mean squared reconstruction error: higher is better.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.pipeline import Pipeline
    >>> from skae import AutoencoderTransformer
    >>> from skae.metrics import neg_reconstruction_error
    >>> X, _ = load_digits(return_X_y=True)
    >>> search = GridSearchCV(
    ...     Pipeline([("reduce", PCA())]),
    ...     {"reduce": [PCA(4), AutoencoderTransformer(4, max_epochs=5, random_state=0)]},
    ...     scoring=neg_reconstruction_error,
    ...     cv=2,
    ... ).fit(X)
    >>> search.best_params_["reduce"].__class__.__name__ in ("PCA", "AutoencoderTransformer")
    True
    """
    return -reconstruction_error(estimator, X)
