"""What a model is trained to minimise: named terms with weights, as one settings object.

An :class:`Objective` is built once per fitting call from the estimator's
parameters (:func:`objective_from_params`), owned by the model it trains and
saved with it. A model computes the per-sample value of each of its terms;
:func:`weighted_sum` adds them with the objective's weights. Adding a term
means a field here, its weight in :meth:`Objective.weights`, and its value
in the model's ``loss_terms``.
"""

import dataclasses

import numpy as np
from scipy.optimize import curve_fit

# Reconstruction terms of the deterministic and the variational models.
AUTOENCODER_LOSSES = ("mse", "bce")
LIKELIHOODS = ("gaussian", "bernoulli")
NOISE_KINDS = (None, "gaussian", "masking")


def kernel_parameters(min_dist, spread=1.0):
    """UMAP's ``a`` and ``b``: ``1 / (1 + a d^(2b))`` fitted to a curve flat up to ``min_dist``."""
    d = np.linspace(0, 3 * spread, 300)
    target = np.where(d < min_dist, 1.0, np.exp(-(d - min_dist) / spread))
    (a, b), _ = curve_fit(lambda x, a, b: 1.0 / (1.0 + a * x ** (2 * b)), d, target)
    return float(a), float(b)


@dataclasses.dataclass(frozen=True)
class Objective:
    """The terms of a model's training objective, their weights and the input noise.

    Attributes
    ----------
    reconstruction : {"mse", "bce", "gaussian", "bernoulli"}
        The reconstruction term: an autoencoder's loss, or a VAE's
        likelihood (its negative log).
    sparsity : float
        Weight of the L1 penalty on the code (autoencoders).
    kl : float
        Weight of the KL divergence from the posterior to the prior (VAEs:
        ``beta``); ``kl_warmup_epochs`` raises it to that weight over the
        first epochs of a fit (see ``skae._callbacks.KLWarmup``).
    kl_warmup_epochs : int
    neighbors : float
        Weight of the neighbour-preserving term (UMAP's cross-entropy over
        the fuzzy graph of ``n_neighbors`` neighbours); 0 leaves it out.
    n_neighbors : int
    min_dist : float
    kernel : tuple of float
        UMAP's ``(a, b)`` for ``min_dist`` (see :func:`kernel_parameters`).
    noise : {None, "gaussian", "masking"}
        Corruption of the encoder's input in training (a denoising model),
        of strength ``noise_level``.
    noise_level : float
    """

    reconstruction: str
    sparsity: float = 0.0
    kl: float = 0.0
    kl_warmup_epochs: int = 0
    neighbors: float = 0.0
    n_neighbors: int = 15
    min_dist: float = 0.1
    kernel: tuple = (1.0, 1.0)
    noise: str | None = None
    noise_level: float = 0.0

    @property
    def variational(self):
        """Whether the objective is a VAE's (a likelihood and a KL term)."""
        return self.reconstruction in LIKELIHOODS

    def weights(self, epochs=None):
        """``{term: weight}`` of every term computed, the reconstruction first.

        ``epochs``: the weights training uses once that many epochs have
        run since the network was built (the first counts as 1), the KL
        warm-up raising the KL weight linearly to ``kl`` over
        ``kl_warmup_epochs``; None: the full objective's, which evaluation
        uses. A VAE always computes its KL term (its ELBO needs it); the
        other terms only when their weight is not zero.
        """
        weights = {"reconstruction": 1.0}
        if self.variational:
            weights["kl"] = float(self.kl)
            if epochs is not None and self.kl_warmup_epochs:
                weights["kl"] *= min(1.0, epochs / self.kl_warmup_epochs)
        elif self.sparsity:
            weights["sparsity"] = float(self.sparsity)
        if self.neighbors:
            weights["neighbors"] = float(self.neighbors)
        return weights

    @property
    def unit_interval_reason(self):
        """The parameter that needs data in [0, 1] (as the user wrote it), or None."""
        if self.reconstruction == "bce":
            return "loss='bce'"
        if self.reconstruction == "bernoulli":
            return "likelihood='bernoulli'"
        return None

    def to_dict(self):
        """A JSON-ready dict; :func:`objective_from_dict` reverses it."""
        values = dataclasses.asdict(self)
        values["kernel"] = list(self.kernel)
        return values


def objective_from_params(params):
    """The :class:`Objective` an estimator's parameters describe.

    ``params`` holds ``likelihood`` and ``beta`` for a VAE, ``loss`` and
    ``sparsity`` for an autoencoder, and the shared neighbour and noise
    parameters.
    """
    neighbors = float(params["neighbor_weight"])
    shared = dict(
        neighbors=neighbors,
        n_neighbors=int(params["n_neighbors"]),
        min_dist=float(params["min_dist"]),
        kernel=kernel_parameters(params["min_dist"]) if neighbors else (1.0, 1.0),
        noise=params["noise"],
        noise_level=float(params["noise_level"]),
    )
    if "likelihood" in params:
        return Objective(
            reconstruction=params["likelihood"],
            kl=float(params["beta"]),
            kl_warmup_epochs=int(params["kl_warmup_epochs"]),
            **shared,
        )
    return Objective(reconstruction=params["loss"], sparsity=float(params["sparsity"]), **shared)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_field(name, value):
    """Raise a ValueError naming ``name`` unless ``value`` is a valid value for it."""
    if name == "reconstruction":
        valid = value in AUTOENCODER_LOSSES + LIKELIHOODS
    elif name == "noise":
        valid = value in NOISE_KINDS
    elif name == "kernel":
        valid = (
            isinstance(value, (list, tuple))
            and len(value) == 2
            and all(_is_number(v) and 0 < v < float("inf") for v in value)
        )
    elif name in ("kl_warmup_epochs", "n_neighbors"):
        valid = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    else:
        valid = _is_number(value) and 0 <= value < float("inf")
        valid = valid and (name != "min_dist" or value <= 1)
    if not valid:
        raise ValueError(f"objective.{name} has an invalid value {value!r:.60}")


def objective_from_dict(values):
    """The :class:`Objective` of :meth:`Objective.to_dict`'s output, every field checked."""
    if not isinstance(values, dict):
        raise ValueError("objective must be a JSON object")
    names = [field.name for field in dataclasses.fields(Objective)]
    unknown, missing = sorted(set(values) - set(names)), sorted(set(names) - set(values))
    if unknown or missing:
        raise ValueError(f"objective has unknown fields {unknown[:5]} or lacks {missing[:5]}")
    for name in names:
        _check_field(name, values[name])
    if values["noise"] == "masking" and values["noise_level"] >= 1:
        raise ValueError("objective.noise_level must be below 1 for masking noise")
    return Objective(**{**values, "kernel": tuple(float(v) for v in values["kernel"])})


def weighted_sum(terms, weights):
    """``sum(weights[name] * terms[name])`` over the terms, in ``weights``' order.

    The first term (the reconstruction, of weight 1) is taken as it is.
    """
    names = iter(weights)
    first = next(names)
    total = terms[first] if weights[first] == 1.0 else weights[first] * terms[first]
    for name in names:
        total = total + weights[name] * terms[name]
    return total
