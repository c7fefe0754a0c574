"""A file format for fitted estimators that runs no code when loaded.

One safetensors file: the network's weights and buffers and the optimiser's
state as tensors; the class name, parameters, fitted attributes and format
version as JSON in the file's metadata, with a SHA-256 of the tensors.
Loading parses JSON and tensor bytes only, never a pickle.
"""

import hashlib
import json
import os
from typing import TYPE_CHECKING

import numpy as np
import torch

from ._device import resolve_device
from ._initialization import seeded_model
from ._params import NetworkSpec
from ._state import FitState

if TYPE_CHECKING:
    from ._base import BaseAutoencoder

FORMAT = "skae"
FORMAT_VERSION = 2  # 2: n_samples_seen, mean, training_error and training_variance
_NETWORK = "network."
_OPTIMIZER = "optimizer."


# ------------------------------------------------------------- JSON values


def _encode(value):
    """``value`` (a parameter) as JSON, tagging what JSON cannot say itself."""
    if isinstance(value, np.random.RandomState):
        name, keys, position, has_gauss, cached = value.get_state()
        return {"__random_state__": [name, keys.tolist(), position, has_gauss, cached]}
    if isinstance(value, (tuple, np.ndarray)):
        return {"__tuple__": [_encode(item) for item in value]}
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot save a parameter of type {type(value).__name__}: {value!r}")


def _decode(value):
    if isinstance(value, dict) and "__tuple__" in value:
        return tuple(_decode(item) for item in value["__tuple__"])
    if isinstance(value, dict) and "__random_state__" in value:
        name, keys, position, has_gauss, cached = value["__random_state__"]
        random_state = np.random.RandomState()
        random_state.set_state(
            (name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached)
        )
        return random_state
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


# ---------------------------------------------------------------- tensors


def _optimizer_tensors(optimizer_state):
    """Split an optimiser's ``state_dict`` into tensors and a JSON-ready rest."""
    groups = [
        {k: _encode(v) for k, v in group.items()} for group in optimizer_state["param_groups"]
    ]
    tensors, rest = {}, {"param_groups": groups, "state": {}}
    for index, values in optimizer_state["state"].items():
        rest["state"][str(index)] = {}
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{_OPTIMIZER}{index}.{name}"] = value
            else:
                rest["state"][str(index)][name] = _encode(value)
    return tensors, rest


def _optimizer_state(tensors, rest):
    state = {
        int(index): {k: _decode(v) for k, v in values.items()}
        for index, values in rest["state"].items()
    }
    for key, value in tensors.items():
        if key.startswith(_OPTIMIZER):
            index, name = key[len(_OPTIMIZER) :].split(".", 1)
            state[int(index)][name] = value
    groups = [{k: _decode(v) for k, v in group.items()} for group in rest["param_groups"]]
    return {"state": state, "param_groups": groups}


def _checksum(tensors):
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name]
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


# ------------------------------------------------------------- save, load


def save_estimator(estimator, path):
    """Write fitted ``estimator`` to ``path`` (see :meth:`BaseAutoencoder.save`)."""
    from safetensors.torch import save_file

    state = estimator._state.on_cpu()
    tensors = {
        _NETWORK + name: value.detach().clone().contiguous()
        for name, value in state.network.state_dict().items()
    }
    optimizer = None
    if state.optimizer_state is not None:
        optimizer_tensors, optimizer = _optimizer_tensors(state.optimizer_state)
        tensors.update({k: v.detach().clone().contiguous() for k, v in optimizer_tensors.items()})
    names = getattr(estimator, "feature_names_in_", None)
    document = {
        "class": type(estimator).__name__,
        "params": {k: _encode(v) for k, v in estimator.get_params(deep=False).items()},
        "n_features_in": estimator.n_features_in_,
        "feature_names_in": None if names is None else [str(name) for name in names],
        "spec": _encode_spec(state.spec),
        "model_attributes": _model_attributes(state.network),
        "optimizer_name": state.optimizer_name,
        "optimizer": optimizer,
        "loss_curve": state.loss_curve,
        "validation_loss_curve": state.validation_loss_curve,
        "best_loss": state.best_loss,
        "n_iter": state.n_iter,
        "pretrain_loss_curves": state.pretrain_loss_curves,
        "n_samples_seen": state.n_samples_seen,
        "mean": state.mean.tolist(),
        "training_error": state.training_error,
        "training_variance": state.training_variance,
    }
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "estimator": json.dumps(document),
        "sha256": _checksum(tensors),
    }
    save_file(tensors, os.fspath(path), metadata=metadata)


