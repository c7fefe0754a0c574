"""Which defaults generalise: candidate settings side by side on several data sets.

Each candidate is a set of parameters on top of ``AutoencoderTransformer``'s
defaults (only ``n_components`` and ``random_state=0`` set otherwise). Every
candidate is fitted on a training split and scored on the held-out split of:

- ``mnist``: the benchmark split of MNIST's t10k images (8,000 / 2,000,
  ``random_state=0``), pixels in [0, 1];
- ``mnist-b``: the same images split again with ``random_state=1``, so that a
  choice is not tuned to one split;
- ``digits``: scikit-learn's digits, raw pixel values 0-16;
- ``swiss-roll``: a Swiss roll (2,000 points, a curved 2-D manifold) lifted
  to 100 features by a fixed random nonlinear map (``sin`` of random
  projections), 75/25 split;
- ``wine`` and ``breast-cancer``: raw tabular data on very different scales
  (not standardised), where an autoencoder should stay near PCA.

Columns: ``mse/PCA`` (test reconstruction error over PCA's at the same k),
``fit s``, ``to 5% s`` (seconds of training until the test error first comes
within 5% of its final value: time to quality; the evaluations themselves
are not counted), ``epochs`` and ``5-NN`` (accuracy of
``KNeighborsClassifier(5)`` on the test codes; for the Swiss roll the
classes are six bands along the roll).

Run ``python benchmarks/bench_defaults.py --help`` for the options.
"""

import argparse
import sys
import time
import warnings
from unittest import mock

import numpy as np
import torch
from _common import (
    add_common_arguments,
    check_common_arguments,
    comma_list,
    digits_split,
    emit,
    environment,
    environment_line,
    fail,
    markdown_table,
    mnist_split,
    progress,
)
from sklearn.datasets import load_breast_cancer, load_wine, make_swiss_roll
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

import skae._fitting
from skae import AutoencoderTransformer
from skae._training import Callback

SEED = 0
WITHIN = 0.05
OLD = {"activation": "relu", "output_activation": "linear", "early_stopping": False}
CANDIDATES = {
    "0.1 defaults (relu + linear output)": OLD,
    "auto output": {**OLD, "output_activation": "auto"},
    "auto output + early stopping": {**OLD, "output_activation": "auto", "early_stopping": True},
    "elu": {**OLD, "activation": "elu"},
    "auto output + elu": {**OLD, "output_activation": "auto", "activation": "elu"},
    "auto output + elu + early stopping": {
        "output_activation": "auto",
        "activation": "elu",
        "early_stopping": True,
    },
    "defaults (elu + auto output + early_stopping=auto)": {},
}


def swiss_roll_split():
    """A Swiss roll lifted to 100 features by ``sin`` of fixed random projections."""
    points, position = make_swiss_roll(2000, noise=0.05, random_state=SEED)
    rng = np.random.default_rng(SEED)
    points = (points - points.mean(axis=0)) / points.std(axis=0)
    X = np.sin(points @ rng.normal(0, 1.0, (3, 100)) + rng.uniform(0, np.pi, 100))
    bands = np.digitize(position, np.quantile(position, np.linspace(0, 1, 7)[1:-1]))
    return train_test_split(X, bands, test_size=0.25, stratify=bands, random_state=SEED)


def tabular_split(load):
    X, y = load(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=SEED)


# name -> (loader taking the MNIST folder, code sizes)
DATASETS = {
    "mnist": (lambda home: mnist_split(home), (2, 10, 32)),
    "mnist-b": (lambda home: mnist_split(home, random_state=1), (2, 10)),
    "digits": (lambda home: digits_split(), (2, 10)),
    "swiss-roll": (lambda home: swiss_roll_split(), (2,)),
    "wine": (lambda home: tabular_split(load_wine), (2,)),
    "breast-cancer": (lambda home: tabular_split(load_breast_cancer), (2,)),
}


def test_error(network, X_test):
    """Mean squared test reconstruction error of ``network`` (in evaluation mode)."""
    was_training = network.training
    network.eval()
    device = next(network.parameters()).device
    with torch.inference_mode():
        x = torch.as_tensor(X_test, dtype=torch.float32, device=device)
        error = float(((network.decode(network.encode(x)) - x) ** 2).mean())
    network.train(was_training)
    return error


class _Trace(Callback):
    """Before every epoch, record ``measure(network)`` and the training time to get there."""

    def __init__(self, network, measure, started):
        self.network, self.measure, self.started = network, measure, started
        self.trace, self.evaluating = [], 0.0

    def on_epoch_begin(self, epoch):
        now = time.perf_counter()
        self.trace.append((now - self.started - self.evaluating, self.measure(self.network)))
        self.evaluating += time.perf_counter() - now


