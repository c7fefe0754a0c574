"""The scikit-learn machinery every skae estimator shares.

:class:`BaseAutoencoder` owns validation, fitting (``fit``, ``partial_fit``,
``warm_start``, early stopping), ``transform``, ``inverse_transform``,
scoring and persistence. A subclass supplies the model through one hook,
``_build_model``, and may check its own parameters and data.
"""

import copy
import functools
import math
import numbers
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_array, check_random_state
from sklearn.utils.sparsefuncs import mean_variance_axis
from sklearn.utils.validation import check_is_fitted

from ._compat import Interval, StrOptions, _fit_context, validate_data
from ._data import RowSource, map_rows
from ._device import resolve_device
from ._networks import (
    ACTIVATIONS,
    OUTPUT_ACTIVATIONS,
    dense_encoder_decoder,
    reset_parameters,
    start_linear_paths,
)
from ._pretraining import pretrain_layerwise
from ._training import (
    ConvergenceMonitor,
    DivergenceError,
    Trainer,
    make_optimizer,
    run_epochs,
)

_SEED_LIMIT = np.iinfo(np.int32).max


# Features whose spread is below this share of the common scale are divided
# by that share instead of their own spread, so near-constant features (the
# border pixels of digit images) are not blown up at the encoder's input.
INPUT_SCALE_FLOOR = 0.1


def seeds(random_state, n):
    """``n`` integer seeds drawn from ``random_state``.

    ``None`` draws fresh entropy from the operating system instead of
    numpy's global RNG, so fitting never changes the user's random state.
    """
    if random_state is None:
        return np.random.default_rng().integers(_SEED_LIMIT, size=n)
    return check_random_state(random_state).randint(_SEED_LIMIT, size=n)


def data_scale(X):
    """How the data is conditioned for the network.

    Returns
    -------
    center : ndarray of shape (n_features,)
        The feature means.
    scale : float
        The root mean feature variance: one common scale in which the decoder
        works and the loss is measured. One scale for all features is a change
        of units, not a reweighting, so the best reconstruction stays the one
        with the least squared error in the user's units, as with PCA.
    input_scales : ndarray of shape (n_features,)
        Per-feature spreads (floored at ``INPUT_SCALE_FLOOR * scale``) that
        standardise the encoder's input. This only reparameterises the first
        layer, so it changes no objective, but lets the encoder see
        low-variance features on raw tabular data.
    """
    if sp.issparse(X):
        center, variance = mean_variance_axis(X, axis=0)
    else:
        center, variance = X.mean(axis=0, dtype=np.float64), X.var(axis=0, dtype=np.float64)
    scale = float(np.sqrt(np.mean(variance)))
    if not np.isfinite(scale) or scale <= 0:
        scale = 1.0
    input_scales = np.maximum(np.sqrt(variance), INPUT_SCALE_FLOOR * scale)
    return np.asarray(center, dtype=np.float64), scale, input_scales


