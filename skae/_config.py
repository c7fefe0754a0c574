"""skae's global settings: data that may not fit in memory, and CPU threads.

Set them with :func:`set_config`, or for a block of code with
:func:`config_context`; fitting itself never changes them. They belong to
the thread that sets them and, unlike scikit-learn's own configuration, do
not travel to joblib's workers: set them inside the function a worker runs.
The memory budget applies to each fit on its own, so fits running side by
side (or the ranks of a process group on one machine) each take their budget.
"""

import contextlib
import numbers
import threading

_DEFAULTS = {
    "memory_budget": None,
    "stream_block_rows": None,
    "stream_window_blocks": 8,
    "n_threads": "auto",
}
_local = threading.local()


def _config():
    if not hasattr(_local, "config"):
        _local.config = dict(_DEFAULTS)
    return _local.config


def get_config() -> dict:
    """The current settings (see :func:`set_config`).

    Returns
    -------
    config : dict
        ``memory_budget``, ``stream_block_rows``, ``stream_window_blocks``
        and ``n_threads`` of this thread; a copy, so changing it changes
        nothing.
    """
    return dict(_config())


def set_config(
    memory_budget: int | None = None,
    stream_block_rows: int | None = None,
    stream_window_blocks: int | None = None,
    n_threads: int | str | None = None,
) -> None:
    """Change how skae handles data that may not fit in memory, and its CPU threads.

    Only the arguments given change; the settings are per thread.

    Parameters
    ----------
    memory_budget : int, default=None
        Bytes of host memory a fit may use to hold its training data (12
        bytes a value at the peak, plus the data itself when it must be read
        from a file first). Data within the budget is trained from memory; larger data
        is streamed from where it lies, block by block. None (the default
        until set) means a quarter of the memory available when the fit
        starts (``MemAvailable``, or 4 GiB where that cannot be read).
    stream_block_rows : int, default=None
        Rows per block read from streamed data; None picks about 16 MB of
        float32 per block, rounded to the array's own chunks where it has
        them (HDF5, zarr, dask).
    stream_window_blocks : int, default=8
        Streamed training reads blocks in a random order, this many at a
        time, and shuffles the rows of those blocks together: the wider the
        window, the closer to a full shuffle and the more memory.
    n_threads : int or "auto", default="auto"
        CPU threads of torch and of the BLAS under numpy during a fit,
        ``transform`` or any other call on the CPU; the previous settings
        come back when the call ends. ``"auto"`` leaves one core to the rest
        of the machine (one fewer than the process may use, at least 1, at
        most ``torch.get_num_threads()``, which ``OMP_NUM_THREADS`` sets):
        beside one busy process on 2 cores, torch's two spinning threads
        made a fit 3.1x slower than alone, one thread 1.4x. Results are
        bit-identical for a fixed number of threads, not across numbers.
        While a call runs, ``torch.set_num_threads`` is changed for the
        whole process: calls running in parallel threads of one process
        should use the same setting.
    """
    given = {
        "memory_budget": memory_budget,
        "stream_block_rows": stream_block_rows,
        "stream_window_blocks": stream_window_blocks,
        "n_threads": n_threads,
    }
    changes = {}
    for name, value in given.items():
        if value is None or (name == "n_threads" and value == "auto"):
            changes[name] = value
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            also = ' or "auto"' if name == "n_threads" else ""
            raise ValueError(f"{name} must be a positive integer{also}; got {value!r}.")
        changes[name] = int(value)
    # Checked first, then set: a call with one bad value changes nothing.
    _config().update({name: value for name, value in changes.items() if value is not None})


@contextlib.contextmanager
def config_context(**settings):
    """Use ``settings`` inside a ``with`` block only.

    Parameters
    ----------
    **settings : dict
        Any arguments of :func:`set_config`.

    Yields
    ------
    None
        The previous settings come back when the block ends, also on an
        exception.
    """
    config = _config()
    saved = dict(config)
    set_config(**settings)
    try:
        yield
    finally:
        config.clear()
        config.update(saved)
