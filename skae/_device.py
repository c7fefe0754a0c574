"""Resolve the ``device`` parameter into a ``torch.device``."""

import re

import torch

from ._distributed import local_rank_device

_DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(?::([0-9]{1,3}))?")


def check_device_name(spec):
    """Raise a ValueError unless ``spec`` is a valid ``device`` value (whether or not it exists)."""
    # fullmatch: a pattern ending in "$" would also accept "cpu\n".
    match = _DEVICE_PATTERN.fullmatch(spec) if isinstance(spec, str) else None
    # torch keeps a device index in 8 bits ("cuda:300" is cuda:44) and rejects
    # some spellings of it with a bare RuntimeError: only 0-255, no leading zeros.
    index = match and match.group(1)
    if match is None or (index is not None and (index != str(int(index)) or int(index) > 255)):
        raise ValueError(
            f"device={spec!r} is not valid: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'."
        )


def resolve_device(spec):
    """Return the ``torch.device`` that ``spec`` asks for.

    Parameters
    ----------
    spec : str
        ``"auto"`` (CUDA when available, ``cuda:LOCAL_RANK`` inside a
        ``torch.distributed`` process group of several ranks, else Apple
        MPS, else CPU), ``"cpu"``,
        ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    Raises
    ------
    ValueError
        When ``spec`` is not one of those, or names a device this machine
        does not have. A request for a GPU never silently falls back to the CPU.
    """
    check_device_name(spec)
    if spec == "auto":
        local = local_rank_device()
        if local is not None:
            return local
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={spec!r} was requested but CUDA is not available: {_why()}")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={spec!r} was requested but only "
                f"{torch.cuda.device_count()} CUDA device(s) exist."
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={spec!r} was requested but MPS is not available.")
    return device


def _why():
    """What the installed torch says about CUDA, for an error message."""
    if torch.version.cuda is None:
        return (
            f"the installed torch {torch.__version__} is a CPU-only build. Install a CUDA "
            "build (https://pytorch.org/get-started/locally/), or use device='cpu'."
        )
    return (
        f"the installed torch {torch.__version__} is built for CUDA {torch.version.cuda} "
        "but finds no usable GPU (check the NVIDIA driver and CUDA_VISIBLE_DEVICES)."
    )
