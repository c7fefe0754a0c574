"""skae.inspection: Jacobians, loadings and attributions of fitted models."""

import copy
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from numpy.testing import assert_allclose, assert_array_equal
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skae.inspection
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


# --------------------------------------------------- the model is left as it was

INSPECTIONS = {
    "encoder_jacobian": encoder_jacobian,
    "decoder_jacobian": decoder_jacobian,
    "code_loadings": code_loadings,
    "code_attributions": lambda model, X, **kw: code_attributions(model, X, n_steps=3, **kw),
}
# The per-block step each one computes with: where a failure is injected.
BLOCK_STEPS = {
    "encoder_jacobian": "_encoder_jacobians",
    "decoder_jacobian": "_decoder_jacobians",
    "code_loadings": "_decoder_jacobians",
    "code_attributions": "_encoder_jacobians",
}


@pytest.fixture(scope="module", params=[np.float32, np.float64], ids=["float32", "float64"])
def trained(request, _digits):
    """One fitted model of each kind per dtype: tests inspect (and train) deep copies."""
    X = _digits[0][:120].astype(request.param)
    return {kind: MODELS[kind]().fit(X) for kind in sorted(MODELS)}, X


def state_of(model):
    """What inspection must leave alone: weights and buffers, flags, modes, global RNGs."""
    network = model._state.network
    return {
        "state_dict": {name: value.clone() for name, value in network.state_dict().items()},
        "requires_grad": [parameter.requires_grad for parameter in network.parameters()],
        "training": [module.training for module in network.modules()],
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": np.random.get_state(),  # noqa: NPY002  (the global state is the point)
    }


def assert_same_state(model, before):
    after = state_of(model)
    assert after["state_dict"].keys() == before["state_dict"].keys()
    for name, value in before["state_dict"].items():
        assert after["state_dict"][name].dtype == value.dtype, name
        assert torch.equal(after["state_dict"][name], value), name
    assert after["requires_grad"] == before["requires_grad"]
    assert after["training"] == before["training"]
    assert torch.equal(after["torch_rng"], before["torch_rng"])
    for now, then in zip(after["numpy_rng"], before["numpy_rng"], strict=True):
        assert_array_equal(now, then)


def assert_still_trains(model, X):
    n_iter = model.n_iter_
    model.partial_fit(X)
    assert model.n_iter_ == n_iter + 1
    model.set_params(warm_start=True, max_epochs=1).fit(X)


@pytest.mark.parametrize("function", sorted(INSPECTIONS))
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_inspection_leaves_the_model_as_it_was_and_trainable(trained, kind, function):
    models, X = trained
    model = copy.deepcopy(models[kind])
    before = state_of(model)

    INSPECTIONS[function](model, X[:20])

    assert_same_state(model, before)
    assert_still_trains(model, X)


@pytest.mark.parametrize("function", sorted(INSPECTIONS))
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_inspection_that_fails_midway_leaves_the_model_as_it_was(
    trained, kind, function, monkeypatch
):
    # The second block finds the network it is given trained, tracking
    # gradients and with a weight moved, then fails: none of it may reach the model.
    models, X = trained
    model = copy.deepcopy(models[kind])
    before = state_of(model)
    step = getattr(skae.inspection, BLOCK_STEPS[function])
    calls = []

    def failing(network, rows):
        calls.append(len(rows))
        if len(calls) == 1:
            return step(network, rows)
        network.train().requires_grad_(True)
        with torch.no_grad():
            next(network.parameters()).add_(1.0)
        raise RuntimeError("injected failure")

    monkeypatch.setattr(skae.inspection, BLOCK_STEPS[function], failing)
    with pytest.raises(RuntimeError, match="injected failure"):
        INSPECTIONS[function](model, X[:20], batch_size=10)

    assert len(calls) == 2
    assert_same_state(model, before)
    monkeypatch.undo()
    assert_still_trains(model, X)


