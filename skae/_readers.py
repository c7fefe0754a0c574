"""Arrays read block by block: files on disk (``np.memmap``, HDF5, zarr) and dask arrays.

Such data is never copied or checked whole: an :class:`ArrayReader` reads
contiguous rows, checks them (numeric, finite) and converts them, one block
at a time; :func:`summarize` makes the one pass a fit's start needs.
"""

from typing import NamedTuple

import numpy as np

from ._config import get_config

# Rows per block: about this many float32 values (16 MB).
BLOCK_VALUES = 1 << 22
_OUT_OF_CORE_PACKAGES = ("h5py", "zarr", "dask")
_FALLBACK_AVAILABLE_MEMORY = 16 << 30


def is_out_of_core(X):
    """Whether ``X`` is an array that lives on disk or in a cluster, read on demand.

    Raises a ValueError for an HDF5 dataset whose file is closed (h5py
    raises a bare RuntimeError at the first access to it).
    """
    if isinstance(X, np.memmap):
        return True
    package = type(X).__module__.split(".")[0]
    if package not in _OUT_OF_CORE_PACKAGES:
        return False
    if package == "h5py" and hasattr(X, "id") and not X.id.valid:
        raise ValueError(
            "The HDF5 file of this dataset is closed: keep the h5py.File open (e.g. "
            "inside its `with` block) while skae reads the dataset."
        )
    return hasattr(X, "shape") and hasattr(X, "dtype")


