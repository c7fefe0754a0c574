"""A fitting call's data: checked, held in memory or streamed, and split.

:func:`training_data` turns what the user passed into an array in memory or
an :class:`~skae._sources.ArrayReader` for data beyond the memory budget;
:func:`in_memory` and :func:`streamed` make the training and validation
sources and the data the start of a new network needs.
"""

import functools

import numpy as np
import scipy.sparse as sp
from sklearn.model_selection import train_test_split

from ._data import GraphSource, RowSource, StreamSource
from ._initialization import data_scale, pca_sample_rows, scales_from_moments
from ._neighbors import NeighborSampler, fuzzy_graph
from ._sources import ArrayReader, fits_in_memory, summarize

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_float32_range(X, what="X"):
    """Raise a ValueError when ``X`` holds values that float32 cannot represent."""
    values = X.data if sp.issparse(X) else X
    if values.dtype == np.float64 and values.size:
        largest = max(-float(values.min()), float(values.max()))
        if largest > _FLOAT32_MAX:
            raise ValueError(
                f"{what} holds values up to {largest:.4g} in magnitude, beyond float32's "
                f"range ({_FLOAT32_MAX:.4g}), in which the network computes. Scale the "
                "data first (e.g. StandardScaler)."
            )


def training_data(estimator, X, reset):
    """``X`` checked for training: an ndarray or sparse matrix held in memory, or an
    :class:`ArrayReader` for data beyond the memory budget (see ``skae.set_config``).

    Data on disk or in a cluster that fits the budget is read (and checked) into
    memory block by block; what does not fit is only checked as it is streamed.
    """
    X = estimator._checked_input(X, reset=reset)
    if isinstance(X, ArrayReader):
        if not fits_in_memory(*X.shape, itemsize=X.dtype.itemsize):
            X.check = functools.partial(_check_training_block, estimator)
            return X
        X = X.materialize()
    check_float32_range(X)
    estimator._check_training_data(X)
    if not sp.issparse(X) and not fits_in_memory(*X.shape):
        return ArrayReader(X)
    return X


def resolved_output_activation(estimator, X, previous=None):
    """The output activation a network for ``X`` gets: the estimator's, with ``"auto"`` resolved.

    ``"auto"`` is ``"sigmoid"`` when every training value lies in [0, 1]
    (images scaled to [0, 1], proportions), else ``"linear"``; a continued fit
    keeps what the network was built with. Data streamed from beyond the
    memory budget costs one extra read to find its range.
    """
    if estimator.output_activation != "auto":
        return estimator.output_activation
    if previous is not None:
        return previous.spec.output_activation
    return "sigmoid" if in_unit_interval(X) else "linear"


def in_unit_interval(X):
    """Whether every value of ``X`` (an array, sparse matrix or ArrayReader) lies in [0, 1]."""
    if isinstance(X, ArrayReader):
        return all(in_unit_interval(X.read(start, stop)) for start, stop in X.blocks())
    values = X.data if sp.issparse(X) else X  # implicit zeros lie in [0, 1]
    return not values.size or (values.min() >= 0 and values.max() <= 1)


def column_means(X):
    """Per-feature means of ``X`` in float64 (one extra read of streamed data)."""
    if isinstance(X, ArrayReader):
        sums = sum(X.read_with_sums(start, stop)[1] for start, stop in X.blocks())
        return sums / X.shape[0]
    if sp.issparse(X):
        return np.asarray(X.mean(axis=0, dtype=np.float64)).ravel()
    return X.mean(axis=0, dtype=np.float64)


def _check_training_block(estimator, block):
    check_float32_range(block)
    estimator._check_training_data(block)


def in_memory(estimator, X, device, split_seed, early_stopping):
    """Training and validation sources held in memory, and the start's data."""
    train_X, validation_X = X, None
    if early_stopping:
        train_X, validation_X = _split(X, estimator.validation_fraction, split_seed)
    make = functools.partial(_memory_source, estimator, device=device, seed=split_seed)
    validation = None if validation_X is None else make(validation_X)
    return make(train_X), validation, lambda seed: (data_scale(X), X)


def _memory_source(estimator, X, device, seed):
    """A :class:`RowSource`, or with the neighbour objective a :class:`GraphSource`
    whose graph is built from these rows."""
    rows = RowSource(X, device)
    if not estimator.neighbor_weight:
        return rows
    graph = fuzzy_graph(X, estimator.n_neighbors, seed)
    return GraphSource(rows, NeighborSampler(graph))


def streamed(estimator, reader, device, split_seed, early_stopping):
    """Streamed sources; see :func:`_streamed_sources`."""
    if estimator.neighbor_weight:
        raise ValueError(
            "neighbor_weight > 0 builds a neighbour graph of all training rows in memory; "
            "this data is beyond the memory budget (skae.set_config(memory_budget=...))."
        )
    return _streamed_sources(estimator, reader, device, split_seed, early_stopping)


def _streamed_sources(estimator, reader, device, split_seed, early_stopping):
    """Streamed training and validation sources (whole blocks held out), and the start's data.

    The start's data (moments and a random sample of rows for the PCA start)
    takes one pass over all the data, which also checks every value.
    """
    blocks, validation = reader.blocks(), None
    if early_stopping:
        blocks, held_out = _split_blocks(blocks, estimator.validation_fraction, split_seed)
        validation = StreamSource(reader, device, held_out)

    def start_data(seed):
        summary = summarize(reader, reader.blocks(), pca_sample_rows(reader.shape[1]), seed)
        return scales_from_moments(summary.center, summary.variance), summary.sample

    return StreamSource(reader, device, blocks), validation, start_data


def _split_blocks(blocks, validation_fraction, seed):
    n_validation = int(round(validation_fraction * len(blocks)))
    if n_validation < 1 or n_validation >= len(blocks):
        raise ValueError(
            "early_stopping on streamed data holds out whole blocks: validation_fraction="
            f"{validation_fraction} of {len(blocks)} blocks leaves {n_validation} for "
            "validation. Use smaller blocks (skae.set_config(stream_block_rows=...)) or "
            "set early_stopping=False."
        )
    held_out = set(np.random.default_rng(seed).choice(len(blocks), n_validation, replace=False))
    train = [block for i, block in enumerate(blocks) if i not in held_out]
    return train, [block for i, block in enumerate(blocks) if i in held_out]


def _split(X, validation_fraction, seed):
    n_validation = int(round(validation_fraction * X.shape[0]))
    if n_validation < 1 or n_validation >= X.shape[0]:
        raise ValueError(
            f"early_stopping needs a validation split: validation_fraction="
            f"{validation_fraction} of {X.shape[0]} samples leaves "
            f"{n_validation} for validation. Use more samples or set "
            "early_stopping=False."
        )
    train, validation = train_test_split(
        np.arange(X.shape[0]), test_size=n_validation, random_state=int(seed)
    )
    return X[np.sort(train)], X[np.sort(validation)]


def check_blocks_per_rank(estimator, reader, world_size, early_stopping):
    """Streamed data in a process group needs a block of at least 2 rows for every rank."""
    blocks = reader.blocks()
    if early_stopping:
        blocks = blocks[: len(blocks) - int(round(estimator.validation_fraction * len(blocks)))]
    if len(blocks) < world_size or min(stop - start for start, stop in blocks) < 2:
        raise ValueError(
            f"Streamed data in {len(blocks)} training blocks cannot be dealt to "
            f"{world_size} ranks; use smaller blocks (skae.set_config(stream_block_rows=...))."
        )
