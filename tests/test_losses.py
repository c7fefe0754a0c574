"""The loss terms of skae._losses against values computed by hand."""

import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from skae._losses import (
    LOG_2PI,
    binary_cross_entropy,
    gaussian_kl_divergence,
    gaussian_negative_log_likelihood,
    mean_squared_error,
)


def tensor(values):
    return torch.tensor(values, dtype=torch.float64)


def test_mean_squared_error_is_per_sample():
    residual = tensor([[1.0, -3.0], [0.0, 2.0]])

    assert_allclose(mean_squared_error(residual).numpy(), [5.0, 2.0])


def test_gaussian_kl_divergence_matches_the_closed_form():
    mean = tensor([[1.0, 2.0], [0.0, 0.0]])
    log_variance = tensor([[0.0, math.log(2.0)], [0.0, 0.0]])

    kl = gaussian_kl_divergence(mean, log_variance).numpy()

    # 0.5 * sum(mu^2 + sigma^2 - 1 - log sigma^2) over dimensions.
    first = 0.5 * ((1 + 1 - 1 - 0) + (4 + 2 - 1 - math.log(2)))
    assert_allclose(kl, [first, 0.0], rtol=1e-12)


def test_gaussian_kl_divergence_is_positive_away_from_the_prior():
    rng = np.random.RandomState(0)
    mean = tensor(rng.normal(size=(50, 3)))
    log_variance = tensor(rng.normal(size=(50, 3)))

    kl = gaussian_kl_divergence(mean, log_variance)

    assert kl.shape == (50,)
    assert torch.all(kl > 0)


def test_gaussian_kl_divergence_matches_torch_distributions():
    rng = np.random.RandomState(1)
    mean, log_variance = tensor(rng.normal(size=(4, 3))), tensor(rng.normal(size=(4, 3)))
    posterior = torch.distributions.Normal(mean, torch.exp(0.5 * log_variance))
    prior = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(mean))

    expected = torch.distributions.kl_divergence(posterior, prior).sum(dim=1)

    assert_allclose(gaussian_kl_divergence(mean, log_variance).numpy(), expected.numpy())


def test_gaussian_negative_log_likelihood_matches_the_density():
    residual = tensor([[1.0, -2.0], [0.0, 0.5]])
    log_variance = tensor(math.log(2.0))

    nll = gaussian_negative_log_likelihood(residual, log_variance).numpy()

    def one(r):
        return 0.5 * (math.log(2 * math.pi) + math.log(2.0) + r**2 / 2.0)

    assert_allclose(nll, [one(1) + one(-2), one(0) + one(0.5)], rtol=1e-12)


def test_gaussian_negative_log_likelihood_with_per_feature_variances():
    rng = np.random.RandomState(2)
    residual, log_variance = tensor(rng.normal(size=(5, 3))), tensor(rng.normal(size=(5, 3)))
    expected = -torch.distributions.Normal(0.0, torch.exp(0.5 * log_variance)).log_prob(residual)

    nll = gaussian_negative_log_likelihood(residual, log_variance)

    assert_allclose(nll.numpy(), expected.sum(dim=1).numpy(), rtol=1e-12)
    assert LOG_2PI == pytest.approx(math.log(2 * math.pi))


def test_binary_cross_entropy_mean_and_sum():
    logits = tensor([[0.0, 2.0, -1.0]])
    x = tensor([[1.0, 0.0, 0.25]])

    def sigmoid(z):
        return 1 / (1 + math.exp(-z))

    terms = [
        -math.log(sigmoid(0.0)),
        -math.log(1 - sigmoid(2.0)),
        -(0.25 * math.log(sigmoid(-1.0)) + 0.75 * math.log(1 - sigmoid(-1.0))),
    ]
    assert_allclose(binary_cross_entropy(logits, x).numpy(), [np.mean(terms)], rtol=1e-12)
    assert_allclose(
        binary_cross_entropy(logits, x, reduce="mean").numpy(), [np.mean(terms)], rtol=1e-12
    )
    assert_allclose(binary_cross_entropy(logits, x, reduce="sum").numpy(), [sum(terms)], rtol=1e-12)


def test_binary_cross_entropy_is_stable_for_large_logits():
    logits = tensor([[100.0, -100.0]])
    x = tensor([[1.0, 0.0]])

    losses = binary_cross_entropy(logits, x, reduce="sum")

    assert torch.isfinite(losses).all()
    assert losses.item() == pytest.approx(0.0, abs=1e-30)
    assert binary_cross_entropy(-logits, x, reduce="sum").item() == pytest.approx(200.0)


def test_losses_keep_gradients():
    mean = tensor([[0.5, -0.5]]).requires_grad_()
    log_variance = tensor([[0.1, 0.2]]).requires_grad_()

    gaussian_kl_divergence(mean, log_variance).sum().backward()

    # d/dmu = mu; d/dlogvar = 0.5 * (exp(logvar) - 1).
    assert_allclose(mean.grad.numpy(), [[0.5, -0.5]])
    assert_allclose(log_variance.grad.numpy(), 0.5 * (np.exp([[0.1, 0.2]]) - 1))
