"""
Maps that keep neighbourhoods: 2-D codes of MNIST with the neighbour objective
==============================================================================

Fits PCA, an AutoencoderTransformer, an AutoencoderTransformer with the
neighbour-preserving objective (``neighbor_weight=1``: "map mode") and, when
umap-learn is installed, UMAP, all at 2 components on 8,000 MNIST images,
with ``fit_transform``: the map a user draws of their own data (for skae's
map mode and UMAP, the layout of the training rows, ``embedding_``). Prints
the quality of that map (5-nearest-neighbour accuracy by 5-fold
cross-validation, trustworthiness on 2,000 of its rows), of the one-pass
codes of 2,000 held-out images (``transform``: 5-NN and trustworthiness),
and the held-out reconstruction error (UMAP has no decoder), then draws the
four maps side by side and a walk over skae's map: the decoded images of a
lattice of codes (``inverse_transform``), something UMAP and t-SNE cannot
draw.

Run ``python docs/examples/neighbor_map.py [--data-home DIR]`` (MNIST as
described in ``_shared.py``); the figures go to ``docs/images/neighbor_map.png``
and ``docs/images/neighbor_map_walk.png``. It takes a few minutes on a
laptop CPU.
"""

import time
import warnings

import numpy as np
from _shared import SEED, maps_figure, mnist_example, reconstruction_mse, save
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness
from sklearn.model_selection import cross_val_score
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
    """Fit ``reducer``; return its map of the training rows and what is printed about it."""
    started = time.perf_counter()
    train_codes = reducer.fit_transform(X_train)
    seconds = time.perf_counter() - started
    test_codes = reducer.transform(X_test)
    knn = KNeighborsClassifier(n_neighbors=5)
    sample = np.random.default_rng(SEED).choice(len(X_train), 2000, replace=False)
    decodes = hasattr(reducer, "inverse_transform") and not hasattr(reducer, "graph_")
    return train_codes, {
        "map 5-NN": cross_val_score(knn, train_codes, y_train, cv=5).mean(),
        "map trust": trustworthiness(X_train[sample], train_codes[sample], n_neighbors=5),
        "new 5-NN": knn.fit(train_codes, y_train).score(test_codes, y_test),
        "new trust": trustworthiness(X_test, test_codes, n_neighbors=5),
        "test MSE": reconstruction_mse(reducer, X_test) if decodes else np.nan,
        "fit s": seconds,
    }


def main(argv=None):
    X_train, X_test, y_train, y_test = mnist_example(__doc__, argv, None, "default epochs")
    found = reducers()
    results = {name: scores(r, X_train, X_test, y_train, y_test) for name, r in found.items()}
    columns = ["map 5-NN", "map trust", "new 5-NN", "new trust", "test MSE", "fit s"]
    print(f"{'method':<24}" + "".join(f"{column:>10}" for column in columns))
    for name, (_, row) in results.items():
        print(f"{name:<24}" + "".join(f"{row[column]:>10.4g}" for column in columns))
    print()
    panels = {
        f"{name}\n5-NN {row['map 5-NN']:.3f}, trustworthiness {row['map trust']:.3f}": codes
        for name, (codes, row) in results.items()
    }
    save(
        maps_figure(panels, y_train),
        "neighbor_map.png",
        "2-D maps of 8,000 MNIST images (fit_transform)",
    )
    neighbor_map = f"neighbor_weight={NEIGHBOR_WEIGHT:g}"
    walk = plot_code_lattice(
        found[neighbor_map], (28, 28), n=12, codes=results[neighbor_map][0], vmin=0, vmax=1
    )
    save(walk, "neighbor_map_walk.png", "Decoded lattice over skae's map")


if __name__ == "__main__":
    main()
