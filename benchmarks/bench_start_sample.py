"""How many rows the PCA start needs: its reconstruction error by sample size.

A new network starts as a whitened PCA of a random sample of its training
rows (``skae._initialization.pca_sample_rows``: about 2**17 values per
component, from 4M to 16M values). On the MNIST split (8,000 x 784) this
fits ``AutoencoderTransformer`` models that stay at their start (one epoch
at ``learning_rate=1e-300``, no early stopping) with the sample forced to
``--values`` values (16M holds all 8,000 rows), for ``n_components`` 2, 10
and 32 and linear, sigmoid and tanh outputs (tanh on the data mapped to
[-1, 1]), and reports the start's mean squared reconstruction error on the
training rows and on the 2,000 test rows, and its ratio to the 16M start's.

The errors do not depend on timing; run it anywhere. Run
``python benchmarks/bench_start_sample.py --help`` for the options.
"""

import argparse
import sys
import warnings
from unittest import mock

import numpy as np
from _common import (
    add_common_arguments,
    check_common_arguments,
    comma_list,
    emit,
    environment,
    environment_line,
    fail,
    markdown_table,
    mnist_split,
    progress,
)
from sklearn.exceptions import ConvergenceWarning

import skae
import skae._initialization

COMPONENTS = (2, 10, 32)
OUTPUTS = ("linear", "sigmoid", "tanh")
REFERENCE_VALUES = 1 << 24


def start_errors(X_train, X_test, values, n_components, output):
    """Train and test MSE of the PCA start fitted on a sample of ``values`` values."""
    if output == "tanh":
        X_train, X_test = 2 * X_train - 1, 2 * X_test - 1
    estimator = skae.AutoencoderTransformer(
        n_components=n_components,
        output_activation=output,
        max_epochs=1,
        learning_rate=1e-300,
        early_stopping=False,
        random_state=0,
    )
    with (
        mock.patch.object(skae._initialization, "_PCA_VALUES", (values, values)),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X_train)

    def mse(X):
        return float(np.mean((estimator.inverse_transform(estimator.transform(X)) - X) ** 2))

    return mse(X_train), mse(X_test)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument(
        "--values",
        default="4194304,2097152",
        help="comma-separated sample sizes in values, besides the 16M reference "
        "(default: 4M and 2M)",
    )
    args = parser.parse_args(argv)
    check_common_arguments(parser, args)
    try:
        args.values = comma_list(args.values, convert=int)
    except ValueError as error:
        parser.error(f"--values: {error}")
    if min(args.values) < 1:
        parser.error("--values must be positive")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        X_train, X_test = mnist_split(args.data_home)[:2]
    except FileNotFoundError as error:
        fail(str(error))
    rows = []
    for values in (REFERENCE_VALUES, *args.values):
        for n_components in COMPONENTS:
            for output in OUTPUTS:
                train, test = start_errors(X_train, X_test, values, n_components, output)
                rows.append(
                    {
                        "values": values,
                        "rows": min(len(X_train), max(100, values // X_train.shape[1])),
                        "n_components": n_components,
                        "output": output,
                        "train_mse": train,
                        "test_mse": test,
                    }
                )
                progress(f"{values:,} values, k={n_components} {output}: {train:.5f} / {test:.5f}")
    reference = {
        (r["n_components"], r["output"]): r for r in rows if r["values"] == REFERENCE_VALUES
    }
    table = []
    for r in rows:
        base = reference[r["n_components"], r["output"]]
        r["train_ratio"] = r["train_mse"] / base["train_mse"]
        r["test_ratio"] = r["test_mse"] / base["test_mse"]
        table.append(
            [
                f"{r['values']:,}",
                r["rows"],
                r["n_components"],
                r["output"],
                r["train_mse"],
                r["test_mse"],
                f"{r['train_ratio']:.4f}",
                f"{r['test_ratio']:.4f}",
            ]
        )
    env = environment()
    markdown = "\n\n".join(
        [
            "## The PCA start's error by sample size (MNIST split)",
            environment_line(env),
            "Ratios are to the start fitted on all 8,000 training rows (16M values).",
            markdown_table(
                [
                    "values",
                    "rows",
                    "k",
                    "output",
                    "train MSE",
                    "test MSE",
                    "train / all rows",
                    "test / all rows",
                ],
                table,
            ),
        ]
    )
    emit(markdown, {"environment": env, "rows": rows}, args.output, args.json)


if __name__ == "__main__":
    sys.exit(main())
