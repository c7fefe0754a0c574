"""Every fitting call is a transaction: it completes, or leaves the estimator as it was.

Failures are injected through ``Trainer.step`` (one optimiser step per
batch), never by timing; the one real signal is sent to a subprocess.
"""

import contextlib
import copy
import math
import os
import signal
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import skae._fitting
import skae._training
from skae import AutoencoderTransformer, DivergenceError, VAETransformer, config_context
from skae._batches import batch_bounds
from skae._distributed import Alone
from skae._networks import LinearShortcut
from skae._summary import ReconstructionTally
from skae._training import Trainer
from skae.metrics import reconstruction_error

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FAST = dict(hidden_layer_sizes=(16,), batch_size=32, random_state=0, device="cpu", tol=0.0)


# ---------------------------------------------------------------- helpers


def tensors_equal(a, b):
    """Bit-for-bit equality of nested dicts and lists of tensors and plain values."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(tensors_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(tensors_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


def captured(estimator, X):
    """All of an estimator's fitted state, or None when it is not fitted."""
    if not hasattr(estimator, "_state"):
        return None
    state = estimator._state
    return {
        "transform": torch.from_numpy(estimator.transform(X)),
        "weights": {k: v.clone() for k, v in state.network.state_dict().items()},
        "optimizer": copy.deepcopy(state.optimizer_state),
        "optimizer_name": state.optimizer_name,
        "attributes": {
            name: copy.deepcopy(getattr(estimator, name))
            for name in (
                "loss_curve_",
                "validation_loss_curve_",
                "best_loss_",
                "n_iter_",
                "pretrain_loss_curves_",
                "n_features_in_",
            )
        },
        "network_settings": {
            k: v for k, v in vars(state.network).items() if isinstance(v, (int, float, str))
        },
    }


def assert_same_state(estimator, expected, X):
    actual = captured(estimator, X)
    if expected is None:
        assert actual is None, "the estimator was unfitted and must stay so"
        with pytest.raises(NotFittedError):
            estimator.transform(X)
        return
    for key in expected:
        assert tensors_equal(actual[key], expected[key]), key


def inject(monkeypatch, at, failure):
    """Make the ``at``-th optimiser step from now fail with ``failure``."""
    original = Trainer.step
    calls = [0]

    def step(self, batch, *args):
        calls[0] += 1
        if calls[0] != at:
            return original(self, batch, *args)
        if failure == "divergence":
            with torch.no_grad():
                for parameter in self.network.parameters():
                    parameter.fill_(math.nan)
            return torch.tensor(math.nan)
        raise failure()

    monkeypatch.setattr(Trainer, "step", step)


def steps_per_epoch(estimator, n_samples):
    n_train = n_samples
    if estimator.early_stopping:
        n_train -= int(round(estimator.validation_fraction * n_samples))
    return len(list(batch_bounds(n_train, estimator.batch_size)))


CLASSES = [AutoencoderTransformer, VAETransformer]
# (name, params for the call, whether the estimator is fitted before it, method)
CALLS = [
    ("new fit", {}, False, "fit"),
    ("refit", {}, True, "fit"),
    ("warm start", {"warm_start": True}, True, "fit"),
    ("partial_fit", {}, True, "partial_fit"),
    ("first partial_fit", {}, False, "partial_fit"),
]


def prepared(cls, call, early_stopping, X):
    name, params, fitted_before, method = call
    estimator = cls(**FAST, max_epochs=4, early_stopping=early_stopping, **params)
    if fitted_before:
        estimator.fit(X)
    return estimator, getattr(estimator, method)


def call_cases():
    for cls in CLASSES:
        for call in CALLS:
            for early_stopping in (False, True):
                if early_stopping and call[3] == "partial_fit":
                    continue
                yield pytest.param(
                    cls, call, early_stopping, id=f"{cls.__name__}-{call[0]}-es{early_stopping:d}"
                )


