"""The training engine of skae._training, and the training options of both estimators."""

import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal

from skae._batches import batch_bounds
from skae._training import ConvergenceMonitor

# Tiny fits rarely converge; tests that are about convergence record warnings themselves.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# ------------------------------------------------------ ConvergenceMonitor


def test_first_epoch_counts_as_an_improvement():
    # Even a tolerance that no later epoch could meet.
    monitor = ConvergenceMonitor(tol=10.0, n_iter_no_change=1)

    assert monitor.update(5.0) is True
    assert monitor.epochs_without_improvement == 0
    assert not monitor.converged
    assert monitor.best == 5.0


def test_improvement_is_relative_to_the_best_loss():
    monitor = ConvergenceMonitor(tol=0.1, n_iter_no_change=3)
    monitor.update(10.0)

    # 9.5 is a new best, but less than 10% better: no improvement.
    assert monitor.update(9.5) is True
    assert monitor.epochs_without_improvement == 1
    assert monitor.best == 9.5
    # Worse than the best: neither.
    assert monitor.update(9.9) is False
    assert monitor.epochs_without_improvement == 2
    # More than 10% below 9.5 resets the count.
    assert monitor.update(8.5) is True
    assert monitor.epochs_without_improvement == 0


def test_tolerance_means_the_same_in_any_units():
    small, large = ConvergenceMonitor(0.01, 5), ConvergenceMonitor(0.01, 5)
    for loss in (1.0, 0.995, 0.98):
        small.update(loss)
        large.update(loss * 1e6)

    assert small.epochs_without_improvement == large.epochs_without_improvement == 0
    small.update(0.979)
    large.update(0.979e6)
    assert small.epochs_without_improvement == large.epochs_without_improvement == 1


def test_negative_losses_use_the_absolute_best():
    monitor = ConvergenceMonitor(tol=0.1, n_iter_no_change=2)
    monitor.update(-10.0)

    # An improvement must go below -10 - 0.1 * 10 = -11.
    assert monitor.update(-10.5) is True
    assert monitor.epochs_without_improvement == 1
    assert monitor.update(-11.6) is True
    assert monitor.epochs_without_improvement == 0


def test_zero_tolerance_needs_a_strict_decrease():
    monitor = ConvergenceMonitor(tol=0.0, n_iter_no_change=2)
    monitor.update(1.0)

    assert monitor.update(1.0) is False
    assert monitor.epochs_without_improvement == 1
    assert monitor.update(0.999999) is True
    assert monitor.epochs_without_improvement == 0


def test_converged_after_n_iter_no_change_epochs_without_improvement():
    monitor = ConvergenceMonitor(tol=1e-4, n_iter_no_change=3)
    monitor.update(1.0)

    states = []
    for _ in range(3):
        monitor.update(2.0)
        states.append(monitor.converged)

    assert states == [False, False, True]
    assert monitor.best == 1.0


# ------------------------------------------------------------ batch_bounds


@pytest.mark.parametrize(
    "n_samples, batch_size, expected",
    [
        (10, 4, [(0, 4), (4, 8), (8, 10)]),
        (8, 4, [(0, 4), (4, 8)]),
        (9, 4, [(0, 4), (4, 9)]),
        (5, 4, [(0, 5)]),
        (3, 4, [(0, 3)]),
        (1, 4, [(0, 1)]),
        (1, 1, [(0, 1)]),
        (65, 32, [(0, 32), (32, 65)]),
    ],
)
def test_batch_bounds(n_samples, batch_size, expected):
    assert list(batch_bounds(n_samples, batch_size)) == expected


@pytest.mark.parametrize("n_samples", [2, 7, 33, 64, 65, 100])
@pytest.mark.parametrize("batch_size", [2, 5, 32])
def test_batch_bounds_cover_every_row_once_in_batches_of_two_or_more(n_samples, batch_size):
    bounds = list(batch_bounds(n_samples, batch_size))

    assert bounds[0][0] == 0
    assert bounds[-1][1] == n_samples
    assert all(stop == start for (_, stop), (start, _) in zip(bounds, bounds[1:], strict=False))
    sizes = [stop - start for start, stop in bounds]
    assert all(2 <= size <= batch_size + 1 for size in sizes)
    assert len(bounds) == max(1, math.ceil(n_samples / batch_size) - (n_samples % batch_size == 1))


@pytest.mark.parametrize("n_samples", [33, 65])
def test_batch_norm_trains_when_a_batch_of_one_would_remain(
    make_estimator, digits_middle_X, n_samples
):
    # n_samples % batch_size == 1: the last row joins the batch before it.
    X = digits_middle_X[:n_samples]

    estimator = make_estimator(batch_norm=True, batch_size=32).fit(X)

    assert estimator.n_iter_ == 3
    assert np.all(np.isfinite(estimator.loss_curve_))
    assert np.all(np.isfinite(estimator.transform(X)))


