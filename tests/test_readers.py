"""Data on disk or in a cluster: memmap, HDF5, zarr and dask arrays, in memory or streamed."""

import pickle
import re

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

import skae
import skae._fitting
from skae import AutoencoderTransformer, VAETransformer
from skae._batches import StreamSource
from skae._distributed import Alone
from skae._readers import ArrayReader, is_out_of_core, summarize

h5py = pytest.importorskip("h5py")
zarr = pytest.importorskip("zarr")
da = pytest.importorskip("dask.array")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FAST = dict(hidden_layer_sizes=(16,), max_epochs=3, batch_size=64, random_state=0, device="cpu")
# Small enough that every dataset here streams, in blocks of 100 rows.
STREAM = dict(memory_budget=1000, stream_block_rows=100, stream_window_blocks=3)


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    return rng.randn(1000, 4) @ rng.randn(4, 12) + 0.3 * rng.randn(1000, 12)


def as_memmap(X, directory):
    np.save(directory / "X.npy", X)
    return np.load(directory / "X.npy", mmap_mode="r")


def as_hdf5(X, directory):
    file = h5py.File(directory / "X.h5", "w")
    file.create_dataset("X", data=X, chunks=(50, X.shape[1]))
    return file["X"]


def as_zarr(X, directory):
    # zarr.create, not zarr 3's create_array: the test extra allows zarr 2
    # (the only zarr for numpy < 1.25, which pyproject allows).
    array = zarr.create(
        store=str(directory / "X.zarr"),
        shape=X.shape,
        chunks=(50, X.shape[1]),
        dtype=X.dtype,
        overwrite=True,
    )
    array[:] = X
    return array


def as_dask(X, directory):
    return da.from_array(X, chunks=(300, X.shape[1]))


CONTAINERS = [as_memmap, as_hdf5, as_zarr, as_dask]


@pytest.mark.parametrize("container", CONTAINERS)
def test_data_within_the_budget_trains_as_the_same_array_in_memory(tmp_path, data, container):
    stored = container(data, tmp_path)
    assert is_out_of_core(stored)

    model = AutoencoderTransformer(**FAST).fit(stored)
    reference = AutoencoderTransformer(**FAST).fit(data)

    codes = model.transform(stored)
    assert isinstance(codes, np.ndarray) and codes.shape == (1000, 2)
    assert_array_equal(codes, reference.transform(data))
    assert_array_equal(model.score_samples(stored), reference.score_samples(data))
    assert_array_equal(
        model.inverse_transform(da.from_array(codes, chunks=(128, 2))),
        reference.inverse_transform(codes),
    )


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("cls", [AutoencoderTransformer, VAETransformer])
def test_streamed_data_trains_as_the_same_array_streamed(tmp_path, data, container, cls):
    stored = container(data, tmp_path)
    with skae.config_context(**STREAM):
        model = cls(**FAST).fit(stored)
        reference = cls(**FAST).fit(data)  # an ndarray beyond the budget streams too

    assert_array_equal(model.transform(stored), reference.transform(data))
    assert model.loss_curve_ == reference.loss_curve_
    # Not the in-memory model (other shuffles, a streamed start), but a close one.
    in_memory = cls(**FAST).fit(data)
    assert np.mean((model.transform(data) - in_memory.transform(data)) ** 2) < 0.05


def test_a_streamed_epoch_serves_every_row_once_and_is_reproducible():
    ids = np.arange(1037, dtype=np.float64)[:, None].repeat(3, axis=1)
    with skae.config_context(stream_block_rows=50, stream_window_blocks=4):
        source = StreamSource(ArrayReader(ids), torch.device("cpu"))

        def epoch(seed):
            batches = source.batches(64, torch.Generator().manual_seed(seed), Alone())
            return torch.cat([batch for batch, _ in batches])[:, 0].numpy()

        first, again, other = epoch(0), epoch(0), epoch(1)

    assert sorted(first) == list(range(1037))
    assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert not np.array_equal(first, np.sort(first)), "rows are shuffled"


