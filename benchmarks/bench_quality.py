"""Reconstruction error and code quality of PCA and the autoencoder.

Every method is fitted with its default hyperparameters (only the number of
components and ``random_state=0`` set) on a training split and scored on the
held-out test split:

- ``mse``: mean over all test entries of the squared reconstruction error
  (``inverse_transform(transform(X_test))``), in the data's units;
- ``mse/PCA``: that error divided by PCA's at the same dataset and k;
- ``5-NN acc``: accuracy on the test codes of ``KNeighborsClassifier(5)``
  fitted on the training codes;
- ``trustworthiness``: ``sklearn.manifold.trustworthiness`` of the test codes
  with respect to the test data, ``n_neighbors=5``;
- ``fit s``: seconds of ``fit`` on the training split;
- ``ELBO``: for the VAE, the mean test ELBO in nats per image
  (``VAETransformer.score``; a density in the data's units for the Gaussian
  likelihood, so only comparable between VAEs on the same data).

With MNIST selected, a second table gives a Bernoulli VAE on binarised
MNIST (pixels > 0.5) at every k: its test ELBO and the IWAE estimate of the
test negative log-likelihood with K=100 draws, the figure the VAE literature
reports (about 89-90 nats for a VAE trained on all 60,000 training images;
this one sees 8,000).

``AutoencoderTransformer conv`` is ``architecture="conv"`` with its default
channels (32, 64), on the image datasets only. ``AutoencoderTransformer
neighbor_weight=1`` adds the neighbour-preserving objective (defaults
otherwise). ``UMAP`` (umap-learn's defaults, ``random_state=0``) runs at
k <= 3 when umap-learn is installed (``pip install skae[bench]``); it has no
decoder, so its ``mse`` is empty.

Methods are rows of :func:`method_registry`: adding one (a VAE, say) is one
entry there. Run ``python benchmarks/bench_quality.py --help`` for the options.
"""

import argparse
import sys
import time
import warnings

import numpy as np
import torch
from _common import (
    DIGITS_NOTE,
    MNIST_NOTE,
    add_common_arguments,
    check_common_arguments,
    comma_list,
    digits_split,
    emit,
    environment,
    environment_line,
    fail,
    markdown_table,
    mnist_split,
    progress,
)
from sklearn.datasets import load_wine
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.manifold import trustworthiness
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from skae import AutoencoderTransformer, VAETransformer

SEED = 0
BASELINE = "PCA"
N_NEIGHBORS = 5
# dataset name -> (loader returning X_train, X_test, y_train, y_test, default ks,
# image shape (channels, height, width) or None for tabular data)
DATASETS = {
    "mnist": (mnist_split, (2, 10, 32), (1, 28, 28)),
    "digits": (lambda data_home: digits_split(), (2, 10), (1, 8, 8)),
    "wine": (lambda data_home: wine_split(), (2,), None),
}
WINE_NOTE = (
    "wine: sklearn load_wine (178 samples, 13 raw features on very different "
    "scales, not standardised), stratified 75/25 split, random_state=0."
)
NOTES = {"mnist": MNIST_NOTE, "digits": DIGITS_NOTE, "wine": WINE_NOTE}


def wine_split():
    """``X_train, X_test, y_train, y_test`` of the raw (unscaled) wine data."""
    X, y = load_wine(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=SEED)


COLUMNS = (
    ("dataset", "dataset"),
    ("k", "k"),
    ("method", "method"),
    ("mse", "mse"),
    ("mse/PCA", "mse_ratio_to_pca"),
    ("5-NN acc", "knn_accuracy"),
    ("trustworthiness", "trustworthiness"),
    ("fit s", "fit_seconds"),
    ("ELBO", "elbo"),
    ("epochs", "epochs"),
)
IWAE_DRAWS = 100
CONV = "AutoencoderTransformer conv"
NEIGHBORS = "AutoencoderTransformer neighbor_weight=1"
UMAP_MAX_COMPONENTS = 3


def umap_factory():
    """UMAP's factory (maps of at most 3 components), or None without umap-learn."""
    try:
        from umap import UMAP
    except ImportError:
        return None

    def make(k, image_shape):
        return UMAP(n_components=k, random_state=SEED) if k <= UMAP_MAX_COMPONENTS else None

    return make


