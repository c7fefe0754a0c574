"""Start-up: the part of a fit that is not its epochs, and short fits against plain loops.

Two measurements, on the 8,000-image MNIST split (``mnist``) and on random
data of the same shape, uniform in [0, 1] (``random``):

1. **Start-up share.** 10-epoch fits of each configuration (AE and VAE;
   ``output_activation`` linear, sigmoid, tanh and auto; ``early_stopping``
   on and off), ``n_components=10``, everything else default. The epochs
   (training and, with early stopping, the validation pass) are timed inside
   the fit; start-up is the rest of the fit, and its share is start-up over
   start-up plus 10 epochs. Each configuration is fitted ``--repeats`` times,
   the configurations interleaved, and medians are reported: the same fit's
   start-up swings by about 20% between runs of a small machine. For the
   default configuration the start-up is broken down: placing the data
   (``data``), the PCA start (``pca``), the bounded output's decoder start
   (``bounded``), judging the start and the end (``compare``), the
   end-of-call summary (``summary``; a fit without validation data tallies
   it in the end's judging pass, under ``compare``) and the rest (checks,
   validation split, bookkeeping). The same for the MNIST split streamed
   from a ``.npy`` memmap (a memory budget below its size).
2. **Three-epoch fits.** The network of ``bench_speed.py`` (784-512-256-10,
   ReLU, sigmoid output, Adam 1e-3, batch 256) fitted for 3 epochs, all that
   the user waits for included: the hand-written loop (tensor conversion,
   network, loop), skorch's ``NeuralNet.fit(X, X)`` and skae's
   ``fit(X)`` (no early stopping), interleaved over ``--rounds`` rounds, on
   the same number of threads (``torch.get_num_threads()``). Reported: median
   seconds and median per-round ratios to the hand loop and to skae.

Run ``python benchmarks/bench_startup.py --help`` for the options.
"""

import argparse
import contextlib
import functools
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from _common import (
    add_common_arguments,
    check_common_arguments,
    emit,
    environment,
    environment_line,
    fail,
    markdown_table,
    mnist_split,
    progress,
)
from bench_speed import BATCH_SIZE, HIDDEN_LAYER_SIZES, LEARNING_RATE, make_hand, make_skorch
from sklearn.exceptions import ConvergenceWarning

import skae
import skae._fitting
import skae._initialization
import skae._training

EPOCHS = 10
SHORT_EPOCHS = 3
OUTPUTS = ("linear", "sigmoid", "tanh", "auto")
PIECES = ("data", "pca", "bounded", "compare", "summary")


class Stopwatch:
    """Seconds spent in patched functions, by piece; time inside an epoch counts as the epoch's."""

    def __init__(self):
        self.seconds = dict.fromkeys(("epochs", *PIECES), 0.0)
        self._in_epoch = False

    def wrap(self, piece, function):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            if self._in_epoch and piece != "epochs":
                return function(*args, **kwargs)
            self._in_epoch = piece == "epochs"
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[piece] += time.perf_counter() - started
                self._in_epoch = False

        return timed

    @contextlib.contextmanager
    def patched(self):
        targets = [
            (skae._training._EpochLoop, "_epoch", "epochs"),
            (skae._training._EpochLoop, "_evaluate", "compare"),
            (skae._initialization, "whitened_pca", "pca"),
            (skae._initialization, "bounded_decoder_start", "bounded"),
            (skae._fitting, "_reconstruction_of", "summary"),
        ]
        with contextlib.ExitStack() as stack:
            for owner, name, piece in targets:
                original = getattr(owner, name)
                stack.enter_context(mock.patch.object(owner, name, self.wrap(piece, original)))
            data = skae._fitting._sources_and_state
            stack.enter_context(
                mock.patch.object(skae._fitting, "_sources_and_state", self.wrap("data", data))
            )
            yield self


