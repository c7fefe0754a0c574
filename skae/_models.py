"""Networks paired with their objective: what an estimator trains.

Each model is an ``nn.Module`` with

- ``encoder`` and ``decoder`` submodules (data units in, data units out),
- ``encode(x)`` and ``decode(code)``, used by ``transform`` and
  ``inverse_transform``,
- ``objective``: its :class:`~skae._objectives.Objective` (terms, weights,
  input noise), set with ``set_objective`` at every fitting call,
- ``loss_terms(x, generator)``: each term's per-sample value, and
  ``sample_losses(x, generator)``: their weighted sum, the per-sample
  training objective,
- ``evaluation(x, generator)``: in evaluation mode, ``sample_losses`` and
  the reconstruction of the rows, from as few passes as the model allows
  (so that a fit's end, judged on the rows its summary is measured on,
  needs no pass of its own for the summary),
- ``score_samples(x)``: the per-sample score the estimator reports,
- ``loss_unit`` and ``loss_offset``: reported loss = objective * unit + offset
  (the objective itself is free of the data's units, so that a relative
  ``tol`` means the same for data in any units).

The training engine calls ``sample_losses`` to train, and ``evaluation``,
``split_targets`` and ``output_layer`` where a judging pass tallies a fit's
summary.
"""

import math

import torch
from torch import nn

from ._losses import (
    binary_cross_entropy,
    gaussian_kl_divergence,
    gaussian_negative_log_likelihood,
    mean_squared_error,
)
from ._networks import dense_encoder_decoder, drawing_from, last_weighted_layer
from ._objectives import weighted_sum

# The observation standard deviation of a Gaussian VAE stays above this share
# of the data's scale, so that a perfect fit of a constant feature cannot
# drive the likelihood to infinity.
_MIN_LOG_VARIANCE = 2 * math.log(1e-3)
# Posterior standard deviation 0.1 at the start (the codes have unit variance).
_INITIAL_LOG_VARIANCE = 2 * math.log(0.1)
# Posterior log-variances are kept in this range (standard deviations from
# 3e-7 to 3e6 times the prior's), so that a far-off input gives a finite
# score instead of exp(huge) = inf and NaN; training never comes near it.
_POSTERIOR_LOG_VARIANCE_RANGE = (-30.0, 30.0)


def full_precision(values):
    """``values`` as float32 when autocast made them half precision, else as they are."""
    return values.float() if values.dtype in (torch.bfloat16, torch.float16) else values


