"""Greedy layer-wise pretraining (``pretrain="layerwise"``)."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from torch import nn

import skae._fitting
from skae._networks import dense_encoder_decoder
from skae._pretraining import layer_pairs, linear_blocks

DEEP = dict(hidden_layer_sizes=(32, 16), n_components=4, pretrain="layerwise")


def test_linear_blocks_start_at_each_linear_layer():
    stack = nn.Sequential(
        nn.Linear(8, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Dropout(0.1), nn.Linear(4, 2)
    )
    blocks = linear_blocks(stack)
    assert [len(block) for block in blocks] == [4, 1]
    assert blocks[0][0] is stack[0] and blocks[1][0] is stack[4]


@pytest.mark.parametrize("linear_shortcut", [False, True])
def test_layer_pairs_mirror_each_other(linear_shortcut):
    encoder, decoder = dense_encoder_decoder(
        64,
        (32, 16),
        4,
        activation="relu",
        output_activation="linear",
        center=np.zeros(64),
        scale=1.0,
        linear_shortcut=linear_shortcut,
    )
    model = nn.Module()
    model.encoder, model.decoder = encoder, decoder
    shapes = [
        (enc[0].in_features, enc[0].out_features, dec[0].in_features, dec[0].out_features)
        for enc, dec in layer_pairs(model)
    ]
    assert shapes == [(64, 32, 32, 64), (32, 16, 16, 32), (16, 4, 4, 16)]


def test_each_layer_pair_learns(make_estimator, digits_X):
    estimator = make_estimator(**DEEP, pretrain_epochs=5, max_epochs=1).fit(digits_X)
    curves = estimator.pretrain_loss_curves_
    assert len(curves) == 3
    for curve in curves:
        assert 1 <= len(curve) <= 5
        assert curve[-1] < curve[0]


def test_no_pretraining_records_none(make_autoencoder, small_X):
    assert make_autoencoder().fit(small_X).pretrain_loss_curves_ is None


def test_pretraining_changes_the_hidden_layers(make_estimator, digits_X):
    params = {**DEEP, "linear_shortcut": False, "max_epochs": 1}
    plain = make_estimator(**{**params, "pretrain": None}).fit(digits_X)
    pretrained = make_estimator(**params).fit(digits_X)
    first_plain = plain.encoder_.body[0].weight
    first_pretrained = pretrained.encoder_.body[0].weight
    assert not torch.allclose(first_plain, first_pretrained)


def test_pretrained_network_with_shortcut_still_starts_as_pca(make_autoencoder, digits_X):
    # A negligible learning rate in fine-tuning shows the starting point.
    estimator = make_autoencoder(
        **DEEP, pretrain_epochs=3, max_epochs=1, learning_rate=1e-12, output_activation="linear"
    )
    with pytest.warns(Warning):
        estimator.fit(digits_X)
    assert len(estimator.pretrain_loss_curves_) == 3
    pca = PCA(n_components=4).fit(digits_X)
    expected = pca.inverse_transform(pca.transform(digits_X))
    reconstruction = estimator.inverse_transform(estimator.transform(digits_X))
    np.testing.assert_allclose(reconstruction, expected, atol=1e-3)


def test_pretraining_is_reproducible_and_leaves_global_rng_alone(make_autoencoder, digits_X):
    params = dict(**DEEP, pretrain_epochs=2, dropout=0.2, noise="masking", noise_level=0.2)
    before = torch.get_rng_state()
    first = make_autoencoder(**params).fit(digits_X)
    assert torch.equal(torch.get_rng_state(), before)
    second = make_autoencoder(**params).fit(digits_X)
    np.testing.assert_array_equal(first.transform(digits_X), second.transform(digits_X))


def test_pretraining_uses_only_the_training_split(make_autoencoder, digits_X, monkeypatch):
    seen = []
    original = skae._fitting.pretrain_layerwise

    def spy(model, source, train_pair):
        seen.append(len(source))
        return original(model, source, train_pair)

    monkeypatch.setattr(skae._fitting, "pretrain_layerwise", spy)
    make_autoencoder(**DEEP, early_stopping=True, validation_fraction=0.25).fit(digits_X)
    assert seen == [digits_X.shape[0] - round(0.25 * digits_X.shape[0])]


def test_warm_start_does_not_pretrain_again(make_autoencoder, digits_X, monkeypatch):
    estimator = make_autoencoder(**DEEP, pretrain_epochs=2, warm_start=True).fit(digits_X)
    curves = estimator.pretrain_loss_curves_

    def fail(*args):
        raise AssertionError("pretrained again")

    monkeypatch.setattr(skae._fitting, "pretrain_layerwise", fail)
    estimator.fit(digits_X)
    assert estimator.pretrain_loss_curves_ == curves


def test_pretraining_needs_the_dense_architecture(make_autoencoder):
    X = np.random.default_rng(0).random((20, 64))
    estimator = make_autoencoder(
        architecture="conv", input_shape=(1, 8, 8), conv_channels=(4,), pretrain="layerwise"
    )
    with pytest.raises(ValueError, match="pretrain='layerwise' needs architecture='dense'"):
        estimator.fit(X)
    assert not hasattr(estimator, "n_iter_")


def test_partial_fit_does_not_pretrain(make_autoencoder, small_X):
    estimator = make_autoencoder(**DEEP).partial_fit(small_X)
    assert estimator.pretrain_loss_curves_ is None
    assert estimator.n_iter_ == 1


def test_verbose_reports_pretraining(make_autoencoder, small_X, capsys):
    make_autoencoder(**DEEP, pretrain_epochs=2, max_epochs=1, verbose=1).fit(small_X)
    lines = capsys.readouterr().out.splitlines()
    pretraining = [line for line in lines if line.startswith("Pretraining layer pair")]
    assert len(pretraining) == 6
    assert pretraining[0].startswith("Pretraining layer pair 1/3, epoch 1:")
    assert pretraining[-1].startswith("Pretraining layer pair 3/3, epoch 2:")
