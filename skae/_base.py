"""The scikit-learn estimator every skae model shares.

:class:`BaseAutoencoder` is the public surface: fitting calls as
transactions, ``transform``, ``inverse_transform``, scoring and persistence.
The estimator validates its parameters once per fitting call and hands the
rest of the package a frozen plan (``_params.fit_plan``); the work lives
elsewhere: one fitting call in ``_fitting``, the fitted state in ``_state``,
saving in ``_persistence``. A subclass declares its parameters (and their
constraints) and adds its own methods; the model its parameters describe is
built from the plan (``_models.build_model``).
"""

import abc
import copy
import functools
import numbers
import os
import threading
import weakref

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

from ._compat import Interval, StrOptions, _fit_context, validate_data
from ._distributed import agreed, current_group
from ._fitting import call_seeds, fit_call
from ._inference import map_rows
from ._networks import ACTIVATIONS, OUTPUT_ACTIVATIONS
from ._params import check_number_types, fit_plan
from ._persistence import SavedModel, model_bytes, read_bytes, save_model
from ._readers import ArrayReader, is_out_of_core
from ._training import OPTIMIZERS
from ._training_data import check_float32_range, check_values
from ._warnings import warn_at_caller


def _chain(first, second):
    """Call ``first`` (if any), then ``second``, on the same argument."""
    if first is None:
        return second
    return lambda value: (first(value), second(value))


# One lock per estimator, kept outside it so that clone, copy and pickle see
# nothing of it: fitting calls on one estimator from several threads run one
# after the other, each continuing from the last one's model.
_FITTING_LOCKS = weakref.WeakKeyDictionary()
_FITTING_LOCKS_GUARD = threading.Lock()


def _fitting_lock(estimator):
    """The re-entrant lock that serialises ``estimator``'s fitting calls and saves."""
    with _FITTING_LOCKS_GUARD:
        lock = _FITTING_LOCKS.get(estimator)
        if lock is None:
            lock = _FITTING_LOCKS[estimator] = threading.RLock()
        return lock


def _first_non_numeric_column(X):
    """``(name or index, value)`` of the first column of ``X`` with a value that is
    not a number, or None (for error messages only: it converts column by column)."""
    columns = getattr(X, "columns", None)
    if columns is None:
        try:
            X = np.asarray(X, dtype=object)
        except ValueError:
            return None
        if X.ndim != 2:
            return None
        named = ((index, X[:, index]) for index in range(X.shape[1]))
    else:
        named = ((name, X.iloc[:, index]) for index, name in enumerate(columns))
    for name, column in named:
        for value in np.asarray(column, dtype=object):
            try:
                float(value)
            except (TypeError, ValueError):
                return name, value
    return None


def _fitted_attribute(name, doc):
    """A read-only view of the fitted state's ``name``."""

    def get(self):
        check_is_fitted(self)
        return getattr(self._state, name)

    return property(get, doc=doc)