# ------------------------------------------------- failures leave no trace


@pytest.mark.parametrize("cls, call, early_stopping", list(call_cases()))
@pytest.mark.parametrize(
    "failure", ["nan data", "set_params", "divergence", MemoryError, RuntimeError]
)
def test_a_failed_call_leaves_the_estimator_as_it_was(
    monkeypatch, digits_X, cls, call, early_stopping, failure
):
    estimator, method = prepared(cls, call, early_stopping, digits_X)
    before = captured(estimator, digits_X)
    X, expected_error = digits_X, ValueError
    if failure == "nan data":
        X = digits_X.copy()
        X[5, 3] = np.nan
    elif failure == "set_params":
        estimator.set_params(learning_rate=-1.0)
    else:
        # The second batch of the second epoch (of the only one for partial_fit):
        # after weights, and for fit curves, have moved.
        epochs_before = 1 if call[3] == "fit" else 0
        inject(monkeypatch, steps_per_epoch(estimator, len(X)) * epochs_before + 2, failure)
        expected_error = DivergenceError if failure == "divergence" else failure

    with pytest.raises(expected_error):
        method(X)

    estimator.set_params(learning_rate=1e-3)
    assert_same_state(estimator, before, digits_X)


@pytest.mark.parametrize("cls, call, early_stopping", list(call_cases()))
def test_an_interrupt_in_the_first_epoch_leaves_the_estimator_as_it_was(
    monkeypatch, digits_X, cls, call, early_stopping
):
    estimator, method = prepared(cls, call, early_stopping, digits_X)
    before = captured(estimator, digits_X)
    inject(monkeypatch, 3, KeyboardInterrupt)

    with pytest.raises(KeyboardInterrupt):
        method(digits_X)

    assert_same_state(estimator, before, digits_X)


@pytest.mark.parametrize(
    "cls, call, early_stopping",
    [case for case in call_cases() if case.values[1][3] == "fit"],
)
@pytest.mark.parametrize("completed_epochs", [1, 3])
def test_an_interrupt_keeps_the_last_complete_epoch(
    monkeypatch, digits_X, cls, call, early_stopping, completed_epochs
):
    estimator, method = prepared(cls, call, early_stopping, digits_X)
    reference = copy.deepcopy(estimator).set_params(max_epochs=completed_epochs)
    reference.fit(digits_X)
    expected = captured(reference, digits_X)
    inject(
        monkeypatch,
        steps_per_epoch(estimator, len(digits_X)) * completed_epochs + 2,
        KeyboardInterrupt,
    )

    with pytest.raises(KeyboardInterrupt):
        method(digits_X)

    assert_same_state(estimator, expected, digits_X)
    assert len(estimator.loss_curve_) == estimator.n_iter_


def test_an_interrupt_during_pretraining_leaves_the_estimator_as_it_was(monkeypatch, digits_X):
    estimator = AutoencoderTransformer(
        **{**FAST, "hidden_layer_sizes": (32, 16)}, pretrain="layerwise", pretrain_epochs=2
    ).fit(digits_X)
    before = captured(estimator, digits_X)
    inject(monkeypatch, 12, KeyboardInterrupt)  # the second layer pair's first epoch

    with pytest.raises(KeyboardInterrupt):
        estimator.fit(digits_X)

    assert_same_state(estimator, before, digits_X)


