"""skae: scikit-learn transformers that reduce dimensionality with PyTorch autoencoders."""

from importlib.metadata import PackageNotFoundError, version

from ._autoencoder import AutoencoderTransformer
from ._config import config_context, get_config, set_config
from ._loading import load
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

try:
    __version__ = version("skae")  # the one source: pyproject.toml
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
