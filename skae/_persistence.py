"""A file format for fitted estimators that runs no code and trusts nothing when loaded.

One safetensors file: the network's weights and buffers and the optimiser's
state as tensors; the class name, parameters, the model's objective, fitted
attributes and format version as JSON in the file's metadata. Formats 3 and
4 seal the whole file with one SHA-256 over header and tensors (and, when
saved with a key, an HMAC-SHA256); format 2 files (tensors checksummed,
header not) still load, and formats 2 and 3 (whose header lists the model's
settings as ``model_attributes``) get their objective rebuilt from those.

This module knows no estimator: it writes and reads a :class:`SavedModel`
(class name, parameters, fitted state), and checks parameters through the
``plan_for`` function its caller passes (see ``skae._loading``).

Loading parses JSON and tensor bytes only, never a pickle, and checks the
whole file against itself before building anything: every field's type and
range, the network's tensors against the network the header describes (its
shapes found on PyTorch's "meta" device, where nothing is allocated), the
optimiser's state against the optimiser it names, the parameters against
the network built from them, a map against the rows seen. Whatever is
wrong is a ``ValueError`` naming the field. Only a regular file is opened
(a FIFO would wait for a writer).

Saving writes a temporary file of its own beside the target, flushed to
disk, then renames it over the target: concurrent saves to one path leave
one of them whole, never a mix.
"""

import collections
import collections.abc
import contextlib
import dataclasses
import errno
import json
import math
import os
import secrets
import stat
from typing import NamedTuple

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
from ._models import build_model
from ._networks import OUTPUT_ACTIVATIONS
from ._objectives import objective_from_dict
from ._optimizer_state import TENSOR_PREFIX as _OPTIMIZER
from ._optimizer_state import checked_state, split_state
from ._plan import NetworkSpec
from ._state import FitState

FORMAT = "skae"
# 4: the model's whole objective ("objective") instead of "model_attributes".
# 3: one digest over header and tensors, optionally keyed (HMAC).
# 2: n_samples_seen, mean, training_error and training_variance; tensors-only checksum.
FORMAT_VERSION = 4
READABLE_VERSIONS = (2, 3, 4)
_NETWORK = "network."
_EMBEDDING = "fitted.embedding"  # format 4: the neighbour objective's map, when kept


class SavedModel(NamedTuple):
    """What a file holds: a fitted estimator's class name, parameters and state."""

    class_name: str
    params: dict
    n_features_in: int
    feature_names_in: object  # an ndarray of str, or None
    state: FitState


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


def save_model(saved, path, key=None, plan_for=None):
    """Write ``saved`` (a :class:`SavedModel`) to ``path`` (see ``BaseAutoencoder.save``).

    ``plan_for`` (see :func:`read_file`), when given, checks first that the
    parameters still describe the fitted network, as loading the file will:
    a file is one consistent model, never one that ``load`` refuses.
    """
    check_key(key)
    if plan_for is not None:
        changed = _changed_parameters(plan_for(saved.class_name, saved.params), saved.state.spec)
        if changed:
            raise ValueError(
                f"Cannot save: {'; '.join(changed)}. Set the parameters back, or fit "
                "again, so that the file describes one model."
            )
    path = os.fsdecode(os.fspath(path))
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"Cannot save to {path!r}: the folder {directory!r} does not exist."
        )
    _write_atomically(path, model_bytes(saved, key), directory)


