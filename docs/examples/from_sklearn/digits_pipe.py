"""
Pipelining: chaining an autoencoder and a logistic regression
=============================================================

scikit-learn's ``plot_digits_pipe`` example chains a ``StandardScaler``, a
PCA and a ``LogisticRegression`` on digits, grid-searches the number of
components with the regularisation ``C``, and draws PCA's spectrum above
the best accuracy at each size. Here the same code runs twice, with ``pca``
a ``PCA()`` and then an ``AutoencoderTransformer()``.

What the swap changes:

- ``PCA()`` keeps every component, while ``AutoencoderTransformer()``
  compresses to 2 by default (``n_components=None`` is an error that says
  so); the search sets ``pca__n_components`` anyway, so the pipeline
  itself is unchanged.
- An autoencoder's components are not ordered by variance, so it has no
  ``explained_variance_ratio_``. The top panel draws instead the share of
  variance that each size of code reconstructs, ``reconstruction_r2_``,
  for both (for PCA it equals ``explained_variance_ratio_.sum()``),
  measured on the standardised digits the pipeline's reducer sees (the
  original draws PCA's spectrum of the raw pixels).
- The pipeline caches fitted reducers (``memory=``), so each autoencoder
  is trained once per fold and size, not once more for each ``C``.
"""

import warnings
from tempfile import TemporaryDirectory

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from joblib import Memory
from sklearn import datasets
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderTransformer
from skae.plotting import plot_reconstruction_curve

warnings.simplefilter("ignore", ConvergenceWarning)

X_digits, y_digits = datasets.load_digits(return_X_y=True)
N_COMPONENTS = [5, 15, 30, 45, 60]

reducers = {"PCA": PCA(), "AutoencoderTransformer": AutoencoderTransformer(random_state=0)}
fig, (ax0, ax1) = plt.subplots(nrows=2, sharex=True, figsize=(7, 7), layout="constrained")
chosen = {}
for name, pca in reducers.items():
    # set the tolerance to a large value to make the example faster
    logistic = LogisticRegression(max_iter=10000, tol=0.1)
    with TemporaryDirectory() as cachedir:
        pipe = Pipeline(
            steps=[("scaler", StandardScaler()), ("pca", pca), ("logistic", logistic)],
            memory=Memory(location=cachedir, verbose=0),
        )
        # Parameters of pipelines can be set using '__' separated parameter names:
        param_grid = {"pca__n_components": N_COMPONENTS, "logistic__C": np.logspace(-4, 4, 4)}
        search = GridSearchCV(pipe, param_grid, n_jobs=2)
        search.fit(X_digits, y_digits)
    print(f"{name}: best parameter (CV score={search.best_score_:.3f}): {search.best_params_}")
    chosen[name] = search.best_estimator_.named_steps["pca"].n_components

    # For each number of components, find the best classifier results
    results = pd.DataFrame(search.cv_results_)
    components_col = "param_pca__n_components"
    best_clfs = results.loc[results.groupby(components_col)["mean_test_score"].idxmax()]
    best_clfs.plot(x=components_col, y="mean_test_score", yerr="std_test_score", ax=ax1, label=name)

# Where PCA's example draws its spectrum: the share of variance each size of
# code reconstructs on the scaled data, for both reducers.
plot_reconstruction_curve(
    StandardScaler().fit_transform(X_digits), reducers, n_components=N_COMPONENTS, ax=ax0
)
for name, line in zip(reducers, ax0.get_lines(), strict=True):
    print(f"{name}: reconstruction R2 at {N_COMPONENTS}: {np.round(line.get_ydata(), 3).tolist()}")
    ax0.axvline(chosen[name], linestyle=":", color=line.get_color(), label=f"{name}: chosen")
ax0.set_ylabel("Share of variance reconstructed")
ax0.legend(prop=dict(size=9))
ax1.set_ylabel("Classification accuracy (val)")
ax1.set_xlabel("n_components")
plt.xlim(-1, 70)
plt.show()
