"""The training engine shared by every estimator: optimiser, epochs, stopping.

A network plugs in through one method, ``sample_losses(x, generator)``, that
returns the per-sample objective of a batch (and ``evaluation`` where a
pass also tallies a fit's summary), and data through a source with
``batches`` and ``sequential_batches`` (``skae._batches``); everything else
(devices, precision, divergence, early stopping, checkpoints) lives here once.
What changes from epoch to epoch (the learning rate, a KL warm-up, progress
reports) plugs in as :class:`Callback` hooks.
"""

import contextlib
import copy
import dataclasses
import math
import time
from typing import NamedTuple

import torch

from ._distributed import Alone
from ._networks import constant_paths_skipped
from ._summary import ReconstructionTally


class DivergenceError(FloatingPointError):
    """Raised when the training loss becomes NaN or infinite."""


# Each optimiser's class and its settings beyond the rate and the weight decay;
# ``fused`` is filled in per device.
_OPTIMIZERS = {
    "adam": (torch.optim.Adam, {"fused": None}),
    "adamw": (torch.optim.AdamW, {"fused": None}),
    "sgd": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
    "rmsprop": (torch.optim.RMSprop, {}),
}
OPTIMIZERS = tuple(_OPTIMIZERS)


def make_optimizer(name, parameters, learning_rate, weight_decay, device):
    """Build the optimiser called ``name`` (one of ``OPTIMIZERS``) for ``parameters``.

    Adam and AdamW use PyTorch's fused kernels where they exist (CPU and
    CUDA): one kernel for all parameters instead of several per tensor.
    """
    optimizer_class, options = _OPTIMIZERS[name]
    if "fused" in options:
        options = {**options, "fused": device.type in ("cpu", "cuda") or None}
    return optimizer_class(parameters, lr=learning_rate, weight_decay=weight_decay, **options)


class Callback:
    """A hook into :func:`run_epochs`; every method does nothing by default.

    ``unmonitored_epochs``: epochs at the start of the run whose loss must not
    decide when to stop (while the objective itself still changes).
    """

    unmonitored_epochs = 0

    def on_epoch_begin(self, epoch):
        """Called before epoch ``epoch`` (counted from 0 in this run)."""

    def on_epoch_end(self, epoch, loss, validation_losses, seconds):
        """Called after each complete epoch with its training loss, the validation
        losses so far, and the epoch's duration."""

    def on_fit_end(self, history, state):
        """Called once the fitting call's results are in ``state``; returns
        messages to warn the user with (a list of str)."""
        return []


@dataclasses.dataclass
class History:
    """What :func:`run_epochs` reports.

    Attributes
    ----------
    loss, validation_loss : list of float
        One value per epoch run (validation losses with a validation source).
    best_loss : float
        Of the weights kept, as monitored.
    converged : bool
        Stopped because the monitored loss stopped improving.
    start_loss : float or None
        The start's loss, when the start was a candidate.
    kept_start : bool
        Training never beat the start, which was restored.
    interrupted : KeyboardInterrupt or None
    summary : tuple of float or None
        With ``summarize``, when the end is kept: its
        ``ReconstructionTally.result`` on the rows it was judged on.
    """

    loss: list = dataclasses.field(default_factory=list)
    validation_loss: list = dataclasses.field(default_factory=list)
    best_loss: float = math.inf
    converged: bool = False
    start_loss: float | None = None
    kept_start: bool = False
    interrupted: KeyboardInterrupt | None = None
    summary: tuple | None = None


@contextlib.contextmanager
def precision_context(precision, device):
    """Run the enclosed code at the requested matmul precision.

    ``"bf16"`` autocasts to bfloat16; ``"tf32"`` lets CUDA matmuls use
    TensorFloat-32 and restores the previous setting on exit.
    """
    if precision == "bf16":
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield
    elif precision == "tf32" and device.type == "cuda":
        # torch >= 2.9 has fp32_precision and refuses the legacy flag once a
        # user has set the new one; older releases only have allow_tf32.
        matmul = torch.backends.cuda.matmul
        new_api = hasattr(matmul, "fp32_precision")
        name, value = ("fp32_precision", "tf32") if new_api else ("allow_tf32", True)
        previous = getattr(matmul, name)
        setattr(matmul, name, value)
        try:
            yield
        finally:
            setattr(matmul, name, previous)
    else:
        yield