def _encode_spec(spec):
    return {k: _encode(v) for k, v in spec.to_dict().items()}


# What the estimator sets in a model besides its shape (see _configure_model
# and the KL warm-up); the shape itself comes from the spec.
_MODEL_SETTINGS = (
    "noise",
    "noise_level",
    "sparsity",
    "beta",
    "kl_weight",
    "neighbor_weight",
    "kernel_a",
    "kernel_b",
)


def _model_attributes(network):
    """The model's settings that are not part of its shape."""
    return {name: getattr(network, name) for name in _MODEL_SETTINGS if hasattr(network, name)}


def _read(path):
    """The tensors and metadata of the file at ``path``, checked."""
    from safetensors import safe_open

    path = os.fspath(path)
    try:
        with safe_open(path, framework="pt", device="cpu") as file:
            metadata = file.metadata() or {}
            tensors = {name: file.get_tensor(name) for name in file.keys()}
    except FileNotFoundError:
        raise
    except Exception as error:
        raise ValueError(
            f"{path!r} is not a skae model file, or it is truncated or corrupted ({error})."
        ) from None
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path!r} is a safetensors file but not a skae model file.")
    if metadata.get("format_version") != str(FORMAT_VERSION):
        raise ValueError(
            f"{path!r} has skae file format version {metadata.get('format_version')}; "
            f"this version of skae reads version {FORMAT_VERSION}."
        )
    if _checksum(tensors) != metadata.get("sha256"):
        raise ValueError(f"{path!r} is corrupted: its tensors do not match their checksum.")
    try:
        document = json.loads(metadata["estimator"])
    except (KeyError, ValueError) as error:
        raise ValueError(f"{path!r} holds an invalid skae model description ({error!r}).") from None
    return tensors, document


def load(path: str | os.PathLike, device: str | None = None) -> "BaseAutoencoder":
    """Load an estimator saved with :meth:`~skae.AutoencoderTransformer.save`.

    Only JSON and tensor data are read: no code in the file is run, so a
    file from elsewhere is safe to load (unlike a pickle or joblib file).

    Parameters
    ----------
    path : str or path-like
        A file written by ``save``.
    device : str, default=None
        Where to put the network: None for the CPU, or any value of the
        estimators' ``device`` parameter ("auto", "cuda", ...). A model
        trained on a GPU loads on a CPU-only machine.

    Returns
    -------
    estimator : AutoencoderTransformer or VAETransformer
        Fitted: it transforms, and continues training (``partial_fit``,
        ``warm_start``), exactly as the saved one.

    Raises
    ------
    ValueError
        When the file is not a skae model file, is of another format version,
        or is truncated or corrupted.
    """
    tensors, document = _read(path)
    try:
        estimator = _estimator(document, tensors)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as error:
        raise ValueError(
            f"{os.fspath(path)!r} holds an invalid skae model description ({error!r})."
        ) from None
    estimator._state.place(resolve_device("cpu" if device is None else device))
    return estimator


