"""A fitted model's life under attack: a hypothesis state machine.

One estimator (AutoencoderTransformer, then VAETransformer: a hidden layer
of a few units, a few epochs, 10 to 60 rows of 3 to 8 features) goes through
random sequences of ``fit``, ``partial_fit``, warm-start ``fit``,
``fit_transform``, ``set_params``, ``set_output``, ``save`` then
``skae.load``, pickling, doctored and garbage files, ``skae.inspection``,
``transform``, ``inverse_transform`` and ``score``, fed what an attacker
would pass: float32 and float64 rows, ndarrays and DataFrames, values in
[0, 1e-3], huge but finite values (1e30, 3e38), NaN, infinite and
beyond-float32 rows, wrong widths, and invalid parameters (negative,
``Fraction``, booleans, ``10**30``, strings). After every step:

- consistent: the network is the one its spec describes, and that spec and
  the objective are what ``get_params()`` said at the last fitting call (a
  loaded file's own parameters must describe its network);
- trainable: a copy of the model (weights, flags and modes as they are)
  continues with ``partial_fit`` on good data;
- transactional: a call either succeeds and changes what it should, or
  raises ``ValueError`` or ``TypeError`` (``NotFittedError`` before any
  fit; ``DivergenceError`` too from extreme data), naming the refused
  parameter, and leaves the fitted state bit for bit as it was; a file
  ``save`` wrote (or a pickle) loads back into the same model;
- finite: finite input gives finite codes, reconstructions and scores, or a
  ``ValueError``;
- float32 in, float32 out: ``transform``, ``inverse_transform``,
  ``fit_transform`` and inspection, for ndarrays and DataFrames;
- inspection leaves the model bit-identical (weights, ``requires_grad``,
  training modes); no call touches torch's global RNG, thread count or
  default dtype.

Profiles: the default draws 30 fresh sequences of 15 steps per estimator on
each run (hypothesis' database replays a failure), does not shrink a failure,
and keeps this file under a minute on 2 cores; ``SKAE_LIFECYCLE_PROFILE=long``
draws 300 sequences of 25 steps per estimator (about 10 minutes on 2 cores)
and shrinks each failure (up to 5 minutes more each), for a benchmark run::

    SKAE_LIFECYCLE_PROFILE=long python -m pytest tests/test_lifecycle.py

A failure prints the steps that lead to it as Python (``state =
AutoencoderLifecycle()``, then one line per step): a reproduction.
"""

import dataclasses
import os
import pickle
import shutil
import tempfile
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import torch
from file_mutations import read, write
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sklearn.exceptions import NotFittedError

import skae
from skae import AutoencoderTransformer, DivergenceError, VAETransformer, inspection
from skae._models import build_model

pytestmark = [
    pytest.mark.filterwarnings("ignore"),
    # Not in `make test` yet: it fails on three bugs still open (issue 28):
    # inspection of 3e38 float32 rows, pickling after set_params(batch_size=10**30),
    # save after set_params(device="tpu"). Its default profile takes 26-37 s.
    pytest.mark.skipif(
        "SKAE_LIFECYCLE_PROFILE" not in os.environ,
        reason="set SKAE_LIFECYCLE_PROFILE=default (or long) to run the life-cycle machine",
    ),
]

_SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "skae-lifecycle",
    max_examples=30,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=_SLOW_IS_FINE,
    # No shrinking: it can take hypothesis' five-minute cap on a failure, and
    # 15 steps read well enough. The long profile shrinks.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
settings.register_profile(
    "skae-lifecycle-long",
    max_examples=300,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=_SLOW_IS_FINE,
    print_blob=True,
)
PROFILE = settings.get_profile(
    "skae-lifecycle-long"
    if os.environ.get("SKAE_LIFECYCLE_PROFILE") == "long"
    else "skae-lifecycle"
)

# ------------------------------------------------------------------- data

GOOD_KINDS = ("unit", "normal", "tiny")
EXTREME_KINDS = ("huge", "limit")  # finite in float32: refused clearly or handled
REFUSED_KINDS = ("nan", "inf", "beyond")  # must be refused by training


