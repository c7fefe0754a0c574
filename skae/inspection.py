"""What drives each code: Jacobians, loadings and attributions of a fitted model.

PCA's ``components_`` answers two questions at once, because PCA is linear:
how each code axis moves the reconstruction, and which features each code
listens to. A nonlinear autoencoder answers them separately, and row by row:

- :func:`decoder_jacobian`: how each code value moves each reconstructed
  feature, at each row's code (``d x_hat_j / d z_k``);
- :func:`encoder_jacobian`: how each input feature moves each code value,
  at each row (``d z_k / d x_j``);
- :func:`code_loadings`: both summarised over a data set, in the shape of
  ``components_``: the mean decoder Jacobian (signed: the direction in which
  a code axis moves the reconstruction) and the mean absolute encoder
  Jacobian (how strongly each code listens to each feature), also per
  standard deviation of each feature, the reading to compare features by;
- :func:`code_attributions`: integrated gradients, which split each row's
  code into per-feature contributions that add up to its difference from a
  baseline's code (the training data's mean by default).

Every function takes the fitted estimator and rows ``X`` in the units of the
training data (for a step of a fitted ``Pipeline``, the output of the steps
before it: ``pipe[:-1].transform(X)``), runs on the estimator's device in
batches of bounded memory, and returns results in those units: float32 for
float32 input, float64 otherwise. For a VAE the code is the posterior mean.
"""

import numpy as np
import scipy.sparse as sp
import torch
from numpy.typing import ArrayLike
from sklearn.utils import Bunch
from sklearn.utils.sparsefuncs import mean_variance_axis
from sklearn.utils.validation import check_is_fitted

from ._data import map_rows
from ._sources import BLOCK_VALUES, ArrayReader, available_memory, summarize

__all__ = ["code_attributions", "code_loadings", "decoder_jacobian", "encoder_jacobian"]


def _checked(estimator, X):
    check_is_fitted(estimator)
    return estimator._checked_input(X, reset=False)