def timed_fit(estimator, X):
    """``(total seconds, {piece: seconds})`` of ``estimator.fit(X)``."""
    with Stopwatch().patched() as watch, warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        started = time.perf_counter()
        estimator.fit(X)
        total = time.perf_counter() - started
    pieces = dict(watch.seconds)
    # _sources_and_state holds the PCA and bounded starts (and the start's data).
    pieces["data"] -= pieces["pca"] + pieces["bounded"]
    n_epochs = estimator.n_iter_
    startup = total - pieces["epochs"]
    pieces["other"] = startup - sum(pieces[piece] for piece in PIECES)
    return {
        "total": total,
        "startup": startup,
        "epoch": pieces["epochs"] / n_epochs,
        "epochs_run": n_epochs,
        "share": startup / (startup + EPOCHS * pieces["epochs"] / n_epochs),
        "pieces": pieces,
    }


def median_fit(results):
    """The medians of several :func:`timed_fit` results, field by field (each
    piece on its own); the share is computed from the median start-up and epoch."""
    startup = statistics.median(r["startup"] for r in results)
    epoch = statistics.median(r["epoch"] for r in results)
    return {
        "total": statistics.median(r["total"] for r in results),
        "startup": startup,
        "epoch": epoch,
        "epochs_run": statistics.median(r["epochs_run"] for r in results),
        "share": startup / (startup + EPOCHS * epoch),
        "pieces": {
            piece: statistics.median(r["pieces"][piece] for r in results)
            for piece in results[0]["pieces"]
        },
        "startups": [r["startup"] for r in results],
    }


def startup_configurations(datasets):
    """``(description, X, make_estimator)`` for every measured configuration."""
    configurations = []
    for data_name, X in datasets.items():
        for cls in (skae.AutoencoderTransformer, skae.VAETransformer):
            for output in OUTPUTS:
                for early_stopping in (True, False):
                    description = {
                        "data": data_name,
                        "model": "AE" if cls is skae.AutoencoderTransformer else "VAE",
                        "output": output,
                        "early_stopping": early_stopping,
                    }
                    make = functools.partial(
                        cls,
                        n_components=10,
                        output_activation=output,
                        early_stopping=early_stopping,
                        max_epochs=EPOCHS,
                        random_state=0,
                    )
                    configurations.append((description, X, make))
    return configurations


def startup_rows(datasets, repeats):
    """One row per configuration: the medians of ``repeats`` fits, the
    configurations interleaved so that the machine's drifts spread over all."""
    # A first fit pays one-time costs (torch's first kernels, lazy imports).
    timed_fit(
        skae.AutoencoderTransformer(n_components=10, max_epochs=1), next(iter(datasets.values()))
    )
    configurations = startup_configurations(datasets)
    results = [[] for _ in configurations]
    for repeat in range(repeats):
        for (description, X, make), runs in zip(configurations, results, strict=True):
            runs.append(timed_fit(make(), X))
            progress(
                f"{repeat + 1}/{repeats} {' '.join(map(str, description.values()))}: "
                f"start-up {runs[-1]['startup']:.3f} s, share {runs[-1]['share']:.1%}"
            )
    return [
        {**description, **median_fit(runs)}
        for (description, _, _), runs in zip(configurations, results, strict=True)
    ]


