"""Data-parallel fits in a real torch.distributed process group (gloo, 127.0.0.1).

One group of two spawned ranks runs every scenario in turn and saves what
each rank ends with; the tests compare the ranks' files. Nothing is mocked.
"""

import os
import subprocess
import sys
import time
import traceback
import warnings

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from sklearn.datasets import load_digits

import skae
from skae import AutoencoderTransformer, VAETransformer

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

WORLD_SIZE = 2
TIMEOUT = 240
FAST = dict(hidden_layer_sizes=(16,), max_epochs=4, batch_size=32, random_state=0, device="cpu")


def digits(n):
    return load_digits().data[:n] / 16.0


SCENARIOS = {
    "autoencoder": lambda rank: (AutoencoderTransformer(**FAST), digits(400)),
    "uneven rows": lambda rank: (AutoencoderTransformer(**FAST), digits(331)),
    "early stopping": lambda rank: (
        AutoencoderTransformer(
            **{**FAST, "max_epochs": 30},
            early_stopping=True,
            n_iter_no_change=2,
            learning_rate=3e-2,
        ),
        digits(400),
    ),
    "vae": lambda rank: (VAETransformer(**FAST, kl_warmup_epochs=2), digits(400)),
    "conv": lambda rank: (
        AutoencoderTransformer(
            **FAST, architecture="conv", input_shape=(1, 8, 8), conv_channels=(4,)
        ),
        digits(200),
    ),
    "partial_fit": lambda rank: (AutoencoderTransformer(**FAST), digits(400)),
    "streamed": lambda rank: (AutoencoderTransformer(**FAST), digits(400)),
    "batch norm": lambda rank: (
        AutoencoderTransformer(**FAST, batch_norm=True, dropout=0.2),
        digits(331),
    ),
    "too few training rows": lambda rank: (
        AutoencoderTransformer(
            **FAST, batch_norm=True, early_stopping=True, validation_fraction=0.3
        ),
        digits(5),
    ),
    "different shapes": lambda rank: (AutoencoderTransformer(**FAST), digits(400 + rank)),
    "nan on one rank": lambda rank: (
        AutoencoderTransformer(**FAST),
        np.where(np.arange(400)[:, None] == 7 * rank, np.nan, digits(400)) if rank else digits(400),
    ),
}


