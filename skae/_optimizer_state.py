"""An optimiser's state to and from a model file, checked against the network.

torch's optimisers trust their state: a fused Adam given a moment buffer of
the wrong size writes out of bounds. So a state read from a file is compared,
entry by entry, with the state the same optimiser has for the same network
after one step (:func:`reference_state`), and only then handed to torch.
"""

import copy
import math

import torch

from ._file_checks import MAX_INT, FileContentError, only_keys
from ._training import OPTIMIZERS, make_optimizer

TENSOR_PREFIX = "optimizer."
# Set from the estimator's parameters at every fitting call, whatever the file says.
_RESET_EACH_CALL = ("lr", "weight_decay")
# How the step is computed, not what it computes: may differ between devices.
_IMPLEMENTATION_FLAGS = ("fused", "foreach", "capturable", "differentiable")
# Running averages of squares: never negative.
_NON_NEGATIVE = ("exp_avg_sq", "max_exp_avg_sq", "square_avg")


def split_state(optimizer_state, encode):
    """An optimiser's ``state_dict`` as file tensors and a JSON-ready rest.

    ``encode`` turns a hyperparameter into JSON (see ``skae._persistence``).
    """
    groups = [{k: encode(v) for k, v in group.items()} for group in optimizer_state["param_groups"]]
    tensors, rest = {}, {"param_groups": groups, "state": {}}
    for index, values in optimizer_state["state"].items():
        rest["state"][str(index)] = {}
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{TENSOR_PREFIX}{index}.{name}"] = value
            else:
                rest["state"][str(index)][name] = encode(value)
    return tensors, rest


def reference_state(name, network):
    """The ``state_dict`` optimiser ``name`` has for ``network`` after one step."""
    parameters = [torch.zeros_like(p, device="cpu").requires_grad_() for p in network.parameters()]
    optimizer = make_optimizer(name, parameters, 1e-3, 0.0, torch.device("cpu"))
    for parameter in parameters:
        parameter.grad = torch.zeros_like(parameter)
    optimizer.step()
    return optimizer.state_dict()


def checked_state(name, network, tensors, rest, decode):
    """The optimiser state that ``rest`` (JSON) and ``tensors`` describe, checked.

    Parameters
    ----------
    name : str
        The optimiser the state belongs to.
    network : nn.Module
        The network it trains (on the CPU).
    tensors : dict
        The file's tensors whose names start with ``"optimizer."``.
    rest : dict
        The JSON part written by :func:`split_state`.
    decode : callable
        Turns a JSON value back into a hyperparameter.

    Returns
    -------
    state : dict
        A ``state_dict`` for ``torch.optim`` whose parameter groups are the
        reference's and whose per-parameter state has the reference's
        entries, shapes and dtypes.

    Raises
    ------
    FileContentError
        Naming the first entry that differs from the reference.
    """
    if name not in OPTIMIZERS:
        raise FileContentError(f"optimizer_name must be one of {OPTIMIZERS}; got {name!r}")
    only_keys(rest, ("param_groups", "state"), "optimizer")
    reference = reference_state(name, network)
    _check_groups(rest.get("param_groups"), reference["param_groups"], decode)
    described = rest.get("state")
    only_keys(described, [str(index) for index in reference["state"]], "optimizer.state")
    state = {int(index): _entry(values, decode) for index, values in described.items()}
    for tensor_name, tensor in tensors.items():
        index, _, entry = tensor_name[len(TENSOR_PREFIX) :].partition(".")
        if index not in described or not entry:
            raise FileContentError(f"tensor {tensor_name!r} belongs to no described parameter")
        state[int(index)][entry] = tensor
    for index, values in state.items():
        _check_entry(index, values, reference["state"][index])
    return {"state": state, "param_groups": copy.deepcopy(reference["param_groups"])}


def _entry(values, decode):
    if not isinstance(values, dict):
        raise FileContentError("each entry of optimizer.state must be a JSON object")
    return {key: decode(value) for key, value in values.items()}


def _check_groups(groups, reference, decode):
    if not isinstance(groups, list) or len(groups) != len(reference):
        raise FileContentError(f"optimizer.param_groups must be a list of {len(reference)} groups")
    for group, expected in zip(groups, reference, strict=True):
        if not isinstance(group, dict):
            raise FileContentError("each of optimizer.param_groups must be a JSON object")
        for key, value in group.items():
            value = decode(value)
            if key in _RESET_EACH_CALL:
                _non_negative_number(value, f"optimizer.param_groups.{key}")
            elif key in expected and key not in _IMPLEMENTATION_FLAGS:
                if not _same(value, expected[key]):
                    raise FileContentError(
                        f"optimizer.param_groups.{key} is {value!r:.60}; this optimiser "
                        f"uses {expected[key]!r}"
                    )


def _same(value, expected):
    """Equal, with tuples and lists alike (JSON has no tuples) and bools not numbers."""
    if isinstance(expected, (tuple, list)):
        return (
            isinstance(value, (tuple, list))
            and len(value) == len(expected)
            and all(_same(v, e) for v, e in zip(value, expected, strict=True))
        )
    return type(value) is type(expected) and value == expected


def _non_negative_number(value, name):
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value < 0
    ):
        raise FileContentError(f"{name} must be a finite number >= 0; got {value!r:.60}")


def _check_entry(index, values, expected):
    where = f"the optimiser state of parameter {index}"
    if set(values) != set(expected):
        raise FileContentError(f"{where} has {sorted(values)}; expected {sorted(expected)}")
    for key, value in values.items():
        reference = expected[key]
        if not isinstance(reference, torch.Tensor):
            if not _same(value, reference):
                raise FileContentError(f"{where}: {key} is {value!r:.60}")
            continue
        if not isinstance(value, torch.Tensor):
            raise FileContentError(f"{where}: {key} must be a tensor")
        if value.shape != reference.shape or value.dtype != reference.dtype:
            raise FileContentError(
                f"{where}: {key} has shape {tuple(value.shape)} and dtype {value.dtype}; "
                f"the parameter needs shape {tuple(reference.shape)} and {reference.dtype}"
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise FileContentError(f"{where}: {key} holds values that are not finite")
        if key == "step":
            step = float(value)
            if not 0 <= step <= MAX_INT or step != math.floor(step):
                raise FileContentError(f"{where}: step must be a whole number >= 0; got {step}")
        elif key in _NON_NEGATIVE and bool((value < 0).any()):
            raise FileContentError(f"{where}: {key} holds negative values")
