"""Time to quality of 2-D maps: the neighbour objective against the plain autoencoder.

On the MNIST benchmark split (8,000 / 2,000), at k=2, each model's test
codes are measured before every epoch: the 5-NN accuracy of a
``KNeighborsClassifier(5)`` fitted on the training codes, and the test
reconstruction error. The report gives the final values, the training
seconds (measurements excluded) and the seconds until the 5-NN accuracy
first came within 0.01 of its final value.

Run ``SKAE_DATA_HOME=... python benchmarks/bench_time_to_quality.py``.
"""

import argparse
import sys
import warnings

import torch
from _common import (
    add_common_arguments,
    check_common_arguments,
    emit,
    environment,
    environment_line,
    markdown_table,
    mnist_split,
    progress,
)
from bench_defaults import TimedAutoencoder, test_error
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import KNeighborsClassifier

SEED = 0
WITHIN = 0.01
MODELS = {
    "AE (defaults)": {},
    "AE neighbor_weight=1": {"neighbor_weight": 1.0},
    "AE neighbor_weight=1, relu, linear output": {
        "neighbor_weight": 1.0,
        "activation": "relu",
        "output_activation": "linear",
    },
}


def map_quality(X_train, X_test, y_train, y_test):
    """``measure(network)``: the test codes' 5-NN accuracy and the test error."""

    def measure(network):
        was_training = network.training
        network.eval()
        with torch.inference_mode():
            codes = [
                network.encode(torch.as_tensor(X, dtype=torch.float32)).numpy()
                for X in (X_train, X_test)
            ]
        network.train(was_training)
        knn = KNeighborsClassifier(5).fit(codes[0], y_train)
        return knn.score(codes[1], y_test), test_error(network, X_test)

    return measure


def run(data_home):
    X_train, X_test, y_train, y_test = mnist_split(data_home)
    measure = map_quality(X_train, X_test, y_train, y_test)
    rows = []
    for name, params in MODELS.items():
        progress(f"{name} ...")
        model = TimedAutoencoder(n_components=2, random_state=SEED, **params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            seconds = model.timed_fit(X_train, X_test, measure)
        final_accuracy, final_error = measure(model._state.network)
        reached = [s for s, (accuracy, _) in model._trace if accuracy >= final_accuracy - WITHIN]
        rows.append(
            {
                "model": name,
                "knn_accuracy": final_accuracy,
                "test_mse": final_error,
                "fit_seconds": seconds,
                "seconds_to_quality": reached[0] if reached else seconds,
                "epochs": model.n_iter_,
                "trace": [(s, a, e) for s, (a, e) in model._trace],
            }
        )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    check_common_arguments(parser, args)
    rows = run(args.data_home)
    env = environment("cpu")
    table = markdown_table(
        ["model", "5-NN", "test MSE", "fit s", f"s to 5-NN within {WITHIN}", "epochs"],
        [
            [
                r["model"],
                r["knn_accuracy"],
                r["test_mse"],
                r["fit_seconds"],
                r["seconds_to_quality"],
                r["epochs"],
            ]
            for r in rows
        ],
    )
    text = "## Time to quality of 2-D MNIST maps\n\n" + environment_line(env) + "\n\n" + table
    emit(text, {"environment": env, "command": sys.argv, "rows": rows}, args.output, args.json)


if __name__ == "__main__":
    main()
