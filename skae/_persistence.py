"""A file format for fitted estimators that runs no code and trusts nothing when loaded.

One safetensors file: the network's weights and buffers and the optimiser's
state as tensors; the class name, parameters, fitted attributes and format
version as JSON in the file's metadata. Format 3 seals the whole file with
one SHA-256 over header and tensors (and, when saved with a key, an
HMAC-SHA256); format 2 files (tensors checksummed, header not) still load.

Loading parses JSON and tensor bytes only, never a pickle, and checks the
whole file against itself before building anything: every field's type and
range, the network's tensors against the network the header describes (its
shapes found on PyTorch's "meta" device, where nothing is allocated), the
optimiser's state against the optimiser it names. Whatever is wrong is a
``ValueError`` naming the field.
"""

import collections.abc
import json
import os
from typing import TYPE_CHECKING

import numpy as np
import torch

from ._device import check_device_name, resolve_device
from ._file_checks import (
    MAX_INT,
    FileContentError,
    check_key,
    digest,
    field,
    integer,
    number,
    numbers,
    only_keys,
    parse_json,
    same_digest,
    update_with_tensors,
)
from ._initialization import network_layout, seeded_model
from ._networks import OUTPUT_ACTIVATIONS
from ._optimizer_state import TENSOR_PREFIX as _OPTIMIZER
from ._optimizer_state import checked_state, split_state
from ._params import NetworkSpec, check_params
from ._state import FitState

if TYPE_CHECKING:
    from ._base import BaseAutoencoder

FORMAT = "skae"
# 3: one digest over header and tensors, optionally keyed (HMAC).
# 2: n_samples_seen, mean, training_error and training_variance; tensors-only checksum.
FORMAT_VERSION = 3
READABLE_VERSIONS = (2, 3)
_NETWORK = "network."


# ------------------------------------------------------------- JSON values


def _encode(value):
    """``value`` (a parameter) as JSON, tagging what JSON cannot say itself.

    Sequences (tuples, ranges, arrays) are stored as tuples: what ``fit``
    makes of them, so whatever ``fit`` accepted, ``save`` writes.
    """
    if isinstance(value, np.random.RandomState):
        name, keys, position, has_gauss, cached = value.get_state()
        return {"__random_state__": [name, keys.tolist(), position, has_gauss, cached]}
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (collections.abc.Sequence, np.ndarray)) or hasattr(value, "__array__"):
        return {"__tuple__": [_encode(item) for item in np.asarray(value, dtype=object).tolist()]}
    raise TypeError(f"cannot save a parameter of type {type(value).__name__}: {value!r}")


def _decode(value):
    if isinstance(value, dict) and "__tuple__" in value:
        only_keys(value, ("__tuple__",), "a tuple")
        items = value["__tuple__"]
        if not isinstance(items, list):
            raise FileContentError("a tuple must hold a list")
        return tuple(_decode(item) for item in items)
    if isinstance(value, dict) and "__random_state__" in value:
        only_keys(value, ("__random_state__",), "a random state")
        return _random_state(value["__random_state__"])
    if isinstance(value, dict):
        raise FileContentError(f"unexpected JSON object with fields {sorted(value)[:5]}")
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def _random_state(values):
    """A ``RandomState`` from its saved state, every entry checked first."""
    if not isinstance(values, list) or len(values) != 5:
        raise FileContentError("a random state must be a list of 5 entries")
    name, keys, position, has_gauss, cached = values
    if name != "MT19937":
        raise FileContentError(f"a random state must be MT19937; got {name!r:.40}")
    if not isinstance(keys, list) or len(keys) != 624:
        raise FileContentError("a random state needs 624 keys")
    keys = [integer(key, "a random state's key", 0, 2**32 - 1) for key in keys]
    random_state = np.random.RandomState()
    random_state.set_state(
        (
            name,
            np.asarray(keys, dtype=np.uint32),
            integer(position, "a random state's position", 0, 624),
            integer(has_gauss, "a random state's has_gauss", 0, 1),
            number(cached, "a random state's cached value"),
        )
    )
    return random_state


# ------------------------------------------------------------------- save


