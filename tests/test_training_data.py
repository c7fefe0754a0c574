"""A fitting call's data: what "auto" makes of its range."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer, config_context
from skae._readers import ArrayReader
from skae._training_data import resolved_output_activation, value_range
from skae.metrics import reconstruction_error


@pytest.mark.parametrize(
    "scale, shift, expected",
    [
        (1.0, 0.0, "sigmoid"),  # images scaled to [0, 1]
        (0.6, 0.4, "sigmoid"),  # [0.4, 1]: most of the range
        (0.3, 0.0, "linear"),  # [0, 0.3]
        (1e-3, 0.0, "linear"),  # [0, 0.001]
        (1e-3, 0.999, "linear"),  # [0.999, 1]
        (1.0, -0.5, "linear"),  # signed
        (2.0, 0.0, "linear"),  # beyond 1
    ],
)
def test_auto_gives_a_sigmoid_only_to_data_spread_over_the_unit_interval(
    digits_X, scale, shift, expected
):
    X = digits_X * scale + shift
    for data in (X, ArrayReader(X), sp.csr_matrix(X)):
        assert resolved_output_activation("auto", data) == expected
    assert resolved_output_activation("tanh", X) == "tanh"


def test_the_range_of_sparse_data_counts_its_implicit_zeros(digits_X):
    dense = 0.6 + 0.4 * digits_X  # [0.6, 1], no zeros
    assert value_range(sp.csr_matrix(dense)) == pytest.approx((0.6, 1.0))
    zeros_between = sp.csr_matrix(np.where(digits_X > 0, dense, 0.0))
    assert value_range(zeros_between) == pytest.approx((0.0, 1.0))
    assert resolved_output_activation("auto", sp.csr_matrix(dense)) == "linear"
    assert resolved_output_activation("auto", zeros_between) == "sigmoid"


@pytest.mark.parametrize("random_state", [0, 1])
def test_data_near_zero_ends_no_worse_than_pca(random_state):
    # Digits scaled to [0, 0.001] once got a sigmoid output that ended at
    # reconstruction_r2_ = -4.6, 7.9 times PCA's error, without a word.
    X = load_digits().data[:500] / 16 * 1e-3
    model = AutoencoderTransformer(
        hidden_layer_sizes=(32,), max_epochs=20, random_state=random_state, device="cpu"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    pca = PCA(model.n_components).fit(X)

    assert model._state.spec.output_activation == "linear"
    assert reconstruction_error(model, X) <= reconstruction_error(pca, X) * (1 + 1e-4)
    assert model.reconstruction_r2_ > 0


def test_auto_reads_the_range_of_streamed_data(digits_X):
    with config_context(memory_budget=digits_X.nbytes // 4):
        model = AutoencoderTransformer(
            hidden_layer_sizes=(8,), max_epochs=1, random_state=0, device="cpu"
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(digits_X * 1e-3)
    assert model.streamed_
    assert model._state.spec.output_activation == "linear"
