"""Serve rows as float32 tensors on the training device, in batches.

In memory (:class:`RowSource`): dense data is converted once and kept on the
device, a batch is an index into it; sparse data stays a CSR matrix on the
host and only the rows of one batch are densified. Streamed
(:class:`StreamSource`): blocks of rows are read in a random order, a window
of them at a time, and shuffled together. There is deliberately no
per-sample ``Dataset``.
"""

import numpy as np
import scipy.sparse as sp
import torch

from ._config import get_config
from ._readers import block_rows, joined_bounds

# Keep dense data on the host when it would fill more than this share of free GPU memory.
_DEVICE_MEMORY_SHARE = 0.5
# Rows per batch when a loss is only evaluated (no gradients): at least this many.
_EVALUATION_ROWS = 4096
# Streamed data compares a fit's start and end on blocks of about this many values.
COMPARISON_VALUES = 1 << 24
# Data in memory compares them, and measures a call's summary, on at most this
# many evenly spaced rows: a bounded cost per call (two passes over all of the
# MNIST split cost 0.8 of an epoch).
COMPARISON_ROWS = 2048


def batch_bounds(n_samples, batch_size):
    """``(start, stop)`` of each batch; a last batch of one sample joins the one before."""
    return joined_bounds(n_samples, batch_size)


def shard_bounds(n_samples, batch_size, rank, world_size):
    """This rank's ``(start, stop)`` in each global batch, with the global batch's size.

    A global batch holds ``batch_size`` rows per rank, split as evenly as
    possible; every rank makes the same number of steps, each with at least
    two rows (a short last global batch joins the one before).
    """
    for start, stop in joined_bounds(n_samples, batch_size * world_size, 2 * world_size):
        base, extra = divmod(stop - start, world_size)
        first = start + rank * base + min(rank, extra)
        yield first, first + base + (rank < extra), stop - start


def shard_range(n_samples, rank, world_size):
    """This rank's contiguous share of ``n_samples`` rows, for evaluation."""
    base, extra = divmod(n_samples, world_size)
    first = rank * base + min(rank, extra)
    return first, first + base + (rank < extra)


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
    """The rows of ``X``, held in memory, as float32 batches on ``device``.

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

    def _index_device(self):
        return self._dense.device if self._dense is not None else torch.device("cpu")

    def take(self, index):
        """Return the rows at ``index`` (a tensor of row numbers)."""
        index = index.to(self._index_device())
        if self._dense is not None:
            rows = self._dense.index_select(0, index)
            return rows.to(self.device, non_blocking=True)
        return rows_to_tensor(self._sparse[index.numpy()], self.device)

    def batches(self, batch_size, generator, group):
        """One epoch of ``(batch, rows in the global batch)`` in the order ``generator`` draws.

        In a process group of several ranks (``group``, see
        ``skae._distributed``) every rank draws the same permutation and
        takes its share of each global batch.
        """
        order = torch.randperm(self.n_samples, generator=generator).to(self._index_device())
        if group.world_size == 1:
            for start, stop in batch_bounds(self.n_samples, batch_size):
                yield self.take(order[start:stop]), stop - start
            return
        for start, stop, n_global in shard_bounds(
            self.n_samples, batch_size, group.rank, group.world_size
        ):
            yield self.take(order[start:stop]), n_global

    def comparison_sample(self):
        """The rows a fit's start and end are compared on: all of them, or
        ``COMPARISON_ROWS`` evenly spaced ones."""
        return self if self.n_samples <= COMPARISON_ROWS else RowSample(self, COMPARISON_ROWS)

    def sequential_batches(self, batch_size, group):
        """This rank's share of the rows in order, in batches of at least ``batch_size`` rows."""
        step = max(batch_size, _EVALUATION_ROWS)
        first, last = shard_range(self.n_samples, group.rank, group.world_size)
        order = torch.arange(first, last, device=self._index_device())
        for start in range(0, len(order), step):
            yield self.take(order[start : start + step])


class RowSample:
    """``n_rows`` evenly spaced rows of a :class:`RowSource`, always the same ones.

    Evenly spaced rather than drawn, so that taking the sample consumes no
    random numbers and rows sorted by class are still all represented.
    """

    def __init__(self, source, n_rows):
        self.source = source
        # float64: float32 cannot count past 2**24 rows exactly.
        self.index = torch.linspace(0, len(source) - 1, n_rows, dtype=torch.float64).round().long()

    def __len__(self):
        return len(self.index)

    def comparison_sample(self):
        return self

    def sequential_batches(self, batch_size, group):
        """This rank's share of the sample in order, in batches of at least ``batch_size`` rows."""
        step = max(batch_size, _EVALUATION_ROWS)
        first, last = shard_range(len(self.index), group.rank, group.world_size)
        for start in range(first, last, step):
            yield self.source.take(self.index[start : min(start + step, last)])


