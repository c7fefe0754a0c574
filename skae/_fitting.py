"""One fitting call (``fit``, ``partial_fit``, a warm start): a plan and data in, a new state out.

:func:`fit_call` works from the call's :class:`~skae._plan.FitPlan` and
never changes the estimator's fitted state: it builds a new
:class:`~skae._state.FitState`, or trains a copy of the current one, and
returns it for the estimator to put in place.
"""

import contextlib
import functools
import math
import signal
import threading
from typing import NamedTuple

import torch

from ._batches import MapSource
from ._callbacks import fit_callbacks
from ._device import resolve_device
from ._distributed import Alone, agreed
from ._initialization import check_network_fits, seeded_model, start_from_pca
from ._layout import map_targets
from ._models import build_model
from ._params import uses_early_stopping
from ._plan import FitPlan, NetworkSpec
from ._pretraining import pretrain_layerwise
from ._progress import EpochReport, PretrainingReport
from ._random import seeded_generator, seeds
from ._readers import ArrayReader
from ._state import FitState
from ._summary import ReconstructionTally
from ._threads import call_thread_limits
from ._training import ConvergenceMonitor, DivergenceError, Trainer, make_optimizer, run_epochs
from ._training_data import (
    check_blocks_per_rank,
    column_means,
    in_memory,
    n_validation_rows,
    resolved_output_activation,
    streamed,
    training_data,
)


class FitOutcome(NamedTuple):
    """What a fitting call hands back to the estimator."""

    state: FitState
    warnings: list
    interrupted: KeyboardInterrupt | None


class CallSeeds(NamedTuple):
    """The seeds of one fitting call, drawn from ``random_state`` (see :func:`call_seeds`)."""

    init: int
    shuffle: int
    noise: int
    split: int


def call_seeds(random_state):
    """A fitting call's four seeds, drawn from ``random_state`` in one go."""
    return CallSeeds(*seeds(random_state, 4))


class _Call(NamedTuple):
    """A fitting call's checked inputs."""

    plan: FitPlan
    X: object
    spec: NetworkSpec
    previous: FitState | None
    device: torch.device
    early_stopping: bool
    partial: bool


def fit_call(plan, X, previous, random_seeds, *, partial, group):
    """Train a model on ``X`` as ``plan`` says, for one fitting call; see the module docstring.

    Parameters
    ----------
    plan : FitPlan
        The estimator's validated settings.
    X : ndarray, sparse matrix or ArrayReader
        The training data as scikit-learn's ``validate_data`` left it.
    previous : FitState or None
        The state a continued fit (``partial_fit``, ``warm_start``) trains a
        copy of; None builds a new network.
    random_seeds : CallSeeds
    partial : bool
        A ``partial_fit``: one epoch, the start no candidate, no pretraining.
    group : ProcessGroup or Alone
        Inside a ``torch.distributed`` process group of several ranks, every
        rank calls this with the same data; the ranks agree on every check
        before training (a failure on one is an error on all, never a hang)
        and train data-parallel (see ``skae._distributed``).
    """
    call = agreed(group, _prepare, plan, X, previous, partial, group)
    group.check_same(call.X.shape, "X's shape")
    random_seeds = CallSeeds(*group.broadcast(list(random_seeds)))
    with call_thread_limits(call.device):
        # Placing the data and pretraining can fail on one rank only, too.
        train_source, validation, state, pca = agreed(group, _sources_and_state, call, random_seeds)
        return _train(call, state, train_source, validation, random_seeds, group, pca)


def _prepare(plan, X, previous, partial, group):
    """Every check of a fitting call that needs its data but no other rank."""
    X = training_data(X, plan.objective)
    output = resolved_output_activation(plan.network.output_activation, X, previous)
    spec = plan.network.for_data(X.shape[1], output)
    if previous is not None and spec.changes_from(previous.spec):
        raise ValueError(
            f"{', '.join(spec.changes_from(previous.spec))} changed since the network was "
            "built; continued training (warm_start or partial_fit) needs the same "
            "network. Fit with warm_start=False to build a new one."
        )
    if plan.objective.neighbors and group.world_size > 1:
        raise ValueError("neighbor_weight > 0 does not train in a process group yet.")
    early_stopping = uses_early_stopping(plan, X.shape[0], partial)
    fraction = plan.training.validation_fraction if early_stopping else None
    if isinstance(X, ArrayReader) and group.world_size > 1:
        check_blocks_per_rank(X, group.world_size, fraction)
    n_train = X.shape[0] - (n_validation_rows(fraction, X.shape[0]) if early_stopping else 0)
    if group.world_size > 1 and n_train < 2 * group.world_size:
        raise ValueError(
            f"{n_train} training samples cannot be shared by {group.world_size} ranks: "
            "each needs at least 2."
        )
    device = resolve_device(plan.training.device)
    return _Call(plan, X, spec, previous, device, early_stopping, partial)


