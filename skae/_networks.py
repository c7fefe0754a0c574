"""Pure ``torch.nn`` building blocks: layer stacks, input and output scaling.

Nothing here knows about scikit-learn; the estimators assemble these pieces.
"""

import contextlib
import math

import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "selu": nn.SELU,
    "silu": nn.SiLU,
}

OUTPUT_ACTIVATIONS = ("linear", "sigmoid", "tanh")


def dense_stack(sizes, activation, *, activate_last=False, dropout=0.0, batch_norm=False):
    """Build fully connected layers between consecutive ``sizes``.

    Parameters
    ----------
    sizes : sequence of int
        Widths from the input to the output, e.g. ``(784, 128, 10)``.
    activation : str
        A key of :data:`ACTIVATIONS`, applied after every hidden layer.
    activate_last : bool, default=False
        Whether the last layer is followed by the activation too.
    dropout : float, default=0.0
        Dropout probability after each activated layer.
    batch_norm : bool, default=False
        Whether each activated layer is batch-normalised before its activation.

    Returns
    -------
    torch.nn.Sequential
    """
    layers = []
    n_layers = len(sizes) - 1
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < n_layers - 1 or activate_last:
            if batch_norm:
                layers.append(nn.BatchNorm1d(n_out))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(SeededDropout(dropout))
    return nn.Sequential(*layers)


class SeededDropout(nn.Module):
    """Dropout whose masks come from a ``torch.Generator``, not the global RNG.

    The generator is bound for the duration of a training step by
    :func:`drawing_from`; unbound, the layer falls back to the global RNG.
    """

    def __init__(self, p):
        super().__init__()
        self.p = p
        self.generator = None

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        noise = torch.rand(x.shape, generator=self.generator, device=x.device, dtype=x.dtype)
        return x * (noise >= self.p) / (1 - self.p)

    def extra_repr(self):
        return f"p={self.p}"


@contextlib.contextmanager
def drawing_from(module, generator):
    """Let every :class:`SeededDropout` in ``module`` draw from ``generator``."""
    layers = [m for m in module.modules() if isinstance(m, SeededDropout)]
    for layer in layers:
        layer.generator = generator
    try:
        yield
    finally:
        for layer in layers:
            layer.generator = None


def reset_parameters(module, generator):
    """Initialise every linear and convolutional layer from ``generator``.

    This reproduces PyTorch's default initialisation (Kaiming-uniform weights,
    uniform biases) but draws from the given generator instead of the global
    one, so that building a network never touches the user's random state.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.modules.conv._ConvNd)):
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
            if layer.bias is not None:
                fan_in, _ = nn.init._calculate_fan_in_and_fan_out(layer.weight)
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return module


class LinearShortcut(nn.Module):
    """A network plus a linear map of the same input: ``layers(x) + linear(x)``.

    The linear path alone is a PCA-like autoencoder; the layers add the
    nonlinear part. Without it, a ReLU network reconstructs even the linear
    directions of the data piecewise, with errors that grow away from the
    training points.
    """

    def __init__(self, layers, n_in, n_out):
        super().__init__()
        self.layers = layers
        self.linear = nn.Linear(n_in, n_out, bias=False)
        # What the layers output whatever their input, while
        # constant_paths_skipped holds it; None: run them.
        self.constant_output = None

    def forward(self, x):
        # Never where gradients flow: the skipped layers would get none.
        if self.constant_output is not None and not torch.is_grad_enabled():
            return self.constant_output + self.linear(x)
        return self.layers(x) + self.linear(x)

    def layers_constant(self):
        """The layers' output when it cannot depend on the input, else None.

        That is the bias of a last linear layer whose weights are all zero,
        as :func:`start_linear_paths` leaves them when a new fit starts from
        PCA (not once trained, and never for a convolutional decoder, which
        ends in a transposed convolution).
        """
        last = self.layers[-1] if isinstance(self.layers, nn.Sequential) else None
        if not isinstance(last, nn.Linear) or last.bias is None or last.weight.any():
            return None
        return last.bias.detach()


@contextlib.contextmanager
def constant_paths_skipped(network):
    """Within the block, skip the nonlinear paths that only add a constant.

    A new network started from PCA is its linear paths (see
    :func:`start_linear_paths`), so its first evaluation needs only those:
    for the default network on MNIST, under 2% of the products. The result
    is the same bit for bit, as the skipped last product is all zeros and
    the bias is added as it would be, unless a hidden value overflows to
    infinity (zero weights would make it NaN). Not for use under autocast,
    which rounds the bias to its lower precision. Only where no gradients
    are computed; the flags live on the modules, so one network is not to
    be evaluated from two threads at once.
    """
    shortcuts = [m for m in network.modules() if isinstance(m, LinearShortcut)]
    try:
        for shortcut in shortcuts:
            shortcut.constant_output = shortcut.layers_constant()
        yield
    finally:
        for shortcut in shortcuts:
            shortcut.constant_output = None


def nonlinear_path(body):
    """The layers of ``body`` beside its linear shortcut, or ``body`` itself."""
    return body.layers if isinstance(body, LinearShortcut) else body


def last_weighted_layer(encoder_body):
    """The last linear or convolutional layer of a body's nonlinear path."""
    weighted = (nn.Linear, nn.modules.conv._ConvNd)
    return [m for m in nonlinear_path(encoder_body).modules() if isinstance(m, weighted)][-1]