def test_summarize_matches_numpy(data):
    reader = ArrayReader(data)
    reader.block_rows = 77
    summary = summarize(reader, reader.blocks(), 200, seed=0)

    assert_allclose(summary.center, data.mean(axis=0), rtol=1e-12)
    assert_allclose(summary.variance, data.var(axis=0), rtol=1e-10)
    assert summary.sample.shape == (200, 12)
    assert all(any(np.array_equal(row, x) for x in data) for row in summary.sample[:5])


def test_summarize_samples_only_the_blocks_asked_for_but_measures_all():
    ids = np.repeat(np.arange(1000.0)[:, None], 3, axis=1)
    reader = ArrayReader(ids)
    reader.block_rows = 100
    blocks = reader.blocks()
    summary = summarize(reader, blocks, 10_000, seed=0, sample_blocks=blocks[2:5])

    assert_allclose(summary.center, ids.mean(axis=0), rtol=1e-12)
    assert_array_equal(summary.sample[:, 0], np.arange(200.0, 500.0))
    fewer = summarize(reader, blocks, 50, seed=0, sample_blocks=blocks[2:5])
    assert len(fewer.sample) == 50
    assert np.all((fewer.sample[:, 0] >= 200) & (fewer.sample[:, 0] < 500))


@pytest.mark.parametrize("streamed", [False, True])
def test_the_pca_start_never_sees_the_validation_rows(streamed, monkeypatch):
    # Rows numbered in their first column; the start is fitted on the training rows only.
    rng = np.random.default_rng(0)
    X = np.column_stack([np.arange(600.0), rng.normal(size=(600, 7))])
    started_on = []
    start = skae._fitting.start_from_pca
    monkeypatch.setattr(
        skae._fitting,
        "start_from_pca",
        lambda model, rows, *args: started_on.append(np.array(rows)) or start(model, rows, *args),
    )
    budget = X.nbytes // 4 if streamed else None
    with skae.config_context(memory_budget=budget, stream_block_rows=20):
        estimator = AutoencoderTransformer(**{**FAST, "max_epochs": 1}, early_stopping=True)
        with pytest.warns(ConvergenceWarning):
            estimator.fit(X)

    assert estimator.streamed_ == streamed
    [rows] = started_on
    assert len(rows) == 540  # 600 less the 10% held out (3 of 30 blocks when streamed)
    assert len(np.unique(rows[:, 0])) == 540
    assert estimator.n_samples_seen_ == 600
    assert_allclose(estimator.mean_, X.mean(axis=0))


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize("continued", [False, True])
def test_nan_in_the_middle_of_a_file_is_a_clear_error_and_nothing_is_learned(
    tmp_path, data, streamed, continued
):
    broken = data.copy()
    broken[537, 4] = np.nan
    stored = as_hdf5(broken, tmp_path)
    model = AutoencoderTransformer(**FAST)
    if continued:
        model.fit(data)
        before = model.transform(data)
    budget = STREAM if streamed else {}

    with (
        skae.config_context(**budget),
        pytest.raises(ValueError, match="NaN or infinity in rows 537"),
    ):
        model.partial_fit(stored) if continued else model.fit(stored)

    if continued:
        assert_array_equal(model.transform(data), before)
        assert model.n_iter_ == 3
    else:
        assert not hasattr(model, "n_iter_")


def test_a_continued_fit_on_a_new_file(tmp_path, data):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    with skae.config_context(**STREAM):
        model = AutoencoderTransformer(**FAST).fit(as_memmap(data[:500], first))
        model.partial_fit(as_memmap(data[500:], second))
    assert model.n_iter_ == 4
    assert np.isfinite(model.transform(data)).all()


def test_a_model_fitted_on_a_memmap_holds_no_reference_to_it(tmp_path, data):
    stored = as_memmap(data, tmp_path)
    with skae.config_context(**STREAM):
        model = AutoencoderTransformer(**FAST).fit(stored)
    codes = model.transform(data)

    payload = pickle.dumps(model)
    del stored
    (tmp_path / "X.npy").unlink()

    assert b"X.npy" not in payload
    assert_array_equal(pickle.loads(payload).transform(data), codes)


