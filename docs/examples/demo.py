"""
skae's main demo: PCA against autoencoders on scikit-learn's digits
===================================================================

Fits PCA, AutoencoderTransformer and VAETransformer at 2 components on a
training split and prints, for the test split, the reconstruction mean
squared error, the 5-nearest-neighbour accuracy of the codes and the fit
time. With matplotlib installed it also saves the 2-D embeddings side by
side, coloured by digit, and a grid of digits sampled from the VAE's prior.

Run it with ``make demo`` or ``python docs/examples/demo.py [--output DIR]``.
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from skae import AutoencoderTransformer, VAETransformer


def reducers(n_components, random_state):
    """The methods compared, by name, with default hyperparameters."""
    return {
        "PCA": PCA(n_components=n_components),
        "AutoencoderTransformer": AutoencoderTransformer(
            n_components=n_components, random_state=random_state
        ),
        "VAETransformer": VAETransformer(n_components=n_components, random_state=random_state),
    }


def evaluate(reducer, X_train, X_test, y_train, y_test):
    """Fit ``reducer`` and measure it on the test split."""
    started = time.perf_counter()
    reducer.fit(X_train)
    seconds = time.perf_counter() - started
    codes_train, codes_test = reducer.transform(X_train), reducer.transform(X_test)
    reconstruction = reducer.inverse_transform(codes_test)
    knn = KNeighborsClassifier(n_neighbors=5).fit(codes_train, y_train)
    return {
        "mse": float(np.mean((reconstruction - X_test) ** 2)),
        "knn": knn.score(codes_test, y_test),
        "seconds": seconds,
        "codes": codes_test,
    }


def print_table(results):
    pca_mse = results["PCA"]["mse"]
    print(f"{'method':<24} {'test MSE':>9} {'/ PCA':>6} {'5-NN acc':>9} {'fit s':>7}")
    for name, r in results.items():
        print(
            f"{name:<24} {r['mse']:>9.3f} {r['mse'] / pca_mse:>6.2f} "
            f"{r['knn']:>9.3f} {r['seconds']:>7.1f}"
        )


def pyplot():
    """matplotlib.pyplot on a file-only backend, or None when not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def embeddings_figure(plt, results, labels):
    """The 2-D codes side by side, coloured by digit."""
    fig, axes = plt.subplots(
        1, len(results), figsize=(4.5 * len(results), 4.5), layout="constrained"
    )
    for ax, (name, r) in zip(np.atleast_1d(axes), results.items(), strict=True):
        points = ax.scatter(*r["codes"].T, c=labels, cmap="tab10", s=6)
        ax.set_title(f"{name}\ntest 5-NN accuracy {r['knn']:.2f}")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(points, ax=axes, label="digit", ticks=range(10))
    return fig


def samples_figure(plt, vae, n_rows=4, n_cols=8):
    """A grid of images decoded from codes drawn from the VAE's prior."""
    images = vae.sample(n_rows * n_cols, random_state=0).reshape(-1, 8, 8)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(n_cols, n_rows))
    for ax, image in zip(axes.ravel(), images, strict=True):
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=16)
        ax.axis("off")
    fig.suptitle("VAETransformer: digits sampled from the prior")
    return fig


def main(argv=None):
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().split("\n", 1)[0])
    parser.add_argument("--output", default="demo_output", help="folder for the PNG")
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=args.random_state
    )
    print(
        f"digits: {len(X_train)} training and {len(X_test)} test images of 64 "
        "raw pixels (0-16), reduced to 2 components\n"
    )
    fitted = reducers(2, args.random_state)
    results = {
        name: evaluate(reducer, X_train, X_test, y_train, y_test)
        for name, reducer in fitted.items()
    }
    print_table(results)

    plt = pyplot()
    if plt is None:
        print("\nInstall matplotlib (pip install matplotlib) to also save plots.")
        return
    figures = {
        "the 2-D embeddings of the test images": (
            embeddings_figure(plt, results, y_test),
            "digits_embeddings.png",
        ),
        "digits sampled from the VAE's prior": (
            samples_figure(plt, fitted["VAETransformer"]),
            "vae_samples.png",
        ),
    }
    if os.environ.get("SKAE_GALLERY"):
        return  # the documentation's gallery draws the open figures on the page
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    print()
    for what, (fig, name) in figures.items():
        fig.savefig(output / name, dpi=100)
        plt.close(fig)
        print(f"Saved {what} to {(output / name).resolve()}")


if __name__ == "__main__":
    main()
