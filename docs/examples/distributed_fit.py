"""
Data-parallel training with torch.distributed: one model, several processes
===========================================================================

Launch with PyTorch's own launcher, which starts the processes and the
process group's rendezvous::

    torchrun --standalone --nproc-per-node=2 docs/examples/distributed_fit.py

Every rank calls ``fit`` with the same data: the MNIST split when
``--data-home`` or ``SKAE_DATA_HOME`` points at MNIST's IDX files, else
scikit-learn's digits. Each rank trains on its share of every global batch
(``batch_size`` rows per rank), gradients are averaged by
``DistributedDataParallel``, and every rank ends with the same model. Rank 0
prints the test reconstruction error and saves the model (``--output``,
default ``distributed_model.skae``), which then loads and transforms in one
process like any other. ``device="auto"`` picks ``cuda:LOCAL_RANK`` on a
machine with GPUs (use ``--backend nccl`` there), else the CPU (gloo).

``--quick`` trains a small network on digits for two epochs (the test suite
runs it that way).
"""

import argparse
import os
import warnings

import numpy as np
import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer
from skae.datasets import load_mnist


def parse_args():
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().split("\n", 1)[0])
    parser.add_argument("--data-home", default=None, help="MNIST's folder (else SKAE_DATA_HOME)")
    parser.add_argument("--output", default="distributed_model.skae", help="where rank 0 saves")
    parser.add_argument("--backend", default="gloo", choices=["gloo", "nccl"])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="digits, a small net, 2 epochs")
    return parser.parse_args()


def load_data(args):
    """Training and test rows: the MNIST split if it can be found, else digits in [0, 1]."""
    if not args.quick and (args.data_home or os.environ.get("SKAE_DATA_HOME")):
        mnist = load_mnist(args.data_home)
        test = mnist.split == "test"
        X, y = mnist.data[test], mnist.target[test]
    else:
        X, y = load_digits(return_X_y=True)
        X = X / 16.0
    return train_test_split(X, test_size=0.2, stratify=y, random_state=0)


def main():
    args = parse_args()
    warnings.simplefilter("ignore", category=UserWarning)
    dist.init_process_group(args.backend)
    if args.backend == "nccl":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    rank = dist.get_rank()
    X_train, X_test = load_data(args)
    model = AutoencoderTransformer(
        n_components=2 if args.quick else 10,
        hidden_layer_sizes=(32,) if args.quick else (512, 256),
        max_epochs=2 if args.quick else args.epochs,
        random_state=0,
        verbose=1,  # printed by rank 0 only
    )
    model.fit(X_train)
    if rank == 0:
        error = np.mean((model.inverse_transform(model.transform(X_test)) - X_test) ** 2)
        print(
            f"{dist.get_world_size()} ranks, {len(X_train)} training rows, "
            f"{model.n_iter_} epochs: test MSE {error:.5f}"
        )
        model.save(args.output)
        print(f"saved {args.output}")
    # Tear down together: a rank that leaves while another still works can
    # abort in gloo's teardown ("terminate called without an active exception").
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