def _sources_and_state(call, random_seeds):
    """The training and validation sources, the state this call trains, and the
    ``PCAMap`` its end is judged against (see :func:`_judged_against_pca`; None
    where it is not)."""
    plan = call.plan
    sources = streamed if isinstance(call.X, ArrayReader) else in_memory
    train_source, validation, start_data = sources(
        plan, call.X, call.device, random_seeds.split, call.early_stopping
    )
    batch_size = plan.training.batch_size
    if call.spec.batch_norm and min(len(train_source), batch_size) < 2:
        raise ValueError(
            "batch_norm=True needs batches of at least 2 samples; got "
            f"{len(train_source)} training samples with batch_size={batch_size}."
        )
    pca = None
    if call.previous is not None:
        state = call.previous.copy()
        state.place(call.device)
        state.count_rows(call.X.shape[0], column_means(call.X))
    else:
        scales, pca_rows = start_data(random_seeds.init)
        state, pca = _new_state(call, scales, pca_rows, train_source, random_seeds.init)
        pca = pca if _judged_against_pca(call) else None
        if call.early_stopping:
            state.validation_loss_curve = []
        if plan.objective.neighbors:
            # The neighbour term can trade away the reconstruction; compared at the end.
            state.start_error = _reconstruction_of(
                state.network, train_source, batch_size, Alone()
            )[0]
        state.count_rows(call.X.shape[0], scales[0])
    state.stream_block_rows = call.X.block_rows if isinstance(call.X, ArrayReader) else None
    # Parameters that do not shape the network may change between continued fits.
    state.network.set_objective(plan.objective)
    state.embedding = None
    if isinstance(train_source, MapSource):
        _lay_out_map(call, state, train_source, random_seeds.init)
        if validation is None:  # the map holds every row of the call
            state.embedding = train_source.targets.cpu().numpy()
    return train_source, validation, state, pca


def _judged_against_pca(call):
    """Whether a call's end is compared with its PCA's training error: a new network
    whose bounded output cannot start as that PCA, trained by ``fit`` on the
    reconstruction alone.

    A linear output starts as the PCA, and ``fit`` keeps that start when
    training does not improve on it; other terms (sparsity, the neighbour
    map) trade the reconstruction for something else by design.
    """
    objective = call.plan.objective
    return (
        call.previous is None
        and not call.partial
        and call.spec.output_activation != "linear"
        and objective.reconstruction == "mse"
        and objective.sparsity == 0
        and not objective.neighbors
    )


def _lay_out_map(call, state, source, seed):
    """Give ``source`` (a MapSource) its targets: UMAP's layout of its rows, started
    from the graph's spectral layout (a new network) or the network's codes."""
    codes = _codes_of(state.network, source.rows, call.plan.training.batch_size)
    fresh = call.previous is None
    source.set_targets(
        map_targets(source.graph, codes, call.plan.objective.kernel, seed, fresh=fresh)
    )


@torch.inference_mode()
def _codes_of(network, rows, batch_size):
    """The network's codes of ``rows`` (a RowSource), in order, as a float64 ndarray."""
    network.eval()
    codes = [network.encode(batch) for batch in rows.sequential_batches(batch_size, Alone())]
    return torch.cat(codes).double().cpu().numpy()


def _data_path(X):
    """What ``verbose`` says of where a call's rows come from."""
    shape = f"{X.shape[0]:,} x {X.shape[1]:,}"
    if isinstance(X, ArrayReader):
        return (
            f"Streaming {shape} from where the data lies, in blocks of {X.block_rows:,} "
            "rows (beyond the memory budget: skae.set_config)"
        )
    return f"Training from memory ({shape})"


