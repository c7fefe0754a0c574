"""Damaged and doctored skae model files, and the rule each must meet when loaded.

Shared by the hypothesis suite (``tests/fuzz_files.py``, run in a subprocess
by ``tests/test_persistence_fuzz.py``) and the long run
(``benchmarks/bench_file_fuzz.py``). Two kinds of change:

- **damage** (byte flips and truncations of the file as written, digest left
  alone): ``load`` must raise ``ValueError`` (or ``OSError``) or return a
  model that behaves exactly like the original (transform, reconstruction,
  one ``partial_fit``, ``save``);
- **edits** (a field of the header or a tensor changed, then the SHA-256
  recomputed, as anyone who edits a file can): ``load`` must raise
  ``ValueError``, or return a model that transforms, trains one
  ``partial_fit`` and saves without any other exception (a
  ``DivergenceError`` is a clear error too). A crash of the process
  fails both: run these in a subprocess.

:data:`CONTRADICTIONS` are edits of the second kind whose file, though
resealed, contradicts itself (parameters that are not the network's, a map
of rows that were never seen): ``load`` must refuse them.
"""

import json
import os
import struct
import tempfile
import warnings

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from sklearn.datasets import load_digits

import skae
from skae import AutoencoderTransformer, DivergenceError, VAETransformer
from skae._file_checks import digest

FAST = {"max_epochs": 2, "batch_size": 32, "device": "cpu", "random_state": 0}
MODELS = {
    "autoencoder_adam": lambda: AutoencoderTransformer(hidden_layer_sizes=(8,), **FAST),
    "autoencoder_adamw_sparse": lambda: AutoencoderTransformer(
        hidden_layer_sizes=(8,), optimizer="adamw", sparsity=0.1, noise="masking", **FAST
    ),
    "vae_rmsprop": lambda: VAETransformer(
        hidden_layer_sizes=(8,), optimizer="rmsprop", kl_warmup_epochs=2, **FAST
    ),
    "conv_sgd_batchnorm": lambda: AutoencoderTransformer(
        architecture="conv",
        input_shape=(1, 8, 8),
        conv_channels=(2,),
        hidden_layer_sizes=(4,),
        optimizer="sgd",
        batch_norm=True,
        **FAST,
    ),
}


# A model with the neighbour objective, which keeps a map of its rows: for
# the contradictions, which its embedding can hold.
MAP_MODELS = {
    "autoencoder_map": lambda: AutoencoderTransformer(
        hidden_layer_sizes=(8,), n_components=2, neighbor_weight=1.0, **FAST
    ),
}


def data():
    """100 digits scaled to [0, 1]: what every model here is fitted on."""
    return load_digits().data[:100] / 16.0


def write_models(directory, models=MODELS):
    """Fit and save each of ``models`` into ``directory``; return ``{name: path}``."""
    X = data()
    paths = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, make in models.items():
            paths[name] = os.path.join(directory, f"{name}.skae")
            make().fit(X).save(paths[name])
    return paths


# ---------------------------------------------------------------- reading


def read(path):
    """``(metadata, tensors, document)`` of a saved file."""
    with safe_open(os.fspath(path), framework="pt") as file:
        metadata = dict(file.metadata())
        tensors = {name: file.get_tensor(name) for name in file.keys()}
    return metadata, tensors, json.loads(metadata["estimator"])


def write(path, metadata, tensors, document=None):
    """Write a file, with ``document`` as its description when given, resealed."""
    metadata = dict(metadata)
    if document is not None:
        metadata["estimator"] = json.dumps(document)
    metadata["sha256"] = digest(metadata, tensors)
    metadata.pop("hmac", None)
    save_file(tensors, os.fspath(path), metadata=metadata)


def header_length(data):
    """Bytes of a safetensors file's JSON header (after its 8-byte length)."""
    return struct.unpack("<Q", data[:8])[0]


# ----------------------------------------------------------------- damage


def flipped(data, position, mask):
    """``data`` with the byte at ``position`` xor-ed with ``mask`` (1-255)."""
    changed = bytearray(data)
    changed[position % len(changed)] ^= mask
    return bytes(changed)


