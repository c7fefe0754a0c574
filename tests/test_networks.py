"""The building blocks of skae._networks, and the network options of both estimators."""

import warnings
from unittest import mock

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.decomposition import PCA
from torch import nn

import skae._initialization
from skae._initialization import (
    data_scale,
    pca_rows,
    pca_sample_rows,
    scales_from_moments,
    whitened_pca,
)
from skae._networks import (
    LinearShortcut,
    SeededDropout,
    constant_paths_skipped,
    dense_encoder_decoder,
    dense_stack,
    drawing_from,
    start_linear_paths,
)

# Tiny fits rarely converge; tests that are about convergence record warnings themselves.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def reconstruction_mse(estimator, X):
    return np.mean((X - estimator.inverse_transform(estimator.transform(X))) ** 2)


def layer_types(module):
    return [type(layer) for layer in module]


# -------------------------------------------------------------- dense_stack


@pytest.mark.parametrize(
    "options, expected",
    [
        ({}, [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]),
        (
            {"dropout": 0.5},
            [nn.Linear, nn.ReLU, SeededDropout, nn.Linear, nn.ReLU, SeededDropout, nn.Linear],
        ),
        (
            {"batch_norm": True},
            [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear],
        ),
        (
            {"dropout": 0.2, "batch_norm": True},
            [nn.Linear, nn.BatchNorm1d, nn.ReLU, SeededDropout] * 2 + [nn.Linear],
        ),
        (
            {"activate_last": True},
            [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear, nn.ReLU],
        ),
        (
            {"dropout": 0.0, "batch_norm": False},
            [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear],
        ),
    ],
)
def test_dense_stack_layers(options, expected):
    stack = dense_stack((7, 8, 4, 3), "relu", **options)

    assert layer_types(stack) == expected
    linears = [layer for layer in stack if isinstance(layer, nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(7, 8), (8, 4), (4, 3)]
    norms = [layer for layer in stack if isinstance(layer, nn.BatchNorm1d)]
    assert [norm.num_features for norm in norms] == ([8, 4] if options.get("batch_norm") else [])
    assert all(d.p == options["dropout"] for d in stack if isinstance(d, SeededDropout))
    assert stack(torch.zeros(5, 7)).shape == (5, 3)


def test_dense_stack_of_one_layer_is_linear():
    assert layer_types(dense_stack((5, 2), "tanh", dropout=0.5, batch_norm=True)) == [nn.Linear]


@pytest.mark.parametrize("activation", ["tanh", "gelu", "selu"])
def test_dense_stack_uses_the_named_activation(activation):
    stack = dense_stack((3, 4, 2), activation)

    assert type(stack[1]).__name__.lower() == activation


# ------------------------------------------------------------ SeededDropout


def dropout_output(p, seed, x):
    layer = SeededDropout(p).train()
    layer.generator = torch.Generator().manual_seed(seed)
    return layer(x)


def test_seeded_dropout_draws_its_mask_from_the_generator():
    x = torch.ones(200, 50)
    before = torch.get_rng_state()

    first = dropout_output(0.3, 0, x)
    second = dropout_output(0.3, 0, x)
    other = dropout_output(0.3, 1, x)

    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


def test_seeded_dropout_zeroes_a_share_p_and_rescales_the_rest():
    x = torch.ones(200, 50)

    out = dropout_output(0.3, 0, x)

    dropped = (out == 0).float().mean().item()
    assert dropped == pytest.approx(0.3, abs=0.02)
    assert torch.allclose(out[out != 0], torch.tensor(1 / 0.7))


def test_seeded_dropout_is_the_identity_in_eval_mode_or_with_p_zero():
    x = torch.randn(20, 5, generator=torch.Generator().manual_seed(0))
    layer = SeededDropout(0.5).eval()
    layer.generator = torch.Generator().manual_seed(0)

    assert torch.equal(layer(x), x)
    assert torch.equal(SeededDropout(0.0).train()(x), x)
    assert "p=0.5" in repr(layer)


def test_unbound_seeded_dropout_draws_from_the_global_rng():
    x = torch.ones(10, 10)
    layer = SeededDropout(0.5).train()

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        first = layer(x)
        torch.manual_seed(0)
        second = layer(x)
        third = layer(x)

    assert torch.equal(first, second)
    assert not torch.equal(second, third)


def test_drawing_from_binds_every_dropout_layer_for_the_block_only():
    model = dense_stack((4, 8, 8, 2), "relu", dropout=0.5)
    layers = [m for m in model.modules() if isinstance(m, SeededDropout)]
    generator = torch.Generator().manual_seed(0)

    with drawing_from(model, generator):
        assert len(layers) == 2
        assert all(layer.generator is generator for layer in layers)
    assert all(layer.generator is None for layer in layers)

    with pytest.raises(RuntimeError, match="inside"):
        with drawing_from(model, generator):
            raise RuntimeError("inside")
    assert all(layer.generator is None for layer in layers)


# ---------------------------------------------------------- LinearShortcut


def test_linear_shortcut_adds_a_linear_map_without_bias():
    layers = dense_stack((4, 6, 3), "tanh")
    shortcut = LinearShortcut(layers, 4, 3)
    x = torch.randn(10, 4, generator=torch.Generator().manual_seed(0))

    assert shortcut.linear.bias is None
    assert shortcut.linear.weight.shape == (3, 4)
    with torch.no_grad():
        expected = layers(x) + x @ shortcut.linear.weight.T
        assert torch.allclose(shortcut(x), expected)
        # Only the linear path is linear.
        assert not torch.allclose(shortcut(2 * x), 2 * shortcut(x))


def test_start_linear_paths_zeroes_the_nonlinear_last_layers():
    encoder = LinearShortcut(dense_stack((5, 8, 2), "relu"), 5, 2)
    decoder = LinearShortcut(dense_stack((2, 8, 5), "relu"), 2, 5)
    rng = np.random.RandomState(0)
    encoder_weight, decoder_weight = rng.normal(size=(2, 5)), rng.normal(size=(5, 2))
    first_layer = encoder.layers[0].weight.detach().clone()

    start_linear_paths(encoder, decoder, encoder_weight, decoder_weight)

    for body, weight in ((encoder, encoder_weight), (decoder, decoder_weight)):
        assert_allclose(body.linear.weight.detach().numpy(), weight, rtol=1e-6)
        assert torch.count_nonzero(body.layers[-1].weight) == 0
        assert torch.count_nonzero(body.layers[-1].bias) == 0
    # Only the last layer of each nonlinear path is zeroed.
    assert torch.equal(encoder.layers[0].weight, first_layer)
    x = torch.randn(7, 5, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        codes = encoder(x)
        assert_allclose(codes.numpy(), x.numpy() @ encoder_weight.T, rtol=1e-5, atol=1e-6)
        assert_allclose(decoder(codes).numpy(), codes.numpy() @ decoder_weight.T, rtol=1e-5)


def test_start_linear_paths_keeps_a_decoder_weight_of_none():
    encoder = LinearShortcut(dense_stack((5, 8, 2), "relu"), 5, 2)
    decoder = LinearShortcut(dense_stack((2, 8, 5), "relu"), 2, 5)
    decoder_linear = decoder.linear.weight.detach().clone()

    start_linear_paths(encoder, decoder, np.ones((2, 5)), None)

    assert torch.equal(decoder.linear.weight, decoder_linear)
    assert torch.count_nonzero(decoder.layers[-1].weight) == 0


def started_shortcuts(hidden=(8,), activation="relu"):
    encoder = LinearShortcut(dense_stack((5, *hidden, 2), activation), 5, 2)
    decoder = LinearShortcut(dense_stack((2, *hidden[::-1], 5), activation), 2, 5)
    rng = np.random.RandomState(0)
    start_linear_paths(
        encoder, decoder, rng.normal(size=(2, 5)), rng.normal(size=(5, 2)), rng.normal(size=5)
    )
    return encoder, decoder


def calls_of_first_layers(*bodies):
    calls = []
    for body in bodies:
        body.layers[0].register_forward_hook(lambda *args: calls.append(1))
    return calls


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_a_starting_network_is_evaluated_by_its_linear_paths_alone_bit_for_bit(activation):
    encoder, decoder = started_shortcuts((8, 6), activation)
    calls = calls_of_first_layers(encoder, decoder)
    x = torch.randn(50, 5, generator=torch.Generator().manual_seed(0)) * 1e3

    with torch.no_grad():
        expected = decoder(encoder(x))
        assert len(calls) == 2
        with constant_paths_skipped(nn.Sequential(encoder, decoder)):
            skipped = decoder(encoder(x))
        assert len(calls) == 2
        assert torch.equal(skipped, expected)
        # The decoder's bounded-output bias is the constant it adds.
        assert torch.count_nonzero(decoder.layers[-1].bias) == 5
    assert encoder.constant_output is None and decoder.constant_output is None


def test_paths_that_depend_on_the_input_are_not_skipped():
    encoder, decoder = started_shortcuts()
    with torch.no_grad():
        decoder.layers[-1].weight[0, 0] = 1e-30
    calls = calls_of_first_layers(encoder, decoder)
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))

    with torch.no_grad(), constant_paths_skipped(nn.Sequential(encoder, decoder)):
        decoder(encoder(x))
        assert encoder.constant_output is not None
        assert decoder.constant_output is None

    assert len(calls) == 1  # the decoder's layers ran, the encoder's did not


