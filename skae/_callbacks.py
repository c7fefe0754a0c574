"""The epoch-level behaviour of a fitting call, as hooks of the engine.

Each is a :class:`~skae._training.Callback` built from the fit plan: the
learning-rate schedule, the VAE's KL warm-up, and the end-of-fit warnings
(progress reports are ``skae._progress.EpochReport``). A fitting call
picks the ones its plan needs (:func:`fit_callbacks`).
"""

import math

import numpy as np

from ._training import Callback

# A start whose training reconstruction leaves less than this share of the
# variance unexplained is exact for all purposes (n_components >= n_features
# gives R^2 = 1 - 4e-15): training cannot improve it, and no advice helps.
_EXACT_UNEXPLAINED = 1e-9

# A fit that runs out of epochs warns only when it is far from converged:
# over its last FAR_WINDOW epochs its best monitored loss still fell by more
# than this share, per epoch, of all it fell since the first epoch. A share
# of the fit's own progress does not depend on the loss's units or offset
# (a VAE's negative ELBO). Without held-out data the training loss keeps
# falling long after more epochs stop helping, so its bar is higher.
# Measured on digits, wine, breast cancer and iris (AE and VAE, 3 seeds,
# 75/25 splits; benchmarks/bench_convergence.py): at the default 100
# epochs, 0.16-0.73% per epoch, and doubling the epochs changed the held-out
# error by -15% to +7%; 30-epoch digits fits, 1.56-1.83% per epoch, and
# doubling gained 9-16%.
FAR_WINDOW = 10
FAR_TRAINING_SHARE = 0.01
FAR_VALIDATION_SHARE = 0.005
# ... and only when that fall is real against the curve's own noise: the
# least-squares slope of the window's losses is at least this many of its
# standard errors below zero (the losses' scatter about their line). A flat,
# noisy curve (iris, 5 epochs: 0.02534, 0.02708, 0.02667, 0.02523, 0.02634)
# has a best that fell 25% of its whole (tiny) drop per epoch, at +0.05
# standard errors; in benchmarks/bench_convergence.py every fit above the
# share's bar falls at 18 to 58 standard errors.
FAR_STANDARD_ERRORS = 3.0

# A fit judged against its PCA (a bounded output, which cannot start as that
# PCA) warns when its training reconstruction error ends more than this
# share above the PCA's, measured on the same rows: the float32 network's
# rounding stays far below it.
PCA_TOLERANCE = 1e-3

# A neighbour fit whose reconstruction error ends above this multiple of the
# start's warns: the map has been bought with the reconstruction.
NEIGHBOR_ERROR_RATIO = 2.0


class LearningRateSchedule(Callback):
    """Set ``optimizer``'s rate before each epoch: constant, or a cosine from
    ``learning_rate`` down to 0 over ``n_epochs``."""

    def __init__(self, optimizer, learning_rate, schedule, n_epochs):
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.schedule = schedule
        self.n_epochs = n_epochs

    def on_epoch_begin(self, epoch):
        rate = self.learning_rate
        if self.schedule == "cosine":
            rate *= 0.5 * (1 + math.cos(math.pi * epoch / self.n_epochs))
        for group in self.optimizer.param_groups:
            group["lr"] = rate


class KLWarmup(Callback):
    """Raise a VAE's KL weight over its first ``objective.kl_warmup_epochs`` epochs,
    counted across fitting calls (``epochs_before`` were run before this one);
    see ``Objective.weights``."""

    def __init__(self, network, objective, epochs_before):
        self.network = network
        self.objective = objective
        self.epochs_before = epochs_before
        # The objective changes during the warm-up: its losses cannot decide when to stop.
        self.unmonitored_epochs = max(0, objective.kl_warmup_epochs - epochs_before)

    def on_epoch_begin(self, epoch):
        self.network.term_weights = self.objective.weights(self.epochs_before + epoch + 1)


def _finite(losses):
    return [loss for loss in losses if math.isfinite(loss)]


def recent_progress(losses, window=FAR_WINDOW):
    """How fast the best of ``losses`` still fell over their last ``window``
    epochs (all of them, when fewer): the mean drop per epoch, as a share of
    the whole drop since the first epoch."""
    losses = _finite(losses)
    if len(losses) < 2:
        return 0.0
    window = min(window, len(losses) - 1)
    best_before, best = min(losses[: len(losses) - window]), min(losses)
    total = losses[0] - best
    if total <= 0 or best_before <= best:
        return 0.0
    return (best_before - best) / total / window


def recent_trend(losses, window=FAR_WINDOW):
    """The least-squares slope of the last ``window + 1`` finite ``losses`` (all of
    them, when fewer), in standard errors of that slope: negative where they fall.

    The standard error comes from the losses' scatter about their line, so a
    fall counts against the curve's own epoch-to-epoch noise, in any units.
    ``-inf`` for losses that fall exactly along a line; NaN for fewer than
    three losses, or a flat line, where nothing can be told.
    """
    losses = np.array(_finite(losses)[-(window + 1) :])
    n = len(losses)
    if n < 3:
        return math.nan
    epochs = np.arange(n) - (n - 1) / 2  # centred: the mean loss drops out of the slope
    spread = float(epochs @ epochs)
    slope = float(epochs @ losses) / spread
    residuals = losses - losses.mean() - slope * epochs
    standard_error = math.sqrt(float(residuals @ residuals) / (n - 2) / spread)
    if standard_error == 0:
        return math.nan if slope == 0 else math.copysign(math.inf, slope)
    return slope / standard_error


