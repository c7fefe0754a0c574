"""Plots of codes, reconstructions, samples and training curves.

matplotlib is an optional dependency (``pip install matplotlib``); it is
imported only when a plot is asked for. Every function returns the
matplotlib Axes or Figure it drew on.
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import TransformerMixin, clone
from sklearn.decomposition import PCA

from ._random import RandomStateLike
from .metrics import reconstruction_error

__all__ = [
    "plot_code_lattice",
    "plot_code_traversal",
    "plot_embedding",
    "plot_loadings",
    "plot_loss_curve",
    "plot_reconstruction_curve",
    "plot_reconstructions",
    "plot_samples",
    "reconstruction_r2",
]

if TYPE_CHECKING:  # matplotlib is optional: only for the annotations
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ._base import BaseAutoencoder
    from ._vae import VAETransformer


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError("skae.plotting needs matplotlib: pip install matplotlib.") from error
    return plt


def plot_embedding(
    Z: ArrayLike, y: ArrayLike | None = None, ax: "Axes | None" = None, **scatter_kwargs
) -> "Axes":
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
        The axes drawn on.
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


def _image_grid(rows, image_shape, titles=None, cmap="gray_r", vmin=None, vmax=None):
    """A figure with one row of images per entry of ``rows``.

    Parameters
    ----------
    rows : sequence of array-like
        Each entry holds the flat images of one row; shorter rows are
        padded with blank axes.
    image_shape : tuple of int
        Shape of one image, e.g. ``(28, 28)``.
    titles : sequence of str, default=None
        One label per row, written horizontally at the left of the row.
    cmap : str, default="gray_r"
    vmin, vmax : float, default=None
        Passed to every ``imshow``: one grey range for all images.

    Returns
    -------
    fig : matplotlib Figure
        Images drawn with ``interpolation="nearest"``, without ticks.
    """
    plt = _pyplot()
    n_rows, n_cols = len(rows), max(len(images) for images in rows)
    height, width = image_shape[:2]
    cell = 0.9  # inches per image column
    margin, label_space = 0.05, (1.3 if titles else 0.05)
    fig_width = label_space + n_cols * cell * 1.05 + margin
    fig_height = n_rows * cell * height / width * 1.05 + 2 * margin
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(fig_width, fig_height), squeeze=False)
    fig.subplots_adjust(
        left=label_space / fig_width,
        right=1 - margin / fig_width,
        bottom=margin / fig_height,
        top=1 - margin / fig_height,
        wspace=0.05,
        hspace=0.05,
    )
    for r, images in enumerate(rows):
        for c, image in enumerate(images):
            axes[r, c].imshow(
                np.reshape(image, image_shape),
                cmap=cmap,
                vmin=vmin,
                vmax=vmax,
                interpolation="nearest",
            )
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
        for ax in axes[r, len(images) :]:
            ax.axis("off")
        if titles:
            axes[r, 0].set_ylabel(str(titles[r]), rotation=0, ha="right", va="center")
    return fig


def plot_reconstructions(
    estimator: "TransformerMixin | Mapping[str, TransformerMixin]",
    X: ArrayLike,
    image_shape: tuple,
    n: int = 10,
    *,
    vmin: float | None = None,
    vmax: float | None = None,
) -> "Figure":
    """Show ``n`` images of ``X`` above their reconstructions by one or more estimators.

    Parameters
    ----------
    estimator : fitted transformer with ``inverse_transform``, or mapping
        One estimator (its row is labelled "reconstructed"), or an ordered
        mapping ``{row label: fitted estimator}``: one row of reconstructions
        per estimator, in the mapping's order, labelled by its key.
    X : array-like of shape (n_samples, n_features)
        Images, flattened to rows.
    image_shape : tuple of int
        Shape of one image, e.g. ``(28, 28)``.
    n : int, default=10
        How many images of ``X`` (the first ones) are shown.
    vmin, vmax : float, default=None
        Grey range shared by every image, e.g. ``vmin=0, vmax=1`` for data
        in [0, 1]; each image is scaled to its own range if None.

    Returns
    -------
    fig : matplotlib Figure
        ``1 + len(estimators)`` rows of ``n`` axes: the originals on top.
    """
    originals = np.asarray(X)[:n]
    estimators = estimator if isinstance(estimator, Mapping) else {"reconstructed": estimator}
    rows = [originals] + [e.inverse_transform(e.transform(originals)) for e in estimators.values()]
    titles = ["original", *estimators]
    return _image_grid(rows, image_shape, titles=titles, vmin=vmin, vmax=vmax)


def plot_code_lattice(
    estimator: TransformerMixin,
    image_shape: tuple,
    n: int = 10,
    *,
    codes: ArrayLike | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
) -> "Figure":
    """Decode an ``n`` x ``n`` lattice of points spanning a 2-D code space: walk the map.

    Parameters
    ----------
    estimator : fitted transformer with ``inverse_transform`` and 2 components
        Its decoder draws the images.
    image_shape : tuple of int
        Shape of one image, e.g. ``(28, 28)``.
    n : int, default=10
        Lattice points per axis.
    codes : array-like of shape (n_samples, 2), default=None
        Codes whose 2nd to 98th percentiles the lattice spans (e.g.
        ``estimator.transform(X)``); the lattice spans [-2, 2] on both axes
        if None (the codes of a PCA start are whitened).
    vmin, vmax : float, default=None
        Grey range shared by every image; each image is scaled to its own
        range if None.

    Returns
    -------
    fig : matplotlib Figure
        ``n`` rows of ``n`` images: the first code grows to the right, the
        second upwards, as in a scatter plot of the codes.
    """
    if codes is None:
        low, high = np.full(2, -2.0), np.full(2, 2.0)
    else:
        codes = np.asarray(codes, dtype=np.float64)
        if codes.ndim != 2 or codes.shape[1] != 2:
            raise ValueError(f"codes must have shape (n_samples, 2); got {codes.shape}.")
        low, high = np.percentile(codes, [2, 98], axis=0)
    first, second = np.linspace(low[0], high[0], n), np.linspace(high[1], low[1], n)
    lattice = np.array([[x, y] for y in second for x in first])
    images = estimator.inverse_transform(lattice)
    rows = [images[i * n : (i + 1) * n] for i in range(n)]
    return _image_grid(rows, image_shape, vmin=vmin, vmax=vmax)


def plot_code_traversal(
    estimator: TransformerMixin,
    X: ArrayLike,
    image_shape: tuple,
    *,
    n_steps: int = 7,
    percentiles: tuple = (5, 95),
    vmin: float | None = None,
    vmax: float | None = None,
) -> "Figure":
    """Decode steps along each code axis, the others held at the data's median code.

    Parameters
    ----------
    estimator : fitted transformer with ``transform`` and ``inverse_transform``
        An autoencoder (or PCA: its traversals are its components added to
        the mean).
    X : array-like of shape (n_samples, n_features)
        Rows whose codes set the range of each axis and the median.
    image_shape : tuple of int
        Shape of one image, e.g. ``(28, 28)``.
    n_steps : int, default=7
        Images per axis, from the lower to the upper percentile.
    percentiles : (float, float), default=(5, 95)
        The range of each code axis walked, as percentiles of ``X``'s codes.
    vmin, vmax : float, default=None
        Grey range shared by every image.

    Returns
    -------
    fig : matplotlib Figure
        One row per code axis, labelled with the axis and its range.
    """
    codes = np.asarray(estimator.transform(X), dtype=np.float64)
    low, high = np.percentile(codes, percentiles, axis=0)
    centre = np.median(codes, axis=0)
    rows, titles = [], []
    for k in range(codes.shape[1]):
        walk = np.tile(centre, (n_steps, 1))
        walk[:, k] = np.linspace(low[k], high[k], n_steps)
        rows.append(estimator.inverse_transform(walk))
        titles.append(f"code {k}\n{low[k]:.3g} to {high[k]:.3g}")
    return _image_grid(rows, image_shape, titles=titles, vmin=vmin, vmax=vmax)


def plot_loadings(
    loadings: "ArrayLike | Mapping[str, ArrayLike]",
    *,
    image_shape: tuple | None = None,
    feature_names: ArrayLike | None = None,
    n_top: int = 10,
) -> "Figure":
    """Draw per-component loadings: as images for image data, else as bars of the top features.

    Parameters
    ----------
    loadings : array-like of shape (n_components, n_features), or a dict of them
        For example ``PCA.components_`` or ``skae.inspection.code_loadings(...).decoder``;
        a dict ``{title: loadings}`` draws one row per entry (PCA beside skae).
    image_shape : tuple of int, default=None
        Shape of one image, e.g. ``(28, 28)``: each component is drawn as an
        image on a diverging scale (red positive, blue negative), each
        scaled to its largest absolute value.
    feature_names : array-like of str of shape (n_features,), default=None
        Labels of the bars (``code_loadings(...).feature_names``); ``x0``,
        ``x1``, ... if None. Unused for images.
    n_top : int, default=10
        Bars per component: the features of largest absolute loading.

    Returns
    -------
    fig : matplotlib Figure
        One row per entry of ``loadings``, one column per component.
    """
    entries = loadings if isinstance(loadings, Mapping) else {"": loadings}
    entries = {
        title: np.atleast_2d(np.asarray(v, dtype=np.float64)) for title, v in entries.items()
    }
    widths = {v.shape[1] for v in entries.values()}
    if len(widths) != 1:
        raise ValueError(
            f"every entry of loadings needs the same number of features; got {widths}."
        )
    if image_shape is not None:
        rows = [
            v / np.maximum(np.abs(v).max(axis=1, keepdims=True), 1e-300) for v in entries.values()
        ]
        titles = list(entries) if len(entries) > 1 or "" not in entries else None
        return _image_grid(rows, image_shape, titles=titles, cmap="RdBu_r", vmin=-1, vmax=1)
    n_features = widths.pop()
    names = np.asarray(
        [f"x{j}" for j in range(n_features)] if feature_names is None else feature_names
    ).astype(str)
    if names.shape != (n_features,):
        raise ValueError(f"feature_names needs {n_features} names; got {names.shape[0]}.")
    plt = _pyplot()
    n_rows, n_cols = len(entries), max(v.shape[0] for v in entries.values())
    n_top = min(n_top, n_features)
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(2.6 * n_cols + 0.8, (0.22 * n_top + 0.8) * n_rows),
        squeeze=False,
        layout="constrained",
    )
    for r, (title, values) in enumerate(entries.items()):
        for k in range(n_cols):
            ax = axes[r, k]
            if k >= values.shape[0]:
                ax.set_axis_off()
                continue
            top = np.argsort(-np.abs(values[k]), kind="stable")[:n_top][::-1]
            colours = np.where(values[k, top] >= 0, "tab:red", "tab:blue")
            ax.barh(np.arange(len(top)), values[k, top], color=colours)
            ax.set_yticks(np.arange(len(top)), names[top], fontsize=8)
            ax.axvline(0, color="black", linewidth=0.6)
            ax.set_title(f"{title} {k}".strip(), fontsize=9)
            ax.tick_params(axis="x", labelsize=7)
    return fig


def plot_samples(
    vae: "VAETransformer",
    image_shape: tuple,
    n: int = 16,
    random_state: RandomStateLike = None,
    *,
    vmin: float | None = None,
    vmax: float | None = None,
) -> "Figure":
    """Show ``n`` images drawn from a fitted VAE's prior, in a near-square grid.

    Parameters
    ----------
    vae : fitted VAETransformer
        The model to sample from (``vae.sample``).
    image_shape : tuple of int
        Shape of one image, e.g. ``(28, 28)``.
    n : int, default=16
        How many samples.
    random_state : int, RandomState instance or None, default=None
        Seeds the draws.
    vmin, vmax : float, default=None
        Grey range of all samples, e.g. 0 and 1 for a Bernoulli VAE; each
        sample is scaled to its own range if None.

    Returns
    -------
    fig : matplotlib Figure
        A grid of ``ceil(sqrt(n))`` columns; the unused axes of the last
        row are switched off.
    """
    samples = vae.sample(n, random_state=random_state)
    n_cols = int(np.ceil(np.sqrt(n)))
    rows = [samples[i : i + n_cols] for i in range(0, n, n_cols)]
    return _image_grid(rows, image_shape, vmin=vmin, vmax=vmax)


def plot_loss_curve(estimator: "BaseAutoencoder", ax: "Axes | None" = None) -> "Axes":
    """Plot the training (and validation) loss per epoch of a fitted estimator.

    Parameters
    ----------
    estimator : fitted AutoencoderTransformer or VAETransformer
        Its ``loss_curve_`` (and ``validation_loss_curve_``, if any) are drawn.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure's axes if None.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on, with a legend.
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


