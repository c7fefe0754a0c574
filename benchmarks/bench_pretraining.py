"""Does greedy layer-wise pretraining help a deep, narrow autoencoder?

The stack of Hinton and Salakhutdinov (2006), 784-1000-500-250-30, trained on
the MNIST benchmark split two ways at the same total epoch budget:

- ``random``: random initialisation, ``max_epochs = budget``;
- ``layerwise``: ``pretrain="layerwise"`` with ``pretrain_epochs`` per layer
  pair (4 pairs), then ``max_epochs = budget - 4 * pretrain_epochs`` of
  training the whole stack. A pretraining epoch of an inner pair costs less
  than an epoch of the whole stack, so this favours neither side on time;
  the table reports the seconds too.

Each is run with and without the PCA-started linear shortcut (the default),
for each hidden activation asked for. Scored by the test reconstruction
error relative to PCA with 30 components.

Run ``python benchmarks/bench_pretraining.py --help`` for the options.
"""

import argparse
import sys
import time
import warnings

import numpy as np
from _common import (
    MNIST_NOTE,
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
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer

SEED = 0
HIDDEN = (1000, 500, 250)
N_COMPONENTS = 30
N_PAIRS = len(HIDDEN) + 1


def test_mse(estimator, X):
    return float(np.mean((estimator.inverse_transform(estimator.transform(X)) - X) ** 2))


def configurations(activations, budget, pretrain_epochs, shortcuts):
    """``(name, params)`` for every activation, shortcut and initialisation."""
    fine_tune = budget - N_PAIRS * pretrain_epochs
    for activation in activations:
        for shortcut in shortcuts:
            common = dict(activation=activation, linear_shortcut=shortcut)
            yield "random", dict(common, max_epochs=budget)
            yield (
                "layerwise",
                dict(
                    common,
                    pretrain="layerwise",
                    pretrain_epochs=pretrain_epochs,
                    max_epochs=fine_tune,
                ),
            )


def run(X_train, X_test, activations, budget, pretrain_epochs, shortcuts, seeds):
    pca_mse = test_mse(PCA(N_COMPONENTS, random_state=SEED).fit(X_train), X_test)
    rows = []
    for seed in seeds:
        for init, params in configurations(activations, budget, pretrain_epochs, shortcuts):
            progress(f"seed {seed} {init} {params} ...")
            estimator = AutoencoderTransformer(
                N_COMPONENTS, hidden_layer_sizes=HIDDEN, random_state=seed, **params
            )
            started = time.perf_counter()
            estimator.fit(X_train)
            seconds = time.perf_counter() - started
            mse = test_mse(estimator, X_test)
            pretrained = estimator.pretrain_loss_curves_ or []
            rows.append(
                {
                    "activation": params["activation"],
                    "linear_shortcut": params["linear_shortcut"],
                    "init": init,
                    "seed": seed,
                    "pretrain_epochs": sum(len(curve) for curve in pretrained),
                    "epochs": estimator.n_iter_,
                    "train_mse": estimator.loss_curve_[-1],
                    "test_mse": mse,
                    "test_mse_ratio_to_pca": mse / pca_mse,
                    "fit_seconds": seconds,
                }
            )
            progress(f"  test mse {mse:.5f} ({mse / pca_mse:.3f} x PCA), {seconds:.0f} s")
    return pca_mse, rows


def report(pca_mse, rows, env, budget, pretrain_epochs):
    header = [
        "## Layer-wise pretraining vs random initialisation, 784-1000-500-250-30",
        "",
        environment_line(env),
        MNIST_NOTE,
        f"Budget {budget} epochs: random init trains {budget}; layer-wise pretrains "
        f"{pretrain_epochs} per pair ({N_PAIRS} pairs), then trains the whole stack "
        f"{budget - N_PAIRS * pretrain_epochs}. Other parameters default. "
        f"PCA test mse at k={N_COMPONENTS}: {pca_mse:.5f}.",
    ]
    columns = (
        "activation",
        "linear_shortcut",
        "init",
        "seed",
        "pretrain_epochs",
        "epochs",
        "train_mse",
        "test_mse",
        "test_mse_ratio_to_pca",
        "fit_seconds",
    )
    table = markdown_table(columns, [[row[c] for c in columns] for row in rows])
    return "\n".join(header) + "\n\n" + table


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument(
        "--activations", default="relu,tanh", help="comma-separated (default: relu,tanh)"
    )
    parser.add_argument("--budget", type=int, default=60, help="total epochs (default: 60)")
    parser.add_argument(
        "--pretrain-epochs", type=int, default=5, help="epochs per layer pair (default: 5)"
    )
    parser.add_argument(
        "--shortcuts",
        default="False,True",
        help="linear_shortcut values, comma-separated (default: False,True)",
    )
    parser.add_argument(
        "--seeds", default="0", help="random_state values, comma-separated (default: 0)"
    )
    args = parser.parse_args(argv)
    check_common_arguments(parser, args)
    try:
        args.activations = comma_list(args.activations)
        args.shortcuts = [s == "True" for s in comma_list(args.shortcuts, {"False", "True"})]
        args.seeds = comma_list(args.seeds, convert=int)
    except ValueError as error:
        parser.error(f"invalid list: {error}")
    if args.pretrain_epochs < 1 or args.budget <= N_PAIRS * args.pretrain_epochs:
        parser.error(f"need --pretrain-epochs >= 1 and --budget > {N_PAIRS} x --pretrain-epochs")
    return args


def main(argv=None):
    args = parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    try:
        X_train, X_test, _, _ = mnist_split(args.data_home)
    except FileNotFoundError as error:
        fail(str(error))
    pca_mse, rows = run(
        X_train,
        X_test,
        args.activations,
        args.budget,
        args.pretrain_epochs,
        args.shortcuts,
        args.seeds,
    )
    env = environment("cpu")
    payload = {
        "environment": env,
        "settings": {
            "activations": args.activations,
            "budget": args.budget,
            "pretrain_epochs": args.pretrain_epochs,
            "shortcuts": args.shortcuts,
            "seeds": args.seeds,
            "command": sys.argv,
        },
        "pca_test_mse": pca_mse,
        "rows": rows,
    }
    emit(
        report(pca_mse, rows, env, args.budget, args.pretrain_epochs),
        payload,
        args.output,
        args.json,
    )


if __name__ == "__main__":
    main()
