"""load_mnist, on tiny IDX files written for each test (and on real MNIST when present)."""

import gzip
import os
import re
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from skae.datasets import load_mnist

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049
REPO_ROOT = Path(__file__).resolve().parents[1]
# ../shared/data/mnist from the repository root; used only when it exists.
SHARED_MNIST = REPO_ROOT.parent / "shared" / "data" / "mnist"


def idx_bytes(magic, array):
    """An IDX file's content: big-endian uint32 magic and dimensions, then uint8 data."""
    header = np.array([magic, *array.shape], dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(path, magic, array, gzipped):
    content = idx_bytes(magic, array)
    if gzipped:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(content)
    else:
        path.write_bytes(content)
    return path


def fake_split(n, seed):
    rng = np.random.RandomState(seed)
    images = rng.randint(0, 256, size=(n, 28, 28)).astype(np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255  # both ends of the pixel range
    labels = rng.randint(0, 10, size=n).astype(np.uint8)
    return images, labels


def write_split(folder, prefix, images, labels, gzipped):
    write_idx(folder / f"{prefix}-images-idx3-ubyte", IMAGE_MAGIC, images, gzipped)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte", LABEL_MAGIC, labels, gzipped)


@pytest.fixture(autouse=True)
def no_data_home_from_environment(monkeypatch):
    monkeypatch.delenv("SKAE_DATA_HOME", raising=False)


@pytest.fixture
def test_split():
    return fake_split(5, seed=0)


@pytest.mark.parametrize("gzipped", [True, False])
def test_reads_idx_files(tmp_path, test_split, gzipped):
    images, labels = test_split
    write_split(tmp_path, "t10k", images, labels, gzipped)

    bunch = load_mnist(data_home=tmp_path)

    assert bunch.data.shape == (5, 784)
    assert bunch.data.dtype == np.float32
    assert bunch.data.min() == 0.0
    assert bunch.data.max() == 1.0
    np.testing.assert_allclose(bunch.data, images.reshape(5, 784) / 255.0, rtol=1e-6)
    assert np.issubdtype(bunch.target.dtype, np.integer)
    assert_array_equal(bunch.target, labels)
    assert bunch.images.shape == (5, 28, 28)
    assert_array_equal(bunch.images.reshape(5, 784), bunch.data)
    assert list(bunch.split) == ["test"] * 5
    assert str(tmp_path) in bunch.DESCR


def test_train_split_comes_first(tmp_path):
    train_images, train_labels = fake_split(3, seed=1)
    test_images, test_labels = fake_split(4, seed=2)
    write_split(tmp_path, "train", train_images, train_labels, gzipped=True)
    write_split(tmp_path, "t10k", test_images, test_labels, gzipped=False)

    bunch = load_mnist(data_home=tmp_path)

    assert list(bunch.split) == ["train"] * 3 + ["test"] * 4
    assert_array_equal(bunch.target, np.concatenate([train_labels, test_labels]))
    assert_array_equal(bunch.data[:3] * 255, train_images.reshape(3, 784))


def test_return_X_y(tmp_path, test_split):
    images, labels = test_split
    write_split(tmp_path, "t10k", images, labels, gzipped=True)

    result = load_mnist(data_home=tmp_path, return_X_y=True)

    assert isinstance(result, tuple)
    X, y = result
    assert X.shape == (5, 784)
    assert X.dtype == np.float32
    assert_array_equal(y, labels)


def test_data_home_from_environment(tmp_path, test_split, monkeypatch):
    images, labels = test_split
    write_split(tmp_path, "t10k", images, labels, gzipped=True)
    monkeypatch.setenv("SKAE_DATA_HOME", str(tmp_path))

    X, y = load_mnist(return_X_y=True)

    assert_array_equal(y, labels)


def test_data_home_argument_wins_over_environment(tmp_path, test_split, monkeypatch):
    images, labels = test_split
    write_split(tmp_path, "t10k", images, labels, gzipped=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("SKAE_DATA_HOME", str(empty))

    X, y = load_mnist(data_home=tmp_path, return_X_y=True)

    assert_array_equal(y, labels)


def test_default_folder_is_under_the_scikit_learn_data_home(tmp_path, test_split, monkeypatch):
    images, labels = test_split
    (tmp_path / "mnist").mkdir()
    write_split(tmp_path / "mnist", "t10k", images, labels, gzipped=True)
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path))

    X, y = load_mnist(return_X_y=True)

    assert_array_equal(y, labels)


def test_missing_files_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path))):
        load_mnist(data_home=tmp_path)