def _estimator(document, tensors):
    """The fitted estimator that ``document`` and ``tensors`` describe, checked."""
    from . import AutoencoderTransformer, VAETransformer
    from ._params import check_params

    classes = {cls.__name__: cls for cls in (AutoencoderTransformer, VAETransformer)}
    if document["class"] not in classes:
        raise ValueError(f"unknown estimator {document['class']!r}")
    estimator = classes[document["class"]](**{k: _decode(v) for k, v in document["params"].items()})
    check_params(estimator, check_device=False)
    spec = NetworkSpec.from_dict({k: _decode(v) for k, v in document["spec"].items()})
    curves = _checked_curves(document)
    optimizer = document["optimizer"]
    estimator._state = FitState(
        network=_network(estimator, spec, tensors, document["model_attributes"]),
        spec=spec,
        device=torch.device("cpu"),
        optimizer_name=document["optimizer_name"],
        optimizer_state=None if optimizer is None else _optimizer_state(tensors, optimizer),
        **curves,
        **_checked_counts(document, spec.n_features),
    )
    estimator.n_features_in_ = int(document["n_features_in"])
    if estimator.n_features_in_ != spec.n_features:
        raise ValueError("n_features_in does not match the network")
    if document["feature_names_in"] is not None:
        names = np.asarray(document["feature_names_in"], dtype=object)
        if names.shape != (spec.n_features,):
            raise ValueError("feature_names_in does not match the network")
        estimator.feature_names_in_ = names
    return estimator


def _checked_counts(document, n_features):
    """``n_samples_seen`` and ``mean`` of ``document``, checked."""
    n_samples_seen, mean = document["n_samples_seen"], document["mean"]
    if (
        not isinstance(n_samples_seen, int)
        or isinstance(n_samples_seen, bool)
        or (n_samples_seen < 1)
    ):
        raise ValueError(f"n_samples_seen must be a positive int; got {n_samples_seen!r}")
    if (
        not isinstance(mean, list)
        or len(mean) != n_features
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in mean)
    ):
        raise ValueError(f"mean must be a list of {n_features} numbers")
    summary = {name: document[name] for name in ("training_error", "training_variance")}
    for name, value in summary.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a non-negative number; got {value!r}")
    return {
        "n_samples_seen": n_samples_seen,
        "mean": np.asarray(mean, dtype=np.float64),
        **{name: float(value) for name, value in summary.items()},
    }


def _checked_curves(document):
    """The curves and counters of ``document``, consistent with each other."""

    def numbers(values):
        if not isinstance(values, list) or not all(isinstance(v, (int, float)) for v in values):
            raise ValueError(f"expected a list of numbers, got {values!r}")
        return [float(v) for v in values]

    loss_curve = numbers(document["loss_curve"])
    n_iter = document["n_iter"]
    if not isinstance(n_iter, int) or isinstance(n_iter, bool) or n_iter != len(loss_curve):
        raise ValueError(f"n_iter {n_iter!r} does not match the {len(loss_curve)} losses")
    validation = document["validation_loss_curve"]
    pretraining = document["pretrain_loss_curves"]
    return {
        "loss_curve": loss_curve,
        "validation_loss_curve": None if validation is None else numbers(validation),
        "best_loss": float(document["best_loss"]),
        "n_iter": n_iter,
        "pretrain_loss_curves": None if pretraining is None else [numbers(c) for c in pretraining],
    }


def _network(estimator, spec, tensors, attributes):
    n = spec.n_features
    network = seeded_model(
        lambda: estimator._build_model(spec, np.zeros(n), 1.0, np.ones(n)), seed=0
    )
    weights = {k[len(_NETWORK) :]: v for k, v in tensors.items() if k.startswith(_NETWORK)}
    try:
        network.load_state_dict(weights)
    except RuntimeError as error:
        raise ValueError(f"the saved network does not match its description: {error}") from None
    for name, value in attributes.items():
        if name not in _MODEL_SETTINGS or name not in vars(network):
            raise ValueError(f"unknown model setting {name!r}")
        setattr(network, name, value)
    return network.eval()
