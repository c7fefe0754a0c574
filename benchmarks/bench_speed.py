"""Seconds per training epoch of one autoencoder, four ways.

The same network (encoder n-512-256-10 with ReLU and a linear code, mirrored
decoder 10-256-512-n with a sigmoid output; MSE, Adam lr 1e-3, batch 256) is
trained by

- ``skae``: ``AutoencoderTransformer.partial_fit`` (one epoch per call), its
  public API only, validation of the input on every call included, on as
  many threads as the other rows (``torch.get_num_threads()``);
- ``skae (auto threads)``: the same with skae's default thread setting,
  which leaves one core to the rest of the machine (``skae.set_config``);
- ``hand``: a plain PyTorch loop slicing a tensor on the device by a permutation;
- ``dataloader``: the tutorial loop over ``DataLoader(TensorDataset(X))``;
- ``skorch``: ``skorch.NeuralNet`` with callbacks disabled, fitted with ``y=X``.

Each round times one epoch of each implementation in turn, then the same
matmuls as one epoch of training run alone (the "ceiling"). The first round
is a warm-up and is discarded. Reported: median seconds per epoch, the median
of the per-round ratios to ``hand``, and the achieved GFLOP/s with its share
of the ceiling.

Run ``python benchmarks/bench_speed.py --help`` for the options.
"""

import argparse
import functools
import math
import statistics
import sys
import time
import warnings

import torch
import torch.nn.functional as F
from _common import (
    MNIST_NOTE,
    add_common_arguments,
    check_common_arguments,
    comma_list,
    digits_unit,
    emit,
    environment,
    environment_line,
    fail,
    markdown_table,
    mnist_split,
    progress,
)
from sklearn.exceptions import ConvergenceWarning
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import skae
from skae import AutoencoderTransformer

HIDDEN_LAYER_SIZES = (512, 256)
N_COMPONENTS = 10
BATCH_SIZE = 256
LEARNING_RATE = 1e-3
SEED = 0
NETWORKS = ("mnist", "digits")
BASELINE = "hand"


# ---------------------------------------------------------------- network


def layer_sizes(n_features):
    """Widths from input to output, e.g. (784, 512, 256, 10, 256, 512, 784)."""
    encoder = (n_features, *HIDDEN_LAYER_SIZES, N_COMPONENTS)
    return encoder + encoder[-2::-1]


def layer_shapes(sizes):
    """(in, out) of every linear layer."""
    return list(zip(sizes[:-1], sizes[1:], strict=True))


def training_flops(sizes, n_samples):
    """FLOPs of one training epoch: 3 x forward, forward = 2 n sum(in x out)."""
    return 3 * 2 * n_samples * sum(n_in * n_out for n_in, n_out in layer_shapes(sizes))


def build_network(n_features, seed=SEED):
    """The benchmark autoencoder as one ``nn.Sequential`` returning the reconstruction.

    ReLU after every layer except the code (linear) and the output (sigmoid).
    Initialised from ``seed`` without touching the global random state.
    """
    shapes = layer_shapes(layer_sizes(n_features))
    code_layer = len(HIDDEN_LAYER_SIZES)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers = []
        for i, (n_in, n_out) in enumerate(shapes):
            layers.append(nn.Linear(n_in, n_out))
            if i == len(shapes) - 1:
                layers.append(nn.Sigmoid())
            elif i != code_layer:
                layers.append(nn.ReLU())
    return nn.Sequential(*layers)


# --------------------------------------------------------- implementations
# Each factory prepares everything outside the timed region and returns a
# function that trains for one epoch (or None when the implementation is
# unavailable).


def make_skae(X, device, n_threads=None):
    """One epoch = one ``AutoencoderTransformer.partial_fit(X)`` call, on
    ``n_threads`` threads (None: as many as torch uses, like the other rows)."""
    n_threads = n_threads or torch.get_num_threads()
    estimator = AutoencoderTransformer(
        n_components=N_COMPONENTS,
        hidden_layer_sizes=HIDDEN_LAYER_SIZES,
        activation="relu",
        output_activation="sigmoid",
        linear_shortcut=False,  # the same network as the other rows
        batch_size=BATCH_SIZE,
        learning_rate=LEARNING_RATE,
        device=str(device),
        random_state=SEED,
    )

    def epoch():
        with warnings.catch_warnings(), skae.config_context(n_threads=n_threads):
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimator.partial_fit(X)

    return epoch