def test_skipping_ends_with_the_block_even_on_an_error():
    encoder, decoder = started_shortcuts()
    with pytest.raises(RuntimeError, match="inside"), constant_paths_skipped(encoder):
        assert encoder.constant_output is not None
        raise RuntimeError("inside")
    assert encoder.constant_output is None


def test_skipping_ends_even_when_setting_it_up_fails(monkeypatch):
    encoder, decoder = started_shortcuts()
    network = nn.Sequential(encoder, decoder)
    monkeypatch.setattr(decoder, "layers_constant", mock.Mock(side_effect=KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt), constant_paths_skipped(network):
        pass
    assert encoder.constant_output is None


def test_no_path_is_skipped_where_gradients_flow():
    encoder, _ = started_shortcuts()
    calls = calls_of_first_layers(encoder)
    with constant_paths_skipped(encoder):
        encoder(torch.ones(2, 5)).sum().backward()
    assert len(calls) == 1
    assert encoder.layers[-1].weight.grad is not None


@pytest.mark.parametrize(
    "linear_shortcut, hidden, expected",
    [(True, (8,), True), (True, (), False), (False, (8,), False)],
)
def test_dense_encoder_decoder_adds_shortcuts_only_with_hidden_layers(
    linear_shortcut, hidden, expected
):
    encoder, decoder = dense_encoder_decoder(
        6,
        hidden,
        2,
        activation="relu",
        output_activation="linear",
        center=np.zeros(6),
        scale=1.0,
        encoder_outputs=4,
        linear_shortcut=linear_shortcut,
    )

    assert isinstance(encoder.body, LinearShortcut) is expected
    assert isinstance(decoder.body, LinearShortcut) is expected
    assert encoder(torch.zeros(3, 6)).shape == (3, 4)
    assert decoder(torch.zeros(3, 2)).shape == (3, 6)


# ------------------------------------------------------------ whitened_pca


@pytest.fixture
def correlated_X():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(150, 3)) @ rng.normal(size=(3, 6)) + 0.1 * rng.normal(size=(150, 6))
    return X * np.array([1, 2, 5, 0.5, 10, 1]) + 3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_rows", [150, 10_000])  # one block of rows, and several
