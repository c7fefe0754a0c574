"""One fitting call (``fit``, ``partial_fit``, a warm start): data in, a new state out.

:func:`fit_call` never changes the estimator's fitted state: it builds a new
:class:`~skae._state.FitState`, or trains a copy of the current one, and
returns it for the estimator to put in place.
"""

import functools
import math
from typing import NamedTuple

import torch

from ._data import RowSource
from ._device import resolve_device
from ._distributed import Alone, current_group
from ._initialization import check_network_fits, seeded_model, start_from_pca
from ._inputs import (
    check_blocks_per_rank,
    column_means,
    in_memory,
    resolved_output_activation,
    streamed,
    training_data,
)
from ._params import NetworkSpec, check_params, uses_early_stopping
from ._pretraining import pretrain_layerwise
from ._progress import EpochReport
from ._random import seeded_generator, seeds
from ._sources import ArrayReader
from ._state import FitState
from ._training import ConvergenceMonitor, DivergenceError, Trainer, make_optimizer, run_epochs


class FitOutcome(NamedTuple):
    """What a fitting call hands back to the estimator."""

    state: FitState
    warnings: list
    interrupted: KeyboardInterrupt | None


def fit_call(estimator, X, *, partial):
    """Train ``estimator``'s model on ``X`` for one fitting call; see the module docstring.

    Inside a ``torch.distributed`` process group of several ranks, every rank
    calls this with the same data; the ranks agree on every check before
    training (a failure on one is an error on all, never a hang) and train
    data-parallel (see ``skae._distributed``).
    """
    group = current_group()
    call = _agreed(group, _prepare, estimator, X, partial, group)
    group.check_same(call.X.shape, "X's shape")
    init_seed, shuffle_seed, noise_seed, split_seed = group.broadcast(call.seeds)
    # Placing the data and pretraining can fail on one rank only, too.
    train_source, validation, state = _agreed(
        group, _sources_and_state, estimator, call, partial, init_seed, split_seed
    )
    return _train(
        estimator,
        state,
        train_source,
        validation,
        partial,
        call.previous is not None,
        (shuffle_seed, noise_seed, split_seed),
        group,
        _data_path(call.X),
    )


def _agreed(group, function, *args):
    """``function(*args)``, raising on every rank of ``group`` if it raises on any."""
    try:
        result = function(*args)
    except Exception as error:
        group.agree(error)
        raise
    group.agree(None)
    return result


def _sources_and_state(estimator, call, partial, init_seed, split_seed):
    """The training and validation sources, and the state this call trains."""
    sources = streamed if isinstance(call.X, ArrayReader) else in_memory
    train_source, validation, start_data = sources(
        estimator, call.X, call.device, split_seed, call.early_stopping
    )
    if estimator.batch_norm and min(len(train_source), estimator.batch_size) < 2:
        raise ValueError(
            "batch_norm=True needs batches of at least 2 samples; got "
            f"{len(train_source)} training samples with batch_size={estimator.batch_size}."
        )
    if call.previous is not None:
        state = call.previous.copy()
        state.place(call.device)
        state.count_rows(call.X.shape[0], column_means(call.X))
    else:
        scales, pca_rows = start_data(init_seed)
        state = _new_state(
            estimator, call.spec, scales, pca_rows, train_source, init_seed, call.device, partial
        )
        if call.early_stopping:
            state.validation_loss_curve = []
        if estimator.neighbor_weight:
            # The neighbour term can trade away the reconstruction; compared at the end.
            state.start_error = _reconstruction_of(
                state.network, train_source, estimator.batch_size, Alone()
            )[0]
        state.count_rows(call.X.shape[0], scales[0])
    state.stream_block_rows = call.X.block_rows if isinstance(call.X, ArrayReader) else None
    estimator._configure_model(state.network)
    return train_source, validation, state


def _data_path(X):
    """What ``verbose`` says of where a call's rows come from."""
    shape = f"{X.shape[0]:,} x {X.shape[1]:,}"
    if isinstance(X, ArrayReader):
        return (
            f"Streaming {shape} from where the data lies, in blocks of {X.block_rows:,} "
            "rows (beyond the memory budget: skae.set_config)"
        )
    return f"Training from memory ({shape})"


class _Call(NamedTuple):
    """A fitting call's checked inputs."""

    X: object
    spec: NetworkSpec
    previous: FitState | None
    device: object
    seeds: list
    early_stopping: bool