def _new_state(call, scales, pca_rows, train_source, seed):
    """A new network on the call's device: seeded, pretrained if asked (not by
    partial_fit), started as a PCA; returns its state and the ``PCAMap`` it
    started from (None for a network without a linear path).

    ``scales`` are the data's centre and scales (see ``data_scale``);
    ``pca_rows`` the rows (or a random sample of them) the PCA start is fitted to.
    """
    build = functools.partial(build_model, call.spec, call.plan.objective, *scales)
    check_network_fits(build, call.device)
    model = seeded_model(build, seed).to(call.device)
    state = FitState(network=model, spec=call.spec, device=call.device)
    if not call.partial and call.plan.training.pretrain == "layerwise":
        rows = getattr(train_source, "rows", train_source)  # a MapSource's rows
        state.pretrain_loss_curves = _pretrain(call.plan, model, rows, call.device, seed)
    pca = start_from_pca(model, pca_rows, scales, call.spec.n_components, seed)
    return state, pca


def make_trainer(training, network, optimizer, device, shuffle_seed, noise_seed, **options):
    """A :class:`Trainer` for ``training`` settings, its generators seeded from the two
    seeds and ``offset`` (in ``options``, with ``group``)."""
    offset = options.pop("offset", 0)
    return Trainer(
        network,
        optimizer,
        device,
        batch_size=training.batch_size,
        shuffle_generator=seeded_generator(shuffle_seed, stream=offset),
        noise_generator=seeded_generator(noise_seed, device, stream=offset),
        precision=training.precision,
        **options,
    )


def _pretrain(plan, model, train_source, device, seed):
    """Greedy layer-wise pretraining; returns each layer pair's loss curve."""
    training = plan.training
    shuffle_seed, noise_seed = seeds(int(seed), 2)

    def train_pair(pair, source, label):
        optimizer = make_optimizer(
            training.optimizer,
            pair.trainable_parameters(),
            training.learning_rate,
            training.weight_decay,
            device,
        )
        trainer = make_trainer(training, pair, optimizer, device, shuffle_seed, noise_seed)
        history = run_epochs(
            trainer,
            source,
            training.pretrain_epochs,
            monitor=ConvergenceMonitor(training.tol, training.n_iter_no_change),
            callbacks=[PretrainingReport(label, bool(training.verbose))],
        )
        return history.loss

    return pretrain_layerwise(model, train_source, train_pair)


def _train(call, state, train_source, validation, random_seeds, group, pca):
    """Run the call's epochs on ``state`` and conclude them (see :func:`_conclude`);
    ``pca`` is the ``PCAMap`` its end is judged against, or None.

    Returns the :class:`FitOutcome`. A Ctrl-C while concluding is held until
    the bookkeeping is done and then reported like one during the epochs.
    """
    training = call.plan.training
    n_epochs = 1 if call.partial else training.max_epochs
    optimizer = state.optimizer(training.optimizer, training.learning_rate, training.weight_decay)
    trainer = make_trainer(
        training,
        state.network,
        optimizer,
        state.device,
        random_seeds.shuffle,
        # Each rank draws its own noise (dropout, denoising, the VAE's codes).
        random_seeds.noise + group.rank,
        offset=state.n_iter,
        group=group,
    )
    before = _Record(
        list(state.loss_curve), state.validation_loss_curve, state.n_iter, state.training_error
    )
    report = EpochReport(
        call.plan.name,
        state.n_iter,
        n_epochs,
        functools.partial(_in_reported_units, state.network),
        bool(training.verbose) and group.is_main,
        stopping=(training.tol, training.n_iter_no_change),
    )
    report.note(_data_path(call.X))
    pca_error = math.nan
    if pca is not None:
        pca_error = _pca_reconstruction_of(pca, train_source, training.batch_size, group)
    callbacks = fit_callbacks(
        call.plan,
        state,
        optimizer,
        n_epochs,
        report,
        call.partial,
        call.previous is not None,
        pca_error=pca_error,
    )
    try:
        history = run_epochs(
            trainer,
            train_source,
            n_epochs,
            monitor=ConvergenceMonitor(training.tol, training.n_iter_no_change),
            validation_source=validation,
            validation_seed=int(random_seeds.split),
            start_is_candidate=not call.partial,
            summarize=_summary_in_judging(training, train_source),
            # In a process group the ranks could be interrupted at different points
            # of a collective: there an interrupt rolls the call back on every rank.
            interruptible=group.world_size == 1,
            callbacks=callbacks,
        )
    finally:
        report.close()
    with interrupts_held() as held:
        _conclude(call, state, optimizer, history, before, train_source, group)
        messages = [message for hook in callbacks for message in hook.on_fit_end(history, state)]
    return FitOutcome(state, messages, history.interrupted or held.interrupt)


