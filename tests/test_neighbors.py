"""The neighbour-preserving objective: its graph, its map, its kernel, its effect on codes."""

import numpy as np
import pytest
import scipy.sparse as sp
from helpers import FAST
from numpy.testing import assert_array_equal
from sklearn.datasets import load_digits

import skae
import skae._training_data
from skae import AutoencoderTransformer, VAETransformer
from skae._layout import map_targets
from skae._neighbors import fuzzy_graph
from skae._objectives import kernel_parameters

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600]


def test_kernel_parameters_match_umaps():
    a, b = kernel_parameters(0.1)
    assert a == pytest.approx(1.577, abs=0.01) and b == pytest.approx(0.895, abs=0.01)


@pytest.mark.parametrize("n", [200, 800, 3200])
def test_the_graph_grows_linearly_and_is_symmetric(n):
    X = np.random.RandomState(0).rand(n, 8)
    graph = fuzzy_graph(X, 10, seed=0)
    assert sp.issparse(graph) and graph.nnz <= 2 * 10 * n
    assert abs(graph - graph.T).max() < 1e-12
    assert graph.diagonal().max() == 0 and 0 < graph.data.min() and graph.data.max() <= 1


def five_nn(codes, y):
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    return cross_val_score(KNeighborsClassifier(5), codes, y, cv=5).mean()


def test_the_map_keeps_neighbourhoods_in_the_codes_units(digits):
    from sklearn.decomposition import PCA

    X, y = digits
    graph = fuzzy_graph(X, 15, seed=0)
    codes = PCA(2, whiten=True, random_state=0).fit_transform(X)
    targets = map_targets(graph, codes, kernel_parameters(0.1), seed=0, fresh=True)

    assert_array_equal(targets, map_targets(graph, codes, kernel_parameters(0.1), 0, fresh=True))
    assert targets.dtype == np.float32 and targets.shape == codes.shape
    # A similarity transform onto the codes: same centre, same total spread.
    np.testing.assert_allclose(targets.mean(axis=0), codes.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(targets.var(axis=0).sum(), codes.var(axis=0).sum(), rtol=1e-4)
    # Measured over seeds 0..4: 5-NN 0.93-0.95 on the map, 0.60 on PCA's codes.
    assert five_nn(targets, y) > five_nn(codes, y) + 0.2


def test_a_continued_map_moves_on_from_the_codes(digits):
    # A continued fit optimises the map it starts from at a quarter of UMAP's
    # rate: from a finished map, it moves each row about a quarter as far as
    # a fresh optimisation would (measured 0.24-0.26 over seeds 0..4, on the
    # current and the lowest supported numpy and scipy alike).
    from skae._layout import _spread_out, optimize_layout

    X = digits[0]
    graph, kernel = fuzzy_graph(X, 15, seed=0), kernel_parameters(0.1)
    codes = np.random.RandomState(0).randn(len(X), 2)
    for seed in range(3):
        start = _spread_out(map_targets(graph, codes, kernel, seed, fresh=True))
        moves = [
            np.sqrt(
                ((optimize_layout(graph, start, kernel, 500, seed + 1, rate) - start) ** 2)
                .sum(axis=1)
                .mean()
            )
            for rate in (0.25, 1.0)
        ]
        assert moves[0] < 0.5 * moves[1], (seed, moves)


def test_weight_zero_builds_no_graph(monkeypatch, digits):
    def refuse(*args, **kwargs):
        raise AssertionError("no graph without the objective")

    monkeypatch.setattr(skae._training_data, "fuzzy_graph", refuse)
    plain = AutoencoderTransformer(**FAST).fit(digits[0])
    explicit = AutoencoderTransformer(**FAST, neighbor_weight=0.0, n_neighbors=5).fit(digits[0])
    assert_array_equal(plain.transform(digits[0]), explicit.transform(digits[0]))


@pytest.mark.parametrize("cls", [AutoencoderTransformer, VAETransformer])
def test_the_objective_is_reproducible_and_transforms_unseen_points(cls, digits):
    X = digits[0]
    first = cls(**FAST, neighbor_weight=1.0).fit(X[:500])
    again = cls(**FAST, neighbor_weight=1.0).fit(X[:500])
    unseen = first.transform(X[500:])
    assert_array_equal(unseen, again.transform(X[500:]))
    assert unseen.shape == (100, 2) and np.isfinite(unseen).all()
    assert first.inverse_transform(np.zeros((1, 2))).shape == (1, 64)


def test_the_map_keeps_neighbourhoods_far_better_than_the_plain_codes(digits):
    # fit_transform's map against the plain autoencoder's codes, three seeds.
    # Measured over random_state 0..4 with FAST: 5-NN 0.937-0.947 and
    # trustworthiness 0.989-0.991 on the map; 0.58-0.60 and 0.84-0.85 without.
    from sklearn.manifold import trustworthiness

    X, y = digits
    for seed in range(3):
        params = {**FAST, "random_state": seed}
        mapped = AutoencoderTransformer(**params, neighbor_weight=1.0).fit_transform(X)
        plain = AutoencoderTransformer(**params).fit_transform(X)
        assert five_nn(mapped, y) > five_nn(plain, y) + 0.2
        assert trustworthiness(X, mapped, n_neighbors=5) > trustworthiness(X, plain) + 0.08


def test_the_encoder_learns_the_map(digits):
    # The encoder's codes move towards the map as training goes on: the mean
    # squared distance to it, measured for random_state 0..2, is 0.44-0.55
    # after one epoch and 0.083-0.090 after 30.
    X = digits[0]
    model = AutoencoderTransformer(**FAST, neighbor_weight=1.0, warm_start=True)
    model.set_params(max_epochs=1).fit(X)
    start = np.mean((model.transform(X) - model.embedding_) ** 2)
    trained = AutoencoderTransformer(**{**FAST, "max_epochs": 30}, neighbor_weight=1.0).fit(X)
    assert np.mean((trained.transform(X) - trained.embedding_) ** 2) < 0.5 * start


def test_fit_transform_gives_the_map_and_transform_the_encoder(digits):
    X = digits[0]
    model = AutoencoderTransformer(**FAST, neighbor_weight=1.0)
    codes = model.fit_transform(X)
    assert_array_equal(codes, model.embedding_)
    assert codes.dtype == np.float64 and model.embedding_.dtype == np.float32
    assert model.transform(X).shape == codes.shape
    assert AutoencoderTransformer(**FAST).fit(X).embedding_ is None
    held_out = AutoencoderTransformer(**FAST, neighbor_weight=1.0, early_stopping=True)
    assert_array_equal(held_out.fit_transform(X), held_out.transform(X))
    assert held_out.embedding_ is None


def test_partial_fit_and_early_stopping_build_their_own_graphs(digits):
    X = digits[0]
    model = AutoencoderTransformer(**FAST, neighbor_weight=1.0)
    model.partial_fit(X[:300]).partial_fit(X[300:])
    assert model.n_iter_ == 2
    stopped = AutoencoderTransformer(**FAST, neighbor_weight=1.0, early_stopping=True).fit(X)
    assert len(stopped.validation_loss_curve_) == stopped.n_iter_


def test_the_settings_survive_saving(tmp_path, digits):
    model = AutoencoderTransformer(**FAST, neighbor_weight=0.5, min_dist=0.3).fit(digits[0])
    model.save(tmp_path / "model.skae")
    loaded = skae.load(tmp_path / "model.skae")
    assert loaded._network.objective == model._network.objective
    assert loaded._network.objective.kernel == kernel_parameters(0.3)
    assert_array_equal(loaded.embedding_, model.embedding_)
    model.partial_fit(digits[0])
    loaded.partial_fit(digits[0])
    assert_array_equal(loaded.transform(digits[0]), model.transform(digits[0]))


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_neighbors": 600}, "n_neighbors=600"),
        ({"n_neighbors": 1}, "n_neighbors"),
        ({"neighbor_weight": -1.0}, "neighbor_weight"),
        ({"min_dist": -0.1}, "min_dist"),
        ({"min_dist": 1.01}, "min_dist"),
        ({"min_dist": 2.9}, "min_dist"),
    ],
)
def test_bad_settings_are_clear_errors(digits, params, message):
    with pytest.raises(ValueError, match=message):
        AutoencoderTransformer(**{**FAST, "neighbor_weight": 1.0, **params}).fit(digits[0][:500])


