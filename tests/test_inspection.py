"""skae.inspection: Jacobians, loadings and attributions of fitted models."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderTransformer, VAETransformer
from skae.inspection import (
    code_attributions,
    code_loadings,
    decoder_jacobian,
    encoder_jacobian,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FAST = dict(hidden_layer_sizes=(16,), max_epochs=3, batch_size=32, random_state=0, device="cpu")
MODELS = {
    "dense": lambda: AutoencoderTransformer(n_components=3, **FAST),
    "vae": lambda: VAETransformer(n_components=3, **FAST),
    "conv": lambda: AutoencoderTransformer(
        n_components=3,
        architecture="conv",
        input_shape=(1, 8, 8),
        conv_channels=(4,),
        batch_norm=True,
        **FAST,
    ),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def fitted(request, _digits):
    X = _digits[0][:120]
    return MODELS[request.param]().fit(X), X


def finite_differences(function, point, n_inputs, eps=1e-6):
    """Central differences of ``function`` (rows to rows) at one row: (outputs, inputs)."""
    columns = []
    for j in range(n_inputs):
        step = np.zeros_like(point)
        step[0, j] = eps
        columns.append((function(point + step) - function(point - step))[0] / (2 * eps))
    return np.stack(columns, axis=1)


def test_the_encoder_jacobian_agrees_with_finite_differences(fitted):
    model, X = fitted
    jacobian = encoder_jacobian(model, X[:4])

    assert jacobian.shape == (4, 3, 64) and jacobian.dtype == np.float64
    for i in (0, 3):
        expected = finite_differences(model.transform, X[i : i + 1], 64)
        assert_allclose(jacobian[i], expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


def test_the_decoder_jacobian_agrees_with_finite_differences(fitted):
    model, X = fitted
    jacobian = decoder_jacobian(model, X[:4])

    assert jacobian.shape == (4, 3, 64)
    codes = model.transform(X[:4])
    for i in (0, 3):
        expected = finite_differences(model.inverse_transform, codes[i : i + 1], 3).T
        assert_allclose(jacobian[i], expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


def test_float32_in_float32_out_and_batches_do_not_matter(fitted):
    model, X = fitted
    whole = encoder_jacobian(model, X[:10])

    assert encoder_jacobian(model, X[:10].astype(np.float32)).dtype == np.float32
    assert_array_equal(encoder_jacobian(model, X[:10]), whole)  # deterministic
    # Other batches run other kernels: equal up to rounding.
    assert_allclose(encoder_jacobian(model, X[:10], batch_size=3), whole, rtol=1e-12, atol=1e-14)
    assert_allclose(encoder_jacobian(model, sp.csr_matrix(X[:10])), whole, rtol=1e-12, atol=1e-14)


def test_attributions_add_up_to_the_code_difference(fitted):
    model, X = fitted
    attributions = code_attributions(model, X[:5], n_steps=100)
    baseline_code = model.transform(model.mean_[None])

    assert attributions.shape == (5, 3, 64)
    gaps = model.transform(X[:5]) - baseline_code
    assert_allclose(attributions.sum(axis=2), gaps, atol=1e-3 * np.abs(gaps).max())


def test_attributions_of_a_linear_encoder_are_exact_with_one_step(_digits):
    X = _digits[0][:120]
    linear = AutoencoderTransformer(**{**FAST, "hidden_layer_sizes": ()}, n_components=4).fit(X)
    baseline = X[50]
    attributions = code_attributions(linear, X[:5], baseline=baseline, n_steps=1)

    gaps = linear.transform(X[:5]) - linear.transform(baseline[None])
    assert_allclose(attributions.sum(axis=2), gaps, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("hidden_layer_sizes", [(), (16,)])
def test_the_pca_starts_decoder_loadings_span_pcas_subspace(_digits, hidden_layer_sizes):
    # A learning rate of 1e-12 leaves the PCA start as it is (to ~1e-12).
    X = _digits[0][:150]
    model = AutoencoderTransformer(
        n_components=5,
        hidden_layer_sizes=hidden_layer_sizes,
        output_activation="linear",
        learning_rate=1e-12,
        max_epochs=1,
        random_state=0,
        device="cpu",
    ).fit(X)
    loadings = code_loadings(model, X).decoder
    pca = PCA(n_components=5).fit(X)

    assert subspace_angles(loadings.T, pca.components_.T).max() < 1e-4


def test_loadings_read_like_components(_digits):
    X = pd.DataFrame(_digits[0][:120], columns=[f"px{j}" for j in range(64)])
    model = MODELS["dense"]().fit(X)
    loadings = code_loadings(model, X)

    assert loadings.decoder.shape == loadings.encoder.shape == (3, 64)
    assert (loadings.encoder >= 0).all()
    assert_allclose(loadings.encoder_per_std, loadings.encoder * X.to_numpy().std(axis=0))
    assert list(loadings.feature_names[:2]) == ["px0", "px1"]
    assert_array_equal(loadings.component_names, model.get_feature_names_out())
    assert_allclose(loadings.decoder, decoder_jacobian(model, X).mean(axis=0))


def test_a_pipeline_step_is_inspected_on_the_steps_before_it(_digits):
    X = _digits[0][:120]
    pipe = make_pipeline(StandardScaler(), AutoencoderTransformer(n_components=2, **FAST)).fit(X)

    jacobian = encoder_jacobian(pipe[-1], pipe[:-1].transform(X[:3]))

    assert jacobian.shape == (3, 2, 64)
    assert_array_equal(code_loadings(pipe[-1], pipe[:-1].transform(X)).feature_names[:1], ["x0"])


def test_bad_input_is_a_clear_error(fitted):
    model, X = fitted
    with pytest.raises(NotFittedError):
        encoder_jacobian(AutoencoderTransformer(), X)
    with pytest.raises(ValueError, match="features"):
        decoder_jacobian(model, X[:, :10])
    with pytest.raises(ValueError, match="batch_size"):
        encoder_jacobian(model, X, batch_size=0)
    with pytest.raises(ValueError, match="n_steps"):
        code_attributions(model, X, n_steps=0)
    with pytest.raises(ValueError, match="baseline"):
        code_attributions(model, X, baseline=np.zeros(3))


def test_jacobians_too_large_for_memory_are_refused(fitted, monkeypatch):
    import skae.inspection

    model, X = fitted
    monkeypatch.setattr(skae.inspection, "available_memory", lambda: 1000)
    with pytest.raises(ValueError, match="pass fewer rows"):
        encoder_jacobian(model, X)
