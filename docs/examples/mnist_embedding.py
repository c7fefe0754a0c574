"""2-D codes of MNIST digits: PCA, AutoencoderTransformer and VAETransformer.

Fits each reducer at 2 components on a subset of MNIST images, plots the
codes of held-out images coloured by digit in three panels, and prints the
accuracy of a 5-nearest-neighbour classifier on each 2-D code (fitted on the
training codes, scored on the held-out ones).

Run ``python docs/examples/mnist_embedding.py [--data-home DIR]`` (MNIST as
described in ``_shared.py``); the figure goes to ``docs/images/mnist_embedding.png``.
"""

import matplotlib.pyplot as plt
from _shared import SEED, mnist_example, save, timed_fit
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier

from skae import AutoencoderTransformer, VAETransformer
from skae.plotting import plot_embedding

N_TRAIN = 5000
MAX_EPOCHS = 25


def reducers():
    """The three methods compared, each at 2 components."""
    shared = {"n_components": 2, "max_epochs": MAX_EPOCHS, "random_state": SEED}
    return {
        "PCA": PCA(n_components=2),
        "AutoencoderTransformer": AutoencoderTransformer(**shared),
        "VAETransformer": VAETransformer(**shared),
    }


def fit_and_score(reducer, X_train, X_test, y_train, y_test):
    """Fit ``reducer``; return test codes, 5-NN accuracy on them and the fit time."""
    seconds = timed_fit(reducer, X_train)
    codes_test = reducer.transform(X_test)
    knn = KNeighborsClassifier(n_neighbors=5).fit(reducer.transform(X_train), y_train)
    return codes_test, knn.score(codes_test, y_test), seconds


def embedding_figure(results, y_test):
    """Three panels of test codes coloured by digit, one legend on the right."""
    fig, axes = plt.subplots(1, len(results), figsize=(13, 4.4), layout="constrained")
    for ax, (name, (codes, accuracy, _)) in zip(axes, results.items(), strict=True):
        plot_embedding(codes, y_test, ax=ax, s=3, alpha=0.6)
        ax.get_legend().remove()
        ax.set_title(f"{name}\n5-NN accuracy {accuracy:.2f}")
        ax.set_xticks([])
        ax.set_yticks([])
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, title="digit", loc="outside right center", markerscale=4)
    return fig


def main(argv=None):
    details = f"{MAX_EPOCHS} epochs per autoencoder"
    X_train, X_test, y_train, y_test = mnist_example(__doc__, argv, N_TRAIN, details)
    results = {
        name: fit_and_score(reducer, X_train, X_test, y_train, y_test)
        for name, reducer in reducers().items()
    }
    print(f"{'method':<24} {'5-NN accuracy':>14} {'fit s':>7}")
    for name, (_, accuracy, seconds) in results.items():
        print(f"{name:<24} {accuracy:>14.3f} {seconds:>7.1f}")
    print()
    fig = embedding_figure(results, y_test)
    save(fig, "mnist_embedding.png", "2-D codes of 2,000 held-out MNIST test images")


if __name__ == "__main__":
    main()
