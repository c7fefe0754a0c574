"""
MNIST reconstructions by PCA and AutoencoderTransformer at 2, 10 and 32 components
==================================================================================

Fits PCA and an AutoencoderTransformer at each size on a subset of MNIST
images, prints the mean squared reconstruction error on held-out images for
each method and size, and saves one figure: held-out originals on top, then
one row of reconstructions per method and size.

Run ``python docs/examples/mnist_reconstructions.py [--data-home DIR]`` (MNIST
as described in ``_shared.py``); the figure goes to
``docs/images/mnist_reconstructions.png``.
"""

from _shared import SEED, mnist_example, reconstruction_mse, save, timed_fit
from sklearn.decomposition import PCA

from skae import AutoencoderTransformer
from skae.plotting import plot_reconstructions

N_TRAIN = 4000
MAX_EPOCHS = 20
N_COMPONENTS = (2, 10, 32)
N_SHOWN = 10


def reducer(method, k):
    if method == "PCA":
        return PCA(n_components=k)
    return AutoencoderTransformer(n_components=k, max_epochs=MAX_EPOCHS, random_state=SEED)


def fit_all(X_train, X_test):
    """Fitted model, test MSE and fit time, per (method, k)."""
    results = {}
    for k in N_COMPONENTS:
        for method in ("PCA", "AE"):
            model = reducer(method, k)
            seconds = timed_fit(model, X_train)
            results[method, k] = (model, reconstruction_mse(model, X_test), seconds)
    return results


def main(argv=None):
    details = f"{MAX_EPOCHS} epochs per autoencoder"
    X_train, X_test, _, _ = mnist_example(__doc__, argv, N_TRAIN, details)
    results = fit_all(X_train, X_test)
    print(f"{'k':>3} {'PCA test MSE':>13} {'AE test MSE':>12} {'AE / PCA':>9} {'AE fit s':>9}")
    for k in N_COMPONENTS:
        pca_mse, (_, ae_mse, ae_seconds) = results["PCA", k][1], results["AE", k]
        ratio = ae_mse / pca_mse
        print(f"{k:>3} {pca_mse:>13.4f} {ae_mse:>12.4f} {ratio:>9.2f} {ae_seconds:>9.1f}")

    rows = {
        f"{method} k={k}\nMSE {mse:.4f}": model for (method, k), (model, mse, _) in results.items()
    }
    fig = plot_reconstructions(rows, X_test, (28, 28), n=N_SHOWN, vmin=0, vmax=1)
    print()
    save(
        fig,
        "mnist_reconstructions.png",
        "Held-out MNIST digits and their reconstructions (test MSE per row)",
    )


if __name__ == "__main__":
    main()