@dataclasses.dataclass(frozen=True)
class Rows:
    """Rows of a kind, drawn from ``seed``; ``extra_columns`` more than the model takes.

    unit: [0, 1]; normal: N(1, 3^2); tiny: [0, 1e-3]; huge: N(0, 1e30^2);
    limit: +-2e38..3.4e38, every other row 3e38 (finite in float32); nan
    and inf: unit rows with one such value; beyond: float64 up to 1e39,
    outside float32's range.
    """

    kind: str
    dtype: str = "float32"
    n_rows: int = 20
    extra_columns: int = 0
    frame: bool = False
    seed: int = 0

    @property
    def refused(self):
        """Whether training must refuse these rows."""
        return self.kind in REFUSED_KINDS

    @property
    def extreme(self):
        return self.kind in EXTREME_KINDS

    @property
    def unreadable(self):
        """Whether every call must refuse these rows (float64 beyond float32's
        range is finite: ``transform`` may compute it in float64)."""
        return self.kind in ("nan", "inf")

    def values(self, width):
        rng = np.random.default_rng(self.seed)
        shape = (self.n_rows, width)
        if self.kind == "normal":
            X = rng.normal(1.0, 3.0, shape)
        elif self.kind == "tiny":
            X = rng.uniform(0.0, 1e-3, shape)
        elif self.kind == "huge":
            X = rng.normal(0.0, 1e30, shape)
        elif self.kind == "limit":
            X = rng.choice([-1.0, 1.0], shape) * rng.uniform(2e38, 3.4e38, shape)
            X[::2] = 3e38
        elif self.kind == "beyond":
            X = rng.normal(0.0, 1e39, shape)
            X[0, 0] = 1e39
        else:
            X = rng.uniform(0.0, 1.0, shape)
        if self.kind in ("nan", "inf"):
            X[rng.integers(self.n_rows), rng.integers(width)] = (
                np.nan if self.kind == "nan" else np.inf
            )
        return X.astype(self.dtype)

    def make(self, width):
        """The rows: an ndarray, or a DataFrame with columns x0, x1, ..."""
        X = self.values(width)
        return frame_of(X) if self.frame else X


def frame_of(X):
    return pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])


def rows_strategy():
    kinds = st.one_of(st.sampled_from(GOOD_KINDS), st.sampled_from(EXTREME_KINDS + REFUSED_KINDS))
    return st.builds(
        Rows,
        kind=kinds,
        dtype=st.sampled_from(["float32", "float64"]),
        n_rows=st.integers(10, 60),
        extra_columns=st.sampled_from([0, 0, 0, 0, 0, -1, 1]),
        frame=st.booleans(),
        seed=st.integers(0, 2**16),
    ).map(
        lambda rows: dataclasses.replace(rows, dtype="float64") if rows.kind == "beyond" else rows
    )


@dataclasses.dataclass(frozen=True)
class Codes:
    """Codes to decode: ``transform`` of unit rows, N(0, 1), 1e30, 3e38, or with a NaN."""

    kind: str
    dtype: str = "float32"
    n_rows: int = 5
    extra_columns: int = 0
    frame: bool = False
    seed: int = 0

    def width(self, model):
        return max(1, model.n_components_ + self.extra_columns)

    def make(self, model):
        width = self.width(model)
        rng = np.random.default_rng(self.seed)
        if self.kind == "transformed" and self.extra_columns == 0:
            rows = Rows("unit", self.dtype, self.n_rows, seed=self.seed).values(
                model.n_features_in_
            )
            Z = np.asarray(model.transform(rows))
        else:
            scale = {"huge": 1e30, "limit": 3e38}.get(self.kind, 1.0)
            Z = np.clip(rng.normal(0.0, 1.0, (self.n_rows, width)) * scale, -3.4e38, 3.4e38)
            if self.kind == "nan":
                Z[rng.integers(self.n_rows), rng.integers(width)] = np.nan
        Z = Z.astype(self.dtype)
        return pd.DataFrame(Z, columns=[f"c{k}" for k in range(width)]) if self.frame else Z


CODES = st.builds(
    Codes,
    kind=st.sampled_from(["transformed", "normal", "huge", "limit", "nan"]),
    dtype=st.sampled_from(["float32", "float64"]),
    n_rows=st.integers(1, 20),
    extra_columns=st.sampled_from([0, 0, 0, 0, 1, -1]),
    frame=st.booleans(),
    seed=st.integers(0, 2**16),
)

# ------------------------------------------------------------- parameters


@dataclasses.dataclass(frozen=True)
class Move:
    """A ``set_params`` call and what ``fit`` must make of it: "valid" (accepted),
    "invalid" (refused, naming the parameter), "questionable" (either) or
    "unknown" (a name the estimator has not: ``set_params`` itself refuses)."""

    params: tuple
    status: str


def _moves(status, name, values):
    return [Move(((name, value),), status) for value in values]