class MapSource:
    """Rows in memory, each followed by the code the neighbour objective pulls it towards.

    For the neighbour objective (``neighbor_weight``): a batch of ``m`` rows
    of ``n_features`` values becomes ``m`` rows of ``n_features +
    n_components`` values, the row then its target code (``set_targets``,
    from ``skae._layout.map_targets``); the model splits them
    (``ReconstructionModel.split_targets``).

    Parameters
    ----------
    rows : RowSource
    graph : CSR matrix
        The fuzzy neighbour graph of the same rows, which the targets lay out.
    """

    def __init__(self, rows, graph):
        self.rows = rows
        self.graph = graph
        self.n_samples = len(rows)
        self.targets = None

    def __len__(self):
        return self.n_samples

    def set_targets(self, targets):
        """Serve ``targets`` (one code per row, in the rows' order) with the rows."""
        self.targets = torch.as_tensor(targets, dtype=torch.float32).to(self.rows.device)

    def _with_targets(self, index):
        rows = self.rows.take(index)
        return torch.cat([rows, self.targets[index.to(self.targets.device)]], dim=1)

    def batches(self, batch_size, generator, group):
        """One epoch of ``(batch of rows and their targets, rows)`` in a random order."""
        order = torch.randperm(self.n_samples, generator=generator)
        for start, stop in batch_bounds(self.n_samples, batch_size):
            yield self._with_targets(order[start:stop]), stop - start

    def comparison_sample(self):
        return self

    def sequential_batches(self, batch_size, group):
        """All rows in order, with their targets."""
        step = max(batch_size, _EVALUATION_ROWS)
        for start in range(0, self.n_samples, step):
            yield self._with_targets(torch.arange(start, min(start + step, self.n_samples)))


class StreamSource:
    """Rows read block by block from an :class:`~skae._readers.ArrayReader`.

    An epoch reads the blocks in a random order, ``stream_window_blocks`` at
    a time (see :func:`skae.set_config`), shuffles the rows of each window
    together and serves them as batches: every row once per epoch, with
    only one window in memory.

    Parameters
    ----------
    reader : ArrayReader
    device : torch.device
    blocks : list of (start, stop), default=None
        The blocks this source serves; all of the reader's by default.
    """

    def __init__(self, reader, device, blocks=None):
        self.reader = reader
        self.device = device
        self.blocks = list(blocks if blocks is not None else reader.blocks())
        self.n_samples = sum(stop - start for start, stop in self.blocks)
        self.window = get_config()["stream_window_blocks"]

    def __len__(self):
        return self.n_samples

    def _tensor(self, rows):
        return rows_to_tensor(rows, self.device)

    def batches(self, batch_size, generator, group):
        """One epoch of ``(batch, rows)``: blocks in random order, shuffled within windows."""
        if group.world_size > 1:
            yield from self._sharded_batches(batch_size, generator, group)
            return
        block_order = torch.randperm(len(self.blocks), generator=generator).tolist()
        for first in range(0, len(block_order), self.window):
            window = [self.blocks[i] for i in block_order[first : first + self.window]]
            rows = self._read_window(window)
            order = torch.randperm(len(rows), generator=generator).numpy()
            for start, stop in batch_bounds(len(rows), batch_size):
                yield self._tensor(rows[order[start:stop]]), stop - start

    def _sharded_batches(self, batch_size, generator, group):
        """This rank's batches in a process group: blocks dealt out, equal steps everywhere.

        Every rank draws the same block order. A global window of
        ``stream_window_blocks x world_size`` blocks deals its blocks to the
        ranks in turn; each rank reads only its own, shuffles their rows and
        cuts them into as many batches as every other rank (each of at least
        two rows), sized so that a global step holds about ``batch_size``
        rows per rank.
        """
        world, rank = group.world_size, group.rank
        block_order = torch.randperm(len(self.blocks), generator=generator).tolist()
        for window in _global_windows(block_order, self.window * world, world):
            dealt = [[self.blocks[i] for i in window[r::world]] for r in range(world)]
            counts = [sum(stop - start for start, stop in blocks) for blocks in dealt]
            steps = max(1, min(-(-sum(counts) // (batch_size * world)), min(counts) // 2))
            sizes = [np.diff(np.linspace(0, count, steps + 1).astype(int)) for count in counts]
            # The same draw on every rank, then a generator of this rank's own.
            local = torch.Generator().manual_seed(
                int(torch.randint(2**62, (), generator=generator)) + rank
            )
            rows = self._read_window(dealt[rank])
            order = torch.randperm(len(rows), generator=local).numpy()
            bounds = np.concatenate([[0], np.cumsum(sizes[rank])])
            for step in range(steps):
                n_global = int(sum(size[step] for size in sizes))
                yield self._tensor(rows[order[bounds[step] : bounds[step + 1]]]), n_global

    def _read_window(self, window):
        """The rows of the blocks in ``window``, read into one array (no second copy)."""
        rows = np.empty(
            (sum(stop - start for start, stop in window), self.reader.shape[1]),
            dtype=self.reader.dtype,
        )
        offset = 0
        for start, stop in window:
            rows[offset : offset + stop - start] = self.reader.read(start, stop)
            offset += stop - start
        return rows

    def comparison_sample(self):
        """Evenly spread blocks of about ``COMPARISON_VALUES`` values in all.

        Comparing a fit's start and end on all of a large file would cost
        two extra passes over it.
        """
        wanted = max(1, COMPARISON_VALUES // max(1, self.reader.shape[1] * self.reader.block_rows))
        step = -(-len(self.blocks) // wanted)
        return self if step <= 1 else StreamSource(self.reader, self.device, self.blocks[::step])

    def sequential_batches(self, batch_size, group):
        """This rank's share of the blocks in order, a block at a time."""
        first, last = shard_range(len(self.blocks), group.rank, group.world_size)
        for start, stop in self.blocks[first:last]:
            yield self._tensor(self.reader.read(start, stop))


def _global_windows(block_order, window_blocks, world_size):
    """Windows of ``window_blocks`` block indices; a last window too small to give
    every rank a block joins the one before."""
    return [
        block_order[start:stop]
        for start, stop in joined_bounds(len(block_order), window_blocks, world_size)
    ]
