"""How a network starts: a bounded output starts near PCA wherever the data lies."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from skae import AutoencoderTransformer
from skae._initialization import (
    _feature_errors,
    _regressed_decoder,
    _start_codes,
    closest_bounded_decoder,
    data_scale,
    linearized_decoder_start,
    whitened_pca,
)
from skae.metrics import reconstruction_error

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.mark.parametrize(
    "activation, low, high",
    [
        ("sigmoid", 0.0, 1e-3),
        ("sigmoid", 0.999, 1.0),
        ("sigmoid", 0.0, 1.0),
        ("tanh", 0.0, 1e-3),
        ("tanh", 0.0, 1.0),
        ("tanh", -1.0, 1.0),
    ],
)
def test_a_bounded_output_starts_near_pca_wherever_the_data_lies(digits_X, activation, low, high):
    # Clipped 1% inside the range, data in [0, 0.001] once started 1,800
    # times PCA's error away (every value decoded to about 0.01).
    X = low + (high - low) * digits_X
    start = AutoencoderTransformer(
        hidden_layer_sizes=(16,),
        max_epochs=1,
        learning_rate=1e-300,
        output_activation=activation,
        random_state=0,
        device="cpu",
    ).fit(X)

    assert reconstruction_error(start, X) <= 1.15 * reconstruction_error(PCA(2).fit(X), X)


@pytest.mark.parametrize("activation, low, high", [("sigmoid", 0.0, 1.0), ("tanh", 0.0, 1e-3)])
def test_each_feature_starts_from_the_better_of_two_decoders(digits_X, activation, low, high):
    X = low + (high - low) * digits_X
    scales = data_scale(X)
    encoder_weight, decoder_weight, _ = whitened_pca(X, *scales, 3)
    rows, codes = _start_codes(X, scales[0], scales[2], encoder_weight, "cpu")
    candidates = [
        linearized_decoder_start(scales[0], scales[1], decoder_weight, activation, "cpu"),
        _regressed_decoder(rows.clone(), codes, activation),
    ]

    chosen = closest_bounded_decoder(X, scales, encoder_weight, decoder_weight, activation, "cpu")

    errors = [_feature_errors(rows, codes, *c, activation) for c in (chosen, *candidates)]
    assert torch.equal(errors[0], torch.minimum(errors[1], errors[2]))
    assert (errors[1] < errors[2]).any() and (errors[2] < errors[1]).any()  # both serve


def test_the_linearized_start_is_pca_for_small_codes():
    # Where the codes are small the bounded output is PCA's decoder to first order.
    rng = np.random.RandomState(0)
    center = rng.uniform(0.2, 0.8, size=5)
    decoder_weight = rng.normal(size=(5, 2))
    weight, bias = linearized_decoder_start(center, 0.5, decoder_weight, "sigmoid", "cpu")
    codes = torch.tensor([[1e-3, -2e-3]])

    output = torch.sigmoid(codes @ weight.T + bias).double().numpy()[0]
    expected = center + 0.5 * decoder_weight @ codes.double().numpy()[0]
    np.testing.assert_allclose(output, expected, atol=1e-6)