VALID_MOVES = [
    *_moves("valid", "n_components", [1, 3, np.int64(2)]),
    *_moves("valid", "hidden_layer_sizes", [(8,), (4, 4), 6, [5], ()]),  # (): linear
    *_moves("valid", "activation", ["relu", "tanh", "elu"]),
    *_moves("valid", "dropout", [0.0, 0.25]),
    *_moves("valid", "batch_norm", [True, False]),
    *_moves("valid", "linear_shortcut", [False, True]),
    *_moves("valid", "output_activation", ["linear", "auto"]),
    *_moves("valid", "learning_rate", [1e-2, np.float32(1e-3)]),
    *_moves("valid", "learning_rate_schedule", ["cosine", "constant"]),
    *_moves("valid", "batch_size", [8, 64, np.int64(16)]),
    *_moves("valid", "max_epochs", [1, 3]),
    *_moves("valid", "weight_decay", [1e-4, 0.0]),
    *_moves("valid", "optimizer", ["sgd", "adamw", "rmsprop", "adam"]),
    *_moves("valid", "noise", ["gaussian", "masking", None]),
    *_moves("valid", "noise_level", [0.2]),
    *_moves("valid", "tol", [0.0, 1e-3]),
    *_moves("valid", "random_state", [1, None, 0]),
    *_moves("valid", "neighbor_weight", [0.0]),
    *_moves("valid", "pretrain", [None]),
    *_moves("valid", "sparsity", [0.1, 0.0]),  # autoencoder
    *_moves("valid", "beta", [0.5, 2.0]),  # VAE
    *_moves("valid", "kl_warmup_epochs", [2, 0]),  # VAE
    Move((("pretrain", "layerwise"), ("pretrain_epochs", 1)), "valid"),
]
QUESTIONABLE_MOVES = [
    Move((("neighbor_weight", 0.5), ("n_neighbors", 5)), "questionable"),
    *_moves("questionable", "early_stopping", [True]),
    *_moves("questionable", "output_activation", ["sigmoid", "tanh"]),
    *_moves("questionable", "batch_size", [10**30]),
    *_moves("questionable", "learning_rate", [Fraction(1, 100)]),
    *_moves("questionable", "dropout", [Fraction(1, 10)]),
    *_moves("questionable", "tol", [Fraction(1, 1000)]),
    *_moves("questionable", "noise_level", [Fraction(1, 5)]),
    *_moves("questionable", "beta", [Fraction(1, 2)]),
]
INVALID_MOVES = [
    *_moves("invalid", "n_components", [0, -1, True, np.bool_(True), 10**30, "2", 2.5, None]),
    *_moves("invalid", "n_components", [Fraction(2, 1)]),
    *_moves("invalid", "hidden_layer_sizes", [(0,), (-4,), "ab", (True,), (10**30,), (4.5,)]),
    *_moves("invalid", "activation", ["nope", None, 3]),
    *_moves("invalid", "dropout", [-0.1, 1.0, True, "0.1", float("nan")]),
    *_moves("invalid", "learning_rate", [-1e-3, 0, True, "fast", float("nan"), float("inf")]),
    *_moves("invalid", "learning_rate", [1e300]),
    *_moves("invalid", "batch_size", [0, -5, True, 2.0]),
    *_moves("invalid", "max_epochs", [0, -1, True, 2.5]),
    *_moves("invalid", "weight_decay", [-1.0]),
    *_moves("invalid", "noise", ["salt"]),
    *_moves("invalid", "noise_level", [-0.5]),
    *_moves("invalid", "tol", [-1.0]),
    *_moves("invalid", "n_neighbors", [1]),
    *_moves("invalid", "min_dist", [2.0]),
    *_moves("invalid", "optimizer", ["lbfgs"]),
    *_moves("invalid", "random_state", ["seed"]),
    *_moves("invalid", "device", ["tpu"]),
    *_moves("invalid", "precision", ["float16"]),
    *_moves("invalid", "output_activation", ["softmax"]),
    *_moves("invalid", "validation_fraction", [1.0, 0]),
    *_moves("invalid", "pretrain_epochs", [0]),
    *_moves("invalid", "sparsity", [-0.1]),  # autoencoder
    *_moves("invalid", "beta", [-1.0]),  # VAE
    *_moves("invalid", "kl_warmup_epochs", [-1, 1.5]),  # VAE
    Move((("nope", 1),), "unknown"),
]


MOVES = st.one_of(st.sampled_from(VALID_MOVES), st.sampled_from(QUESTIONABLE_MOVES + INVALID_MOVES))


# ------------------------------------------------- what the model must be


def is_fitted(model):
    return model.__sklearn_is_fitted__()


def canonical(value):
    """``value`` in a form that compares equal only when bit-identical."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().contiguous()
        raw = value.reshape(-1).view(torch.uint8).numpy().tobytes()
        return ("tensor", str(value.dtype), tuple(value.shape), raw)
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return ("objects", value.shape, tuple(repr(v) for v in value.ravel()))
        return ("array", str(value.dtype), value.shape, np.ascontiguousarray(value).tobytes())
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, dict):
        return ("dict", tuple(sorted((repr(k), canonical(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(canonical(v) for v in value))
    return (type(value).__name__, repr(value))


# Not saved: a neighbour fit's transient (see skae._state.FitState), and the
# optimiser's rate and weight decay, which every call sets from the parameters.
_UNSAVED = ("start_error",)
_UNSAVED_GROUP_KEYS = ("lr", "weight_decay")


def _saved_part(optimizer_state):
    if optimizer_state is None:
        return None
    groups = [
        {k: v for k, v in group.items() if k not in _UNSAVED_GROUP_KEYS}
        for group in optimizer_state["param_groups"]
    ]
    return {**optimizer_state, "param_groups": groups}


def fitted_state(model, *, modes=True, saved_only=False):
    """What a call may change, comparable bit for bit (see :func:`canonical`);
    ``saved_only``: what a file holds (as a round trip must give back)."""
    if not is_fitted(model):
        return {"unfitted": sorted(name for name in vars(model) if name.endswith("_"))}
    state = model._state
    network = state.network
    snapshot = {
        field.name: canonical(getattr(state, field.name))
        for field in dataclasses.fields(state)
        if field.name != "network" and not (saved_only and field.name in _UNSAVED)
    }
    if saved_only:
        snapshot["optimizer_state"] = canonical(_saved_part(state.optimizer_state))
    snapshot["network"] = canonical(network.state_dict())
    snapshot["requires_grad"] = [p.requires_grad for p in network.parameters()]
    snapshot["objective"] = repr(network.objective)
    if modes:
        snapshot["modes"] = [module.training for module in network.modules()]
    for name in ("n_features_in_", "feature_names_in_"):
        snapshot[name] = canonical(getattr(model, name, None))
    return snapshot


def _plain(params):
    """``params`` with numpy scalars as the Python numbers they hold (a file keeps
    the value, not the numpy type)."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in params.items()}


