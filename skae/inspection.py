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

import copy

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted

from ._base import BaseAutoencoder
from ._inference import map_rows, row_blocks
from ._readers import BLOCK_VALUES, available_memory

__all__ = ["code_attributions", "code_loadings", "decoder_jacobian", "encoder_jacobian"]


def _check_estimator(estimator):
    """``estimator`` is a fitted skae estimator: else a TypeError, or NotFittedError."""
    if not isinstance(estimator, BaseAutoencoder):
        hint = ""
        if hasattr(estimator, "steps"):
            hint = (
                " For a Pipeline, pass its last step and the rows the steps before it give: "
                "pipe[-1], pipe[:-1].transform(X)."
            )
        raise TypeError(
            "skae.inspection takes a fitted AutoencoderTransformer or VAETransformer; "
            f"got {type(estimator).__name__}.{hint}"
        )
    check_is_fitted(estimator)


def _private_network(estimator, X):
    """A copy of the network that computes for ``X``, in evaluation mode with its
    parameters frozen (derivatives are taken with respect to the inputs only),
    and the torch dtype rows are converted to.

    Never the fitted network itself: whatever happens to the copy, or if this
    call fails midway, the model stays as it was (weights, ``requires_grad``,
    training modes, buffers) and can go on training.
    """
    live = estimator._state.network
    modes = [module.training for module in live.modules()]
    try:
        network, compute_dtype = estimator._network_for(X, np.dtype(X.dtype))
    finally:  # it puts the fitted network in evaluation mode: put back its own modes
        for module, mode in zip(live.modules(), modes, strict=True):
            module.training = mode
    if network is live:
        network = copy.deepcopy(live)
    return network.eval().requires_grad_(False), compute_dtype


