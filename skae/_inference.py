"""Inference over rows in blocks: what ``transform``, scoring and inspection run on."""

import math

import numpy as np
import torch

from ._batches import rows_to_tensor
from ._readers import block_rows
from ._threads import call_thread_limits


def map_rows(
    function, X, device, n_outputs, dtype, compute_dtype=torch.float32, rows_per_block=None
):
    """Apply ``function`` to ``X`` block by block and gather the results.

    Parameters
    ----------
    function : callable
        Takes a float32 tensor of rows on ``device`` and returns a tensor with
        ``n_outputs`` columns, or a 1-D tensor when ``n_outputs`` is None.
    X : ndarray, sparse matrix or ArrayReader
        An :class:`~skae._readers.ArrayReader` is read (and checked) block by block.
    device : torch.device
    n_outputs : int, tuple of int or None
        Columns of the result (a tuple: the shape of each row's result).
    dtype : numpy dtype of the result
    compute_dtype : torch dtype the rows are converted to
    rows_per_block : int, default=None
        Rows per block; by default about 16 MB of input or output per block.

    Returns
    -------
    ndarray of shape (n_samples, n_outputs) or (n_samples,)
    """
    row_shape = () if n_outputs is None else np.atleast_1d(n_outputs).tolist()
    out = np.empty((X.shape[0], *row_shape), dtype=dtype)
    step = rows_per_block or block_rows(max(X.shape[1], math.prod(row_shape)))
    with call_thread_limits(device):
        for start, stop, block in row_blocks(X, device, compute_dtype, step):
            out[start:stop] = function(block).cpu().numpy()
    return out


def row_blocks(X, device, compute_dtype, rows_per_block):
    """``(start, stop, rows)`` of ``X`` in blocks, each a ``compute_dtype`` tensor on ``device``.

    ``X`` is an ndarray, a sparse matrix (densified block by block) or an
    :class:`~skae._readers.ArrayReader` (read and checked block by block).
    """
    read = X.read if hasattr(X, "read") else (lambda start, stop: X[start:stop])
    for start in range(0, X.shape[0], rows_per_block):
        stop = min(start + rows_per_block, X.shape[0])
        yield start, stop, rows_to_tensor(read(start, stop), device, compute_dtype)
