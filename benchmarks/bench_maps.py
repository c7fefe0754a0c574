"""2-D maps: skae's neighbour objective against UMAP, PCA and the plain autoencoder.

Every method is fitted on the same training rows, seed after seed in one
interleaved run (issue 20's protocol). Measured for each fit:

- fitted rows: 5-NN accuracy (5-fold cross-validation on ``fit_transform``'s
  codes) and trustworthiness (5 neighbours, on a fixed random subsample of
  at most 2,000 training rows); for UMAP, its ``embedding_``;
- held-out rows: 5-NN accuracy (classifier fitted on ``fit_transform``'s
  training codes, as a Pipeline does, scored on the test codes from
  ``transform``; and fitted on ``transform``'s training codes instead) and
  trustworthiness of the test codes (5 neighbours); for UMAP its
  ``transform``, which optimises each new point against the training
  embedding;
- reconstruction: mean squared error of ``inverse_transform(transform)`` on
  the test rows (no decoder in UMAP);
- fit seconds, the neighbour graph included. UMAP's first fit in the
  process (numba compiling) is reported apart from its compiled fits.

Data: the MNIST benchmark split (8,000 / 2,000 of MNIST's t10k images), a
second MNIST split (another seed: no one tuned on it), scikit-learn's digits
(1,437 / 360) and a Swiss roll lifted to 100-D by a random rotation with
noise (labels: the roll's angle in 10 bins). Each figure is the median over
``--seeds`` with the spread (min-max). Needs umap-learn (``pip install
skae[bench]``).
"""

import argparse
import time
import warnings