@torch.no_grad()
def start_linear_paths(
    encoder_body, decoder_body, encoder_weight, decoder_weight, decoder_bias=None
):
    """Make an encoder and decoder body start as the given linear autoencoder.

    With :class:`LinearShortcut` bodies the linear paths get the weights and
    the last layer of each nonlinear path is zeroed, so the network's first
    output is exactly the linear model and training can only add to it. A
    body that is a single linear layer (a linear autoencoder) gets the
    weights itself, with zero biases. ``decoder_weight=None`` leaves the
    decoder's weights as they are; ``decoder_bias`` (one per feature, for a
    bounded output) goes into the bias of the decoder's last layer.
    """
    bodies = ((encoder_body, encoder_weight, None), (decoder_body, decoder_weight, decoder_bias))
    for body, weight, bias in bodies:
        last = last_weighted_layer(body)
        if isinstance(body, LinearShortcut):
            target = body.linear
            last.weight.zero_()
            last.bias.zero_()
        else:
            target = last
            if weight is not None:
                target.bias.zero_()
        if weight is not None:
            target.weight.copy_(torch.as_tensor(weight, dtype=target.weight.dtype))
        if bias is not None:
            # A transposed convolution has one bias per channel: the mean of
            # the channel's features (flattened channel by channel).
            bias = torch.as_tensor(bias, dtype=last.bias.dtype).reshape(last.bias.numel(), -1)
            last.bias.copy_(bias.mean(dim=1))


def has_linear_start(body):
    """Whether :func:`start_linear_paths` can start ``body`` as a linear map."""
    return isinstance(body, LinearShortcut) or (
        isinstance(body, nn.Sequential) and len(body) == 1 and isinstance(body[0], nn.Linear)
    )


