"""Every check of an estimator's parameters, and the plan they make.

:func:`fit_plan` runs at the top of every fitting call (``fit``,
``partial_fit``, warm starts), after scikit-learn's declared constraints
(``_parameter_constraints``, checked by the estimator) and before anything
changes: what the constraints cannot express about single parameters
(:func:`check_numbers`: booleans passed for numbers, numbers float32 cannot
hold; sequences of sizes), then every combination of parameters in one
function (:func:`check_combinations`). It returns the frozen
:class:`~skae._plan.FitPlan` the rest of the package works from. Checks
that need the data live next to the code that needs it.
"""

import collections.abc
import numbers

import numpy as np

from ._device import resolve_device
from ._objectives import objective_from_params
from ._plan import FitPlan, NetworkSpec, TrainingSettings

# Training runs in float32: a rate or weight beyond its range overflows inside torch.
_FLOAT32_MAX = float(np.finfo(np.float32).max)
# torch's sizes and counters are int64.
_INT64_MAX = int(np.iinfo(np.int64).max)


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
    if max(sizes, default=0) > _INT64_MAX:
        raise ValueError(
            f"{name} must hold integers of at most {_INT64_MAX} (torch counts in int64); "
            f"got {value!r}."
        )
    return tuple(int(size) for size in sizes)


def check_number_types(name, params):
    """Refuse numbers that are neither ints nor floats (``Fraction``, say).

    They are ``numbers.Real`` to scikit-learn's constraints, which then fail
    inside numpy with a message that names no parameter.
    """
    for parameter, value in params.items():
        if isinstance(value, numbers.Real) and not isinstance(
            value, (numbers.Integral, float, np.floating)
        ):
            raise ValueError(
                f"The {parameter!r} parameter of {name} must be an int or a float; "
                f"got {value!r} of type {type(value).__name__}."
            )


def check_numbers(name, constraints, params):
    """What the declared constraints let through: booleans for numbers, and
    numbers float32 cannot hold.

    Booleans are integers to Python but never a number of units or epochs
    here; infinite or huge rates and weights would overflow in training.
    """
    for parameter, allowed in constraints.items():
        value = params[parameter]
        if isinstance(value, bool) and not {"boolean", "verbose"} & set(map(str, allowed)):
            raise ValueError(
                f"The {parameter!r} parameter of {name} must be a number, "
                f"not a boolean; got {value!r}."
            )
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            if abs(value) > _INT64_MAX:
                raise ValueError(
                    f"The {parameter!r} parameter of {name} must be at most "
                    f"{_INT64_MAX} (torch counts in int64); got {value!r}."
                )
            continue
        if isinstance(value, numbers.Real) and not abs(value) <= _FLOAT32_MAX:
            raise ValueError(
                f"The {parameter!r} parameter of {name} must be finite and "
                f"at most {_FLOAT32_MAX:.3g} (training runs in float32); got {value!r}."
            )


# early_stopping="auto" holds out a validation split from this many rows on:
# enough for a stable validation loss (500 rows at validation_fraction=0.1),
# where a smaller training set would lose too much (docs/experiments.md).
AUTO_EARLY_STOPPING_ROWS = 5000


def uses_early_stopping(plan, n_samples, partial):
    """Whether a fitting call on ``n_samples`` rows holds out a validation split.

    ``"auto"`` does from ``AUTO_EARLY_STOPPING_ROWS`` rows on, and never in
    ``partial_fit``, which holds nothing back, nor with the neighbour
    objective, whose sampled validation loss stops training far too early
    (MNIST k=2: 5-NN 0.71 after 32 epochs, against 0.83 without).
    """
    early_stopping = plan.training.early_stopping
    if early_stopping == "auto":
        return (
            not partial and not plan.objective.neighbors and n_samples >= AUTO_EARLY_STOPPING_ROWS
        )
    return bool(early_stopping)


def check_combinations(params, partial=False):
    """Raise a ValueError naming the first combination of parameters that cannot work.

    ``params`` are the estimator's parameters, each valid alone; ``partial``
    says whether the call is a ``partial_fit``.
    """
    shape, conv = params["input_shape"], params["architecture"] == "conv"
    if conv or shape is not None:
        if shape is None or len(positive_ints(shape, "input_shape")) != 3:
            needs = "architecture='conv' needs" if conv else "use"
            raise ValueError(
                f"{needs} input_shape=(channels, height, width) of positive integers; "
                f"got input_shape={shape!r}."
            )
    if conv and not positive_ints(params["conv_channels"], "conv_channels"):
        raise ValueError("architecture='conv' needs at least one entry in conv_channels.")
    if params["pretrain"] is not None and conv:
        raise ValueError(
            f"pretrain={params['pretrain']!r} needs architecture='dense'; got "
            f"architecture={params['architecture']!r}."
        )
    if params["noise"] == "masking" and params["noise_level"] >= 1:
        raise ValueError(
            f"noise='masking' needs noise_level < 1; got noise_level={params['noise_level']}."
        )
    if params.get("loss") == "bce" and params["output_activation"] not in ("sigmoid", "auto"):
        raise ValueError(
            "loss='bce' needs output_activation='sigmoid' (reconstructions "
            f"must be probabilities); got output_activation={params['output_activation']!r}."
        )
    if partial and params["early_stopping"] != "auto" and params["early_stopping"]:
        raise ValueError(
            "partial_fit does not support early_stopping=True: it makes one "
            "pass over the data it is given and holds none back."
        )


def fit_plan(name, constraints, params, *, partial=False, check_device=True):
    """The :class:`~skae._plan.FitPlan` of an estimator's parameters, every check passed.

    Parameters
    ----------
    name : str
        The estimator's class name, for messages.
    constraints : dict
        Its declared ``_parameter_constraints``, which ``params`` satisfy.
    params : dict
        Its parameters (``get_params(deep=False)``).
    partial : bool, default=False
        Whether the plan is for a ``partial_fit``.
    check_device : bool, default=True
        False skips asking whether the device exists (a model trained on a
        GPU still loads on a machine without one).

    Raises
    ------
    ValueError
        Naming the first parameter (or combination) that is invalid.
    """
    if params["n_components"] is None:
        raise ValueError(
            "n_components=None keeps every component in PCA; an autoencoder's code is a "
            "compression of chosen size: pass n_components as an int (e.g. 10), or use "
            "PCA(n_components=0.95) to find how many components hold 95% of the variance."
        )
    check_numbers(name, constraints, params)
    hidden = positive_ints(params["hidden_layer_sizes"], "hidden_layer_sizes", allow_scalar=True)
    channels = positive_ints(params["conv_channels"], "conv_channels")
    check_combinations(params, partial)
    if check_device:
        resolve_device(params["device"])
    conv = params["architecture"] == "conv"
    reconstruction = "likelihood" if "likelihood" in params else "loss"
    network = NetworkSpec(
        n_features=None,
        n_components=int(params["n_components"]),
        hidden_layer_sizes=hidden,
        activation=params["activation"],
        output_activation=params["output_activation"],
        dropout=float(params["dropout"]),
        batch_norm=bool(params["batch_norm"]),
        linear_shortcut=bool(params["linear_shortcut"]),
        architecture=params["architecture"],
        input_shape=positive_ints(params["input_shape"], "input_shape") if conv else None,
        conv_channels=channels if conv else None,
        objective=((reconstruction, params[reconstruction]),),
    )
    training = TrainingSettings(
        **{field: params[field] for field in TrainingSettings.__dataclass_fields__}
    )
    return FitPlan(name, network, objective_from_params(params), training)
