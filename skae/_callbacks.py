"""The epoch-level behaviour of a fitting call, as hooks of the engine.

Each is a :class:`~skae._training.Callback` built from the fit plan: the
learning-rate schedule, the VAE's KL warm-up, and the end-of-fit warnings
(progress reports are ``skae._progress.EpochReport``). A fitting call
picks the ones its plan needs (:func:`fit_callbacks`).
"""

import math

from ._training import Callback

# A start whose training reconstruction leaves less than this share of the
# variance unexplained is exact for all purposes (n_components >= n_features
# gives R^2 = 1 - 4e-15): training cannot improve it, and no advice helps.
_EXACT_UNEXPLAINED = 1e-9

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


class ConvergenceWarnings(Callback):
    """Warn when a fit kept its start, or ran out of epochs while still improving."""

    def __init__(self, name, max_epochs, partial, continuing):
        self.name = name
        self.max_epochs = max_epochs
        self.partial = partial
        self.continuing = continuing

    def on_fit_end(self, history, state):
        if state.training_error <= _EXACT_UNEXPLAINED * state.training_variance:
            return []
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
        if not self.partial and not history.converged and history.interrupted is None:
            return [
                f"{self.name} stopped after max_epochs={self.max_epochs} "
                "epochs while the loss was still improving; more epochs may give "
                "a better model."
            ]
        return []


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


def fit_callbacks(plan, state, optimizer, n_epochs, report, partial, continuing):
    """The epoch hooks of a fitting call's ``plan``, in the order they run.

    ``report`` reports progress; ``state`` is the state the call trains
    (its ``n_iter`` epochs were run before the call).
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
    callbacks.append(ConvergenceWarnings(plan.name, training.max_epochs, partial, continuing))
    if not math.isnan(state.start_error):
        callbacks.append(NeighborTradeoffWarning(state.start_error))
    return callbacks
