"""skae on Dask: searches on a LocalCluster, and dask-ml's wrappers."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.model_selection import GridSearchCV

from skae import AutoencoderTransformer, VAETransformer

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
joblib = pytest.importorskip("joblib")

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning",
    # distributed warns about ports and event loops while clusters start and stop.
    "ignore::DeprecationWarning",
    "ignore::ResourceWarning",
    "ignore::UserWarning",
)

FAST = dict(hidden_layer_sizes=(8,), max_epochs=3, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def client():
    """Two worker processes of one thread each on 127.0.0.1."""
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
    )
    client = distributed.Client(cluster)
    # As in this test process (conftest.py): one torch thread, so that the
    # workers' arithmetic matches the serial run's bit for bit.
    client.run(torch.set_num_threads, 1)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def X():
    rng = np.random.RandomState(0)
    return rng.randn(300, 4) @ rng.randn(4, 10) + 0.3 * rng.randn(300, 10)


@pytest.mark.parametrize("cls", [AutoencoderTransformer, VAETransformer])
def test_grid_search_on_dask_matches_the_serial_search(client, X, cls):
    grid = {"n_components": [1, 2, 3]}
    serial = GridSearchCV(cls(**FAST), grid, cv=2, n_jobs=1).fit(X)
    with joblib.parallel_config(backend="dask"):
        on_dask = GridSearchCV(cls(**FAST), grid, cv=2, n_jobs=-1).fit(X)

    assert_array_equal(
        on_dask.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
    )
    assert on_dask.best_params_ == serial.best_params_
    assert_array_equal(on_dask.transform(X), serial.transform(X))


def test_incremental_fits_one_partial_fit_per_block(client, X):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    blocks = da.from_array(X, chunks=(100, 10))

    incremental = wrappers.Incremental(AutoencoderTransformer(**FAST), shuffle_blocks=False).fit(
        blocks
    )
    by_hand = AutoencoderTransformer(**FAST)
    for start in range(0, 300, 100):
        by_hand.partial_fit(X[start : start + 100])

    assert incremental.estimator_.n_iter_ == 3
    assert_array_equal(incremental.estimator_.transform(X), by_hand.transform(X))


def test_parallel_post_fit_transforms_block_by_block(client, X):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    model = wrappers.ParallelPostFit(AutoencoderTransformer(**FAST)).fit(X)

    codes = model.transform(da.from_array(X, chunks=(100, 10)))

    assert isinstance(codes, da.Array)
    assert_array_equal(codes.compute(), model.estimator.transform(X))


def test_fit_on_a_dask_array_streams_its_chunks(client, X):
    import skae

    blocks = da.from_array(X, chunks=(50, 10))
    with skae.config_context(memory_budget=1000):
        streamed = AutoencoderTransformer(**FAST).fit(blocks)
        reference = AutoencoderTransformer(**FAST).fit(X)
    assert_array_equal(streamed.transform(blocks), reference.transform(X))


def _dask_before(version):
    import dask
    from packaging.version import Version

    return Version(dask.__version__) < Version(version)


@pytest.mark.skipif(
    not _dask_before("2025.3"),
    reason="dask-ml's adaptive searches fail with dask >= 2025.3 (dask-ml issue 1016); "
    ".ci/run tests this with dask 2025.2",
)
def test_hyperband_search_drives_partial_fit_and_score(client, X):
    model_selection = pytest.importorskip("dask_ml.model_selection")
    blocks = da.from_array(X, chunks=(100, 10))
    search = model_selection.HyperbandSearchCV(
        AutoencoderTransformer(**{**FAST, "max_epochs": 1}),
        {"learning_rate": [1e-3, 1e-2, 3e-2], "n_components": [2, 3]},
        max_iter=9,
        random_state=0,
    )

    # dask-ml's searches need a y; skae ignores it.
    search.fit(blocks, da.zeros(len(X), chunks=100))

    assert search.best_params_["n_components"] in (2, 3)
    assert search.best_estimator_.n_iter_ >= 1
    assert np.isfinite(search.best_score_)
    assert search.best_score_ == pytest.approx(max(search.cv_results_["test_score"]), rel=1e-12)
