"""
Selecting dimensionality reduction with Pipeline and GridSearchCV
=================================================================

scikit-learn's ``plot_compare_reduction`` example lets one grid search
choose the reduction itself, PCA, NMF or univariate feature selection, at 2,
4 or 8 features, in front of a ``LinearSVC`` on digits scaled to [0, 1],
and draws the best accuracy of each. Here ``AutoencoderTransformer()``
joins the list of reducers; it is searched through the same
``reduce_dim__n_components`` name as PCA and NMF.

What differs from the original:

- PCA is searched as ``PCA(iterated_power=7)``, a parameter of PCA's
  randomized solver that an autoencoder has no use for, so the autoencoder
  enters as ``AutoencoderTransformer(random_state=0)``.
- As the original's second half recommends when a transformer is costly to
  fit, the pipeline caches its fitted reducers (``memory=``): each
  autoencoder is trained once per fold and size, not once more for each
  ``C``. That second half, which only repeats the search with the cache,
  is folded into this one.
- The scores are read from ``cv_results_`` by name. The original reshapes
  all of them at once with C slowest, but ``cv_results_`` lists the whole
  first sub-grid before the second, so its bars mix reducers and values of
  ``C``.
"""

import warnings
from tempfile import TemporaryDirectory

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from joblib import Memory
from sklearn.datasets import load_digits
from sklearn.decomposition import NMF, PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectKBest, mutual_info_classif
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.svm import LinearSVC

from skae import AutoencoderTransformer

warnings.simplefilter("ignore", ConvergenceWarning)

X, y = load_digits(return_X_y=True)

cachedir = TemporaryDirectory()
pipe = Pipeline(
    [
        ("scaling", MinMaxScaler()),
        # the reduce_dim stage is populated by the param_grid
        ("reduce_dim", "passthrough"),
        ("classify", LinearSVC(dual=False, max_iter=10_000)),
    ],
    memory=Memory(location=cachedir.name, verbose=0),
)

N_FEATURES_OPTIONS = [2, 4, 8]
C_OPTIONS = [1, 10, 100, 1000]
param_grid = [
    {
        "reduce_dim": [
            PCA(iterated_power=7),
            NMF(max_iter=1_000),
            AutoencoderTransformer(random_state=0),
        ],
        "reduce_dim__n_components": N_FEATURES_OPTIONS,
        "classify__C": C_OPTIONS,
    },
    {
        "reduce_dim": [SelectKBest(mutual_info_classif)],
        "reduce_dim__k": N_FEATURES_OPTIONS,
        "classify__C": C_OPTIONS,
    },
]
reducer_labels = ["PCA", "NMF", "AutoencoderTransformer", "KBest(mutual_info_classif)"]

grid = GridSearchCV(pipe, n_jobs=1, param_grid=param_grid)
with cachedir:
    grid.fit(X, y)

# The best C for each reducer and size, read by name from cv_results_.
results = pd.DataFrame(grid.cv_results_)
results["reducer"] = results["param_reduce_dim"].map(lambda step: type(step).__name__)
results["size"] = results["param_reduce_dim__n_components"].fillna(results["param_reduce_dim__k"])
best = results.pivot_table(index="reducer", columns="size", values="mean_test_score", aggfunc="max")
reducer_names = ["PCA", "NMF", "AutoencoderTransformer", "SelectKBest"]
mean_scores = best.loc[reducer_names, N_FEATURES_OPTIONS].to_numpy()

print(f"{'reducer':<28}" + "".join(f"{n:>8}" for n in N_FEATURES_OPTIONS))
for label, reducer_scores in zip(reducer_labels, mean_scores, strict=True):
    print(f"{label:<28}" + "".join(f"{score:>8.3f}" for score in reducer_scores))
print(f"\nbest: {grid.best_params_['reduce_dim']} at {grid.best_score_:.3f}")

fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
bar_offsets = np.arange(len(N_FEATURES_OPTIONS)) * (len(reducer_labels) + 1) + 0.5
for i, (label, reducer_scores) in enumerate(zip(reducer_labels, mean_scores, strict=True)):
    ax.bar(bar_offsets + i, reducer_scores, label=label)
ax.set_title("Comparing feature reduction techniques")
ax.set_xlabel("Reduced number of features")
ax.set_xticks(bar_offsets + (len(reducer_labels) - 1) / 2, N_FEATURES_OPTIONS)
ax.set_ylabel("Digit classification accuracy")
ax.set_ylim((0, 1))
ax.legend(loc="upper left")
plt.show()