def corrupted(x, noise, noise_level, scale, generator):
    """``x`` with denoising noise, or ``x`` itself when ``noise`` is None.

    ``"gaussian"`` adds noise of standard deviation ``noise_level * scale``;
    ``"masking"`` sets a share ``noise_level`` of the entries to zero.
    """
    if noise is None or noise_level == 0:
        return x
    draw = torch.randn if noise == "gaussian" else torch.rand
    values = draw(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    if noise == "gaussian":
        return x + values * (noise_level * scale)
    return x * (values >= noise_level)


def map_distance(codes, targets):
    """The neighbour term: each code's mean squared distance to its place in the map.

    The targets are in the units of the codes, which start as a whitened PCA
    (unit variance per component), so the term is free of the data's units.
    """
    return (codes - targets).square().mean(dim=1)


class ReconstructionModel(nn.Module):
    """An encoder and a decoder whose last module is an ``OutputLayer``, and their objective.

    The objective's ``noise`` (None, "gaussian" or "masking") with
    ``noise_level`` corrupts the encoder's input in training only; the loss
    still compares with the clean input (a denoising autoencoder).
    """

    # Reported losses are ``objective * loss_unit + loss_offset``.
    loss_unit = 1.0
    loss_offset = 0.0

    def __init__(self, encoder, decoder, objective):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.set_objective(objective)

    def set_objective(self, objective, epochs=None):
        """Train for ``objective`` from now on (its reconstruction term is the model's own).

        ``term_weights`` are the weights training uses after ``epochs``
        epochs (see ``Objective.weights``), which an epoch hook moves on
        (the KL warm-up); evaluation always uses the objective's own.
        """
        self.objective = objective
        self.term_weights = objective.weights(epochs)

    def sample_losses(self, x, generator=None):
        """The per-sample objective: the weighted sum of :meth:`loss_terms`.

        The neighbour term is left out of batches without target codes
        (held-out rows, which have no place in the map).
        """
        weights = self.term_weights if self.training else self.objective.weights()
        return _weighted(self.loss_terms(x, generator, weights), weights)

    def evaluation(self, x, generator=None):
        """``(sample_losses(x, generator), reconstruction of x's rows)`` in evaluation mode.

        The reconstruction is ``decode(encode(rows))`` (without a batch's
        target codes); models that can share their forward pass with the
        loss's override this.
        """
        rows, _ = self.split_targets(x)
        return self.sample_losses(x, generator), self.decode(self.encode(rows))

    def split_targets(self, x):
        """``(rows, target codes)`` of a batch from a ``MapSource`` (rows followed by
        the codes the neighbour objective pulls them towards), else ``(x, None)``."""
        n_features = self.output_layer.center.numel()
        if x.shape[1] == n_features:
            return x, None
        return x[:, :n_features], full_precision(x[:, n_features:])

    def corrupt(self, x, generator):
        """``x`` with training noise (see :func:`corrupted`); ``x`` itself in evaluation."""
        if not self.training:
            return x
        objective = self.objective
        return corrupted(
            x, objective.noise, objective.noise_level, self.output_layer.scale, generator
        )

    @property
    def output_layer(self):
        return self.decoder.output

    def started_from_pca(self, residual_variance):
        """Called once the linear paths hold a PCA (see ``start_linear_paths``).

        ``residual_variance`` is PCA's mean squared error per feature, in
        units of the data's scale squared.
        """

    def decoder_logits(self, code):
        """The decoder up to, not including, its output activation, in float32.

        Under bf16 autocast the layers run in bf16; the loss terms that follow
        are computed from float32 values.
        """
        return full_precision(self.decoder.body(code))

    def encode(self, x):
        return self.encoder(x)

    def decode(self, code):
        return self.decoder(code)


class AutoencoderModel(ReconstructionModel):
    """A deterministic autoencoder trained on reconstruction error.

    Parameters
    ----------
    encoder : Encoder
        Data (in the user's units) to code.
    decoder : Decoder
        Code to data, ending in an :class:`~skae._networks.OutputLayer`.
    objective : Objective
        Its reconstruction is ``"mse"``, the mean squared error divided by
        the square of the data's scale (a constant, so the minimiser is the
        plain MSE in the user's units), or ``"bce"``, the mean binary
        cross-entropy; optional terms are an L1 penalty on the code
        (``sparsity``) and the neighbour term.
    """

    @property
    def loss_unit(self):
        bce = self.objective.reconstruction == "bce"
        return 1.0 if bce else float(self.output_layer.scale) ** 2

    def loss_terms(self, x, generator=None, weights=None):
        """``{term: per-sample value}`` for the terms in ``weights``."""
        return self._terms_and_logits(x, generator, weights)[0]

    def evaluation(self, x, generator=None):
        """One forward pass: its loss and its reconstruction (see the base class)."""
        weights = self.objective.weights()
        terms, logits = self._terms_and_logits(x, generator, weights)
        return _weighted(terms, weights), self.output_layer(logits)

    def _terms_and_logits(self, x, generator, weights):
        """The loss terms and the decoder's logits of one forward pass."""
        x, targets = self.split_targets(x)
        with drawing_from(self, generator):
            code = full_precision(self.encoder(self.corrupt(x, generator)))
            logits = self.decoder_logits(code)
        if self.objective.reconstruction == "bce":
            terms = {"reconstruction": binary_cross_entropy(logits, x)}
        else:
            terms = {"reconstruction": mean_squared_error(self.output_layer.residual(logits, x))}
        if "sparsity" in weights:
            terms["sparsity"] = code.abs().mean(dim=1)
        if "neighbors" in weights and targets is not None:
            terms["neighbors"] = map_distance(code, targets)
        return terms, logits

    def score_samples(self, x):
        """Minus the mean squared reconstruction error, in the data's units."""
        residual = self.output_layer.residual(self.decoder_logits(self.encoder(x)), x)
        return -mean_squared_error(residual) * self.output_layer.scale.square()


class VariationalModel(ReconstructionModel):
    """A variational autoencoder with a Gaussian posterior and N(0, I) prior.

    Parameters
    ----------
    encoder : Encoder
        Data to ``2 * n_components`` values: the posterior's means, then its
        log-variances.
    decoder : Decoder
        Code to the mean of p(x | z), ending in an ``OutputLayer``.
    objective : Objective
        Its reconstruction is the likelihood: ``"gaussian"`` learns one
        observation variance shared by all features (in the data's units);
        ``"bernoulli"`` reads the decoder's output as probabilities. Its
        ``kl`` weighs the KL term (in training, ``term_weights["kl"]``, which
        a KL warm-up raises towards it).

    The training objective measures the Gaussian likelihood as a density of
    the data divided by its scale, so that it does not depend on the data's
    units (and neither does stopping, whose ``tol`` is relative);
    ``loss_offset`` turns it into a density in the user's units.
    """

    def __init__(self, encoder, decoder, objective):
        super().__init__(encoder, decoder, objective)
        gaussian = objective.reconstruction == "gaussian"
        self.log_variance = nn.Parameter(torch.zeros(())) if gaussian else None

    @property
    def likelihood(self):
        return self.objective.reconstruction

    @property
    def kl_weight(self):
        """The KL term's weight in training now (a warm-up raises it to ``objective.kl``)."""
        return self.term_weights["kl"]

    @torch.no_grad()
    def started_from_pca(self, residual_variance):
        """Start as a calibrated probabilistic PCA, so that training refines it.

        The posteriors start narrow and the observation variance at PCA's
        residual variance (its maximum-likelihood value). With a posterior as
        wide as the prior and a unit observation variance, the KL term would
        first pull every code to the prior and the decoder would learn to
        ignore them (posterior collapse), worst on small datasets.
        """
        last = last_weighted_layer(self.encoder.body)
        last.bias[last.out_features // 2 :] = _INITIAL_LOG_VARIANCE
        if self.log_variance is not None:
            self.log_variance.fill_(max(math.log(max(residual_variance, 1e-12)), _MIN_LOG_VARIANCE))

    def posterior(self, x):
        """Means and log-variances of q(z | x)."""
        mean, log_variance = full_precision(self.encoder(x)).chunk(2, dim=1)
        return mean, log_variance.clamp(*_POSTERIOR_LOG_VARIANCE_RANGE)

    def encode(self, x):
        return self.posterior(x)[0]

    @torch.no_grad()
    def observation_variance(self):
        """The Gaussian likelihood's variance in the data's units squared (a float)."""
        variance = torch.exp(self.log_variance.clamp(min=_MIN_LOG_VARIANCE))
        return float(variance) * float(self.output_layer.scale) ** 2

    @property
    def loss_offset(self):
        """What turns a density of the scaled data into one in the data's units."""
        if self.likelihood == "bernoulli":
            return 0.0
        return self.output_layer.center.numel() * math.log(float(self.output_layer.scale))

    def negative_log_likelihood(self, logits, x, in_data_units=True):
        """-log p(x | z) in nats, summed over features, from the decoder's logits.

        ``in_data_units=False`` gives the density of the data divided by its
        scale (the training objective's, free of the data's units).
        """
        if self.likelihood == "bernoulli":
            return binary_cross_entropy(logits, x, reduce="sum")
        residual = self.output_layer.residual(logits, x)
        log_variance = self.log_variance.clamp(min=_MIN_LOG_VARIANCE)
        nll = gaussian_negative_log_likelihood(residual, log_variance)
        return nll + self.loss_offset if in_data_units else nll

    def _draw(self, mean, log_variance, generator, n_draws=None):
        shape = mean.shape if n_draws is None else (n_draws, *mean.shape)
        noise = torch.randn(shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + torch.exp(0.5 * log_variance) * noise, noise

    def loss_terms(self, x, generator=None, weights=None):
        """``{term: per-sample value}``: the likelihood's, the KL's, and the neighbour term."""
        x, targets = self.split_targets(x)
        with drawing_from(self, generator):
            posterior = self.posterior(self.corrupt(x, generator))
            return self._terms(x, targets, posterior, generator, weights)

    def evaluation(self, x, generator=None):
        """The loss and the reconstruction at the posterior mean, from one encoder pass."""
        weights = self.objective.weights()
        x, targets = self.split_targets(x)
        with drawing_from(self, generator):
            posterior = self.posterior(self.corrupt(x, generator))
            terms = self._terms(x, targets, posterior, generator, weights)
        return _weighted(terms, weights), self.decode(posterior[0])

    def _terms(self, x, targets, posterior, generator, weights):
        mean, log_variance = posterior
        code, _ = self._draw(mean, log_variance, generator)
        logits = self.decoder_logits(code)
        terms = {
            "reconstruction": self.negative_log_likelihood(logits, x, in_data_units=False),
            "kl": gaussian_kl_divergence(mean, log_variance),
        }
        if "neighbors" in weights and targets is not None:
            terms["neighbors"] = map_distance(mean, targets)
        return terms

    def score_samples(self, x):
        """The ELBO in nats, its reconstruction term taken at the posterior mean."""
        mean, log_variance = self.posterior(x)
        nll = self.negative_log_likelihood(self.decoder_logits(mean), x)
        return -(nll + gaussian_kl_divergence(mean, log_variance))

    def importance_weighted_bound(self, x, n_draws, generator, chunk=50):
        """The IWAE bound on log p(x) with ``n_draws`` importance samples, per row."""
        mean, log_variance = self.posterior(x)
        log_weights = []
        for start in range(0, n_draws, chunk):
            n = min(chunk, n_draws - start)
            code, noise = self._draw(mean, log_variance, generator, n)
            flat = code.reshape(-1, code.shape[-1])
            nll = self.negative_log_likelihood(self.decoder_logits(flat), x.repeat(n, 1))
            log_prior = -0.5 * (code.square() + math.log(2 * math.pi)).sum(-1)
            log_posterior = -0.5 * (noise.square() + log_variance + math.log(2 * math.pi)).sum(-1)
            log_weights.append(-nll.reshape(n, -1) + log_prior - log_posterior)
        return torch.logsumexp(torch.cat(log_weights), dim=0) - math.log(n_draws)


def _weighted(terms, weights):
    """The weighted sum of the terms present (held-out rows have no neighbour term)."""
    return weighted_sum(terms, {name: w for name, w in weights.items() if name in terms})


def build_model(spec, objective, center, scale, input_scales):
    """The untrained model that ``spec`` and ``objective`` describe.

    Parameters
    ----------
    spec : NetworkSpec
        The network's shape (``skae._plan``).
    objective : Objective
        A likelihood for a VAE, an autoencoder's loss otherwise.
    center, scale, input_scales
        The data's conditioning (``skae._initialization.scales_from_moments``).
    """
    variational = objective.variational
    output = "sigmoid" if objective.reconstruction == "bernoulli" else spec.output_activation
    encoder, decoder = dense_encoder_decoder(
        spec.n_features,
        spec.hidden_layer_sizes,
        spec.n_components,
        activation=spec.activation,
        output_activation=output,
        center=center,
        scale=scale,
        input_scales=input_scales,
        encoder_outputs=2 * spec.n_components if variational else None,
        dropout=spec.dropout,
        batch_norm=spec.batch_norm,
        linear_shortcut=spec.linear_shortcut,
        conv=spec.conv,
    )
    model = VariationalModel if variational else AutoencoderModel
    return model(encoder, decoder, objective)