@pytest.fixture
def ctrl_c():
    """Python's own Ctrl-C handler for the test's duration.

    A process started in the background of a shell without job control
    (``nohup make test &`` in a script) ignores SIGINT, and so does every
    process it starts: Python then installs no handler and never raises
    KeyboardInterrupt.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_real_sigint_keeps_a_consistent_usable_model(tmp_path):
    script = tmp_path / "fit.py"
    script.write_text(
        textwrap.dedent(
            """
            import signal
            import sys
            import numpy as np
            import torch
            from skae import AutoencoderTransformer

            # As in a terminal, even when this test runs where SIGINT is ignored.
            signal.signal(signal.SIGINT, signal.default_int_handler)

            torch.set_num_threads(1)
            X = np.random.RandomState(0).rand(2000, 50)
            model = AutoencoderTransformer(
                hidden_layer_sizes=(64,), max_epochs=100000, batch_size=16, verbose=1,
                device="cpu", random_state=0,
            )
            try:
                model.fit(X)
            except KeyboardInterrupt:
                codes = model.transform(X)
                print("kept", model.n_iter_, len(model.loss_curve_), np.isfinite(codes).all(),
                      flush=True)
                sys.exit(0)
            sys.exit(1)
            """
        )
    )
    process = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    try:
        for line in process.stdout:
            if line.startswith("Epoch 3:"):
                process.send_signal(signal.SIGINT)
                break
        output = process.stdout.read()
        assert process.wait(timeout=60) == 0, output
    finally:
        process.kill()
    kept, n_iter, n_losses, finite = output.split()[-4:]
    assert kept == "kept" and int(n_iter) >= 3 and int(n_iter) == int(n_losses)
    assert finite == "True"


# ------------------------------------------------- the start is a candidate


def test_a_fit_that_never_beats_its_pca_start_keeps_it():
    rng = np.random.RandomState(0)
    X = rng.randn(50, 5) @ rng.randn(5, 2000) + 0.1 * rng.randn(50, 2000)
    estimator = AutoencoderTransformer(
        n_components=2, learning_rate=0.05, max_epochs=5, device="cpu", random_state=0
    )
    pca_start = copy.deepcopy(estimator).set_params(learning_rate=1e-300).fit(X)

    with pytest.warns(ConvergenceWarning, match="did not improve on the model it started from"):
        estimator.fit(X)

    assert np.array_equal(estimator.transform(X), pca_start.transform(X))
    assert estimator.n_iter_ == len(estimator.loss_curve_) == 5


@pytest.mark.parametrize("cls", CLASSES)
def test_the_linear_autoencoder_starts_from_pca(cls, digits_X):
    from sklearn.decomposition import PCA

    linear = cls(
        n_components=5,
        hidden_layer_sizes=(),
        max_epochs=1,
        learning_rate=1e-300,
        output_activation="linear",
        device="cpu",
        random_state=0,
    ).fit(digits_X)
    pca = PCA(5).fit(digits_X)

    def mse(model):
        return np.mean((model.inverse_transform(model.transform(digits_X)) - digits_X) ** 2)

    if cls is AutoencoderTransformer:
        assert mse(linear) == pytest.approx(mse(pca), rel=1e-5)
    codes = linear.transform(digits_X)
    assert np.allclose(
        np.abs(np.corrcoef(codes.T, pca.transform(digits_X).T)[:5, 5:]), np.eye(5), atol=1e-4
    )


def test_early_stopping_can_keep_the_start(digits_X):
    estimator = AutoencoderTransformer(**FAST, learning_rate=0.2, early_stopping=True, max_epochs=3)
    start = copy.deepcopy(estimator).set_params(learning_rate=1e-300).fit(digits_X)

    with pytest.warns(ConvergenceWarning, match="did not improve"):
        estimator.fit(digits_X)

    assert np.array_equal(estimator.transform(digits_X), start.transform(digits_X))
    assert estimator.best_loss_ == pytest.approx(start.best_loss_)


@pytest.mark.parametrize("cls", [AutoencoderTransformer, VAETransformer])
@pytest.mark.parametrize(
    "learning_rate, early_stopping, separate_passes",
    [(1e-3, False, 0), (0.2, False, 1), (1e-3, True, 1)],
    ids=["trained", "start-kept", "validation-judged"],
)
def test_summary_describes_the_weights_kept_in_as_few_passes_as_possible(
    cls, learning_rate, early_stopping, separate_passes, digits_X, monkeypatch
):
    # Judging the end on the summary's own rows tallies the summary in that
    # pass; a kept start, or judging on validation rows, takes a pass of its own.
    passes = []
    original = skae._fitting._reconstruction_of
    monkeypatch.setattr(
        skae._fitting, "_reconstruction_of", lambda *args: passes.append(args) or original(*args)
    )
    estimator = cls(
        **FAST, learning_rate=learning_rate, early_stopping=early_stopping, max_epochs=3
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        estimator.fit(digits_X)

    kept_start = any("did not improve" in str(warning.message) for warning in caught)
    assert kept_start == (learning_rate == 0.2)
    assert len(passes) == separate_passes
    if early_stopping:  # trained on a random 90% of the rows
        return
    state = estimator._state
    rows = torch.tensor(digits_X)
    tally = ReconstructionTally(rows.shape[1])
    with torch.inference_mode():
        tally.add(rows, state.network.decode(state.network.encode(rows.float())))
    expected = tally.result(Alone())
    assert (state.training_error, state.training_variance) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("cls", [AutoencoderTransformer, VAETransformer])
@pytest.mark.parametrize("streamed", [False, True], ids=["in-memory", "streamed"])
def test_summary_tallied_while_judging_the_end_is_the_separate_pass_bit_for_bit(
    cls, streamed, digits_X, monkeypatch
):
    # More rows than the 2,048 compared on; checked inside the call, on its threads.
    X = np.vstack([digits_X, digits_X[:1300] + 0.5])
    compared = []
    conclude = skae._fitting._conclude

    def checked_conclude(call, state, optimizer, history, before, train_source, group):
        separate = skae._fitting._reconstruction_of(
            state.network, train_source, call.plan.training.batch_size, group
        )
        compared.append((history.summary, separate))
        return conclude(call, state, optimizer, history, before, train_source, group)

    monkeypatch.setattr(skae._fitting, "_conclude", checked_conclude)
    estimator = cls(**FAST, dropout=0.1, early_stopping=False, max_epochs=2)
    budget = X.nbytes // 4 if streamed else None
    with config_context(memory_budget=budget), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X)

    assert estimator.streamed_ == streamed
    [(tallied, separate)] = compared
    assert tallied == separate


def fit_recording_evaluations(estimator, X, monkeypatch, *, skip):
    """Fit; return each evaluation's loss and whether it skipped a constant path."""
    losses, skipped = [], []
    evaluate, skipping = Trainer.evaluate, skae._training.constant_paths_skipped

    def recorded(trainer, *args, **kwargs):
        losses.append(evaluate(trainer, *args, **kwargs))
        return losses[-1]

    @contextlib.contextmanager
    def watched(network):
        with skipping(network) if skip else contextlib.nullcontext():
            shortcuts = [m for m in network.modules() if isinstance(m, LinearShortcut)]
            skipped.append(any(m.constant_output is not None for m in shortcuts))
            yield

    monkeypatch.setattr(Trainer, "evaluate", recorded)
    monkeypatch.setattr(skae._training, "constant_paths_skipped", watched)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X)
    monkeypatch.undo()
    return losses, skipped