def save_estimator(estimator, path, key=None):
    """Write fitted ``estimator`` to ``path`` (see :meth:`BaseAutoencoder.save`)."""
    check_key(key)
    path = os.fsdecode(os.fspath(path))
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"Cannot save to {path!r}: the folder {directory!r} does not exist."
        )
    _write_atomically(path, estimator_bytes(estimator, key))


def estimator_bytes(estimator, key=None):
    """The bytes of fitted ``estimator``'s file (what ``save`` writes)."""
    from safetensors.torch import save

    state = estimator._state.on_cpu()
    tensors = {
        _NETWORK + name: value.detach().clone().contiguous()
        for name, value in state.network.state_dict().items()
    }
    optimizer = None
    if state.optimizer_state is not None:
        optimizer_tensors, optimizer = split_state(state.optimizer_state, _encode)
        tensors.update({k: v.detach().clone().contiguous() for k, v in optimizer_tensors.items()})
    names = getattr(estimator, "feature_names_in_", None)
    document = {
        "class": type(estimator).__name__,
        "params": {k: _encode(v) for k, v in estimator.get_params(deep=False).items()},
        "n_features_in": estimator.n_features_in_,
        "feature_names_in": None if names is None else [str(name) for name in names],
        "spec": {k: _encode(v) for k, v in state.spec.to_dict().items()},
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
        "stream_block_rows": state.stream_block_rows,
    }
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "estimator": json.dumps(document, allow_nan=False),
    }
    metadata["sha256"] = digest(metadata, tensors)
    if key is not None:
        metadata["hmac"] = digest(metadata, tensors, key)
    return save(tensors, metadata=metadata)


def _write_atomically(path, data):
    """Write ``data`` to ``path`` through a temporary file beside it.

    A crash mid-write leaves the old file (or none), never a truncated one;
    the file is created by ``open``, so it gets the user's umask (0644 under
    022), where safetensors' own writer made every file 0600.
    """
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


# What the estimator sets in a model besides its shape (see _configure_model
# and the KL warm-up); the shape itself comes from the spec. Each with the
# check its saved value must pass.
def _non_negative(name, value):
    return number(value, name, low=0)


def _positive(name, value):
    if number(value, name) <= 0:
        raise FileContentError(f"{name} must be positive; got {value!r}")
    return float(value)


def _noise(name, value):
    if value not in (None, "gaussian", "masking"):
        raise FileContentError(f"{name} must be null, 'gaussian' or 'masking'; got {value!r:.40}")
    return value


_MODEL_SETTINGS = {
    "noise": _noise,
    "noise_level": _non_negative,
    "sparsity": _non_negative,
    "beta": _non_negative,
    "kl_weight": _non_negative,
    "neighbor_weight": _non_negative,
    "kernel_a": _positive,
    "kernel_b": _positive,
}


def _model_attributes(network):
    """The model's settings that are not part of its shape."""
    return {name: getattr(network, name) for name in _MODEL_SETTINGS if hasattr(network, name)}


# ------------------------------------------------------------------- load


def _read(path):
    """The tensors and metadata of the file at ``path``, unchecked."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt", device="cpu") as file:
            metadata = file.metadata() or {}
            tensors = {name: file.get_tensor(name) for name in file.keys()}
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as error:
        raise ValueError(
            f"{path!r} is not a skae model file, or it is truncated or corrupted ({error})."
        ) from None
    return tensors, metadata


def _check_integrity(path, metadata, tensors, key):
    """Raise unless the file is a skae file whose digest (and key) match."""
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path!r} is a safetensors file but not a skae model file.")
    version = metadata.get("format_version")
    if version not in [str(v) for v in READABLE_VERSIONS]:
        raise ValueError(
            f"{path!r} has skae file format version {str(version)[:20]}; this version of skae "
            f"reads versions {', '.join(map(str, READABLE_VERSIONS))}."
        )
    if version == "2":
        if not same_digest(_tensor_checksum(tensors), metadata.get("sha256")):
            raise ValueError(f"{path!r} is corrupted: its tensors do not match their checksum.")
        if key is not None:
            raise ValueError(
                f"{path!r} is in format version 2, which has no signature: it cannot be "
                "checked against a key. Load it without one, and save it again with a key."
            )
        return
    if not same_digest(digest(metadata, tensors), metadata.get("sha256")):
        raise ValueError(f"{path!r} is corrupted: its contents do not match their checksum.")
    if key is not None:
        if "hmac" not in metadata:
            raise ValueError(f"{path!r} was saved without a key: it cannot be authenticated.")
        if not same_digest(digest(metadata, tensors, key), metadata.get("hmac")):
            raise ValueError(
                f"{path!r} was not saved with this key, or was changed after it was saved."
            )


def _tensor_checksum(tensors):
    """Format 2's checksum: SHA-256 of the tensors alone."""
    import hashlib

    hasher = hashlib.sha256()
    update_with_tensors(hasher, tensors, name_lengths=False)
    return hasher.hexdigest()