def params_of(model):
    return canonical(_plain(model.get_params(deep=False)))


def assert_same_state(before, after, what):
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, f"{what} changed the fitted state: {changed}"


def global_state():
    """What no call may change: torch's global RNG, thread count, default dtype."""
    return (
        torch.random.get_rng_state().numpy().tobytes(),
        torch.get_num_threads(),
        torch.get_default_dtype(),
    )


def expected_network(spec, objective):
    """A network built afresh from ``spec`` (on the meta device: nothing allocated)."""
    n = spec.n_features
    with torch.device("meta"):
        return build_model(spec, objective, np.zeros(n), 1.0, np.ones(n))


def sizes(value):
    return tuple(int(size) for size in np.atleast_1d(value))


def _is_number(value):
    return isinstance(value, (int, float, np.number, Fraction)) and not isinstance(value, bool)


def mismatches(state, params):
    """How the fitted ``state`` (its spec and objective) disagrees with ``params``."""
    spec, objective = state.spec, state.network.objective
    p = params
    found = []

    def compare(name, theirs, ours):
        if _is_number(theirs) and _is_number(ours):
            differ = float(theirs) != float(ours)
        else:
            differ = theirs != ours
        if differ:
            found.append(f"{name}: params say {theirs!r}, the network has {ours!r}")

    compare("n_components", p["n_components"], spec.n_components)
    compare("hidden_layer_sizes", sizes(p["hidden_layer_sizes"]), spec.hidden_layer_sizes)
    for name in ("activation", "dropout", "batch_norm", "linear_shortcut", "architecture"):
        compare(name, p[name], getattr(spec, name))
    if p["output_activation"] != "auto":
        compare("output_activation", p["output_activation"], spec.output_activation)
    reconstruction = "loss" if "loss" in p else "likelihood"
    compare(reconstruction, p[reconstruction], objective.reconstruction)
    compare("spec.objective", ((reconstruction, p[reconstruction]),), spec.objective)
    if "sparsity" in p:
        compare("sparsity", p["sparsity"], objective.sparsity)
    else:
        compare("beta", p["beta"], objective.kl)
        compare("kl_warmup_epochs", p["kl_warmup_epochs"], objective.kl_warmup_epochs)
    compare("neighbor_weight", p["neighbor_weight"], objective.neighbors)
    if p["neighbor_weight"] > 0:
        compare("n_neighbors", p["n_neighbors"], objective.n_neighbors)
        compare("min_dist", p["min_dist"], objective.min_dist)
    compare("noise", p["noise"], objective.noise)
    if p["noise"] is not None:
        compare("noise_level", p["noise_level"], objective.noise_level)
    return found


def structural_changes(params, spec):
    """Parameters that shape the network and differ from ``spec`` (valid ``params``)."""
    changed = [
        name
        for name, value in [
            ("n_components", int(params["n_components"])),
            ("hidden_layer_sizes", sizes(params["hidden_layer_sizes"])),
            ("activation", params["activation"]),
            ("dropout", params["dropout"]),
            ("batch_norm", params["batch_norm"]),
            ("linear_shortcut", params["linear_shortcut"]),
        ]
        if value != getattr(spec, name)
    ]
    if params["output_activation"] not in ("auto", spec.output_activation):
        changed.append("output_activation")
    return changed


def check_consistent(model, params=None):
    """The network is what its spec says; with ``params``, the spec and objective are
    what they say; the other fitted attributes agree with each other."""
    state = model._state
    assert repr(state.network) == repr(expected_network(state.spec, state.network.objective)), (
        "the network is not the one its spec describes"
    )
    if params is not None:
        found = mismatches(state, params)
        assert not found, f"get_params() does not describe the network: {found}"
    assert state.spec.n_features == model.n_features_in_
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        assert len(names) == model.n_features_in_, "feature_names_in_ is not one name per feature"
        assert len(set(names)) == len(names), f"feature_names_in_ repeats a name: {list(names)}"
    assert model.n_samples_seen_ >= 1
    assert model.mean_.shape == (model.n_features_in_,)
    assert len(model.loss_curve_) == model.n_iter_
    embedding = model.embedding_
    if embedding is not None:
        assert state.network.objective.neighbors > 0, "an embedding_ without the neighbour term"
        assert embedding.shape[1] == model.n_components_
        assert 1 <= embedding.shape[0] <= model.n_samples_seen_, (
            f"an embedding_ of {embedding.shape[0]} rows after {model.n_samples_seen_} rows seen"
        )
        assert np.isfinite(embedding).all()


