"""How a fitting call reports its epochs when ``verbose`` is set.

On a terminal or in a notebook, with tqdm installed, one progress bar per
fitting call shows the epoch, the losses and the time left; anywhere else
(logs, captured output) each epoch prints one line. Either way the first
line says where the rows come from (memory, or streamed in blocks).
"""

import sys

from ._training import Callback


def _interactive():
    """Whether a progress bar can be drawn: tqdm installed, and a terminal or notebook."""
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return "ipykernel" in sys.modules or sys.stderr.isatty()


class EpochReport(Callback):
    """Report the epochs of one fitting call; call :meth:`close` when it ends.

    Parameters
    ----------
    name : str
        Shown in front of the bar.
    first_epoch : int
        Epochs run before this call (numbers continue across calls).
    n_epochs : int
        At most this many epochs in this call.
    in_units : callable
        Turns a loss of the objective into the reported units.
    enabled : bool
        False reports nothing (``verbose=0``, or not the main rank).
    stopping : tuple of (float, int), default=(0.0, 0)
        ``(tol, n_iter_no_change)``, to say why training stopped early.
    """

    def __init__(self, name, first_epoch, n_epochs, in_units, enabled, stopping=(0.0, 0)):
        self.stopping = stopping
        self.first_epoch = first_epoch
        self.in_units = in_units
        self.enabled = enabled
        self.bar = None
        if enabled and _interactive():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=n_epochs, desc=name, unit="epoch", leave=True)

    def note(self, message):
        """Say ``message`` once, where the epochs are reported (above the bar)."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        else:
            print(message, flush=True)

    def on_epoch_end(self, epoch, loss, validation_losses, seconds):
        if not self.enabled:
            return
        values = {"loss": f"{self.in_units(loss):.6g}"}
        if validation_losses:
            values["validation loss"] = f"{self.in_units(validation_losses[-1]):.6g}"
        if self.bar is not None:
            self.bar.set_postfix(values, refresh=False)
            self.bar.update(1)
            return
        line = f"Epoch {self.first_epoch + epoch + 1}: " + ", ".join(
            f"{key} {value}" for key, value in values.items()
        )
        print(f"{line}, {seconds:.2f} s", flush=True)

    def on_fit_end(self, history, state):
        """Say why training stopped before its last epoch, when it did."""
        if history.converged:
            tol, patience = self.stopping
            kind = "validation loss" if history.validation_loss else "training loss"
            self.note(
                f"Stopped after epoch {state.n_iter}: the {kind} improved by less than "
                f"tol={tol:g} (relative) for n_iter_no_change={patience} epochs."
            )
        return []

    def close(self):
        if self.bar is not None:
            self.bar.close()


class PretrainingReport(Callback):
    """Print each pretraining epoch of layer pair ``pair`` (e.g. ``"2/4"``) when ``enabled``."""

    def __init__(self, pair, enabled):
        self.pair = pair
        self.enabled = enabled

    def on_epoch_end(self, epoch, loss, validation_losses, seconds):
        if self.enabled:
            print(
                f"Pretraining layer pair {self.pair}, epoch {epoch + 1}: loss {loss:.6g}, "
                f"{seconds:.2f} s",
                flush=True,
            )
