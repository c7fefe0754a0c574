"""A map of the training rows, laid out as UMAP lays out its embedding: the
targets the neighbour objective pulls the codes towards.

:func:`map_targets` starts from a spectral embedding of the fuzzy
neighbour graph (a new network) or from the network's own codes (a
continued fit), moves it by UMAP's stochastic optimisation (attraction
along each edge in proportion to its weight, repulsion from random rows),
and expresses the result in the units and orientation of the network's
codes (a similarity transform fitted by Procrustes). The network is then
trained to reproduce it (``skae._models``): the layout carries UMAP's map of
the training rows, the encoder carries it to new rows, and the decoder
learns to reconstruct from it.

Everything here is numpy on the host, vectorised per epoch: an epoch is a
few array operations over the edges it samples, single-threaded (torch's
thread pool costs more than it saves on operations this small).
"""

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg

# UMAP's epochs for the layout: 500 up to this many rows, 200 above.
_SMALL_DATA_ROWS = 10_000
# Negative samples per sampled edge, and the clip of each pair's gradient (UMAP's).
_NEGATIVE_SAMPLES = 5
_GRADIENT_CLIP = 4.0
# A continued fit's map starts from the network's codes at this share of
# UMAP's learning rate (as UMAP's transform does for new points), so that it
# refines the map the network has instead of drawing another.
_CONTINUED_RATE = 0.25
# The layout is optimised in coordinates spread over [0, _SPREAD] at the
# start, the scale UMAP's kernel and learning rate are tuned for.
_SPREAD = 10.0


def layout_epochs(n_samples):
    """UMAP's number of layout epochs for ``n_samples`` rows."""
    return 500 if n_samples <= _SMALL_DATA_ROWS else 200


def spectral_layout(graph, n_components, seed):
    """The first non-trivial eigenvectors of the graph's normalised Laplacian.

    Falls back to a random start when the eigensolver does not converge
    (as UMAP does), e.g. for a graph of many small components.
    """
    n = graph.shape[0]
    rng = np.random.default_rng(seed)
    if n_components + 1 >= n:
        return rng.uniform(-1, 1, size=(n, n_components))
    degrees = np.asarray(graph.sum(axis=1)).ravel()
    scale = sp.diags(1.0 / np.sqrt(np.maximum(degrees, 1e-12)))
    laplacian = sp.identity(n) - scale @ graph @ scale
    try:
        values, vectors = scipy.sparse.linalg.eigsh(
            laplacian,
            k=n_components + 1,
            which="SM",
            tol=1e-4,
            v0=rng.uniform(-1, 1, size=n),
            ncv=max(2 * n_components + 1, 15),
            maxiter=5 * n,
        )
    except scipy.sparse.linalg.ArpackError:
        return rng.uniform(-1, 1, size=(n, n_components))
    return vectors[:, np.argsort(values)[1 : n_components + 1]]


def _spread_out(coordinates):
    """``coordinates`` moved and scaled (one scale for all axes) into [0, _SPREAD]."""
    low = coordinates.min(axis=0)
    extent = float((coordinates.max(axis=0) - low).max())
    return (coordinates - low) * (_SPREAD / max(extent, 1e-12))