def _prepared(estimator, X, batch_size, values_per_row):
    """``X`` checked, a private copy of the network that computes for it (see
    :func:`_private_network`), its dtype, and the rows per block: ``batch_size``,
    or about 16 MB of ``values_per_row`` per block."""
    _check_estimator(estimator)
    X = estimator._checked_input(X, reset=False)
    if batch_size is None:
        batch_size = max(1, BLOCK_VALUES // values_per_row)
    elif isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int or None; got {batch_size!r}.")
    network, compute_dtype = _private_network(estimator, X)
    return X, network, compute_dtype, batch_size


def _jacobian_map(estimator, X, per_block, batch_size, extra_rows=1):
    """``per_block(network, rows)`` over ``X`` block by block, with autograd on.

    Each block's result is ``(rows, n_components, n_features)``. Blocks hold
    ``batch_size`` rows, or about 16 MB of Jacobian (divided by
    ``extra_rows`` when each row is evaluated that many times at once).
    """
    _check_estimator(estimator)
    shape = (estimator.n_components_, estimator.n_features_in_)
    X, network, compute_dtype, batch_size = _prepared(
        estimator, X, batch_size, shape[0] * shape[1] * extra_rows
    )
    needed = X.shape[0] * shape[0] * shape[1] * np.dtype(X.dtype).itemsize
    if needed > available_memory():
        raise ValueError(
            f"The Jacobians of {X.shape[0]:,} rows ({shape[0]} x {shape[1]} each) "
            f"take {needed / 2**30:.3g} GiB, more than the memory available: pass fewer rows."
        )
    return map_rows(
        lambda rows: per_block(network, rows),
        X,
        estimator.device_,
        shape,
        X.dtype,
        compute_dtype,
        rows_per_block=batch_size,
    )


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


def _decoder_jacobian_of_row(decode, code):
    """``decode``'s Jacobian at one code, as (n_components, n_features).

    The Jacobian of the linear map ``u -> J.T @ u`` (one vector-Jacobian
    product) is ``J.T``: reverse mode twice, one pass per code value, as
    fast as forward mode (``jacfwd``), which on torch 2.13 loads decompositions
    that warn that ``torch.jit.script`` is deprecated.
    """
    reconstruction, vjp = torch.func.vjp(decode, code)
    return torch.func.jacrev(lambda u: vjp(u)[0])(torch.zeros_like(reconstruction))


def _decoder_jacobians(network, rows):
    decode = _row_function(network.decode)
    codes = network.encode(rows)
    return torch.func.vmap(lambda code: _decoder_jacobian_of_row(decode, code))(codes)


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
    _check_estimator(estimator)
    n_components, n_features = estimator.n_components_, estimator.n_features_in_
    X, network, compute_dtype, batch_size = _prepared(
        estimator, X, batch_size, 2 * n_components * n_features
    )
    # One pass, summing as it goes: the rows' Jacobians are never all held.
    decoder, encoder = 0.0, 0.0
    count, mean, squares = 0, 0.0, 0.0  # the rows' moments, merged block by block
    for _, _, rows in row_blocks(X, estimator.device_, compute_dtype, batch_size):
        decoder = decoder + _decoder_jacobians(network, rows).sum(dim=0).double()
        encoder = encoder + _encoder_jacobians(network, rows).abs().sum(dim=0).double()
        values = rows.double()
        block_mean = values.mean(dim=0)
        delta, total = block_mean - mean, count + len(rows)
        mean = mean + delta * len(rows) / total
        squares = squares + (values - block_mean).square().sum(dim=0)
        squares = squares + delta.square() * count * len(rows) / total
        count = total
    dtype = np.dtype(X.dtype)
    encoder = (encoder / count).cpu().numpy().astype(dtype)
    std = (squares / count).sqrt().cpu().numpy()
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        names = np.asarray([f"x{j}" for j in range(n_features)], dtype=object)
    return Bunch(
        decoder=(decoder / count).cpu().numpy().astype(dtype),
        encoder=encoder,
        encoder_per_std=encoder * std.astype(dtype),
        feature_names=np.asarray(names, dtype=object),
        component_names=estimator.get_feature_names_out(),
    )


def _baseline(estimator, baseline):
    """``baseline`` as float64 numbers, one per feature (None: ``estimator.mean_``)."""
    if baseline is None:
        return estimator.mean_
    n_features = estimator.n_features_in_
    accepted = (
        f"baseline must be None (the training data's mean) or {n_features} finite numbers, "
        "one per feature"
    )
    if isinstance(baseline, str | bytes):
        raise ValueError(f"{accepted}; got the string {baseline!r}.")
    try:
        reference = np.asarray(baseline)
    except (TypeError, ValueError) as error:  # ragged lists
        raise ValueError(f"{accepted}; got {type(baseline).__name__}: {error}") from error
    if reference.dtype.kind not in "biuf":
        raise ValueError(f"{accepted}; got values of dtype {reference.dtype}.")
    if reference.shape != (n_features,):
        raise ValueError(f"{accepted}; got shape {reference.shape}.")
    reference = reference.astype(np.float64)
    if not np.isfinite(reference).all():
        raise ValueError(f"{accepted}; got NaN or infinity.")
    return reference


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
    _check_estimator(estimator)
    reference = _baseline(estimator, baseline)
    fractions = (np.arange(n_steps) + 0.5) / n_steps

    def per_block(network, rows):
        start = torch.as_tensor(reference, dtype=rows.dtype, device=rows.device)
        if not torch.isfinite(start).all():
            raise ValueError(f"baseline must be finite in {rows.dtype}, which the rows are.")
        steps = torch.as_tensor(fractions, dtype=rows.dtype, device=rows.device)
        difference = rows - start
        path = start + steps[:, None, None] * difference  # (n_steps, rows, n_features)
        jacobians = _encoder_jacobians(network, path.reshape(-1, rows.shape[1]))
        mean_jacobian = jacobians.reshape(n_steps, *rows.shape[:1], *jacobians.shape[1:]).mean(0)
        return mean_jacobian * difference[:, None, :]

    return _jacobian_map(estimator, X, per_block, batch_size, extra_rows=n_steps)