def _prepare(estimator, X, partial, group):
    """Every check of a fitting call that needs no other rank; see :func:`fit_call`."""
    check_params(estimator)
    if partial and estimator.early_stopping != "auto" and estimator.early_stopping:
        raise ValueError(
            "partial_fit does not support early_stopping=True: it makes one "
            "pass over the data it is given and holds none back."
        )
    previous = getattr(estimator, "_state", None)
    continuing = previous is not None and (partial or estimator.warm_start)
    X = training_data(estimator, X, reset=not continuing)
    output = resolved_output_activation(estimator, X, previous if continuing else None)
    spec = NetworkSpec.from_estimator(estimator, X.shape[1], output)
    if continuing and spec.changes_from(previous.spec):
        raise ValueError(
            f"{', '.join(spec.changes_from(previous.spec))} changed since the network was "
            "built; continued training (warm_start or partial_fit) needs the same "
            "network. Fit with warm_start=False to build a new one."
        )
    if estimator.neighbor_weight and group.world_size > 1:
        raise ValueError("neighbor_weight > 0 does not train in a process group yet.")
    early_stopping = uses_early_stopping(estimator, X.shape[0], partial)
    if isinstance(X, ArrayReader) and group.world_size > 1:
        check_blocks_per_rank(estimator, X, group.world_size, early_stopping)
    n_train = X.shape[0]
    if early_stopping:
        n_train -= int(round(estimator.validation_fraction * X.shape[0]))
    if group.world_size > 1 and n_train < 2 * group.world_size:
        raise ValueError(
            f"{n_train} training samples cannot be shared by {group.world_size} ranks: "
            "each needs at least 2."
        )
    return _Call(
        X,
        spec,
        previous if continuing else None,
        resolve_device(estimator.device),
        seeds(estimator.random_state, 4),
        early_stopping,
    )


def _new_state(estimator, spec, scales, pca_rows, train_source, seed, device, partial):
    """A new network on ``device``: seeded, pretrained if asked (not by partial_fit), PCA start.

    ``scales`` are the data's centre and scales (see ``data_scale``);
    ``pca_rows`` the rows (or a random sample of them) the PCA start is fitted to.
    """
    build = functools.partial(estimator._build_model, spec, *scales)
    check_network_fits(build, device)
    model = seeded_model(build, seed)
    state = FitState(
        network=model.to(device),
        spec=spec,
        device=device,
    )
    estimator._configure_model(model)
    if not partial and estimator.pretrain == "layerwise":
        state.pretrain_loss_curves = _pretrain(estimator, model, train_source, device, seed)
    start_from_pca(model, pca_rows, scales, spec.n_components, seed)
    return state


def make_trainer(
    estimator, network, optimizer, device, shuffle_seed, noise_seed, offset=0, group=None
):
    """A :class:`Trainer` with generators seeded from the two seeds and ``offset``."""
    return Trainer(
        network,
        optimizer,
        device,
        batch_size=estimator.batch_size,
        shuffle_generator=seeded_generator(shuffle_seed, stream=offset),
        noise_generator=seeded_generator(noise_seed, device, stream=offset),
        precision=estimator.precision,
        group=group,
    )


def _pretrain(estimator, model, train_source, device, seed):
    """Greedy layer-wise pretraining; returns each layer pair's loss curve."""
    shuffle_seed, noise_seed = seeds(int(seed), 2)

    def train_pair(pair, source, label):
        optimizer = make_optimizer(
            estimator.optimizer,
            pair.trainable_parameters(),
            estimator.learning_rate,
            estimator.weight_decay,
            device,
        )
        trainer = make_trainer(estimator, pair, optimizer, device, shuffle_seed, noise_seed)
        history = run_epochs(
            trainer,
            source,
            estimator.pretrain_epochs,
            monitor=ConvergenceMonitor(estimator.tol, estimator.n_iter_no_change),
            on_epoch=functools.partial(_report_pretraining, estimator, label),
        )
        return history["loss"]

    return pretrain_layerwise(model, train_source, train_pair)


def _report_pretraining(estimator, pair, epoch, loss, validation_losses, seconds):
    if estimator.verbose:
        print(
            f"Pretraining layer pair {pair}, epoch {epoch + 1}: loss {loss:.6g}, {seconds:.2f} s",
            flush=True,
        )