import numpy as np
from _common import (
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
from sklearn.datasets import make_swiss_roll
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.manifold import trustworthiness
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.neighbors import KNeighborsClassifier

from skae import AutoencoderTransformer

TRUST_ROWS = 2000
N_NEIGHBORS = 5


def swiss_roll_100d(seed=0):
    """A Swiss roll of 3,000 points rotated into 100-D with noise; labels: angle in 10 bins."""
    rng = np.random.default_rng(seed)
    X3, angle = make_swiss_roll(3000, noise=0.05, random_state=seed)
    rotation, _ = np.linalg.qr(rng.normal(size=(100, 100)))
    X = np.hstack([X3, np.zeros((len(X3), 97))]) @ rotation.T + 0.05 * rng.normal(size=(3000, 100))
    y = np.digitize(angle, np.quantile(angle, np.linspace(0, 1, 11)[1:-1]))
    return train_test_split(X.astype(np.float32), y, test_size=600, random_state=seed, stratify=y)


DATASETS = {
    "mnist": lambda home: mnist_split(home),
    "mnist-split2": lambda home: mnist_split(home, random_state=1),
    "digits": lambda home: digits_split(),
    "swiss-roll-100d": lambda home: swiss_roll_100d(),
}


def methods(seed):
    """Each method's factory for one seed (PCA has no seed to vary)."""
    from umap import UMAP

    return {
        "PCA": lambda: PCA(2),
        "AE (plain)": lambda: AutoencoderTransformer(2, random_state=seed),
        "skae map (neighbor_weight=1)": lambda: AutoencoderTransformer(
            2, neighbor_weight=1.0, random_state=seed
        ),
        # Input noise as augmentation: the encoder carries the map to new rows better.
        "skae map, denoising (neighbor_weight=3, noise=0.3)": lambda: AutoencoderTransformer(
            2, neighbor_weight=3.0, noise="gaussian", noise_level=0.3, random_state=seed
        ),
        "UMAP": lambda: UMAP(random_state=seed),
    }


def evaluate(name, estimator, X_train, X_test, y_train, y_test, trust_rows):
    """Fit ``estimator`` and measure its maps (see the module docstring)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        started = time.perf_counter()
        train_codes = estimator.fit_transform(X_train)
        seconds = time.perf_counter() - started
    test_codes = estimator.transform(X_test)
    knn = KNeighborsClassifier(N_NEIGHBORS)
    scores = {
        "fit_seconds": seconds,
        "fitted_knn": float(cross_val_score(knn, train_codes, y_train, cv=5).mean()),
        "fitted_trust": float(
            trustworthiness(X_train[trust_rows], train_codes[trust_rows], n_neighbors=N_NEIGHBORS)
        ),
        "held_out_knn": float(knn.fit(train_codes, y_train).score(test_codes, y_test)),
        "held_out_knn_transform": float(
            knn.fit(estimator.transform(X_train), y_train).score(test_codes, y_test)
        ),
        "held_out_trust": float(trustworthiness(X_test, test_codes, n_neighbors=N_NEIGHBORS)),
        "test_mse": None,
    }
    if hasattr(estimator, "inverse_transform") and name != "UMAP":
        reconstruction = estimator.inverse_transform(test_codes)
        scores["test_mse"] = float(np.mean((reconstruction - X_test) ** 2))
    return scores


def run(datasets, seeds, data_home):
    rows, first_umap = [], None
    for dataset in datasets:
        X_train, X_test, y_train, y_test = DATASETS[dataset](data_home)
        trust_rows = np.random.default_rng(0).choice(
            len(X_train), min(TRUST_ROWS, len(X_train)), replace=False
        )
        for seed in seeds:
            for method, factory in methods(seed).items():
                if method == "PCA" and seed != seeds[0]:
                    continue
                progress(f"{dataset} seed {seed}: {method} ...")
                scores = evaluate(method, factory(), X_train, X_test, y_train, y_test, trust_rows)
                if method == "UMAP" and first_umap is None:
                    first_umap = scores["fit_seconds"]  # numba compiling: fit again
                    scores = evaluate(
                        method, factory(), X_train, X_test, y_train, y_test, trust_rows
                    )
                rows.append({"dataset": dataset, "seed": seed, "method": method, **scores})
                progress(
                    f"  fitted {scores['fitted_knn']:.4f}/{scores['fitted_trust']:.4f} "
                    f"held-out {scores['held_out_knn']:.4f}/{scores['held_out_trust']:.4f} "
                    f"{scores['fit_seconds']:.1f} s"
                )
    return rows, first_umap


METRICS = [
    ("fitted 5-NN", "fitted_knn"),
    ("fitted trust.", "fitted_trust"),
    ("held-out 5-NN", "held_out_knn"),
    ("held-out 5-NN (transform)", "held_out_knn_transform"),
    ("held-out trust.", "held_out_trust"),
    ("test MSE", "test_mse"),
    ("fit s", "fit_seconds"),
]


def summary(values, digits=4):
    """``median (min-max)`` of ``values``, or the value alone when there is one."""
    values = [v for v in values if v is not None]
    if not values:
        return ""
    digits = 1 if max(values) > 10 else digits
    median = f"{np.median(values):.{digits}f}"
    if len(values) == 1:
        return median
    return f"{median} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def report(rows, first_umap, env, seeds):
    lines = [
        "## 2-D maps: skae's neighbour objective, UMAP, PCA and the plain autoencoder",
        "",
        environment_line(env),
        f"Seeds {', '.join(map(str, seeds))} (random_state of skae and UMAP), interleaved; "
        "each cell: median (min-max). Defaults otherwise; n_components=2.",
        "Fitted rows: fit_transform's codes (UMAP: embedding_), 5-NN by 5-fold CV, "
        f"trustworthiness on {TRUST_ROWS} rows. Held-out: transform's codes, 5-NN "
        "fitted on the training codes (fit_transform's; '(transform)': on transform's "
        "codes of the training rows); trustworthiness of the test rows. test MSE: "
        "inverse_transform(transform(X_test)). fit s: the whole fit, graph included.",
        f"UMAP's first fit in the process (numba compiling): {first_umap:.1f} s.",
        "",
    ]
    table = []
    keys = sorted({(r["dataset"], r["method"]) for r in rows}, key=lambda k: (k[0],))
    order = list(methods(0))
    keys.sort(key=lambda k: (list(DATASETS).index(k[0]), order.index(k[1])))
    for dataset, method in keys:
        group = [r for r in rows if r["dataset"] == dataset and r["method"] == method]
        table.append(
            [dataset, method]
            + [
                summary([r[key] for r in group], 1 if key == "fit_seconds" else 4)
                for _, key in METRICS
            ]
        )
    return "\n".join(lines) + markdown_table(["data", "method"] + [t for t, _ in METRICS], table)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--report-from", metavar="JSON", help="only rewrite the report of an earlier run's JSON"
    )
    args = parser.parse_args(argv)
    if args.report_from:
        import json

        with open(args.report_from) as file:
            saved = json.load(file)
        seeds = sorted({row["seed"] for row in saved["rows"]})
        markdown = report(saved["rows"], saved["first_umap_seconds"], saved["environment"], seeds)
        emit(markdown, saved, args.output, None)
        return
    check_common_arguments(parser, args)
    try:
        import umap  # noqa: F401
    except ImportError:
        fail("bench_maps compares with UMAP: pip install skae[bench]")
    datasets = comma_list(args.datasets, DATASETS)
    seeds = comma_list(args.seeds, convert=int)
    env = environment()
    rows, first_umap = run(datasets, seeds, args.data_home)
    emit(
        report(rows, first_umap, env, seeds),
        {"environment": env, "first_umap_seconds": first_umap, "rows": rows},
        args.output,
        args.json,
    )


if __name__ == "__main__":
    main()
