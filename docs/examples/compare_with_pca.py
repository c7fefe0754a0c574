"""
PCA, the autoencoder and the VAE compared on one scale, by one grid search
==========================================================================

``score`` means three things (PCA: a Gaussian log-likelihood; the
autoencoder: minus the mean squared error; the VAE: an ELBO), so a search
that ranks them by ``score`` compares numbers on different scales.
``skae.metrics.neg_reconstruction_error`` measures every reducer with an
``inverse_transform`` by its held-out reconstruction error in the data's
units. This example searches over the reducer itself, at 10 components on
scikit-learn's digits (scaled to [0, 1]), with 3-fold cross-validation, and
prints each candidate's mean cross-validated error and the training-data
attributes PCA users know (``n_components_``, ``noise_variance_``, and
``reconstruction_r2_`` against PCA's ``explained_variance_ratio_.sum()``).

Run ``python docs/examples/compare_with_pca.py``; nothing is downloaded.
"""

import warnings

from _shared import SEED, parse_args
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skae import AutoencoderTransformer, VAETransformer
from skae.metrics import neg_reconstruction_error

N_COMPONENTS = 10
MAX_EPOCHS = 40


def main(argv=None):
    parse_args(__doc__, argv, data_home=False)
    # Short epoch budgets on purpose: the warning that more epochs would help is silenced.
    warnings.simplefilter("ignore", ConvergenceWarning)
    X = load_digits().data / 16.0
    candidates = [
        PCA(N_COMPONENTS),
        AutoencoderTransformer(N_COMPONENTS, max_epochs=MAX_EPOCHS, random_state=SEED),
        VAETransformer(N_COMPONENTS, max_epochs=MAX_EPOCHS, random_state=SEED),
    ]
    search = GridSearchCV(
        Pipeline([("reduce", PCA())]),
        {"reduce": candidates},
        scoring=neg_reconstruction_error,
        cv=3,
    ).fit(X)
    print(f"digits in [0, 1], {len(X)} images; k={N_COMPONENTS}; 3-fold cross-validation\n")
    print(f"{'reducer':<24} {'CV reconstruction MSE':>22}")
    for params, score in zip(
        search.cv_results_["params"], search.cv_results_["mean_test_score"], strict=True
    ):
        print(f"{type(params['reduce']).__name__:<24} {-score:>22.5f}")
    best = search.best_estimator_.named_steps["reduce"]
    print(f"\nbest: {type(best).__name__}\n")
    print(f"{'fitted on all rows':<24} {'n_components_':>13} {'noise_variance_':>16} {'R2':>7}")
    for reducer in candidates:
        reducer.fit(X)
        r2 = (
            reducer.explained_variance_ratio_.sum()
            if isinstance(reducer, PCA)
            else reducer.reconstruction_r2_
        )
        print(
            f"{type(reducer).__name__:<24} {reducer.n_components_:>13} "
            f"{reducer.noise_variance_:>16.5f} {r2:>7.3f}"
        )


if __name__ == "__main__":
    main()