@pytest.mark.parametrize("cls", [AutoencoderTransformer, VAETransformer])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_the_start_is_judged_by_its_linear_paths_alone_bit_for_bit(
    cls, early_stopping, digits_X, monkeypatch
):
    params = dict(FAST, early_stopping=early_stopping, max_epochs=3, output_activation="sigmoid")
    skipping, reference = cls(**params), cls(**params)

    losses, skipped = fit_recording_evaluations(skipping, digits_X, monkeypatch, skip=True)
    expected, _ = fit_recording_evaluations(reference, digits_X, monkeypatch, skip=False)

    assert losses == expected
    # Only the start's evaluation: training makes the paths depend on the input.
    assert skipped[0] and not any(skipped[1:])
    assert len(skipped) == (4 if early_stopping else 2)
    assert skipping.noise_variance_ == reference.noise_variance_
    np.testing.assert_array_equal(skipping.transform(digits_X), reference.transform(digits_X))


# Data ranges the output activations must all survive: near a bound, the
# sigmoid's own range, tanh's, a large offset and large units.
RANGES = {
    "0-1e-3": (0.0, 1e-3),
    "0-1": (0.0, 1.0),
    "-1-1": (-1.0, 1.0),
    "1000-1001": (1000.0, 1001.0),
    "0-1e6": (0.0, 1e6),
}