def test_data_scale_takes_numpys_moments_bit_for_bit_whatever_the_layout(
    correlated_X, dtype, n_rows, monkeypatch
):
    X = np.resize(correlated_X * 1e3 + 1e6, (n_rows, 6)).astype(dtype)
    monkeypatch.setattr(skae._initialization, "_SUM_BLOCK_VALUES", 6 * 1000)
    moments = X.mean(axis=0, dtype=np.float64), X.var(axis=0, dtype=np.float64)

    expected = scales_from_moments(*moments)
    for layout in (X, np.asfortranarray(X)):
        for got, want in zip(data_scale(layout), expected, strict=True):
            assert_array_equal(got, want)


def test_pca_start_sample_grows_with_the_components_between_4m_and_16m_values():
    assert pca_sample_rows(784, 2) == (1 << 22) // 784  # 5,349 rows: the 4M floor
    assert pca_sample_rows(784, 64) == (1 << 23) // 784  # 2**17 values a component
    assert pca_sample_rows(784, 500) == (1 << 24) // 784  # the 16M ceiling
    assert pca_sample_rows(10**6, 2) == 100  # at least 100 rows
    X = np.arange(6000 * 784, dtype=np.float32).reshape(6000, 784)
    sample = pca_rows(X, 2, seed=0)
    assert sample.shape == (5349, 784)
    assert np.all(np.diff(sample[:, 0]) > 0)  # rows kept in their order
    assert_array_equal(sample, pca_rows(X, 2, seed=0))
    assert pca_rows(X, 64, seed=0) is X  # 64 components: 10,699 rows, more than X has


