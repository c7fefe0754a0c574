"""The neighbour graph and kernel of the neighbour-preserving objective (UMAP's).

:func:`fuzzy_graph` builds UMAP's fuzzy simplicial set of the training rows
from their ``n_neighbors`` nearest neighbours (scikit-learn's
``NearestNeighbors``, or ``pynndescent`` for large data when it is
installed): memory and time linear in the number of rows, never an n x n
matrix. The low-dimensional similarity the objective uses is in
``skae._objectives`` (``kernel_parameters``).
"""

import numpy as np
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors

# Above this many rows, pynndescent (when installed) replaces exact search.
APPROXIMATE_ROWS = 50_000
_SIGMA_STEPS = 64


def nearest_neighbors(X, n_neighbors, seed):
    """Indices and distances of each row's ``n_neighbors`` nearest other rows."""
    if X.shape[0] > APPROXIMATE_ROWS:
        try:
            from pynndescent import NNDescent
        except ImportError:
            NNDescent = None
        if NNDescent is not None:
            index = NNDescent(X, n_neighbors=n_neighbors + 1, random_state=seed)
            indices, distances = index.neighbor_graph
            return indices[:, 1:], distances[:, 1:]
    search = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(X)
    distances, indices = search.kneighbors(X)
    return indices[:, 1:], distances[:, 1:]


def _membership_strengths(distances):
    """UMAP's per-row ``rho`` and ``sigma``, then each edge's weight."""
    k = distances.shape[1]
    rho = distances[:, 0]
    shifted = np.maximum(distances - rho[:, None], 0.0)
    target = np.log2(k)
    low, high = np.zeros(len(distances)), np.full(len(distances), np.inf)
    sigma = np.ones(len(distances))
    for _ in range(_SIGMA_STEPS):
        total = np.exp(-shifted / sigma[:, None]).sum(axis=1)
        too_wide = total > target
        high = np.where(too_wide, sigma, high)
        low = np.where(too_wide, low, sigma)
        sigma = np.where(np.isinf(high), sigma * 2, (low + high) / 2)
    sigma = np.maximum(sigma, 1e-3 * max(float(np.mean(distances)), 1e-12))
    return np.exp(-shifted / sigma[:, None])


def fuzzy_graph(X, n_neighbors, seed):
    """UMAP's symmetric fuzzy neighbour graph of the rows of ``X``, as a CSR matrix."""
    n = X.shape[0]
    if n_neighbors >= n:
        raise ValueError(
            f"n_neighbors={n_neighbors} needs more training samples than that; got {n}."
        )
    indices, distances = nearest_neighbors(X, n_neighbors, seed)
    weights = _membership_strengths(distances)
    rows = np.repeat(np.arange(n), n_neighbors)
    graph = sp.csr_matrix((weights.ravel(), (rows, indices.ravel())), shape=(n, n))
    transpose = graph.T.tocsr()
    graph = graph + transpose - graph.multiply(transpose)
    graph.eliminate_zeros()
    graph.sort_indices()
    return graph