class _Held:
    interrupt = None


@contextlib.contextmanager
def interrupts_held():
    """Hold a Ctrl-C (SIGINT) that arrives inside the block instead of raising it there.

    Yields an object whose ``interrupt`` is then the ``KeyboardInterrupt``
    to report (None if none came). Only the main thread receives signals,
    and only Python's default SIGINT handler is replaced: elsewhere, or
    under a handler of the user's, the block runs as it is (an interrupt
    there rolls the whole call back).
    """
    held = _Held()
    replace = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if not replace:
        yield held
        return

    def hold(signum, frame):
        held.interrupt = KeyboardInterrupt()

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield held
    finally:
        signal.signal(signal.SIGINT, previous)


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


def _conclude(call, state, optimizer, history, before, train_source, group):
    """Put the call's results into ``state`` (computed from ``before``, the state's
    record before the call)."""
    state.network.eval()
    state.keep_optimizer(call.plan.training.optimizer, optimizer)
    report = functools.partial(_in_reported_units, state.network)
    state.loss_curve = before.loss_curve + [report(loss) for loss in history.loss]
    state.validation_loss_curve = before.validation_loss_curve
    if history.validation_loss:
        state.validation_loss_curve = list(before.validation_loss_curve or []) + [
            report(loss) for loss in history.validation_loss
        ]
    state.best_loss = report(history.best_loss)
    state.n_iter = before.n_iter + len(history.loss)
    state.training_error, state.training_variance = history.summary or _reconstruction_of(
        state.network, train_source, call.plan.training.batch_size, group
    )
    _check_not_wrecked(call.plan.name, before.training_error, state)


def _summary_in_judging(training, train_source):
    """Whether the end's judging pass can tally the call's summary: it runs on
    the summary's rows (not a map's, which are all of its rows with their
    targets) and in full precision, as the summary does."""
    return training.precision == "float32" and not isinstance(train_source, MapSource)


def _summary_batches(source, batch_size, group):
    """The rows a call's summary is measured on, in batches (see :func:`_reconstruction_of`)."""
    source = getattr(source, "rows", source)  # a MapSource's own rows
    yield from source.comparison_sample().sequential_batches(batch_size, group)


@torch.inference_mode()
def _reconstruction_of(network, source, batch_size, group):
    """Mean squared reconstruction error and mean feature variance of ``source``'s rows.

    One forward pass in evaluation mode over a sample of the training rows
    (``comparison_sample``: at most ``COMPARISON_ROWS`` evenly spaced rows
    held in memory, or spread-out blocks of streamed data), summed in
    float64 over every rank (see ``skae._summary``). A fit that judged its
    end on those rows and kept it has tallied it already
    (``History.summary``).
    """
    network.eval()
    tally = ReconstructionTally(network.output_layer.center.numel())
    for batch in _summary_batches(source, batch_size, group):
        tally.add(batch, network.decode(network.encode(batch)))
    return tally.result(group)


@torch.inference_mode()
def _pca_reconstruction_of(pca, source, batch_size, group):
    """The mean squared reconstruction error of ``pca`` (a ``PCAMap``) on the rows
    :func:`_reconstruction_of` measures a network on, in float64."""
    tally = ReconstructionTally(len(pca.center))
    for batch in _summary_batches(source, batch_size, group):
        tally.add(batch.cpu(), pca.reconstruct(batch))
    return tally.result(group)[0]


def _in_reported_units(network, loss):
    return loss * network.loss_unit + network.loss_offset