def test_whitened_pca_gives_unit_variance_codes_that_reconstruct_like_pca(correlated_X):
    X = correlated_X
    center, scale, input_scales = data_scale(X)

    encoder_weight, decoder_weight, residual = whitened_pca(X, center, scale, input_scales, 2)

    assert encoder_weight.shape == (2, 6)
    assert decoder_weight.shape == (6, 2)
    codes = (X - center) / input_scales @ encoder_weight.T
    assert_allclose(codes.var(axis=0, ddof=1), [1, 1], rtol=1e-8)
    assert_allclose(codes.mean(axis=0), [0, 0], atol=1e-10)
    reconstruction = center + scale * codes @ decoder_weight.T
    pca = PCA(n_components=2).fit(X)
    # PCA in the scaled space is PCA in the data's units: one common scale.
    assert_allclose(reconstruction, pca.inverse_transform(pca.transform(X)), atol=1e-8)
    assert_allclose(residual, np.mean(((reconstruction - X) / scale) ** 2), rtol=1e-8)


def test_whitened_pca_leaves_codes_beyond_the_rank_at_zero(correlated_X):
    X = correlated_X[:, :2] @ np.array([[1.0, 0, 2, 1], [0, 1, 1, -1]])  # rank 2 in 4 features
    center, scale, input_scales = data_scale(X)

    encoder_weight, decoder_weight, _ = whitened_pca(X, center, scale, input_scales, 6)

    assert encoder_weight.shape == (6, 4)
    assert np.all(np.any(encoder_weight[:2] != 0, axis=1))
    assert np.all(np.any(decoder_weight[:, :2] != 0, axis=0))
    assert np.all(encoder_weight[2:] == 0)
    assert np.all(decoder_weight[:, 2:] == 0)


@pytest.mark.parametrize("n_rows", [1, 20])
def test_whitened_pca_of_constant_data_is_zero(n_rows):
    X = np.full((n_rows, 4), 2.5)
    center, scale, input_scales = data_scale(X)

    encoder_weight, decoder_weight, _ = whitened_pca(X, center, scale, input_scales, 2)

    assert not np.any(encoder_weight)
    assert not np.any(decoder_weight)


# ---------------------------------------------- estimators start as PCA


@pytest.mark.parametrize("n_components", [2, 5])
def test_linear_shortcut_starts_as_pca(make_estimator, digits_middle_X, n_components):
    pca = PCA(n_components=n_components).fit(digits_middle_X)
    pca_mse = reconstruction_mse(pca, digits_middle_X)

    # A step too small to move the weights: the reconstruction is the start's.
    estimator = make_estimator(
        n_components=n_components,
        learning_rate=1e-9,
        max_epochs=1,
        optimizer="sgd",
        output_activation="linear",
    ).fit(digits_middle_X)

    assert reconstruction_mse(estimator, digits_middle_X) == pytest.approx(pca_mse, rel=1e-3)


def test_without_linear_shortcut_the_start_is_not_pca(make_estimator, digits_middle_X):
    pca_mse = reconstruction_mse(PCA(n_components=2).fit(digits_middle_X), digits_middle_X)

    estimator = make_estimator(
        linear_shortcut=False, learning_rate=1e-9, max_epochs=1, optimizer="sgd"
    ).fit(digits_middle_X)

    assert reconstruction_mse(estimator, digits_middle_X) > 1.2 * pca_mse


def test_trained_network_with_linear_shortcut_improves_on_pca(make_autoencoder, digits_middle_X):
    pca_mse = reconstruction_mse(PCA(n_components=2).fit(digits_middle_X), digits_middle_X)

    ae = make_autoencoder(max_epochs=20, learning_rate=3e-3).fit(digits_middle_X)

    assert reconstruction_mse(ae, digits_middle_X) < pca_mse


def test_overcomplete_code_fits(make_estimator, small_X):
    estimator = make_estimator(n_components=10).fit(small_X)

    codes = estimator.transform(small_X)

    assert codes.shape == (60, 10)
    assert np.all(np.isfinite(codes))
    assert estimator.inverse_transform(codes).shape == (60, 6)
    assert np.isfinite(estimator.score(small_X))


def test_overcomplete_autoencoder_starts_as_the_identity(make_autoencoder, small_X):
    ae = make_autoencoder(
        n_components=10, learning_rate=1e-9, optimizer="sgd", output_activation="linear"
    ).fit(small_X)

    assert reconstruction_mse(ae, small_X) < 1e-8 * small_X.var()


def test_constant_data_fits_without_nan(make_estimator):
    X = np.full((30, 4), 3.0)

    estimator = make_estimator().fit(X)

    assert np.all(np.isfinite(estimator.loss_curve_))
    assert np.all(np.isfinite(estimator.transform(X)))
    assert_allclose(estimator.inverse_transform(estimator.transform(X)), X, rtol=1e-5)
    assert np.all(np.isfinite(estimator.score_samples(X)))