def truncated(data, length):
    return data[: length % len(data)]


# ------------------------------------------------------------------ edits


def json_paths(document, prefix=()):
    """Every path into ``document`` (tuple of keys and indices), containers included."""
    paths = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            paths += json_paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document[:8]):  # long lists: a few entries suffice
            paths += json_paths(value, (*prefix, index))
    return paths


# Values put in place of a field: wrong types, edges of ranges, sizes that
# would allocate terabytes, deep nesting, JSON's non-standard numbers.
REPLACEMENTS = [
    None,
    True,
    0,
    -1,
    1,
    3,
    10**12,
    10**30,
    0.5,
    -0.5,
    1e300,
    "x",
    "cpu\n",
    "",
    [],
    [1, 2],
    [[1, 2]],
    {},
    {"__tuple__": [10**12]},
    {"__tuple__": "ab"},
    {"__random_state__": ["MT19937", [1], 0, 0, 0.0]},
    "NaN",
    "Infinity",
    "DEEP",
]


def _raw_value(value):
    """A JSON text for ``value``: the literal for NaN/Infinity, a deep nest for DEEP."""
    if value == "NaN":
        return "NaN"
    if value == "Infinity":
        return "Infinity"
    if value == "DEEP":
        return "[" * 5000 + "]" * 5000
    return json.dumps(value)


def edit_json(document, path, replacement):
    """The description text with the field at ``path`` replaced (or deleted when
    ``replacement`` is ``KeyError``); a non-empty ``path`` is needed."""
    marker = "__SKAE_FUZZ_MARKER__"
    document = json.loads(json.dumps(document))
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if replacement is KeyError:
        del parent[path[-1]]
        return json.dumps(document)
    parent[path[-1]] = marker
    return json.dumps(document).replace(json.dumps(marker), _raw_value(replacement))


def add_json_field(document, path, name, value):
    document = json.loads(json.dumps(document))
    target = document
    for key in path:
        target = target[key]
    if isinstance(target, dict):
        target[name] = value
    elif isinstance(target, list):
        target.append(value)
    return json.dumps(document)


TENSOR_EDITS = (
    "zeros(3)",
    "drop",
    "extra",
    "reshape",
    "float64",
    "int64",
    "float16",
    "nan",
    "inf",
    "huge",
    "negative",
    "scalar",
    "five",
)


def edit_tensors(tensors, name, how):
    """``tensors`` with the one called ``name`` changed ``how`` (see TENSOR_EDITS)."""
    tensors = dict(tensors)
    tensor = tensors[name]
    if how == "zeros(3)":
        tensors[name] = torch.zeros(3)
    elif how == "drop":
        del tensors[name]
    elif how == "extra":
        prefix = name.rsplit(".", 1)[0]
        tensors[f"{prefix}.extra"] = torch.zeros(2)
    elif how == "reshape":
        tensors[name] = torch.zeros((*tensor.shape, 2)) if tensor.numel() < 4096 else tensor[:1]
    elif how in ("float64", "int64", "float16"):
        tensors[name] = tensor.to(getattr(torch, how))
    elif how in ("nan", "inf", "huge", "negative"):
        value = {"nan": np.nan, "inf": np.inf, "huge": 1e30, "negative": -1.0}[how]
        if not tensor.is_floating_point():  # counts (batch norm's num_batches_tracked)
            value = -1 if how == "negative" else 2**62
        changed = tensor.clone()
        changed.view(-1)[:1] = value
        tensors[name] = changed
    elif how == "scalar":
        tensors[name] = torch.tensor(5.0, dtype=tensor.dtype)
    elif how == "five":
        tensors[name] = torch.ones(5, dtype=tensor.dtype)
    return tensors


# --------------------------------------------------------- contradictions


def _changed_size(sizes):
    """An encoded tuple of sizes (``{"__tuple__": [...]}``) with its first size doubled."""
    first, *rest = sizes["__tuple__"]
    return {"__tuple__": [2 * first, *rest]}


def _other_activation(document):
    return "tanh" if document["spec"]["activation"] != "tanh" else "relu"