def model_bytes(saved, key=None):
    """The bytes of ``saved``'s file (what ``save`` writes)."""
    from safetensors.torch import save

    state = saved.state.on_cpu()
    tensors = {
        _NETWORK + name: value.detach().clone().contiguous()
        for name, value in state.network.state_dict().items()
    }
    if state.embedding is not None:
        tensors[_EMBEDDING] = torch.from_numpy(np.ascontiguousarray(state.embedding)).clone()
    optimizer = None
    if state.optimizer_state is not None:
        optimizer_tensors, optimizer = split_state(state.optimizer_state, _encode)
        tensors.update({k: v.detach().clone().contiguous() for k, v in optimizer_tensors.items()})
    names = saved.feature_names_in
    document = {
        "class": saved.class_name,
        "params": {k: _encode(v) for k, v in saved.params.items()},
        "n_features_in": saved.n_features_in,
        "feature_names_in": None if names is None else [str(name) for name in names],
        "spec": {k: _encode(v) for k, v in state.spec.to_dict().items()},
        "objective": state.network.objective.to_dict(),
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


def _write_atomically(path, data, directory):
    """Write ``data`` to ``path`` (in ``directory``) through a temporary file beside it.

    Each call has its own temporary (threads and processes saving to one
    path never share one), flushed to disk before it replaces ``path``, and
    the folder's entry is flushed after: a crash or a failure at any point
    leaves the old file (or none), never a truncated one, and no temporary.
    The file is created with mode 0666 less the user's umask (0644 under
    022), as ``open`` creates files; safetensors' own writer made them 0600.
    """
    descriptor, temporary = _new_temporary(path, directory)
    try:
        with open(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):  # the error that brought us here is the one to report
            os.remove(temporary)
        raise
    _sync_directory(directory)


def _new_temporary(path, directory):
    """A new file beside ``path`` with a name no other call uses: ``(descriptor, name)``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    stem = os.path.basename(path)[:200]  # with the suffix, within any system's name limit
    for _ in range(100):
        name = os.path.join(directory, f"{stem}.{secrets.token_hex(8)}.tmp")
        try:
            return os.open(name, flags, 0o666), name  # 0666 less the umask
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary name beside the file", path)


def _sync_directory(directory):
    """Flush ``directory``'s entries to disk, where the system can (not on Windows)."""
    if os.name == "nt":  # a folder cannot be opened there; NTFS journals renames
        return
    try:
        descriptor = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except PermissionError:  # a folder we may write in but not read: the file is saved
        return
    try:
        os.fsync(descriptor)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise  # some file systems cannot sync a folder; other errors are real
    finally:
        os.close(descriptor)


# Formats 2 and 3 saved the model's settings besides its shape as
# "model_attributes"; each with the check its saved value must pass.
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


_LEGACY_SETTINGS = {
    "noise": _noise,
    "noise_level": _non_negative,
    "sparsity": _non_negative,
    "beta": _non_negative,
    "kl_weight": _non_negative,
    "neighbor_weight": _non_negative,
    "kernel_a": _positive,
    "kernel_b": _positive,
}
# The models of formats 2 and 3 had these settings; an autoencoder's had no
# beta or kl_weight, a VAE's no sparsity.
_VAE_ONLY, _AUTOENCODER_ONLY = ("beta", "kl_weight"), ("sparsity",)


def _legacy_objective(attributes, planned):
    """The objective of a format 2 or 3 file's ``model_attributes``, every value checked.

    ``planned`` is the objective the file's parameters describe: it gives
    what those files did not store with the model (``n_neighbors``,
    ``min_dist``, the KL warm-up), which only matter to the next fit, which
    takes them from the parameters anyway.
    """
    if not isinstance(attributes, dict):
        raise FileContentError("model_attributes must be a JSON object")
    foreign = _AUTOENCODER_ONLY if planned.variational else _VAE_ONLY
    for name, value in attributes.items():
        if name not in _LEGACY_SETTINGS or name in foreign:
            raise FileContentError(f"unknown model setting {name!r:.40}")
        _LEGACY_SETTINGS[name](f"model_attributes.{name}", value)
    values = {
        "noise": attributes.get("noise"),
        "noise_level": float(attributes.get("noise_level", 0.0)),
        "neighbors": float(attributes.get("neighbor_weight", 0.0)),
        "kernel": (
            float(attributes.get("kernel_a", 1.0)),
            float(attributes.get("kernel_b", 1.0)),
        ),
    }
    if planned.variational:
        values["kl"] = float(attributes.get("beta", planned.kl))
    else:
        values["sparsity"] = float(attributes.get("sparsity", 0.0))
    try:
        return objective_from_dict({**planned.to_dict(), **values})
    except ValueError as error:
        raise FileContentError(str(error)) from None


# ------------------------------------------------------------------- load


_FILE_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _read(path):
    """The tensors and metadata of the file at ``path``, unchecked."""
    from safetensors import safe_open

    # Opening a FIFO waits for a writer, and a device may never end: only a
    # regular file is opened (a link is followed to what it names).
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a file")
        raise ValueError(f"{path!r} is not a regular file ({kind}): not a skae model file.")
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


def read_file(path, plan_for, device=None, key=None):
    """The :class:`SavedModel` in the file at ``path``, checked (see ``skae.load``).

    ``plan_for(class_name, params)`` returns the
    :class:`~skae._plan.FitPlan` of a class's parameters, raising a
    ValueError for an unknown class or invalid parameters.
    """
    path = os.fsdecode(os.fspath(path))
    check_key(key)
    target = resolve_device("cpu" if device is None else device)
    return _loaded(path, *_read(path), key, target, plan_for)


def read_bytes(data, plan_for, device=None):
    """The :class:`SavedModel` whose file's bytes are ``data``, checked as
    :func:`read_file` checks a file."""
    from safetensors import SafetensorError
    from safetensors.torch import load as load_tensors

    target = resolve_device("cpu" if device is None else device)
    where = "the saved estimator"
    data = _file_bytes(data, where)
    try:
        tensors = load_tensors(data)
        header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
        metadata = header.get("__metadata__") or {}
    except (SafetensorError, ValueError, TypeError, AttributeError) as error:
        raise ValueError(f"{where} is not a skae model, or is corrupted ({error}).") from None
    return _loaded(where, tensors, metadata, None, target, plan_for, same_params=False)


def _file_bytes(data, where):
    """``data`` (bytes, or a 1-D uint8 array as a pickled state holds them) as bytes."""
    if isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 1:
        return data.tobytes()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    found = (
        f"an array of {data.dtype} of shape {data.shape}"
        if isinstance(data, np.ndarray)
        else f"a {type(data).__name__}"
    )
    raise ValueError(
        f"{where} must be the bytes of a skae file (bytes or a 1-D uint8 array); got {found}."
    )


def _loaded(path, tensors, metadata, key, target, plan_for, same_params=True):
    """The model of a file's ``tensors`` and ``metadata``, checked, on ``target``.

    ``same_params``: whether the parameters must describe the saved network
    (a file's must; a pickled estimator's may have been set after its fit).
    """
    _check_integrity(path, metadata, tensors, key)
    try:
        document = parse_json(metadata.get("estimator"), "the model description")
        version = int(metadata["format_version"])
        saved = _saved_model(document, tensors, plan_for, version, same_params)
    except (FileContentError, KeyError, TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"{path!r} holds an invalid skae model description ({error}).") from None
    saved.state.place(target)
    return saved


_DOCUMENT_FIELDS = (
    "class",
    "params",
    "n_features_in",
    "feature_names_in",
    "spec",
    "objective",  # format 4
    "model_attributes",  # formats 2 and 3
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


def _saved_model(document, tensors, plan_for, version, same_params):
    """The :class:`SavedModel` that ``document`` and ``tensors`` describe, checked."""
    only_keys(document, _DOCUMENT_FIELDS, "the description")
    settings = "objective" if version >= 4 else "model_attributes"
    if settings not in document or ({"objective", "model_attributes"} - {settings}) & set(document):
        raise FileContentError(f"a format {version} description needs {settings!r}")
    name = field(document, "class")
    if not isinstance(name, str):
        raise FileContentError(f"unknown estimator {name!r:.60}")
    params = _decoded_object(field(document, "params"), "params")
    # A pickled estimator's parameters are the user's, checked at its next fit
    # (invalid ones pickle, as scikit-learn's do); its spec is checked below.
    pickled = not same_params and version >= 4
    plan = None if pickled else _checked_plan(plan_for, name, params)
    n_features = integer(field(document, "n_features_in"), "n_features_in", 1)
    described = _decoded_object(field(document, "spec"), "spec")
    spec, built_for = _checked_spec(plan_for, name, described, n_features, tensors)
    # Pickles are written in format 4: an older one's parameters are the file's.
    changed = [] if pickled else _changed_parameters(plan, spec)
    if changed:
        raise FileContentError(f"{changed[0]}: the file contradicts itself")
    counts = _checked_counts(document, n_features)  # bounds n_features by the file's size
    unknown = [t for t in tensors if not t.startswith((_NETWORK, _OPTIMIZER)) and t != _EMBEDDING]
    if unknown:
        raise FileContentError(f"unknown tensors {sorted(unknown)[:5]}")
    if version >= 4:
        objective = _checked_objective(document["objective"], built_for.objective)
    else:
        objective = _legacy_objective(document["model_attributes"], plan.objective)
    network = _network(spec, objective, tensors)
    curves = _checked_curves(document)
    network.set_objective(objective, curves["n_iter"])  # where the KL warm-up stands
    state = FitState(
        network=network,
        spec=spec,
        device=torch.device("cpu"),
        **_checked_optimizer(document, network, tensors),
        **curves,
        **counts,
        embedding=_checked_embedding(
            tensors.get(_EMBEDDING), spec, objective, counts["n_samples_seen"]
        ),
    )
    names = _checked_names(field(document, "feature_names_in"), n_features)
    return SavedModel(name, params, n_features, names, state)


def _changed_parameters(plan, spec):
    """What in the parameters' ``plan`` differs from the network ``spec`` was built
    with: one sentence per parameter (none when they describe the same network)."""
    requested = plan.network.output_activation
    output = spec.output_activation if requested == "auto" else requested
    planned = dataclasses.replace(
        plan.network, n_features=spec.n_features, output_activation=output
    )
    changed = []
    for name in spec.changes_from(planned):
        if name in dict(spec.objective):
            mine, built = dict(planned.objective)[name], dict(spec.objective)[name]
        else:
            mine, built = getattr(planned, name), getattr(spec, name)
        changed.append(
            f"params.{name} is {mine!r:.60}, but the network was built with {built!r:.60}"
        )
    return changed


def _checked_names(names, n_features):
    """``feature_names_in`` (or None) as ``fit`` makes them: distinct strings, one a feature."""
    if names is None:
        return None
    if not isinstance(names, list) or len(names) != n_features:
        raise FileContentError("feature_names_in does not match the network")
    if not all(isinstance(name, str) for name in names):
        raise FileContentError("feature_names_in must be strings")
    if len(set(names)) != len(names):
        twice = next(name for name, count in collections.Counter(names).items() if count > 1)
        raise FileContentError(
            f"feature_names_in holds {twice!r:.60} more than once (fit refuses such names)"
        )
    return np.asarray(names, dtype=object)


def _checked_embedding(tensor, spec, objective, n_samples_seen):
    """The saved map of the last call's rows (or None), checked: float32, one code per row.

    Only a fit with the neighbour term keeps a map, of every row of its call:
    more than ``n_neighbors`` (its graph needs them), at most all rows seen.
    """
    if tensor is None:
        return None
    if not objective.neighbors:
        raise FileContentError(
            "the embedding (fitted.embedding) is saved, but the objective has no neighbour "
            "term (objective.neighbors is 0)"
        )
    if tensor.dtype != torch.float32 or tensor.ndim != 2 or tensor.shape[1] != spec.n_components:
        raise FileContentError(
            f"the embedding must be float32 of {spec.n_components} columns; got "
            f"{tensor.dtype} of shape {tuple(tensor.shape)}"
        )
    rows = tensor.shape[0]
    if not objective.n_neighbors < rows <= n_samples_seen:
        raise FileContentError(
            f"the embedding has {rows} rows; a map holds the rows of the last fitting call: "
            f"more than objective.n_neighbors ({objective.n_neighbors}), at most "
            f"n_samples_seen ({n_samples_seen})"
        )
    if not bool(torch.isfinite(tensor).all()):
        raise FileContentError("the embedding holds values that are not finite")
    return tensor.numpy().copy()


def _checked_objective(values, built_for):
    """The saved objective, each field checked; its reconstruction term is the network's
    (``built_for``: the objective of the parameters the network was built with)."""
    try:
        objective = objective_from_dict(values)
    except ValueError as error:
        raise FileContentError(str(error)) from None
    if objective.reconstruction != built_for.reconstruction:
        raise FileContentError(
            f"objective.reconstruction {objective.reconstruction!r} does not match the "
            f"network's {built_for.reconstruction!r}"
        )
    return objective


def _decoded_object(values, where):
    if not isinstance(values, dict):
        raise FileContentError(f"{where} must be a JSON object")
    return {name: _decode(value) for name, value in values.items()}


def _checked_plan(plan_for, name, params):
    """The plan of class ``name``'s ``params``, checked as ``fit`` checks them
    (except that the device need not exist: a GPU-trained model loads anywhere)."""
    plan = plan_for(name, params)
    check_device_name(plan.training.device)
    return plan


def _checked_spec(plan_for, name, values, n_features_in, tensors):
    """The network spec ``values`` describe, checked by the parameters' own checks,
    and the plan of the parameters it stands for.

    Its sizes are bounded by the file: the weights it describes must be
    there (before anything is built, even on the meta device).
    """
    n_features, objective = _spec_fields(values)
    if n_features != n_features_in:
        raise FileContentError("n_features_in does not match the network")
    shaping = {n: v for n, v in values.items() if n not in ("n_features", "objective")}
    shaping["conv_channels"] = shaping["conv_channels"] or (1,)  # None for dense networks
    probe = _checked_plan(plan_for, name, {**shaping, **dict(objective)})
    # Not for_data, whose memory check is for training: a saved network is
    # in memory already, and loads for transform on a smaller machine.
    spec = dataclasses.replace(
        probe.network, n_features=n_features, output_activation=values["output_activation"]
    )
    held = sum(t.numel() for k, t in tensors.items() if k.startswith(_NETWORK))
    if spec.weight_count() > held:
        raise FileContentError(
            f"spec does not match the saved network: it describes at least "
            f"{spec.weight_count():,} weights, the file holds {held:,}"
        )
    if spec.input_shape is not None and math.prod(spec.input_shape) != n_features:
        raise FileContentError(
            f"spec.input_shape {spec.input_shape} does not hold spec.n_features={n_features}"
        )
    if spec != NetworkSpec.from_dict(values):
        raise FileContentError("spec is inconsistent (e.g. input_shape without conv)")
    return spec, probe


def _spec_fields(values):
    """``spec``'s ``n_features`` and ``objective``, after checking its fields' names."""
    fields = NetworkSpec.__dataclass_fields__
    only_keys(values, fields, "spec")
    missing = sorted(set(fields) - set(values))
    if missing:
        raise FileContentError(f"spec has no {missing}")
    objective = values["objective"]
    if not (
        isinstance(objective, list)
        and len(objective) == 1
        and isinstance(objective[0], list)
        and len(objective[0]) == 2
        and objective[0][0] in ("loss", "likelihood")
    ):
        raise FileContentError("spec.objective must name the loss or the likelihood")
    if values["output_activation"] not in OUTPUT_ACTIVATIONS:
        raise FileContentError(f"spec.output_activation must be one of {OUTPUT_ACTIVATIONS}")
    return integer(values["n_features"], "spec.n_features", 1), objective


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


def _network(spec, objective, tensors):
    """The network ``spec`` describes, with the file's weights once they fit it exactly."""
    n = spec.n_features

    def build():
        return build_model(spec, objective, np.zeros(n), 1.0, np.ones(n))

    weights = {k[len(_NETWORK) :]: v for k, v in tensors.items() if k.startswith(_NETWORK)}
    _check_weights(weights, network_layout(build))
    network = seeded_model(build, seed=0)
    # Tensor by tensor: torch's load_state_dict takes time quadratic in the
    # number of layers, which a small file can make large.
    with torch.no_grad():
        for name, tensor in network.state_dict(keep_vars=True).items():
            tensor.copy_(weights[name])
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