class ConvergenceMonitor:
    """Count epochs without a relative improvement of at least ``tol``.

    Parameters
    ----------
    tol : float
        An epoch improves when its loss is below ``best * (1 - tol)``
        (``best + tol * |best|`` for negative losses): a relative tolerance,
        so that it means the same for data in any units.
    n_iter_no_change : int
        How many epochs without improvement stop training.
    """

    def __init__(self, tol, n_iter_no_change):
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.best = math.inf
        self.epochs_without_improvement = 0

    def update(self, loss):
        """Record an epoch's loss; return True when it is the best so far."""
        if math.isinf(self.best) or loss < self.best - self.tol * abs(self.best):
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1
        is_best = loss < self.best
        if is_best:
            self.best = loss
        return is_best

    @property
    def converged(self):
        return self.epochs_without_improvement >= self.n_iter_no_change


class Trainer:
    """Run epochs of minibatch training of ``network`` with ``optimizer``.

    Parameters
    ----------
    network : torch.nn.Module
        Has ``sample_losses(x, generator)``, the per-sample objective (and
        the models' ``evaluation`` for :meth:`evaluate` with a ``tally``).
    optimizer : torch.optim.Optimizer
    device : torch.device
    batch_size : int
    shuffle_generator : torch.Generator
        A CPU generator for the per-epoch permutations.
    noise_generator : torch.Generator
        A generator on ``device`` for the network's own randomness (noise,
        reparameterisation).
    precision : {"float32", "tf32", "bf16"}
    """

    def __init__(
        self,
        network,
        optimizer,
        device,
        *,
        batch_size,
        shuffle_generator,
        noise_generator,
        precision="float32",
        group=None,
    ):
        self.network = network
        self.optimizer = optimizer
        self.device = device
        self.batch_size = batch_size
        self.shuffle_generator = shuffle_generator
        self.noise_generator = noise_generator
        self.precision = precision
        self.group = group or Alone()
        self.objective = self.group.objective(network)

    def train_epoch(self, source):
        """One pass over ``source`` in a random order; return the mean loss."""
        self.network.train()
        total = torch.zeros((), device=self.device)
        n = 0
        with precision_context(self.precision, self.device):
            for batch, n_global in source.batches(
                self.batch_size, self.shuffle_generator, self.group
            ):
                total += self.step(batch, n_global) * batch.shape[0]
                n += batch.shape[0]
        self.group.sync_buffers(self.network)
        total, n = self.group.sum([total.item(), n])
        return self._checked(total / n)

    def step(self, batch, n_global=None):
        """One optimiser step on ``batch``; returns its mean loss (a float32 tensor).

        In a process group the loss is scaled so that the gradient that
        ``DistributedDataParallel`` averages over ranks is that of the mean
        over all ``n_global`` rows of the global batch.
        """
        losses = self.objective(batch, self.noise_generator)
        loss = losses.mean()
        if self.group.world_size > 1:
            loss = loss * (batch.shape[0] * self.group.world_size / n_global)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return losses.detach().float().mean()

    def evaluate(self, source, seed, tally=None):
        """Mean loss over ``source`` with the network in evaluation mode.

        ``seed`` reseeds the noise so that any randomness in the loss is the
        same at every epoch and validation losses are comparable. A
        ``tally`` (a :class:`~skae._summary.ReconstructionTally`) counts the
        same pass's reconstructions (the network's ``evaluation``).
        """
        self.network.eval()
        generator = torch.Generator(device=self.device).manual_seed(seed)
        total = torch.zeros((), device=self.device)
        n = 0
        with contextlib.ExitStack() as context:
            context.enter_context(torch.inference_mode())
            context.enter_context(precision_context(self.precision, self.device))
            if self.precision != "bf16":
                # A starting network is judged by its linear paths alone.
                context.enter_context(constant_paths_skipped(self.network))
            for batch in source.sequential_batches(self.batch_size, self.group):
                if tally is None:
                    losses = self.network.sample_losses(batch, generator)
                else:
                    losses, reconstruction = self.network.evaluation(batch, generator)
                    tally.add(self.network.split_targets(batch)[0], reconstruction)
                total += losses.float().sum()
                n += batch.shape[0]
        total, n = self.group.sum([total.item(), n])
        return self._checked(total / n)

    @staticmethod
    def _checked(loss):
        if not math.isfinite(loss):
            raise DivergenceError(
                f"The training loss became {loss}: training diverged. "
                "Try a lower learning_rate, or scale the data."
            )
        return loss


