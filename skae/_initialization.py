"""How a new network starts: the data's centre and scale, seeded weights, a PCA start."""

import contextlib
import math
from typing import NamedTuple

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg
import torch
from sklearn.decomposition import PCA
from sklearn.utils.sparsefuncs import mean_variance_axis

from ._networks import (
    has_linear_start,
    last_weighted_layer,
    reset_parameters,
    start_linear_paths,
)
from ._random import seeded_generator

# Features whose spread is below this share of the common scale are divided
# by that share instead of their own spread, so near-constant features (the
# border pixels of digit images) are not blown up at the encoder's input.
INPUT_SCALE_FLOOR = 0.1
# The PCA start is fitted on a random subset of about this many values per
# component, and at least and at most these many (see pca_sample_rows).
_PCA_VALUES_PER_COMPONENT = 1 << 17
_PCA_VALUES = (1 << 22, 1 << 24)
# A bounded output's start fits the inverse activation of the data clipped
# this far inside the range (logit(0.01) = -4.6).
_BOUNDED_MARGIN = 0.01
# The linearised start takes the activation's slope at each feature's mean,
# clipped this far inside the range (logit(1e-6) = -13.8: float32's sigmoid
# still has a slope there).
_LINEARIZED_MARGIN = 1e-6
# Up to this many features the PCA start diagonalises the covariance matrix.
_COVARIANCE_FEATURES = 2048
# Values per block of rows when the data's moments are summed (4 MB of float64).
_SUM_BLOCK_VALUES = 1 << 19


def data_scale(X):
    """How the data is conditioned for the network (see :func:`scales_from_moments`)."""
    if sp.issparse(X):
        center, variance = mean_variance_axis(X, axis=0)
    else:
        center = column_sums(X) / len(X)
        variance = column_sums(X, center) / len(X)
    return scales_from_moments(center, variance)