def test_constant_data_fits_without_runtime_warnings(make_autoencoder):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        make_autoencoder().fit(np.full((30, 4), 3.0))


# --------------------------------------------------------------- dropout


def test_dropout_changes_training_reproducibly_without_global_rng(make_estimator, digits_middle_X):
    plain = make_estimator().fit(digits_middle_X).transform(digits_middle_X)
    before = torch.get_rng_state()

    first = make_estimator(dropout=0.3).fit(digits_middle_X)
    second = make_estimator(dropout=0.3).fit(digits_middle_X)

    assert torch.equal(torch.get_rng_state(), before)
    codes = first.transform(digits_middle_X)
    assert not np.allclose(codes, plain)
    assert_array_equal(second.transform(digits_middle_X), codes)
    assert second.loss_curve_ == first.loss_curve_
    # No dropout at transform time.
    assert_array_equal(first.transform(digits_middle_X), codes)


def test_dropout_masks_depend_on_random_state(make_estimator, digits_middle_X):
    # The same initial weights (PCA start) but different masks give different fits.
    first = make_estimator(dropout=0.3, random_state=0).fit(digits_middle_X)
    second = make_estimator(dropout=0.3, random_state=1).fit(digits_middle_X)

    assert first.loss_curve_ != second.loss_curve_


# ------------------------------------------------------------ batch norm


def test_batch_norm_fits_and_transforms_deterministically(make_estimator, digits_middle_X):
    estimator = make_estimator(batch_norm=True).fit(digits_middle_X)

    norms = [m for m in estimator.encoder_.modules() if isinstance(m, nn.BatchNorm1d)]
    assert len(norms) == 1
    # Training updated the running statistics.
    assert not torch.all(norms[0].running_var == 1)
    codes = estimator.transform(digits_middle_X)
    assert np.all(np.isfinite(codes))
    assert_array_equal(estimator.transform(digits_middle_X), codes)
    # Evaluation mode: one row is encoded as it is within the whole batch.
    assert_allclose(estimator.transform(digits_middle_X[:1]), codes[:1], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_bounded_start_matches_a_float64_least_squares_fit(activation):
    # The float32 normal equations on the device give the decoder start of a
    # float64 lstsq to within float32 rounding, codes beyond the rank included.
    from skae._initialization import bounded_decoder_start

    rng = np.random.RandomState(0)
    # Rank 3: three columns, repeated.
    X = (1 / (1 + np.exp(-rng.normal(size=(400, 3)))))[:, [0, 1, 2, 0, 1, 2, 0, 1]]
    if activation == "tanh":
        X = 2 * X - 1
    center, scale, input_scales = data_scale(X)
    encoder_weight, _, _ = whitened_pca(X, center, scale, input_scales, 5)

    weight, bias = bounded_decoder_start(
        X, center, input_scales, encoder_weight, activation, device="cpu"
    )

    codes = ((X - center) / input_scales) @ encoder_weight.T
    margin = 0.01
    if activation == "sigmoid":
        clipped = np.clip(X, margin, 1 - margin)
        target = np.log(clipped) - np.log1p(-clipped)
    else:
        target = np.arctanh(np.clip(X, -1 + 2 * margin, 1 - 2 * margin))
    design = np.hstack([codes, np.ones((len(codes), 1))])
    expected, *_ = np.linalg.lstsq(design, target, rcond=None)
    fitted = design @ np.vstack([weight.T.numpy(), bias.numpy()])
    assert_allclose(fitted, design @ expected, atol=1e-4 * np.abs(target).max())
    assert_allclose(weight[:, 3:].numpy(), 0, atol=1e-6)  # codes beyond the data's rank


def test_a_real_direction_of_small_variance_gets_its_code():
    # Features in very different units share one scale: a direction of 1e-6
    # of the total variance is real, and must not start as a dead code.
    from skae import AutoencoderTransformer

    rng = np.random.RandomState(0)
    X = np.c_[rng.normal(size=(500, 1)) * 1000, rng.normal(size=(500, 1))]
    model = AutoencoderTransformer(
        n_components=2, hidden_layer_sizes=(), max_epochs=3, random_state=0, device="cpu"
    ).fit(X)
    assert_allclose(model.transform(X).std(axis=0), 1, rtol=0.05)
    assert np.mean((model.inverse_transform(model.transform(X)) - X)[:, 1] ** 2) < 1e-6
