"""Every check of an estimator's parameters, and the network they describe.

:func:`check_params` runs at the top of every fitting call (``fit``,
``partial_fit``, warm starts), before anything changes: scikit-learn's
declared constraints, then what they cannot express (booleans passed for
numbers, sequences of sizes, combinations of parameters). :class:`NetworkSpec`
is the frozen description of the network built from the parameters; a
continued fit compares it with the one its network was built for.
"""

import collections.abc
import dataclasses
import math
import numbers

import numpy as np

from ._device import resolve_device


def _is_positive_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


def positive_ints(value, name, *, allow_scalar=False):
    """``value`` as a tuple of positive ints, or a ValueError naming ``name``."""
    if allow_scalar and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    # Sets and mappings have no order to give layers or dimensions.
    ordered = isinstance(value, (collections.abc.Sequence, np.ndarray))
    sizes = tuple(value) if ordered and not isinstance(value, str) else None
    if sizes is None or not all(_is_positive_int(size) for size in sizes):
        raise ValueError(f"{name} must be a sequence of positive integers; got {value!r}.")
    return tuple(int(size) for size in sizes)


# Training runs in float32: a rate or weight beyond its range overflows inside torch.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_numbers(estimator):
    """What the declared constraints let through: booleans for numbers, and
    numbers float32 cannot hold.

    Booleans are integers to Python but never a number of units or epochs
    here; infinite or huge rates and weights would overflow in training.
    """
    for name, constraints in estimator._parameter_constraints.items():
        value = getattr(estimator, name)
        if isinstance(value, bool) and not {"boolean", "verbose"} & set(map(str, constraints)):
            raise ValueError(
                f"The {name!r} parameter of {type(estimator).__name__} must be a number, "
                f"not a boolean; got {value!r}."
            )
        if (
            isinstance(value, numbers.Real)
            and not isinstance(value, (bool, numbers.Integral))
            and not abs(value) <= _FLOAT32_MAX
        ):
            raise ValueError(
                f"The {name!r} parameter of {type(estimator).__name__} must be finite and "
                f"at most {_FLOAT32_MAX:.3g} (training runs in float32); got {value!r}."
            )


# early_stopping="auto" holds out a validation split from this many rows on:
# enough for a stable validation loss (500 rows at validation_fraction=0.1),
# where a smaller training set would lose too much (docs/development.md).
AUTO_EARLY_STOPPING_ROWS = 5000


def uses_early_stopping(estimator, n_samples, partial):
    """Whether a fitting call on ``n_samples`` rows holds out a validation split.

    ``"auto"`` does from ``AUTO_EARLY_STOPPING_ROWS`` rows on, and never in
    ``partial_fit``, which holds nothing back, nor with the neighbour
    objective, whose sampled validation loss stops training far too early
    (MNIST k=2: 5-NN 0.71 after 32 epochs, against 0.83 without).
    """
    if estimator.early_stopping == "auto":
        return (
            not partial and not estimator.neighbor_weight and n_samples >= AUTO_EARLY_STOPPING_ROWS
        )
    return bool(estimator.early_stopping)


def check_params(estimator, check_device=True):
    """Check every parameter of ``estimator`` and their combinations.

    ``check_device=False`` skips asking whether the device exists (a model
    trained on a GPU still loads on a machine without one).

    Raises
    ------
    ValueError
        Naming the first parameter (or combination) that is invalid.
    """
    if estimator.n_components is None:
        raise ValueError(
            "n_components=None keeps every component in PCA; an autoencoder's code is a "
            "compression of chosen size: pass n_components as an int (e.g. 10), or use "
            "PCA(n_components=0.95) to find how many components hold 95% of the variance."
        )
    estimator._validate_params()
    _check_numbers(estimator)
    positive_ints(estimator.hidden_layer_sizes, "hidden_layer_sizes", allow_scalar=True)
    positive_ints(estimator.conv_channels, "conv_channels")
    shape = estimator.input_shape
    if estimator.architecture == "conv" or shape is not None:
        if shape is None or len(positive_ints(shape, "input_shape")) != 3:
            needs = "architecture='conv' needs" if estimator.architecture == "conv" else "use"
            raise ValueError(
                f"{needs} input_shape=(channels, height, width) of positive integers; "
                f"got input_shape={shape!r}."
            )
    if estimator.architecture == "conv" and not positive_ints(
        estimator.conv_channels, "conv_channels"
    ):
        raise ValueError("architecture='conv' needs at least one entry in conv_channels.")
    if estimator.pretrain is not None and estimator.architecture != "dense":
        raise ValueError(
            f"pretrain={estimator.pretrain!r} needs architecture='dense'; got "
            f"architecture={estimator.architecture!r}."
        )
    if estimator.noise == "masking" and estimator.noise_level >= 1:
        raise ValueError(
            f"noise='masking' needs noise_level < 1; got noise_level={estimator.noise_level}."
        )
    if check_device:
        resolve_device(estimator.device)
    estimator._check_params()


