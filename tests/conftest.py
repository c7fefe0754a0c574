"""Shared fixtures: small data and fast estimators.

Every test trains tiny networks (one hidden layer of 16 units) for a few
epochs on at most a few hundred rows, so the whole suite runs in minutes on
a laptop CPU.
"""

import numpy as np
import pytest
import torch
from helpers import FAST
from sklearn.datasets import load_digits

from skae import AutoencoderTransformer, VAETransformer


def pytest_configure(config):
    # The networks here are tiny: one thread is faster than two, and much faster
    # than two threads fighting another process for the same two cores. This is
    # the test process's choice, not the library's (the library never sets it).
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """Skip tests marked ``gpu`` when this machine has no CUDA device."""
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device; torch.cuda.is_available() is False")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


def fast_autoencoder(**params):
    """An AutoencoderTransformer with FAST, overridden by ``params``."""
    return AutoencoderTransformer(**{**FAST, **params})


@pytest.fixture(scope="session")
def make_autoencoder():
    """Factory fixture: ``make_autoencoder(n_components=3)`` gives a fast estimator."""
    return fast_autoencoder


@pytest.fixture(scope="session")
def _digits():
    X, y = load_digits(return_X_y=True)
    return X[:200] / 16.0, y[:200]


@pytest.fixture
def digits(_digits):
    """200 digits scaled to [0, 1]: float64 of shape (200, 64), and labels."""
    X, y = _digits
    return X.copy(), y.copy()


@pytest.fixture
def digits_X(digits):
    return digits[0]


@pytest.fixture
def small_X():
    """Random float64 data of shape (60, 6) in [0, 1], a third of it zeros."""
    X = np.random.RandomState(0).uniform(size=(60, 6))
    X[X < 1 / 3] = 0.0
    return X


def fast_vae(**params):
    """A VAETransformer with FAST, overridden by ``params``."""
    return VAETransformer(**{**FAST, **params})


@pytest.fixture(scope="session")
def make_vae():
    """Factory fixture: ``make_vae(beta=4.0)`` gives a fast VAETransformer."""
    return fast_vae


@pytest.fixture(params=[AutoencoderTransformer, VAETransformer], ids=["autoencoder", "vae"])
def Estimator(request):
    """Each estimator class in turn: tests of what both share (test_shared.py)."""
    return request.param


@pytest.fixture
def make_estimator(Estimator):
    """``Estimator``'s fast factory: ``make_estimator(n_components=3)``."""
    return fast_autoencoder if Estimator is AutoencoderTransformer else fast_vae


@pytest.fixture
def digits_middle_X(_digits):
    """The middle five pixel rows of the 200 digits: float64 of shape (200, 40) in [0, 1].

    Narrower than ``digits_X`` so that the PCA behind each fit's start stays
    cheap, yet real image data with structure to learn.
    """
    return _digits[0][:, 16:56].copy()
