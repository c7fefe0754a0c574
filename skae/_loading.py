"""``skae.load``: a fitted estimator from its file, checked before anything is built."""

import os

from ._autoencoder import AutoencoderTransformer
from ._base import BaseAutoencoder
from ._persistence import read_file
from ._vae import VAETransformer

# The classes a file may name; a name is looked up here, never imported.
_CLASSES = {cls.__name__: cls for cls in (AutoencoderTransformer, VAETransformer)}


def plan_for(name, params):
    """The fit plan of skae's class ``name`` with ``params`` (see ``skae._persistence``)."""
    if name not in _CLASSES:
        raise ValueError(f"unknown estimator {name!r:.60}")
    return _CLASSES[name]._saved_plan(params)


def load(
    path: str | os.PathLike, device: str | None = None, *, key: str | bytes | None = None
) -> BaseAutoencoder:
    """Load an estimator saved with :meth:`~skae.AutoencoderTransformer.save`.

    Only JSON and tensor data are read: no code in the file is run, and the
    whole file is checked against itself (every field's type and range, the
    tensors against the network and optimiser the header describes) before
    anything is built from it, so a damaged or doctored file is an error,
    never a crash or a silently different model.

    Parameters
    ----------
    path : str or path-like
        A file written by ``save``.
    device : str, default=None
        Where to put the network: None for the CPU, or any value of the
        estimators' ``device`` parameter ("auto", "cuda", ...). A model
        trained on a GPU loads on a CPU-only machine.
    key : str or bytes, default=None
        The key the file was saved with (``save(path, key=...)``): the file
        must carry an HMAC-SHA256 made with that key, so a file changed by
        anyone without the key is refused. None checks the file's SHA-256,
        which detects accidental corruption only (whoever edits a file can
        recompute it).

    Returns
    -------
    estimator : AutoencoderTransformer or VAETransformer
        Fitted: it transforms, and continues training (``partial_fit``,
        ``warm_start``), exactly as the saved one.

    Raises
    ------
    ValueError
        When the path is not a regular file (a folder, a FIFO, a device),
        or the file is not a skae model file, is of an unknown format
        version, is truncated, corrupted or inconsistent (naming the field),
        or does not match ``key``.
    OSError
        When the file cannot be read (``FileNotFoundError`` when missing).
    """
    saved = read_file(path, plan_for, device=device, key=key)
    return _CLASSES[saved.class_name]._from_saved(saved)
