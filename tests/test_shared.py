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

from skae import VAETransformer, config_context

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


# ------------------------------------------------------- output activation


@pytest.mark.parametrize(
    "shift, expected", [(0.0, "sigmoid"), (-0.5, "linear")], ids=["unit-interval", "signed"]
)
def test_auto_output_activation_follows_the_training_data_range(
    make_estimator, digits_X, shift, expected
):
    X = digits_X + shift
    estimator = make_estimator(output_activation="auto").fit(X)
    assert estimator._state.spec.output_activation == expected
    same = make_estimator(output_activation=expected).fit(X)
    assert_array_equal(estimator.transform(X), same.transform(X))


def test_auto_output_activation_reads_sparse_and_streamed_data(make_estimator, digits_X):
    for X, expected in [
        (sp.csr_matrix(digits_X), "sigmoid"),
        (sp.csr_matrix(digits_X * 2), "linear"),
    ]:
        estimator = make_estimator(output_activation="auto").fit(X)
        assert estimator._state.spec.output_activation == expected
    with config_context(memory_budget=digits_X.nbytes // 4):  # streamed, block by block
        estimator = make_estimator(output_activation="auto").fit(digits_X * 2)
    assert estimator._state.spec.output_activation == "linear"


def test_auto_output_activation_is_kept_by_continued_fits(make_estimator, digits_X):
    X = digits_X
    estimator = make_estimator(output_activation="auto").fit(X)
    estimator.partial_fit(X * 4)  # outside [0, 1]: the sigmoid network keeps training
    assert estimator._state.spec.output_activation == "sigmoid"
    assert estimator.get_params()["output_activation"] == "auto"


def test_n_components_none_says_what_to_pass_instead(make_estimator, small_X):
    with pytest.raises(ValueError, match="pass n_components as an int"):
        make_estimator(n_components=None).fit(small_X)


# --------------------------------------------------- PCA's fitted attributes


def test_pca_attributes_count_rows_and_means_across_partial_fit(make_estimator, digits_X):
    first, second = digits_X[:120], digits_X[120:] * 0.5
    estimator = make_estimator(n_components=3).fit(first)
    assert estimator.n_components_ == 3
    assert estimator.n_samples_seen_ == 120
    assert_allclose(estimator.mean_, first.mean(axis=0))
    estimator.partial_fit(second)
    assert estimator.n_samples_seen_ == len(digits_X)
    assert_allclose(estimator.mean_, np.vstack([first, second]).mean(axis=0))
    estimator.fit(second)  # a new network starts the count again
    assert estimator.n_samples_seen_ == len(second)
    assert_allclose(estimator.mean_, second.mean(axis=0))


def test_pca_attributes_of_streamed_data_and_after_saving(make_estimator, digits_X, tmp_path):
    with config_context(memory_budget=digits_X.nbytes // 4):
        estimator = make_estimator(warm_start=True).fit(digits_X).fit(digits_X[:50])
    assert estimator.n_samples_seen_ == len(digits_X) + 50
    expected = np.vstack([digits_X, digits_X[:50]]).mean(axis=0)
    assert_allclose(estimator.mean_, expected)
    restored = save_load_round_trip(estimator)
    assert restored.n_samples_seen_ == estimator.n_samples_seen_
    assert_array_equal(restored.mean_, estimator.mean_)


def test_noise_variance_and_r2_describe_the_training_reconstruction(make_estimator, digits_X):
    estimator = make_estimator(n_components=4).fit(digits_X)
    error = np.mean((estimator.inverse_transform(estimator.transform(digits_X)) - digits_X) ** 2)
    r2 = 1 - error / digits_X.var(axis=0).mean()
    assert_allclose(estimator.reconstruction_r2_, r2, rtol=1e-4)
    if isinstance(estimator, VAETransformer):  # the learned observation variance
        network = estimator._state.network
        variance = float(torch.exp(network.log_variance.detach()))
        expected = variance * float(network.output_layer.scale) ** 2
        assert_allclose(estimator.noise_variance_, expected, rtol=1e-6)
    else:
        assert_allclose(estimator.noise_variance_, error, rtol=1e-4)


def test_a_linear_autoencoder_explains_what_pca_explains(make_autoencoder, digits_X):
    from sklearn.decomposition import PCA

    linear = make_autoencoder(
        n_components=5, hidden_layer_sizes=(), max_epochs=1, output_activation="linear"
    ).fit(digits_X)
    pca = PCA(5).fit(digits_X)
    assert_allclose(linear.reconstruction_r2_, pca.explained_variance_ratio_.sum(), atol=1e-4)


# ------------------------------------------------------ early_stopping="auto"


def test_auto_early_stopping_holds_out_data_only_for_large_fits(make_estimator, monkeypatch):
    monkeypatch.setattr("skae._params.AUTO_EARLY_STOPPING_ROWS", 100)
    X = np.random.RandomState(0).uniform(size=(150, 6))
    large = make_estimator(early_stopping="auto", max_epochs=3).fit(X)
    assert len(large.validation_loss_curve_) == large.n_iter_
    same = make_estimator(early_stopping=True, max_epochs=3).fit(X)
    assert_array_equal(large.transform(X), same.transform(X))
    small = make_estimator(early_stopping="auto", max_epochs=3).fit(X[:99])
    assert small.validation_loss_curve_ is None
    small.partial_fit(X)  # "auto" never holds out data in partial_fit
    assert small.validation_loss_curve_ is None


def test_auto_early_stopping_is_off_with_the_neighbour_objective(make_estimator, monkeypatch):
    monkeypatch.setattr("skae._params.AUTO_EARLY_STOPPING_ROWS", 100)
    X = np.random.RandomState(0).uniform(size=(150, 6))
    estimator = make_estimator(early_stopping="auto", neighbor_weight=1.0, n_neighbors=5)
    assert estimator.fit(X).validation_loss_curve_ is None


def test_the_training_summary_of_large_data_reads_a_bounded_spread_sample(make_estimator):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(5000, 8)) @ rng.normal(size=(8, 8))  # above the 2,048-row bound
    estimator = make_estimator(n_components=3, early_stopping=False).fit(X)
    error = np.mean((estimator.inverse_transform(estimator.transform(X)) - X) ** 2)
    r2 = 1 - error / X.var(axis=0).mean()
    assert estimator.reconstruction_r2_ == pytest.approx(r2, abs=0.02)