def test_non_numeric_data_is_refused(tmp_path):
    file = h5py.File(tmp_path / "text.h5", "w")
    text = file.create_dataset("X", data=np.array([[b"a", b"b"], [b"c", b"d"]]))
    with pytest.raises(ValueError, match="numeric"):
        AutoencoderTransformer(**FAST).fit(text)


def test_a_wrong_number_of_features_is_refused(tmp_path, data):
    model = AutoencoderTransformer(**FAST).fit(data)
    with pytest.raises(ValueError, match="features"):
        model.transform(as_memmap(data[:, :5], tmp_path))


def stored_as(kind, X, directory):
    """``X`` of any number of dimensions in a container of ``kind``."""
    if kind == "memmap":
        return as_memmap(X, directory)
    if kind == "hdf5":
        return h5py.File(directory / "X.h5", "w").create_dataset("X", data=X)
    if kind == "zarr":
        array = zarr.create(store=str(directory / "X.zarr"), shape=X.shape, dtype=X.dtype)
        array[:] = X
        return array
    return da.from_array(X)


@pytest.mark.parametrize("kind", ["memmap", "hdf5", "zarr", "dask"])
@pytest.mark.parametrize("shape", [(60,), (5, 6, 12)])
def test_an_array_that_is_not_2d_is_named_so(tmp_path, data, kind, shape):
    model = AutoencoderTransformer(**FAST).fit(data)
    stored = stored_as(kind, np.zeros(shape), tmp_path)
    for method in (model.transform, model.score_samples, model.partial_fit):
        with pytest.raises(ValueError, match="Expected a 2D array"):
            method(stored)
    with pytest.raises(ValueError, match="Expected a 2D array"):
        AutoencoderTransformer(**FAST).fit(stored)


def test_a_dataset_of_a_closed_hdf5_file_is_named_so(tmp_path, data):
    model = AutoencoderTransformer(**FAST).fit(data)
    dataset = as_hdf5(data, tmp_path)
    dataset.file.close()
    methods = [
        model.transform,
        model.inverse_transform,
        model.score,
        model.partial_fit,
        AutoencoderTransformer(**FAST).fit,
    ]
    for method in methods:
        with pytest.raises(ValueError, match="HDF5 file of this dataset is closed"):
            method(dataset)


def test_bernoulli_scores_of_streamed_data_check_the_unit_interval(tmp_path):
    rng = np.random.RandomState(0)
    binary = (rng.rand(500, 8) > 0.5).astype(np.float64)
    vae = VAETransformer(**FAST, likelihood="bernoulli").fit(binary)
    outside = binary.copy()
    outside[321, 2] = 2.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        vae.score_samples(as_zarr(outside, tmp_path))
    with skae.config_context(**STREAM), pytest.raises(ValueError, match=r"\[0, 1\]"):
        VAETransformer(**FAST, likelihood="bernoulli").fit(as_zarr(outside, tmp_path))


def test_early_stopping_on_streamed_data_holds_out_whole_blocks(tmp_path, data):
    stored = as_zarr(data, tmp_path)
    with skae.config_context(**STREAM):
        model = AutoencoderTransformer(**FAST, early_stopping=True).fit(stored)
        assert len(model.validation_loss_curve_) == model.n_iter_
        with pytest.raises(ValueError, match="whole blocks"):
            AutoencoderTransformer(**FAST, early_stopping=True, validation_fraction=0.01).fit(
                stored
            )


@pytest.mark.parametrize("value", [0, -5, 1.5, True, "8"])
def test_settings_are_checked(value):
    with pytest.raises(ValueError, match="positive integer"):
        skae.set_config(stream_window_blocks=value)


def test_settings_take_numpy_integers():
    with skae.config_context(memory_budget=np.int64(5), stream_block_rows=np.int32(7)):
        assert skae.get_config()["memory_budget"] == 5
        assert type(skae.get_config()["memory_budget"]) is int


def test_config_context_restores_the_settings():
    before = skae.get_config()
    with skae.config_context(memory_budget=123):
        assert skae.get_config()["memory_budget"] == 123
    assert skae.get_config() == before