def method_registry(max_epochs=None):
    """Map each method's name to ``factory(k, image_shape)``, an unfitted transformer.

    A factory returns None for data it does not apply to (the convolutional
    autoencoder on data that are not images). ``max_epochs`` overrides the
    autoencoders' epoch budget (for smoke tests); every other hyperparameter
    is the estimator's default.
    """
    budget = {} if max_epochs is None else {"max_epochs": max_epochs}

    def conv(k, image_shape):
        if image_shape is None:
            return None
        return AutoencoderTransformer(
            n_components=k,
            architecture="conv",
            input_shape=image_shape,
            random_state=SEED,
            **budget,
        )

    registry = {
        BASELINE: lambda k, image_shape: PCA(n_components=k, random_state=SEED),
        "AutoencoderTransformer": lambda k, image_shape: AutoencoderTransformer(
            n_components=k, random_state=SEED, **budget
        ),
        "VAETransformer": lambda k, image_shape: VAETransformer(
            n_components=k, random_state=SEED, **budget
        ),
        CONV: conv,
        NEIGHBORS: lambda k, image_shape: AutoencoderTransformer(
            n_components=k, neighbor_weight=1.0, random_state=SEED, **budget
        ),
    }
    if umap_factory() is not None:
        registry["UMAP"] = umap_factory()
    return registry