class InputScaler(nn.Module):
    """Centre and scale the encoder's input, feature by feature.

    This reparameterises the first layer only; the reconstruction objective
    is measured by :class:`OutputLayer`, in the data's own units.
    """

    def __init__(self, center, scale):
        super().__init__()
        self.register_buffer("center", torch.as_tensor(center, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

    def forward(self, x):
        return (x - self.center) / self.scale


class OutputLayer(nn.Module):
    """Map the decoder's pre-activations back to the units of the data.

    A ``"linear"`` output lives in the scaled space of :class:`InputScaler`
    and is mapped back by its inverse; ``"sigmoid"`` and ``"tanh"`` outputs
    already live in the data's own bounded range.
    """

    def __init__(self, activation, center, scale):
        super().__init__()
        if activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"Unknown output activation {activation!r}.")
        self.activation = activation
        self.register_buffer("center", torch.as_tensor(center, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

    def forward(self, logits):
        if self.activation == "linear":
            return logits * self.scale + self.center
        if self.activation == "sigmoid":
            return torch.sigmoid(logits)
        return torch.tanh(logits)

    def residual(self, logits, x):
        """Return ``(reconstruction - x) / scale`` without losing precision.

        For a linear output the difference is taken in the scaled space, so
        data with a large offset keeps float32 precision.
        """
        if self.activation == "linear":
            return logits - (x - self.center) / self.scale
        return (self(logits) - x) / self.scale


def _conv_block(layer, n_channels, activation, batch_norm):
    norm = [nn.BatchNorm2d(n_channels)] if batch_norm else []
    return [layer, *norm, ACTIVATIONS[activation]()]


def conv_output_shape(input_shape, channels):
    """Shape (channels, height, width) after the encoder's stride-2 convolutions."""
    _, height, width = input_shape
    for _ in channels:
        height, width = (height + 1) // 2, (width + 1) // 2
    return (channels[-1] if channels else input_shape[0], height, width)


class ConvEncoderBody(nn.Module):
    """Flat images to a code: stride-2 3x3 convolutions, then dense layers.

    Parameters
    ----------
    input_shape : tuple (channels, height, width)
    channels : tuple of int
        Output channels of each convolution; each halves height and width
        (rounding up).
    dense_sizes : tuple of int
        Widths of the dense layers after flattening, ending with the code.
    """

    def __init__(self, input_shape, channels, dense_sizes, activation, dropout, batch_norm):
        super().__init__()
        self.input_shape = tuple(input_shape)
        layers, n_in = [], input_shape[0]
        for n_out in channels:
            conv = nn.Conv2d(n_in, n_out, 3, stride=2, padding=1)
            layers += _conv_block(conv, n_out, activation, batch_norm)
            n_in = n_out
        self.convs = nn.Sequential(*layers)
        n_flat = math.prod(conv_output_shape(input_shape, channels))
        self.dense = dense_stack(
            (n_flat, *dense_sizes), activation, dropout=dropout, batch_norm=batch_norm
        )

    def forward(self, x):
        return self.dense(self.convs(x.reshape(-1, *self.input_shape)).flatten(1))


class ConvDecoderBody(nn.Module):
    """A code back to flat images, mirroring :class:`ConvEncoderBody`.

    Dense layers up to the encoder's last feature map, then stride-2
    transposed convolutions that double height and width; the result is
    cropped to the input's exact height and width (odd sizes included).
    """

    def __init__(self, input_shape, channels, dense_sizes, activation, dropout, batch_norm):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.feature_shape = conv_output_shape(input_shape, channels)
        self.dense = dense_stack(
            (*dense_sizes, math.prod(self.feature_shape)),
            activation,
            activate_last=True,
            dropout=dropout,
            batch_norm=batch_norm,
        )
        layers, outputs = [], [*channels[-2::-1], input_shape[0]]
        n_in = self.feature_shape[0]
        for i, n_out in enumerate(outputs):
            deconv = nn.ConvTranspose2d(n_in, n_out, 3, stride=2, padding=1, output_padding=1)
            last = i == len(outputs) - 1
            layers += [deconv] if last else _conv_block(deconv, n_out, activation, batch_norm)
            n_in = n_out
        self.deconvs = nn.Sequential(*layers)

    def forward(self, code):
        maps = self.deconvs(self.dense(code).reshape(-1, *self.feature_shape))
        _, height, width = self.input_shape
        return maps[:, :, :height, :width].flatten(1)


class Encoder(nn.Module):
    """Data in the user's units to codes: an :class:`InputScaler`, then a body."""

    def __init__(self, scaler, body):
        super().__init__()
        self.scaler = scaler
        self.body = body

    def forward(self, x):
        return self.body(self.scaler(x))


class Decoder(nn.Module):
    """Codes back to the data's units: a body, then an :class:`OutputLayer`."""

    def __init__(self, body, output):
        super().__init__()
        self.body = body
        self.output = output

    def forward(self, code):
        return self.output(self.body(code))


def dense_encoder_decoder(
    n_features,
    hidden_layer_sizes,
    n_components,
    *,
    activation,
    output_activation,
    center,
    scale,
    input_scales=None,
    encoder_outputs=None,
    dropout=0.0,
    batch_norm=False,
    linear_shortcut=False,
    conv=None,
):
    """An encoder and its mirrored decoder, both in the data's units.

    Parameters
    ----------
    n_features, n_components : int
    hidden_layer_sizes : tuple of int
        Encoder widths from the input inwards; the decoder mirrors them.
    activation, output_activation : str
    center : array of shape (n_features,)
    scale : float
        The data's centre and common scale (see :class:`OutputLayer`).
    input_scales : float or array of shape (n_features,), default=None
        What the encoder divides its centred input by; ``scale`` if None.
    encoder_outputs : int, default=None
        Width of the encoder's last layer when it is not ``n_components``
        (e.g. ``2 * n_components`` for a posterior's means and variances).
    dropout, batch_norm
        See :func:`dense_stack`.
    linear_shortcut : bool, default=False
        Add a linear path beside each of encoder and decoder
        (:class:`LinearShortcut`), when there are hidden layers.
    conv : tuple (input_shape, channels), default=None
        Convolutional bodies (:class:`ConvEncoderBody`,
        :class:`ConvDecoderBody`) for flat images of ``input_shape``, with
        ``hidden_layer_sizes`` as the dense layers between the last feature
        map and the code.

    Returns
    -------
    encoder : Encoder
        An :class:`InputScaler` (``encoder.scaler``), then ``encoder.body``.
    decoder : Decoder
        ``decoder.body``, then an :class:`OutputLayer` (``decoder.output``).

    Examples
    --------
    >>> enc, dec = dense_encoder_decoder(
    ...     784, (128,), 2, activation="relu", output_activation="sigmoid",
    ...     center=0.0, scale=1.0)
    >>> [m.out_features for m in enc.modules() if isinstance(m, nn.Linear)]
    [128, 2]
    """
    encoder_sizes = (n_features, *hidden_layer_sizes, encoder_outputs or n_components)
    decoder_sizes = (n_components, *hidden_layer_sizes[::-1], n_features)
    layers = dict(dropout=dropout, batch_norm=batch_norm)
    if conv is None:
        encoder_body = dense_stack(encoder_sizes, activation, **layers)
        decoder_body = dense_stack(decoder_sizes, activation, **layers)
    else:
        input_shape, channels = conv
        encoder_body = ConvEncoderBody(
            input_shape, channels, encoder_sizes[1:], activation, **layers
        )
        decoder_body = ConvDecoderBody(
            input_shape, channels, decoder_sizes[:-1], activation, **layers
        )
    if linear_shortcut and (hidden_layer_sizes or conv is not None):
        encoder_body = LinearShortcut(encoder_body, encoder_sizes[0], encoder_sizes[-1])
        decoder_body = LinearShortcut(decoder_body, decoder_sizes[0], decoder_sizes[-1])
    encoder = Encoder(
        InputScaler(center, scale if input_scales is None else input_scales), encoder_body
    )
    decoder = Decoder(decoder_body, OutputLayer(output_activation, center, scale))
    return encoder, decoder