def test_batch_norm_trains_with_early_stopping(make_estimator, digits_middle_X):
    # 72 rows less 7 held out leave 65 = 2 * 32 + 1 to train on.
    estimator = make_estimator(
        batch_norm=True, batch_size=32, early_stopping=True, validation_fraction=0.1
    ).fit(digits_middle_X[:72])

    assert len(estimator.validation_loss_curve_) == 3
    assert np.all(np.isfinite(estimator.validation_loss_curve_))


# ------------------------------------------------------------------ noise


@pytest.mark.parametrize("noise", ["gaussian", "masking"])
def test_noise_trains_reproducibly_and_transform_is_clean(make_estimator, digits_middle_X, noise):
    plain = make_estimator().fit(digits_middle_X)
    before = torch.get_rng_state()

    first = make_estimator(noise=noise, noise_level=0.3).fit(digits_middle_X)
    second = make_estimator(noise=noise, noise_level=0.3).fit(digits_middle_X)

    assert torch.equal(torch.get_rng_state(), before)
    codes = first.transform(digits_middle_X)
    assert_array_equal(second.transform(digits_middle_X), codes)
    assert not np.allclose(codes, plain.transform(digits_middle_X))
    # No noise at transform time: the encoder in evaluation mode, every call.
    assert_array_equal(first.transform(digits_middle_X), codes)
    assert not first.encoder_.training
    X32 = digits_middle_X.astype(np.float32)
    with torch.inference_mode():
        encoded = first.encoder_(torch.as_tensor(X32)).numpy()[:, : first.n_components]
    np.testing.assert_allclose(first.transform(X32), encoded, rtol=1e-6, atol=1e-6)


def test_noise_depends_on_random_state(make_estimator, digits_middle_X):
    first = make_estimator(noise="masking", noise_level=0.3, random_state=0).fit(digits_middle_X)
    second = make_estimator(noise="masking", noise_level=0.3, random_state=1).fit(digits_middle_X)

    assert first.loss_curve_ != second.loss_curve_


@pytest.mark.parametrize("noise", ["gaussian", "masking"])
def test_zero_noise_level_is_no_noise(make_estimator, digits_middle_X, noise):
    plain = make_estimator().fit(digits_middle_X)

    quiet = make_estimator(noise=noise, noise_level=0.0).fit(digits_middle_X)

    assert_array_equal(quiet.transform(digits_middle_X), plain.transform(digits_middle_X))


def test_gaussian_noise_is_in_the_units_of_the_data(make_autoencoder, digits_middle_X):
    # Noise proportional to the data's scale: scaled data trains the same network.
    params = {"noise": "gaussian", "noise_level": 0.5, "output_activation": "linear"}
    ae = make_autoencoder(**params).fit(digits_middle_X)
    scaled = make_autoencoder(**params).fit(100 * digits_middle_X)

    np.testing.assert_allclose(
        scaled.transform(100 * digits_middle_X), ae.transform(digits_middle_X), rtol=1e-3, atol=1e-4
    )


@pytest.mark.parametrize("noise_level", [1.0, 1.5])
def test_masking_noise_needs_level_below_one(make_estimator, small_X, noise_level):
    estimator = make_estimator(noise="masking", noise_level=noise_level)

    with pytest.raises(ValueError, match=r"noise='masking' needs noise_level < 1"):
        estimator.fit(small_X)


def test_invalid_noise_is_rejected(make_estimator, small_X):
    with pytest.raises(ValueError, match="'noise' parameter"):
        make_estimator(noise="salt").fit(small_X)
    with pytest.raises(ValueError, match="'noise_level' parameter"):
        make_estimator(noise="gaussian", noise_level=-0.1).fit(small_X)


# -------------------------------------------------- learning-rate schedule


def test_cosine_schedule_decays_the_learning_rate(make_estimator, digits_middle_X):
    params = dict(max_epochs=10, tol=0.0, n_iter_no_change=10, learning_rate=1e-3)
    constant = make_estimator(**params).fit(digits_middle_X)
    cosine = make_estimator(learning_rate_schedule="cosine", **params).fit(digits_middle_X)

    assert cosine.n_iter_ == 10
    assert constant._state.optimizer_state["param_groups"][0]["lr"] == 1e-3
    last_rate = cosine._state.optimizer_state["param_groups"][0]["lr"]
    assert 0 < last_rate < 0.05 * 1e-3
    assert cosine.loss_curve_[0] == constant.loss_curve_[0]  # the first epoch is at full rate
    assert not np.allclose(cosine.transform(digits_middle_X), constant.transform(digits_middle_X))


def test_cosine_schedule_restarts_with_every_fit(make_estimator, digits_middle_X):
    estimator = make_estimator(learning_rate_schedule="cosine", warm_start=True, max_epochs=4)
    estimator.fit(digits_middle_X)
    rate = estimator._state.optimizer_state["param_groups"][0]["lr"]

    estimator.fit(digits_middle_X)

    assert estimator.n_iter_ == 8
    assert estimator._state.optimizer_state["param_groups"][0]["lr"] == rate


def test_invalid_schedule_is_rejected(make_estimator, small_X):
    with pytest.raises(ValueError, match="'learning_rate_schedule' parameter"):
        make_estimator(learning_rate_schedule="step").fit(small_X)