def run_scenarios(rank, world_size, init_file, out_dir):
    """The body of each spawned rank."""
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    try:
        for name, make in SCENARIOS.items():
            model, X = make(rank)
            result = {}
            try:
                if name == "partial_fit":
                    model.partial_fit(X).partial_fit(X)
                elif name == "streamed":
                    with skae.config_context(memory_budget=1, stream_block_rows=30):
                        model.fit(X)
                else:
                    model.fit(X)
                result = {
                    "weights": {k: v.clone() for k, v in model._state.network.state_dict().items()},
                    "loss_curve": model.loss_curve_,
                    "validation_loss_curve": model.validation_loss_curve_,
                    "n_iter": model.n_iter_,
                    "codes": model.transform(X),
                    "optimizer": model._state.optimizer_state,
                }
            except ValueError as error:
                result = {"error": str(error)}
            torch.save(result, os.path.join(out_dir, f"{name}-{rank}.pt"))
        # Leave together: a rank that tears gloo down while the other still
        # works can abort ("terminate called without an active exception").
        dist.barrier()
    except BaseException:
        with open(os.path.join(out_dir, f"crash-{rank}.txt"), "w") as file:
            file.write(traceback.format_exc())
        raise
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Run every scenario on two ranks; return ``load(name)`` -> the two ranks' results."""
    out_dir = tmp_path_factory.mktemp("ranks")
    context = mp.start_processes(
        run_scenarios,
        args=(WORLD_SIZE, str(out_dir / "init"), str(out_dir)),
        nprocs=WORLD_SIZE,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + TIMEOUT
    try:
        while not context.join(timeout=5):
            if time.monotonic() > deadline:
                for process in context.processes:
                    process.kill()
                pytest.fail(f"the ranks did not finish in {TIMEOUT} s (a hang)")
    except mp.ProcessExitedException as error:
        # gloo can still abort a rank as the group is torn down, after every
        # result is saved ("terminate called without an active exception"):
        # torch's, not the fits'. Anything earlier leaves a result missing.
        saved = [out_dir / f"{name}-{rank}.pt" for name in SCENARIOS for rank in range(WORLD_SIZE)]
        crashed = list(out_dir.glob("crash-*.txt"))
        if error.signal_name is None or crashed or not all(path.exists() for path in saved):
            raise
        warnings.warn(
            f"a rank aborted in gloo's teardown, after all its work: {error}", stacklevel=2
        )

    def load(name):
        return [
            torch.load(out_dir / f"{name}-{rank}.pt", weights_only=False)
            for rank in range(WORLD_SIZE)
        ]

    return load


def assert_identical(results):
    first, second = results
    assert "error" not in first, first.get("error")
    assert first["loss_curve"] == second["loss_curve"]
    assert first["validation_loss_curve"] == second["validation_loss_curve"]
    assert first["n_iter"] == second["n_iter"]
    for name, value in first["weights"].items():
        assert torch.equal(value, second["weights"][name]), name


@pytest.mark.parametrize(
    "name",
    [
        "autoencoder",
        "uneven rows",
        "early stopping",
        "vae",
        "conv",
        "partial_fit",
        "batch norm",
        "streamed",
    ],
)
def test_every_rank_ends_with_the_same_model(ranks, name):
    results = ranks(name)
    assert_identical(results)
    np.testing.assert_array_equal(results[0]["codes"], results[1]["codes"])


def test_the_fitted_model_is_an_ordinary_one(ranks):
    weights = ranks("autoencoder")[0]["weights"]
    model = AutoencoderTransformer(**FAST).fit(digits(400))
    model._state.network.load_state_dict(weights)
    np.testing.assert_array_equal(model.transform(digits(400)), ranks("autoencoder")[0]["codes"])


def test_two_ranks_come_close_to_one_process_with_twice_the_batch(ranks):
    X = digits(400)
    single = AutoencoderTransformer(**{**FAST, "batch_size": 64}).fit(X)
    two_ranks = ranks("autoencoder")[0]

    assert single.n_iter_ == two_ranks["n_iter"]
    # The same global batches and gradients, summed in another order: equal up
    # to float32 rounding, which training lets grow a little.
    np.testing.assert_allclose(single.loss_curve_, two_ranks["loss_curve"], rtol=1e-3)
    codes = single.transform(X)
    assert np.abs(two_ranks["codes"] - codes).max() < 0.05 * np.abs(codes).max()


def test_early_stopping_decides_the_same_on_every_rank(ranks):
    first, _ = ranks("early stopping")
    assert first["n_iter"] < 30, "precondition: it stopped early"
    assert len(first["validation_loss_curve"]) == first["n_iter"]


@pytest.mark.parametrize(
    "name, message",
    [
        ("different shapes", "same data"),
        ("nan on one rank", "rank 1"),
        ("too few training rows", "each needs at least 2"),
    ],
)
def test_misuse_is_an_error_on_every_rank(ranks, name, message):
    for result in ranks(name):
        assert "error" in result, "every rank raises, none hangs"
    assert message in ranks(name)[0]["error"]


def test_fit_through_torchrun_saves_a_model_from_rank_zero(tmp_path):
    output = tmp_path / "model.skae"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        "docs/examples/distributed_fit.py",
        "--quick",
        "--output",
        str(output),
    ]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    completed = subprocess.run(
        command,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    model = skae.load(output)
    assert model.transform(digits(10)).shape == (10, 2)
    assert "saved" in completed.stdout
