"""
Convolutional against dense AutoencoderTransformer on MNIST, at 10 components
=============================================================================

Fits ``AutoencoderTransformer(architecture="conv", input_shape=(1, 28, 28))``
and the default dense network on the same small subset of MNIST images,
prints each one's test reconstruction error (with PCA's for scale) and fit
time, and saves a figure of held-out originals over their dense and
convolutional reconstructions. The convolutional network trains several
times slower on a CPU (about 10x at full size), hence the small training
subset and epoch budget here: the numbers show the trend, not converged
models.

Run ``python docs/examples/conv_vs_dense.py [--data-home DIR]`` (MNIST as
described in ``_shared.py``); the figure goes to ``docs/images/conv_vs_dense.png``.
"""

from _shared import SEED, mnist_example, reconstruction_mse, save, timed_fit
from sklearn.decomposition import PCA

from skae import AutoencoderTransformer
from skae.plotting import plot_reconstructions

N_TRAIN = 3000
MAX_EPOCHS = 25
N_COMPONENTS = 10
N_SHOWN = 10


def models():
    shared = {"n_components": N_COMPONENTS, "max_epochs": MAX_EPOCHS, "random_state": SEED}
    return {
        "PCA": PCA(n_components=N_COMPONENTS),
        "dense": AutoencoderTransformer(**shared),
        "conv": AutoencoderTransformer(architecture="conv", input_shape=(1, 28, 28), **shared),
    }


def main(argv=None):
    details = f"{MAX_EPOCHS} epochs per network (conv is slow on a CPU); k={N_COMPONENTS}"
    X_train, X_test, _, _ = mnist_example(__doc__, argv, N_TRAIN, details)
    fitted = models()
    seconds = {name: timed_fit(model, X_train) for name, model in fitted.items()}
    mse = {name: reconstruction_mse(model, X_test) for name, model in fitted.items()}
    print(f"{'model':<6} {'test MSE':>9} {'/ PCA':>6} {'fit s':>7}")
    for name in fitted:
        print(f"{name:<6} {mse[name]:>9.4f} {mse[name] / mse['PCA']:>6.2f} {seconds[name]:>7.1f}")
    print(f"\nconv took {seconds['conv'] / seconds['dense']:.1f}x the dense network's fit time\n")

    rows = {f"{name}\nMSE {mse[name]:.4f}": fitted[name] for name in ("dense", "conv")}
    fig = plot_reconstructions(rows, X_test, (28, 28), n=N_SHOWN, vmin=0, vmax=1)
    title = f"Held-out MNIST digits reconstructed from {N_COMPONENTS} components"
    save(fig, "conv_vs_dense.png", title)


if __name__ == "__main__":
    main()