def make_hand(X, device):
    """A plain loop: the data on the device, batches sliced by a permutation."""
    data = torch.from_numpy(X).to(device)
    model = build_network(X.shape[1]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    generator = torch.Generator(device=device).manual_seed(SEED)
    n = len(data)

    def epoch():
        perm = torch.randperm(n, device=device, generator=generator)
        for start in range(0, n, BATCH_SIZE):
            batch = data[perm[start : start + BATCH_SIZE]]
            loss = F.mse_loss(model(batch), batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return epoch


def make_dataloader(X, device):
    """The tutorial loop: a shuffling DataLoader over a TensorDataset on the host."""
    loader = DataLoader(
        TensorDataset(torch.from_numpy(X)),
        batch_size=BATCH_SIZE,
        shuffle=True,
        generator=torch.Generator().manual_seed(SEED),
    )
    model = build_network(X.shape[1]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)

    def epoch():
        for (batch,) in loader:
            batch = batch.to(device)
            loss = F.mse_loss(model(batch), batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return epoch


def make_skorch(X, device):
    """One epoch = one ``NeuralNet.fit(X, X)`` with ``warm_start`` and ``max_epochs=1``."""
    try:
        from skorch import NeuralNet
    except ImportError:
        progress("skorch is not installed: skipping its row (pip install skorch).")
        return None
    net = NeuralNet(
        build_network(X.shape[1]),
        criterion=nn.MSELoss,
        optimizer=torch.optim.Adam,
        lr=LEARNING_RATE,
        batch_size=BATCH_SIZE,
        max_epochs=1,
        train_split=None,
        warm_start=True,
        callbacks="disable",
        iterator_train__shuffle=True,
        iterator_train__generator=torch.Generator().manual_seed(SEED),
        device=str(device),
    )

    def epoch():
        net.fit(X, X)

    return epoch


IMPLEMENTATIONS = {
    "skae": make_skae,
    "skae (auto threads)": functools.partial(make_skae, n_threads="auto"),
    "hand": make_hand,
    "dataloader": make_dataloader,
    "skorch": make_skorch,
}


# ----------------------------------------------------------------- ceiling


class MatmulCeiling:
    """The matmuls of one training epoch, run alone with ``torch.mm``.

    Per step and layer: the forward product (B x in @ in x out), the gradient
    of the input (B x out @ out x in) and of the weight (in x B @ B x out),
    with B the batch size; as many steps as an epoch has batches. This is
    the throughput the network's own shapes allow on this device with no
    other overhead, and it counts the same 3 x forward FLOPs as
    :func:`training_flops`.
    """

    def __init__(self, sizes, n_samples, device):
        self.n_steps = math.ceil(n_samples / BATCH_SIZE)
        generator = torch.Generator().manual_seed(SEED)
        self.operands = [
            tuple(
                torch.randn(shape, generator=generator).to(device)
                for shape in ((BATCH_SIZE, n_in), (n_in, n_out), (BATCH_SIZE, n_out))
            )
            for n_in, n_out in layer_shapes(sizes)
        ]
        self.flops = training_flops(sizes, self.n_steps * BATCH_SIZE)

    def run(self):
        for _ in range(self.n_steps):
            for inputs, weight, grad_out in self.operands:
                torch.mm(inputs, weight)
                torch.mm(grad_out, weight.t())
                torch.mm(inputs.t(), grad_out)


# ------------------------------------------------------------------ timing


def synchronize(device):
    """Wait for queued GPU work so that timers measure it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(function, device):
    """Seconds that ``function()`` takes, queued device work included."""
    synchronize(device)
    started = time.perf_counter()
    function()
    synchronize(device)
    return time.perf_counter() - started


def run_rounds(epochs, ceiling, rounds, device):
    """Time ``rounds`` interleaved rounds after one warm-up round.

    Returns
    -------
    seconds : dict of name -> list of float
        Seconds per epoch of each implementation, one per round.
    ceiling_gflops : list of float
        Ceiling throughput, one per round.
    """
    seconds = {name: [] for name in epochs}
    ceiling_gflops = []
    for round_index in range(rounds + 1):
        times = {name: timed(epoch, device) for name, epoch in epochs.items()}
        rate = ceiling.flops / timed(ceiling.run, device) / 1e9
        label = "warm-up" if round_index == 0 else f"round {round_index}/{rounds}"
        progress(f"  {label}: " + ", ".join(f"{n} {t:.3f}s" for n, t in times.items()))
        if round_index == 0:
            continue
        for name, value in times.items():
            seconds[name].append(value)
        ceiling_gflops.append(rate)
    return seconds, ceiling_gflops


def summarize(seconds, ceiling_gflops, flops):
    """One summary row per implementation plus one for the ceiling."""
    ceiling = statistics.median(ceiling_gflops)
    baseline = seconds.get(BASELINE)
    rows = []
    for name, values in seconds.items():
        median = statistics.median(values)
        ratio = None
        if baseline is not None:
            ratio = statistics.median(t / b for t, b in zip(values, baseline, strict=True))
        gflops = flops / median / 1e9
        rows.append(
            {
                "implementation": name,
                "seconds_per_epoch": median,
                "ratio_to_hand": ratio,
                "gflops": gflops,
                "share_of_ceiling": gflops / ceiling,
            }
        )
    ceiling_seconds = flops / ceiling / 1e9
    hand = statistics.median(baseline) if baseline is not None else None
    rows.append(
        {
            "implementation": "matmul ceiling",
            "seconds_per_epoch": ceiling_seconds,
            "ratio_to_hand": ceiling_seconds / hand if hand else None,
            "gflops": ceiling,
            "share_of_ceiling": 1.0,
        }
    )
    return rows


def benchmark_network(name, X, device, rounds):
    """Time every implementation on ``X``; return a JSON-ready result."""
    sizes = layer_sizes(X.shape[1])
    progress(f"{name}: {'-'.join(map(str, sizes))} on {len(X)} samples")
    epochs, skipped = {}, []
    for impl, factory in IMPLEMENTATIONS.items():
        epoch = factory(X, device)
        if epoch is None:
            skipped.append(impl)
        else:
            epochs[impl] = epoch
    ceiling = MatmulCeiling(sizes, len(X), device)
    flops = training_flops(sizes, len(X))
    seconds, ceiling_gflops = run_rounds(epochs, ceiling, rounds, device)
    return {
        "layer_sizes": list(sizes),
        "n_samples": len(X),
        "steps_per_epoch": math.ceil(len(X) / BATCH_SIZE),
        "training_flops_per_epoch": flops,
        "skipped": skipped,
        "seconds": seconds,
        "ceiling_gflops": ceiling_gflops,
        "summary": summarize(seconds, ceiling_gflops, flops),
    }


# ------------------------------------------------------------------ report


def network_section(name, result):
    """Markdown for one network: a heading line, the ceiling, the table."""
    sizes = "-".join(map(str, result["layer_sizes"]))
    rows = [
        (
            row["implementation"],
            row["seconds_per_epoch"],
            row["ratio_to_hand"],
            row["gflops"],
            f"{100 * row['share_of_ceiling']:.1f}%",
        )
        for row in result["summary"]
    ]
    table = markdown_table(
        ["implementation", "s/epoch (median)", "x hand (median ratio)", "GFLOP/s", "% of ceiling"],
        rows,
    )
    return (
        f"### {name}: {sizes}, {result['n_samples']:,} samples, "
        f"{result['steps_per_epoch']} steps/epoch, "
        f"{result['training_flops_per_epoch'] / 1e9:.2f} GFLOP/epoch\n\n"
        f"{table}"
        + "".join(f"\n\n{impl}: not installed, row skipped." for impl in result["skipped"])
    )


def report(results, env, rounds, n_train=None):
    """The whole markdown report."""
    header = [
        f"## Training speed: seconds per epoch, median of {rounds} interleaved rounds "
        "(after 1 warm-up round)",
        "",
        environment_line(env),
        f"Adam lr {LEARNING_RATE:g}, batch {BATCH_SIZE}, MSE, float32. Training FLOPs per "
        "epoch = 3 x forward, forward = 2 x n_samples x sum(in x out). The matmul "
        "ceiling runs the same matmuls (forward, input and weight gradients) with "
        "torch.mm alone, interleaved with the rounds.",
        "Ratios are medians of per-round ratios; compare ratios within one run only.",
    ]
    if "mnist" in results:
        header.append(MNIST_NOTE + " Speed trains on the training part.")
    if "digits" in results:
        header.append("digits: all 1,797 sklearn digits scaled to [0, 1] (/16).")
    if n_train is not None:
        header.append(
            f"Only the first {n_train:,} samples of each network's data (--n-train): "
            "a smoke test, not a benchmark."
        )
    sections = [network_section(name, result) for name, result in results.items()]
    return "\n".join(header) + "\n\n" + "\n\n".join(sections)


# -------------------------------------------------------------------- main


def parse_args(argv=None):
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument(
        "--networks",
        default=",".join(NETWORKS),
        help="comma-separated subset of: mnist,digits (default: both)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=7,
        metavar="R",
        help="timed rounds after the warm-up (default: 7)",
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="default: cuda if available, else cpu",
    )
    parser.add_argument(
        "--n-train",
        type=int,
        metavar="N",
        default=None,
        help="train on only the first N samples of each network's data (smoke tests)",
    )
    args = parser.parse_args(argv)
    check_common_arguments(parser, args)
    try:
        args.networks = comma_list(args.networks, NETWORKS)
    except ValueError as error:
        parser.error(f"--networks: {error}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.n_train is not None and args.n_train < 1:
        parser.error("--n-train must be at least 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda was requested but CUDA is not available")
    return args


def network_data(name, data_home, n_train):
    """The float32 training matrix of network ``name``."""
    X = mnist_split(data_home)[0] if name == "mnist" else digits_unit()
    return X[:n_train] if n_train is not None else X


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    results = {}
    for name in args.networks:
        try:
            X = network_data(name, args.data_home, args.n_train)
        except FileNotFoundError as error:
            fail(str(error))
        results[name] = benchmark_network(name, X, device, args.rounds)
    env = environment(device)
    payload = {
        "environment": env,
        "settings": {
            "rounds": args.rounds,
            "warm_up_rounds": 1,
            "batch_size": BATCH_SIZE,
            "learning_rate": LEARNING_RATE,
            "n_train": args.n_train,
            "threads": args.threads,
            "command": sys.argv,
        },
        "networks": results,
    }
    emit(report(results, env, args.rounds, args.n_train), payload, args.output, args.json)


if __name__ == "__main__":
    main()