class TimedAutoencoder(AutoencoderTransformer):
    """Records a measure of the network before every epoch, and the training time to get there.

    Adds an epoch hook (``skae._training.Callback``) to the fitting call's
    own; the measurements' time is not counted. Call :meth:`timed_fit`
    (``measure(network)`` returns what is recorded: by default the test
    reconstruction error).
    """

    def timed_fit(self, X, X_test, measure=None):
        """Fit on ``X``; return the training seconds (measurements excluded)."""
        measure = measure or (lambda network: test_error(network, X_test))
        started, traces = time.perf_counter(), []
        own_callbacks = skae._fitting.fit_callbacks

        def with_trace(plan, state, *args):
            traces.append(_Trace(state.network, measure, started))
            return [*own_callbacks(plan, state, *args), traces[-1]]

        with mock.patch.object(skae._fitting, "fit_callbacks", with_trace):
            self.fit(X)
        self._trace = traces[-1].trace
        return time.perf_counter() - started - traces[-1].evaluating


def time_to_quality(trace, final_error, fit_seconds):
    """Training seconds until the test error first came within WITHIN of ``final_error``."""
    for seconds, error in trace:
        if error <= final_error * (1 + WITHIN):
            return seconds
    return fit_seconds


def evaluate(params, k, X_train, X_test, y_train, y_test, pca_error):
    model = TimedAutoencoder(n_components=k, random_state=SEED, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit_seconds = model.timed_fit(X_train, X_test)
    reconstruction = model.inverse_transform(model.transform(X_test))
    error = float(np.mean((reconstruction - X_test) ** 2))
    knn = KNeighborsClassifier(5).fit(model.transform(X_train), y_train)
    return {
        "mse": error,
        "mse_ratio_to_pca": error / pca_error,
        "fit_seconds": fit_seconds,
        "seconds_to_quality": time_to_quality(model._trace, error, fit_seconds),
        "epochs": model.n_iter_,
        "knn_accuracy": float(knn.score(model.transform(X_test), y_test)),
        "output_activation": model._state.spec.output_activation,
    }


def run(datasets, candidates, ks, data_home):
    rows = []
    for name in datasets:
        load, default_ks = DATASETS[name]
        X_train, X_test, y_train, y_test = load(data_home)
        X_train, X_test = np.asarray(X_train, np.float32), np.asarray(X_test, np.float32)
        for k in ks or default_ks:
            pca = PCA(k, random_state=SEED).fit(X_train)
            pca_error = float(np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2))
            for candidate in candidates:
                progress(f"{name} k={k} {candidate} ...")
                scores = evaluate(
                    CANDIDATES[candidate], k, X_train, X_test, y_train, y_test, pca_error
                )
                progress(
                    f"  mse/PCA {scores['mse_ratio_to_pca']:.3f}, {scores['fit_seconds']:.1f} s"
                )
                rows.append({"dataset": name, "k": k, "candidate": candidate, **scores})
    return rows


COLUMNS = (
    ("dataset", "dataset"),
    ("k", "k"),
    ("candidate", "candidate"),
    ("output", "output_activation"),
    ("mse/PCA", "mse_ratio_to_pca"),
    ("5-NN", "knn_accuracy"),
    ("fit s", "fit_seconds"),
    ("to 5% s", "seconds_to_quality"),
    ("epochs", "epochs"),
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated subset")
    parser.add_argument("--candidates", default=",".join(CANDIDATES), help="comma-separated subset")
    parser.add_argument("--ks", default=None, help="comma-separated code sizes for every dataset")
    args = parser.parse_args(argv)
    check_common_arguments(parser, args)
    try:
        args.datasets = comma_list(args.datasets, DATASETS)
        args.candidates = comma_list(args.candidates, CANDIDATES)
        args.ks = None if args.ks is None else comma_list(args.ks, convert=int)
    except ValueError as error:
        parser.error(f"invalid list: {error}")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        rows = run(args.datasets, args.candidates, args.ks, args.data_home)
    except FileNotFoundError as error:
        fail(str(error))
    env = environment("cpu")
    text = "\n".join(
        [
            "## Candidate defaults, test reconstruction error / PCA's",
            "",
            environment_line(env),
            "Candidates: " + "; ".join(f"{name}: {CANDIDATES[name]}" for name in args.candidates),
            "",
            markdown_table(
                [title for title, _ in COLUMNS], [[row[key] for _, key in COLUMNS] for row in rows]
            ),
        ]
    )
    payload = {"environment": env, "command": sys.argv, "candidates": CANDIDATES, "rows": rows}
    emit(text, payload, args.output, args.json)


if __name__ == "__main__":
    main()
