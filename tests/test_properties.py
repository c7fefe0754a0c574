"""Properties of AutoencoderTransformer over randomly drawn data and settings."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_array_equal

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FEW = settings(max_examples=15, deadline=None)


@st.composite
def datasets(draw):
    """A finite float32 or float64 matrix of 2..40 rows and 1..12 columns."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = (draw(st.integers(2, 40)), draw(st.integers(1, 12)))
    elements = st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False, width=32)
    return draw(arrays(dtype, shape, elements=elements))


@FEW
@given(X=datasets(), n_components=st.integers(1, 5))
def test_output_shapes_and_dtypes(make_autoencoder, X, n_components):
    n_samples, n_features = X.shape
    ae = make_autoencoder(n_components=n_components, max_epochs=2).fit(X)

    codes = ae.transform(X)
    reconstructions = ae.inverse_transform(codes)
    scores = ae.score_samples(X)

    assert codes.shape == (n_samples, n_components)
    assert codes.dtype == X.dtype
    assert reconstructions.shape == (n_samples, n_features)
    assert reconstructions.dtype == X.dtype
    assert scores.shape == (n_samples,)
    assert np.all(np.isfinite(codes))
    assert np.all(np.isfinite(reconstructions))
    assert np.all(scores <= 0)
    assert len(ae.get_feature_names_out()) == n_components


@FEW
@given(X=datasets(), seed=st.integers(0, 2**31 - 2))
def test_same_seed_gives_same_transform(make_autoencoder, X, seed):
    first = make_autoencoder(max_epochs=2, random_state=seed).fit(X)
    second = make_autoencoder(max_epochs=2, random_state=seed).fit(X)

    assert_array_equal(first.transform(X), second.transform(X))
    assert first.loss_curve_ == second.loss_curve_


@FEW
@given(X=datasets(), codes_seed=st.integers(0, 1000))
def test_inverse_transform_of_any_codes_has_the_data_shape(make_autoencoder, X, codes_seed):
    ae = make_autoencoder(n_components=3, max_epochs=2).fit(X)
    n_codes = codes_seed % 7 + 1
    codes = np.random.RandomState(codes_seed).normal(size=(n_codes, 3)).astype(X.dtype)

    reconstructions = ae.inverse_transform(codes)

    assert reconstructions.shape == (n_codes, X.shape[1])
    assert reconstructions.dtype == X.dtype


@FEW
@given(X=datasets())
def test_inputs_are_not_modified(make_autoencoder, X):
    before = X.copy()
    ae = make_autoencoder(max_epochs=2)

    ae.fit(X)
    assert_array_equal(X, before)
    codes = ae.transform(X)
    assert_array_equal(X, before)
    ae.score(X)
    assert_array_equal(X, before)
    ae.partial_fit(X)
    assert_array_equal(X, before)

    codes_before = codes.copy()
    ae.inverse_transform(codes)
    assert_array_equal(codes, codes_before)


@pytest.fixture(scope="module")
def unit_free_fits():
    """Fits of both estimators on a fixed low-rank dataset, cached by estimator name."""
    return {}


@settings(max_examples=6, deadline=None, derandomize=True)
@given(exponent=st.floats(-8, 8))
@pytest.mark.parametrize("estimator_name", ["autoencoder", "vae"])
def test_stopping_and_codes_do_not_depend_on_the_datas_units(
    make_autoencoder, make_vae, unit_free_fits, estimator_name, exponent
):
    rng = np.random.RandomState(0)
    X = rng.randn(120, 4) @ rng.randn(4, 12) + 0.3 * rng.randn(120, 12)
    make = make_autoencoder if estimator_name == "autoencoder" else make_vae
    params = dict(max_epochs=200, n_iter_no_change=3, tol=1e-3)
    if estimator_name not in unit_free_fits:
        unit_free_fits[estimator_name] = make(**params).fit(X)
    reference = unit_free_fits[estimator_name]
    scale = 10.0**exponent

    scaled = make(**params).fit(X * scale)

    assert reference.n_iter_ < 200, "precondition: training stops by itself"
    assert scaled.n_iter_ == reference.n_iter_
    # float32 rounds X and X * scale differently, and training amplifies that
    # a little: the codes agree to 1% (not to 20%, as when the VAE's
    # objective carried the data's units).
    codes = reference.transform(X)
    np.testing.assert_allclose(scaled.transform(X * scale), codes, atol=1e-2 * np.abs(codes).max())
