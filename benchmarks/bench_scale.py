"""Data larger than memory: peak memory and speed of streamed fits, and the start-up share.

Three measurements, each in its own section:

1. A float32 file of ``--gigabytes`` GB (shifted, noisy copies of the MNIST
   training images), as an ``.npy`` memmap and as HDF5: fit the default
   ``AutoencoderTransformer(n_components=10)`` for one epoch, transform all
   of it, and report the peak memory of a fresh process: anonymous memory
   (``RssAnon``, sampled) for the memmap, whose file pages the OS can drop,
   and the peak resident set for HDF5.
2. Throughput of a streamed epoch against an in-memory epoch on the same
   rows (a slice of the file, in the page cache), interleaved rounds.
3. The start-up share of a 10-epoch fit on the MNIST split (everything but
   the epochs), with the PCA start as it was (full SVD) and as it is now.

The files are written to ``--workdir`` (default: a temporary folder) and
removed at the end unless ``--keep`` is given.
"""

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings

import numpy as np
from _common import (
    SEED,
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

import skae
import skae._fitting
import skae._initialization
from skae import AutoencoderTransformer

FEATURES = 784
ROWS_PER_WRITE = 16384


# ----------------------------------------------------------------- the file


def synthesize(X, n_rows, seed=SEED):
    """Yield blocks of ``n_rows`` in all: MNIST images shifted by up to 2 pixels, plus noise."""
    rng = np.random.default_rng(seed)
    images = X.reshape(-1, 28, 28)
    for start in range(0, n_rows, ROWS_PER_WRITE):
        n = min(ROWS_PER_WRITE, n_rows - start)
        picked = images[rng.integers(len(images), size=n)]
        dy, dx = rng.integers(-2, 3, size=2)
        block = np.roll(picked, (int(dy), int(dx)), axis=(1, 2)).reshape(n, FEATURES)
        block = block + rng.normal(0, 0.05, size=block.shape).astype(np.float32)
        yield start, np.clip(block, 0, 1, out=block).astype(np.float32)


def write_files(X, gigabytes, workdir):
    """The ``.npy`` and HDF5 files of about ``gigabytes`` GB each; returns their paths."""
    import h5py

    n_rows = int(gigabytes * 1e9) // (FEATURES * 4)
    npy, h5 = os.path.join(workdir, "scale.npy"), os.path.join(workdir, "scale.h5")
    array = np.lib.format.open_memmap(npy, mode="w+", dtype=np.float32, shape=(n_rows, FEATURES))
    with h5py.File(h5, "w") as file:
        dataset = file.create_dataset(
            "X", shape=(n_rows, FEATURES), dtype=np.float32, chunks=(1024, FEATURES)
        )
        for start, block in synthesize(X, n_rows):
            array[start : start + len(block)] = block
            dataset[start : start + len(block)] = block
    array.flush()
    del array
    return npy, h5, n_rows


# ------------------------------------------------------- one fresh process


def status_bytes(field):
    """A memory figure of this process from ``/proc/self/status`` (e.g. "RssAnon"), in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def rss_anon():
    """Anonymous resident memory: what the process itself allocated."""
    return status_bytes("RssAnon")


def vm_hwm():
    """This process's peak resident set (``VmHWM``), file pages included."""
    return status_bytes("VmHWM")


@contextlib.contextmanager
def sampled_peak(every=0.05):
    """Sample ``RssAnon`` in a thread; the peak is in the yielded list's first item."""
    peak, done = [rss_anon()], threading.Event()

    def sample():
        while not done.wait(every):
            peak[0] = max(peak[0], rss_anon())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        done.set()
        thread.join()
        peak[0] = max(peak[0], rss_anon())


def timed_parts():
    """Wrap the engine to time epochs; returns the dict it fills."""
    times = {"run_epochs": 0.0, "train_epoch": 0.0}
    run_epochs, train_epoch = skae._fitting.run_epochs, skae._training.Trainer.train_epoch

    def timed_run(*args, **kwargs):
        started = time.perf_counter()
        try:
            return run_epochs(*args, **kwargs)
        finally:
            times["run_epochs"] += time.perf_counter() - started

    def timed_epoch(self, source):
        started = time.perf_counter()
        try:
            return train_epoch(self, source)
        finally:
            times["train_epoch"] += time.perf_counter() - started

    skae._fitting.run_epochs = timed_run
    skae._training.Trainer.train_epoch = timed_epoch
    return times


def child(kind, path, budget=None):
    """Fit one epoch on the file and transform it; print a JSON line of measurements."""
    warnings.simplefilter("ignore")
    if budget:
        skae.set_config(memory_budget=budget)
    if kind == "memmap":
        X = np.load(path, mmap_mode="r")
    else:
        import h5py

        X = h5py.File(path, "r")["X"]
    times = timed_parts()
    model = AutoencoderTransformer(n_components=10, max_epochs=1, random_state=SEED)
    with sampled_peak() as peak:
        started = time.perf_counter()
        model.fit(X)
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        codes = model.transform(X)
        transform_seconds = time.perf_counter() - started
    result = {
        "kind": kind,
        "rows": int(X.shape[0]),
        "fit_seconds": fit_seconds,
        "epoch_seconds": times["train_epoch"],
        "start_up_seconds": fit_seconds - times["run_epochs"],
        "comparison_seconds": times["run_epochs"] - times["train_epoch"],
        "transform_seconds": transform_seconds,
        "codes_finite": bool(np.isfinite(codes).all()),
        "peak_rss_anon": peak[0],
        # VmHWM, not getrusage's ru_maxrss: that one keeps the high-water mark
        # of the parent this process was forked from (it wrote the files).
        "peak_rss": vm_hwm(),
        "loss": model.loss_curve_[-1],
    }
    print(json.dumps(result))


def run_child(kind, path, threads, budget):
    command = [sys.executable, __file__, "--child", kind, path]
    if threads:
        command += ["--threads", str(threads)]
    if budget:
        command += ["--budget", str(budget)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


# ------------------------------------------------------------- throughput


def throughput(path, n_rows, rounds):
    """Median seconds of an in-memory and a streamed epoch on the same rows, interleaved."""
    warnings.simplefilter("ignore")
    rows = np.load(path, mmap_mode="r")[:n_rows]
    model = AutoencoderTransformer(n_components=10, max_epochs=1, random_state=SEED).fit(
        np.asarray(rows)
    )
    budgets = {"in memory": 1 << 40, "streamed": 1 << 20}
    seconds = {name: [] for name in budgets}
    for _ in range(rounds):
        for name, budget in budgets.items():
            with skae.config_context(memory_budget=budget):
                started = time.perf_counter()
                model.partial_fit(rows)
                seconds[name].append(time.perf_counter() - started)
        progress(
            f"  epoch: in memory {seconds['in memory'][-1]:.2f}s, "
            f"streamed {seconds['streamed'][-1]:.2f}s"
        )
    ratios = [m / s for m, s in zip(seconds["in memory"], seconds["streamed"], strict=True)]
    return {name: statistics.median(values) for name, values in seconds.items()} | {
        "ratio": statistics.median(ratios),
        "rows": n_rows,
    }


# ---------------------------------------------------------------- start-up


def start_up_share(X, rounds):
    """Median start-up share of a 10-epoch fit, with the old (full SVD) and new PCA start."""
    warnings.simplefilter("ignore")
    solver = skae._initialization._pca_solver
    solvers = {"full SVD (before)": lambda *shape: "full", "covariance (now)": solver}
    shares = {name: [] for name in solvers}
    for _ in range(rounds):
        for name, choose in solvers.items():
            skae._initialization._pca_solver = choose
            times = timed_parts()
            started = time.perf_counter()
            AutoencoderTransformer(n_components=10, max_epochs=10, random_state=SEED).fit(X)
            total = time.perf_counter() - started
            shares[name].append(((total - times["run_epochs"]) / total, total))
    skae._initialization._pca_solver = solver
    return {
        name: {
            "share": statistics.median(s for s, _ in values),
            "fit_seconds": statistics.median(t for _, t in values),
        }
        for name, values in shares.items()
    }


# ------------------------------------------------------------ distributed


def distributed_rank(rank, world_size, init_file, out_dir, data_home, epochs, batch_size):
    """One rank of a data-parallel fit on the MNIST split (gloo, one thread)."""
    import torch
    import torch.distributed as dist

    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    X_train, X_test, _, _ = mnist_split(data_home)
    times = timed_parts()
    model = AutoencoderTransformer(
        n_components=10,
        max_epochs=epochs,
        batch_size=batch_size,
        random_state=SEED,
        device="cpu",
        tol=0.0,
    ).fit(X_train)
    if rank == 0:
        error = float(np.mean((model.inverse_transform(model.transform(X_test)) - X_test) ** 2))
        result = {
            "epoch_seconds": times["train_epoch"] / model.n_iter_,
            "test_mse": error,
            "epochs": model.n_iter_,
        }
        with open(os.path.join(out_dir, f"world{world_size}.json"), "w") as file:
            json.dump(result, file)
    dist.destroy_process_group()


def distributed(data_home, epochs, global_batches):
    """1 rank against 2 ranks of one thread each, at each of the same global batch sizes."""
    import torch.multiprocessing as mp

    results = {}
    for global_batch in global_batches:
        for world_size in (1, 2):
            with tempfile.TemporaryDirectory() as out_dir:
                mp.start_processes(
                    distributed_rank,
                    args=(
                        world_size,
                        os.path.join(out_dir, "init"),
                        out_dir,
                        data_home,
                        epochs,
                        global_batch // world_size,
                    ),
                    nprocs=world_size,
                    start_method="spawn",
                )
                with open(os.path.join(out_dir, f"world{world_size}.json")) as file:
                    result = json.load(file)
            name = f"{world_size} x {global_batch // world_size}"
            results[name] = result | {"ranks": world_size, "global_batch": global_batch}
            progress(f"  {name}: {result}")
    return results


# ------------------------------------------------------------------- main


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--gigabytes", type=float, default=4.3, help="file size (default 4.3)")
    parser.add_argument("--workdir", help="where to write the files (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the files")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--throughput-rows", type=int, default=200_000, help="rows of the throughput test"
    )
    parser.add_argument(
        "--distributed-epochs", type=int, default=10, help="epochs of the 1- and 2-rank fits"
    )
    parser.add_argument(
        "--global-batches",
        default="256,1024",
        help="global batch sizes of the 1- vs 2-rank runs (default 256,1024)",
    )
    parser.add_argument(
        "--only-distributed", action="store_true", help="run only the 1- vs 2-rank section"
    )
    parser.add_argument(
        "--budget", type=int, help="skae's memory_budget in bytes (default: skae's own choice)"
    )
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is None:
        check_common_arguments(parser, args)
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        return child(*args.child, budget=args.budget)
    try:
        X = mnist_split(args.data_home)[0]
    except FileNotFoundError as error:
        fail(str(error))
    batches = comma_list(args.global_batches, convert=int)
    if args.only_distributed:
        ranks = distributed(args.data_home, args.distributed_epochs, batches)
        payload = {
            "environment": environment(),
            "distributed": ranks,
            "settings": {"command": sys.argv},
        }
        return emit(distributed_report(ranks), payload, args.output, args.json)
    workdir = args.workdir or tempfile.mkdtemp(prefix="skae-scale-")
    os.makedirs(workdir, exist_ok=True)
    try:
        progress(f"writing {args.gigabytes} GB files to {workdir}")
        npy, h5, n_rows = write_files(X, args.gigabytes, workdir)
        files = {"memmap": run_child("memmap", npy, args.threads, args.budget)}
        progress(f"memmap: {files['memmap']}")
        files["hdf5"] = run_child("hdf5", h5, args.threads, args.budget)
        progress(f"hdf5: {files['hdf5']}")
        speed = throughput(npy, min(args.throughput_rows, n_rows), args.rounds)
        start = start_up_share(X, args.rounds)
        ranks = distributed(args.data_home, args.distributed_epochs, batches)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    payload = {
        "environment": environment(),
        "files": files,
        "throughput": speed,
        "start_up": start,
        "distributed": ranks,
        "settings": {"gigabytes": args.gigabytes, "command": sys.argv},
    }
    emit(report(payload, n_rows), payload, args.output, args.json)


def report(payload, n_rows):
    gb = n_rows * FEATURES * 4 / 1e9
    files = payload["files"]
    rows = [
        [
            kind,
            f"{result['peak_rss_anon'] / 2**20:.0f}" if kind == "memmap" else "",
            f"{result['peak_rss'] / 2**20:.0f}",
            f"{result['start_up_seconds']:.1f}",
            f"{result['epoch_seconds']:.1f}",
            f"{result['comparison_seconds']:.1f}",
            f"{result['transform_seconds']:.1f}",
        ]
        for kind, result in files.items()
    ]
    speed, start = payload["throughput"], payload["start_up"]
    lines = [
        f"## Streamed fits of a {gb:.2f} GB float32 file ({n_rows:,} x {FEATURES})",
        "",
        environment_line(payload["environment"]),
        "One epoch of AutoencoderTransformer(n_components=10), then transform of every row, "
        "in a fresh process each.",
        "",
        markdown_table(
            [
                "input",
                "peak RssAnon MiB",
                "peak RSS MiB",
                "start-up s",
                "epoch s",
                "start/end comparison s",
                "transform s",
            ],
            rows,
        ),
        "",
        f"### Throughput ({speed['rows']:,} rows of the file, page cache warm, medians)",
        "",
        markdown_table(
            ["in-memory epoch s", "streamed epoch s", "streamed speed / in-memory"],
            [[f"{speed['in memory']:.2f}", f"{speed['streamed']:.2f}", f"{speed['ratio']:.2f}"]],
        ),
        "",
        "### Start-up share of a 10-epoch fit on the MNIST split (medians)",
        "",
        markdown_table(
            ["PCA start", "start-up share", "fit s"],
            [[name, f"{v['share']:.1%}", f"{v['fit_seconds']:.2f}"] for name, v in start.items()],
        ),
    ]
    return "\n".join(lines) + "\n\n" + distributed_report(payload["distributed"])


def distributed_report(ranks):
    rows = []
    for name, result in ranks.items():
        one = next(
            r
            for r in ranks.values()
            if r["ranks"] == 1 and r["global_batch"] == result["global_batch"]
        )
        # With two free cores, two ranks doing half the work each would take
        # half the time; what they take beyond that is communication and waiting.
        overhead = 1 - one["epoch_seconds"] / result["ranks"] / result["epoch_seconds"]
        rows.append(
            [
                name,
                str(result["global_batch"]),
                f"{result['epoch_seconds']:.3f}",
                f"{result['test_mse']:.5f}",
                f"{overhead:.0%}" if result["ranks"] > 1 else "",
            ]
        )
    return "\n".join(
        [
            "### Data-parallel training: 1 rank against 2 ranks of one thread each "
            "(gloo on 127.0.0.1, MNIST split, 10 epochs; epoch seconds are means)",
            "",
            markdown_table(
                [
                    "ranks x rows per rank",
                    "global batch",
                    "epoch s",
                    "test MSE",
                    "beyond half the 1-rank epoch",
                ],
                rows,
            ),
        ]
    )


if __name__ == "__main__":
    main()
