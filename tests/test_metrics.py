"""skae.metrics: one reconstruction scale for every reducer with an inverse."""

import numpy as np
import pytest
import scipy.sparse as sp
from helpers import FAST
from numpy.testing import assert_allclose
from sklearn.decomposition import PCA, KernelPCA, TruncatedSVD
from sklearn.manifold import Isomap
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderTransformer, VAETransformer
from skae.metrics import neg_reconstruction_error, reconstruction_error

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_reconstruction_error_is_the_mean_squared_residual(digits_X):
    pca = PCA(5).fit(digits_X)
    expected = np.mean((pca.inverse_transform(pca.transform(digits_X)) - digits_X) ** 2)
    assert_allclose(reconstruction_error(pca, digits_X), expected)
    assert neg_reconstruction_error(pca, digits_X) == -reconstruction_error(pca, digits_X)


def test_full_rank_pca_reconstructs_exactly(digits_X):
    assert reconstruction_error(PCA().fit(digits_X), digits_X) < 1e-20


@pytest.mark.parametrize(
    "reducer",
    [
        PCA(4),
        KernelPCA(4, kernel="rbf", fit_inverse_transform=True),
        AutoencoderTransformer(4, **FAST),
        VAETransformer(4, **FAST),
        make_pipeline(StandardScaler(), PCA(4)),
    ],
    ids=["pca", "kernel-pca", "autoencoder", "vae", "pipeline"],
)
def test_every_reducer_with_an_inverse_is_scored_in_the_data_units(reducer, digits_X):
    scores = cross_val_score(reducer, digits_X, scoring=neg_reconstruction_error, cv=2)
    assert np.all(scores < 0) and np.all(np.isfinite(scores))
    # On the data's scale: no worse than reconstructing every row by the mean.
    assert -scores.mean() < 1.5 * digits_X.var(axis=0).mean()


def test_sparse_input_scores_like_dense(digits_X):
    pca = TruncatedSVD(5, random_state=0).fit(digits_X)
    assert_allclose(
        reconstruction_error(pca, sp.csr_matrix(digits_X)), reconstruction_error(pca, digits_X)
    )


def test_a_reducer_without_an_inverse_is_a_clear_error(digits_X):
    with pytest.raises(ValueError, match="Isomap has no inverse_transform"):
        reconstruction_error(Isomap(n_components=2).fit(digits_X), digits_X)


def test_grid_search_compares_pca_and_autoencoders_on_one_scale(digits_X):
    candidates = [
        PCA(6),
        AutoencoderTransformer(6, **FAST),
        VAETransformer(6, **FAST),
    ]
    search = GridSearchCV(
        Pipeline([("reduce", PCA())]),
        {"reduce": candidates},
        scoring=neg_reconstruction_error,
        cv=2,
    ).fit(digits_X)
    scores = search.cv_results_["mean_test_score"]
    # All three errors on one scale: within a factor of a few of each other.
    assert scores.max() / scores.min() > 0.1
    best = search.best_estimator_
    assert_allclose(search.best_score_, scores.max())
    assert isinstance(best.named_steps["reduce"], type(candidates[int(np.argmax(scores))]))