def whitened_pca(X, center, scale, input_scales, n_components, seed):
    """Encoder and decoder weights of a whitened PCA, in the network's own spaces.

    PCA is fitted (on at most about 16M values of ``X``) in the output space
    ``(x - center) / scale``, where the loss is measured. The encoder weight
    acts on the encoder's input ``(x - center) / input_scales`` and gives
    codes of unit variance; the decoder weight maps them back. Codes beyond
    the data's rank get zero weights.

    Returns
    -------
    encoder_weight : ndarray of shape (n_components, n_features)
    decoder_weight : ndarray of shape (n_features, n_components)
    residual_variance : float
        PCA's mean squared reconstruction error per feature, in that space.
    """
    n_samples, n_features = X.shape
    max_rows = max(100, (1 << 24) // n_features)
    if n_samples > max_rows:
        rows = np.random.default_rng(seed).choice(n_samples, max_rows, replace=False)
        X = X[np.sort(rows)]
    T = ((X.toarray() if sp.issparse(X) else X) - center) / scale
    n = min(n_components, *T.shape)
    encoder_weight = np.zeros((n_components, n_features))
    decoder_weight = np.zeros((n_features, n_components))
    variance = T.var(axis=0)
    if T.shape[0] < 2 or not np.any(variance > 0):
        return encoder_weight, decoder_weight, 1.0
    pca = PCA(n_components=n, svd_solver="full").fit(T)
    # Directions without variance (constant data) keep zero weights.
    n = int(np.sum(pca.explained_variance_ > 1e-12))
    spread = np.sqrt(pca.explained_variance_[:n])
    components = pca.components_[:n]
    encoder_weight[:n] = components * (input_scales / scale) / spread[:, None]
    decoder_weight[:, :n] = components.T * spread
    explained = pca.explained_variance_[:n].sum() * (T.shape[0] - 1) / T.shape[0]
    residual_variance = max(variance.sum() - explained, 0.0) / n_features
    return encoder_weight, decoder_weight, residual_variance


def check_unit_interval(X, what):
    """Raise a ValueError unless every value of ``X`` lies in [0, 1]."""
    values = X.data if sp.issparse(X) else X
    if values.size and (values.min() < 0 or values.max() > 1):
        raise ValueError(
            f"{what} needs data in [0, 1]; got values from {values.min():.4g} "
            f"to {values.max():.4g}. Scale the data (e.g. MinMaxScaler) first."
        )


def _to_cpu(tree):
    if isinstance(tree, torch.Tensor):
        return tree.detach().cpu()
    if isinstance(tree, dict):
        return {key: _to_cpu(value) for key, value in tree.items()}
    if isinstance(tree, list):
        return [_to_cpu(value) for value in tree]
    return tree


class BaseAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared machinery of the autoencoder estimators; not for direct use."""

    _parameter_constraints = {
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like", Interval(numbers.Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "output_activation": [StrOptions(set(OUTPUT_ACTIVATIONS))],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "batch_norm": ["boolean"],
        "linear_shortcut": ["boolean"],
        "architecture": [StrOptions({"dense", "conv"})],
        "input_shape": [None, "array-like"],
        "conv_channels": ["array-like"],
        "noise": [None, StrOptions({"gaussian", "masking"})],
        "noise_level": [Interval(numbers.Real, 0, None, closed="left")],
        "optimizer": [StrOptions({"adam", "adamw", "sgd", "rmsprop"})],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "learning_rate_schedule": [StrOptions({"constant", "cosine"})],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
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
    }

    # ------------------------------------------------------------------ hooks

    # Parameters of a subclass that shape its network (see _check_architecture).
    _model_params = ()

    def _build_model(self, n_features, center, scale, input_scales):
        """Return the untrained model (see ``skae._models``) for this data."""
        raise NotImplementedError

    def _check_params(self):
        """Check combinations of parameters that constraints cannot express."""

    def _check_training_data(self, X):
        """Reject training data the model cannot fit (e.g. outside [0, 1])."""

    def _epoch_hook(self, epoch):
        """Called before each epoch of this call (e.g. for KL warm-up)."""

    def _unmonitored_epochs(self):
        """Epochs of this call whose loss must not decide when to stop."""
        return 0

    # ----------------------------------------------------------- scikit-learn

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _hidden_layer_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, numbers.Integral) else tuple(sizes)
        if not all(isinstance(s, numbers.Integral) and s >= 1 for s in sizes):
            raise ValueError(
                f"hidden_layer_sizes must be positive integers; got {self.hidden_layer_sizes!r}."
            )
        return tuple(int(s) for s in sizes)

    def _encoder_decoder(
        self, n_features, center, scale, input_scales, *, output_activation, code_outputs=None
    ):
        """The network's encoder and decoder as this estimator's parameters ask."""
        return dense_encoder_decoder(
            n_features,
            self._hidden_layer_sizes(),
            self.n_components,
            activation=self.activation,
            output_activation=output_activation,
            center=center,
            scale=scale,
            input_scales=input_scales,
            encoder_outputs=code_outputs,
            dropout=self.dropout,
            batch_norm=self.batch_norm,
            linear_shortcut=self.linear_shortcut,
            conv=self._conv_spec(n_features),
        )

    def _conv_spec(self, n_features):
        """``(input_shape, channels)`` for ``architecture="conv"``, else None."""
        if self.architecture == "dense":
            return None
        shape = self.input_shape
        if (
            shape is None
            or len(shape) != 3
            or not all(isinstance(n, numbers.Integral) and n >= 1 for n in shape)
        ):
            raise ValueError(
                "architecture='conv' needs input_shape=(channels, height, width) of "
                f"positive integers; got input_shape={shape!r}."
            )
        if math.prod(shape) != n_features:
            raise ValueError(
                f"input_shape={tuple(shape)} holds {math.prod(shape)} values per image, "
                f"but X has {n_features} features."
            )
        channels = tuple(self.conv_channels)
        if not channels or not all(isinstance(c, numbers.Integral) and c >= 1 for c in channels):
            raise ValueError(
                f"conv_channels must be positive integers; got {self.conv_channels!r}."
            )
        return tuple(int(n) for n in shape), tuple(int(c) for c in channels)

    def _validate(self, X, reset):
        return validate_data(
            self, X, accept_sparse="csr", dtype=[np.float64, np.float32], reset=reset
        )

    # ---------------------------------------------------------------- fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the autoencoder on ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. Sparse data is densified one batch at a time.
        y : ignored

        Returns
        -------
        self : object
        """
        return self._fit(X, partial=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train for one pass over ``X``; the first call builds the network.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self : object
        """
        if self.early_stopping:
            raise ValueError(
                "partial_fit does not support early_stopping=True: it makes one "
                "pass over the data it is given and holds none back."
            )
        return self._fit(X, partial=True)

    def _fit(self, X, *, partial):
        """Validate, build or reuse the model, and train it.

        A fit that fails leaves no half-fitted model behind: a new fit that
        raises, or any fit that diverges (its weights are NaN), leaves the
        estimator unfitted; a continued fit that fails its checks leaves the
        previous model as it was.
        """
        continuing = (partial or self.warm_start) and hasattr(self, "encoder_")
        try:
            return self._train(X, partial=partial, continuing=continuing)
        except DivergenceError:
            self._discard_fit()
            raise
        except BaseException:
            if not continuing:
                self._discard_fit()
            raise

    _FITTED_PRIVATE = (
        "_network",
        "_optimizer",
        "_optimizer_state",
        "_optimizer_name",
        "_architecture",
        "_n_features_out",
    )

    def _discard_fit(self):
        for name in list(vars(self)):
            fitted = name.endswith("_") and not name.startswith("__")
            if fitted or name in self._FITTED_PRIVATE:
                delattr(self, name)

    def _train(self, X, *, partial, continuing):
        self._hidden_layer_sizes()
        self._check_params()
        if self.pretrain is not None and self.architecture != "dense":
            raise ValueError(
                f"pretrain={self.pretrain!r} needs architecture='dense'; got "
                f"architecture={self.architecture!r}."
            )
        n_epochs = 1 if partial else self.max_epochs
        X = self._validate(X, reset=not continuing)
        self._check_training_data(X)
        device = resolve_device(self.device)
        init_seed, shuffle_seed, noise_seed, split_seed = seeds(self.random_state, 4)
        if continuing:
            self._check_architecture()

        train_X, validation_X = X, None
        if self.early_stopping:
            train_X, validation_X = self._split(X, split_seed)
        if self.batch_norm and min(train_X.shape[0], self.batch_size) < 2:
            raise ValueError(
                "batch_norm=True needs batches of at least 2 samples; got "
                f"{train_X.shape[0]} training samples with batch_size={self.batch_size}."
            )
        train_source = RowSource(train_X, device)
        if continuing:
            self._configure_model(self._network)
            self._place(device)
        else:
            self._initialize(X, train_source, init_seed, device, pretrain=not partial)
        optimizer = self._make_optimizer(device)
        unmonitored = self._unmonitored_epochs()
        trainer = self._make_trainer(
            self._network, optimizer, device, shuffle_seed, noise_seed, self.n_iter_
        )
        history = run_epochs(
            trainer,
            train_source,
            n_epochs,
            monitor=ConvergenceMonitor(self.tol, self.n_iter_no_change),
            validation_source=None if validation_X is None else RowSource(validation_X, device),
            validation_seed=int(split_seed),
            unmonitored_epochs=unmonitored,
            on_epoch=self._report_epoch,
            before_epoch=functools.partial(self._before_epoch, optimizer, n_epochs),
        )
        self._network.eval()
        self._record(history, warn=not partial, unmonitored=unmonitored)
        return self

    def _make_trainer(self, network, optimizer, device, shuffle_seed, noise_seed, offset=0):
        """A :class:`Trainer` with generators seeded from the two seeds.

        ``offset`` (the epochs run so far) gives each continued fit new draws.
        """
        return Trainer(
            network,
            optimizer,
            device,
            batch_size=self.batch_size,
            shuffle_generator=torch.Generator().manual_seed(int(shuffle_seed) * 7919 + offset),
            noise_generator=torch.Generator(device=device).manual_seed(
                int(noise_seed) * 7919 + offset
            ),
            precision=self.precision,
        )

    def _initialize(self, X, train_source, seed, device, pretrain=True):
        """Build the network on ``device``, pretrain it if asked, start it as PCA.

        ``pretrain=False`` (``partial_fit``, which makes one pass) skips the
        layer-wise pretraining that ``self.pretrain`` asks for.
        """
        center, scale, input_scales = data_scale(X)
        # Layers draw their first weights from the global RNG as they are
        # built; fork_rng puts it back, and reset_parameters redraws them
        # from our own generator. float() overrides any default dtype.
        with torch.random.fork_rng(devices=[]):
            model = self._build_model(X.shape[1], center, scale, input_scales).float()
        reset_parameters(model, torch.Generator().manual_seed(int(seed)))
        self._architecture = self._architecture_params()
        self._network = model
        self._optimizer = None
        self._optimizer_state = None
        self._n_features_out = self.n_components
        self.device_ = torch.device("cpu")
        self._configure_model(model)
        self._place(device)
        self.pretrain_loss_curves_ = None
        if pretrain and self.pretrain == "layerwise":
            self.pretrain_loss_curves_ = self._pretrain(train_source, device, seed)
        if self.linear_shortcut and (self._hidden_layer_sizes() or self.architecture == "conv"):
            self._start_from_pca(model, X, center, scale, input_scales, int(seed))
        self.encoder_ = model.encoder
        self.decoder_ = model.decoder
        self.loss_curve_ = []
        self.validation_loss_curve_ = [] if self.early_stopping else None
        self.n_iter_ = 0
        self.best_loss_ = np.inf

    def _pretrain(self, train_source, device, seed):
        """Greedy layer-wise pretraining; returns each layer pair's loss curve."""
        shuffle_seed, noise_seed = seeds(int(seed), 2)

        def train_pair(pair, source, label):
            optimizer = make_optimizer(
                self.optimizer,
                pair.trainable_parameters(),
                self.learning_rate,
                self.weight_decay,
                device,
            )
            trainer = self._make_trainer(pair, optimizer, device, shuffle_seed, noise_seed)
            history = run_epochs(
                trainer,
                source,
                self.pretrain_epochs,
                monitor=ConvergenceMonitor(self.tol, self.n_iter_no_change),
                on_epoch=functools.partial(self._report_pretraining, label),
            )
            return history["loss"]

        return pretrain_layerwise(self._network, train_source, train_pair)

    def _report_pretraining(self, pair, epoch, loss, validation_losses, seconds):
        if self.verbose:
            print(
                f"Pretraining layer pair {pair}, epoch {epoch + 1}: loss {loss:.6g}, "
                f"{seconds:.2f} s",
                flush=True,
            )

    def _start_from_pca(self, model, X, center, scale, input_scales, seed):
        """Start the linear paths as a whitened PCA (decoder too for a linear output)."""
        encoder_weight, decoder_weight, residual_variance = whitened_pca(
            X, center, scale, input_scales, self.n_components, seed
        )
        n_outputs = model.encoder[-1].linear.out_features
        encoder_weight = np.vstack(
            [encoder_weight, np.zeros((n_outputs - self.n_components, X.shape[1]))]
        )
        if model.output_layer.activation != "linear":
            decoder_weight = None
        start_linear_paths(model.encoder[-1], model.decoder[0], encoder_weight, decoder_weight)
        model.started_from_pca(residual_variance)

    def _configure_model(self, model):
        """Copy the parameters that are not part of the network's shape into it.

        Called at every fit, so ``set_params`` between warm-started fits
        takes effect.
        """
        if self.noise == "masking" and self.noise_level >= 1:
            raise ValueError(f"noise='masking' needs noise_level < 1; got {self.noise_level}.")
        model.noise, model.noise_level = self.noise, self.noise_level

    def _architecture_params(self):
        names = (
            "n_components",
            "activation",
            "output_activation",
            "dropout",
            "batch_norm",
            "linear_shortcut",
            "architecture",
        )
        params = {name: getattr(self, name) for name in names + self._model_params}
        params["hidden_layer_sizes"] = self._hidden_layer_sizes()
        params["conv"] = self._conv_spec(self.n_features_in_)
        return params

    def _check_architecture(self):
        """Refuse to continue training a network that the parameters no longer describe."""
        changed = [
            name
            for name, value in self._architecture_params().items()
            if self._architecture[name] != value
        ]
        if changed:
            raise ValueError(
                f"{', '.join(changed)} changed since the network was built; "
                "continued training (warm_start or partial_fit) needs the same "
                "network. Fit with warm_start=False to build a new one."
            )

    def _place(self, device):
        """Move the model (and the optimiser's state) to ``device``."""
        if device == self.device_:
            return
        if self._optimizer is not None:
            self._optimizer_state = self._optimizer.state_dict()
            self._optimizer = None
        self._network.to(device)
        self.device_ = device

    def _make_optimizer(self, device):
        if self._optimizer is None or self._optimizer_name != self.optimizer:
            optimizer = make_optimizer(
                self.optimizer,
                self._network.parameters(),
                self.learning_rate,
                self.weight_decay,
                device,
            )
            state = self._optimizer_state
            if state is not None and getattr(self, "_optimizer_name", None) == self.optimizer:
                optimizer.load_state_dict(state)
            self._optimizer, self._optimizer_state = optimizer, None
            self._optimizer_name = self.optimizer
        for group in self._optimizer.param_groups:
            group["lr"] = self.learning_rate
            group["weight_decay"] = self.weight_decay
        return self._optimizer

    def _before_epoch(self, optimizer, n_epochs, epoch):
        rate = self.learning_rate
        if self.learning_rate_schedule == "cosine":
            rate *= 0.5 * (1 + math.cos(math.pi * epoch / n_epochs))
        for group in optimizer.param_groups:
            group["lr"] = rate
        self._epoch_hook(epoch)

    def _split(self, X, seed):
        n_validation = int(round(self.validation_fraction * X.shape[0]))
        if n_validation < 1 or n_validation >= X.shape[0]:
            raise ValueError(
                f"early_stopping needs a validation split: validation_fraction="
                f"{self.validation_fraction} of {X.shape[0]} samples leaves "
                f"{n_validation} for validation. Use more samples or set "
                "early_stopping=False."
            )
        train, validation = train_test_split(
            np.arange(X.shape[0]), test_size=n_validation, random_state=int(seed)
        )
        return X[np.sort(train)], X[np.sort(validation)]

    def _report_epoch(self, epoch, loss, validation_losses, seconds):
        if not self.verbose:
            return
        unit = self._network.loss_unit
        line = f"Epoch {self.n_iter_ + epoch + 1}: loss {loss * unit:.6g}"
        if validation_losses:
            line += f", validation loss {validation_losses[-1] * unit:.6g}"
        print(f"{line}, {seconds:.2f} s", flush=True)

    def _record(self, history, warn, unmonitored=0):
        unit = self._network.loss_unit
        self.loss_curve_.extend(loss * unit for loss in history["loss"])
        if history["validation_loss"]:
            self.validation_loss_curve_ = list(self.validation_loss_curve_ or [])
            self.validation_loss_curve_.extend(loss * unit for loss in history["validation_loss"])
        monitored = history["validation_loss"] or history["loss"]
        # Losses of warm-up epochs measure another objective.
        monitored = monitored[unmonitored:] or monitored
        self.best_loss_ = min(monitored) * unit
        self.n_iter_ += len(history["loss"])
        if warn and not history["converged"]:
            warnings.warn(
                f"{type(self).__name__} stopped after max_epochs={self.max_epochs} "
                "epochs while the loss was still improving; more epochs may give "
                "a better model.",
                ConvergenceWarning,
                stacklevel=5,
            )

    # ------------------------------------------------------------- inference

    def _map(self, method, X, n_outputs, *, dtype=None, rows_per_block=None, **kwargs):
        """Apply the model's ``method`` to ``X`` in large blocks, without gradients.

        The model computes in the precision of ``X``: float64 input gets a
        float64 copy of the network (except on MPS, which has no float64), so
        results do not depend on how rows are blocked or ordered.
        """
        network, compute_dtype = self._network, torch.float32
        if X.dtype == np.float64 and self.device_.type != "mps":
            network, compute_dtype = copy.deepcopy(network).double(), torch.float64
        network.eval()
        function = functools.partial(getattr(network, method), **kwargs)
        with torch.inference_mode():
            return map_rows(
                function,
                X,
                self.device_,
                n_outputs,
                dtype or X.dtype,
                compute_dtype,
                rows_per_block=rows_per_block,
            )

    def transform(self, X):
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
        X = self._validate(X, reset=False)
        return self._map("encode", X, self._n_features_out)

    def inverse_transform(self, X):
        """Decode codes back to the space (and units) of the training data.

        For a VAE this is the decoder's mean of p(x | z).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_components)
            Codes, e.g. the output of :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features_in_)
        """
        check_is_fitted(self)
        X = check_array(X, accept_sparse="csr", dtype=[np.float64, np.float32])
        if X.shape[1] != self._n_features_out:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__}.inverse_transform "
                f"is expecting {self._n_features_out} features (the code size) as input."
            )
        return self._map("decode", X, self.n_features_in_)

    def score_samples(self, X):
        """Score each sample; higher is better.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        return self._map("score_samples", X, None, dtype=np.float64)

    def score(self, X, y=None):
        """Mean of :meth:`score_samples` over ``X``; higher is better.

        This lets ``GridSearchCV`` and ``cross_val_score`` compare settings
        with no ``scoring`` argument.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        score : float
        """
        return float(np.mean(self.score_samples(X)))

    # ----------------------------------------------------------- persistence

    def __getstate__(self):
        state = dict(super().__getstate__())
        optimizer = state.get("_optimizer")
        if optimizer is not None:
            state["_optimizer"] = None
            state["_optimizer_state"] = optimizer.state_dict()
        if state.get("_optimizer_state") is not None:
            state["_optimizer_state"] = _to_cpu(state["_optimizer_state"])
        network = state.get("_network")
        if network is not None and state["device_"].type != "cpu":
            network = copy.deepcopy(network).cpu()
            state.update(
                _network=network,
                encoder_=network.encoder,
                decoder_=network.decoder,
                device_=torch.device("cpu"),
            )
        return state