def available_memory():
    """Bytes of host memory available now (``MemAvailable``), or a guess of 16 GiB."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return _FALLBACK_AVAILABLE_MEMORY


def memory_budget():
    """Bytes a fit may use to hold its training data in memory (see ``set_config``)."""
    budget = get_config()["memory_budget"]
    return budget if budget is not None else available_memory() // 4


def block_rows(n_features):
    """Number of rows per block so that one block holds about 16 MB of float32 values."""
    return max(1, BLOCK_VALUES // max(1, n_features))


def joined_bounds(n, step, smallest=2):
    """``[(start, stop), ...]`` cutting ``n`` items into runs of ``step``; a last run
    shorter than ``smallest`` joins the one before.

    The one rule for blocks, batches and shards: a batch of one row would make
    batch normalisation fail and gives a very noisy step.
    """
    starts = list(range(0, n, step))
    if len(starts) > 1 and n - starts[-1] < smallest:
        starts.pop()
    return list(zip(starts, starts[1:] + [n], strict=True))


def default_block_rows(n_features, chunk_rows=None):
    """About 16 MB of float32 rows, a multiple of the array's chunk rows when it has them."""
    rows = get_config()["stream_block_rows"]
    if rows is not None:
        return rows
    rows = block_rows(n_features)
    if chunk_rows:
        rows = max(chunk_rows, rows // chunk_rows * chunk_rows)
    return rows


def _chunk_rows(array):
    chunks = getattr(array, "chunks", None)
    if not chunks:
        return None
    first = chunks[0]
    return int(first[0] if isinstance(first, tuple) else first)


class DataReadError(ValueError, OSError):
    """Rows of data on disk or in a cluster could not be read (a closed HDF5 file, a
    moved zarr store, a failed dask task): both a ValueError and an OSError."""


def _read_rows(array, start, stop, what):
    """``array[start:stop]`` as an ndarray, or a :class:`DataReadError` that says which rows."""
    try:
        block = array[start:stop]
        return block.compute() if type(array).__module__.split(".")[0] == "dask" else block
    except MemoryError:
        raise
    except Exception as error:
        raise DataReadError(
            f"Reading rows {start}:{stop} of {what} ({type(array).__name__}) failed: "
            f"{error}. Was its file closed or moved during the call?"
        ) from error


class ArrayReader:
    """The rows of a 2-D array as checked float blocks.

    Parameters
    ----------
    array : ndarray, np.memmap, h5py.Dataset, zarr.Array or dask array
    what : str
        How error messages name the array.

    Blocks are float32 for float32 arrays and float64 otherwise, as
    scikit-learn's ``check_array(dtype=[np.float64, np.float32])`` gives.
    """

    def __init__(self, array, what="X"):
        shape = tuple(array.shape)
        if any(isinstance(size, float) and size != size for size in shape):
            raise ValueError(
                f"{what} has unknown chunk sizes (shape {shape}); call "
                "X.compute_chunk_sizes() first."
            )
        if len(shape) != 2:
            raise ValueError(f"Expected a 2D array, got {what} of shape {shape}.")
        if np.dtype(array.dtype).kind not in "biuf":
            raise ValueError(f"{what} has dtype {array.dtype}: skae needs numeric data.")
        if shape[0] < 1 or shape[1] < 1:
            raise ValueError(
                f"Found array with shape {shape}: at least one sample and one feature are needed."
            )
        self.array = array
        self.what = what
        self.shape = shape
        self.dtype = np.dtype(np.float32 if array.dtype == np.float32 else np.float64)
        self.block_rows = default_block_rows(shape[1], _chunk_rows(array))
        # Called on every block read (e.g. a [0, 1] check), when set.
        self.check = None

    @property
    def nbytes(self):
        return self.shape[0] * self.shape[1] * self.dtype.itemsize

    def blocks(self, block_rows=None):
        """``(start, stop)`` of each block, in order."""
        return joined_bounds(self.shape[0], block_rows or self.block_rows)

    def read(self, start, stop):
        """Rows ``start:stop`` as a checked float ndarray."""
        return self.read_with_sums(start, stop)[0]

    def read_with_sums(self, start, stop):
        """Rows ``start:stop``, checked, and their column sums (float64)."""
        block = np.asarray(_read_rows(self.array, start, stop, self.what), dtype=self.dtype)
        # Float64 sums are finite when every value is (they cannot overflow
        # for float32 data; float64 values near float64's limit are refused
        # below): one pass, no mask, and the sums serve the start's moments too.
        with np.errstate(over="ignore"):  # an overflow is reported below
            sums = block.sum(axis=0, dtype=np.float64)
        if not np.isfinite(sums).all():
            rows = start + np.flatnonzero(~np.isfinite(block).all(axis=1))
            if not len(rows):  # finite float64 values whose sums overflow
                raise ValueError(
                    f"Input {self.what} holds values up to {np.abs(block).max():.4g} in "
                    "magnitude, too large to compute with. Scale the data first "
                    "(e.g. StandardScaler)."
                )
            shown = ", ".join(str(row) for row in rows[:5]) + (", ..." if len(rows) > 5 else "")
            raise ValueError(f"Input {self.what} contains NaN or infinity in rows {shown}.")
        if self.check is not None:
            self.check(block)
        return block, sums

    def materialize(self):
        """All rows in one ndarray (for data within the memory budget)."""
        out = np.empty(self.shape, dtype=self.dtype)
        for start, stop in self.blocks():
            out[start:stop] = self.read(start, stop)
        return out


class Summary(NamedTuple):
    """What one streamed pass learns of the data: moments and a row sample."""

    center: np.ndarray
    variance: np.ndarray
    sample: np.ndarray


# Bytes a value the in-memory path holds at its peak besides the data: the
# float32 training copy and the float64 temporaries of the data's moments.
_IN_MEMORY_BYTES = 12


def fits_in_memory(n_samples, n_features, itemsize=0):
    """Whether training from memory fits the budget (plus ``itemsize`` bytes a value
    for data that must first be read into memory)."""
    return n_samples * n_features * (_IN_MEMORY_BYTES + itemsize) <= memory_budget()


def summarize(reader, blocks, n_sample, seed, sample_blocks=None):
    """Feature means and variances of ``blocks``, and ``n_sample`` random rows
    of ``sample_blocks`` (a subset of ``blocks``; by default all of them).

    One pass over the blocks (every value checked as it is read); means and
    variances are merged block by block in float64 (Chan et al.), so no
    block needs more than its own memory.
    """
    sampled = set(blocks if sample_blocks is None else sample_blocks)
    n_total = sum(stop - start for start, stop in blocks if (start, stop) in sampled)
    n_sample = min(n_sample, n_total)
    picked = np.sort(np.random.default_rng(seed).choice(n_total, n_sample, replace=False))
    count, mean, m2 = 0, 0.0, 0.0
    samples, offset = [], 0
    for start, stop in blocks:
        block, sums = reader.read_with_sums(start, stop)
        n = block.shape[0]
        block_mean = sums / n
        # Centred in the block's own dtype (no float64 copy of the block);
        # einsum sums the squares without a second temporary.
        centered = block - block_mean.astype(block.dtype)
        block_m2 = np.einsum("ij,ij->j", centered, centered).astype(np.float64)
        del centered
        delta = block_mean - mean
        mean = mean + delta * n / (count + n)
        m2 = m2 + block_m2 + delta**2 * count * n / (count + n)
        count += n
        if (start, stop) in sampled:
            inside = picked[(picked >= offset) & (picked < offset + n)] - offset
            samples.append(block[inside])
            offset += n
    return Summary(
        np.asarray(mean, dtype=np.float64),
        np.asarray(m2 / count, dtype=np.float64),
        np.concatenate(samples),
    )
