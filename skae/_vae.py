"""VAETransformer: a variational autoencoder on the shared estimator machinery."""

import numbers

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.utils.validation import check_is_fitted

from ._autoencoder import AutoencoderTransformer
from ._base import BaseAutoencoder
from ._compat import Interval, StrOptions
from ._docstrings import with_shared_descriptions
from ._random import RandomStateLike, seeded_generator, seeds
from ._readers import available_memory, block_rows


class VAETransformer(BaseAutoencoder):
    """Dimensionality reduction with a variational autoencoder (VAE).

    The encoder gives the mean and log-variance of a Gaussian posterior
    q(z | x) of ``n_components`` dimensions; the decoder gives the mean of
    p(x | z). Training maximises the evidence lower bound (ELBO) with the
    reparameterisation trick: per sample, the negative log-likelihood of the
    data summed over features, plus ``beta`` times the closed-form KL
    divergence from q(z | x) to the prior N(0, I), averaged over the batch.

    It shares its parameters, validation, devices, persistence and training
    engine with :class:`AutoencoderTransformer` (the parameters and
    attributes described there are described here with the same text);
    only these differ:
    ``transform`` gives the posterior mean, ``score_samples`` the ELBO, and
    :meth:`sample` and :meth:`iwae_log_likelihood` are added.

    Parameters
    ----------
    n_components : int, default=2
        Dimension of the latent code (None is an error, as for
        :class:`AutoencoderTransformer`).
    hidden_layer_sizes : int or tuple of int, default=(512, 256)
        Widths of the encoder's hidden layers; the decoder mirrors them.
    activation : str, default="elu"
        Activation of the hidden layers (as in :class:`AutoencoderTransformer`).
    output_activation : {"linear", "sigmoid", "tanh", "auto"}, default="auto"
        Activation of the Gaussian mean (``"auto"`` as in
        :class:`AutoencoderTransformer`). Ignored with
        ``likelihood="bernoulli"``, whose decoder always ends in a sigmoid.
    dropout : float, default=0.0
        Dropout probability after each hidden layer, in training only.
    batch_norm : bool, default=False
        Batch-normalise each hidden layer before its activation.
    linear_shortcut : bool, default=True
        A linear path beside the hidden layers, started as a whitened PCA
        (see :class:`AutoencoderTransformer`).
    architecture : {"dense", "conv"}, default="dense"
    input_shape : tuple (channels, height, width), default=None
    conv_channels : tuple of int, default=(32, 64)
        A convolutional encoder and decoder for flattened images, as in
        :class:`AutoencoderTransformer`.
    noise : {None, "gaussian", "masking"}, default=None
        Corrupt the encoder's input in training only (a denoising VAE).
    noise_level : float, default=0.1
    likelihood : {"gaussian", "bernoulli"}, default="gaussian"
        Observation model p(x | z). ``"gaussian"``: real-valued data; one
        observation variance, shared by all features and learned with the
        network (a calibrated decoder), so the reconstruction term weighs
        squared errors in the units of ``X`` as PCA does; its standard
        deviation is kept above 1e-3 times the data's scale. ``"bernoulli"``:
        data in [0, 1] (a ValueError otherwise), the decoder gives
        probabilities.
    beta : float, default=1.0
        Weight of the KL term in training (a beta-VAE when not 1): higher
        values give smoother, more disentangled codes and worse
        reconstructions. The reported ELBO always uses a weight of 1.
    kl_warmup_epochs : int, default=0
        Raise the KL weight linearly from ``beta / kl_warmup_epochs`` to
        ``beta`` over this many epochs, against posterior collapse.
    optimizer : {"adam", "adamw", "sgd", "rmsprop"}, default="adam"
    learning_rate : float, default=1e-3
    learning_rate_schedule : {"constant", "cosine"}, default="constant"
    weight_decay : float, default=0.0
    batch_size : int, default=256
    max_epochs : int, default=100
    pretrain : {None, "layerwise"}, default=None
        ``"layerwise"``: before training the whole network, greedily train
        each encoder layer and its mirror in the decoder as a shallow
        autoencoder of the codes of the layers below, from the outside in
        (dense architecture only), in ``fit``; ``partial_fit`` and continued
        training (``warm_start``) never pretrain. With ``linear_shortcut``
        the network still starts as PCA: each nonlinear path keeps its
        pretrained layers but its last layer starts at zero, so part of what
        pretraining learned is discarded (see the README's measurements).
    pretrain_epochs : int, default=10
        Maximum epochs of pretraining per layer pair (before ``max_epochs``
        of training the whole network).
    neighbor_weight : float, default=0.0
    n_neighbors : int, default=15
    min_dist : float, default=0.1
        Map mode on the posterior means, added to the ELBO, as in
        :class:`AutoencoderTransformer`.
    early_stopping : bool or "auto", default="auto"
        Monitor the training objective on a held-out ``validation_fraction``
        and restore the best weights (``"auto"``: from 5,000 rows on, as in
        :class:`AutoencoderTransformer`).
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    tol : float, default=1e-4
        Relative improvement of the objective that counts as one.
    device : str, default="auto"
    precision : {"float32", "tf32", "bf16"}, default="float32"
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling, the validation split and the
        reparameterisation noise; an int gives bit-identical results on CPU.
    verbose : int, default=0
    warm_start : bool, default=False

    Attributes
    ----------
    encoder_ : torch.nn.Module
        Maps samples to ``2 * n_components`` values: posterior means, then
        log-variances.
    decoder_ : torch.nn.Module
        Maps codes to the mean of p(x | z), in the units of ``X``.
    device_ : torch.device
    loss_curve_ : list of float
        Training objective per epoch: the negative ELBO (with ``beta``) in
        nats per sample.
    validation_loss_curve_ : list of float or None
    best_loss_ : float
    pretrain_loss_curves_ : list of list of float or None
        With ``pretrain="layerwise"``, the loss per pretraining epoch of each
        layer pair, outermost first: mean squared error in the network's
        internal units (the data divided by its common scale, for the
        outermost pair). None without pretraining.
    n_iter_ : int
    embedding_ : ndarray of shape (n_samples, n_components) or None
    streamed_ : bool
    stream_block_rows_ : int or None
    n_components_ : int
    n_samples_seen_ : int
    mean_ : ndarray of shape (n_features,)
    noise_variance_ : float
        With ``likelihood="gaussian"``, the learned observation variance of
        p(x | z), in the units of ``X`` squared (PCA's noise variance is the
        same parameter of probabilistic PCA); with ``"bernoulli"``, the mean
        squared reconstruction error per feature on the training rows.
    reconstruction_r2_ : float
        Share of the training rows' variance the reconstruction (the decoded
        posterior means) explains.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features,)

    See Also
    --------
    AutoencoderTransformer : A deterministic autoencoder.

    References
    ----------
    Kingma and Welling (2014), Auto-Encoding Variational Bayes.
    Burda, Grosse and Salakhutdinov (2016), Importance Weighted Autoencoders.
    Rybkin, Daniilidis and Levine (2021), Simple and Effective VAE Training
    with Calibrated Decoders.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import VAETransformer
    >>> X, _ = load_digits(return_X_y=True)
    >>> vae = VAETransformer(n_components=2, max_epochs=5, random_state=0).fit(X)
    >>> vae.transform(X).shape, vae.sample(3, random_state=0).shape
    ((1797, 2), (3, 64))
    """

    _parameter_constraints = {
        **BaseAutoencoder._parameter_constraints,
        "likelihood": [StrOptions({"gaussian", "bernoulli"})],
        "beta": [Interval(numbers.Real, 0, None, closed="left")],
        "kl_warmup_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_components=2,
        *,
        hidden_layer_sizes=(512, 256),
        activation="elu",
        output_activation="auto",
        dropout=0.0,
        batch_norm=False,
        linear_shortcut=True,
        architecture="dense",
        input_shape=None,
        conv_channels=(32, 64),
        noise=None,
        noise_level=0.1,
        likelihood="gaussian",
        beta=1.0,
        kl_warmup_epochs=0,
        optimizer="adam",
        learning_rate=1e-3,
        learning_rate_schedule="constant",
        weight_decay=0.0,
        batch_size=256,
        max_epochs=100,
        pretrain=None,
        pretrain_epochs=10,
        neighbor_weight=0.0,
        n_neighbors=15,
        min_dist=0.1,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        device="auto",
        precision="float32",
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.output_activation = output_activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.linear_shortcut = linear_shortcut
        self.architecture = architecture
        self.input_shape = input_shape
        self.conv_channels = conv_channels
        self.noise = noise
        self.noise_level = noise_level
        self.likelihood = likelihood
        self.beta = beta
        self.kl_warmup_epochs = kl_warmup_epochs
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.pretrain = pretrain
        self.pretrain_epochs = pretrain_epochs
        self.neighbor_weight = neighbor_weight
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    @property
    def noise_variance_(self) -> float:
        check_is_fitted(self)
        network = self._state.network
        if network.log_variance is None:
            return self._state.training_error
        return network.observation_variance()

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """The ELBO of each sample at the posterior mean, in nats: not a bound.

        Deterministic: the reconstruction term is evaluated at the posterior
        mean instead of at random draws, so the value is a slightly optimistic
        single-point estimate of the ELBO (the KL term is exact), which may lie
        above log p(x). For a bound
        on log p(x) with a stated number of draws use
        :meth:`iwae_log_likelihood`. Likelihoods are densities in the units
        of ``X`` for ``likelihood="gaussian"``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        elbo : ndarray of shape (n_samples,)
            The ELBO of each row, in nats (float64).
        """
        return super().score_samples(X)

    def iwae_log_likelihood(
        self, X: ArrayLike, n_draws: int = 100, random_state: RandomStateLike = None
    ) -> np.ndarray:
        """Importance-weighted estimate of log p(x) per sample, in nats.

        The IWAE bound of Burda et al. (2016) with ``n_draws`` samples from
        q(z | x): a lower bound on log p(x) that tightens as ``n_draws``
        grows, and the usual way VAE likelihoods are reported (e.g. as a test
        negative log-likelihood, ``-mean``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        n_draws : int, default=100
            Importance samples per data point.
        random_state : int, RandomState instance or None, default=None
            Seeds the draws; an int makes the estimate reproducible.

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,)
            The IWAE estimate of log p(x) of each row, in nats (float64).
        """
        check_is_fitted(self)
        if isinstance(n_draws, bool) or not isinstance(n_draws, numbers.Integral) or n_draws < 1:
            raise ValueError(f"n_draws must be a positive integer; got {n_draws!r}.")
        # Each row's log-weights are held until their logsumexp (float32, one row at least).
        _check_fits_in_memory("n_draws", n_draws, n_draws * 4)
        X = self._validate_scored(X)
        return self._map(
            "importance_weighted_bound",
            X,
            None,
            dtype=np.float64,
            rows_per_block=block_rows(X.shape[1] * min(n_draws, 50)),
            n_draws=n_draws,
            generator=self._generator(random_state, self._state.device),
        )

    def sample(self, n_samples: int = 1, random_state: RandomStateLike = None) -> np.ndarray:
        """Draw new data: codes from the prior N(0, I), decoded to their means.

        Parameters
        ----------
        n_samples : int, default=1
            How many samples to draw.
        random_state : int, RandomState instance or None, default=None
            Seeds the codes; an int gives the same samples every call.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features)
            The decoder's mean of p(x | z) at codes drawn from the prior,
            in the units of the training data.
        """
        check_is_fitted(self)
        if (
            isinstance(n_samples, bool)
            or not isinstance(n_samples, numbers.Integral)
            or n_samples < 1
        ):
            raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}.")
        _check_fits_in_memory(
            "n_samples", n_samples, n_samples * (self._n_features_out + self.n_features_in_) * 8
        )
        generator = self._generator(random_state, torch.device("cpu"))
        codes = torch.randn((n_samples, self._n_features_out), generator=generator)
        return self._map("decode", codes.double().numpy(), self.n_features_in_)

    @staticmethod
    def _generator(random_state, device):
        return seeded_generator(seeds(random_state, 1)[0], device=device)


def _check_fits_in_memory(name, value, needed):
    """Raise a ValueError naming ``name`` when ``needed`` bytes exceed the memory available."""
    available = available_memory()
    if needed > available:
        raise ValueError(
            f"{name}={value!r} needs {needed / 2**30:.3g} GiB, more than the "
            f"{available / 2**30:.3g} GiB of memory available; ask for fewer."
        )


VAETransformer.__doc__ = with_shared_descriptions(
    VAETransformer.__doc__, AutoencoderTransformer.__doc__
)