def load(
    path: str | os.PathLike, device: str | None = None, *, key: str | bytes | None = None
) -> "BaseAutoencoder":
    """Load an estimator saved with :meth:`~skae.AutoencoderTransformer.save`.

    Only JSON and tensor data are read: no code in the file is run, and the
    whole file is checked against itself (every field's type and range, the
    tensors against the network and optimiser the header describes) before
    anything is built from it, so a damaged or doctored file is an error,
    never a crash or a silently different model.

    Parameters
    ----------
    path : str or path-like
        A file written by ``save``.
    device : str, default=None
        Where to put the network: None for the CPU, or any value of the
        estimators' ``device`` parameter ("auto", "cuda", ...). A model
        trained on a GPU loads on a CPU-only machine.
    key : str or bytes, default=None
        The key the file was saved with (``save(path, key=...)``): the file
        must carry an HMAC-SHA256 made with that key, so a file changed by
        anyone without the key is refused. None checks the file's SHA-256,
        which detects accidental corruption only (whoever edits a file can
        recompute it).

    Returns
    -------
    estimator : AutoencoderTransformer or VAETransformer
        Fitted: it transforms, and continues training (``partial_fit``,
        ``warm_start``), exactly as the saved one.

    Raises
    ------
    ValueError
        When the file is not a skae model file, is of an unknown format
        version, is truncated, corrupted or inconsistent, or does not match
        ``key``.
    OSError
        When the file cannot be read (``FileNotFoundError`` when missing).
    """
    path = os.fsdecode(os.fspath(path))
    check_key(key)
    target = resolve_device("cpu" if device is None else device)
    return _loaded(path, *_read(path), key, target)


def estimator_from_bytes(data, device=None):
    """The estimator whose file's bytes are ``data``, checked as :func:`load` checks a file."""
    from safetensors import SafetensorError
    from safetensors.torch import load as load_tensors

    target = resolve_device("cpu" if device is None else device)
    where = "the saved estimator"
    try:
        data = bytes(data)
        tensors = load_tensors(data)
        header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
        metadata = header.get("__metadata__") or {}
    except (SafetensorError, ValueError, TypeError, AttributeError) as error:
        raise ValueError(f"{where} is not a skae model, or is corrupted ({error}).") from None
    return _loaded(where, tensors, metadata, None, target)


def _loaded(path, tensors, metadata, key, target):
    """The estimator of a file's ``tensors`` and ``metadata``, checked, on ``target``."""
    _check_integrity(path, metadata, tensors, key)
    try:
        document = parse_json(metadata.get("estimator"), "the model description")
        estimator = _estimator(document, tensors)
    except (FileContentError, KeyError, TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"{path!r} holds an invalid skae model description ({error}).") from None
    estimator._state.place(target)
    return estimator


_DOCUMENT_FIELDS = (
    "class",
    "params",
    "n_features_in",
    "feature_names_in",
    "spec",
    "model_attributes",
    "optimizer_name",
    "optimizer",
    "loss_curve",
    "validation_loss_curve",
    "best_loss",
    "n_iter",
    "pretrain_loss_curves",
    "n_samples_seen",
    "mean",
    "training_error",
    "training_variance",
    "stream_block_rows",  # optional: absent from format 2 files
)


