"""What AutoencoderTransformer and VAETransformer share, tested once for both."""

import copy

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from helpers import joblib_round_trip, pickle_round_trip, save_load_round_trip
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import VAETransformer

# Tiny fits rarely converge; tests that are about convergence record warnings themselves.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ROUND_TRIPS = [pickle_round_trip, joblib_round_trip, copy.deepcopy, save_load_round_trip]


def outputs(estimator, X):
    """Everything a fitted estimator computes from ``X``, by name."""
    codes = estimator.transform(X)
    results = {
        "transform": codes,
        "inverse_transform": estimator.inverse_transform(codes),
        "score_samples": estimator.score_samples(X),
    }
    if isinstance(estimator, VAETransformer):
        results["sample"] = estimator.sample(3, random_state=0)
        results["iwae"] = estimator.iwae_log_likelihood(X, n_draws=4, random_state=0)
    return results


def fitted_attributes(estimator):
    names = ["loss_curve_", "validation_loss_curve_", "best_loss_", "n_iter_", "n_features_in_"]
    return {name: getattr(estimator, name) for name in names}


def assert_same_model(estimator, other, X):
    for name, values in outputs(estimator, X).items():
        assert_array_equal(outputs(other, X)[name], values, err_msg=name)
    assert fitted_attributes(other) == fitted_attributes(estimator)


# ------------------------------------------------------------ persistence


@pytest.mark.parametrize("round_trip", ROUND_TRIPS)
def test_round_trip_gives_identical_outputs(make_estimator, small_X, round_trip):
    estimator = make_estimator()
    if "kl_warmup_epochs" in estimator.get_params():
        estimator.set_params(kl_warmup_epochs=5)  # the KL weight travels too
    estimator.fit(small_X)

    restored = round_trip(estimator)

    assert_same_model(estimator, restored, small_X)
    assert isinstance(restored.encoder_, torch.nn.Module)
    assert restored.get_params() == estimator.get_params()
    assert getattr(restored._network, "kl_weight", None) == getattr(
        estimator._network, "kl_weight", None
    )


@pytest.mark.parametrize("round_trip", ROUND_TRIPS)
@pytest.mark.parametrize("how", ["partial_fit", "warm_start", "early_stopping"])
def test_restored_model_keeps_training_like_the_original(make_estimator, digits_X, round_trip, how):
    params = {"warm_start": how != "partial_fit", "early_stopping": how == "early_stopping"}
    original = make_estimator(**params, optimizer="rmsprop").fit(digits_X)
    restored = round_trip(original)

    for estimator in (original, restored):
        if how == "partial_fit":
            estimator.partial_fit(digits_X)
        else:
            estimator.fit(digits_X)

    assert restored.n_iter_ == original.n_iter_ > 3
    assert_same_model(original, restored, digits_X)


def test_deepcopy_is_independent_of_the_original(make_estimator, small_X):
    original = make_estimator().fit(small_X)
    codes = original.transform(small_X)

    copy.deepcopy(original).partial_fit(small_X)

    assert original.n_iter_ == 3
    assert_array_equal(original.transform(small_X), codes)


def test_clone_refits_to_identical_output(make_estimator, small_X):
    estimator = make_estimator(n_components=3).fit(small_X)

    cloned = clone(estimator)

    assert not hasattr(cloned, "encoder_")
    assert cloned.get_params() == estimator.get_params()
    assert_array_equal(cloned.fit(small_X).transform(small_X), estimator.transform(small_X))


# ------------------------------------------------------------ input types


@pytest.mark.parametrize("to_sparse", [sp.csr_matrix, sp.csc_matrix])
def test_sparse_input_matches_dense(make_estimator, small_X, to_sparse):
    X_sparse = to_sparse(small_X)

    dense = make_estimator().fit(small_X)
    sparse = make_estimator().fit(X_sparse)

    assert_allclose(sparse.transform(X_sparse), dense.transform(small_X), rtol=1e-5, atol=1e-6)
    for name, values in outputs(dense, small_X).items():
        if name != "inverse_transform":
            assert_allclose(outputs(dense, X_sparse)[name], values, rtol=1e-12, err_msg=name)
    codes = dense.transform(small_X)
    assert_array_equal(
        dense.inverse_transform(sp.csr_matrix(codes)), dense.inverse_transform(codes)
    )


# ------------------------------------------------------ scikit-learn tools


def test_pipeline_with_scaler_and_classifier(make_estimator, digits):
    X, y = digits
    X = X[:, 16:56]  # the middle pixel rows keep the fit fast
    pipe = make_pipeline(
        StandardScaler(),
        make_estimator(n_components=8, max_epochs=10),
        LogisticRegression(max_iter=500),
    )

    pipe.fit(X, y)

    assert pipe.predict(X).shape == (200,)
    # Ten classes: chance is about 0.1.
    assert pipe.score(X, y) > 0.5
    assert np.isfinite(pipe[1].loss_curve_).all()
