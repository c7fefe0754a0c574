"""Warnings point at the user's line, however the fit was reached."""

import math
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X = np.random.RandomState(0).rand(60, 6)


def caught(call):
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        call()
    return [r for r in records if issubclass(r.category, ConvergenceWarning)]


@pytest.mark.parametrize(
    "call",
    [
        lambda model: model.fit(X),
        lambda model: model.fit_transform(X),
        lambda model: model.set_output(transform="pandas").fit_transform(X),
        lambda model: make_pipeline(StandardScaler(), model).fit(X),
        lambda model: make_pipeline(StandardScaler(), model).fit_transform(X),
    ],
    ids=["fit", "fit_transform", "set_output", "pipeline.fit", "pipeline.fit_transform"],
)
def test_convergence_warning_points_at_the_callers_line(make_estimator, call):
    pytest.importorskip("pandas")
    records = caught(lambda: call(make_estimator(max_epochs=2)))

    assert records, "a two-epoch fit warns that it stopped early"
    assert all(record.filename == __file__ for record in records)


def test_kept_start_warning_through_warm_start_and_search_points_at_the_caller(make_estimator):
    model = make_estimator(max_epochs=2, warm_start=True, learning_rate=5.0)
    records = caught(lambda: model.fit(X))
    records += caught(lambda: GridSearchCV(model, {"n_components": [1, 2]}, cv=2).fit(X))

    assert records
    assert all(record.filename == __file__ for record in records)


def test_no_warning_when_the_start_is_already_exact():
    # n_components >= n_features: the PCA start reconstructs exactly, so
    # "did not improve ... try a lower learning_rate" could never help.
    from skae import AutoencoderTransformer

    X = np.random.RandomState(0).normal(size=(500, 2)) @ np.array([[2.0, 1.0], [0.0, 0.5]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = AutoencoderTransformer(n_components=2, random_state=0, device="cpu").fit(X)
    assert model.reconstruction_r2_ > 1 - 1e-9


@pytest.mark.parametrize("name", ["AutoencoderTransformer", "VAETransformer"])
def test_default_fits_on_the_readmes_data_do_not_warn(name):
    # At the default 100 epochs the training loss still falls 0.16-0.73% of
    # its progress per epoch (seeds 0-2, bench_convergence.py), and more
    # epochs do not reliably help held-out data: no warning, against a bar of 1%.
    from sklearn.datasets import load_digits

    import skae

    X = load_digits().data
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        getattr(skae, name)(n_components=2, random_state=0, device="cpu").fit(X)


def test_recent_progress_is_the_last_epochs_share_of_the_whole_drop():
    from skae._callbacks import recent_progress

    converging = [10 * 0.5**epoch + 100 for epoch in range(30)]  # an offset, as an ELBO has
    steady = [100.0 - epoch for epoch in range(30)]

    assert recent_progress(converging) < 1e-3
    assert recent_progress(steady) == pytest.approx(1 / 29)
    assert recent_progress([5.0, 4.0]) == 1.0
    assert recent_progress([5.0]) == recent_progress([]) == 0.0
    assert recent_progress([4.0, 5.0, 6.0]) == 0.0  # never improved
    assert recent_progress([5.0, float("nan"), 4.0]) == 1.0


# The iris fit of 5 epochs that warned "still falling fast" (each of the last
# epochs took off 25% of all it had fallen): a 0.4% fall, within the noise.
FLAT_NOISY = [0.02534, 0.02708, 0.02667, 0.02523, 0.02634]


def noisy(curve, level, seed):
    return list(np.asarray(curve) + level * np.random.RandomState(seed).normal(size=len(curve)))


@pytest.mark.parametrize("seed", range(5))
def test_a_fall_is_real_only_beyond_the_curves_own_noise(seed):
    from skae._callbacks import FAR_TRAINING_SHARE, far_from_converged, recent_trend

    flat = noisy([1.0] * 20, 0.01, seed)
    steady = [100.0 - epoch for epoch in range(30)]
    falling = noisy(steady, 0.3, seed)  # one loss unit per epoch, under noise of 0.3

    assert not far_from_converged(FLAT_NOISY, FAR_TRAINING_SHARE)
    assert recent_trend(FLAT_NOISY) > -1
    assert not far_from_converged(flat, FAR_TRAINING_SHARE)
    assert far_from_converged(steady, FAR_TRAINING_SHARE)
    assert recent_trend(steady) == -math.inf
    assert far_from_converged(falling, FAR_TRAINING_SHARE)
    assert recent_trend(falling) < -10
    # A real fall that is too slow to matter still does not warn.
    assert not far_from_converged([10 * 0.5**epoch + 100 for epoch in range(30)], 0.01)


def test_recent_trend_needs_three_losses_and_a_slope():
    from skae._callbacks import recent_trend

    assert math.isnan(recent_trend([5.0, 4.0]))
    assert math.isnan(recent_trend([1.0, 1.0, 1.0]))
    assert recent_trend([3.0, 2.0, float("nan"), 1.0]) == -math.inf
    assert recent_trend([1.0, 2.0, 3.0]) == math.inf
    # Only the last window + 1 losses count: an old fall is forgotten.
    assert recent_trend([100.0, 50.0, *FLAT_NOISY], window=4) == recent_trend(FLAT_NOISY)


def end_of_fit_messages(losses, validation_losses=()):
    from types import SimpleNamespace

    from skae._callbacks import ConvergenceWarnings
    from skae._training import History

    history = History(loss=list(losses), validation_loss=list(validation_losses))
    state = SimpleNamespace(training_error=1.0, training_variance=2.0)
    return ConvergenceWarnings("Model", len(losses), False, False).on_fit_end(history, state)


@pytest.mark.parametrize("seed", range(3))
def test_the_end_of_fit_warning_ignores_a_flat_noisy_curve(seed):
    assert end_of_fit_messages(FLAT_NOISY) == []
    assert end_of_fit_messages(noisy([1.0] * 20, 0.01, seed)) == []
    assert end_of_fit_messages([2.0] * 5, noisy([1.0] * 5, 0.01, seed)) == []

    [message] = end_of_fit_messages(noisy([100.0 - epoch for epoch in range(30)], 0.3, seed))
    assert "training loss was still falling fast" in message
    [message] = end_of_fit_messages([2.0] * 20, [1.0 - 0.01 * epoch for epoch in range(20)])
    assert "validation loss was still falling fast" in message


def test_two_epochs_are_too_few_to_tell_a_fall_from_noise():
    [message] = end_of_fit_messages([5.0, 4.0])
    assert "too few to tell" in message


def test_a_short_flat_fit_does_not_say_it_is_still_falling():
    # Raw iris, 5 epochs: the training loss wanders about its start (the
    # curve above is seed 0's); a short fit that really falls still warns.
    from sklearn.datasets import load_digits, load_iris

    from skae import AutoencoderTransformer

    def messages(X, **params):
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            AutoencoderTransformer(device="cpu", **params).fit(X)
        return [str(r.message) for r in records if issubclass(r.category, ConvergenceWarning)]

    iris = load_iris().data
    for seed in range(3):
        assert not any(
            "still falling" in m for m in messages(iris, max_epochs=5, random_state=seed)
        )
    digits = load_digits().data[:200] / 16
    for seed in range(2):
        falling = messages(
            digits,
            hidden_layer_sizes=(16,),
            batch_size=32,
            max_epochs=12,
            learning_rate=3e-4,
            output_activation="linear",
            random_state=seed,
        )
        assert any("still falling" in m for m in falling)