def check_output(result, rows, n_columns, what):
    """Shape, dtype (float32 in, float32 out) and finiteness of a transform's output."""
    dtype = np.dtype(rows.dtype)
    if isinstance(result, pd.DataFrame):
        dtypes = set(result.dtypes)
        assert dtypes == {dtype}, f"{what} of {rows.dtype} rows gave a DataFrame of {dtypes}"
        result = result.to_numpy()
    assert isinstance(result, np.ndarray), f"{what} returned a {type(result).__name__}"
    assert result.dtype == dtype, f"{what} of {rows.dtype} rows gave {result.dtype}"
    assert result.shape == (rows.n_rows, n_columns)
    bad = np.flatnonzero(~np.isfinite(result).all(axis=1))
    assert not bad.size, f"{what} of finite {rows.kind} rows gave non-finite rows {bad[:5]}"


def assert_clear(error, names, what):
    assert any(name in str(error) for name in names), (
        f"{what} was refused with a message that names none of {sorted(names)}: {error!r}"
    )


def probe_copy(model, params):
    """A copy of ``model`` with ``params``: its own copy of the fitted state (weights,
    flags and modes as they are, not through a file), sharing nothing with it."""
    probe = object.__new__(type(model))
    probe.__dict__.update(model.__dict__)
    if is_fitted(model):
        probe._state = model._state.copy()
    return probe.set_params(**params)


INSPECTIONS = ("encoder_jacobian", "decoder_jacobian", "code_loadings", "code_attributions")
DOCTORINGS = (
    "n_components",
    "hidden_layer_sizes",
    "activation",
    "dropout",
    "output_activation",
    "embedding_rows_0",
    "embedding_rows_5",
    "embedding_rows_beyond_seen",
    "feature_names_repeated",
    "n_samples_seen_2**63",
    "n_samples_seen_0",
    "garbage",
    "truncated",
    "empty",
    "directory",
    "missing",
)
# What a refusal of each edit must name.
DOCTORED_FIELD = {
    "embedding_rows_0": "embedding",
    "embedding_rows_5": "embedding",
    "embedding_rows_beyond_seen": "embedding",
    "feature_names_repeated": "feature_names_in",
    "n_samples_seen_2**63": "n_samples_seen",
    "n_samples_seen_0": "n_samples_seen",
}
_EMBEDDING_TENSOR = "fitted.embedding"


