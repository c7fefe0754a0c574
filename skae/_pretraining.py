"""Greedy layer-wise pretraining of a model's dense encoder and decoder.

Each encoder layer and its mirror in the decoder are trained as a shallow
autoencoder of the codes that the layers below produce (Bengio et al. 2007,
the autoencoder form of Hinton and Salakhutdinov 2006), from the outside in.
The layers keep the weights they learn; fine-tuning of the whole stack follows
in the estimator's ordinary training.
"""

import torch
from torch import nn

from ._losses import mean_squared_error
from ._models import corrupted, full_precision
from ._networks import drawing_from, nonlinear_path


def linear_blocks(stack):
    """Split a dense stack into blocks that each start at an ``nn.Linear``.

    A block holds one linear layer and what follows it up to the next one
    (batch norm, activation, dropout).
    """
    blocks = []
    for module in stack:
        if isinstance(module, nn.Linear):
            blocks.append([])
        blocks[-1].append(module)
    return [nn.Sequential(*block) for block in blocks]


def layer_pairs(model):
    """The (encoder block, mirrored decoder block) pairs of ``model``'s dense stacks,
    outermost first (the plan refuses pretraining of other architectures)."""
    encoder_stack = nonlinear_path(model.encoder.body)
    decoder_stack = nonlinear_path(model.decoder.body)
    encoder_blocks = linear_blocks(encoder_stack)
    decoder_blocks = linear_blocks(decoder_stack)
    return list(zip(encoder_blocks, reversed(decoder_blocks), strict=True))


class LayerPair(nn.Module):
    """One encoder block and its mirror, trained to reconstruct their input.

    Parameters
    ----------
    below : nn.Sequential
        The frozen input scaler and encoder blocks under this pair; their
        output is what the pair reconstructs.
    encoder_block, decoder_block : nn.Sequential
        The blocks being trained (shared with the model, so the model keeps
        what they learn).
    model : ReconstructionModel
        Supplies the training noise and, for the outermost pair, the output
        layer: that pair reconstructs the data itself, in the model's units.
    outermost : bool
    """

    def __init__(self, below, encoder_block, decoder_block, model, outermost):
        super().__init__()
        self.below = below
        self.encoder_block = encoder_block
        self.decoder_block = decoder_block
        self.output_layer = model.output_layer if outermost else None
        self.noise, self.noise_level = model.objective.noise, model.objective.noise_level
        self.noise_scale = model.output_layer.scale
        # A VAE's innermost encoder layer also outputs log-variances; the
        # decoder reads the means.
        self.code_width = decoder_block[0].in_features

    def train(self, mode=True):
        super().train(mode)
        self.below.eval()
        return self

    def trainable_parameters(self):
        return [*self.encoder_block.parameters(), *self.decoder_block.parameters()]

    def sample_losses(self, x, generator=None):
        # The frozen layers run again at every batch instead of caching their
        # output for the whole data set: it costs a forward pass but no
        # memory, and works for sparse and large inputs alike.
        with torch.no_grad():
            target = self.below(x)
            noisy = x
            if self.training:
                noisy = corrupted(x, self.noise, self.noise_level, self.noise_scale, generator)
            source = target if noisy is x else self.below(noisy)
        with drawing_from(self, generator):
            code = self.encoder_block(source)[:, : self.code_width]
            output = full_precision(self.decoder_block(code))
        if self.output_layer is not None:
            return mean_squared_error(self.output_layer.residual(output, x))
        return mean_squared_error(output - full_precision(target))


def pretrain_layerwise(model, source, train_pair):
    """Pretrain ``model``'s dense layers pair by pair, outermost first.

    Parameters
    ----------
    model : ReconstructionModel
        With a dense encoder and decoder (see
        :func:`~skae._networks.dense_encoder_decoder`); changed in place.
    source : RowSource
        The training rows.
    train_pair : callable
        ``train_pair(pair, source, label)`` trains one :class:`LayerPair`
        (``label`` says which, e.g. ``"2/4"``) and returns its loss per epoch.

    Returns
    -------
    loss_curves : list of list of float
        The reconstruction loss per epoch of each pair, outermost first.
    """
    below = [model.encoder.scaler]
    curves = []
    pairs = layer_pairs(model)
    for depth, (encoder_block, decoder_block) in enumerate(pairs):
        pair = LayerPair(nn.Sequential(*below), encoder_block, decoder_block, model, depth == 0)
        curves.append(train_pair(pair, source, f"{depth + 1}/{len(pairs)}"))
        below.append(encoder_block)
    return curves
