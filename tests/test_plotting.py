"""skae.plotting, drawn headless with matplotlib's Agg backend."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.decomposition import PCA

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from skae import plotting  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_plot_embedding_2d_has_one_scatter_per_label_and_a_legend(tmp_path):
    Z = np.random.RandomState(0).normal(size=(30, 2))
    y = np.repeat([0, 1, 2], 10)
    ax = plotting.plot_embedding(Z, y)
    assert len(ax.collections) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2"]
    assert_allclose(ax.collections[1].get_offsets(), Z[10:20])
    ax.figure.savefig(tmp_path / "embedding.png")
    assert (tmp_path / "embedding.png").stat().st_size > 0


def test_plot_embedding_3d_and_continuous_labels():
    Z = np.random.RandomState(0).normal(size=(40, 3))
    ax = plotting.plot_embedding(Z, y=np.linspace(0, 1, 40))
    assert ax.name == "3d"
    assert len(ax.figure.axes) == 2  # the plot and its colour bar


def test_plot_embedding_rejects_other_widths():
    with pytest.raises(ValueError, match="2 or 3 columns"):
        plotting.plot_embedding(np.zeros((5, 4)))


def test_plot_reconstructions_shows_originals_over_reconstructions(make_autoencoder, digits_X):
    ae = make_autoencoder().fit(digits_X)
    fig = plotting.plot_reconstructions(ae, digits_X, (8, 8), n=5)
    axes = np.array(fig.axes).reshape(2, 5)
    assert_allclose(axes[0, 2].images[0].get_array(), digits_X[2].reshape(8, 8))
    reconstruction = ae.inverse_transform(ae.transform(digits_X[:5]))
    assert_allclose(axes[1, 2].images[0].get_array(), reconstruction[2].reshape(8, 8))


def test_plot_reconstructions_labels_the_rows(make_autoencoder, digits_X):
    ae = make_autoencoder().fit(digits_X)
    fig = plotting.plot_reconstructions(ae, digits_X, (8, 8), n=4)
    axes = np.array(fig.axes).reshape(2, 4)
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["original", "reconstructed"]
    assert axes[1, 0].yaxis.label.get_rotation() == 0  # horizontal, left of the row
    assert axes[0, 0].images[0].get_interpolation() == "nearest"


def test_plot_reconstructions_draws_one_row_per_estimator_of_a_mapping(make_autoencoder, digits_X):
    estimators = {
        "PCA k=3": PCA(3).fit(digits_X),
        "AE k=2": make_autoencoder(n_components=2).fit(digits_X),
        "AE k=4": make_autoencoder(n_components=4).fit(digits_X),
    }
    fig = plotting.plot_reconstructions(estimators, digits_X, (8, 8), n=6)
    assert len(fig.axes) == 4 * 6
    axes = np.array(fig.axes).reshape(4, 6)
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["original", *estimators]
    assert not any(ax.get_ylabel() for ax in axes[:, 1:].ravel())
    assert_allclose(axes[0, 5].images[0].get_array(), digits_X[5].reshape(8, 8))
    for row, estimator in zip(axes[1:], estimators.values(), strict=True):
        expected = estimator.inverse_transform(estimator.transform(digits_X[:6]))
        assert_allclose(row[3].images[0].get_array(), expected[3].reshape(8, 8), rtol=1e-6)


def test_plot_reconstructions_fixes_the_grey_range_when_asked(make_autoencoder, digits_X):
    ae = make_autoencoder().fit(digits_X)
    fixed = plotting.plot_reconstructions(ae, digits_X, (8, 8), n=3, vmin=0, vmax=1)
    assert {ax.images[0].get_clim() for ax in fixed.axes} == {(0, 1)}
    free = plotting.plot_reconstructions(ae, digits_X, (8, 8), n=3)
    image = free.axes[1].images[0]
    assert image.get_clim() == (image.get_array().min(), image.get_array().max())


def test_image_grid_pads_short_rows_with_blank_axes():
    rows = [np.ones((3, 4)), np.zeros((2, 4))]
    fig = plotting._image_grid(rows, (2, 2), titles=["a", "b"], vmin=0, vmax=1)
    axes = np.array(fig.axes).reshape(2, 3)
    assert [len(ax.images) for ax in axes.ravel()] == [1, 1, 1, 1, 1, 0]
    assert not axes[1, 2].axison
    assert axes[1, 0].get_ylabel() == "b"


def test_plot_samples_draws_reproducible_prior_samples(make_vae, digits_X):
    vae = make_vae().fit(digits_X)
    fig = plotting.plot_samples(vae, (8, 8), n=7, random_state=0)
    expected = vae.sample(7, random_state=0)
    assert len(fig.axes) == 9  # a 3x3 grid, the last two blank
    assert not fig.axes[8].images and not fig.axes[8].axison
    assert_allclose(fig.axes[4].images[0].get_array(), expected[4].reshape(8, 8))
    assert not any(ax.get_ylabel() for ax in fig.axes)


def test_plot_samples_passes_the_grey_range_through(make_vae, digits_X):
    vae = make_vae().fit(digits_X)
    fig = plotting.plot_samples(vae, (8, 8), n=4, random_state=0, vmin=0, vmax=1)
    assert len(fig.axes) == 4
    assert {ax.images[0].get_clim() for ax in fig.axes} == {(0, 1)}


def test_plot_loss_curve_plots_training_and_validation(make_autoencoder, digits_X):
    ae = make_autoencoder(early_stopping=True, max_epochs=4).fit(digits_X)
    ax = plotting.plot_loss_curve(ae)
    training, validation = ax.get_lines()
    assert_allclose(training.get_ydata(), ae.loss_curve_)
    assert_allclose(validation.get_ydata(), ae.validation_loss_curve_)


def test_plot_reconstruction_curve_matches_pca_explained_variance(digits_X):
    ax = plotting.plot_reconstruction_curve(digits_X, n_components=(2, 5))
    (line,) = ax.get_lines()
    expected = [PCA(k).fit(digits_X).explained_variance_ratio_.sum() for k in (2, 5)]
    assert_allclose(line.get_ydata(), expected, rtol=1e-6)


def test_plot_code_lattice_decodes_a_lattice_spanning_the_codes(make_autoencoder, digits_X):
    ae = make_autoencoder(n_components=2).fit(digits_X)
    codes = ae.transform(digits_X)
    fig = plotting.plot_code_lattice(ae, (8, 8), n=4, codes=codes)
    axes = np.array(fig.axes).reshape(4, 4)
    low, high = np.percentile(codes, [2, 98], axis=0)
    # Top-left is the smallest first code and the largest second code.
    expected = ae.inverse_transform(np.array([[low[0], high[1]], [high[0], low[1]]]))
    assert_allclose(axes[0, 0].images[0].get_array(), expected[0].reshape(8, 8), rtol=1e-5)
    assert_allclose(axes[3, 3].images[0].get_array(), expected[1].reshape(8, 8), rtol=1e-5)


def test_plot_code_lattice_rejects_codes_that_are_not_2d(make_autoencoder, digits_X):
    ae = make_autoencoder(n_components=3).fit(digits_X)
    with pytest.raises(ValueError, match=r"shape \(n_samples, 2\)"):
        plotting.plot_code_lattice(ae, (8, 8), codes=ae.transform(digits_X))


def test_plot_loadings_as_images_one_row_per_entry():
    rng = np.random.RandomState(0)
    fig = plotting.plot_loadings(
        {"PCA": rng.normal(size=(3, 64)), "AE": rng.normal(size=(3, 64))}, image_shape=(8, 8)
    )
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 6
    assert images[0].get_clim() == (-1, 1)
    assert np.abs(images[0].get_array()).max() == pytest.approx(1.0)


def test_plot_loadings_as_bars_of_the_top_features():
    loadings = np.zeros((2, 5))
    loadings[0] = [0.1, -3.0, 0.2, 2.0, 0.0]
    fig = plotting.plot_loadings(loadings, feature_names=list("abcde"), n_top=2)
    first = fig.axes[0]
    assert [t.get_text() for t in first.get_yticklabels()] == ["d", "b"]  # largest on top
    assert [p.get_width() for p in first.patches] == [2.0, -3.0]
    with pytest.raises(ValueError, match="feature_names needs 5"):
        plotting.plot_loadings(loadings, feature_names=["a"])
    with pytest.raises(ValueError, match="same number of features"):
        plotting.plot_loadings({"a": np.zeros((1, 3)), "b": np.zeros((1, 4))})


def test_plot_code_traversal_walks_each_axis_from_percentile_to_percentile():
    X = np.random.RandomState(0).normal(size=(100, 16))
    pca = PCA(n_components=2).fit(X)
    fig = plotting.plot_code_traversal(pca, X, (4, 4), n_steps=5)
    images = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(images) == 10
    codes = pca.transform(X)
    low, high = np.percentile(codes[:, 0], [5, 95])
    walk = np.tile(np.median(codes, axis=0), (5, 1))
    walk[:, 0] = np.linspace(low, high, 5)
    assert_allclose(np.ravel(images[0]), pca.inverse_transform(walk)[0])
