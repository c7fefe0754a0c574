"""
Dimensionality reduction to 2-D on digits, with NCA, LDA, PCA and autoencoders
==============================================================================

scikit-learn's ``plot_nca_dim_reduction`` example reduces the 64 pixels of
the digits to 2 dimensions with PCA, Linear Discriminant Analysis and
Neighborhood Components Analysis (each after a ``StandardScaler``), and
scores each map by the accuracy of a 3-nearest-neighbour classifier on the
held-out half. Here ``AutoencoderTransformer`` and ``VAETransformer`` join
them, built exactly as PCA is: ``make_pipeline(StandardScaler(),
AutoencoderTransformer(n_components=2, random_state=0))``.

PCA, the autoencoder and the VAE never see the labels; LDA and NCA learn
from them, so they are the supervised ceiling the unsupervised maps are
measured against.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn import datasets
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderTransformer, VAETransformer

# The default epoch budget is short for a sharp map; the warning says so.
warnings.simplefilter("ignore", ConvergenceWarning)

n_neighbors = 3
random_state = 0

X, y = datasets.load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.5, stratify=y, random_state=random_state
)

dim_reduction_methods = {
    "PCA": make_pipeline(StandardScaler(), PCA(n_components=2, random_state=random_state)),
    "AutoencoderTransformer": make_pipeline(
        StandardScaler(), AutoencoderTransformer(n_components=2, random_state=random_state)
    ),
    "VAETransformer": make_pipeline(
        StandardScaler(), VAETransformer(n_components=2, random_state=random_state)
    ),
    "LDA (supervised)": make_pipeline(StandardScaler(), LinearDiscriminantAnalysis(n_components=2)),
    "NCA (supervised)": make_pipeline(
        StandardScaler(),
        NeighborhoodComponentsAnalysis(n_components=2, random_state=random_state),
    ),
}

# A nearest-neighbour classifier scores each map on the held-out half.
knn = KNeighborsClassifier(n_neighbors=n_neighbors)

fig, axes = plt.subplots(1, len(dim_reduction_methods), figsize=(18, 4), layout="constrained")
print(f"{'method':<24} {n_neighbors}-NN accuracy of the 2-D test codes")
for ax, (name, model) in zip(axes, dim_reduction_methods.items(), strict=True):
    model.fit(X_train, y_train)
    knn.fit(model.transform(X_train), y_train)
    acc_knn = knn.score(model.transform(X_test), y_test)
    print(f"{name:<24} {acc_knn:.3f}")

    X_embedded = model.transform(X)
    ax.scatter(X_embedded[:, 0], X_embedded[:, 1], c=y, s=6, cmap="tab10")
    ax.set_title(f"{name}\n{n_neighbors}-NN accuracy {acc_knn:.2f}")
    ax.set_xticks(np.array([]))
    ax.set_yticks(np.array([]))

plt.show()
