"""Does the "far from converged" warning fire when more epochs would help?

The evidence behind the rule in ``skae/_callbacks.py``: a fit that runs out
of epochs warns (``ConvergenceWarning``) only when, over its last
``FAR_WINDOW`` epochs, its best training loss still fell by more than
``FAR_TRAINING_SHARE`` per epoch of all it had fallen since the first epoch
(``recent_progress``), and that fall is real against the curve's own noise:
the least-squares slope of the window's losses lies more than
``FAR_STANDARD_ERRORS`` standard errors below zero (``recent_trend``; both
in ``far_from_converged``). Whether more epochs would have helped is measured
directly: each configuration is fitted with ``max_epochs=n`` and again with
``max_epochs=2n``, both with ``n_iter_no_change=10**6`` so that the plateau
rule never stops them early. The learning rate is constant, so the first
``n`` epochs of the two fits are the same training.

Data (all smaller than 5,000 rows, so ``early_stopping="auto"`` holds
nothing out and the warning judges the training loss), each split
``train_test_split(test_size=0.25, random_state=0)``:

- ``digits``: scikit-learn's digits, raw pixel values 0-16;
- ``wine``, ``breast-cancer``, ``iris``: standardised by a ``StandardScaler``
  fitted on the training split.

Configurations: digits, ``AutoencoderTransformer`` k=2, 5, 10 and
``VAETransformer`` k=2 at n=100 (the default ``max_epochs``); digits
``AutoencoderTransformer`` k=2, 5, 10 at n=30; wine, breast cancer and iris
``AutoencoderTransformer`` k=2 at n=100. Every fit is repeated for each seed
(``random_state``; default 0, 1, 2).

Columns, each the median over seeds with the range in brackets:

- ``progress %/epoch``: ``recent_progress(loss_curve_)`` of the n-epoch fit;
- ``trend (SE)``: ``recent_trend(loss_curve_)``, the window's slope in its
  standard errors (negative: falling);
- ``warns``: n-epoch fits that raised the warning, out of the seeds (the JSON
  also records whether ``far_from_converged`` predicted it);
- ``held-out gain %``: ``1 - mse(2n) / mse(n)``, the test reconstruction
  error of ``inverse_transform(transform(X_test))``: what doubling the epochs
  buys on new data;
- ``training gain %``: ``1 - best_loss_(2n) / best_loss_(n)``: what it buys on
  the training loss.

The JSON keeps every fit's loss curve, so another window or threshold can be
judged against the same gains without fitting again.

Run ``python benchmarks/bench_convergence.py --help`` for the options.
"""

import argparse
import sys
import time
import warnings

import numpy as np
from _common import (
    add_common_arguments,
    check_common_arguments,
    comma_list,
    emit,
    environment,
    environment_line,
    markdown_table,
    progress,
)
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderTransformer, VAETransformer
from skae._callbacks import (
    FAR_STANDARD_ERRORS,
    FAR_TRAINING_SHARE,
    FAR_WINDOW,
    far_from_converged,
    recent_progress,
    recent_trend,
)

SPLIT_SEED = 0
TEST_FRACTION = 0.25
NEVER_PLATEAU = 10**6

# name -> (loader of X, standardise)
DATASETS = {
    "digits": (load_digits, False),
    "wine": (load_wine, True),
    "breast-cancer": (load_breast_cancer, True),
    "iris": (load_iris, True),
}
ESTIMATORS = {"AE": AutoencoderTransformer, "VAE": VAETransformer}

# (dataset, estimator, k, n epochs)
CONFIGS = (
    ("digits", "AE", 2, 100),
    ("digits", "AE", 5, 100),
    ("digits", "AE", 10, 100),
    ("digits", "VAE", 2, 100),
    ("digits", "AE", 2, 30),
    ("digits", "AE", 5, 30),
    ("digits", "AE", 10, 30),
    ("wine", "AE", 2, 100),
    ("breast-cancer", "AE", 2, 100),
    ("iris", "AE", 2, 100),
)
QUICK_CONFIGS = (("digits", "AE", 2, 30), ("iris", "AE", 2, 100))


def split(name):
    """Return ``X_train, X_test`` of dataset ``name`` (75/25, standardised where tabular)."""
    load, standardise = DATASETS[name]
    X, _ = load(return_X_y=True)
    X_train, X_test = train_test_split(X, test_size=TEST_FRACTION, random_state=SPLIT_SEED)
    if standardise:
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    return X_train, X_test


def fit_once(estimator, k, epochs, seed, X_train, X_test):
    """Fit for exactly ``epochs`` epochs; return its measurements and warnings."""
    model = ESTIMATORS[estimator](
        n_components=k, random_state=seed, max_epochs=epochs, n_iter_no_change=NEVER_PLATEAU
    )
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X_train)
    seconds = time.perf_counter() - started
    reconstruction = model.inverse_transform(model.transform(X_test))
    return {
        "epochs": model.n_iter_,
        "test_mse": float(np.mean((reconstruction - X_test) ** 2)),
        "best_loss": float(model.best_loss_),
        "progress": recent_progress(model.loss_curve_),
        "trend": recent_trend(model.loss_curve_),
        "far": far_from_converged(model.loss_curve_, FAR_TRAINING_SHARE),
        "convergence_warnings": [
            str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)
        ],
        "fit_seconds": seconds,
        "loss_curve": [float(loss) for loss in model.loss_curve_],
    }