def test_data_beyond_the_memory_budget_is_refused(digits):
    with skae.config_context(memory_budget=1), pytest.raises(ValueError, match="in memory"):
        AutoencoderTransformer(**FAST, neighbor_weight=1.0).fit(digits[0])


def test_a_map_bought_with_the_reconstruction_warns():
    from sklearn.datasets import load_wine
    from sklearn.exceptions import ConvergenceWarning

    X = load_wine().data  # raw: proline's scale dominates graph and reconstruction alike
    with pytest.warns(ConvergenceWarning, match="times the PCA start's"):
        AutoencoderTransformer(neighbor_weight=1.0, random_state=0, max_epochs=40).fit(X)


def test_the_kernel_is_valid_and_quiet_for_every_accepted_min_dist():
    import warnings

    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        for min_dist in np.linspace(0, 1, 41):
            a, b = kernel_parameters(min_dist)
            assert np.isfinite([a, b]).all() and a > 0 and b > 0


def test_a_failed_map_leaves_the_model_as_it_was(monkeypatch, digits):
    import skae._fitting

    X = digits[0]
    model = AutoencoderTransformer(**FAST, neighbor_weight=1.0, warm_start=True).fit(X)
    codes, embedding, n_iter = model.transform(X), model.embedding_, model.n_iter_

    def fail(*args, **kwargs):
        raise MemoryError("no room for the layout")

    monkeypatch.setattr(skae._fitting, "map_targets", fail)
    with pytest.raises(MemoryError):
        model.fit(X)
    assert_array_equal(model.transform(X), codes)
    assert_array_equal(model.embedding_, embedding)
    assert model.n_iter_ == n_iter


def test_a_continued_fit_without_the_map_drops_it(digits):
    X = digits[0]
    model = AutoencoderTransformer(**FAST, neighbor_weight=1.0, warm_start=True).fit(X)
    assert model.embedding_ is not None
    model.set_params(neighbor_weight=0.0).fit(X)
    assert model.embedding_ is None
