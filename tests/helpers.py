"""Helpers the test modules share (fixtures live in conftest.py)."""

import io
import os
import pickle
import tempfile

import joblib

import skae

# The one set of fast parameters every test starts from: a fit takes a few
# milliseconds. Tests override only what they probe (conftest.py's factories
# ``make_autoencoder``, ``make_vae`` and ``make_estimator`` apply it).
FAST = {
    "hidden_layer_sizes": (16,),
    "max_epochs": 3,
    "batch_size": 32,
    "random_state": 0,
    # Bit-identical results are promised on CPU; GPU tests ask for "cuda" explicitly.
    "device": "cpu",
}


def pickle_round_trip(estimator):
    return pickle.loads(pickle.dumps(estimator))


def joblib_round_trip(estimator):
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    buffer.seek(0)
    return joblib.load(buffer)


def save_load_round_trip(estimator):
    """Through skae's own safe file format."""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.skae")
        estimator.save(path)
        return skae.load(path)