def doctor(path, how, target):
    """Write at ``target`` the file at ``path`` changed ``how`` (resealed: a valid digest)."""
    if how in ("garbage", "truncated", "empty"):
        with open(path, "rb") as file:
            data = file.read()
        data = {
            "garbage": np.random.default_rng(0).bytes(len(data)),
            "truncated": data[: len(data) // 2],
            "empty": b"",
        }[how]
        with open(target, "wb") as file:
            file.write(data)
        return target
    if how == "directory":
        os.makedirs(target, exist_ok=True)
        return target
    if how == "missing":
        return target + ".missing"
    metadata, tensors, document = read(path)
    spec, params = document["spec"], document["params"]
    n_components = spec["n_components"]
    if how == "n_components":
        params["n_components"] = n_components + 1
    elif how == "hidden_layer_sizes":
        params["hidden_layer_sizes"] = {
            "__tuple__": [h + 1 for h in spec["hidden_layer_sizes"]["__tuple__"]]
        }
    elif how == "activation":
        params["activation"] = "relu" if spec["activation"] != "relu" else "tanh"
    elif how == "dropout":
        params["dropout"] = 0.5 if spec["dropout"] == 0 else 0.0
    elif how == "output_activation":
        params["output_activation"] = "tanh" if spec["output_activation"] != "tanh" else "linear"
    elif how.startswith("embedding_rows"):
        seen = document["n_samples_seen"]
        n_rows = {"embedding_rows_0": 0, "embedding_rows_5": 5}.get(how, seen + 1)
        tensors[_EMBEDDING_TENSOR] = torch.zeros((n_rows, n_components), dtype=torch.float32)
    elif how == "feature_names_repeated":
        document["feature_names_in"] = ["x0"] * document["n_features_in"]
    elif how == "n_samples_seen_2**63":
        document["n_samples_seen"] = 2**63
    elif how == "n_samples_seen_0":
        document["n_samples_seen"] = 0
    write(target, metadata, tensors, document)
    return target


# ------------------------------------------------------------ the machine


class Lifecycle(RuleBasedStateMachine):
    """One estimator's life; subclasses say which (``estimator_class``)."""

    estimator_class = None

    def __init__(self):
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="skae-lifecycle-")
        self.model = None

    def teardown(self):
        shutil.rmtree(self.directory, ignore_errors=True)

    @initialize(
        width=st.integers(3, 8),
        n_components=st.integers(1, 3),
        hidden_layer_sizes=st.sampled_from([(4,), (8,)]),
        neighbor_weight=st.sampled_from([0.0, 0.0, 0.0, 0.5]),  # map mode: 10x slower
    )
    def start(self, width, n_components, hidden_layer_sizes, neighbor_weight):
        """A fresh estimator; with ``neighbor_weight`` 0.5, in map mode (the neighbour
        term, whose ``fit_transform`` returns ``embedding_``)."""
        self.initial = {
            **self.estimator_class().get_params(),
            "n_components": n_components,
            "hidden_layer_sizes": hidden_layer_sizes,
            "neighbor_weight": neighbor_weight,
            "n_neighbors": 5,
            "max_epochs": 2,
            "batch_size": 16,
            "device": "cpu",
            "random_state": 0,
        }
        self.model = self.estimator_class(**self.initial)
        self.width = width  # of rows before the first fit
        self.odd = {}  # parameters set to a non-valid value: name -> status
        self.fitted_params = None  # get_params() at the last fitting call

    # ------------------------------------------------------------ helpers

    def current_width(self):
        return self.model.n_features_in_ if is_fitted(self.model) else self.width

    def names(self, status):
        return {name for name, s in self.odd.items() if s == status}

    def drifted(self):
        """Whether get_params() says other than at the last fitting call."""
        return bool(self.odd) or (
            self.fitted_params is not None
            and params_of(self.model) != canonical(_plain(self.fitted_params))
        )

    def good_rows(self, model):
        """24 unit rows of float32 the model takes, with its feature names if any."""
        X = Rows("unit", "float32", 24, seed=1).values(model.n_features_in_)
        names = getattr(model, "feature_names_in_", None)
        return X if names is None else pd.DataFrame(X, columns=list(names))

    def check_trainable(self, model, params, what):
        probe = probe_copy(model, {**params, "early_stopping": False, "warm_start": False})
        try:
            probe.partial_fit(self.good_rows(model))
        except Exception as error:
            raise AssertionError(f"{what}: partial_fit on good rows failed: {error!r}") from error

    def expected_outcome(self, rows, width, continued):
        """What a fitting call must do ("succeed", "fail" or "either"), and the names
        a refusal for the parameters alone must mention (none when the data decides)."""
        invalid = self.names("invalid")
        questionable = self.names("questionable")
        data_refused = rows.refused or (continued and width != self.model.n_features_in_)
        if invalid:  # a message may name any parameter set to an odd value
            return "fail", set() if data_refused else invalid | questionable
        if data_refused:
            return "fail", set()
        if continued:
            changed = structural_changes(self.model.get_params(), self.model._state.spec)
            if changed:
                return "fail", set(changed)
        if questionable or rows.extreme:
            return "either", set() if rows.extreme else questionable
        return "succeed", set()

    # -------------------------------------------------------- fitting calls

    def fitting_call(self, method, rows, warm_start=None):
        model = self.model
        if warm_start is not None:
            model.set_params(warm_start=warm_start)
        continued = is_fitted(model) and (method == "partial_fit" or model.warm_start is True)
        width = max(1, self.current_width() + rows.extra_columns)
        X = rows.make(width)
        before, params, world = fitted_state(model), params_of(model), global_state()
        n_iter = model.n_iter_ if continued else 0
        n_seen = model.n_samples_seen_ if continued else 0
        expected, named = self.expected_outcome(rows, width, continued)
        try:
            result = getattr(model, method)(X)
        except Exception as error:
            assert expected != "succeed", f"{method} refused good rows and parameters: {error!r}"
            allowed = (ValueError, TypeError) + ((DivergenceError,) if expected == "either" else ())
            assert isinstance(error, allowed), f"{method} raised {error!r}"
            if named:
                assert_clear(error, named, method)
            assert_same_state(before, fitted_state(model), f"a failed {method}")
            assert params_of(model) == params, f"a failed {method} changed get_params()"
            assert global_state() == world, f"{method} changed torch's global state"
            return
        assert expected != "fail", (
            f"{method} accepted {rows} ({width} columns) with parameters {self.odd}"
        )
        assert global_state() == world, f"{method} changed torch's global state"
        assert params_of(model) == params, f"{method} changed get_params()"
        # What should have changed: everything follows from this call's rows.
        assert model.n_features_in_ == width
        epochs = model.n_iter_ - n_iter
        assert (epochs == 1) if method == "partial_fit" else (1 <= epochs <= model.max_epochs)
        assert model.n_samples_seen_ == n_seen + rows.n_rows
        check_consistent(model, model.get_params())
        self.fitted_params = model.get_params()
        if method == "fit_transform":
            check_output(result, rows, model.n_components_, "fit_transform")

    @rule(rows=rows_strategy(), warm_start=st.booleans())
    def fit(self, rows, warm_start):
        self.fitting_call("fit", rows, warm_start)

    @rule(rows=rows_strategy())
    def partial_fit(self, rows):
        self.fitting_call("partial_fit", rows)

    @rule(rows=rows_strategy(), warm_start=st.booleans())
    def fit_transform(self, rows, warm_start):
        self.fitting_call("fit_transform", rows, warm_start)

    # ------------------------------------------------------- parameters

    @rule(move=MOVES)
    def set_params(self, move):
        params = dict(move.params)
        unknown = set(params) - set(self.model.get_params())
        if unknown:  # "nope", or the other estimator's parameter
            before = params_of(self.model)
            with pytest.raises(ValueError, match=sorted(unknown)[0]):
                self.model.set_params(**params)
            assert params_of(self.model) == before
            return
        self.model.set_params(**params)
        for name in params:
            if move.status == "valid":
                self.odd.pop(name, None)
            else:
                self.odd[name] = move.status

    @precondition(lambda self: self.odd)
    @rule()
    def repair_params(self):
        self.model.set_params(**{name: self.initial[name] for name in self.odd})
        self.odd.clear()

    @rule(transform=st.sampled_from(["pandas", "default"]))
    def set_output(self, transform):
        self.model.set_output(transform=transform)

    # ------------------------------------------------------------- inference

    def inference_call(self, what, call, rows, width, n_columns):
        model = self.model
        X = rows.make(width)
        if not is_fitted(model):
            with pytest.raises(NotFittedError):
                call(X)
            return
        before, world = fitted_state(model, modes=False), global_state()
        try:
            result = call(X)
        except Exception as error:
            assert isinstance(error, (ValueError, TypeError)), f"{what} raised {error!r}"
            assert rows.kind not in GOOD_KINDS or width != model.n_features_in_, (
                f"{what} refused good rows: {error!r}"
            )
        else:
            assert not rows.unreadable, f"{what} accepted {rows.kind} rows"
            assert width == model.n_features_in_, f"{what} accepted {width} columns"
            if n_columns is None:
                assert np.isfinite(result), f"{what} of finite {rows.kind} rows gave {result}"
            else:
                check_output(result, rows, n_columns, what)
        assert_same_state(before, fitted_state(model, modes=False), what)
        assert global_state() == world, f"{what} changed torch's global state"

    @rule(rows=rows_strategy())
    def transform(self, rows):
        width = max(1, self.current_width() + rows.extra_columns)
        n_components = self.model.n_components_ if is_fitted(self.model) else None
        self.inference_call("transform", self.model.transform, rows, width, n_components)

    @rule(rows=rows_strategy())
    def score(self, rows):
        width = max(1, self.current_width() + rows.extra_columns)
        self.inference_call("score", self.model.score, rows, width, None)

    @rule(codes=CODES)
    def inverse_transform(self, codes):
        model = self.model
        if not is_fitted(model):
            with pytest.raises(NotFittedError):
                model.inverse_transform(np.zeros((2, 2)))
            return
        Z = codes.make(model)
        wrong_width = codes.width(model) != model.n_components_
        before, world = fitted_state(model, modes=False), global_state()
        try:
            result = model.inverse_transform(Z)
        except Exception as error:
            assert isinstance(error, (ValueError, TypeError)), f"inverse_transform raised {error!r}"
            assert codes.kind in ("nan", "limit", "huge") or wrong_width, (
                f"inverse_transform refused {codes}: {error!r}"
            )
        else:
            assert codes.kind != "nan", "inverse_transform accepted NaN codes"
            assert not wrong_width, "inverse_transform accepted codes of the wrong width"
            rows = Rows(codes.kind, codes.dtype, codes.n_rows)
            check_output(
                result, rows, model.n_features_in_, f"inverse_transform of {codes.kind} codes"
            )
        assert_same_state(before, fitted_state(model, modes=False), "inverse_transform")
        assert global_state() == world, "inverse_transform changed torch's global state"

    @rule(
        function=st.sampled_from(INSPECTIONS),
        rows=rows_strategy(),
        batch_size=st.sampled_from([None, None, 5, 0, True, 2.5]),
    )
    def inspect(self, function, rows, batch_size):
        model = self.model
        width = max(1, self.current_width() + rows.extra_columns)
        X = rows.make(width)
        call = getattr(inspection, function)
        if not is_fitted(model):
            with pytest.raises(NotFittedError):
                call(model, X, batch_size=batch_size)
            return
        before, world = fitted_state(model), global_state()
        bad_batch = batch_size is True or batch_size in (0, 2.5)
        try:
            result = call(model, X, batch_size=batch_size)
        except Exception as error:
            assert isinstance(error, (ValueError, TypeError)), f"{function} raised {error!r}"
            assert rows.kind not in GOOD_KINDS or bad_batch or width != model.n_features_in_, (
                f"{function} refused good rows: {error!r}"
            )
        else:
            assert not rows.unreadable and not bad_batch and width == model.n_features_in_, (
                f"{function} accepted {rows} with batch_size={batch_size!r}"
            )
            arrays = result.values() if isinstance(result, dict) else [result]
            for array in arrays:
                if isinstance(array, np.ndarray) and array.dtype.kind == "f":
                    assert array.dtype == np.dtype(rows.dtype), (
                        f"{function} of {rows.dtype} rows gave {array.dtype}"
                    )
                    assert np.isfinite(array).all(), f"{function} of finite rows is not finite"
        assert_same_state(before, fitted_state(model), function)
        assert global_state() == world, f"{function} changed torch's global state"
        self.check_trainable(model, self.fitted_params, f"after {function}")

    # ----------------------------------------------------------- persistence

    @rule(key=st.sampled_from([None, None, "secret", b"secret", "", "\ud800", 3]))
    def save_and_load(self, key):
        model = self.model
        path = os.path.join(self.directory, "model.skae")
        previous = open(path, "rb").read() if os.path.exists(path) else None
        if not is_fitted(model):
            with pytest.raises(NotFittedError):
                model.save(path, key=key)
            assert (open(path, "rb").read() if os.path.exists(path) else None) == previous
            return
        bad_key = key in ("", "\ud800", 3)
        before, params = fitted_state(model, modes=False, saved_only=True), params_of(model)
        try:
            model.save(path, key=key)
        except Exception as error:
            assert isinstance(error, (ValueError, TypeError)), f"save raised {error!r}"
            assert bad_key or self.drifted(), f"save refused a model: {error!r}"
            if bad_key:
                assert_clear(error, {"key"}, f"save(key={key!r})")
            now = open(path, "rb").read() if os.path.exists(path) else None
            assert now == previous, "a failed save changed the file that was there"
            assert_same_state(
                before, fitted_state(model, modes=False, saved_only=True), "a failed save"
            )
            return
        assert key != 3 and key != "\ud800", f"save accepted key={key!r}"
        try:
            loaded = skae.load(path, key=key)
        except Exception as error:
            raise AssertionError(f"the file save wrote does not load: {error!r}") from error
        assert type(loaded) is type(model)
        assert params_of(loaded) == params, "load gave other parameters than were saved"
        assert_same_state(
            before, fitted_state(loaded, modes=False, saved_only=True), "save then load"
        )
        if key:
            with pytest.raises(ValueError):
                skae.load(path, key="another key")
        self.model = loaded

    @rule()
    def pickle_round_trip(self):
        model = self.model
        before, params = fitted_state(model, modes=False, saved_only=True), params_of(model)
        try:
            data = pickle.dumps(model)
        except Exception as error:
            assert isinstance(error, (ValueError, TypeError)), f"pickle.dumps raised {error!r}"
            assert self.drifted(), f"pickle.dumps refused a model: {error!r}"
            assert_same_state(
                before, fitted_state(model, modes=False, saved_only=True), "a failed pickle.dumps"
            )
            return
        try:
            clone = pickle.loads(data)
        except Exception as error:
            raise AssertionError(f"what pickle.dumps wrote does not unpickle: {error!r}") from error
        assert params_of(clone) == params, "unpickling gave other parameters"
        assert_same_state(
            before, fitted_state(clone, modes=False, saved_only=True), "a pickle round trip"
        )
        self.model = clone

    @precondition(lambda self: self.model is not None and is_fitted(self.model))
    @rule(how=st.sampled_from(DOCTORINGS))
    def load_doctored(self, how):
        model = self.model
        clean = os.path.join(self.directory, "clean.skae")
        probe_copy(model, self.fitted_params).save(clean)
        path = doctor(clean, how, os.path.join(self.directory, f"doctored-{how}.skae"))
        before = fitted_state(model)
        try:
            loaded = skae.load(path)
        except Exception as error:
            unreadable = how in ("directory", "missing")
            allowed = (ValueError, OSError) if unreadable else ValueError
            assert isinstance(error, allowed), f"a {how} file: load raised {error!r}"
            if how in DOCTORED_FIELD:
                assert_clear(error, {DOCTORED_FIELD[how]}, f"a file with {how}")
        else:
            assert how not in ("garbage", "truncated", "empty", "directory", "missing"), (
                f"a {how} file loaded"
            )
            # A file is one consistent model, whose own parameters describe it.
            check_consistent(loaded, loaded.get_params())
            self.check_trainable(loaded, loaded.get_params(), f"a loaded {how} file")
            codes = loaded.transform(self.good_rows(loaded))
            assert np.isfinite(codes).all()
        assert_same_state(before, fitted_state(model), "loading another file")

    # ------------------------------------------------------------ invariants

    @invariant()
    def consistent_and_trainable(self):
        if self.model is None:
            return
        if not is_fitted(self.model):
            assert not hasattr(self.model, "n_features_in_")
            return
        check_consistent(self.model, self.fitted_params)
        self.check_trainable(self.model, self.fitted_params, "the model")


class AutoencoderLifecycle(Lifecycle):
    estimator_class = AutoencoderTransformer


class VAELifecycle(Lifecycle):
    estimator_class = VAETransformer


@pytest.mark.parametrize(
    "machine", [AutoencoderLifecycle, VAELifecycle], ids=["autoencoder", "vae"]
)
def test_lifecycle(machine):
    run_state_machine_as_test(machine, settings=PROFILE)