def _train(
    estimator, state, train_source, validation, partial, continuing, train_seeds, group, data_path
):
    """Run the call's epochs on ``state`` and conclude them (see :func:`_conclude`).

    ``data_path`` is what ``verbose`` says first: where the rows come from.
    """
    shuffle_seed, noise_seed, split_seed = train_seeds
    n_epochs = 1 if partial else estimator.max_epochs
    optimizer = state.optimizer(
        estimator.optimizer, estimator.learning_rate, estimator.weight_decay
    )
    trainer = make_trainer(
        estimator,
        state.network,
        optimizer,
        state.device,
        shuffle_seed,
        # Each rank draws its own noise (dropout, denoising, the VAE's codes).
        noise_seed + group.rank,
        state.n_iter,
        group,
    )
    before = _Record(
        list(state.loss_curve), state.validation_loss_curve, state.n_iter, state.training_error
    )
    report = EpochReport(
        type(estimator).__name__,
        state.n_iter,
        n_epochs,
        functools.partial(_in_reported_units, state.network),
        bool(estimator.verbose) and group.is_main,
    )
    report.note(data_path)
    try:
        history = run_epochs(
            trainer,
            train_source,
            n_epochs,
            monitor=ConvergenceMonitor(estimator.tol, estimator.n_iter_no_change),
            validation_source=validation,
            validation_seed=int(split_seed),
            unmonitored_epochs=estimator._unmonitored_epochs(state),
            start_is_candidate=not partial,
            # In a process group the ranks could be interrupted at different points
            # of a collective: there an interrupt rolls the call back on every rank.
            interruptible=group.world_size == 1,
            on_epoch=report,
            before_epoch=functools.partial(_before_epoch, estimator, state, optimizer, n_epochs),
        )
    finally:
        report.close()
    conclude = functools.partial(
        _conclude,
        estimator,
        state,
        optimizer,
        history,
        before,
        partial,
        continuing,
        train_source,
        group,
    )
    try:
        messages = conclude()
    except KeyboardInterrupt as interrupt:
        # The epochs are done: finish their bookkeeping (it can be redone),
        # then report the interrupt.
        messages = conclude()
        history["interrupted"] = history["interrupted"] or interrupt
    return FitOutcome(state, messages, history["interrupted"])


class _Record(NamedTuple):
    """What a state reported before this call's epochs."""

    loss_curve: list
    validation_loss_curve: list | None
    n_iter: int
    training_error: float


# A call that leaves the training reconstruction error above this multiple of
# the data's variance (R^2 below -999; the mean alone gives 1x, the PCA start
# at most 1x) has diverged even where every loss stayed finite, as a
# partial_fit at learning_rate=1e3 does (error 0.7 -> 4e25).
_WRECKED_ERROR_RATIO = 1e3


def _check_not_wrecked(name, error_before, state):
    """Raise DivergenceError when this call took a fitted model's reconstruction far
    beyond the data (a new model has no error before the call: its fit keeps the
    better of its start and its epochs, except in partial_fit)."""
    limit = _WRECKED_ERROR_RATIO * state.training_variance
    wrecked = state.training_error > limit and error_before <= limit
    if wrecked or not math.isfinite(state.training_error):
        raise DivergenceError(
            f"{name}'s reconstruction error on the training data went from "
            f"{error_before:.3g} to {state.training_error:.3g} (the data's variance is "
            f"{state.training_variance:.3g}): training diverged. Try a lower "
            "learning_rate; the model is kept as it was."
        )


def _conclude(
    estimator, state, optimizer, history, before, partial, continuing, train_source, group
):
    """Put the call's results into ``state``; return the warnings they call for.

    Computed from ``before`` each time, so that running it twice is harmless.
    """
    state.network.eval()
    state.keep_optimizer(estimator.optimizer, optimizer)
    report = functools.partial(_in_reported_units, state.network)
    state.loss_curve = before.loss_curve + [report(loss) for loss in history["loss"]]
    state.validation_loss_curve = before.validation_loss_curve
    if history["validation_loss"]:
        state.validation_loss_curve = list(before.validation_loss_curve or []) + [
            report(loss) for loss in history["validation_loss"]
        ]
    state.best_loss = report(history["best_loss"])
    state.n_iter = before.n_iter + len(history["loss"])
    state.training_error, state.training_variance = _reconstruction_of(
        state.network, train_source, estimator.batch_size, group
    )
    _check_not_wrecked(type(estimator).__name__, before.training_error, state)
    messages = _warnings(estimator, history, partial, continuing, state)
    if state.training_error > _NEIGHBOR_ERROR_RATIO * state.start_error:
        messages.append(
            f"The neighbour objective left a training reconstruction error "
            f"{state.training_error / state.start_error:.3g} times the PCA start's. "
            "Lower neighbor_weight, or scale the features (e.g. StandardScaler) so that "
            "the neighbour graph and the reconstruction weigh them alike."
        )
    return messages


