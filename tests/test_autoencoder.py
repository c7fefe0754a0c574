"""Behaviour of AutoencoderTransformer, beyond scikit-learn's common checks."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from helpers import pickle_round_trip
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_wine
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, train_test_split

import skae
from skae import AutoencoderTransformer, DivergenceError, VAETransformer

# Tiny fits rarely converge; tests that are about convergence record warnings themselves.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def reconstruct(ae, X):
    return ae.inverse_transform(ae.transform(X))


def numpy_rng_state():
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    return name, keys.copy(), pos, has_gauss, cached


# ------------------------------------------------------------------ shapes


@pytest.mark.parametrize("hidden_layer_sizes", [(), 16, (16, 8)])
@pytest.mark.parametrize("n_components", [1, 3])
def test_fit_transform_inverse_transform_shapes(
    make_autoencoder, small_X, hidden_layer_sizes, n_components
):
    ae = make_autoencoder(n_components=n_components, hidden_layer_sizes=hidden_layer_sizes)

    assert ae.fit(small_X) is ae
    codes = ae.transform(small_X)
    assert codes.shape == (60, n_components)
    assert ae.inverse_transform(codes).shape == (60, 6)
    assert ae.score_samples(small_X).shape == (60,)
    assert ae.n_features_in_ == 6
    assert_array_equal(make_autoencoder(**ae.get_params()).fit_transform(small_X), codes)


def test_fitted_attributes(make_autoencoder, small_X):
    ae = make_autoencoder(max_epochs=4).fit(small_X)

    assert ae.n_iter_ == 4
    assert len(ae.loss_curve_) == 4
    assert all(np.isfinite(ae.loss_curve_))
    assert ae.best_loss_ == pytest.approx(min(ae.loss_curve_))
    assert ae.validation_loss_curve_ is None
    assert ae.device_ == torch.device("cpu")
    assert isinstance(ae.encoder_, torch.nn.Module)
    assert isinstance(ae.decoder_, torch.nn.Module)


def test_methods_before_fit_raise_not_fitted(make_autoencoder, small_X):
    ae = make_autoencoder()
    for method in (ae.transform, ae.inverse_transform, ae.score, ae.score_samples):
        with pytest.raises(NotFittedError, match="not fitted"):
            method(small_X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_dtype_is_preserved(make_autoencoder, small_X, dtype):
    X = small_X.astype(dtype)
    ae = make_autoencoder()

    codes = ae.fit_transform(X)

    assert codes.dtype == dtype
    assert ae.transform(X).dtype == dtype
    assert ae.inverse_transform(codes).dtype == dtype


def test_integer_input_gives_float64(make_autoencoder):
    X = np.random.RandomState(0).randint(0, 10, size=(40, 5))

    ae = make_autoencoder().fit(X)

    assert ae.transform(X).dtype == np.float64
    assert ae.inverse_transform(ae.transform(X)).dtype == np.float64
    assert ae.score_samples(X).dtype == np.float64


# ----------------------------------------------------------------- scoring


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"output_activation": "sigmoid"},
        {"output_activation": "sigmoid", "loss": "bce"},
    ],
)
def test_score_is_minus_mean_squared_reconstruction_error(make_autoencoder, digits_X, params):
    ae = make_autoencoder(**params).fit(digits_X)

    expected = -np.mean((digits_X - reconstruct(ae, digits_X)) ** 2, axis=1)
    scores = ae.score_samples(digits_X)

    assert_allclose(scores, expected, rtol=1e-4)
    assert ae.score(digits_X) == pytest.approx(np.mean(scores), rel=1e-12)
    assert ae.score(digits_X) == pytest.approx(np.mean(expected), rel=1e-4)


def test_score_is_in_the_units_of_the_data(make_autoencoder, small_X):
    # Scaling the data by 10 scales the squared error by 100: the score is
    # in the user's units, not the internal scaled ones.
    # A linear output for both: "auto" would choose a sigmoid for small_X only.
    linear = {"output_activation": "linear"}
    scores = make_autoencoder(**linear).fit(small_X).score_samples(small_X)
    scaled_scores = make_autoencoder(**linear).fit(10 * small_X).score_samples(10 * small_X)

    assert_allclose(scaled_scores, 100 * scores, rtol=1e-2)


def test_loss_curve_is_the_training_mse_in_data_units(make_autoencoder, digits_X):
    ae = make_autoencoder(max_epochs=4).fit(digits_X)

    # The last epoch's mean training loss is taken while the weights move, so
    # it only approximates the final error; it must be of the same size.
    final_mse = np.mean((digits_X - reconstruct(ae, digits_X)) ** 2)
    assert ae.loss_curve_[-1] == pytest.approx(final_mse, rel=0.2)


# ------------------------------------------------------ scikit-learn tools


def test_grid_search_uses_score_without_a_scoring_argument(make_autoencoder, digits_X):
    search = GridSearchCV(make_autoencoder(), {"n_components": [1, 4]}, cv=2)
    search.fit(digits_X)

    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_["n_components"] in (1, 4)
    assert np.all(np.isfinite(scores))
    assert np.all(scores < 0)
    assert (
        search.best_estimator_.transform(digits_X).shape[1] == search.best_params_["n_components"]
    )


def test_grid_search_in_parallel_matches_serial(make_autoencoder, digits_X):
    grid = {"n_components": [1, 4]}
    serial = GridSearchCV(make_autoencoder(), grid, cv=2).fit(digits_X)
    parallel = GridSearchCV(make_autoencoder(), grid, cv=2, n_jobs=2).fit(digits_X)

    assert_allclose(
        parallel.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"], rtol=1e-5
    )


# ------------------------------------------------------------- persistence


# ------------------------------------------------------------ input types


def test_dataframe_input_sets_feature_names(make_autoencoder, small_X):
    columns = [f"feature_{i}" for i in range(6)]
    df = pd.DataFrame(small_X, columns=columns)

    ae = make_autoencoder(n_components=3).fit(df)

    assert_array_equal(ae.feature_names_in_, columns)
    assert_array_equal(
        ae.get_feature_names_out(),
        ["autoencodertransformer0", "autoencodertransformer1", "autoencodertransformer2"],
    )
    assert_array_equal(
        ae.transform(df), make_autoencoder(n_components=3).fit(small_X).transform(small_X)
    )


def test_dataframe_with_other_column_names_is_rejected(make_autoencoder, small_X):
    ae = make_autoencoder().fit(pd.DataFrame(small_X, columns=list("abcdef")))

    with pytest.raises(ValueError, match="feature names should match"):
        ae.transform(pd.DataFrame(small_X, columns=list("uvwxyz")))


def test_set_output_pandas(make_autoencoder, small_X):
    df = pd.DataFrame(small_X, columns=list("abcdef"), index=np.arange(100, 160))
    ae = make_autoencoder().set_output(transform="pandas")

    fitted_codes = ae.fit_transform(df)
    codes = ae.transform(df)

    for out in (fitted_codes, codes):
        assert isinstance(out, pd.DataFrame)
        assert list(out.columns) == ["autoencodertransformer0", "autoencodertransformer1"]
        assert_array_equal(out.index, df.index)
    assert_array_equal(codes.to_numpy(), fitted_codes.to_numpy())


def test_read_only_input(make_autoencoder, small_X):
    for X in (small_X, small_X.astype(np.float32)):
        X.setflags(write=False)
        ae = make_autoencoder().fit(X)
        codes = ae.transform(X)
        codes.setflags(write=False)
        assert np.all(np.isfinite(ae.inverse_transform(codes)))
        assert np.isfinite(ae.score(X))


def _as_kind(X, kind):
    if kind == "csr":
        return sp.csr_matrix(X)
    return X.astype(kind)


def _assert_unchanged(X, before):
    if sp.issparse(X):
        assert_array_equal(X.toarray(), before.toarray())
        assert X.dtype == before.dtype
    else:
        assert_array_equal(X, before)
        assert X.dtype == before.dtype


@pytest.mark.parametrize("kind", ["float64", "float32", "csr"])
def test_methods_do_not_modify_their_input(make_autoencoder, small_X, kind):
    X = _as_kind(small_X, kind)
    before = X.copy()
    ae = make_autoencoder()

    ae.fit(X)
    _assert_unchanged(X, before)
    ae.partial_fit(X)
    _assert_unchanged(X, before)
    for method in (ae.transform, ae.score, ae.score_samples, ae.fit_transform):
        method(X)
        _assert_unchanged(X, before)
    codes = ae.transform(X)
    codes_before = codes.copy()
    ae.inverse_transform(codes)
    assert_array_equal(codes, codes_before)


# -------------------------------------------------------------- bad input

BAD_INPUTS = [
    pytest.param(np.full((10, 6), np.nan), "NaN", id="nan"),
    pytest.param(np.full((10, 6), np.inf), "infinity", id="inf"),
    pytest.param(np.full((10, 6), "a"), "could not convert string to float", id="strings"),
    pytest.param(np.empty((0, 6)), "0 sample", id="empty"),
    pytest.param(np.ones(6), "Expected 2D array, got 1D array", id="1d"),
]


@pytest.mark.parametrize("X, message", BAD_INPUTS)
def test_bad_input_at_fit_is_rejected(make_autoencoder, X, message):
    with pytest.raises(ValueError, match=message):
        make_autoencoder().fit(X)


@pytest.mark.parametrize("X, message", BAD_INPUTS)
def test_bad_input_at_transform_is_rejected(make_autoencoder, small_X, X, message):
    ae = make_autoencoder().fit(small_X)

    with pytest.raises(ValueError, match=message):
        ae.transform(X)


def test_wrong_number_of_features_at_transform(make_autoencoder, small_X):
    ae = make_autoencoder().fit(small_X)

    with pytest.raises(ValueError, match="X has 3 features, but .* is expecting 6 features"):
        ae.transform(small_X[:, :3])
    with pytest.raises(ValueError, match="X has 3 features, but .* is expecting 6 features"):
        ae.score(small_X[:, :3])


def test_wrong_number_of_features_at_inverse_transform(make_autoencoder, small_X):
    ae = make_autoencoder(n_components=2).fit(small_X)

    with pytest.raises(
        ValueError, match="X has 3 features, but .*inverse_transform is expecting 2"
    ):
        ae.inverse_transform(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        ae.inverse_transform(np.full((5, 2), np.nan))


# ------------------------------------------------------ invalid parameters


@pytest.mark.parametrize(
    "params, message",
    [
        ({"learning_rate": -0.1}, "learning_rate"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"n_components": 0}, "n_components"),
        ({"activation": "foo"}, "activation"),
        ({"device": "tpu"}, "device='tpu'"),
        ({"device": "cpu\n"}, "device='cpu\\n'"),
        ({"device": "cuda:0\n"}, "device='cuda:0\\n'"),
        ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes"),
        ({"hidden_layer_sizes": (10**12,)}, "free on cpu: choose smaller hidden_layer_sizes"),
        ({"n_components": 10**11}, "weights"),
        ({"hidden_layer_sizes": (16, -2)}, "hidden_layer_sizes"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"learning_rate": 1e300}, "must be finite and at most"),
        ({"learning_rate": float("inf")}, "learning_rate"),
        ({"weight_decay": float("inf")}, "weight_decay"),
        ({"noise_level": 1e39, "noise": "gaussian"}, "noise_level"),
        ({"batch_size": 0}, "batch_size"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"loss": "bce", "output_activation": "linear"}, "output_activation='sigmoid'"),
        ({"loss": "huber"}, "loss"),
    ],
)
def test_invalid_parameters_raise_at_fit(make_autoencoder, small_X, params, message):
    ae = make_autoencoder(**params)  # construction only stores them

    with pytest.raises(ValueError, match=re.escape(message)):
        ae.fit(small_X)


def test_bce_loss_needs_data_in_unit_interval(make_autoencoder, small_X):
    ae = make_autoencoder(loss="bce", output_activation="sigmoid")

    with pytest.raises(ValueError, match=r"needs data in \[0, 1\]"):
        ae.fit(small_X * 2)
    with pytest.raises(ValueError, match=r"needs data in \[0, 1\]"):
        ae.fit(small_X - 0.5)
    ae.fit(small_X)  # data in [0, 1] is fine


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_raises(make_autoencoder, small_X):
    # The message names the installed build (a CPU-only one here, or a CUDA
    # build that finds no GPU).
    build = "CPU-only build" if torch.version.cuda is None else "finds no usable GPU"
    for device in ("cuda", "cuda:0"):
        with pytest.raises(
            ValueError, match=f"CUDA is not available: the installed torch .*{build}"
        ):
            make_autoencoder(device=device).fit(small_X)


def test_unavailable_cuda_index_raises(make_autoencoder, small_X):
    index = torch.cuda.device_count() if torch.cuda.is_available() else 0
    message = "CUDA device" if torch.cuda.is_available() else "CUDA is not available"

    with pytest.raises(ValueError, match=message):
        make_autoencoder(device=f"cuda:{index}").fit(small_X)


# ---------------------------------------------------------------- training


def test_early_stopping_records_validation_curve(make_autoencoder, digits_X):
    # A learning rate at which training soon beats the PCA start.
    ae = make_autoencoder(early_stopping=True, max_epochs=5, learning_rate=1e-2).fit(digits_X)

    assert len(ae.validation_loss_curve_) == ae.n_iter_ == len(ae.loss_curve_)
    assert all(np.isfinite(ae.validation_loss_curve_))
    assert ae.best_loss_ == pytest.approx(min(ae.validation_loss_curve_), rel=1e-12)


def test_early_stopping_restores_the_best_epoch(make_autoencoder, digits_X):
    # A large step makes the validation loss noisy, so the best epoch is not the last.
    params = {
        "early_stopping": True,
        "learning_rate": 0.05,
        "max_epochs": 15,
        "n_iter_no_change": 100,
    }
    for seed in range(10):
        params["random_state"] = seed
        ae = make_autoencoder(**params).fit(digits_X)
        curve = ae.validation_loss_curve_
        best_epoch = int(np.argmin(curve))
        if best_epoch < len(curve) - 1:
            break
    else:
        pytest.fail("precondition: no seed gave a run whose best epoch is not the last")

    # Training is deterministic, so a run that ends at the best epoch holds its weights.
    stopped_at_best = make_autoencoder(**{**params, "max_epochs": best_epoch + 1}).fit(digits_X)

    assert_allclose(stopped_at_best.validation_loss_curve_, curve[: best_epoch + 1], rtol=1e-12)
    assert_array_equal(ae.transform(digits_X), stopped_at_best.transform(digits_X))


def test_early_stopping_needs_enough_samples(make_autoencoder, small_X):
    ae = make_autoencoder(early_stopping=True, validation_fraction=0.1)

    with pytest.raises(ValueError, match="validation"):
        ae.fit(small_X[:4])


def test_training_stops_when_loss_plateaus(make_autoencoder, small_X):
    # tol=0.5 asks every epoch to halve the loss: it soon stops improving.
    ae = make_autoencoder(max_epochs=50, tol=0.5, n_iter_no_change=2)

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ae.fit(small_X)

    assert ae.n_iter_ < 50
    assert len(ae.loss_curve_) == ae.n_iter_


def test_first_epoch_counts_as_an_improvement(make_autoencoder, digits_X):
    reference = make_autoencoder(max_epochs=2, n_iter_no_change=10, tol=0.0).fit(digits_X)
    assert reference.loss_curve_[1] < reference.loss_curve_[0], "precondition: loss decreases"

    ae = make_autoencoder(max_epochs=5, n_iter_no_change=1, tol=0.0).fit(digits_X)

    assert ae.n_iter_ >= 2


def test_max_epochs_reached_warns(make_autoencoder, digits_X):
    with pytest.warns(ConvergenceWarning, match="max_epochs=2"):
        make_autoencoder(max_epochs=2).fit(digits_X)


def test_partial_fit_trains_one_epoch_per_call(make_autoencoder, small_X):
    ae = make_autoencoder()
    assert not hasattr(ae, "encoder_")

    ae.partial_fit(small_X)
    assert isinstance(ae.encoder_, torch.nn.Module)
    assert ae.n_iter_ == 1
    assert len(ae.loss_curve_) == 1
    assert ae.n_features_in_ == 6
    codes = ae.transform(small_X)

    ae.partial_fit(small_X)
    assert ae.n_iter_ == 2
    assert len(ae.loss_curve_) == 2
    assert not np.array_equal(ae.transform(small_X), codes)


def test_partial_fit_does_not_warn_about_convergence(make_autoencoder, small_X):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        make_autoencoder().partial_fit(small_X)


def test_partial_fit_rejects_a_changed_number_of_features(make_autoencoder, small_X):
    ae = make_autoencoder().partial_fit(small_X)

    with pytest.raises(ValueError, match="X has 4 features, but .* is expecting 6 features"):
        ae.partial_fit(small_X[:, :4])


def test_partial_fit_rejects_early_stopping(make_autoencoder, small_X):
    with pytest.raises(ValueError, match="early_stopping"):
        make_autoencoder(early_stopping=True).partial_fit(small_X)


def test_warm_start_continues_training(make_autoencoder, digits_X):
    ae = make_autoencoder(max_epochs=4, warm_start=True)

    ae.fit(digits_X)
    first_curve = list(ae.loss_curve_)
    ae.fit(digits_X)

    assert ae.n_iter_ == 8
    assert ae.loss_curve_[:4] == first_curve
    assert len(ae.loss_curve_) == 8
    assert np.mean(ae.loss_curve_[4:]) < np.mean(first_curve)
    assert ae.loss_curve_[4] < first_curve[0]


def test_warm_start_rejects_a_changed_number_of_features(make_autoencoder, small_X):
    ae = make_autoencoder(warm_start=True).fit(small_X)

    with pytest.raises(ValueError, match="X has 4 features, but .* is expecting 6 features"):
        ae.fit(small_X[:, :4])


def test_without_warm_start_fit_starts_anew(make_autoencoder, digits_X):
    fresh = make_autoencoder(max_epochs=4).fit(digits_X)
    ae = make_autoencoder(max_epochs=4)

    ae.fit(digits_X)
    ae.partial_fit(digits_X)
    ae.fit(digits_X)

    assert ae.n_iter_ == 4
    assert ae.loss_curve_ == fresh.loss_curve_
    assert_array_equal(ae.transform(digits_X), fresh.transform(digits_X))


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_continued_training_does_not_ignore_changed_architecture(make_autoencoder, small_X, method):
    ae = make_autoencoder(n_components=2, warm_start=True)
    getattr(ae, method)(small_X)
    ae.set_params(n_components=3)

    # Either refuse (as IncrementalPCA.partial_fit does) or honour the new value.
    try:
        getattr(ae, method)(small_X)
    except ValueError as error:
        assert "n_components" in str(error)
        return
    assert ae.transform(small_X).shape == (60, 3)
    assert len(ae.get_feature_names_out()) == 3


def test_divergence_raises_divergence_error(make_autoencoder, small_X):
    ae = make_autoencoder(
        learning_rate=1e6, optimizer="sgd", max_epochs=20, output_activation="linear"
    )

    with pytest.raises(DivergenceError, match="learning_rate"):
        ae.fit(small_X)
    assert issubclass(DivergenceError, FloatingPointError)


def test_data_of_a_tiny_spread_trains_in_its_own_units(make_autoencoder):
    # Found by hypothesis: in units of a 3.6e-26 spread, a sigmoid output's
    # squared error overflowed float32 and the fit "diverged".
    X = np.array([[7.2015784e-26], [0.0]], dtype=np.float32)
    ae = make_autoencoder(n_components=1).fit(X)
    assert np.all(np.isfinite(ae.transform(X))) and np.isfinite(ae.loss_curve_).all()


def test_a_partial_fit_that_wrecks_the_model_raises_and_keeps_it(make_autoencoder):
    # Every loss stays finite here (error 0.7 -> 4e25), so only the end-of-call
    # summary can tell: the call must not be the one way to wreck a model silently.
    X = np.random.RandomState(0).normal(size=(300, 10))
    ae = make_autoencoder(max_epochs=5).fit(X)
    codes = ae.transform(X)

    with pytest.raises(DivergenceError, match="the data's variance is"):
        ae.set_params(learning_rate=1e3).partial_fit(X)

    assert_array_equal(ae.transform(X), codes)
    assert ae.set_params(learning_rate=1e-3).partial_fit(X).noise_variance_ < 1


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "rmsprop"])
def test_every_optimizer_reduces_the_loss(make_autoencoder, digits_X, optimizer):
    learning_rate = 0.01 if optimizer == "sgd" else 1e-3
    ae = make_autoencoder(optimizer=optimizer, learning_rate=learning_rate, max_epochs=4)

    ae.fit(digits_X)

    assert ae.loss_curve_[-1] < ae.loss_curve_[0]


# ----------------------------------------------------------------- verbose


def test_verbose_prints_one_line_per_epoch(make_autoencoder, small_X, capsys):
    ae = make_autoencoder(max_epochs=4, verbose=1).fit(small_X)

    path, *lines = capsys.readouterr().out.splitlines()

    assert path == "Training from memory (60 x 6)"
    assert len(lines) == ae.n_iter_ == 4
    for epoch, line in enumerate(lines, start=1):
        assert re.match(rf"Epoch {epoch}\b", line), line


def test_verbose_shows_validation_loss_with_early_stopping(make_autoencoder, digits_X, capsys):
    ae = make_autoencoder(max_epochs=3, verbose=1, early_stopping=True).fit(digits_X)

    _, *lines = capsys.readouterr().out.splitlines()

    assert len(lines) == ae.n_iter_
    assert all("validation" in line for line in lines)


def test_verbose_draws_a_progress_bar_on_a_terminal(
    make_autoencoder, digits_X, capsys, monkeypatch
):
    pytest.importorskip("tqdm")
    monkeypatch.setattr("skae._progress._interactive", lambda: True)
    ae = make_autoencoder(max_epochs=3, verbose=1, early_stopping=True).fit(digits_X)

    captured = capsys.readouterr()

    assert captured.out == ""  # no per-epoch lines
    assert "Training from memory (200 x 64)" in captured.err  # above the bar
    bar = captured.err.replace("\r", "\n").splitlines()[-1]
    assert re.search(rf"AutoencoderTransformer: .*{ae.n_iter_}/3 ", bar), bar
    assert "loss=" in bar and "validation loss=" in bar


def test_verbose_zero_prints_nothing(make_autoencoder, small_X, capsys):
    make_autoencoder(max_epochs=4, verbose=0).fit(small_X)

    captured = capsys.readouterr()

    assert captured.out == ""
    assert captured.err == ""


# --------------------------------------------------------- reproducibility


def test_same_random_state_gives_identical_output(make_autoencoder, digits_X):
    first = make_autoencoder(random_state=7).fit_transform(digits_X)
    second = make_autoencoder(random_state=7).fit_transform(digits_X)

    assert_array_equal(first, second)


def test_different_random_state_gives_different_output(make_autoencoder, digits_X):
    first = make_autoencoder(random_state=1).fit_transform(digits_X)
    second = make_autoencoder(random_state=2).fit_transform(digits_X)

    assert not np.allclose(first, second)


def test_random_state_instance_is_accepted(make_autoencoder, small_X):
    first = make_autoencoder(random_state=np.random.RandomState(3)).fit_transform(small_X)
    second = make_autoencoder(random_state=np.random.RandomState(3)).fit_transform(small_X)

    assert_array_equal(first, second)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_fit_does_not_change_torch_global_rng(make_autoencoder, small_X, method):
    before = torch.get_rng_state()

    getattr(make_autoencoder(), method)(small_X)

    assert torch.equal(torch.get_rng_state(), before)


def test_inference_does_not_change_torch_global_rng(make_autoencoder, small_X):
    ae = make_autoencoder().fit(small_X)
    before = torch.get_rng_state()

    ae.inverse_transform(ae.transform(small_X))
    ae.score(small_X)

    assert torch.equal(torch.get_rng_state(), before)


def test_fit_with_int_random_state_does_not_change_numpy_global_rng(make_autoencoder, digits_X):
    before = numpy_rng_state()

    make_autoencoder(random_state=0, early_stopping=True).fit(digits_X)

    after = numpy_rng_state()
    assert after[0] == before[0]
    assert_array_equal(after[1], before[1])
    assert after[2:] == before[2:]


def test_fit_does_not_change_torch_global_settings(make_autoencoder, small_X):
    def settings():
        return (
            torch.get_num_threads(),
            torch.get_default_dtype(),
            torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.benchmark,
            torch.backends.cudnn.allow_tf32,
            torch.are_deterministic_algorithms_enabled(),
            torch.is_grad_enabled(),
        )

    before = settings()
    for precision in ("float32", "tf32", "bf16"):
        ae = make_autoencoder(precision=precision).fit(small_X)
        ae.transform(small_X)
        assert settings() == before


@pytest.fixture
def float64_default_dtype():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def test_fit_works_with_float64_torch_default_dtype(
    make_autoencoder, small_X, float64_default_dtype
):
    ae = make_autoencoder().fit(small_X)

    assert ae.transform(small_X).dtype == np.float64
    assert torch.get_default_dtype() == torch.float64


# ----------------------------------------------------------------- quality


def test_raw_wine_reconstruction_close_to_pca():
    # Raw wine features span five orders of magnitude (proline ~ 1e3, hue ~ 1):
    # internal centring and one common scale must let the network learn anyway.
    X, _ = load_wine(return_X_y=True)
    pca = PCA(n_components=2).fit(X)
    pca_mse = np.mean((X - pca.inverse_transform(pca.transform(X))) ** 2)

    ae = AutoencoderTransformer(
        n_components=2,
        hidden_layer_sizes=(16,),
        device="cpu",
        learning_rate=0.01,
        batch_size=256,
        max_epochs=1000,
        tol=0.0,
        n_iter_no_change=1000,
        random_state=0,
    ).fit(X)
    ae_mse = np.mean((X - reconstruct(ae, X)) ** 2)

    assert ae_mse < 1.5 * pca_mse
    assert -ae.score(X) == pytest.approx(ae_mse, rel=1e-4)


@pytest.mark.parametrize("output_activation, low, high", [("sigmoid", 0, 1), ("tanh", -1, 1)])
def test_bounded_output_activation_bounds_reconstructions(
    make_autoencoder, small_X, output_activation, low, high
):
    ae = make_autoencoder(output_activation=output_activation).fit(small_X)
    codes = np.random.RandomState(0).normal(scale=100, size=(200, 2))

    reconstructions = ae.inverse_transform(codes)

    assert reconstructions.min() >= low
    assert reconstructions.max() <= high
    assert reconstructions.max() - reconstructions.min() > 0.5  # codes that far out saturate


def test_linear_output_is_not_bounded(make_autoencoder, small_X):
    ae = make_autoencoder(output_activation="linear").fit(small_X)
    codes = np.random.RandomState(0).normal(scale=100, size=(200, 2))

    reconstructions = ae.inverse_transform(codes)

    assert reconstructions.min() < 0 or reconstructions.max() > 1


def test_bf16_precision_runs_on_cpu(make_autoencoder, digits_X):
    ae = make_autoencoder(precision="bf16", device="cpu", max_epochs=4).fit(digits_X)

    codes = ae.transform(digits_X)
    assert codes.dtype == np.float64
    assert np.all(np.isfinite(codes))
    assert all(np.isfinite(ae.loss_curve_))
    assert ae.loss_curve_[-1] < ae.loss_curve_[0]


@pytest.mark.parametrize("params", [{"dropout": 0.5}, {"batch_norm": True}])
def test_regularised_network_transform_is_deterministic(make_autoencoder, digits_X, params):
    # 33 samples with batch_size=32 leave a batch of one, which batch norm cannot train on.
    ae = make_autoencoder(**params).fit(digits_X[:33])

    codes = ae.transform(digits_X)

    assert_array_equal(ae.transform(digits_X), codes)
    assert np.all(np.isfinite(codes))


# ------------------------------------------------------- torch submodules


def test_encoder_and_decoder_modules_match_transform(make_autoencoder, digits_X):
    ae = make_autoencoder(n_components=3).fit(digits_X)
    codes = ae.transform(digits_X)

    with torch.inference_mode():
        torch_codes = ae.encoder_(torch.tensor(digits_X, dtype=torch.float32))
        torch_reconstruction = ae.decoder_(torch.tensor(codes, dtype=torch.float32))

    assert isinstance(ae.encoder_, torch.nn.Module)
    assert isinstance(ae.decoder_, torch.nn.Module)
    assert_allclose(torch_codes.numpy(), codes, rtol=1e-5, atol=1e-6)
    assert_allclose(torch_reconstruction.numpy(), ae.inverse_transform(codes), rtol=1e-5, atol=1e-6)


# -------------------------------------------------------------------- GPU


@pytest.mark.gpu
def test_fit_on_cuda_matches_cpu(make_autoencoder, digits_X):
    # Plain SGD keeps rounding differences small (Adam's normalised steps can
    # turn a sign flip of a tiny gradient into a full step).
    params = {"optimizer": "sgd", "learning_rate": 0.01}
    on_cuda = make_autoencoder(device="cuda", **params).fit(digits_X)
    on_cpu = make_autoencoder(device="cpu", **params).fit(digits_X)

    assert on_cuda.device_.type == "cuda"
    assert all(p.device.type == "cuda" for p in on_cuda.encoder_.parameters())
    codes = on_cuda.transform(digits_X)
    assert isinstance(codes, np.ndarray)
    assert codes.dtype == np.float64
    cpu_codes = on_cpu.transform(digits_X)
    assert_allclose(codes, cpu_codes, rtol=1e-3, atol=1e-3 * np.abs(cpu_codes).max())
    assert_allclose(on_cuda.loss_curve_, on_cpu.loss_curve_, rtol=1e-3)
    assert on_cuda.score(digits_X) == pytest.approx(on_cpu.score(digits_X), rel=1e-3)


@pytest.mark.gpu
def test_cuda_model_pickles_to_cpu(make_autoencoder, digits_X):
    ae = make_autoencoder(device="cuda").fit(digits_X)
    codes = ae.transform(digits_X)

    restored = pickle_round_trip(ae)

    assert restored.device_ == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in restored.encoder_.parameters())
    assert_allclose(restored.transform(digits_X), codes, rtol=1e-4, atol=1e-4)
    # Continuing training goes back to the device the parameters ask for.
    restored.partial_fit(digits_X)
    assert restored.device_.type == "cuda"
    # Pickling does not move the original off the GPU.
    assert ae.device_.type == "cuda"
    assert all(p.device.type == "cuda" for p in ae.encoder_.parameters())


@pytest.mark.gpu
def test_cuda_precisions_run_and_restore_global_flags(make_autoencoder, digits_X):
    allow_tf32 = torch.backends.cuda.matmul.allow_tf32
    for precision in ("float32", "tf32", "bf16"):
        ae = make_autoencoder(device="cuda", precision=precision, max_epochs=4).fit(digits_X)
        assert np.all(np.isfinite(ae.transform(digits_X)))
        assert ae.loss_curve_[-1] < ae.loss_curve_[0]
        assert torch.backends.cuda.matmul.allow_tf32 == allow_tf32


def test_auto_device_picks_the_best_available(make_autoencoder, small_X):
    if torch.cuda.is_available():
        expected = "cuda"
    elif torch.backends.mps.is_available():
        expected = "mps"
    else:
        expected = "cpu"

    ae = make_autoencoder(device="auto").fit(small_X)

    assert ae.device_.type == expected
    assert ae.transform(small_X).shape == (60, 2)


def test_package_exports():
    assert skae.AutoencoderTransformer is AutoencoderTransformer
    assert skae.DivergenceError is DivergenceError


def test_batch_norm_needs_batches_of_two(make_autoencoder, small_X):
    with pytest.raises(ValueError, match="batch_norm=True needs batches of at least 2"):
        make_autoencoder(batch_norm=True).fit(small_X[:1])
    with pytest.raises(ValueError, match="batch_size=1"):
        make_autoencoder(batch_norm=True, batch_size=1).fit(small_X)


def test_sparsity_raises_the_share_of_near_zero_codes(make_autoencoder, digits_X):
    def near_zero_share(sparsity):
        ae = make_autoencoder(n_components=8, sparsity=sparsity, max_epochs=30)
        codes = ae.fit(digits_X).transform(digits_X)
        return np.mean(np.abs(codes) < 0.05 * np.abs(codes).max())

    assert near_zero_share(1.0) > near_zero_share(0.0) + 0.1


def test_changed_noise_takes_effect_on_warm_start(make_autoencoder, digits_X):
    ae = make_autoencoder(warm_start=True).fit(digits_X)
    ae.set_params(noise="masking", noise_level=0.5).fit(digits_X)
    assert ae._network.noise == "masking" and ae._network.noise_level == 0.5


@pytest.mark.parametrize("estimator_class", [AutoencoderTransformer, VAETransformer])
def test_defaults_match_pca_on_raw_wine(estimator_class):
    # Raw features on scales from 0.1 to 1000: no scaler in front, defaults only.
    X, y = load_wine(return_X_y=True)
    X_train, X_test = train_test_split(X, test_size=0.25, stratify=y, random_state=0)
    pca = PCA(n_components=2).fit(X_train)
    model = estimator_class(n_components=2, random_state=0, device="cpu").fit(X_train)

    def test_mse(reducer):
        return np.mean((reducer.inverse_transform(reducer.transform(X_test)) - X_test) ** 2)

    assert test_mse(model) < 1.25 * test_mse(pca)


def test_divergence_leaves_the_estimator_unfitted(small_X):
    ae = AutoencoderTransformer(
        hidden_layer_sizes=(8,), optimizer="sgd", learning_rate=1e30, max_epochs=3, device="cpu"
    )
    with pytest.raises(DivergenceError):
        ae.fit(small_X * 1e6)
    with pytest.raises(NotFittedError):
        ae.transform(small_X)


def test_a_failed_continued_fit_keeps_the_previous_model(make_autoencoder, small_X):
    ae = make_autoencoder(max_epochs=4).fit(small_X)
    codes = ae.transform(small_X)
    ae.set_params(warm_start=True, early_stopping=True, validation_fraction=0.001)
    with pytest.raises(ValueError, match="validation"):
        ae.fit(small_X)
    assert ae.n_iter_ == 4
    assert_array_equal(ae.transform(small_X), codes)


def test_a_failed_new_fit_keeps_the_previous_model(small_X):
    ae = AutoencoderTransformer(
        hidden_layer_sizes=(8,), loss="bce", output_activation="sigmoid", max_epochs=2
    ).fit(small_X)
    codes = ae.transform(small_X)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ae.fit(small_X[:, :3] + 5)
    assert ae.n_features_in_ == small_X.shape[1]
    assert_array_equal(ae.transform(small_X), codes)


def test_random_state_none_leaves_numpy_global_rng_alone(make_autoencoder, small_X):
    # The test is about numpy's legacy global RNG, so it uses it on purpose.
    np.random.seed(0)  # noqa: NPY002
    expected = np.random.rand()  # noqa: NPY002
    np.random.seed(0)  # noqa: NPY002
    make_autoencoder(random_state=None).fit(small_X)
    assert np.random.rand() == expected  # noqa: NPY002