def pca_error(X, n_components=2):
    from sklearn.decomposition import PCA

    return reconstruction_error(PCA(n_components).fit(X), X)


@pytest.mark.parametrize("low, high", RANGES.values(), ids=RANGES)
@pytest.mark.parametrize("output_activation", ["linear", "sigmoid", "tanh"])
def test_a_fit_ends_no_worse_than_its_pca_or_says_so(digits_X, output_activation, low, high):
    # A bounded output cannot start as PCA; wherever it ends worse than PCA
    # (data outside its range, or near one bound) the fit says so.
    X = low + (high - low) * digits_X
    estimator = AutoencoderTransformer(**FAST, max_epochs=4, output_activation=output_activation)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        estimator.fit(X)

    error = reconstruction_error(estimator, X)
    warned = [str(w.message) for w in caught if "PCA" in str(w.message)]
    assert error <= pca_error(X) * 1.01 or warned


# ------------------------------------------- reproducers of the life-cycle bugs


@pytest.fixture
def low_rank():
    rng = np.random.RandomState(0)
    return rng.randn(200, 5) @ rng.randn(5, 20) + 0.3 * rng.randn(200, 20)


REPRO = dict(hidden_layer_sizes=(16,), max_epochs=2, random_state=0, device="cpu")


@pytest.mark.parametrize(
    "params",
    [
        {"learning_rate": -1.0},
        {"batch_size": 0},
        {"learning_rate": "1e-3"},
        {"n_components": True},
        {"hidden_layer_sizes": [True]},
        {"max_epochs": True},
        {"random_state": True},
        {"dropout": False},
    ],
)
def test_partial_fit_checks_parameters_set_since_the_last_call(low_rank, params):
    estimator = AutoencoderTransformer(**REPRO).fit(low_rank)
    before = captured(estimator, low_rank)
    estimator.set_params(**params)

    for _ in range(3):
        with pytest.raises(ValueError, match=next(iter(params))):
            estimator.partial_fit(low_rank)

    estimator.set_params(**{name: REPRO.get(name, 1e-3) for name in params})
    assert_same_state(estimator, before, low_rank)


def test_a_non_integer_kl_warmup_is_refused_before_training(low_rank):
    vae = VAETransformer(**REPRO).fit(low_rank)
    before = captured(vae, low_rank)
    vae.set_params(kl_warmup_epochs=2.5)
    with pytest.raises(ValueError, match="kl_warmup_epochs"):
        vae.partial_fit(low_rank)
    assert_same_state(vae, before, low_rank)


@pytest.mark.parametrize("continued", [{"warm_start": True}, {}])
def test_divergence_of_a_continued_fit_keeps_the_model(low_rank, continued):
    estimator = AutoencoderTransformer(**REPRO, **continued).fit(low_rank)
    before = captured(estimator, low_rank)
    far_off = low_rank.copy()
    far_off[0, 0] = 1e30
    fit = estimator.fit if continued else estimator.partial_fit

    with pytest.raises(DivergenceError):
        fit(far_off)

    assert_same_state(estimator, before, low_rank)


def test_a_refit_on_empty_data_keeps_the_model(low_rank):
    estimator = AutoencoderTransformer(**REPRO).fit(low_rank)
    before = captured(estimator, low_rank)
    with pytest.raises(ValueError, match="0 sample"):
        estimator.fit(low_rank[:0])
    assert_same_state(estimator, before, low_rank)


