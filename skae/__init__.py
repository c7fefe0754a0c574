"""skae: scikit-learn transformers that reduce dimensionality with PyTorch autoencoders."""

from ._autoencoder import AutoencoderTransformer
from ._training import DivergenceError

__all__ = ["AutoencoderTransformer", "DivergenceError"]
__version__ = "0.1.0"
