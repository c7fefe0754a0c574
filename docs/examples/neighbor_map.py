"""
Maps that keep neighbourhoods: 2-D codes of MNIST with the neighbour objective
==============================================================================

Fits PCA, an AutoencoderTransformer, an AutoencoderTransformer with the
neighbour-preserving objective (``neighbor_weight``) and, when umap-learn is
installed, UMAP, all at 2 components on 8,000 MNIST images. Prints, for the
2,000 held-out images, the accuracy of a 5-nearest-neighbour classifier on
the codes, their trustworthiness (5 neighbours) and the reconstruction error
(UMAP has no decoder), then draws the four maps side by side and a walk over
the neighbour map: the decoded images of a lattice of codes
(``inverse_transform``), something UMAP and t-SNE cannot draw.

Run ``python docs/examples/neighbor_map.py [--data-home DIR]`` (MNIST as
described in ``_shared.py``); the figures go to ``docs/images/neighbor_map.png``
and ``docs/images/neighbor_map_walk.png``. It takes a few minutes on a
laptop CPU.
"""

import warnings

import numpy as np
from _shared import SEED, maps_figure, mnist_example, reconstruction_mse, save, timed_fit
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness
from sklearn.neighbors import KNeighborsClassifier

from skae import AutoencoderTransformer
from skae.plotting import plot_code_lattice

NEIGHBOR_WEIGHT = 1.0


def reducers():
    """The maps compared, each at 2 components; UMAP only when it is installed."""
    found = {
        "PCA": PCA(n_components=2),
        "AutoencoderTransformer": AutoencoderTransformer(n_components=2, random_state=SEED),
        f"neighbor_weight={NEIGHBOR_WEIGHT:g}": AutoencoderTransformer(
            n_components=2, neighbor_weight=NEIGHBOR_WEIGHT, random_state=SEED
        ),
    }
    # umap-learn notes that a seed makes it single-threaded; so be it.
    warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
    try:
        from umap import UMAP
    except ImportError:
        print("umap-learn is not installed: UMAP is left out (pip install umap-learn).\n")
    else:
        found["UMAP"] = UMAP(n_components=2, random_state=SEED)
    return found


def scores(reducer, X_train, X_test, y_train, y_test):
    """Fit ``reducer``; return its test codes and what is printed about it."""
    seconds = timed_fit(reducer, X_train)
    codes = reducer.transform(X_test)
    knn = KNeighborsClassifier(n_neighbors=5).fit(reducer.transform(X_train), y_train)
    decodes = hasattr(reducer, "inverse_transform") and not hasattr(reducer, "graph_")
    return codes, {
        "5-NN": knn.score(codes, y_test),
        "trust": trustworthiness(X_test, codes, n_neighbors=5),
        "test MSE": reconstruction_mse(reducer, X_test) if decodes else np.nan,
        "fit s": seconds,
    }


def main(argv=None):
    X_train, X_test, y_train, y_test = mnist_example(__doc__, argv, None, "default epochs")
    found = reducers()
    results = {name: scores(r, X_train, X_test, y_train, y_test) for name, r in found.items()}
    print(f"{'method':<24} {'5-NN':>6} {'trust':>6} {'test MSE':>9} {'fit s':>6}")
    for name, (_, row) in results.items():
        print(
            f"{name:<24} {row['5-NN']:>6.3f} {row['trust']:>6.3f} "
            f"{row['test MSE']:>9.4f} {row['fit s']:>6.1f}"
        )
    print()
    panels = {
        f"{name}\n5-NN {row['5-NN']:.3f}, trustworthiness {row['trust']:.3f}": codes
        for name, (codes, row) in results.items()
    }
    save(
        maps_figure(panels, y_test), "neighbor_map.png", "2-D codes of 2,000 held-out MNIST images"
    )
    neighbor_map = f"neighbor_weight={NEIGHBOR_WEIGHT:g}"
    walk = plot_code_lattice(
        found[neighbor_map], (28, 28), n=12, codes=results[neighbor_map][0], vmin=0, vmax=1
    )
    save(walk, "neighbor_map_walk.png", "Decoded lattice over the neighbour map")


if __name__ == "__main__":
    main()