def streamed_row(X, repeats):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mnist.npy"
        np.save(path, X)
        stored = np.load(path, mmap_mode="r")
        runs = []
        with skae.config_context(memory_budget=X.nbytes // 4, stream_block_rows=400):
            for _ in range(repeats):
                estimator = skae.AutoencoderTransformer(
                    n_components=10, max_epochs=EPOCHS, random_state=0
                )
                runs.append(timed_fit(estimator, stored))
                if not estimator.streamed_:
                    fail("the streamed fit did not stream: lower its memory budget")
        del stored
    return {"data": "mnist, streamed", "model": "AE", "output": "auto", **median_fit(runs)}


def skae_short_fit(X, device):
    estimator = skae.AutoencoderTransformer(
        n_components=10,
        hidden_layer_sizes=HIDDEN_LAYER_SIZES,
        activation="relu",
        output_activation="sigmoid",
        linear_shortcut=False,  # the same network as the other loops
        batch_size=BATCH_SIZE,
        learning_rate=LEARNING_RATE,
        max_epochs=SHORT_EPOCHS,
        early_stopping=False,
        device=str(device),
        random_state=0,
    )
    with skae.config_context(n_threads=torch.get_num_threads()):
        estimator.fit(X)


def hand_short_fit(X, device):
    epoch = make_hand(X, device)  # the tensor on the device and the network
    for _ in range(SHORT_EPOCHS):
        epoch()


def skorch_short_fit(X, device):
    epoch = make_skorch(X, device)  # NeuralNet with max_epochs=1: one epoch per fit
    for _ in range(SHORT_EPOCHS):
        epoch()


def short_fit_rows(X, rounds):
    device = torch.device("cpu")
    fits = {"hand": hand_short_fit, "skorch": skorch_short_fit, "skae": skae_short_fit}
    seconds = {name: [] for name in fits}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for round_index in range(rounds + 1):  # the first round warms up
            for name, fit in fits.items():
                started = time.perf_counter()
                fit(X, device)
                if round_index:
                    seconds[name].append(time.perf_counter() - started)
            if round_index:
                progress(
                    f"round {round_index}/{rounds}: "
                    + ", ".join(f"{name} {values[-1]:.2f} s" for name, values in seconds.items())
                )
    return [
        {
            "fit": name,
            "seconds": statistics.median(values),
            "x_hand": statistics.median(
                value / hand for value, hand in zip(values, seconds["hand"], strict=True)
            ),
            "x_skae": statistics.median(
                value / skae for value, skae in zip(values, seconds["skae"], strict=True)
            ),
            "raw": values,
        }
        for name, values in seconds.items()
    ]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of 3-epoch fits (default 5)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="fits per start-up configuration, interleaved; medians reported (default 3)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="MNIST only, one fit each, one round: a smoke run of a minute",
    )
    args = parser.parse_args(argv)
    check_common_arguments(parser, args)
    if args.rounds < 1 or args.repeats < 1:
        parser.error("--rounds and --repeats must be at least 1")
    return args


def report(rows, streamed, default, short, env):
    headers = ["data", "model", "output", "early stopping", "start-up s", "epoch s", "share"]
    table = [
        [
            r["data"],
            r["model"],
            r["output"],
            r["early_stopping"],
            r["startup"],
            r["epoch"],
            f"{r['share']:.1%}",
        ]
        for r in rows
    ]
    table.append(
        [
            streamed["data"],
            "AE",
            "auto",
            "auto",
            streamed["startup"],
            streamed["epoch"],
            f"{streamed['share']:.1%}",
        ]
    )
    breakdown = [
        [name, *(r["pieces"][piece] for piece in (*PIECES, "other")), r["startup"]]
        for name, r in (("MNIST, default", default), ("MNIST, streamed", streamed))
    ]
    short_table = [[r["fit"], r["seconds"], r["x_hand"], r["x_skae"]] for r in short]
    return "\n\n".join(
        [
            "## Start-up of a fit: everything but its epochs",
            environment_line(env),
            f"Share: start-up / (start-up + {EPOCHS} epochs); n_components=10, 10-epoch fits; "
            f"medians of {len(rows[0]['startups'])} fits per configuration, interleaved "
            "(each piece of the breakdown its own median).",
            markdown_table(headers, table),
            "### Where the start-up goes (seconds)",
            markdown_table(["fit", *PIECES, "other", "start-up"], breakdown),
            f"### {SHORT_EPOCHS}-epoch fits of the bench_speed network, same threads",
            markdown_table(
                ["fit", "s (median)", "x hand (median ratio)", "x skae (median ratio)"],
                short_table,
            ),
        ]
    )


def main(argv=None):
    args = parse_args(argv)
    try:
        X = mnist_split(args.data_home)[0]
    except FileNotFoundError as error:
        fail(str(error))
    datasets = {"mnist": X}
    if not args.quick:
        datasets["random"] = np.random.default_rng(0).random(X.shape, dtype=np.float32)
    repeats = 1 if args.quick else args.repeats
    rows = startup_rows(datasets, repeats)
    default = next(
        r
        for r in rows
        if r["data"] == "mnist"
        and r["model"] == "AE"
        and r["output"] == "auto"
        and r["early_stopping"]
    )
    streamed = streamed_row(X, repeats)
    short = short_fit_rows(X, 1 if args.quick else args.rounds)
    env = environment()
    markdown = report(rows, streamed, default, short, env)
    payload = {"environment": env, "startup": rows, "streamed": streamed, "short_fits": short}
    emit(markdown, payload, args.output, args.json)


if __name__ == "__main__":
    sys.exit(main())