def reconstruction_r2(estimator: TransformerMixin, X: ArrayLike) -> float:
    """1 - SSE / SST of ``estimator``'s reconstruction of ``X``.

    For PCA this is the explained variance ratio summed over components; it
    measures any reducer with ``inverse_transform`` on the same scale.

    Parameters
    ----------
    estimator : fitted transformer with ``inverse_transform``
        The reducer to measure.
    X : array-like of shape (n_samples, n_features)
        The rows to reconstruct.

    Returns
    -------
    r2 : float
        1 for a perfect reconstruction, 0 for reconstructing every row by
        the mean of ``X``.
    """
    X = np.asarray(X, dtype=np.float64)
    return 1.0 - reconstruction_error(estimator, X) / X.var(axis=0).mean()


def plot_reconstruction_curve(
    X: ArrayLike,
    estimators: "Mapping[str, TransformerMixin] | None" = None,
    n_components: tuple = (2, 5, 10),
    X_test: ArrayLike | None = None,
    ax: "Axes | None" = None,
) -> "Axes":
    """Reconstruction R2 against the number of components, for several reducers.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Training data.
    estimators : dict of str to estimator, default=None
        Unfitted reducers, cloned and fitted at each ``n_components``;
        ``{"PCA": PCA()}`` if None. Add e.g. ``AutoencoderTransformer()``.
    n_components : sequence of int, default=(2, 5, 10)
        The code sizes on the horizontal axis.
    X_test : array-like, default=None
        Where R2 is measured; ``X`` if None.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure's axes if None.

    Returns
    -------
    ax : matplotlib Axes
        One line per reducer, with a legend.
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
