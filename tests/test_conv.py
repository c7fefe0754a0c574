"""architecture="conv": convolutional encoders and decoders on flat images."""

import pickle

import numpy as np
import pytest
from helpers import FAST
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skae import AutoencoderTransformer, VAETransformer
from skae._networks import ConvDecoderBody, ConvEncoderBody

CONV = {**FAST, "architecture": "conv", "conv_channels": (4, 8)}


def images(shape, n=40):
    return np.random.RandomState(0).uniform(size=(n, int(np.prod(shape))))


@pytest.mark.parametrize("estimator_class", [AutoencoderTransformer, VAETransformer])
@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 27, 27), (3, 9, 7), (2, 1, 5)])
def test_conv_restores_the_exact_image_shape(estimator_class, shape):
    X = images(shape)
    model = estimator_class(n_components=3, input_shape=shape, **CONV).fit(X)
    codes = model.transform(X)
    assert codes.shape == (40, 3)
    assert model.inverse_transform(codes).shape == X.shape


@pytest.mark.parametrize("height", [27, 28])
def test_decoder_body_crops_to_odd_and_even_sizes(height):
    import torch

    shape = (1, height, height)
    encoder = ConvEncoderBody(shape, (4, 8), (16, 3), "relu", dropout=0.0, batch_norm=False)
    decoder = ConvDecoderBody(shape, (4, 8), (3, 16), "relu", dropout=0.0, batch_norm=False)
    x = torch.rand(5, height * height)
    assert encoder(x).shape == (5, 3)
    assert decoder(encoder(x)).shape == (5, height * height)


def test_wrong_input_shape_is_a_clear_error():
    X = images((1, 28, 28), n=5)
    with pytest.raises(ValueError, match=r"input_shape=\(1, 28, 27\) holds 756 values"):
        AutoencoderTransformer(input_shape=(1, 28, 27), **CONV).fit(X)
    with pytest.raises(ValueError, match="needs input_shape=\\(channels, height, width\\)"):
        AutoencoderTransformer(**CONV).fit(X)
    with pytest.raises(ValueError, match="needs input_shape"):
        AutoencoderTransformer(input_shape=(28, 28), **CONV).fit(X)
    with pytest.raises(ValueError, match="conv_channels must be a sequence of positive integers"):
        AutoencoderTransformer(input_shape=(1, 28, 28), **{**CONV, "conv_channels": (0,)}).fit(X)


def test_conv_starts_as_pca():
    X = images((1, 8, 8), n=100) * np.linspace(1, 3, 64)
    pca = PCA(n_components=4).fit(X)
    model = AutoencoderTransformer(
        n_components=4,
        input_shape=(1, 8, 8),
        **{**CONV, "max_epochs": 1, "optimizer": "sgd", "learning_rate": 1e-9},
    ).fit(X)
    assert_allclose(
        model.inverse_transform(model.transform(X)),
        pca.inverse_transform(pca.transform(X)),
        atol=1e-4,
    )


def test_conv_is_reproducible_and_pickles():
    X = images((1, 12, 12))
    first = AutoencoderTransformer(input_shape=(1, 12, 12), **CONV).fit(X)
    second = AutoencoderTransformer(input_shape=(1, 12, 12), **CONV).fit(X)
    assert_array_equal(first.transform(X), second.transform(X))
    restored = pickle.loads(pickle.dumps(first))
    assert_array_equal(restored.transform(X), first.transform(X))


def test_conv_in_a_pipeline_with_batch_norm():
    X = images((1, 10, 10)) * 255
    pipe = make_pipeline(
        MinMaxScaler(),
        AutoencoderTransformer(input_shape=(1, 10, 10), batch_norm=True, **CONV),
    )
    assert pipe.fit_transform(X).shape == (40, 2)


def test_changing_input_shape_on_warm_start_is_refused():
    X = images((1, 6, 6))
    model = AutoencoderTransformer(input_shape=(1, 6, 6), warm_start=True, **CONV).fit(X)
    model.set_params(input_shape=(4, 3, 3))
    with pytest.raises(ValueError, match="input_shape changed"):
        model.fit(X)