def far_from_converged(losses, share):
    """Whether ``losses`` still fell by more than ``share`` per epoch of their whole
    drop over their last ``FAR_WINDOW`` epochs (:func:`recent_progress`), by more
    than their noise (:func:`recent_trend`)."""
    return recent_progress(losses) > share and recent_trend(losses) < -FAR_STANDARD_ERRORS


# What each bounded output suits, for the warning of a fit worse than its PCA.
_OUTPUT_RANGES = {"sigmoid": "[0, 1]", "tanh": "[-1, 1]"}


class ConvergenceWarnings(Callback):
    """Warn when a fit ended worse than its PCA, kept its start, or ran out of
    epochs far from converged.

    Worse than its PCA: ``pca_error`` (the training error of the PCA a
    bounded output started near, on the rows the fit's own error is
    measured on; NaN where a fit is not judged so) is beaten by less than
    ``PCA_TOLERANCE``. Far from converged: over the last ``FAR_WINDOW``
    epochs the best validation loss still fell by more than
    ``FAR_VALIDATION_SHARE`` per epoch of all it fell since the first epoch,
    or, without a validation split, the best training loss by more than
    ``FAR_TRAINING_SHARE``, and the fall is real against the curve's noise
    (:func:`far_from_converged`).
    """

    def __init__(
        self, name, max_epochs, partial, continuing, unmonitored_epochs=0, pca_error=math.nan
    ):
        self.name = name
        self.max_epochs = max_epochs
        self.partial = partial
        self.continuing = continuing
        self.first_monitored = unmonitored_epochs
        self.pca_error = pca_error

    def on_fit_end(self, history, state):
        if state.training_error <= _EXACT_UNEXPLAINED * state.training_variance:
            return []
        if state.training_error > self.pca_error * (1 + PCA_TOLERANCE):
            return [self._worse_than_pca(history, state)]
        if history.kept_start:
            started = (
                "the previously fitted model"
                if self.continuing
                else "the model it started from (a PCA of the training data, where the "
                "network has a linear path)"
            )
            return [
                f"{self.name} did not improve on {started} and kept it. Try a lower "
                "learning_rate, more epochs or another network."
            ]
        if self.partial or history.converged or history.interrupted is not None:
            return []
        return self._far_from_converged(history)

    def _worse_than_pca(self, history, state):
        activation = state.spec.output_activation
        ratio = f"{state.training_error / self.pca_error:.3g} times that of the PCA it started near"
        if history.kept_start:
            ended = (
                f"{self.name} did not improve on the model it started from and kept it; its "
                f"training reconstruction error is {ratio}"
            )
        else:
            ended = f"{self.name} ended with a training reconstruction error {ratio}"
        return (
            f"{ended}: its {activation} output cannot follow PCA's linear reconstruction of "
            f"this data (a {activation} suits data spread over most of "
            f"{_OUTPUT_RANGES[activation]}). Use output_activation='linear', which starts as "
            "that PCA and keeps it unless training improves on it, or more epochs."
        )

    def _far_from_converged(self, history):
        validated = bool(history.validation_loss)
        losses = history.validation_loss if validated else history.loss
        if self.first_monitored >= len(losses):
            return [
                f"{self.name} stopped after max_epochs={self.max_epochs} epochs, before "
                "the end of its KL warm-up: it never trained on its full objective. "
                "Give it more epochs than kl_warmup_epochs."
            ]
        # The objective changes during a warm-up; judge the epochs after it.
        monitored = losses[self.first_monitored :]
        if len(monitored) < 3:  # two losses cannot tell a fall from noise
            return [
                f"{self.name} stopped after max_epochs={self.max_epochs} epochs, too few "
                "to tell how far from converged it is; more epochs may give a better model."
            ]
        if not far_from_converged(
            monitored, FAR_VALIDATION_SHARE if validated else FAR_TRAINING_SHARE
        ):
            return []
        which = "validation" if validated else "training"
        return [
            f"{self.name} stopped after max_epochs={self.max_epochs} epochs while its "
            f"{which} loss was still falling fast (each of the last epochs took off "
            f"{recent_progress(monitored):.1%} of all it had fallen, well beyond the "
            "curve's noise); more epochs should give a better model."
        ]


class NeighborTradeoffWarning(Callback):
    """Warn when the neighbour term left the reconstruction far worse than the start's."""

    def __init__(self, start_error):
        self.start_error = start_error

    def on_fit_end(self, history, state):
        if state.training_error <= NEIGHBOR_ERROR_RATIO * self.start_error:
            return []
        return [
            f"The neighbour objective left a training reconstruction error "
            f"{state.training_error / self.start_error:.3g} times the PCA start's. "
            "Lower neighbor_weight, or scale the features (e.g. StandardScaler) so that "
            "the neighbour graph and the reconstruction weigh them alike."
        ]


def fit_callbacks(
    plan, state, optimizer, n_epochs, report, partial, continuing, pca_error=math.nan
):
    """The epoch hooks of a fitting call's ``plan``, in the order they run.

    ``report`` reports progress; ``state`` is the state the call trains
    (its ``n_iter`` epochs were run before the call); ``pca_error`` the
    training error of the PCA its end is judged against (NaN: none).
    """
    training = plan.training
    callbacks = [
        LearningRateSchedule(
            optimizer, training.learning_rate, training.learning_rate_schedule, n_epochs
        )
    ]
    if plan.objective.variational:
        callbacks.append(KLWarmup(state.network, plan.objective, state.n_iter))
    callbacks.append(report)
    unmonitored = max(callback.unmonitored_epochs for callback in callbacks)
    callbacks.append(
        ConvergenceWarnings(
            plan.name, training.max_epochs, partial, continuing, unmonitored, pca_error
        )
    )
    if not math.isnan(state.start_error):
        callbacks.append(NeighborTradeoffWarning(state.start_error))
    return callbacks
