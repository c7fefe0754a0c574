"""The fitted state of an estimator, as one object.

A fitting call builds a new :class:`FitState` or copies the estimator's,
trains it, and only then puts it in place: a call that fails leaves the
estimator's own state untouched.
"""

import copy
import dataclasses
import math

import numpy as np
import torch
from torch import nn

from ._plan import NetworkSpec
from ._training import make_optimizer


def tensors_to(tree, device):
    """``tree`` (nested dicts and lists) with every tensor moved to ``device``."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().to(device)
    if isinstance(tree, dict):
        return {key: tensors_to(value, device) for key, value in tree.items()}
    if isinstance(tree, list):
        return [tensors_to(value, device) for value in tree]
    return tree


@dataclasses.dataclass
class FitState:
    """Everything a fit produces.

    Attributes
    ----------
    network : nn.Module
        The model (see ``skae._models``), on ``device``.
    spec : NetworkSpec
        The parameters the network was built for.
    device : torch.device
    optimizer_name : str or None
        The optimiser whose state ``optimizer_state`` holds.
    optimizer_state : dict or None
        ``optimizer.state_dict()`` after the last call, for continued training.
    loss_curve, validation_loss_curve, best_loss, n_iter, pretrain_loss_curves
        What the estimator reports as ``loss_curve_`` and so on.
    n_samples_seen, mean
        Rows passed to the fitting calls since the network was built, and
        their per-feature mean (float64): ``n_samples_seen_`` and ``mean_``.
    training_error, training_variance
        Mean squared reconstruction error and mean feature variance of the
        last call's training rows (a spread sample of blocks for streamed
        data), in the data's units: what ``noise_variance_`` and
        ``reconstruction_r2_`` report.
    """

    network: nn.Module
    spec: NetworkSpec
    device: torch.device
    optimizer_name: str | None = None
    optimizer_state: dict | None = None
    loss_curve: list = dataclasses.field(default_factory=list)
    validation_loss_curve: list | None = None
    best_loss: float = math.inf
    n_iter: int = 0
    pretrain_loss_curves: list | None = None
    n_samples_seen: int = 0
    mean: np.ndarray | None = None
    training_error: float = math.nan
    training_variance: float = math.nan
    # Rows per block of the last call's data streamed from beyond the memory
    # budget; None when that call trained from memory.
    stream_block_rows: int | None = None
    # The neighbour objective's map of the last call's rows (n_samples x
    # n_components, float32), when every row was in it; else None.
    embedding: np.ndarray | None = None
    # The start's reconstruction error (neighbour fits only; not saved).
    start_error: float = math.nan

    def count_rows(self, n_samples, mean):
        """Count ``n_samples`` more rows, whose per-feature mean is ``mean``."""
        total = self.n_samples_seen + n_samples
        previous = self.mean if self.mean is not None else 0.0
        self.mean = previous + (np.asarray(mean, dtype=np.float64) - previous) * (n_samples / total)
        self.n_samples_seen = total

    def copy(self):
        """An independent copy (network and optimiser state included)."""
        return copy.deepcopy(self)

    def place(self, device):
        """Move the network and the optimiser's state to ``device``, in place."""
        if device != self.device:
            self.network.to(device)
            self.optimizer_state = tensors_to(self.optimizer_state, device)
            self.device = device

    def on_cpu(self):
        """A copy on the CPU (``self`` when it already is), e.g. for pickling."""
        if self.device.type == "cpu":
            return self
        state = dataclasses.replace(
            self,
            network=copy.deepcopy(self.network).cpu(),
            optimizer_state=tensors_to(self.optimizer_state, torch.device("cpu")),
            device=torch.device("cpu"),
        )
        return state

    def optimizer(self, name, learning_rate, weight_decay):
        """An optimiser for the network that continues from the saved state.

        The saved state is used only when it belongs to an optimiser of the
        same ``name``; ``learning_rate`` and ``weight_decay`` always apply.
        """
        optimizer = make_optimizer(
            name, self.network.parameters(), learning_rate, weight_decay, self.device
        )
        if self.optimizer_state is not None and self.optimizer_name == name:
            optimizer.load_state_dict(self.optimizer_state)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate
            group["weight_decay"] = weight_decay
        return optimizer

    def keep_optimizer(self, name, optimizer):
        """Remember ``optimizer``'s state for the next continued fit."""
        self.optimizer_name = name
        self.optimizer_state = optimizer.state_dict()
