"""Per-sample loss terms as pure tensor functions.

Every function returns one value per row, so that the same code serves the
training objective (averaged over a batch) and ``score_samples``.
"""

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2 * math.pi)


def mean_squared_error(residual):
    """Mean over features of ``residual ** 2``, one value per sample."""
    return residual.square().mean(dim=1)


def binary_cross_entropy(logits, x, reduce="mean"):
    """Bernoulli negative log-likelihood of ``x`` given ``logits``, per sample.

    ``reduce="mean"`` averages over features (the autoencoder's ``"bce"``
    loss); ``reduce="sum"`` sums them (a log-likelihood in nats).
    """
    losses = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return losses.mean(dim=1) if reduce == "mean" else losses.sum(dim=1)


def gaussian_negative_log_likelihood(residual, log_variance):
    """Gaussian negative log-likelihood in nats, summed over features.

    Parameters
    ----------
    residual : Tensor of shape (n_samples, n_features)
        Observation minus mean.
    log_variance : Tensor broadcastable to ``residual``
        Log of the observation variance, in the same units as ``residual``.
    """
    terms = LOG_2PI + log_variance + residual.square() * torch.exp(-log_variance)
    return 0.5 * terms.sum(dim=1)


def gaussian_kl_divergence(mean, log_variance):
    """KL(N(mean, exp(log_variance)) || N(0, I)) in closed form, per sample."""
    terms = mean.square() + log_variance.exp() - 1.0 - log_variance
    return 0.5 * terms.sum(dim=1)
