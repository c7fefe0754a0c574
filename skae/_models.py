"""Networks paired with their objective: what an estimator trains.

Each model is an ``nn.Module`` with

- ``encoder`` and ``decoder`` submodules (data units in, data units out),
- ``sample_losses(x, generator)``: the per-sample training objective,
- ``score_samples(x)``: the per-sample score the estimator reports,
- ``loss_unit``: the factor that turns the objective into reported units.

The training engine only calls ``sample_losses``.
"""

from torch import nn

from ._losses import binary_cross_entropy, mean_squared_error


class AutoencoderModel(nn.Module):
    """A deterministic autoencoder trained on reconstruction error.

    Parameters
    ----------
    encoder : nn.Sequential
        Data (in the user's units) to code.
    decoder : nn.Sequential
        Its last module is an :class:`~skae._networks.OutputLayer`; the ones
        before it map a code to the output layer's pre-activations.
    loss : {"mse", "bce"}
        ``"mse"`` is the mean squared error divided by the data's mean
        feature variance (a constant, so the minimiser is the plain MSE in
        the user's units); ``"bce"`` is the mean binary cross-entropy.
    """

    def __init__(self, encoder, decoder, loss):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.loss = loss

    @property
    def output_layer(self):
        return self.decoder[-1]

    @property
    def loss_unit(self):
        return 1.0 if self.loss == "bce" else float(self.output_layer.scale) ** 2

    def decoder_logits(self, code):
        """The decoder up to, not including, its output activation."""
        for layer in self.decoder[:-1]:
            code = layer(code)
        return code

    def encode(self, x):
        return self.encoder(x)

    def decode(self, code):
        return self.decoder(code)

    def sample_losses(self, x, generator=None):
        logits = self.decoder_logits(self.encoder(x))
        if self.loss == "bce":
            return binary_cross_entropy(logits, x)
        return mean_squared_error(self.output_layer.residual(logits, x))

    def score_samples(self, x):
        """Minus the mean squared reconstruction error, in the data's units."""
        residual = self.output_layer.residual(self.decoder_logits(self.encoder(x)), x)
        return -mean_squared_error(residual) * self.output_layer.scale.square()