class Checkpoint:
    """Copies of a trainer's network weights and optimiser state, to go back to."""

    def __init__(self, trainer):
        self.weights = {k: v.detach().clone() for k, v in trainer.network.state_dict().items()}
        self.optimizer_state = copy.deepcopy(trainer.optimizer.state_dict())

    def restore(self, trainer):
        trainer.network.load_state_dict(self.weights)
        trainer.optimizer.load_state_dict(self.optimizer_state)


class _Progress(NamedTuple):
    """What the completed epochs left, replaced whole so that it is never half-updated."""

    losses: tuple = ()
    validation_losses: tuple = ()
    checkpoint: Checkpoint | None = None
    best: Checkpoint | None = None
    best_loss: float = math.inf
    seconds: float = 0.0


def run_epochs(
    trainer,
    train_source,
    n_epochs,
    *,
    monitor,
    validation_source=None,
    validation_seed=0,
    start_is_candidate=False,
    summarize=False,
    interruptible=False,
    callbacks=(),
):
    """Train for up to ``n_epochs`` epochs, calling each of ``callbacks`` around each epoch.

    Stops early when ``monitor`` has seen no improvement of the monitored loss
    (the validation loss when ``validation_source`` is given, else the
    training loss). With a validation source the weights of the best epoch
    are restored at the end. The first epochs that a callback declares
    unmonitored (while the objective itself still changes, e.g. during a KL
    warm-up) do not count
    towards stopping, and their training losses do not count as the best;
    validation losses always measure the full objective (the model's
    evaluation mode), so they compete for the best weights.

    ``start_is_candidate``: the network as it starts is the first candidate
    for the best weights. With a validation source its validation loss is
    the first the monitor sees; without one, the training loss (in
    evaluation mode, on ``train_source.comparison_sample()``: at most 2,048
    evenly spaced rows in memory, spread-out blocks of streamed data) at
    the end is compared with
    the start's, and the start is kept when training did not improve on it.
    ``summarize`` (only then): the end's pass also tallies the end-of-call
    summary (``history.summary``, see ``skae._summary``; None when the start
    is kept).

    ``interruptible``: a ``KeyboardInterrupt`` after at least one complete
    epoch (during training or while finishing) puts the network and
    optimiser back as that epoch left them, ends the run as if it had
    stopped there (best weights and start included), and is returned in the
    history instead of raised. Before the first complete epoch it propagates.

    Returns
    -------
    history : History
    """
    unmonitored = max([callback.unmonitored_epochs for callback in callbacks], default=0)
    loop = _EpochLoop(
        trainer, train_source, monitor, validation_source, validation_seed, unmonitored
    )
    loop.summarize = summarize and start_is_candidate and validation_source is None
    return loop.run(
        n_epochs,
        start_is_candidate=start_is_candidate,
        interruptible=interruptible,
        callbacks=callbacks,
    )