def _estimator(document, tensors):
    """The fitted estimator that ``document`` and ``tensors`` describe, checked."""
    from . import AutoencoderTransformer, VAETransformer

    only_keys(document, _DOCUMENT_FIELDS, "the description")
    classes = {cls.__name__: cls for cls in (AutoencoderTransformer, VAETransformer)}
    name = field(document, "class")
    if not isinstance(name, str) or name not in classes:
        raise FileContentError(f"unknown estimator {name!r:.60}")
    cls = classes[name]
    estimator = _checked_estimator(cls, _decoded_object(field(document, "params"), "params"))
    spec = _checked_spec(cls, _decoded_object(field(document, "spec"), "spec"))
    n_features = spec.n_features
    if integer(field(document, "n_features_in"), "n_features_in", 1) != n_features:
        raise FileContentError("n_features_in does not match the network")
    counts = _checked_counts(document, n_features)  # bounds n_features by the file's size
    unknown = [t for t in tensors if not t.startswith((_NETWORK, _OPTIMIZER))]
    if unknown:
        raise FileContentError(f"unknown tensors {sorted(unknown)[:5]}")
    network = _network(estimator, spec, tensors, field(document, "model_attributes"))
    estimator._state = FitState(
        network=network,
        spec=spec,
        device=torch.device("cpu"),
        **_checked_optimizer(document, network, tensors),
        **_checked_curves(document),
        **counts,
    )
    estimator.n_features_in_ = n_features
    names = field(document, "feature_names_in")
    if names is not None:
        if not isinstance(names, list) or len(names) != n_features:
            raise FileContentError("feature_names_in does not match the network")
        if not all(isinstance(name, str) for name in names):
            raise FileContentError("feature_names_in must be strings")
        estimator.feature_names_in_ = np.asarray(names, dtype=object)
    return estimator


def _decoded_object(values, where):
    if not isinstance(values, dict):
        raise FileContentError(f"{where} must be a JSON object")
    return {name: _decode(value) for name, value in values.items()}


def _checked_estimator(cls, params):
    """``cls(**params)`` with every parameter checked as ``fit`` checks them."""
    unknown = sorted(set(params) - set(cls._get_param_names()))
    if unknown:
        raise FileContentError(f"unknown parameters {unknown[:5]}")
    estimator = cls(**params)
    # The device need not exist here (a GPU-trained model loads anywhere).
    check_params(estimator, check_device=False)
    check_device_name(estimator.device)
    return estimator


def _checked_spec(cls, values):
    """The network spec ``values`` describe, checked by the parameters' own checks."""
    fields = NetworkSpec.__dataclass_fields__
    only_keys(values, fields, "spec")
    missing = sorted(set(fields) - set(values))
    if missing:
        raise FileContentError(f"spec has no {missing}")
    n_features = integer(values["n_features"], "spec.n_features", 1)
    objective = values["objective"]
    if (
        not isinstance(objective, list)
        or not all(isinstance(pair, list) and len(pair) == 2 for pair in objective)
        or sorted(str(pair[0]) for pair in objective) != sorted(cls._model_params)
    ):
        raise FileContentError(f"spec.objective must name {sorted(cls._model_params)}")
    if values["output_activation"] not in OUTPUT_ACTIVATIONS:
        raise FileContentError(f"spec.output_activation must be one of {OUTPUT_ACTIVATIONS}")
    shaping = {n: v for n, v in values.items() if n not in ("n_features", "objective")}
    shaping["conv_channels"] = shaping["conv_channels"] or (1,)  # None for dense networks
    probe = _checked_estimator(cls, {**shaping, **dict(objective)})
    spec = NetworkSpec.from_estimator(probe, n_features, values["output_activation"])
    if spec != NetworkSpec.from_dict(values):
        raise FileContentError("spec is inconsistent (e.g. input_shape without conv)")
    return spec


def _checked_counts(document, n_features):
    """``n_samples_seen``, ``mean`` and the summary of ``document``, checked."""
    return {
        "n_samples_seen": integer(field(document, "n_samples_seen"), "n_samples_seen", 1),
        "mean": np.asarray(numbers(field(document, "mean"), "mean", n_features), dtype=np.float64),
        "training_error": number(field(document, "training_error"), "training_error", 0),
        "training_variance": number(field(document, "training_variance"), "training_variance", 0),
        "stream_block_rows": _optional_count(
            document.get("stream_block_rows"), "stream_block_rows"
        ),
    }


def _optional_count(value, name):
    return None if value is None else integer(value, name, 1)