@dataclasses.dataclass(frozen=True)
class NetworkSpec:
    """What a network was built for: the parameters that shape it.

    ``objective`` holds the subclass's shaping parameters (e.g. ``loss`` or
    ``likelihood``) as sorted ``(name, value)`` pairs.
    """

    n_features: int
    n_components: int
    hidden_layer_sizes: tuple
    activation: str
    output_activation: str
    dropout: float
    batch_norm: bool
    linear_shortcut: bool
    architecture: str
    input_shape: tuple | None
    conv_channels: tuple | None
    objective: tuple = ()

    @classmethod
    def from_estimator(cls, estimator, n_features, output_activation=None):
        """The spec ``estimator``'s parameters describe for ``n_features`` inputs.

        ``output_activation`` replaces the estimator's (its ``"auto"``
        resolved for the data). Raises a ValueError when ``input_shape`` does
        not hold ``n_features``.
        """
        conv = estimator.architecture == "conv"
        input_shape = positive_ints(estimator.input_shape, "input_shape") if conv else None
        if conv and math.prod(input_shape) != n_features:
            raise ValueError(
                f"input_shape={input_shape} holds {math.prod(input_shape)} values per image, "
                f"but X has {n_features} features."
            )
        return cls(
            n_features=int(n_features),
            n_components=int(estimator.n_components),
            hidden_layer_sizes=positive_ints(
                estimator.hidden_layer_sizes, "hidden_layer_sizes", allow_scalar=True
            ),
            activation=estimator.activation,
            output_activation=output_activation or estimator.output_activation,
            dropout=float(estimator.dropout),
            batch_norm=bool(estimator.batch_norm),
            linear_shortcut=bool(estimator.linear_shortcut),
            architecture=estimator.architecture,
            input_shape=input_shape,
            conv_channels=positive_ints(estimator.conv_channels, "conv_channels") if conv else None,
            objective=tuple(sorted((n, getattr(estimator, n)) for n in estimator._model_params)),
        )

    @property
    def conv(self):
        """``(input_shape, channels)`` for a convolutional network, else None."""
        return None if self.input_shape is None else (self.input_shape, self.conv_channels)

    def option(self, name):
        """The value of the shaping parameter ``name`` of ``objective``."""
        return dict(self.objective)[name]

    def changes_from(self, other):
        """Names of the parameters whose values differ from ``other``'s."""
        changed = []
        for field in dataclasses.fields(self):
            if field.name == "objective":
                mine, theirs = dict(self.objective), dict(other.objective)
                changed += [name for name in mine if mine[name] != theirs.get(name)]
            elif getattr(self, field.name) != getattr(other, field.name):
                changed.append(field.name)
        return changed

    def to_dict(self):
        """A JSON-ready dict (see :meth:`from_dict`)."""
        values = dataclasses.asdict(self)
        values["objective"] = [list(pair) for pair in self.objective]
        return values

    @classmethod
    def from_dict(cls, values):
        values = dict(values)
        for name in ("hidden_layer_sizes", "input_shape", "conv_channels"):
            if values[name] is not None:
                values[name] = tuple(values[name])
        values["objective"] = tuple(tuple(pair) for pair in values["objective"])
        return cls(**values)