def column_sums(X, center=None):
    """The float64 column sums of ``X``, or of its squared deviations from ``center``.

    The rows are added in their order, one block of rows at a time in a
    buffer of at most 4 MB, whatever ``X``'s layout: the same sums, bit for
    bit, as numpy's of a C-ordered array of two or more columns over its
    rows (``X.mean(axis=0, dtype=np.float64)``, ``X.var(axis=0,
    dtype=np.float64)``), without the float64 copy of all of ``X`` those
    would make (on the MNIST split, 50 MB whose fresh pages could cost more
    than the sums). numpy sums a single column pairwise: there the last bit
    may differ.
    """
    n_samples, n_features = X.shape
    block = max(1, _SUM_BLOCK_VALUES // max(n_features, 1))
    # Row 0 carries the sum so far: numpy's sum over the buffer's rows then
    # continues it row by row.
    buffer = np.zeros((min(block, n_samples) + 1, n_features))
    for start in range(0, n_samples, block):
        rows = X[start : start + block]
        terms = buffer[1 : len(rows) + 1]
        if center is None:
            terms[...] = rows
        else:
            np.subtract(rows, center, out=terms)
            np.multiply(terms, terms, out=terms)
        buffer[0] = buffer[: len(rows) + 1].sum(axis=0)
    return buffer[0].copy()


# Below this spread the loss, measured in units of the spread, overflows
# float32: a sigmoid output's error of about 1 over a spread of 1e-26 squares
# to 1e50. Such data is trained in its own units, as constant data is.
MIN_SCALE = 1e-15


def scales_from_moments(center, variance):
    """The network's input and output scaling from the feature means and variances.

    Returns
    -------
    center : ndarray of shape (n_features,)
        The feature means.
    scale : float
        The root mean feature variance: one common scale in which the decoder
        works and the loss is measured. One scale for all features is a change
        of units, not a reweighting, so the best reconstruction stays the one
        with the least squared error in the user's units, as with PCA.
    input_scales : ndarray of shape (n_features,)
        Per-feature spreads (floored at ``INPUT_SCALE_FLOOR * scale``) that
        standardise the encoder's input. This only reparameterises the first
        layer, so it changes no objective, but lets the encoder see
        low-variance features on raw tabular data.
    """
    scale = float(np.sqrt(np.mean(variance)))
    if not np.isfinite(scale) or scale < MIN_SCALE:
        scale = 1.0
    input_scales = np.maximum(np.sqrt(variance), INPUT_SCALE_FLOOR * scale)
    return np.asarray(center, dtype=np.float64), scale, input_scales


def pca_sample_rows(n_features, n_components):
    """How many rows the PCA start is fitted on, at most (and at least 100).

    About 2**17 values per component, from 4M to 16M values: the sampled
    subspace's excess error grows with the components per row. On the
    MNIST split (8,000 x 784) a 4M-value sample (5,349 rows) leaves the
    start's error 0.02%, 0.1% and 0.5% above the full data's at 2, 10 and
    32 components; 2M values, 1.9% at 32. The covariance matrix, the start's
    largest cost, takes a third less time.
    """
    low, high = _PCA_VALUES
    values = min(max(_PCA_VALUES_PER_COMPONENT * n_components, low), high)
    return max(100, values // n_features)


def pca_rows(X, n_components, seed):
    """The rows of ``X`` the PCA start is fitted on: all, or a random
    ``pca_sample_rows`` of them in their order, drawn from ``seed``."""
    n_samples, n_features = X.shape
    max_rows = pca_sample_rows(n_features, n_components)
    if n_samples <= max_rows:
        return X
    rows = np.random.default_rng(seed).choice(n_samples, max_rows, replace=False)
    return X[np.sort(rows)]


def whitened_pca(X, center, scale, input_scales, n_components, device=None):
    """Encoder and decoder weights of a whitened PCA, in the network's own spaces.

    PCA is fitted to the rows of ``X`` (the start's sample, see
    :func:`start_from_pca`) in the output space ``(x - center) / scale``,
    where the loss is measured. The encoder weight acts on the encoder's
    input ``(x - center) / input_scales`` and gives
    codes of unit variance; the decoder weight maps them back. Codes beyond
    the data's rank get zero weights. Up to 2,048 features the covariance
    matrix is computed (on ``device``, the network's, when it is a GPU) and
    only its top eigenvectors are found (see :func:`_top_components`).

    Returns
    -------
    encoder_weight : ndarray of shape (n_components, n_features)
    decoder_weight : ndarray of shape (n_features, n_components)
    residual_variance : float
        PCA's mean squared reconstruction error per feature, in that space.
    """
    n_features = X.shape[1]
    # In place, as below: each new array of the sample's size costs fresh pages.
    T = np.subtract(X.toarray() if sp.issparse(X) else X, center)
    T /= scale
    n = min(n_components, *T.shape)
    encoder_weight = np.zeros((n_components, n_features))
    decoder_weight = np.zeros((n_features, n_components))
    variance = np.einsum("ij,ij->j", T, T) / T.shape[0] - T.mean(axis=0) ** 2
    if T.shape[0] < 2 or not np.any(variance > 0):
        return encoder_weight, decoder_weight, 1.0
    if _pca_solver(*T.shape) == "covariance_eigh":
        explained_variance, components = _top_components(T, n, device)
    else:
        pca = PCA(n_components=n, svd_solver="full").fit(T)
        explained_variance, components = pca.explained_variance_, pca.components_
    # Directions without variance (constant data) keep zero weights.
    n = int(np.sum(explained_variance > 1e-12))
    spread = np.sqrt(explained_variance[:n])
    components = components[:n]
    encoder_weight[:n] = components * (input_scales / scale) / spread[:, None]
    decoder_weight[:, :n] = components.T * spread
    explained = explained_variance[:n].sum() * (T.shape[0] - 1) / T.shape[0]
    residual_variance = max(variance.sum() - explained, 0.0) / n_features
    return encoder_weight, decoder_weight, residual_variance


def _top_components(T, n, device=None):
    """The ``n`` leading principal components of ``T``'s rows, as scikit-learn's
    PCA gives them: variances (ddof=1, largest first) and unit directions,
    each signed so that its largest entry is positive.

    The covariance matrix is summed in float64 (float32 would give
    directions without variance an eigenvalue of about 1e-7 of the total,
    and so hide real directions below that): on a CUDA ``device`` where the
    data is, else by numpy, whose ``T.T @ T`` is BLAS's symmetric ``syrk``
    (0.12 s on the MNIST split on one thread, half a general product). Only
    the top ``n`` eigenpairs are then found (ARPACK's Lanczos for a few of
    many, else LAPACK's ``subset_by_index``).
    """
    # C order: the sums then run in the same order whatever the layout of
    # the user's array (a DataFrame's values are often in F order). T is
    # the caller's to give up: it is centred in place.
    rows = np.ascontiguousarray(T, dtype=np.float64)
    if device is not None and torch.device(device).type == "cuda":
        rows = torch.from_numpy(rows).to(device)
        rows -= rows.mean(dim=0)
        covariance = (rows.T @ rows).cpu().numpy() / (len(rows) - 1)
    else:
        rows -= rows.mean(axis=0)
        covariance = rows.T @ rows / (len(rows) - 1)
    n_features = covariance.shape[0]
    values = None
    if n < n_features // 4:
        # Lanczos (ARPACK) for a few of many: 6 ms against 35 ms for MNIST's
        # 10 of 784. A fixed start vector keeps it deterministic.
        with contextlib.suppress(scipy.sparse.linalg.ArpackNoConvergence):
            values, vectors = scipy.sparse.linalg.eigsh(covariance, k=n, v0=np.ones(n_features))
            order = np.argsort(values)
            values, vectors = values[order], vectors[:, order]
    if values is None:
        values, vectors = scipy.linalg.eigh(
            covariance, subset_by_index=[n_features - n, n_features - 1]
        )
    values, components = values[::-1].clip(min=0), vectors[:, ::-1].T
    signs = np.sign(components[np.arange(n), np.abs(components).argmax(axis=1)])
    return values, components * np.where(signs == 0, 1.0, signs)[:, None]


def _pca_solver(n_samples, n_features):
    """The exact PCA solver that is fastest for this shape.

    The covariance matrix's eigendecomposition costs n_samples x n_features^2
    and a small n_features^3, against the full SVD's n_samples x n_features
    x min(n_samples, n_features) with a large constant: on the MNIST split
    0.05 s against 0.8 s. Both give the same directions.
    """
    if n_features <= _COVARIANCE_FEATURES and n_samples >= n_features:
        return "covariance_eigh"
    return "full"


def bounded_decoder_start(X, center, input_scales, encoder_weight, activation, device):
    """Decoder weights and bias that start a sigmoid or tanh output near the data,
    fitted in the output's pre-activations.

    A bounded output cannot reproduce PCA's linear decoder, so this start
    fits the decoder's pre-activations instead: a least-squares regression
    of the inverse activation of the (slightly clipped) data on the PCA
    codes. Without it the start would decode every code to about the
    middle of the range. It suits data that fills the output's range (on
    the MNIST split it starts at 0.97 and 0.75 times PCA's error at 10 and
    32 components) but clips data confined near one bound flat (digits in
    [0, 0.001]: 1,800 times PCA's error), where
    :func:`linearized_decoder_start` does better. :func:`start_from_pca`
    takes the better of the two, feature by feature
    (:func:`closest_bounded_decoder`).

    Computed in float32 on ``device`` (the network's), where training runs:
    only the normal equations' small (n_components + 1)-square system is
    solved in float64 on the host, by pseudo-inverse, since codes beyond the
    data's rank are zero. On the MNIST split this takes 0.03 s against 0.5 s for
    float64 numpy's ``lstsq``, and the start's error is the same to 1e-4
    (``tests/test_networks.py``).

    Returns
    -------
    decoder_weight : Tensor of shape (n_features, n_components)
    bias : Tensor of shape (n_features,)
    """
    rows, codes = _start_codes(X, center, input_scales, encoder_weight, device)
    return _regressed_decoder(rows, codes, activation)


def _on_device(values, device):
    return torch.as_tensor(values, dtype=torch.float32, device=device)


def _start_codes(X, center, input_scales, encoder_weight, device):
    """The start's rows as a float32 tensor on ``device``, and their PCA codes."""
    X = X.toarray() if sp.issparse(X) else X
    rows = torch.tensor(np.ascontiguousarray(X, dtype=np.float32), device=device)
    # In place where it can be: each new array of the sample's size costs fresh pages.
    inputs = rows - _on_device(center, device)
    inputs /= _on_device(input_scales, device)
    return rows, inputs @ _on_device(encoder_weight, device).T


def _regressed_decoder(rows, codes, activation):
    """:func:`bounded_decoder_start`'s regression; clips ``rows`` in place."""
    device = rows.device
    if activation == "sigmoid":
        target = rows.clamp_(_BOUNDED_MARGIN, 1 - _BOUNDED_MARGIN).logit_()
    else:
        target = rows.clamp_(-1 + 2 * _BOUNDED_MARGIN, 1 - 2 * _BOUNDED_MARGIN).atanh_()
    design = torch.cat([codes, torch.ones(len(codes), 1, dtype=codes.dtype, device=device)], dim=1)
    # The small system is solved in float64 on the host (MPS has no float64).
    gram, moments = (design.T @ design).cpu().double(), (design.T @ target).cpu().double()
    solution = (torch.linalg.pinv(gram, hermitian=True) @ moments).float().to(device)
    return solution[:-1].T, solution[-1]


def linearized_decoder_start(center, scale, decoder_weight, activation, device):
    """Decoder weights and bias whose bounded output is PCA's decoder to first order.

    Each feature's pre-activation bias is the inverse activation of its mean
    (clipped ``_LINEARIZED_MARGIN`` inside the range), and PCA's decoder
    weights (``decoder_weight``, in the output space ``(x - center) /
    scale``) are divided by the activation's slope there: small codes then
    decode as PCA does, whatever part of the range the data lies in. Codes
    far from zero bend away from PCA where the slope changes fast (data
    spread over the whole range).

    Returns
    -------
    decoder_weight : Tensor of shape (n_features, n_components)
    bias : Tensor of shape (n_features,)
    """
    low = 0.0 if activation == "sigmoid" else -1.0
    mean = np.clip(center, low + _LINEARIZED_MARGIN, 1 - _LINEARIZED_MARGIN)
    if activation == "sigmoid":
        bias, slope = np.log(mean) - np.log1p(-mean), mean * (1 - mean)
    else:
        bias, slope = np.arctanh(mean), 1 - mean**2
    weight = decoder_weight * (scale / slope)[:, None]
    return _on_device(weight, device), _on_device(bias, device)


def _feature_errors(rows, codes, weight, bias, activation):
    """Each feature's summed squared error of a bounded decoder (``weight``, ``bias``)."""
    logits = torch.addmm(bias, codes, weight.T)
    output = logits.sigmoid_() if activation == "sigmoid" else logits.tanh_()
    return output.sub_(rows).square_().sum(dim=0)


def closest_bounded_decoder(X, data_scales, encoder_weight, decoder_weight, activation, device):
    """The decoder start of a bounded output: for each feature, the better on ``X`` of
    :func:`bounded_decoder_start` and :func:`linearized_decoder_start`.

    One feature's output depends on its own row of weights and its own bias
    alone, so the choice feature by feature is the best of the two starts
    combined. The start's error against PCA's, on the rows a fit is judged
    on: on the MNIST split 1.007, 0.967 and 0.746 at 2, 10 and 32
    components (the regression alone: 1.085, 0.971, 0.747); 500 digits
    scaled to [0, 0.001], 1.09 (the regression alone: 1,856).
    """
    center, scale, input_scales = data_scales
    rows, codes = _start_codes(X, center, input_scales, encoder_weight, device)
    linearized = linearized_decoder_start(center, scale, decoder_weight, activation, device)
    regressed = _regressed_decoder(rows.clone(), codes, activation)
    better = _feature_errors(rows, codes, *linearized, activation) < _feature_errors(
        rows, codes, *regressed, activation
    )
    weight = torch.where(better[:, None], linearized[0], regressed[0])
    return weight, torch.where(better, linearized[1], regressed[1])


def seeded_model(build, seed):
    """``build()``'s model in float32, its weights drawn from ``seed`` alone.

    Layers draw their first weights from the global RNG as they are built;
    ``fork_rng`` puts it back, and ``reset_parameters`` redraws them from our
    own generator. ``float()`` overrides any default dtype.
    """
    with torch.random.fork_rng(devices=[]):
        model = build().float()
    return reset_parameters(model, seeded_generator(seed))


def network_layout(build):
    """``{name: (shape, dtype)}`` of the state of ``build()``'s float32 model.

    Built on PyTorch's "meta" device, which allocates nothing: the layout of
    a network of any size costs milliseconds.
    """
    with torch.device("meta"), torch.random.fork_rng(devices=[]):
        model = build().float()
    return {name: (tuple(t.shape), t.dtype) for name, t in model.state_dict().items()}


def check_network_fits(build, device):
    """Raise a ValueError when the weights of ``build()`` alone exceed ``device``'s free memory.

    Counted on the meta device first, so that a network of 10^12 weights is a
    clear error rather than torch's failed allocation (or a machine swapping).
    """
    from ._readers import available_memory

    n_weights = sum(math.prod(shape) for shape, _ in network_layout(build).values())
    needed = 4 * n_weights  # float32
    if device.type == "cuda":
        free = torch.cuda.mem_get_info(device)[0]
    elif device.type == "cpu":
        free = available_memory()
    else:
        return
    if needed > free:
        raise ValueError(
            f"The network these parameters describe has {n_weights:,} weights "
            f"({needed / 2**30:,.3g} GiB in float32), more than the {free / 2**30:,.3g} GiB "
            f"free on {device}: choose smaller hidden_layer_sizes, n_components or "
            "conv_channels."
        )


class PCAMap(NamedTuple):
    """The PCA a network started from, as the linear map it is in the data's units.

    ``encoder_weight`` acts on ``(x - center) / input_scales``;
    ``decoder_weight`` maps the codes back to ``(x - center) / scale``
    (see :func:`whitened_pca`).
    """

    center: np.ndarray
    scale: float
    input_scales: np.ndarray
    encoder_weight: np.ndarray
    decoder_weight: np.ndarray

    def reconstruct(self, rows):
        """PCA's reconstruction of ``rows`` (a tensor), in float64 on the host."""
        rows = rows.detach().cpu().double().numpy()
        codes = ((rows - self.center) / self.input_scales) @ self.encoder_weight.T
        return torch.from_numpy(self.center + self.scale * codes @ self.decoder_weight.T)


def start_from_pca(model, X, data_scales, n_components, seed):
    """Start ``model``'s linear paths (or its linear layers) as a whitened PCA of ``X``.

    Both starts are fitted to one random sample of ``X``'s rows, drawn from
    ``seed`` (see :func:`pca_sample_rows`). The decoder starts as PCA too
    when its output is linear, and as the closest bounded decoder of PCA's
    codes when the output is bounded (see :func:`closest_bounded_decoder`).
    Does nothing for a network without a linear path to start (a
    convolutional or dense network with ``linear_shortcut=False``).

    Returns
    -------
    pca : PCAMap or None
        The PCA the network started from (None when it has no linear path).
    """
    encoder_body, decoder_body = model.encoder.body, model.decoder.body
    if not (has_linear_start(encoder_body) and has_linear_start(decoder_body)):
        return None
    center, scale, input_scales = data_scales
    device = model.output_layer.center.device
    X = pca_rows(X, n_components, seed)  # one sample, for both starts
    encoder_weight, pca_decoder_weight, residual_variance = whitened_pca(
        X, center, scale, input_scales, n_components, device
    )
    decoder_weight, decoder_bias = pca_decoder_weight, None
    if model.output_layer.activation != "linear":
        decoder_weight, decoder_bias = closest_bounded_decoder(
            X,
            data_scales,
            encoder_weight,
            pca_decoder_weight,
            model.output_layer.activation,
            device,
        )
    n_code_outputs = last_weighted_layer(encoder_body).out_features
    padded_encoder_weight = np.vstack(
        [encoder_weight, np.zeros((n_code_outputs - n_components, X.shape[1]))]
    )
    start_linear_paths(
        encoder_body, decoder_body, padded_encoder_weight, decoder_weight, decoder_bias
    )
    model.started_from_pca(residual_variance)
    return PCAMap(center, scale, input_scales, encoder_weight, pca_decoder_weight)