class _EpochLoop:
    """The state of one :func:`run_epochs` call."""

    def __init__(
        self, trainer, train_source, monitor, validation_source, validation_seed, unmonitored
    ):
        self.trainer = trainer
        self.train_source = train_source
        self.monitor = monitor
        self.validation_source = validation_source
        self.validation_seed = validation_seed
        self.unmonitored = unmonitored
        self.start = None
        self.summarize = False
        self.history = History()

    def run(self, n_epochs, *, start_is_candidate, interruptible, callbacks):
        validating = self.validation_source is not None
        self.progress = _Progress()
        if start_is_candidate:
            self.start = Checkpoint(self.trainer)
            self.history.start_loss = self._evaluate(self._start_judge())
            if validating:
                self.monitor.update(self.history.start_loss)
                self.progress = _Progress(best=self.start, best_loss=self.history.start_loss)
        finishing = self.start is not None or validating
        try:
            for epoch in range(n_epochs):
                for callback in callbacks:
                    callback.on_epoch_begin(epoch)
                # One assignment, so an interrupt sees the whole epoch or none of it.
                self.progress = progress = self._epoch(epoch, finishing or epoch < n_epochs - 1)
                for callback in callbacks:
                    callback.on_epoch_end(
                        epoch,
                        progress.losses[-1],
                        list(progress.validation_losses),
                        progress.seconds,
                    )
                if self.monitor.converged:
                    self.history.converged = True
                    break
            self._finish()
        except KeyboardInterrupt as interrupt:
            if not interruptible or not self.progress.losses:
                raise
            # Back to the end of the last complete epoch (finishing may have
            # been interrupted half-way), then finish as a normal stop there.
            if self.progress.checkpoint is not None:
                self.progress.checkpoint.restore(self.trainer)
            self.history.interrupted = interrupt
            self._finish()
        return self.history

    def _start_judge(self):
        """The data the start is compared on: validation data, else (a sample of) training data."""
        return self.validation_source or self.train_source.comparison_sample()

    def _evaluate(self, source, tally=None):
        return self.trainer.evaluate(source, self.validation_seed, tally)

    def _judge_end(self):
        """The end's loss on :meth:`_start_judge`'s rows, and the summary tallied on
        them (None unless ``summarize``)."""
        if not self.summarize:
            return self._evaluate(self._start_judge()), None
        tally = ReconstructionTally(self.trainer.network.output_layer.center.numel())
        loss = self._evaluate(self._start_judge(), tally)
        return loss, tally.result(self.trainer.group)

    def _epoch(self, epoch, keep_checkpoint):
        """Train one epoch; return the progress it leaves (``self.progress`` is not changed)."""
        progress = self.progress
        started = time.perf_counter()
        loss = self.trainer.train_epoch(self.train_source)
        validation_losses = progress.validation_losses
        monitored = loss
        best, best_loss = progress.best, progress.best_loss
        if self.validation_source is not None:
            # Validation always measures the full objective, so warm-up
            # epochs compete for the best weights; they only do not count
            # towards stopping.
            monitored = self._evaluate(self.validation_source)
            validation_losses += (monitored,)
            if monitored < best_loss:
                best, best_loss = Checkpoint(self.trainer), monitored
        if epoch >= self.unmonitored:
            self.monitor.update(monitored)
        return _Progress(
            progress.losses + (loss,),
            validation_losses,
            Checkpoint(self.trainer) if keep_checkpoint else None,
            best,
            best_loss,
            time.perf_counter() - started,
        )

    def _finish(self):
        """Restore the best weights, or the start when training never beat it."""
        progress, history = self.progress, self.history
        history.loss = list(progress.losses)
        history.validation_loss = list(progress.validation_losses)
        if self.validation_source is not None:
            progress.best.restore(self.trainer)
            history.kept_start = self.start is not None and progress.best is self.start
            history.best_loss = progress.best_loss
            return
        # Training losses of warm-up epochs measure another objective.
        history.best_loss = min(progress.losses[self.unmonitored :] or progress.losses)
        if self.start is None:
            return
        end_loss, history.summary = self._judge_end()
        history.kept_start = end_loss >= history.start_loss
        if history.kept_start:
            # Rare: the start's summary is then measured apart (a VAE's
            # would cost its judging pass a second decoding).
            self.start.restore(self.trainer)
            history.best_loss = history.start_loss
            history.summary = None
