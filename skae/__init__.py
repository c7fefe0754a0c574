"""skae: scikit-learn transformers that reduce dimensionality with PyTorch autoencoders."""

from ._autoencoder import AutoencoderTransformer
from ._config import config_context, get_config, set_config
from ._persistence import load
from ._training import DivergenceError
from ._vae import VAETransformer

__all__ = [
    "AutoencoderTransformer",
    "DivergenceError",
    "VAETransformer",
    "config_context",
    "get_config",
    "load",
    "set_config",
]
__version__ = "0.1.0"