def fit_timed(estimator, X):
    """Fit ``estimator`` on ``X``; return the seconds and any ConvergenceWarning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        started = time.perf_counter()
        estimator.fit(X)
        seconds = time.perf_counter() - started
    for warning in caught:
        if not issubclass(warning.category, ConvergenceWarning):
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return seconds, any(issubclass(w.category, ConvergenceWarning) for w in caught)


def evaluate(estimator, X_train, X_test, y_train, y_test):
    """Fit ``estimator`` and measure its test reconstruction and codes."""
    fit_seconds, hit_budget = fit_timed(estimator, X_train)
    train_codes = estimator.transform(X_train)
    test_codes = estimator.transform(X_test)
    mse = None
    if isinstance(estimator, (PCA, AutoencoderTransformer, VAETransformer)):
        reconstruction = estimator.inverse_transform(test_codes)
        residual = np.asarray(reconstruction, dtype=np.float64) - np.asarray(X_test, np.float64)
        mse = float(np.mean(residual**2))
    knn = KNeighborsClassifier(N_NEIGHBORS).fit(train_codes, y_train)
    return {
        "mse": mse,
        "knn_accuracy": float(knn.score(test_codes, y_test)),
        "trustworthiness": float(trustworthiness(X_test, test_codes, n_neighbors=N_NEIGHBORS)),
        "fit_seconds": fit_seconds,
        "elbo": float(estimator.score(X_test)) if isinstance(estimator, VAETransformer) else None,
        "epochs": getattr(estimator, "n_iter_", None),
        "convergence_warning": hit_budget,
        "device": str(getattr(estimator, "device_", "cpu")),
    }


def warm_up(methods):
    """Fit every method once on a tiny random problem, untimed.

    The first fit in a process pays one-off costs (lazy initialisation of
    torch's kernels and thread pools: seconds on a CPU) that would otherwise
    be charged to whichever row comes first.
    """
    X = np.random.default_rng(SEED).random((64, 16))
    for factory in methods.values():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            factory(2, (1, 4, 4)).fit(X).transform(X)


def add_baseline_ratios(rows):
    """Set ``mse_ratio_to_pca`` on every row that has a PCA row at its dataset and k."""
    baseline = {(row["dataset"], row["k"]): row["mse"] for row in rows if row["method"] == BASELINE}
    for row in rows:
        pca_mse = baseline.get((row["dataset"], row["k"]))
        row["mse_ratio_to_pca"] = row["mse"] / pca_mse if pca_mse and row["mse"] else None


def binarised_likelihood(ks, data_home, max_epochs):
    """Test ELBO and IWAE negative log-likelihood of a Bernoulli VAE on binarised MNIST."""
    X_train, X_test, _, _ = mnist_split(data_home)
    X_train, X_test = (X_train > 0.5).astype(np.float32), (X_test > 0.5).astype(np.float32)
    budget = {} if max_epochs is None else {"max_epochs": max_epochs}
    rows = []
    for k in ks or DATASETS["mnist"][1]:
        progress(f"binarised mnist k={k} bernoulli VAE ...")
        vae = VAETransformer(n_components=k, likelihood="bernoulli", random_state=SEED, **budget)
        seconds, _ = fit_timed(vae, X_train)
        nll = -vae.iwae_log_likelihood(X_test, n_draws=IWAE_DRAWS, random_state=SEED).mean()
        rows.append(
            {
                "k": k,
                "elbo": float(vae.score(X_test)),
                "iwae_nll": float(nll),
                "fit_seconds": seconds,
            }
        )
    return rows


def likelihood_report(rows):
    header = (
        "## Bernoulli VAE on binarised MNIST (pixels > 0.5), test set\n\n"
        f"ELBO and the IWAE estimate (K={IWAE_DRAWS}) of -log p(x), nats per image. "
        "Published VAEs reach about 89-90 nats trained on all 60,000 training "
        "images; these models see 8,000.\n\n"
    )
    table = markdown_table(
        ["k", "test ELBO", f"test NLL (IWAE, K={IWAE_DRAWS})", "fit s"],
        [[r["k"], r["elbo"], r["iwae_nll"], r["fit_seconds"]] for r in rows],
    )
    return header + table


def run(datasets, ks, methods, data_home):
    """Evaluate every method at every k on every dataset; return the rows."""
    warm_up(methods)
    rows = []
    for name in datasets:
        load, default_ks, image_shape = DATASETS[name]
        X_train, X_test, y_train, y_test = load(data_home)
        for k in ks or default_ks:
            for method, factory in methods.items():
                estimator = factory(k, image_shape)
                if estimator is None:
                    continue
                progress(f"{name} k={k} {method} ...")
                scores = evaluate(estimator, X_train, X_test, y_train, y_test)
                rows.append({"dataset": name, "k": k, "method": method, **scores})
                mse = "none" if scores["mse"] is None else f"{scores['mse']:.4g}"
                progress(f"  mse {mse}, fit {scores['fit_seconds']:.1f} s")
    add_baseline_ratios(rows)
    return rows


def report(rows, datasets, env, max_epochs):
    """The markdown report: what was run, then the table."""
    header = [
        "## Reconstruction and code quality on held-out test data",
        "",
        environment_line(env),
        "Default hyperparameters; only n_components (k) and random_state=0 set.",
    ]
    if max_epochs is not None:
        header.append(f"Autoencoders limited to max_epochs={max_epochs} (--max-epochs).")
    header += [NOTES[name] for name in datasets]
    header.append(
        "mse: mean squared reconstruction error over all test entries, in the "
        "data's units. 5-NN acc: KNeighborsClassifier(5) fitted on the training "
        "codes, scored on the test codes. trustworthiness: test data vs test "
        "codes, n_neighbors=5. epochs: epochs run (empty for PCA)."
    )
    table = markdown_table(
        [title for title, _ in COLUMNS], [[row[key] for _, key in COLUMNS] for row in rows]
    )
    return "\n".join(header) + "\n\n" + table


def parse_args(argv=None):
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument(
        "--datasets",
        default=",".join(DATASETS),
        help="comma-separated subset of: mnist,digits,wine (default: all)",
    )
    parser.add_argument(
        "--ks",
        default=None,
        help="comma-separated code sizes used for every dataset "
        "(default: 2,10,32 on mnist and 2,10 on digits)",
    )
    parser.add_argument(
        "--methods",
        default=None,
        help="comma-separated subset of the methods (default: all); mse/PCA needs PCA",
    )
    parser.add_argument(
        "--max-epochs",
        type=int,
        metavar="N",
        default=None,
        help="override the autoencoders' max_epochs (for smoke tests)",
    )
    args = parser.parse_args(argv)
    check_common_arguments(parser, args)
    if args.max_epochs is not None and args.max_epochs < 1:
        parser.error("--max-epochs must be at least 1")
    registry = method_registry(args.max_epochs)
    try:
        args.datasets = comma_list(args.datasets, DATASETS)
        args.ks = None if args.ks is None else comma_list(args.ks, convert=int)
        names = list(registry) if args.methods is None else comma_list(args.methods, registry)
    except ValueError as error:
        parser.error(f"invalid list: {error}")
    if args.ks is not None and min(args.ks) < 1:
        parser.error("--ks must be positive integers")
    args.methods = {name: registry[name] for name in names}
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        rows = run(args.datasets, args.ks, args.methods, args.data_home)
    except FileNotFoundError as error:
        fail(str(error))
    likelihood_rows = []
    if "mnist" in args.datasets and "VAETransformer" in args.methods:
        likelihood_rows = binarised_likelihood(args.ks, args.data_home, args.max_epochs)
    env = environment("cuda" if torch.cuda.is_available() else "cpu")
    payload = {
        "environment": env,
        "settings": {
            "datasets": args.datasets,
            "ks": args.ks,
            "methods": list(args.methods),
            "max_epochs": args.max_epochs,
            "command": sys.argv,
        },
        "notes": [NOTES[name] for name in args.datasets],
        "rows": rows,
        "binarised_mnist_likelihood": likelihood_rows,
    }
    text = report(rows, args.datasets, env, args.max_epochs)
    if likelihood_rows:
        text += "\n\n" + likelihood_report(likelihood_rows)
    emit(text, payload, args.output, args.json)


if __name__ == "__main__":
    main()