class BaseAutoencoder(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator, metaclass=abc.ABCMeta
):
    """Shared machinery of the autoencoder estimators; not for direct use."""

    _parameter_constraints = {
        # None passes here so that fit_plan can say what to pass instead.
        "n_components": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "hidden_layer_sizes": ["array-like", Interval(numbers.Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "output_activation": [StrOptions({*OUTPUT_ACTIVATIONS, "auto"})],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "batch_norm": ["boolean"],
        "linear_shortcut": ["boolean"],
        "architecture": [StrOptions({"dense", "conv"})],
        "input_shape": [None, "array-like"],
        "conv_channels": ["array-like"],
        "noise": [None, StrOptions({"gaussian", "masking"})],
        "noise_level": [Interval(numbers.Real, 0, None, closed="left")],
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "learning_rate_schedule": [StrOptions({"constant", "cosine"})],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "device": [str],
        "precision": [StrOptions({"float32", "tf32", "bf16"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "pretrain": [None, StrOptions({"layerwise"})],
        "pretrain_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "neighbor_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "n_neighbors": [Interval(numbers.Integral, 2, None, closed="left")],
        "min_dist": [Interval(numbers.Real, 0, 1, closed="both")],
    }

    @abc.abstractmethod
    def __init__(self):
        """A subclass declares its parameters here (and in ``_parameter_constraints``)."""

    # ------------------------------------------------------------- the plan

    def _validate_params(self):
        """scikit-learn's declared constraints, after the number types they cannot check."""
        check_number_types(type(self).__name__, self.get_params(deep=False))
        super()._validate_params()

    def _fit_plan(self, *, partial=False, check_device=True):
        """Validate every parameter and return the frozen plan of a fitting call.

        scikit-learn's declared constraints first (called here too:
        ``_fit_context`` skips them for ``partial_fit`` on a fitted model),
        then what they cannot express (``skae._params.fit_plan``).
        """
        self._validate_params()
        return fit_plan(
            type(self).__name__,
            self._parameter_constraints,
            self.get_params(deep=False),
            partial=partial,
            check_device=check_device,
        )

    @classmethod
    def _saved_plan(cls, params):
        """The plan of a saved model's ``params``, checked as ``fit`` checks them
        (except for the device's presence)."""
        unknown = sorted(set(params) - set(cls._get_param_names()))
        if unknown:
            raise ValueError(f"unknown parameters {unknown[:5]}")
        return cls(**params)._fit_plan(check_device=False)

    def _saved(self):
        """The fitted model as skae's file format holds it."""
        return SavedModel(
            type(self).__name__,
            self.get_params(deep=False),
            self.n_features_in_,
            getattr(self, "feature_names_in_", None),
            self._state,
        )

    @classmethod
    def _from_saved(cls, saved):
        """The fitted estimator of a :class:`~skae._persistence.SavedModel`."""
        estimator = cls(**saved.params)
        estimator._set_saved(saved)
        return estimator

    def _set_saved(self, saved):
        self._state = saved.state
        self.n_features_in_ = saved.n_features_in
        if saved.feature_names_in is not None:
            self.feature_names_in_ = saved.feature_names_in

    # ----------------------------------------------------------- scikit-learn

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def __sklearn_is_fitted__(self):
        return hasattr(self, "_state")

    encoder_ = property(lambda self: self._fitted_network().encoder, doc="The fitted encoder.")
    decoder_ = property(lambda self: self._fitted_network().decoder, doc="The fitted decoder.")
    device_ = _fitted_attribute("device", "Where the network lives.")
    loss_curve_ = _fitted_attribute("loss_curve", "Training loss per epoch.")
    validation_loss_curve_ = _fitted_attribute("validation_loss_curve", "Validation losses.")
    best_loss_ = _fitted_attribute("best_loss", "Lowest monitored loss of the last fit.")
    n_iter_ = _fitted_attribute("n_iter", "Epochs run in total.")
    n_samples_seen_ = _fitted_attribute(
        "n_samples_seen",
        "Rows passed to the fitting calls since the network was built (partial_fit adds up).",
    )

    @property
    def mean_(self) -> np.ndarray:
        """Per-feature mean of the rows counted in ``n_samples_seen_`` (float64), as PCA's."""
        check_is_fitted(self)
        return self._state.mean.copy()

    @property
    def noise_variance_(self) -> float:
        """Reconstruction error per feature on the training data, as PCA's ``noise_variance_``.

        The mean squared error of ``inverse_transform(transform(X))`` over
        the last fitting call's rows (at most 2,048 of them, evenly spaced,
        so that every ``partial_fit`` pays a bounded cost; a spread sample of
        blocks for data streamed from beyond the memory budget), in the
        data's units squared.
        """
        check_is_fitted(self)
        return self._state.training_error

    @property
    def reconstruction_r2_(self) -> float:
        """Share of the training data's variance the reconstruction explains.

        ``1 - noise_variance_ / mean feature variance`` over the same rows as
        :attr:`noise_variance_`: what ``PCA.explained_variance_ratio_.sum()``
        is for PCA (both are 1 for a perfect reconstruction, 0 for the mean).
        """
        check_is_fitted(self)
        variance = self._state.training_variance
        return 1.0 - self._state.training_error / variance if variance > 0 else 0.0

    @property
    def n_components_(self) -> int:
        """Size of the code, as PCA's ``n_components_``."""
        check_is_fitted(self)
        return self._state.spec.n_components

    pretrain_loss_curves_ = _fitted_attribute("pretrain_loss_curves", "Pretraining losses.")
    stream_block_rows_ = _fitted_attribute(
        "stream_block_rows",
        "Rows per block when the last fitting call streamed its data from beyond the "
        "memory budget (see ``skae.set_config``); None when it trained from memory.",
    )

    @property
    def embedding_(self) -> np.ndarray | None:
        """The map of the last fitting call's rows with ``neighbor_weight > 0``, as UMAP's.

        UMAP's layout of the fuzzy neighbour graph of those rows (what the
        encoder was trained to reproduce), in the units of the codes, float32;
        ``fit_transform`` returns it. None without the neighbour objective,
        or when ``early_stopping`` held rows out of the map.
        """
        check_is_fitted(self)
        embedding = self._state.embedding
        return None if embedding is None else embedding.copy()

    @property
    def streamed_(self) -> bool:
        """Whether the last fitting call streamed its data instead of holding it in memory."""
        check_is_fitted(self)
        return self._state.stream_block_rows is not None

    def _fitted_network(self):
        check_is_fitted(self)
        return self._state.network

    @property
    def _network(self):
        return self._state.network

    @property
    def _n_features_out(self):
        return self._state.spec.n_components

    def _validate(self, X, reset):
        try:
            return validate_data(
                self, X, accept_sparse="csr", dtype=[np.float64, np.float32], reset=reset
            )
        except ValueError as error:
            column = _first_non_numeric_column(X) if "convert" in str(error) else None
            if column is None:
                raise
            name, value = column
            raise ValueError(
                f"{type(self).__name__} needs numeric features, but column {name!r} of X "
                f"holds {value!r:.60}. Encode such columns first (e.g. OneHotEncoder or "
                "OrdinalEncoder in a ColumnTransformer)."
            ) from error

    def _checked_input(self, X, reset):
        """``X`` validated: an array or sparse matrix, or an :class:`ArrayReader`
        for data on disk or in a cluster (memmap, HDF5, zarr, dask), whose
        blocks are checked as they are read."""
        if is_out_of_core(X):
            reader = ArrayReader(X)  # first: a 1-D or 3-D array is "not 2-D", not "no features"
            validate_data(self, X, skip_check_array=True, reset=reset)
            return reader
        return self._validate(X, reset=reset)

    # ---------------------------------------------------------------- fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike, y: None = None) -> "BaseAutoencoder":
        """Train the autoencoder on ``X``.

        A transaction: a fit that fails (bad data or parameters, divergence,
        any exception) leaves the estimator exactly as it was. Interrupted
        with Ctrl-C (``KeyboardInterrupt``) after at least one complete epoch,
        it keeps the model of the last complete epoch (the best one with
        ``early_stopping``) and lets the interrupt propagate.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. Sparse data is densified one batch at a time.
        y : None
            Ignored; present for scikit-learn's API.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._fit(X, partial=False)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: ArrayLike, y: None = None) -> "BaseAutoencoder":
        """Train for one pass over ``X``; the first call builds the network.

        Every call checks every parameter (including those changed by
        ``set_params`` since the last call) and, like :meth:`fit`, either
        completes or leaves the estimator as it was.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : None
            Ignored; present for scikit-learn's API.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._fit(X, partial=True)
        return self

    _FITTED_PRIVATE = ("_state",)

    def _fit(self, X, *, partial):
        """One fitting call as a transaction; returns the dtype of the validated ``X``.

        Calls on one estimator from several threads wait for each other.
        """
        with _fitting_lock(self):
            return self._fit_unlocked(X, partial)

    def _fit_unlocked(self, X, partial):
        saved = dict(vars(self))
        random_state = self.random_state
        generator_state = (
            random_state.get_state() if isinstance(random_state, np.random.RandomState) else None
        )
        try:
            group = current_group()
            plan, X, previous, seeds = agreed(group, self._prepare_call, X, partial)
            outcome = fit_call(plan, X, previous, seeds, partial=partial, group=group)
            interrupted = outcome.interrupted
            try:
                # Before the commit: a warning turned into an error fails the call too.
                for message in outcome.warnings:
                    warn_at_caller(message, ConvergenceWarning)
            except KeyboardInterrupt as interrupt:
                # The epochs are complete: an interrupt now keeps them.
                interrupted = interrupted or interrupt
        except BaseException:
            # One assignment: the fitted attributes as they were, the rest as it is.
            self.__dict__ = {
                **{k: v for k, v in vars(self).items() if not self._is_fitted_name(k)},
                **{k: v for k, v in saved.items() if self._is_fitted_name(k)},
            }
            if generator_state is not None:
                random_state.set_state(generator_state)
            raise
        self._state = outcome.state
        if interrupted is not None:
            raise interrupted
        return X.dtype

    def fit_transform(self, X: ArrayLike, y: None = None) -> np.ndarray:
        """Fit to ``X``, then return its codes.

        The codes are ``transform(X)``, except with the neighbour objective
        (``neighbor_weight > 0``), where they are :attr:`embedding_`: the map
        of the training rows the encoder was trained to reproduce, as UMAP's
        ``fit_transform`` returns its ``embedding_``. ``transform`` gives the
        encoder's codes of the same rows, close to the map but not equal to
        it (see the user guide's "Maps").

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : None
            Ignored; present for scikit-learn's API.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            Float32 for float32 input, else float64.
        """
        dtype = self._fit_for_transform(X)
        embedding = self._state.embedding
        if embedding is None:
            return self.transform(X)
        return embedding.astype(dtype)

    @_fit_context(prefer_skip_nested_validation=True)
    def _fit_for_transform(self, X):
        """``fit(X)``, returning the dtype ``X`` was validated to (a DataFrame's too)."""
        return self._fit(X, partial=False)

    def _prepare_call(self, X, partial):
        """A fitting call's plan, validated data, the state it continues (or None)
        and its seeds."""
        plan = self._fit_plan(partial=partial)
        previous = getattr(self, "_state", None)
        if not (partial or plan.training.warm_start):
            previous = None
        X = self._checked_input(X, reset=previous is None)
        return plan, X, previous, call_seeds(self.random_state)

    @classmethod
    def _is_fitted_name(cls, name):
        return (name.endswith("_") and not name.startswith("__")) or name in cls._FITTED_PRIVATE

    # ------------------------------------------------------------- inference

    def _map(self, method, X, n_outputs, *, dtype=None, rows_per_block=None, **kwargs):
        """Apply the model's ``method`` to ``X`` in large blocks, without gradients.

        The model computes in the precision of the result: float64 input, or
        a float64 result (scores), gets a float64 copy of the network (except
        on MPS, which has no float64), so results do not depend on how rows
        are blocked or ordered, and scores of far-off float32 rows stay finite.
        Float32 rows whose float32 results overflow are computed again in
        float64; results that are still not finite are a ValueError, never
        NaN codes.
        """
        dtype = np.dtype(dtype or X.dtype)
        state = self._state  # read once: a fit in another thread may replace it
        compute = functools.partial(self._map_with, state, method, X, n_outputs, **kwargs)
        result = compute(dtype, rows_per_block)
        if np.isfinite(result).all():
            return result
        largest = np.finfo(np.float32).max
        if dtype == np.float32 and X.dtype == np.float32 and state.device.type != "mps":
            result = compute(np.dtype(np.float64), rows_per_block)
            if np.isfinite(result).all() and np.abs(result).max() <= largest:
                return result.astype(np.float32)
        per_row = result.reshape(len(result), -1)
        rows = np.flatnonzero(~np.isfinite(per_row).all(axis=1))
        if not len(rows):  # finite in float64, beyond float32's range
            rows = np.flatnonzero(np.abs(per_row).max(axis=1) > largest)
        shown = ", ".join(map(str, rows[:5])) + (", ..." if len(rows) > 5 else "")
        outputs = {"encode": "codes", "decode": "reconstructions"}.get(method, "scores")
        raise ValueError(
            f"The {outputs} of rows {shown} of X are not finite in {dtype.name}: their values "
            "are too large for the network. Scale the data first (e.g. StandardScaler)."
        )

    def _map_with(self, state, method, X, n_outputs, dtype, rows_per_block, **kwargs):
        """:meth:`_map` with ``state``'s network, in ``dtype``'s precision."""
        network, compute_dtype = self._network_for(X, dtype, state)
        function = functools.partial(getattr(network, method), **kwargs)
        with torch.inference_mode():
            return map_rows(
                function,
                X,
                state.device,
                n_outputs,
                dtype,
                compute_dtype,
                rows_per_block=rows_per_block,
            )

    def _network_for(self, X, dtype, state=None):
        """The network in evaluation mode that computes results of ``dtype`` for ``X``,
        and the torch dtype rows are converted to (see :meth:`_map`).

        The fitted network itself (``state``'s, by default the estimator's)
        for float32 results, a float64 copy otherwise: never change it.
        """
        state = state or self._state
        network, compute_dtype = state.network, torch.float32
        if np.float64 in (X.dtype, dtype) and state.device.type != "mps":
            network, compute_dtype = copy.deepcopy(network).double(), torch.float64
        elif isinstance(X, ArrayReader):
            X.check = _chain(X.check, check_float32_range)
        else:
            check_float32_range(X)
        return network.eval(), compute_dtype

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Encode ``X`` into its code (for a VAE, the posterior mean: deterministic).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            Float32 for float32 input, else float64.
        """
        check_is_fitted(self)
        X = self._checked_input(X, reset=False)
        return self._map("encode", X, self._n_features_out)

    def inverse_transform(self, X: ArrayLike) -> np.ndarray:
        """Decode codes back to the space (and units) of the training data.

        For a VAE this is the decoder's mean of p(x | z).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_components)
            Codes, e.g. the output of :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            The reconstructions, in the units of the training data.
        """
        check_is_fitted(self)
        if is_out_of_core(X):
            X = ArrayReader(X)
        else:
            X = check_array(X, accept_sparse="csr", dtype=[np.float64, np.float32])
        if X.shape[1] != self._n_features_out:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__}.inverse_transform "
                f"is expecting {self._n_features_out} features (the code size) as input."
            )
        return self._map("decode", X, self.n_features_in_)

    def _validate_scored(self, X):
        """``X`` validated for scoring: the training data's checks apply too."""
        check_is_fitted(self)
        X = self._checked_input(X, reset=False)
        check = functools.partial(check_values, objective=self._state.network.objective)
        if isinstance(X, ArrayReader):
            X.check = check
        else:
            check(X)
        return X

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """Score each sample; higher is better.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Higher is better (float64).
        """
        X = self._validate_scored(X)
        return self._map("score_samples", X, None, dtype=np.float64)

    def score(self, X: ArrayLike, y: None = None) -> float:
        """Mean of :meth:`score_samples` over ``X``; higher is better.

        This lets ``GridSearchCV`` and ``cross_val_score`` compare settings
        with no ``scoring`` argument.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : None
            Ignored; present for scikit-learn's API.

        Returns
        -------
        score : float
            The mean of ``score_samples(X)``: higher is better.
        """
        return float(np.mean(self.score_samples(X)))

    # ----------------------------------------------------------- persistence

    def save(self, path: str | os.PathLike, *, key: str | bytes | None = None) -> None:
        """Save the fitted estimator to ``path`` in skae's safe file format.

        Parameters go to JSON and tensors to safetensors in one file, sealed
        with a SHA-256 of both; loading it with :func:`skae.load` runs no
        code from the file, unlike pickle or joblib, and checks all of it.
        The model transforms and continues training (``partial_fit``,
        ``warm_start``) exactly as before it was saved.

        Parameters
        ----------
        path : str or path-like
            Where to write the file (conventionally ``*.skae``). Its folder
            must exist.
        key : str or bytes, default=None
            A secret to sign the file with (HMAC-SHA256): ``skae.load(path,
            key=...)`` then refuses a file that anyone without the key has
            changed. Without a key the SHA-256 detects accidental damage only.
        """
        check_is_fitted(self)
        with _fitting_lock(self):  # a model that a fit in another thread is replacing
            saved = self._saved()
        save_model(saved, path, key=key, plan_for=self._plan_of_own_class)

    # Pickle, joblib, copy and skops all go through these: a fitted model's
    # state travels as the bytes of its skae file (a numpy array), so that it
    # holds no torch objects (skops can save it) and is checked when restored.
    _FILE_STATE = "_skae_file"

    def __getstate__(self):
        with _fitting_lock(self):  # the attributes and the model of one moment
            state = dict(super().__getstate__())
            saved = self._saved() if "_state" in state else None
        if saved is not None:
            del state["_state"]
            for name in ("n_features_in_", "feature_names_in_"):  # in the file
                state.pop(name, None)
            state[self._FILE_STATE] = np.frombuffer(model_bytes(saved), dtype=np.uint8)
        return state

    def __setstate__(self, state):
        state = dict(state)
        data = state.pop(self._FILE_STATE, None)
        super().__setstate__(state)
        if data is not None:
            self._set_saved(read_bytes(data, self._plan_of_own_class))

    @classmethod
    def _plan_of_own_class(cls, name, params):
        if name != cls.__name__:
            raise ValueError(f"the saved estimator is a {name!r:.60}, not a {cls.__name__}")
        return cls._saved_plan(params)
