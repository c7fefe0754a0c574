"""Serve rows of in-memory data as float32 tensors on the training device.

Dense data is converted once and kept on the device; a batch is an index
into it. Sparse data stays a CSR matrix on the host and only the rows of one
batch are densified. There is deliberately no per-sample ``Dataset``.
"""

import numpy as np
import scipy.sparse as sp
import torch

# Rows are converted and moved in blocks of about this many float32 values.
_BLOCK_VALUES = 1 << 22
# Keep dense data on the host when it would fill more than this share of free GPU memory.
_DEVICE_MEMORY_SHARE = 0.5


def block_rows(n_features):
    """Number of rows per block so that one block holds about 16 MB."""
    return max(1, _BLOCK_VALUES // max(1, n_features))


def rows_to_tensor(X, device, dtype=torch.float32):
    """Return the rows ``X`` (dense array or sparse matrix) as ``dtype`` on ``device``."""
    if sp.issparse(X):
        X = X.toarray()
    block = np.ascontiguousarray(X, dtype=torch.empty((), dtype=dtype).numpy().dtype)
    if not block.flags.writeable:
        block = block.copy()
    return torch.from_numpy(block).to(device)


def _fits_on_device(n_bytes, device):
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return n_bytes <= _DEVICE_MEMORY_SHARE * free


class RowSource:
    """The rows of ``X`` as float32 batches on ``device``.

    Parameters
    ----------
    X : ndarray or CSR matrix of shape (n_samples, n_features)
    device : torch.device
    """

    def __init__(self, X, device):
        self.device = device
        self.n_samples = X.shape[0]
        self._sparse = X.tocsr() if sp.issparse(X) else None
        self._dense = None
        if self._sparse is None:
            n_bytes = 4 * X.shape[0] * X.shape[1]
            home = device if _fits_on_device(n_bytes, device) else torch.device("cpu")
            self._dense = self._copy_in_blocks(X, home)
            if home != device:
                self._dense = self._dense.pin_memory()

    @staticmethod
    def _copy_in_blocks(X, device):
        out = torch.empty(X.shape, dtype=torch.float32, device=device)
        step = block_rows(X.shape[1])
        for start in range(0, X.shape[0], step):
            out[start : start + step] = rows_to_tensor(X[start : start + step], device)
        return out

    def __len__(self):
        return self.n_samples

    def index_device(self):
        """Where batch indices should live for :meth:`take`."""
        if self._dense is not None:
            return self._dense.device
        return torch.device("cpu")

    def take(self, index):
        """Return the rows at ``index`` (a tensor on :meth:`index_device`)."""
        if self._dense is not None:
            rows = self._dense.index_select(0, index)
            return rows.to(self.device, non_blocking=True)
        return rows_to_tensor(self._sparse[index.numpy()], self.device)


def map_rows(
    function, X, device, n_outputs, dtype, compute_dtype=torch.float32, rows_per_block=None
):
    """Apply ``function`` to ``X`` block by block and gather the results.

    Parameters
    ----------
    function : callable
        Takes a float32 tensor of rows on ``device`` and returns a tensor with
        ``n_outputs`` columns, or a 1-D tensor when ``n_outputs`` is None.
    X : ndarray or sparse matrix
    device : torch.device
    n_outputs : int or None
    dtype : numpy dtype of the result
    compute_dtype : torch dtype the rows are converted to
    rows_per_block : int, default=None
        Rows per block; by default about 16 MB of input or output per block.

    Returns
    -------
    ndarray of shape (n_samples, n_outputs) or (n_samples,)
    """
    shape = (X.shape[0],) if n_outputs is None else (X.shape[0], n_outputs)
    out = np.empty(shape, dtype=dtype)
    step = rows_per_block or block_rows(max(X.shape[1], n_outputs or 1))
    for start in range(0, X.shape[0], step):
        block = rows_to_tensor(X[start : start + step], device, compute_dtype)
        out[start : start + step] = function(block).cpu().numpy()
    return out