def test_a_last_block_of_one_row_joins_the_one_before(tmp_path):
    X = np.random.RandomState(0).rand(9, 5)
    with skae.config_context(memory_budget=1, stream_block_rows=4, stream_window_blocks=1):
        model = AutoencoderTransformer(**FAST, batch_norm=True).fit(as_memmap(X, tmp_path))
        assert ArrayReader(X).blocks() == [(0, 4), (4, 9)]
    assert np.isfinite(model.transform(X)).all()


def test_dask_arrays_of_unknown_chunk_sizes_are_a_clear_error(data):
    blocks = da.from_array(data, chunks=(100, 12))
    unknown = blocks[blocks[:, 0] > -100]  # a boolean mask leaves the row count unknown
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        AutoencoderTransformer(**FAST).fit(unknown)


class _Rank:
    """A stand-in for a process group's view: only rank and size (no communication)."""

    def __init__(self, rank, world_size):
        self.rank, self.world_size = rank, world_size


@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("n_rows, block_rows", [(1037, 50), (301, 7), (64, 16)])
def test_streamed_epochs_deal_every_row_once_over_the_ranks(world_size, n_rows, block_rows):
    ids = np.arange(n_rows, dtype=np.float64)[:, None].repeat(2, axis=1)
    with skae.config_context(stream_block_rows=block_rows, stream_window_blocks=2):
        source = StreamSource(ArrayReader(ids), torch.device("cpu"))
        per_rank = [
            list(source.batches(16, torch.Generator().manual_seed(3), _Rank(r, world_size)))
            for r in range(world_size)
        ]

    assert len({len(batches) for batches in per_rank}) == 1, "every rank makes the same steps"
    seen = np.concatenate([batch[:, 0].numpy() for batches in per_rank for batch, _ in batches])
    assert sorted(seen) == list(range(n_rows))
    for step in zip(*per_rank, strict=True):
        assert all(len(batch) >= 2 for batch, _ in step)
        assert {n_global for _, n_global in step} == {sum(len(batch) for batch, _ in step)}


def test_the_path_a_fit_took_is_an_attribute_and_verbose_says_it(tmp_path, data, capsys):
    stored = as_memmap(data, tmp_path)
    in_memory = AutoencoderTransformer(**FAST, verbose=1).fit(stored)
    assert not in_memory.streamed_ and in_memory.stream_block_rows_ is None
    assert "Training from memory (1,000 x 12)" in capsys.readouterr().out
    with skae.config_context(**STREAM):
        streamed = AutoencoderTransformer(**FAST, verbose=1).fit(stored)
    assert streamed.streamed_ and streamed.stream_block_rows_ == 100
    assert "in blocks of 100 rows" in capsys.readouterr().out
    streamed.save(tmp_path / "model.skae")
    assert skae.load(tmp_path / "model.skae").stream_block_rows_ == 100


def test_an_hdf5_file_closed_during_a_fit_is_a_clear_error_and_the_model_is_kept(
    tmp_path, data, monkeypatch
):
    model = AutoencoderTransformer(**FAST).fit(data)
    codes = model.transform(data)
    dataset = as_hdf5(data, tmp_path)
    read = ArrayReader.read_with_sums

    def read_then_close_the_file(reader, start, stop):
        block = read(reader, start, stop)
        dataset.file.close()
        return block

    monkeypatch.setattr(ArrayReader, "read_with_sums", read_then_close_the_file)
    with skae.config_context(**STREAM), pytest.raises(ValueError) as raised:
        model.partial_fit(dataset)
    assert isinstance(raised.value, OSError)  # an I/O failure too
    assert re.match(r"Reading rows \d+:\d+ of X \(Dataset\) failed: .*closed", str(raised.value))
    assert_array_equal(model.transform(data), codes)


def test_float64_values_whose_sums_overflow_are_a_clear_error(tmp_path):
    X = np.full((4, 3), 1e308)
    with pytest.raises(ValueError, match=r"holds values up to 1e\+308 in magnitude, too large"):
        ArrayReader(as_memmap(X, tmp_path)).read(0, 4)
