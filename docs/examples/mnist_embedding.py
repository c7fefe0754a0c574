"""
2-D codes of MNIST digits: PCA, AutoencoderTransformer and VAETransformer
=========================================================================

Fits each reducer at 2 components on a subset of MNIST images, plots the
codes of held-out images coloured by digit in three panels, and prints the
accuracy of a 5-nearest-neighbour classifier on each 2-D code (fitted on the
training codes, scored on the held-out ones).

Run ``python docs/examples/mnist_embedding.py [--data-home DIR]`` (MNIST as
described in ``_shared.py``); the figure goes to ``docs/images/mnist_embedding.png``.
"""

from _shared import SEED, maps_figure, mnist_example, save, timed_fit
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier

from skae import AutoencoderTransformer, VAETransformer

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
    panels = {
        f"{name}\n5-NN accuracy {accuracy:.2f}": codes
        for name, (codes, accuracy, _) in results.items()
    }
    fig = maps_figure(panels, y_test)
    save(fig, "mnist_embedding.png", "2-D codes of 2,000 held-out MNIST test images")


if __name__ == "__main__":
    main()