@pytest.mark.parametrize("sparse", [False, True])
def test_values_beyond_float32_are_a_clear_error(low_rank, sparse):
    import scipy.sparse as sp

    X = low_rank.copy()
    X[0, 0] = 1e300
    X = sp.csr_matrix(X) if sparse else X
    with pytest.raises(ValueError, match="beyond float32's range"):
        AutoencoderTransformer(**REPRO).fit(X)


def test_bernoulli_scores_need_data_in_the_unit_interval(low_rank):
    binary = (low_rank > 0).astype(float)
    vae = VAETransformer(**REPRO, likelihood="bernoulli").fit(binary)
    for score in (vae.score_samples, vae.score, vae.iwae_log_likelihood):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            score(binary * 2)


def test_scores_of_finite_float64_input_are_finite(low_rank):
    vae = VAETransformer(**REPRO).fit(low_rank)
    far_off = low_rank[:3].copy()
    far_off[0, 0] = 1e30
    assert np.isfinite(vae.iwae_log_likelihood(far_off, n_draws=5, random_state=0)).all()
    assert np.isfinite(vae.score_samples(far_off)).all()
    assert np.isfinite(AutoencoderTransformer(**REPRO).fit(low_rank).score_samples(far_off)).all()


def test_wide_data_never_ends_worse_than_pca():
    from sklearn.decomposition import PCA

    rng = np.random.RandomState(0)
    X = rng.randn(50, 5) @ rng.randn(5, 10000) + 0.1 * rng.randn(50, 10000)
    model = AutoencoderTransformer(max_epochs=30, random_state=0, device="cpu").fit(X)
    pca = PCA(2).fit(X)

    def error(reducer):
        return np.linalg.norm(reducer.inverse_transform(reducer.transform(X)) - X)

    assert error(model) <= error(pca) * (1 + 1e-6)


def test_the_linear_autoencoder_on_mixed_scales_is_no_worse_than_pca():
    from sklearn.decomposition import PCA

    rng = np.random.RandomState(0)
    X = np.c_[rng.randn(300, 3) * 1000, rng.randn(300, 3) * 0.001, rng.randn(300, 4)]
    model = AutoencoderTransformer(
        hidden_layer_sizes=(), max_epochs=30, random_state=0, device="cpu"
    ).fit(X)
    pca = PCA(2).fit(X)

    def mse(reducer):
        return np.mean((reducer.inverse_transform(reducer.transform(X)) - X) ** 2)

    assert mse(model) <= mse(pca) * (1 + 1e-4)


# ------------------------------------------- interrupts after the last epoch


@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("warm", [False, True])
def test_an_interrupt_while_finishing_keeps_the_epochs(monkeypatch, digits_X, early_stopping, warm):
    from skae._training import Checkpoint

    estimator = AutoencoderTransformer(
        **FAST, max_epochs=3, early_stopping=early_stopping, warm_start=warm
    )
    if warm:
        estimator.fit(digits_X)
    reference = copy.deepcopy(estimator).fit(digits_X)
    # Finishing is the final comparison with the start (without early
    # stopping: the second evaluation of the call), or restoring the best
    # epoch (with it: the first restore of the call).
    owner, name, at = (Checkpoint, "restore", 1) if early_stopping else (Trainer, "evaluate", 2)
    original = getattr(owner, name)
    calls = [0]

    def interrupted(self, *args):
        calls[0] += 1
        if calls[0] == at:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(owner, name, interrupted)
    with pytest.raises(KeyboardInterrupt):
        estimator.fit(digits_X)

    assert_same_state(estimator, captured(reference, digits_X), digits_X)


