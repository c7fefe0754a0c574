"""What reading a model costs: skae.inspection against one transform of the same rows.

Fits a default ``AutoencoderTransformer(n_components=10)`` (784-512-256-10,
20 epochs) on the MNIST benchmark split's training images, then times, in
interleaved rounds on the first 2,000 of them: one ``transform``, the
encoder and the decoder Jacobians, ``code_loadings`` (both), and
``code_attributions`` (50 steps) of 100 rows. Reported: the median seconds
of the rounds and the ratio to ``transform``.

Run ``SKAE_DATA_HOME=... python benchmarks/bench_inspection.py``.
"""

import argparse
import statistics
import sys
import time
import warnings

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
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer
from skae.inspection import code_attributions, code_loadings, decoder_jacobian, encoder_jacobian

N_ROWS = 2000
N_ATTRIBUTED = 100


def tasks(model, rows):
    return {
        "transform": lambda: model.transform(rows),
        "encoder_jacobian": lambda: encoder_jacobian(model, rows),
        "decoder_jacobian": lambda: decoder_jacobian(model, rows),
        "code_loadings": lambda: code_loadings(model, rows),
        f"code_attributions ({N_ATTRIBUTED} rows, 50 steps)": lambda: code_attributions(
            model, rows[:N_ATTRIBUTED]
        ),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    check_common_arguments(parser, args)
    try:
        X_train = mnist_split(args.data_home)[0]
    except FileNotFoundError as error:
        fail(str(error))
    model = AutoencoderTransformer(n_components=10, max_epochs=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train)
    rows = X_train[:N_ROWS].astype("float64")
    seconds = {name: [] for name in tasks(model, rows)}
    for round_ in range(args.rounds + 1):  # the first is a warm-up
        for name, task in tasks(model, rows).items():
            started = time.perf_counter()
            task()
            if round_:
                seconds[name].append(time.perf_counter() - started)
        progress(
            f"round {round_}: " + ", ".join(f"{n} {s[-1]:.3f}s" for n, s in seconds.items() if s)
        )
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    env = environment(model.device_)
    rows_table = [[name, medians[name], medians[name] / medians["transform"]] for name in medians]
    text = "\n".join(
        [
            "## What reading a model costs (MNIST, k=10, 784-512-256-10)",
            "",
            environment_line(env),
            f"{N_ROWS} float64 training rows; median of {args.rounds} interleaved rounds "
            "after a warm-up.",
            "",
            markdown_table(["call", "seconds", "x transform"], rows_table),
        ]
    )
    emit(text, {"environment": env, "seconds": seconds, "medians": medians}, args.output, args.json)


if __name__ == "__main__":
    sys.exit(main())
