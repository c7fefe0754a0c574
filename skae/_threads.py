"""How many CPU threads a call's torch and BLAS work use, for the call only.

torch's intra-op pool and the BLAS under numpy take every core by default
and spin while they wait for each other. When another process holds a core,
each small operation waits for the thread the scheduler parked: on a 2-core
machine beside one busy process, a default digits fit took 3.1x its time
alone on torch's 2 threads and 1.4x on one (``benchmarks/bench_threads.py``).
So by default a call leaves one core to the rest of the machine, and puts
the previous settings back when it ends. The number of threads changes the
order of floating-point sums, so a fit is bit-identical for a fixed number
of threads, not across numbers.
"""

import contextlib
import functools
import os
import threading

import torch
from threadpoolctl import ThreadpoolController

from ._config import get_config


def available_cpus():
    """The CPUs this process may run on (its affinity, where the OS says)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def call_threads(setting=None):
    """The CPU threads a call uses under ``setting`` (``n_threads`` of
    :func:`skae.set_config` when None).

    ``"auto"``: one core fewer than the process may use, at least 1, and no
    more than torch's own setting (``torch.set_num_threads``,
    ``OMP_NUM_THREADS``); an integer is taken as it is.
    """
    setting = get_config()["n_threads"] if setting is None else setting
    if setting != "auto":
        return int(setting)
    return max(1, min(torch.get_num_threads(), available_cpus() - 1))


@functools.cache
def _blas_pools():
    """The BLAS libraries loaded when skae first limits them (numpy's and
    scipy's load with skae's own imports); found once, as a scan of the
    loaded libraries costs far more than setting their threads."""
    return ThreadpoolController().select(user_api="blas")


# Calls running in several Python threads of one process overlap: the first
# to start saves the process's settings and the last to end restores them.
_lock = threading.Lock()
_active = {"calls": 0, "torch": None, "blas": None}


@contextlib.contextmanager
def call_thread_limits(device):
    """Run the block with :func:`call_threads` torch and BLAS threads when
    ``device`` is the CPU; restore both afterwards, also on an exception.

    Nested and overlapping calls (several Python threads) share one saved
    state: the settings the process had before the first of them began
    come back when the last one ends.
    """
    if torch.device(device).type != "cpu":
        yield
        return
    threads = call_threads()
    with _lock:
        if _active["calls"] == 0:
            _active["torch"] = torch.get_num_threads()
            _active["blas"] = _blas_pools().limit(limits=threads)
        else:
            _blas_pools().limit(limits=threads)  # this call's own; the first saved the originals
        _active["calls"] += 1
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        with _lock:
            _active["calls"] -= 1
            if _active["calls"] == 0:
                torch.set_num_threads(_active["torch"])
                _active["blas"].restore_original_limits()
                _active["torch"] = _active["blas"] = None