def _checked_curves(document):
    """The curves and counters of ``document``, consistent with each other."""
    loss_curve = numbers(field(document, "loss_curve"), "loss_curve")
    n_iter = integer(field(document, "n_iter"), "n_iter", 0)
    if n_iter != len(loss_curve):
        raise FileContentError(f"n_iter {n_iter} does not match the {len(loss_curve)} losses")
    validation = field(document, "validation_loss_curve")
    pretraining = field(document, "pretrain_loss_curves")
    if pretraining is not None and not isinstance(pretraining, list):
        raise FileContentError("pretrain_loss_curves must be a list of curves")
    return {
        "loss_curve": loss_curve,
        "validation_loss_curve": (
            None if validation is None else numbers(validation, "validation_loss_curve")
        ),
        "best_loss": number(field(document, "best_loss"), "best_loss"),
        "n_iter": n_iter,
        "pretrain_loss_curves": (
            None
            if pretraining is None
            else [numbers(curve, "pretrain_loss_curves") for curve in pretraining]
        ),
    }


def _checked_optimizer(document, network, tensors):
    name, rest = field(document, "optimizer_name"), field(document, "optimizer")
    if (name is None) != (rest is None):
        raise FileContentError("optimizer_name and optimizer must both be given, or neither")
    found = {t: v for t, v in tensors.items() if t.startswith(_OPTIMIZER)}
    if name is None:
        if found:
            raise FileContentError("optimiser tensors without an optimiser")
        return {"optimizer_name": None, "optimizer_state": None}
    return {
        "optimizer_name": name,
        "optimizer_state": checked_state(name, network, found, rest, _decode),
    }


def _network(estimator, spec, tensors, attributes):
    """The network ``spec`` describes, with the file's weights once they fit it exactly."""
    n = spec.n_features

    def build():
        return estimator._build_model(spec, np.zeros(n), 1.0, np.ones(n))

    weights = {k[len(_NETWORK) :]: v for k, v in tensors.items() if k.startswith(_NETWORK)}
    _check_weights(weights, network_layout(build))
    network = seeded_model(build, seed=0)
    # Tensor by tensor: torch's load_state_dict takes time quadratic in the
    # number of layers, which a small file can make large.
    with torch.no_grad():
        for name, tensor in network.state_dict(keep_vars=True).items():
            tensor.copy_(weights[name])
    if not isinstance(attributes, dict):
        raise FileContentError("model_attributes must be a JSON object")
    for name, value in attributes.items():
        if name not in _MODEL_SETTINGS or name not in vars(network):
            raise FileContentError(f"unknown model setting {name!r:.40}")
        setattr(network, name, _MODEL_SETTINGS[name](f"model_attributes.{name}", value))
    return network.eval()


# Buffers that divide (the data's scales) or are variances.
_POSITIVE_BUFFERS = (".scale", ".scales")
_NON_NEGATIVE_BUFFERS = (".running_var",)


def _check_weights(weights, layout):
    """Raise unless ``weights`` are exactly the tensors ``layout`` lists, finite."""
    missing, extra = sorted(set(layout) - set(weights)), sorted(set(weights) - set(layout))
    if missing or extra:
        raise FileContentError(
            f"the saved network does not match its description: missing {missing[:5]}, "
            f"unexpected {extra[:5]}"
        )
    for name, (shape, dtype) in layout.items():
        tensor = weights[name]
        if tuple(tensor.shape) != shape or tensor.dtype != dtype:
            raise FileContentError(
                f"the saved network does not match its description: {name} has shape "
                f"{tuple(tensor.shape)} and dtype {tensor.dtype}, the network needs {shape} "
                f"and {dtype}"
            )
        if tensor.is_floating_point():
            if not bool(torch.isfinite(tensor).all()):
                raise FileContentError(f"network weight {name} holds values that are not finite")
            if name.endswith(_POSITIVE_BUFFERS) and not bool((tensor > 0).all()):
                raise FileContentError(f"network buffer {name} must be positive")
            if name.endswith(_NON_NEGATIVE_BUFFERS) and not bool((tensor >= 0).all()):
                raise FileContentError(f"network buffer {name} must not be negative")
        elif tensor.numel() and not 0 <= int(tensor.min()) <= int(tensor.max()) <= MAX_INT:
            raise FileContentError(f"network buffer {name} holds a negative count")