@pytest.mark.parametrize("function", sorted(INSPECTIONS))
def test_inspection_keeps_the_models_own_modes(trained, function):
    # Whatever modes the network is in, inspection computes in evaluation
    # mode on its own copy and leaves the model's modes as they were.
    models, X = trained
    model = copy.deepcopy(models["conv"])
    network = model._state.network
    network.train()
    reference = INSPECTIONS[function](copy.deepcopy(models["conv"]), X[:10])
    before = state_of(model)

    result = INSPECTIONS[function](model, X[:10])

    assert_same_state(model, before)
    assert all(module.training for module in network.modules())
    for got, expected in zip(
        result.values() if isinstance(result, dict) else [result],
        reference.values() if isinstance(reference, dict) else [reference],
        strict=True,
    ):
        assert_array_equal(got, expected)


def test_inspection_warns_nothing_in_a_fresh_process():
    # torch.func.jacfwd loads, once per process, decompositions that warn that
    # torch.jit.script is deprecated (torch 2.13): only a fresh process shows it.
    script = textwrap.dedent(
        """
        import warnings
        import numpy as np
        from sklearn.datasets import load_digits
        from skae import AutoencoderTransformer, VAETransformer
        from skae.inspection import (
            code_attributions, code_loadings, decoder_jacobian, encoder_jacobian)

        X = load_digits().data[:60] / 16
        fast = dict(hidden_layer_sizes=(8,), max_epochs=1, random_state=0, device="cpu")
        models = [
            AutoencoderTransformer(n_components=2, **fast),
            VAETransformer(n_components=2, **fast),
            AutoencoderTransformer(n_components=2, architecture="conv", input_shape=(1, 8, 8),
                                   conv_channels=(2,), batch_norm=True, **fast),
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            models = [model.fit(X) for model in models]
        warnings.simplefilter("error")
        for model in models:
            for rows in (X[:5], X[:5].astype(np.float32)):
                code_loadings(model, rows)
                encoder_jacobian(model, rows)
                decoder_jacobian(model, rows)
                code_attributions(model, rows, n_steps=2)
        print("quiet")
        """
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script], capture_output=True, text=True, timeout=300
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "quiet" and not done.stderr


@pytest.mark.parametrize("function", sorted(INSPECTIONS))
def test_another_estimator_is_a_type_error(_digits, function):
    X = _digits[0][:50]
    for other in (PCA(n_components=3).fit(X), make_pipeline(StandardScaler(), PCA(3)).fit(X)):
        with pytest.raises(TypeError, match="fitted AutoencoderTransformer or VAETransformer"):
            INSPECTIONS[function](other, X)
    with pytest.raises(TypeError, match="pipe\\[-1\\], pipe\\[:-1\\].transform"):
        INSPECTIONS[function](make_pipeline(StandardScaler(), MODELS["dense"]()).fit(X), X)
    with pytest.raises(NotFittedError):
        INSPECTIONS[function](MODELS["vae"](), X)


@pytest.mark.parametrize(
    "baseline, what",
    [
        ("mean", "the string 'mean'"),
        (b"mean", "the string"),
        (["0.5"] * 64, "values of dtype <U3"),
        ([[0.5] * 64], "shape \\(1, 64\\)"),
        ([0.5, [0.5]], "list"),
        (np.zeros(3), "shape \\(3,\\)"),
        (np.full(64, np.nan), "NaN"),
        ({"a": 1}, "values of dtype object"),
    ],
)
def test_a_baseline_that_is_not_one_row_is_a_value_error(fitted, baseline, what):
    model, X = fitted
    accepted = "baseline must be None \\(the training data's mean\\) or 64 finite numbers"
    with pytest.raises(ValueError, match=f"{accepted}, one per feature; got {what}"):
        code_attributions(model, X[:2], baseline=baseline)


def test_a_baseline_beyond_float32_is_refused_for_float32_rows(fitted):
    model, X = fitted
    huge = np.full(64, 1e39)
    with pytest.raises(ValueError, match="baseline must be finite in torch.float32"):
        code_attributions(model, X[:2].astype(np.float32), baseline=huge)
    assert np.isfinite(code_attributions(model, X[:2], baseline=huge, n_steps=2)).all()
