"""
Denoising autoencoder against a plain one on noisy handwritten digits
=====================================================================

Trains two AutoencoderTransformers at 10 components on scikit-learn's
digits scaled to [0, 1]: a plain one, and a denoising one
(``noise="gaussian"``) that sees noisy inputs in training and learns to
reconstruct the clean ones. Both then reconstruct held-out test images
corrupted by Gaussian noise; the script prints the mean squared error of
those reconstructions against the clean images (and from clean inputs, for
reference) and saves rows of clean, noisy, plain-AE and denoising-AE images.

The digits ship with scikit-learn: nothing to download. Run
``python docs/examples/denoising_digits.py``; the figure goes to
``docs/images/denoising_digits.png``.
"""

import numpy as np
from _shared import SEED, parse_args, reconstruction_mse, save, timed_fit
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer
from skae.plotting import _image_grid

NOISE_LEVEL = 0.5
N_COMPONENTS = 10
N_SHOWN = 12


def load_split():
    """Digits scaled to [0, 1], split 80/20 (stratified)."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test = train_test_split(X / 16, test_size=0.2, stratify=y, random_state=SEED)
    return X_train, X_test


def add_noise(X, std):
    return X + np.random.default_rng(SEED).normal(0.0, std, X.shape)


def autoencoders():
    """Plain and denoising; ``noise_level`` only acts with ``noise`` set."""
    shared = {"n_components": N_COMPONENTS, "noise_level": NOISE_LEVEL, "random_state": SEED}
    return {
        "plain AE": AutoencoderTransformer(**shared),
        "denoising AE": AutoencoderTransformer(noise="gaussian", **shared),
    }


def main(argv=None):
    parse_args(__doc__, argv, data_home=False)
    X_train, X_test = load_split()
    std = NOISE_LEVEL * np.sqrt(X_train.var(axis=0).mean())
    noisy = add_noise(X_test, std)
    print(
        f"digits in [0, 1]: {len(X_train)} training, {len(X_test)} test images; "
        f"k={N_COMPONENTS}; test noise std {std:.3f} ({NOISE_LEVEL} x the data's scale)\n"
    )
    noisy_mse = np.mean((noisy - X_test) ** 2)
    shown = noisy[:N_SHOWN]
    rows = {"clean": X_test[:N_SHOWN], f"noisy input\nMSE {noisy_mse:.4f}": shown}
    print(f"{'model':<13} {'MSE from noisy':>15} {'MSE from clean':>15} {'fit s':>6}")
    for name, model in autoencoders().items():
        seconds = timed_fit(model, X_train)
        from_noisy = reconstruction_mse(model, noisy, target=X_test)
        from_clean = reconstruction_mse(model, X_test)
        print(f"{name:<13} {from_noisy:>15.4f} {from_clean:>15.4f} {seconds:>6.1f}")
        rows[f"{name}\nMSE {from_noisy:.4f}"] = model.inverse_transform(model.transform(shown))
    print(f"{'noisy input':<13} {noisy_mse:>15.4f}\n")

    # The noisy row is no reconstruction, so the rows go to the grid plot_reconstructions uses.
    fig = _image_grid(list(rows.values()), (8, 8), titles=list(rows), vmin=0, vmax=1)
    title = "Reconstructing noisy held-out digits (MSE against the clean images)"
    save(fig, "denoising_digits.png", title)


if __name__ == "__main__":
    main()