def test_an_interrupt_while_recording_keeps_the_epochs(monkeypatch, digits_X, ctrl_c):
    # A real Ctrl-C (SIGINT) in the middle of the bookkeeping: it is held until
    # the bookkeeping is done, which runs once, then raised after the commit.
    from skae._state import FitState

    estimator = AutoencoderTransformer(**FAST, max_epochs=3)
    reference = copy.deepcopy(estimator).fit(digits_X)
    original = FitState.keep_optimizer
    calls = [0]

    def keep_optimizer(self, name, optimizer):
        calls[0] += 1
        signal.raise_signal(signal.SIGINT)
        return original(self, name, optimizer)

    monkeypatch.setattr(FitState, "keep_optimizer", keep_optimizer)
    with pytest.raises(KeyboardInterrupt):
        estimator.fit(digits_X)

    assert calls == [1]
    assert_same_state(estimator, captured(reference, digits_X), digits_X)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("warm", [False, True])
def test_an_interrupt_while_warning_keeps_the_epochs(monkeypatch, digits_X, warm):
    import skae._base

    estimator = AutoencoderTransformer(**FAST, max_epochs=2, warm_start=warm)
    if warm:
        estimator.fit(digits_X)
    reference = copy.deepcopy(estimator)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reference.fit(digits_X)
    assert caught, "the reference call must warn for this test to mean anything"

    def interrupted(message, category):
        raise KeyboardInterrupt

    monkeypatch.setattr(skae._base, "warn_at_caller", interrupted)
    with pytest.raises(KeyboardInterrupt):
        estimator.fit(digits_X)

    assert_same_state(estimator, captured(reference, digits_X), digits_X)


# ------------------------------------------------ other ways a call can fail


def test_a_warning_raised_as_an_error_fails_the_call_without_a_trace(digits_X):
    estimator = AutoencoderTransformer(**FAST, max_epochs=1, warm_start=True).fit(digits_X)
    before = captured(estimator, digits_X)

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with pytest.raises(ConvergenceWarning):
            estimator.fit(digits_X)

    assert_same_state(estimator, before, digits_X)


def test_a_failed_call_does_not_consume_a_random_state_instance(digits_X):
    generator = np.random.RandomState(0)
    estimator = AutoencoderTransformer(**{**FAST, "random_state": generator}, batch_norm=True)
    estimator.set_params(batch_size=1)
    with pytest.raises(ValueError, match="batch"):
        estimator.fit(digits_X)
    estimator.set_params(batch_size=32)

    estimator.fit(digits_X)
    again = AutoencoderTransformer(
        **{**FAST, "random_state": np.random.RandomState(0)}, batch_norm=True
    ).fit(digits_X)
    assert np.array_equal(estimator.transform(digits_X), again.transform(digits_X))


def test_kl_warmup_epochs_compete_for_the_best_weights(digits_X):
    vae = VAETransformer(**FAST, max_epochs=4, kl_warmup_epochs=10, early_stopping=True)
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        vae.fit(digits_X)
    assert not any("did not improve" in str(r.message) for r in records)
    assert vae.best_loss_ == min(vae.validation_loss_curve_)


@pytest.mark.parametrize("cls", CLASSES)
def test_scores_of_far_off_float32_rows_are_finite(cls, digits_X):
    estimator = cls(**FAST, max_epochs=2).fit(digits_X)
    far_off = digits_X[:3].astype(np.float32)
    far_off[0, 0] = 3e38
    assert np.isfinite(estimator.score_samples(far_off)).all()


@pytest.mark.parametrize(
    "params, message",
    [
        ({"hidden_layer_sizes": {16}}, "hidden_layer_sizes must be a sequence"),
        ({"input_shape": (-1, 0)}, "input_shape"),
        ({"conv_channels": "ab"}, "conv_channels"),
    ],
)
def test_unordered_or_unused_but_invalid_shapes_are_refused(digits_X, params, message):
    with pytest.raises(ValueError, match=message):
        AutoencoderTransformer(**{**FAST, **params}).fit(digits_X)
