"""Loaders for datasets that are not bundled with scikit-learn."""

import gzip
import os
from pathlib import Path

import numpy as np
from sklearn.datasets import get_data_home
from sklearn.utils import Bunch

__all__ = ["load_mnist"]

_IMAGE_MAGIC = 2051
_LABEL_MAGIC = 2049
_SPLITS = {"train": "train", "test": "t10k"}


def _data_home(data_home):
    if data_home is not None:
        return Path(data_home)
    if os.environ.get("SKAE_DATA_HOME"):
        return Path(os.environ["SKAE_DATA_HOME"])
    return Path(get_data_home()) / "mnist"


def _find(directory, stem):
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def _read_idx(path, magic, n_dims):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        content = f.read()
    header_size = 4 * (1 + n_dims)
    if len(content) < header_size:
        raise ValueError(f"{path} is too short to be an IDX file.")
    header = np.frombuffer(content[:header_size], dtype=">u4")
    if header[0] != magic:
        raise ValueError(f"{path} has magic number {header[0]}, expected {magic}.")
    shape = tuple(int(n) for n in header[1:])
    data = np.frombuffer(content[header_size:], dtype=np.uint8)
    if data.size != np.prod(shape):
        raise ValueError(f"{path} holds {data.size} values but its header promises {shape}.")
    return data.reshape(shape)


def load_mnist(data_home: str | os.PathLike | None = None, return_X_y: bool = False):
    """Load the MNIST handwritten digits from IDX files on disk.

    Nothing is downloaded. The files ``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
    ``t10k-labels-idx1-ubyte`` (each optionally gzipped) are read from
    ``data_home``; whichever splits are present are loaded, training split
    first.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder of the IDX files. Defaults to the environment variable
        ``SKAE_DATA_HOME``, else ``<scikit-learn data home>/mnist``.
    return_X_y : bool, default=False
        Return ``(X, y)`` instead of a Bunch.

    Returns
    -------
    data : Bunch with ``data`` (float32 of shape (n_samples, 784), pixels in
        [0, 1]), ``target`` (int64 labels 0-9), ``images`` (n_samples, 28, 28),
        ``split`` (the name of each sample's split) and ``DESCR``; or
        ``(X, y)`` when ``return_X_y`` is True.

    Raises
    ------
    FileNotFoundError
        When no complete split (images and labels) is found; the message says
        where it looked.
    ValueError
        When a file's header is not that of an MNIST IDX file.
    """
    directory = _data_home(data_home)
    images, labels, splits = [], [], []
    for split, prefix in _SPLITS.items():
        image_path = _find(directory, f"{prefix}-images-idx3-ubyte")
        label_path = _find(directory, f"{prefix}-labels-idx1-ubyte")
        if image_path is None or label_path is None:
            continue
        split_images = _read_idx(image_path, _IMAGE_MAGIC, 3)
        split_labels = _read_idx(label_path, _LABEL_MAGIC, 1)
        if len(split_images) != len(split_labels):
            raise ValueError(
                f"{image_path} has {len(split_images)} images but {label_path} "
                f"has {len(split_labels)} labels."
            )
        images.append(split_images)
        labels.append(split_labels)
        splits.append(np.full(len(split_labels), split))
    if not images:
        raise FileNotFoundError(
            f"No MNIST IDX files found in {directory} (looked for "
            "t10k-images-idx3-ubyte[.gz] with t10k-labels-idx1-ubyte[.gz], and the "
            "train-* pair). Pass data_home= or set SKAE_DATA_HOME to their folder."
        )
    image_array = np.concatenate(images).astype(np.float32) / 255.0
    X = image_array.reshape(len(image_array), -1)
    y = np.concatenate(labels).astype(np.int64)
    if return_X_y:
        return X, y
    return Bunch(
        data=X,
        target=y,
        images=image_array,
        split=np.concatenate(splits),
        DESCR=f"MNIST handwritten digits read from {directory}.",
    )
