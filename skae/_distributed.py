"""Data-parallel training across a ``torch.distributed`` process group.

A fit called inside an initialised default process group of more than one
process trains with ``DistributedDataParallel``: every rank reads its share
of each global batch, gradients are averaged, and losses are summed across
ranks so that every decision (stopping, best weights, divergence) is the same
everywhere. Outside a group, or in a group of one, :class:`Alone` stands in
and nothing changes.
"""

import os

import torch
from torch import nn


def current_group():
    """The process group a fit runs in: a :class:`ProcessGroup` or :class:`Alone`."""
    distributed = torch.distributed
    if distributed.is_available() and distributed.is_initialized():
        if distributed.get_world_size() > 1:
            return ProcessGroup()
    return Alone()


def agreed(group, function, *args):
    """``function(*args)``, raising on every rank of ``group`` if it raises on any."""
    try:
        result = function(*args)
    except Exception as error:
        group.agree(error)
        raise
    group.agree(None)
    return result


def local_rank_device():
    """``cuda:LOCAL_RANK`` inside a process group on a machine with CUDA, else None."""
    distributed = torch.distributed
    if not (torch.cuda.is_available() and distributed.is_available()):
        return None
    if not distributed.is_initialized() or distributed.get_world_size() < 2:
        return None
    index = int(os.environ.get("LOCAL_RANK", torch.cuda.current_device()))
    if index >= torch.cuda.device_count():
        # Each rank sees only its own GPU(s) (CUDA_VISIBLE_DEVICES per rank).
        index = torch.cuda.current_device()
    return torch.device("cuda", index)


class Alone:
    """One process: every collective is the identity."""

    rank = 0
    world_size = 1
    is_main = True

    def agree(self, error):
        """Raise ``error`` (an exception or None); in a group, raise where any rank failed."""
        if error is not None:
            raise error

    def broadcast(self, value):
        """Rank 0's ``value``."""
        return value

    def check_same(self, value, what):
        """Raise on every rank unless all ranks have the same ``value``."""

    def sum(self, values):
        """The element-wise sum of ``values`` (a list of floats) over ranks."""
        return list(values)

    def objective(self, model):
        """The callable the trainer computes per-sample losses with."""
        return model.sample_losses

    def sync_buffers(self, model):
        """Give every rank rank 0's buffers (e.g. batch-norm statistics)."""


class _Objective(nn.Module):
    """``model.sample_losses`` as a ``forward``, which ``DistributedDataParallel`` needs."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, generator=None):
        return self.model.sample_losses(x, generator)


class ProcessGroup:
    """The default process group, as the fit sees it.

    Collectives of tensors run on the current CUDA device for NCCL (set it
    with ``torch.cuda.set_device(local_rank)``, as torchrun scripts do), on
    the CPU for gloo.
    """

    def __init__(self):
        distributed = torch.distributed
        self.rank = distributed.get_rank()
        self.world_size = distributed.get_world_size()
        self.is_main = self.rank == 0
        nccl = distributed.get_backend() == "nccl"
        self._tensor_device = torch.device("cuda") if nccl else torch.device("cpu")

    def agree(self, error):
        """Raise on every rank when any rank has an ``error``, so that none waits forever."""
        messages = [None] * self.world_size
        mine = None if error is None else f"{type(error).__name__}: {error}"
        torch.distributed.all_gather_object(messages, mine)
        if error is not None:
            raise error
        failed = [(rank, message) for rank, message in enumerate(messages) if message is not None]
        if failed:
            rank, message = failed[0]
            raise ValueError(f"rank {rank} of the process group could not fit: {message}")

    def broadcast(self, value):
        values = [value]
        torch.distributed.broadcast_object_list(values, src=0)
        return values[0]

    def check_same(self, value, what):
        values = [None] * self.world_size
        torch.distributed.all_gather_object(values, value)
        if any(other != values[0] for other in values):
            listing = ", ".join(f"rank {rank}: {other}" for rank, other in enumerate(values))
            raise ValueError(f"Every rank must fit the same data; {what} differs ({listing}).")

    def sum(self, values):
        tensor = torch.tensor(values, dtype=torch.float64, device=self._tensor_device)
        torch.distributed.all_reduce(tensor)
        return tensor.tolist()

    def sync_buffers(self, model):
        # DDP sends rank 0's buffers at each forward pass, but each rank's
        # last step updates its own batch-norm statistics afterwards.
        for buffer in model.buffers():
            torch.distributed.broadcast(buffer.data, src=0)

    def objective(self, model):
        """``model``'s losses through ``DistributedDataParallel`` (which also
        broadcasts rank 0's weights and buffers to every rank)."""
        device = next(model.parameters()).device
        device_ids = [device] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(_Objective(model), device_ids=device_ids)
