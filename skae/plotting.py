"""Plots of codes, reconstructions, samples and training curves.

matplotlib is an optional dependency (``pip install skae[plot]``); it is
imported only when a plot is asked for. Every function returns the
matplotlib Axes or Figure it drew on.
"""

import numpy as np
from sklearn.base import clone
from sklearn.decomposition import PCA


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError("skae.plotting needs matplotlib: pip install 'skae[plot]'.") from error
    return plt


def plot_embedding(Z, y=None, ax=None, **scatter_kwargs):
    """Scatter a 2-D or 3-D code, coloured by label.

    Parameters
    ----------
    Z : array-like of shape (n_samples, 2) or (n_samples, 3)
        Codes, e.g. ``estimator.transform(X)``.
    y : array-like of shape (n_samples,), default=None
        Labels: a legend for at most 20 distinct labels, else a colour bar.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure (with 3-D axes for 3 columns) if None.
    **scatter_kwargs
        Passed to ``ax.scatter``.

    Returns
    -------
    ax : matplotlib Axes
    """
    Z = np.asarray(Z)
    if Z.ndim != 2 or Z.shape[1] not in (2, 3):
        raise ValueError(f"Z must have 2 or 3 columns; got shape {Z.shape}.")
    plt = _pyplot()
    if ax is None:
        fig = plt.figure()
        ax = fig.add_subplot(projection="3d" if Z.shape[1] == 3 else None)
    scatter_kwargs.setdefault("s", 8)
    if y is None:
        ax.scatter(*Z.T, **scatter_kwargs)
        return ax
    y = np.asarray(y)
    labels = np.unique(y)
    if len(labels) <= 20:
        colours = plt.get_cmap("tab20" if len(labels) > 10 else "tab10")
        for i, label in enumerate(labels):
            ax.scatter(*Z[y == label].T, color=colours(i), label=str(label), **scatter_kwargs)
        ax.legend(markerscale=2, fontsize="small", loc="best")
    else:
        points = ax.scatter(*Z.T, c=y, **scatter_kwargs)
        ax.figure.colorbar(points, ax=ax)
    return ax


def _image_grid(rows, image_shape, titles=None, cmap="gray_r"):
    """A figure with one row of images per entry of ``rows``."""
    plt = _pyplot()
    n_rows, n_cols = len(rows), len(rows[0])
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.2 * n_cols, 1.3 * n_rows), squeeze=False)
    for r, images in enumerate(rows):
        for c, image in enumerate(images):
            axes[r, c].imshow(np.reshape(image, image_shape), cmap=cmap)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        if titles:
            axes[r, 0].set_ylabel(titles[r])
    return fig


def plot_reconstructions(estimator, X, image_shape, n=10):
    """Show ``n`` images of ``X`` above their reconstructions by ``estimator``.

    Parameters
    ----------
    estimator : fitted transformer with ``inverse_transform``
    X : array-like of shape (n_samples, n_features)
    image_shape : tuple of int
        Shape of one image, e.g. ``(28, 28)``.
    n : int, default=10

    Returns
    -------
    fig : matplotlib Figure
    """
    originals = np.asarray(X)[:n]
    reconstructions = estimator.inverse_transform(estimator.transform(originals))
    return _image_grid(
        [originals, reconstructions], image_shape, titles=["original", "reconstructed"]
    )


def plot_samples(vae, image_shape, n=16, random_state=None):
    """Show ``n`` images drawn from a fitted VAE's prior, in a near-square grid.

    Parameters
    ----------
    vae : fitted VAETransformer
    image_shape : tuple of int
    n : int, default=16
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    fig : matplotlib Figure
    """
    samples = vae.sample(n, random_state=random_state)
    n_cols = int(np.ceil(np.sqrt(n)))
    rows = [samples[i : i + n_cols] for i in range(0, n, n_cols)]
    rows[-1] = np.vstack([rows[-1], np.zeros((n_cols - len(rows[-1]), samples.shape[1]))])
    return _image_grid(rows, image_shape)


def plot_loss_curve(estimator, ax=None):
    """Plot the training (and validation) loss per epoch of a fitted estimator.

    Returns
    -------
    ax : matplotlib Axes
    """
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots()
    epochs = np.arange(1, len(estimator.loss_curve_) + 1)
    ax.plot(epochs, estimator.loss_curve_, label="training")
    validation = getattr(estimator, "validation_loss_curve_", None)
    if validation:
        ax.plot(np.arange(1, len(validation) + 1), validation, label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    return ax


def reconstruction_r2(estimator, X):
    """1 - SSE / SST of ``estimator``'s reconstruction of ``X``.

    For PCA this is the explained variance ratio summed over components; it
    measures any reducer with ``inverse_transform`` on the same scale.
    """
    X = np.asarray(X, dtype=np.float64)
    residual = estimator.inverse_transform(estimator.transform(X)) - X
    return 1.0 - np.sum(residual**2) / np.sum((X - X.mean(axis=0)) ** 2)


def plot_reconstruction_curve(X, estimators=None, n_components=(2, 5, 10), X_test=None, ax=None):
    """Reconstruction R2 against the number of components, for several reducers.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Training data.
    estimators : dict of str to estimator, default=None
        Unfitted reducers, cloned and fitted at each ``n_components``;
        ``{"PCA": PCA()}`` if None. Add e.g. ``AutoencoderTransformer()``.
    n_components : sequence of int, default=(2, 5, 10)
    X_test : array-like, default=None
        Where R2 is measured; ``X`` if None.
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes
    """
    plt = _pyplot()
    estimators = {"PCA": PCA()} if estimators is None else estimators
    X_eval = X if X_test is None else X_test
    if ax is None:
        _, ax = plt.subplots()
    for name, estimator in estimators.items():
        scores = [
            reconstruction_r2(clone(estimator).set_params(n_components=k).fit(X), X_eval)
            for k in n_components
        ]
        ax.plot(n_components, scores, marker="o", label=name)
    ax.set_xlabel("n_components")
    ax.set_ylabel("reconstruction R$^2$ (1 - SSE/SST)")
    ax.legend()
    return ax