# The end-of-call summary (noise_variance_, reconstruction_r2_) reads at most
# this many evenly spaced rows held in memory: a bounded cost per partial_fit.
_SUMMARY_ROWS = 2048


def _summary_batches(source, batch_size, group):
    """The rows a call's summary is measured on, in batches (see :func:`_reconstruction_of`)."""
    source = source.comparison_sample()
    source = getattr(source, "rows", source)  # a GraphSource's own rows
    if isinstance(source, RowSource) and len(source) > _SUMMARY_ROWS:
        if group.rank == 0:  # every rank holds every row; one counts them
            yield source.take(torch.linspace(0, len(source) - 1, _SUMMARY_ROWS).round().long())
        return
    yield from source.sequential_batches(batch_size, group)


@torch.inference_mode()
def _reconstruction_of(network, source, batch_size, group):
    """Mean squared reconstruction error and mean feature variance of ``source``'s rows.

    One forward pass in evaluation mode over at most ``_SUMMARY_ROWS``
    evenly spaced rows held in memory, or the spread-out blocks of streamed
    data the start and end of a fit are compared on, summed in float64 over
    every rank.
    """
    network.eval()
    n_features = network.output_layer.center.numel()
    squared_error, n = 0.0, 0
    sums = torch.zeros(n_features, dtype=torch.float64)
    squares = torch.zeros(n_features, dtype=torch.float64)
    for batch in _summary_batches(source, batch_size, group):
        reconstruction = network.decode(network.encode(batch))
        squared_error += float((reconstruction.double() - batch.double()).square().sum())
        n += batch.shape[0]
        sums += batch.double().sum(dim=0).cpu()
        squares += batch.double().square().sum(dim=0).cpu()
    totals = group.sum([squared_error, n, *sums.tolist(), *squares.tolist()])
    squared_error, n = totals[0], totals[1]
    sums = torch.tensor(totals[2 : 2 + n_features], dtype=torch.float64)
    squares = torch.tensor(totals[2 + n_features :], dtype=torch.float64)
    variance = float((squares / n - (sums / n).square()).clamp(min=0).mean())
    return squared_error / (n * n_features), variance


def _before_epoch(estimator, state, optimizer, n_epochs, epoch):
    rate = estimator.learning_rate
    if estimator.learning_rate_schedule == "cosine":
        rate *= 0.5 * (1 + math.cos(math.pi * epoch / n_epochs))
    for group in optimizer.param_groups:
        group["lr"] = rate
    estimator._epoch_hook(state, epoch)


def _in_reported_units(network, loss):
    return loss * network.loss_unit + network.loss_offset


# A neighbour fit whose reconstruction error ends above this multiple of the
# start's warns: the map has been bought with the reconstruction.
_NEIGHBOR_ERROR_RATIO = 2.0


# A start whose training reconstruction leaves less than this share of the
# variance unexplained is exact for all purposes (n_components >= n_features
# gives R^2 = 1 - 4e-15): training cannot improve it, and no advice helps.
_EXACT_UNEXPLAINED = 1e-9


def _warnings(estimator, history, partial, continuing, state):
    name = type(estimator).__name__
    if state.training_error <= _EXACT_UNEXPLAINED * state.training_variance:
        return []
    if history["kept_start"]:
        started = (
            "the previously fitted model"
            if continuing
            else "the model it started from (a PCA of the training data, where the "
            "network has a linear path)"
        )
        return [
            f"{name} did not improve on {started} and kept it. Try a lower "
            "learning_rate, more epochs or another network."
        ]
    if not partial and not history["converged"] and history["interrupted"] is None:
        return [
            f"{name} stopped after max_epochs={estimator.max_epochs} "
            "epochs while the loss was still improving; more epochs may give "
            "a better model."
        ]
    return []