def test_missing_folder_from_environment_is_named(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere"
    monkeypatch.setenv("SKAE_DATA_HOME", str(missing))

    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        load_mnist()


def test_images_without_labels_are_not_a_split(tmp_path, test_split):
    images, _ = test_split
    write_idx(tmp_path / "t10k-images-idx3-ubyte", IMAGE_MAGIC, images, gzipped=True)

    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_mnist(data_home=tmp_path)


@pytest.mark.parametrize("gzipped", [True, False])
@pytest.mark.parametrize("wrong_file", ["images", "labels"])
def test_wrong_magic_number_is_rejected(tmp_path, test_split, wrong_file, gzipped):
    images, labels = test_split
    image_magic = 1234 if wrong_file == "images" else IMAGE_MAGIC
    label_magic = 1234 if wrong_file == "labels" else LABEL_MAGIC
    write_idx(tmp_path / "t10k-images-idx3-ubyte", image_magic, images, gzipped)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", label_magic, labels, gzipped)

    with pytest.raises(ValueError, match="magic number 1234"):
        load_mnist(data_home=tmp_path)


def test_image_file_in_place_of_labels_is_rejected(tmp_path, test_split):
    images, _ = test_split
    write_idx(tmp_path / "t10k-images-idx3-ubyte", IMAGE_MAGIC, images, gzipped=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", IMAGE_MAGIC, images, gzipped=False)

    with pytest.raises(ValueError, match=f"magic number {IMAGE_MAGIC}, expected {LABEL_MAGIC}"):
        load_mnist(data_home=tmp_path)


def test_truncated_file_is_rejected(tmp_path, test_split):
    images, labels = test_split
    content = idx_bytes(IMAGE_MAGIC, images)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(content[:-100])
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", LABEL_MAGIC, labels, gzipped=False)

    with pytest.raises(ValueError, match="header promises"):
        load_mnist(data_home=tmp_path)


def test_file_shorter_than_its_header_is_rejected(tmp_path, test_split):
    images, labels = test_split
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08")
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", LABEL_MAGIC, labels, gzipped=False)

    with pytest.raises(ValueError, match="too short"):
        load_mnist(data_home=tmp_path)


def test_image_and_label_counts_must_agree(tmp_path, test_split):
    images, labels = test_split
    write_idx(tmp_path / "t10k-images-idx3-ubyte", IMAGE_MAGIC, images, gzipped=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", LABEL_MAGIC, labels[:3], gzipped=False)

    with pytest.raises(ValueError, match="5 images but .* 3 labels"):
        load_mnist(data_home=tmp_path)


def _real_mnist_folder():
    candidates = [os.environ.get("SKAE_DATA_HOME"), SHARED_MNIST]
    for folder in candidates:
        if folder and (Path(folder) / "t10k-labels-idx1-ubyte.gz").is_file():
            return Path(folder)
    return None


REAL_MNIST = _real_mnist_folder()


@pytest.mark.skipif(REAL_MNIST is None, reason="the real MNIST test split is not on this machine")
def test_real_mnist_test_split():
    bunch = load_mnist(data_home=REAL_MNIST)
    test = bunch.split == "test"

    X, y = bunch.data[test], bunch.target[test]
    assert X.shape == (10000, 784)
    assert X.dtype == np.float32
    assert 0.0 == X.min() < X.max() == 1.0
    assert_array_equal(
        np.bincount(y, minlength=10), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    )
