"""What the denoising and sparsity options buy, measured on held-out digits.

- Denoising: an AutoencoderTransformer trained with ``noise="gaussian"``
  against a plain one (k=10). Both reconstruct test images corrupted by the
  same Gaussian noise; the table gives the mean squared error of the
  reconstructions against the clean images (lower is better).
- Sparsity: the share of near-zero code entries (|z| < 5% of the largest
  |z|) on the test set, and the test reconstruction error, as ``sparsity``
  grows (k=32).

Data: scikit-learn's digits scaled to [0, 1], stratified 80/20 split, seed 0.
Run ``python benchmarks/bench_variants.py``.
"""

import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer

SEED = 0
NOISE_LEVEL = 0.5  # times the data's root mean feature variance


def digits():
    X, y = load_digits(return_X_y=True)
    X_train, X_test = train_test_split(X / 16, test_size=0.2, stratify=y, random_state=SEED)
    return X_train, X_test


def reconstruct(model, X):
    return model.inverse_transform(model.transform(X))


def denoising_rows(X_train, X_test):
    scale = np.sqrt(X_train.var(axis=0).mean())
    noisy = X_test + np.random.default_rng(SEED).normal(0, NOISE_LEVEL * scale, X_test.shape)
    rows = []
    for name, params in (("plain", {}), ("denoising", {"noise": "gaussian"})):
        model = AutoencoderTransformer(
            n_components=10, noise_level=NOISE_LEVEL, random_state=SEED, **params
        ).fit(X_train)
        rows.append(
            (
                name,
                np.mean((reconstruct(model, noisy) - X_test) ** 2),
                np.mean((reconstruct(model, X_test) - X_test) ** 2),
            )
        )
    return rows


def sparsity_rows(X_train, X_test, weights=(0.0, 0.1, 1.0)):
    rows = []
    for weight in weights:
        model = AutoencoderTransformer(n_components=32, sparsity=weight, random_state=SEED)
        codes = model.fit(X_train).transform(X_test)
        near_zero = np.mean(np.abs(codes) < 0.05 * np.abs(codes).max())
        mse = np.mean((model.inverse_transform(codes) - X_test) ** 2)
        rows.append((weight, near_zero, mse))
    return rows


def main():
    warnings.simplefilter("ignore", ConvergenceWarning)
    X_train, X_test = digits()
    print(f"Denoising (k=10): test images + Gaussian noise of std {NOISE_LEVEL} x data scale\n")
    print("| model | MSE to clean, from noisy input | MSE to clean, from clean input |")
    print("| --- | --- | --- |")
    for name, from_noisy, from_clean in denoising_rows(X_train, X_test):
        print(f"| {name} | {from_noisy:.5f} | {from_clean:.5f} |")
    print("\nSparsity (k=32)\n")
    print("| sparsity | share of near-zero code entries | test MSE |")
    print("| --- | --- | --- |")
    for weight, near_zero, mse in sparsity_rows(X_train, X_test):
        print(f"| {weight} | {near_zero:.3f} | {mse:.5f} |")


if __name__ == "__main__":
    main()
