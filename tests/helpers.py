"""Helpers the test modules share (fixtures live in conftest.py)."""

import io
import os
import pickle
import tempfile

import joblib

import skae


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
