"""A fitting call's data: checked, held in memory or streamed, split, and the start's data.

:func:`training_data` turns validated input into an array in memory or an
:class:`~skae._readers.ArrayReader` for data beyond the memory budget;
:func:`in_memory` and :func:`streamed` make the training and validation
sources and the data the start of a new network needs.
"""

import functools

import numpy as np
import scipy.sparse as sp
from sklearn.model_selection import train_test_split

from ._batches import MapSource, RowSource, StreamSource
from ._initialization import data_scale, pca_sample_rows, scales_from_moments
from ._neighbors import fuzzy_graph
from ._readers import ArrayReader, fits_in_memory, summarize

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


def n_validation_rows(validation_fraction, n):
    """Rows (or blocks) of ``n`` that early stopping holds out for validation."""
    return int(round(validation_fraction * n))


def check_unit_interval(X, what):
    """Raise a ValueError unless every value of ``X`` lies in [0, 1]."""
    if not in_unit_interval(X):
        values = X.data if sp.issparse(X) else X
        raise ValueError(
            f"{what} needs data in [0, 1]; got values from {float(values.min())!r} "
            f"to {float(values.max())!r}. Scale the data (e.g. MinMaxScaler) first."
        )


def check_values(X, objective):
    """Raise unless ``objective`` can be trained on (or score) ``X``: values in [0, 1]
    for a binary cross-entropy or a Bernoulli likelihood."""
    if objective.unit_interval_reason is not None:
        check_unit_interval(X, objective.unit_interval_reason)


def check_training_values(X, objective):
    """The checks every block of training data passes: float32's range, the objective's."""
    check_float32_range(X)
    check_values(X, objective)


def training_data(X, objective):
    """Validated ``X`` ready for training: an ndarray or sparse matrix held in memory,
    or an :class:`ArrayReader` for data beyond the memory budget (see ``skae.set_config``).

    Data on disk or in a cluster that fits the budget is read (and checked) into
    memory block by block; what does not fit is only checked as it is streamed.
    """
    if isinstance(X, ArrayReader):
        if not fits_in_memory(*X.shape, itemsize=X.dtype.itemsize):
            X.check = functools.partial(check_training_values, objective=objective)
            return X
        X = X.materialize()
    check_training_values(X, objective)
    if not sp.issparse(X) and not fits_in_memory(*X.shape):
        return ArrayReader(X)
    return X


# "auto" gives a sigmoid output to data in [0, 1] whose values span at least
# this much of it (images scaled to [0, 1], proportions); data confined to a
# small part of [0, 1] gets a linear output, which starts as PCA exactly.
# The sigmoid helps where the data reaches the ends of its range. Digits
# scaled to [0, a] (80/20 split, default network and 100 epochs, seeds 0
# and 1), held-out error / PCA's, sigmoid against linear: at 10 components
# 0.40 vs 0.46 (a = 1), 0.42 vs 0.46 (0.75), 0.44 vs 0.46 (0.5), 0.46 vs
# 0.46 (0.25), 0.48-0.49 vs 0.46-0.47 (0.1), 0.60 vs 0.46 (0.001); at 2
# components a tie down to 0.75, then 0.61 vs 0.60 (0.5) and 0.63-0.65 vs
# 0.59-0.61 (0.001). On MNIST (a = 1) the sigmoid's start alone is 0.97 and
# 0.75 times PCA's error at 10 and 32 components.
AUTO_SIGMOID_SPAN = 0.5


def resolved_output_activation(requested, X, previous=None):
    """The output activation a network for ``X`` gets: the estimator's, with ``"auto"`` resolved.

    ``"auto"`` is ``"sigmoid"`` when every training value lies in [0, 1]
    and the values span at least ``AUTO_SIGMOID_SPAN`` of it (images scaled
    to [0, 1], proportions), else ``"linear"``; a continued fit keeps what
    the network was built with. Data streamed from beyond the memory budget
    costs one extra read to find its range.
    """
    if requested != "auto":
        return requested
    if previous is not None:
        return previous.spec.output_activation
    low, high = value_range(X)
    return "sigmoid" if 0 <= low and high <= 1 and high - low >= AUTO_SIGMOID_SPAN else "linear"


def value_range(X):
    """The smallest and largest value of ``X`` (an array, sparse matrix or
    ArrayReader of at least one value), a sparse matrix's implicit zeros included."""
    if isinstance(X, ArrayReader):
        ranges = [value_range(X.read(start, stop)) for start, stop in X.blocks()]
        return min(low for low, _ in ranges), max(high for _, high in ranges)
    values = X.data if sp.issparse(X) else X
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if sp.issparse(X) and X.nnz < X.shape[0] * X.shape[1]:
        low, high = min(low, 0.0), max(high, 0.0)
    return low, high


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


def in_memory(plan, X, device, split_seed, early_stopping):
    """Training and validation sources held in memory, and the start's data."""
    train_X, validation_X = X, None
    if early_stopping:
        train_X, validation_X = _split(X, plan.training.validation_fraction, split_seed)
    # Held-out rows have no place in the map: their loss leaves the map term out.
    validation = None if validation_X is None else RowSource(validation_X, device)
    train = RowSource(train_X, device)
    if plan.objective.neighbors:
        train = MapSource(train, fuzzy_graph(train_X, plan.objective.n_neighbors, split_seed))
    # The PCA start never sees the validation rows that judge it against the epochs.
    return train, validation, lambda seed: (data_scale(X), train_X)


def streamed(plan, reader, device, split_seed, early_stopping):
    """Streamed training and validation sources (whole blocks held out), and the start's data.

    The start's data (the moments of all the rows and a random sample of
    the training rows for the PCA start) takes one pass over all the data,
    which also checks every value.
    """
    if plan.objective.neighbors:
        raise ValueError(
            "neighbor_weight > 0 builds a neighbour graph of all training rows in memory; "
            "this data is beyond the memory budget (skae.set_config(memory_budget=...))."
        )
    blocks, validation = reader.blocks(), None
    if early_stopping:
        blocks, held_out = _split_blocks(blocks, plan.training.validation_fraction, split_seed)
        validation = StreamSource(reader, device, held_out)

    def start_data(seed):
        n_rows = pca_sample_rows(reader.shape[1], plan.network.n_components)
        summary = summarize(reader, reader.blocks(), n_rows, seed, sample_blocks=blocks)
        return scales_from_moments(summary.center, summary.variance), summary.sample

    return StreamSource(reader, device, blocks), validation, start_data


def _split_blocks(blocks, validation_fraction, seed):
    n_validation = n_validation_rows(validation_fraction, len(blocks))
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
    n_validation = n_validation_rows(validation_fraction, X.shape[0])
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


def check_blocks_per_rank(reader, world_size, validation_fraction):
    """Streamed data in a process group needs a block of at least 2 rows for every rank
    (``validation_fraction`` of the blocks held out, or None)."""
    blocks = reader.blocks()
    if validation_fraction is not None:
        blocks = blocks[: len(blocks) - n_validation_rows(validation_fraction, len(blocks))]
    if len(blocks) < world_size or min(stop - start for start, stop in blocks) < 2:
        raise ValueError(
            f"Streamed data in {len(blocks)} training blocks cannot be dealt to "
            f"{world_size} ranks; use smaller blocks (skae.set_config(stream_block_rows=...))."
        )
