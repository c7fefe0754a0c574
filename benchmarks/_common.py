"""Helpers shared by the benchmark scripts: data, command line, tables, output.

The MNIST folder comes from ``--data-home`` or the ``SKAE_DATA_HOME``
environment variable (see :func:`skae.datasets.load_mnist`); no path is
hard-coded here.
"""

import json
import platform
import sys

import numpy as np
import sklearn
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_info, threadpool_limits

import skae
from skae._threads import call_threads
from skae.datasets import load_mnist

SEED = 0
MNIST_TEST_SIZE = 2000
DIGITS_TEST_FRACTION = 0.2

MNIST_NOTE = (
    "MNIST: the official 10,000-image test split (t10k), divided "
    f"{10000 - MNIST_TEST_SIZE:,} train / {MNIST_TEST_SIZE:,} test, stratified by "
    f"label, random_state={SEED}; pixels in [0, 1]. The 60,000-image training "
    "split is not used, even where present."
)
DIGITS_NOTE = (
    "digits: sklearn load_digits (1,797 images of 8x8), stratified 80/20 split, "
    f"random_state={SEED}, raw pixel values 0-16 (not scaled)."
)


# ------------------------------------------------------------------- data


def mnist_split(data_home=None, random_state=SEED):
    """Return ``X_train, X_test, y_train, y_test`` of the MNIST benchmark split.

    Only MNIST's official test split (t10k, 10,000 images) is used, so that
    results do not depend on whether the training files are present too. It
    is divided into :data:`MNIST_TEST_SIZE` test images and the rest for
    training, stratified by label with a fixed seed. ``X`` is float32 in [0, 1].

    Raises
    ------
    FileNotFoundError
        When the t10k files are not found under ``data_home``.
    """
    mnist = load_mnist(data_home)
    is_t10k = mnist.split == "test"
    if not is_t10k.any():
        raise FileNotFoundError(
            "The MNIST benchmarks split the official test images "
            f"(t10k-images-idx3-ubyte[.gz]), which are missing: {mnist.DESCR}"
        )
    X, y = mnist.data[is_t10k], mnist.target[is_t10k]
    return train_test_split(X, y, test_size=MNIST_TEST_SIZE, stratify=y, random_state=random_state)


def digits_split():
    """Return ``X_train, X_test, y_train, y_test`` of sklearn's digits.

    Stratified 80/20 split with a fixed seed; ``X`` keeps its raw pixel values
    (0-16, float64).
    """
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=DIGITS_TEST_FRACTION, stratify=y, random_state=SEED)


def digits_unit():
    """All 1,797 digits as float32 scaled to [0, 1] (pixel values / 16)."""
    X, _ = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32)


# ------------------------------------------------------------ command line


def add_common_arguments(parser):
    """Add ``--data-home``, ``--threads``, ``--output`` and ``--json`` to ``parser``."""
    parser.add_argument(
        "--data-home",
        default=None,
        metavar="DIR",
        help="folder of the MNIST IDX files (default: $SKAE_DATA_HOME, else "
        "scikit-learn's data home /mnist)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        default=None,
        help="limit torch and the BLAS/OpenMP libraries to N threads (default: their "
        "own choice; on a machine shared with other jobs, 1 avoids oversubscription)",
    )
    parser.add_argument("--output", metavar="FILE", help="also write the markdown table here")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON here")


def comma_list(text, choices=None, convert=str):
    """Parse ``"a,b,c"`` into a list, checking each item against ``choices``."""
    items = [convert(item.strip()) for item in text.split(",") if item.strip()]
    if not items:
        raise ValueError("expected a comma-separated list, got nothing")
    if choices is not None:
        unknown = [item for item in items if item not in choices]
        if unknown:
            raise ValueError(f"unknown {unknown}; choose from {sorted(choices)}")
    return items


def check_common_arguments(parser, args):
    """Reject invalid common arguments and apply ``--threads``.

    The thread limit covers torch's intra-op pool and, through threadpoolctl,
    the BLAS and OpenMP libraries that NumPy, SciPy and scikit-learn use: on
    a busy machine an oversubscribed BLAS can be ten times slower.
    """
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be at least 1")
        threadpool_limits(limits=args.threads)
        torch.set_num_threads(args.threads)


def fail(message):
    """Print ``message`` to stderr and exit with status 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def progress(message):
    """Report progress on stderr, keeping stdout for the results."""
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------- output


def environment(device=None):
    """Versions and hardware that the results depend on."""
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "torch_threads": torch.get_num_threads(),
        # What skae's calls run on: its own setting, not torch's (skae._threads).
        "skae_threads": f"{skae.get_config()['n_threads']} ({call_threads()} per call)",
        "threadpools": sorted(
            {f"{pool['internal_api']}={pool['num_threads']}" for pool in threadpool_info()}
        ),
        "cpu": platform.processor() or platform.machine(),
    }
    if device is not None:
        info["device"] = str(device)
        if torch.device(device).type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def environment_line(env):
    """One sentence describing ``env`` (see :func:`environment`) for a report."""
    where = f", device {env['device']}" if "device" in env else ""
    hardware = env.get("gpu", env["cpu"])
    # Reports written before skae limited its calls' threads lack the entry.
    skae_threads = f", skae's n_threads = {env['skae_threads']}" if "skae_threads" in env else ""
    return (
        f"torch {env['torch']}, scikit-learn {env['sklearn']}{where} ({hardware}), "
        f"torch.get_num_threads() = {env['torch_threads']}, thread pools: "
        f"{', '.join(env['threadpools'])}"
        f"{skae_threads}."
    )


def format_value(value, digits=4):
    """Format a table cell: floats to ``digits`` significant figures."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def markdown_table(headers, rows):
    """Return a markdown table of ``rows`` (sequences of cells) under ``headers``."""
    lines = [
        "| " + " | ".join(headers) + " |",
        "| " + " | ".join("---" for _ in headers) + " |",
    ]
    lines += ["| " + " | ".join(format_value(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def emit(markdown, payload, output=None, json_path=None):
    """Print ``markdown``; write it to ``output`` and ``payload`` to ``json_path``."""
    print(markdown)
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(markdown + "\n")
    if json_path:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2)
            f.write("\n")