def optimize_layout(graph, start, kernel, n_epochs, seed, initial_rate=1.0):
    """UMAP's layout optimisation of ``start`` (rows x components) over ``graph``.

    Each epoch samples every edge whose turn it is (an edge of weight ``w``
    every ``max_weight / w`` epochs), pulls its two ends together with the
    gradient of ``log(1 + a d^(2b))`` and pushes its head away from
    ``_NEGATIVE_SAMPLES`` random rows, each pair's gradient clipped at 4, at
    a learning rate falling linearly from ``initial_rate`` to 0. Unlike UMAP's sequential
    updates, one epoch's gradients are summed and applied at once.
    """
    a, b = kernel
    rng = np.random.default_rng(seed)
    edges = graph.tocoo()
    keep = edges.data >= edges.data.max() / n_epochs
    head, tail, weight = edges.row[keep], edges.col[keep], edges.data[keep]
    epochs_per_sample = weight.max() / weight
    next_sample = epochs_per_sample.copy()
    layout = np.array(start, dtype=np.float32)
    n = len(layout)
    for epoch in range(n_epochs):
        rate = np.float32(initial_rate * (1.0 - epoch / n_epochs))
        active = np.flatnonzero(next_sample <= epoch + 1)
        next_sample[active] += epochs_per_sample[active]
        heads, tails = head[active], tail[active]
        pulls = _attraction(layout[heads] - layout[tails], a, b)
        pushed = np.repeat(heads, _NEGATIVE_SAMPLES)
        others = rng.integers(n, size=len(pushed))
        pushes = _repulsion(layout[pushed] - layout[others], a, b)
        rows = np.concatenate([heads, tails, pushed])
        steps = np.concatenate([pulls, -pulls, pushes])
        for axis in range(layout.shape[1]):
            moves = np.bincount(rows, weights=steps[:, axis], minlength=n)
            layout[:, axis] += rate * moves.astype(np.float32)
    return layout


def _attraction(difference, a, b):
    """The clipped gradient step of each edge's attraction (towards its other end)."""
    squared = np.einsum("ij,ij->i", difference, difference)
    with np.errstate(divide="ignore", invalid="ignore"):
        coefficient = -2 * a * b * squared ** (b - 1) / (1 + a * squared**b)
    coefficient = np.where(squared > 0, coefficient, 0).astype(np.float32)
    return np.clip(coefficient[:, None] * difference, -_GRADIENT_CLIP, _GRADIENT_CLIP)


def _repulsion(difference, a, b):
    """The clipped gradient step of each negative pair's repulsion."""
    squared = np.einsum("ij,ij->i", difference, difference)
    coefficient = (2 * b / ((0.001 + squared) * (1 + a * squared**b))).astype(np.float32)
    steps = np.clip(coefficient[:, None] * difference, -_GRADIENT_CLIP, _GRADIENT_CLIP)
    # Two rows at the same place push apart by the clip, as in UMAP.
    return np.where(squared[:, None] > 0, steps, np.float32(_GRADIENT_CLIP))


def _similarity_onto(layout, codes):
    """``layout`` rotated (or reflected), scaled and moved to best match ``codes``."""
    layout = layout - layout.mean(axis=0)
    centre = codes.mean(axis=0)
    rotation, _ = scipy.linalg.orthogonal_procrustes(layout, codes - centre)
    turned = layout @ rotation
    scale = np.sqrt(((codes - centre) ** 2).sum() / max(float((turned**2).sum()), 1e-12))
    return turned * scale + centre


def map_targets(graph, codes, kernel, seed, *, fresh):
    """The codes the network is trained towards: UMAP's layout of the graph's rows.

    Parameters
    ----------
    graph : CSR matrix of shape (n_samples, n_samples)
        The fuzzy neighbour graph (``skae._neighbors.fuzzy_graph``).
    codes : ndarray of shape (n_samples, n_components)
        The network's codes of the same rows before training.
    kernel : tuple of float
        UMAP's ``(a, b)``.
    seed : int
    fresh : bool
        A new network: start from the graph's spectral layout. Otherwise
        (a continued fit) start from ``codes`` at a quarter of the learning
        rate, so that the map moves on from the one the network has.

    Returns
    -------
    targets : ndarray of shape (n_samples, n_components), float32
        The layout, in the units and orientation of ``codes``.
    """
    codes = np.asarray(codes, dtype=np.float64)
    start = spectral_layout(graph, codes.shape[1], seed) if fresh else codes
    rate = 1.0 if fresh else _CONTINUED_RATE
    epochs = layout_epochs(graph.shape[0])
    layout = optimize_layout(graph, _spread_out(start), kernel, epochs, seed, initial_rate=rate)
    return _similarity_onto(layout.astype(np.float64), codes).astype(np.float32)
