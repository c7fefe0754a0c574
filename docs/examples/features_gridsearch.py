"""
Autoencoder codes as classifier features, tuned with GridSearchCV, against PCA
==============================================================================

Puts an AutoencoderTransformer, then PCA, in front of a logistic regression
in a ``Pipeline`` and picks ``reduce__n_components`` by 3-fold
``GridSearchCV`` on the training split of scikit-learn's digits. Prints each
search's best parameters, cross-validated accuracy and test accuracy, and
plots test accuracy (and cross-validated accuracy) against n_components for
both reducers.

The digits ship with scikit-learn: nothing to download. Run
``python docs/examples/features_gridsearch.py``; the figure goes to
``docs/images/features_gridsearch.png``.
"""

import matplotlib.pyplot as plt
from _shared import SEED, parse_args, save, timed_fit
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline

from skae import AutoencoderTransformer

N_COMPONENTS = [2, 8, 16]
MAX_EPOCHS = 50


def load_split():
    """Digits (raw pixels 0-16), split 80/20 (stratified)."""
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.2, stratify=y, random_state=SEED)


def pipelines():
    reducers = {
        "AutoencoderTransformer": AutoencoderTransformer(max_epochs=MAX_EPOCHS, random_state=SEED),
        "PCA": PCA(random_state=SEED),
    }
    return {
        name: Pipeline([("reduce", reducer), ("clf", LogisticRegression(max_iter=5000))])
        for name, reducer in reducers.items()
    }


def search(pipeline, X_train, X_test, y_train, y_test):
    """Grid search on the training split, then test accuracy at every n_components."""
    grid = GridSearchCV(pipeline, {"reduce__n_components": N_COMPONENTS}, cv=3)
    seconds = timed_fit(grid, X_train, y_train)
    test_accuracy = []
    for k in N_COMPONENTS:
        model = clone(pipeline).set_params(reduce__n_components=k)
        seconds += timed_fit(model, X_train, y_train)
        test_accuracy.append(model.score(X_test, y_test))
    return {
        "best_params": grid.best_params_,
        "cv_accuracy": grid.cv_results_["mean_test_score"],
        "best_test_accuracy": grid.score(X_test, y_test),
        "test_accuracy": test_accuracy,
        "seconds": seconds,
    }


def accuracy_figure(results):
    fig, ax = plt.subplots(figsize=(5.5, 4), layout="constrained")
    for (name, r), colour in zip(results.items(), ("C0", "C1"), strict=True):
        ax.plot(N_COMPONENTS, r["test_accuracy"], "o-", color=colour, label=f"{name}, test")
        ax.plot(N_COMPONENTS, r["cv_accuracy"], "s--", color=colour, alpha=0.6, label=f"{name}, CV")
    ax.set_xticks(N_COMPONENTS)
    ax.set_xlabel("n_components")
    ax.set_ylabel("accuracy of logistic regression")
    ax.set_title("digits: reducer + LogisticRegression")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return fig


def main(argv=None):
    parse_args(__doc__, argv, data_home=False)
    X_train, X_test, y_train, y_test = load_split()
    print(
        f"digits: {len(X_train)} training, {len(X_test)} test images; 3-fold grid search over "
        f"n_components in {N_COMPONENTS}; autoencoder {MAX_EPOCHS} epochs per fit\n"
    )
    results = {}
    for name, pipeline in pipelines().items():
        r = results[name] = search(pipeline, X_train, X_test, y_train, y_test)
        print(
            f"{name}: best {r['best_params']}, CV accuracy {max(r['cv_accuracy']):.3f}, "
            f"test accuracy {r['best_test_accuracy']:.3f} ({r['seconds']:.0f} s)"
        )
    print(f"\n{'n_components':>12} " + " ".join(f"{name + ' test':>27}" for name in results))
    for i, k in enumerate(N_COMPONENTS):
        print(f"{k:>12} " + " ".join(f"{r['test_accuracy'][i]:>27.3f}" for r in results.values()))
    print()
    save(accuracy_figure(results), "features_gridsearch.png", dpi=90)


if __name__ == "__main__":
    main()
