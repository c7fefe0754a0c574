"""Warnings point at the user's line, however the fit was reached."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X = np.random.RandomState(0).rand(60, 6)


def caught(call):
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        call()
    return [r for r in records if issubclass(r.category, ConvergenceWarning)]


@pytest.mark.parametrize(
    "call",
    [
        lambda model: model.fit(X),
        lambda model: model.fit_transform(X),
        lambda model: model.set_output(transform="pandas").fit_transform(X),
        lambda model: make_pipeline(StandardScaler(), model).fit(X),
        lambda model: make_pipeline(StandardScaler(), model).fit_transform(X),
    ],
    ids=["fit", "fit_transform", "set_output", "pipeline.fit", "pipeline.fit_transform"],
)
def test_convergence_warning_points_at_the_callers_line(make_estimator, call):
    pytest.importorskip("pandas")
    records = caught(lambda: call(make_estimator(max_epochs=2)))

    assert records, "a two-epoch fit warns that it stopped early"
    assert all(record.filename == __file__ for record in records)


def test_kept_start_warning_through_warm_start_and_search_points_at_the_caller(make_estimator):
    model = make_estimator(max_epochs=2, warm_start=True, learning_rate=5.0)
    records = caught(lambda: model.fit(X))
    records += caught(lambda: GridSearchCV(model, {"n_components": [1, 2]}, cv=2).fit(X))

    assert records
    assert all(record.filename == __file__ for record in records)


def test_no_warning_when_the_start_is_already_exact():
    # n_components >= n_features: the PCA start reconstructs exactly, so
    # "did not improve ... try a lower learning_rate" could never help.
    from skae import AutoencoderTransformer

    X = np.random.RandomState(0).normal(size=(500, 2)) @ np.array([[2.0, 1.0], [0.0, 0.5]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = AutoencoderTransformer(n_components=2, random_state=0, device="cpu").fit(X)
    assert model.reconstruction_r2_ > 1 - 1e-9


@pytest.mark.parametrize("name", ["AutoencoderTransformer", "VAETransformer"])
def test_default_fits_on_the_readmes_data_do_not_warn(name):
    # At the default 100 epochs the training loss still falls 0.16-0.73% of
    # its progress per epoch (seeds 0-2, bench_convergence.py), and more
    # epochs do not reliably help held-out data: no warning, against a bar of 1%.
    from sklearn.datasets import load_digits

    import skae

    X = load_digits().data
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        getattr(skae, name)(n_components=2, random_state=0, device="cpu").fit(X)


def test_recent_progress_is_the_last_epochs_share_of_the_whole_drop():
    from skae._callbacks import recent_progress

    converging = [10 * 0.5**epoch + 100 for epoch in range(30)]  # an offset, as an ELBO has
    steady = [100.0 - epoch for epoch in range(30)]

    assert recent_progress(converging) < 1e-3
    assert recent_progress(steady) == pytest.approx(1 / 29)
    assert recent_progress([5.0, 4.0]) == 1.0
    assert recent_progress([5.0]) == recent_progress([]) == 0.0
    assert recent_progress([4.0, 5.0, 6.0]) == 0.0  # never improved
    assert recent_progress([5.0, float("nan"), 4.0]) == 1.0
