"""What the example scripts in this folder share: data, command line, timing, figures.

The MNIST examples read MNIST from disk with ``skae.datasets.load_mnist``
(nothing is downloaded; only its 10,000-image test split is needed) from
``--data-home DIR`` or else ``SKAE_DATA_HOME``. Each script is run from the
repository root as ``python docs/examples/<name>.py``; Python then puts this
folder on ``sys.path``, which is how the scripts import this module. Figures
go to ``docs/images/``, except in the documentation's gallery (``make docs``
sets ``SKAE_GALLERY``), which shows them on the example's page instead.
"""

import argparse
import os
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # the examples only write files

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from skae.datasets import load_mnist  # noqa: E402

IMAGES = Path(__file__).resolve().parents[1] / "images"
SEED = 0


def parse_args(doc, argv=None, data_home=True):
    """Parse the command line of an example whose module docstring is ``doc``.

    With ``data_home``, the only option is ``--data-home DIR``, the folder of
    the MNIST IDX files (``SKAE_DATA_HOME`` if not given).
    """
    parser = argparse.ArgumentParser(description=(doc or "").strip().split("\n", 1)[0])
    if data_home:
        parser.add_argument(
            "--data-home", default=None, help="folder of the MNIST IDX files (else SKAE_DATA_HOME)"
        )
    return parser.parse_args(argv)


def load_mnist_split(data_home=None, n_train=None):
    """MNIST's test split cut 8,000/2,000 (stratified, seed 0).

    Returns ``X_train, X_test, y_train, y_test``; pixels in [0, 1]. With
    ``n_train``, only the first ``n_train`` training images are kept.
    """
    X, y = load_mnist(data_home, return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, train_size=8000, test_size=2000, stratify=y, random_state=SEED
    )
    return X_train[:n_train], X_test, y_train[:n_train], y_test


def mnist_example(doc, argv, n_train, details):
    """Parse an MNIST example's command line, load its split and say what it trains on.

    Returns ``X_train, X_test, y_train, y_test`` from :func:`load_mnist_split`.
    """
    args = parse_args(doc, argv)
    X_train, X_test, y_train, y_test = load_mnist_split(args.data_home, n_train)
    subset = " (a subset, to keep this quick)" if n_train is not None else ""
    print(f"MNIST: trained on {len(X_train)} images{subset}, tested on {len(X_test)}; {details}\n")
    return X_train, X_test, y_train, y_test


def mnist_or_digits(doc, argv, n_train, details):
    """MNIST's split as :func:`mnist_example` gives it, or scikit-learn's digits without MNIST.

    Returns ``X_train, X_test, image_shape``; says which data it is. For
    examples that also make sense on the bundled 8x8 digits (1,437 / 360).
    """
    args = parse_args(doc, argv)
    try:
        X_train, X_test, _, _ = load_mnist_split(args.data_home, n_train)
    except FileNotFoundError:
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        X_train, X_test = train_test_split(X / 16.0, train_size=0.8, stratify=y, random_state=SEED)
        print(f"MNIST not found: scikit-learn's 8x8 digits instead; {details}\n")
        return X_train, X_test, (8, 8)
    print(f"MNIST: trained on {len(X_train)} images, tested on {len(X_test)}; {details}\n")
    return X_train, X_test, (28, 28)


def timed_fit(model, *fit_args):
    """Fit ``model``; return the seconds it took.

    The examples keep epoch budgets short on purpose, so the
    ConvergenceWarning that says more epochs would help is silenced.
    """
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(*fit_args)
    return time.perf_counter() - started


def maps_figure(panels, y):
    """One scatter of codes per ``{title: codes}`` entry, coloured by ``y``, one legend."""
    from skae.plotting import plot_embedding

    fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels), 4.4), layout="constrained")
    for ax, (title, codes) in zip(axes, panels.items(), strict=True):
        plot_embedding(codes, y, ax=ax, s=3, alpha=0.6)
        ax.get_legend().remove()
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, title="digit", loc="outside right center", markerscale=4)
    return fig


def in_gallery():
    """Whether the script runs inside the documentation's gallery build."""
    return bool(os.environ.get("SKAE_GALLERY"))


def save(fig, name, title=None, dpi=80):
    """Save ``fig`` as ``docs/images/<name>``, titled, cropped to what it draws; close it.

    In the gallery the figure is only titled and left open: the gallery
    draws it on the example's page, and ``docs/images`` stays as it is.
    """
    if title:
        fig.suptitle(title, y=1.0, va="bottom")  # above the axes; kept by the tight crop
    if in_gallery():
        return
    IMAGES.mkdir(parents=True, exist_ok=True)
    path = IMAGES / name
    fig.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.08)
    plt.close(fig)
    print(f"Saved {path}")


def reconstruction_mse(model, X, target=None):
    """Mean squared error of ``model``'s reconstruction of ``X`` against ``target`` (else ``X``)."""
    target = X if target is None else target
    return float(np.mean((model.inverse_transform(model.transform(X)) - target) ** 2))