def _map_of(rows):
    """A map of ``rows`` rows, for a model that keeps one."""

    def change(tensors, document):
        if not document["objective"]["neighbors"]:
            return False
        tensors["fitted.embedding"] = torch.zeros((rows, document["spec"]["n_components"]))
        return True

    return change


def _map_without_its_term(tensors, document):
    if document["objective"]["neighbors"]:
        document["objective"]["neighbors"] = 0.0
    else:
        rows = document["n_samples_seen"]
        tensors["fitted.embedding"] = torch.zeros((rows, document["spec"]["n_components"]))
    return True


def _duplicate_names(tensors, document):
    document["feature_names_in"] = ["same"] * document["n_features_in"]
    return True


def _parameter(name, value_of):
    """Set parameter ``name`` to ``value_of(document)``."""

    def change(tensors, document):
        document["params"][name] = value_of(document)
        return True

    return change


# name -> change(tensors, document), in place; returns False where it does not apply.
CONTRADICTIONS = {
    "params.hidden_layer_sizes": _parameter(
        "hidden_layer_sizes", lambda d: _changed_size(d["spec"]["hidden_layer_sizes"])
    ),
    "params.n_components": _parameter("n_components", lambda d: d["spec"]["n_components"] + 1),
    "params.activation": _parameter("activation", _other_activation),
    "embedding of 0 rows": _map_of(0),
    "embedding of 5 rows": _map_of(5),
    "embedding of 100,000 rows": _map_of(100_000),
    "embedding without the neighbour term": _map_without_its_term,
    "duplicate feature_names_in": _duplicate_names,
}


def contradicted(parts, name):
    """``(metadata, tensors, document)`` with :data:`CONTRADICTIONS` ``[name]`` applied,
    or None where it does not apply."""
    metadata, tensors, document = parts
    tensors, document = dict(tensors), json.loads(json.dumps(document))
    if not CONTRADICTIONS[name](tensors, document):
        return None
    return metadata, tensors, document


# ------------------------------------------------------------------- rule


class Outcome:
    """What loading and using a changed file gave: one of :data:`KINDS`."""

    KINDS = ("rejected", "identical", "works", "changed", "raw error")

    def __init__(self, kind, detail=""):
        assert kind in self.KINDS
        self.kind, self.detail = kind, detail

    @property
    def failed(self):
        return self.kind in ("changed", "raw error")

    def __repr__(self):
        return f"Outcome({self.kind!r}, {self.detail!r})"


def _behaviour(model, X):
    """What a model does: its codes, reconstructions, and its state after one partial_fit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        codes = model.transform(X)
        reconstructions = model.inverse_transform(codes)
        model.partial_fit(X)
        after = model.transform(X)
    with tempfile.TemporaryDirectory() as directory:
        model.save(os.path.join(directory, "again.skae"))
        skae.load(os.path.join(directory, "again.skae"))
    return codes, reconstructions, after


def outcome(path, X, original=None):
    """Load ``path`` and use the model; compare with ``original``'s behaviour when given.

    ``original`` (from :func:`behaviour_of`) makes this the rule for damage
    (identical or rejected); without it, the rule for edits (works or rejected).
    """
    try:
        model = skae.load(path)
    except (ValueError, OSError):
        return Outcome("rejected")
    except Exception as error:  # noqa: BLE001 - what the rule is about
        return Outcome("raw error", f"load: {type(error).__name__}: {error}"[:300])
    try:
        found = _behaviour(model, X)
    except (ValueError, DivergenceError) as error:
        if original is None:
            return Outcome("works", f"then {type(error).__name__}")
        return Outcome("changed", f"{type(error).__name__}: {error}"[:300])
    except Exception as error:  # noqa: BLE001
        return Outcome("raw error", f"use: {type(error).__name__}: {error}"[:300])
    if original is None:
        return Outcome("works")
    same = all(np.array_equal(a, b, equal_nan=True) for a, b in zip(found, original, strict=True))
    return Outcome("identical") if same else Outcome("changed", "different results")


def behaviour_of(path, X):
    """The original model's behaviour, to compare damaged copies with."""
    return _behaviour(skae.load(path), X)
