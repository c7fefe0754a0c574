"""skae: scikit-learn transformers that reduce dimensionality with PyTorch autoencoders."""

from ._autoencoder import AutoencoderTransformer
from ._persistence import load
from ._training import DivergenceError
from ._vae import VAETransformer

__all__ = ["AutoencoderTransformer", "DivergenceError", "VAETransformer", "load"]
__version__ = "0.1.0"
