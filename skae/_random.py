"""Seeds and generators drawn from a ``random_state``, never from global RNGs."""

import numpy as np
import torch
from sklearn.utils import check_random_state

# What a ``random_state`` parameter accepts (scikit-learn's convention).
RandomStateLike = int | np.random.RandomState | None

_SEED_LIMIT = np.iinfo(np.int32).max
# Spreads the streams of consecutive calls of one seed apart.
_STREAM_STRIDE = 7919


def seeds(random_state, n):
    """``n`` integer seeds drawn from ``random_state``.

    ``None`` draws fresh entropy from the operating system instead of
    numpy's global RNG, so fitting never changes the user's random state.
    """
    if isinstance(random_state, (bool, np.bool_)):
        # check_random_state takes True for the seed 1; the estimators' own
        # parameter check refuses booleans, and so does every other entry.
        raise ValueError(
            f"random_state must be an int, a RandomState instance or None; got {random_state!r}."
        )
    if random_state is None:
        return [int(s) for s in np.random.default_rng().integers(_SEED_LIMIT, size=n)]
    return [int(s) for s in check_random_state(random_state).randint(_SEED_LIMIT, size=n)]


def seeded_generator(seed, device="cpu", stream=None):
    """A ``torch.Generator`` on ``device`` seeded from ``seed``.

    ``stream`` (e.g. the epochs run so far) gives each continued fit its own
    stream from the same seed; None seeds with ``seed`` itself.
    """
    if stream is not None:
        seed = int(seed) * _STREAM_STRIDE + int(stream)
    return torch.Generator(device=device).manual_seed(int(seed))