def measure(config, seed, X_train, X_test):
    """One configuration and seed: the n-epoch fit against the 2n-epoch fit."""
    dataset, estimator, k, n = config
    short = fit_once(estimator, k, n, seed, X_train, X_test)
    long = fit_once(estimator, k, 2 * n, seed, X_train, X_test)
    return {
        "dataset": dataset,
        "estimator": estimator,
        "k": k,
        "n": n,
        "seed": seed,
        "progress": short["progress"],
        "trend": short["trend"],
        "predicted_warning": short["far"],
        "warned": bool(short["convergence_warnings"]),
        "heldout_gain": 1 - long["test_mse"] / short["test_mse"],
        "training_gain": 1 - long["best_loss"] / short["best_loss"],
        "fit_n": short,
        "fit_2n": long,
    }


def run(configs, seeds):
    rows, splits = [], {}
    for config in configs:
        dataset = config[0]
        if dataset not in splits:
            splits[dataset] = split(dataset)
        for seed in seeds:
            progress(f"{' '.join(map(str, config))} seed {seed} ...")
            row = measure(config, seed, *splits[dataset])
            progress(
                f"  progress {row['progress']:.2%}/epoch, trend {row['trend']:.1f} SE, "
                f"warned {row['warned']}, held-out "
                f"gain {row['heldout_gain']:.1%}, training gain {row['training_gain']:.1%}"
            )
            rows.append(row)
    return rows


def spread(values, scale=100.0):
    """``median (min to max)`` of ``values`` times ``scale``."""
    values = np.asarray(values) * scale
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{np.median(values):.2f} ({values.min():.2f} to {values.max():.2f})"


def summary(configs, rows):
    """One table row per configuration: medians and ranges over seeds."""
    table = []
    for config in configs:
        mine = [
            row for row in rows if (row["dataset"], row["estimator"], row["k"], row["n"]) == config
        ]
        table.append(
            [
                *config,
                spread([row["progress"] for row in mine]),
                spread([row["trend"] for row in mine], scale=1.0),
                f"{sum(row['warned'] for row in mine)}/{len(mine)}",
                spread([row["heldout_gain"] for row in mine]),
                spread([row["training_gain"] for row in mine]),
            ]
        )
    return table


HEADERS = (
    "dataset",
    "estimator",
    "k",
    "n epochs",
    "progress %/epoch",
    "trend (SE)",
    "warns",
    "held-out gain %",
    "training gain %",
)


def agreement_line(rows):
    """Whether every warning raised was the one ``recent_progress`` predicts."""
    disagree = [row for row in rows if row["warned"] != row["predicted_warning"]]
    if not disagree:
        return (
            f"In all {len(rows)} n-epoch fits, a ConvergenceWarning was raised exactly when "
            f"progress > {FAR_TRAINING_SHARE:.0%} per epoch and trend < "
            f"-{FAR_STANDARD_ERRORS:g} SE."
        )
    cases = ", ".join(
        f"{row['dataset']} {row['estimator']} k={row['k']} n={row['n']} seed {row['seed']}"
        for row in disagree
    )
    return (
        f"**Warning raised against the prediction of progress in {len(disagree)} fits:** {cases}."
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument(
        "--seeds", default=None, help="comma-separated random_state values (default 0,1,2)"
    )
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated subset")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: seed 0 only (unless --seeds is given), digits AE k=2 n=30 and "
        "iris AE k=2 n=100",
    )
    args = parser.parse_args(argv)
    check_common_arguments(parser, args)
    try:
        default_seeds = "0" if args.quick else "0,1,2"
        args.seeds = comma_list(args.seeds or default_seeds, convert=int)
        args.datasets = comma_list(args.datasets, DATASETS)
    except ValueError as error:
        parser.error(f"invalid list: {error}")
    configs = QUICK_CONFIGS if args.quick else CONFIGS
    args.configs = [config for config in configs if config[0] in args.datasets]
    if not args.configs:
        parser.error(f"no configuration uses the datasets {args.datasets}")
    return args


def main(argv=None):
    args = parse_args(argv)
    rows = run(args.configs, args.seeds)
    env = environment("cpu")
    seeds = ", ".join(map(str, args.seeds))
    text = "\n".join(
        [
            "## Far from converged: recent progress against what doubling the epochs buys",
            "",
            environment_line(env),
            f"Each configuration fitted with max_epochs=n and 2n (n_iter_no_change=10**6, "
            f"constant learning rate), random_state = {seeds}; 75/25 splits "
            f"(random_state={SPLIT_SEED}), tabular data standardised on the training split. "
            f"progress: recent_progress(loss_curve_) of the n-epoch fit (window "
            f"{FAR_WINDOW} epochs); trend: the window's least-squares slope in standard "
            f"errors; the warning fires above {FAR_TRAINING_SHARE:.0%} per epoch when the "
            f"trend is below -{FAR_STANDARD_ERRORS:g}. Gains: 1 - (2n-epoch value) / "
            "(n-epoch value) of the held-out "
            "reconstruction MSE and of best_loss_. Median over seeds (min to max).",
            "",
            markdown_table(HEADERS, summary(args.configs, rows)),
            "",
            agreement_line(rows),
        ]
    )
    payload = {
        "environment": env,
        "command": sys.argv,
        "far_window": FAR_WINDOW,
        "far_training_share": FAR_TRAINING_SHARE,
        "far_standard_errors": FAR_STANDARD_ERRORS,
        "seeds": args.seeds,
        "rows": rows,
    }
    emit(text, payload, args.output, args.json)


if __name__ == "__main__":
    main()
