"""The plan of a fitting call: frozen, typed settings built from validated parameters.

The estimator validates its parameters once per fitting call and hands the
rest of the package a :class:`FitPlan` (see ``skae._params.fit_plan``):
the network's shape (:class:`NetworkSpec`), the objective
(``skae._objectives.Objective``) and the training settings
(:class:`TrainingSettings`). Nothing below the estimator reads the
estimator itself.
"""

import dataclasses
import math

from ._objectives import Objective


@dataclasses.dataclass(frozen=True)
class NetworkSpec:
    """What a network is built for: the parameters that shape it.

    ``n_features`` is None until the data is known (:meth:`for_data`), and
    ``output_activation`` may be ``"auto"`` until then. ``objective`` holds
    the reconstruction term's parameter (``loss`` or ``likelihood``) as one
    ``(name, value)`` pair: it decides the model's class and output layer.
    """

    n_features: int | None
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

    def for_data(self, n_features, output_activation):
        """This spec for ``n_features`` inputs and a resolved output activation.

        Raises a ValueError when ``input_shape`` does not hold ``n_features``.
        """
        if self.input_shape is not None and math.prod(self.input_shape) != n_features:
            raise ValueError(
                f"input_shape={self.input_shape} holds {math.prod(self.input_shape)} values "
                f"per image, but X has {n_features} features."
            )
        return dataclasses.replace(
            self, n_features=int(n_features), output_activation=output_activation
        )

    def weight_count(self):
        """A lower bound on the network's weights: its dense layers' matrices."""
        sizes = (*self.hidden_layer_sizes, self.n_components)
        if self.input_shape is None:
            sizes = (self.n_features, *sizes)
        return 2 * sum(a * b for a, b in zip(sizes, sizes[1:], strict=False))

    @property
    def conv(self):
        """``(input_shape, channels)`` for a convolutional network, else None."""
        return None if self.input_shape is None else (self.input_shape, self.conv_channels)

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


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
    """How a fitting call trains: the optimiser, the epochs, stopping, the device.

    The parameters of the same names, validated; ``early_stopping`` may
    still be ``"auto"`` (resolved per call by ``skae._params.uses_early_stopping``)
    and ``device`` is the name the user gave (resolved per call).
    """

    optimizer: str
    learning_rate: float
    learning_rate_schedule: str
    weight_decay: float
    batch_size: int
    max_epochs: int
    early_stopping: object
    validation_fraction: float
    n_iter_no_change: int
    tol: float
    device: str
    precision: str
    verbose: int
    warm_start: bool
    pretrain: str | None
    pretrain_epochs: int


@dataclasses.dataclass(frozen=True)
class FitPlan:
    """Everything one fitting call needs to know of the estimator.

    Attributes
    ----------
    name : str
        The estimator's class name, for messages.
    network : NetworkSpec
        Not yet sized for the data (``n_features`` None).
    objective : Objective
    training : TrainingSettings
    """

    name: str
    network: NetworkSpec
    objective: Objective
    training: TrainingSettings