def _jacobian_map(estimator, X, per_block, batch_size, extra_rows=1):
    """``per_block(network, rows)`` over ``X`` block by block, with autograd on.

    Each block's result is ``(rows, n_components, n_features)``. Blocks hold
    ``batch_size`` rows, or about 16 MB of Jacobian (divided by
    ``extra_rows`` when each row is evaluated that many times at once).
    """
    X = _checked(estimator, X)
    n_components, n_features = estimator.n_components_, estimator.n_features_in_
    dtype = np.dtype(X.dtype)
    needed = X.shape[0] * n_components * n_features * dtype.itemsize
    if needed > available_memory():
        raise ValueError(
            f"The Jacobians of {X.shape[0]:,} rows ({n_components} x {n_features} each) "
            f"take {needed / 2**30:.3g} GiB, more than the memory available: pass fewer rows."
        )
    if batch_size is None:
        batch_size = max(1, BLOCK_VALUES // (n_components * n_features * extra_rows))
    elif isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int or None; got {batch_size!r}.")
    network, compute_dtype = estimator._network_for(X, dtype)
    for parameter in network.parameters():
        parameter.requires_grad_(False)  # derivatives with respect to the inputs only
    return map_rows(
        lambda rows: per_block(network, rows),
        X,
        estimator.device_,
        (n_components, n_features),
        dtype,
        compute_dtype,
        rows_per_block=batch_size,
    )


def _feature_std(X):
    """Per-feature standard deviations of checked rows (array, sparse or on disk), float64."""
    if isinstance(X, ArrayReader):
        return np.sqrt(summarize(X, X.blocks(), 0, 0).variance)
    if sp.issparse(X):
        return np.sqrt(mean_variance_axis(X, axis=0)[1])
    return X.std(axis=0, dtype=np.float64)


def _row_function(function):
    """``function`` of a batch, as a function of one row (for ``torch.func``)."""
    return lambda row: function(row.unsqueeze(0)).squeeze(0)


def _encoder_jacobians(network, rows):
    return torch.func.vmap(torch.func.jacrev(_row_function(network.encode)))(rows)


def encoder_jacobian(estimator, X: ArrayLike, *, batch_size: int | None = None) -> np.ndarray:
    """How each input feature moves each code value, at each row of ``X``.

    Parameters
    ----------
    estimator : AutoencoderTransformer or VAETransformer
        Fitted.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Rows in the units of the training data.
    batch_size : int, default=None
        Rows per batch (memory grows with it); None picks about 16 MB of
        Jacobian per batch.

    Returns
    -------
    jacobian : ndarray of shape (n_samples, n_components, n_features)
        ``jacobian[i, k, j]`` is the derivative of code value ``k`` with
        respect to feature ``j`` at row ``i`` (for a VAE, of the posterior
        mean), in code units per unit of the feature.
    """
    return _jacobian_map(estimator, X, _encoder_jacobians, batch_size)


def _decoder_jacobians(network, rows):
    codes = network.encode(rows)
    jacobians = torch.func.vmap(torch.func.jacfwd(_row_function(network.decode)))(codes)
    return jacobians.transpose(1, 2)


def decoder_jacobian(estimator, X: ArrayLike, *, batch_size: int | None = None) -> np.ndarray:
    """How each code value moves each reconstructed feature, at the code of each row of ``X``.

    Parameters
    ----------
    estimator : AutoencoderTransformer or VAETransformer
        Fitted.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Rows in the units of the training data; the Jacobian is taken at
        ``estimator.transform(X)``.
    batch_size : int, default=None
        Rows per batch; None picks about 16 MB of Jacobian per batch.

    Returns
    -------
    jacobian : ndarray of shape (n_samples, n_components, n_features)
        ``jacobian[i, k, j]`` is the derivative of reconstructed feature
        ``j`` with respect to code value ``k`` at row ``i``'s code (for a
        VAE, of the decoder's mean), in units of the feature per code unit:
        laid out as PCA's ``components_``, one such matrix per row.
    """
    return _jacobian_map(estimator, X, _decoder_jacobians, batch_size)


def code_loadings(estimator, X: ArrayLike, *, batch_size: int | None = None) -> Bunch:
    """Per-component loadings over the rows ``X``, read as PCA's ``components_``.

    Parameters
    ----------
    estimator : AutoencoderTransformer or VAETransformer
        Fitted.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The rows to average over (the training data, or a sample of it).
    batch_size : int, default=None
        Rows per batch; None picks about 16 MB of Jacobian per batch.

    Returns
    -------
    loadings : :class:`~sklearn.utils.Bunch`
        With the attributes:

        decoder : ndarray of shape (n_components, n_features)
            The decoder's Jacobian averaged over the rows' codes, signed:
            how far, and in which direction, one unit along each code axis
            moves each reconstructed feature on average. For a linear
            decoder this is the decoder itself, and for the PCA start (and
            a linear autoencoder at its optimum) its rows span PCA's
            subspace: the counterpart of ``components_`` (up to scale and
            rotation within the subspace, as for any autoencoder).
        encoder : ndarray of shape (n_components, n_features)
            The absolute encoder Jacobian averaged over the rows: how
            strongly each code value responds to each feature, whatever the
            direction (signs can cancel between rows; magnitudes do not).
            In code units per unit of the feature: a feature that barely
            varies (an image's border) can weigh heavily here yet never
            move a code in the data.
        encoder_per_std : ndarray of shape (n_components, n_features)
            ``encoder`` times each feature's standard deviation over ``X``:
            how much a typical variation of each feature moves each code,
            in code units. The reading to compare features by.
        feature_names : ndarray of str of shape (n_features,)
            ``feature_names_in_`` when the model was fitted on named
            columns, else ``x0, x1, ...``.
        component_names : ndarray of str of shape (n_components,)
            ``estimator.get_feature_names_out()``.
    """
    decoder = decoder_jacobian(estimator, X, batch_size=batch_size)
    encoder = np.abs(encoder_jacobian(estimator, X, batch_size=batch_size)).mean(axis=0)
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        names = np.asarray([f"x{j}" for j in range(estimator.n_features_in_)], dtype=object)
    return Bunch(
        decoder=decoder.mean(axis=0),
        encoder=encoder,
        encoder_per_std=encoder * _feature_std(_checked(estimator, X)).astype(encoder.dtype),
        feature_names=np.asarray(names, dtype=object),
        component_names=estimator.get_feature_names_out(),
    )


def code_attributions(
    estimator,
    X: ArrayLike,
    *,
    baseline: ArrayLike | None = None,
    n_steps: int = 50,
    batch_size: int | None = None,
) -> np.ndarray:
    """How much each feature of each row contributes to each code value (integrated gradients).

    The attribution of feature ``j`` to code value ``k`` at row ``x`` is
    ``(x_j - b_j)`` times the derivative of ``z_k`` with respect to ``x_j``,
    averaged along the straight path from the baseline ``b`` to ``x``
    (Sundararajan et al., 2017). The attributions of a row add up to
    ``z_k(x) - z_k(b)`` (completeness), exactly for a linear encoder and up
    to the path's discretisation (``n_steps`` midpoints) otherwise.

    Parameters
    ----------
    estimator : AutoencoderTransformer or VAETransformer
        Fitted.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Rows in the units of the training data.
    baseline : array-like of shape (n_features,), default=None
        The reference row; None is the training data's mean (``mean_``).
    n_steps : int, default=50
        Points on the path (the cost is ``n_steps`` Jacobians per row).
    batch_size : int, default=None
        Rows per batch; None picks about 16 MB of Jacobians per batch.

    Returns
    -------
    attributions : ndarray of shape (n_samples, n_components, n_features)
        In code units: ``attributions[i].sum(axis=1)`` is about
        ``transform(X)[i] - transform(baseline)``.
    """
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive int; got {n_steps!r}.")
    check_is_fitted(estimator)
    reference = estimator.mean_ if baseline is None else np.asarray(baseline, dtype=np.float64)
    if reference.shape != (estimator.n_features_in_,) or not np.isfinite(reference).all():
        raise ValueError(
            f"baseline must be {estimator.n_features_in_} finite numbers; got shape "
            f"{reference.shape}."
        )
    fractions = (np.arange(n_steps) + 0.5) / n_steps

    def per_block(network, rows):
        start = torch.as_tensor(reference, dtype=rows.dtype, device=rows.device)
        steps = torch.as_tensor(fractions, dtype=rows.dtype, device=rows.device)
        difference = rows - start
        path = start + steps[:, None, None] * difference  # (n_steps, rows, n_features)
        jacobians = _encoder_jacobians(network, path.reshape(-1, rows.shape[1]))
        mean_jacobian = jacobians.reshape(n_steps, *rows.shape[:1], *jacobians.shape[1:]).mean(0)
        return mean_jacobian * difference[:, None, :]

    return _jacobian_map(estimator, X, per_block, batch_size, extra_rows=n_steps)
