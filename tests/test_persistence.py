"""skae's own file format: safe to load, exact, and strict about what it reads."""

import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_array_equal
from safetensors import safe_open
from safetensors.torch import save_file

import skae
from skae import AutoencoderTransformer, VAETransformer

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def saved(tmp_path, make_estimator, small_X):
    """A fitted estimator and the path it was saved to."""
    estimator = make_estimator().fit(small_X)
    path = tmp_path / "model.skae"
    estimator.save(path)
    return estimator, path


def rewrite(path, change_metadata=None, change_tensors=None):
    """Write the file at ``path`` again with its metadata or tensors changed."""
    with safe_open(str(path), framework="pt") as file:
        metadata = dict(file.metadata())
        tensors = {name: file.get_tensor(name) for name in file.keys()}
    if change_metadata:
        change_metadata(metadata)
    if change_tensors:
        change_tensors(tensors)
    save_file(tensors, str(path), metadata=metadata)


class Exploit:
    """Pickling this runs ``touch`` on load: what a malicious model file does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_payload_is_refused_not_executed(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "model.skae"
    path.write_bytes(pickle.dumps(Exploit(str(marker))))

    with pytest.raises(ValueError, match="not a skae model file"):
        skae.load(path)

    assert not marker.exists()


def test_a_pickle_hidden_in_the_metadata_is_never_unpickled(saved, tmp_path):
    estimator, path = saved
    marker = tmp_path / "executed"
    payload = pickle.dumps(Exploit(str(marker))).hex()

    def plant(metadata):
        document = json.loads(metadata["estimator"])
        document["model_attributes"]["noise"] = payload
        metadata["estimator"] = json.dumps(document)

    rewrite(path, change_metadata=plant)
    loaded = skae.load(path)

    assert not marker.exists()
    assert loaded._network.noise == payload  # a string, never run


@pytest.mark.parametrize("cut", [0, 7, 100, -10])
def test_a_truncated_file_is_a_clear_error(saved, cut):
    _, path = saved
    data = path.read_bytes()
    path.write_bytes(data[:cut] if cut >= 0 else data[:cut])

    with pytest.raises(ValueError, match="truncated or corrupted"):
        skae.load(path)


def test_a_corrupted_tensor_is_detected(saved):
    _, path = saved
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))

    with pytest.raises(ValueError, match="corrupted"):
        skae.load(path)


def test_another_format_version_is_refused(saved):
    _, path = saved
    rewrite(path, change_metadata=lambda metadata: metadata.update(format_version="99"))

    with pytest.raises(ValueError, match="format version 99"):
        skae.load(path)


def test_a_safetensors_file_of_something_else_is_refused(tmp_path):
    path = tmp_path / "weights.safetensors"
    save_file({"weight": torch.zeros(3)}, str(path))

    with pytest.raises(ValueError, match="not a skae model file"):
        skae.load(path)


def test_an_unknown_estimator_class_is_refused(saved):
    _, path = saved

    def rename(metadata):
        document = json.loads(metadata["estimator"])
        document["class"] = "os.system"
        metadata["estimator"] = json.dumps(document)

    rewrite(path, change_metadata=rename)
    with pytest.raises(ValueError, match="unknown estimator"):
        skae.load(path)


def test_tensors_that_do_not_fit_the_network_are_refused(saved):
    _, path = saved

    def drop_one(tensors):
        tensors.pop(next(name for name in tensors if name.startswith("network.")))

    def fix_checksum(metadata):
        from skae._persistence import _checksum

        with safe_open(str(path), framework="pt") as file:
            metadata["sha256"] = _checksum({n: file.get_tensor(n) for n in file.keys()})

    rewrite(path, change_tensors=drop_one)
    rewrite(path, change_metadata=fix_checksum)
    with pytest.raises(ValueError, match="does not match its description"):
        skae.load(path)


def test_a_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        skae.load(tmp_path / "nothing.skae")


def test_an_unfitted_estimator_cannot_be_saved(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        AutoencoderTransformer().save(tmp_path / "model.skae")


def test_feature_names_and_a_random_state_instance_round_trip(tmp_path, small_X):
    frame = pd.DataFrame(small_X, columns=[f"f{i}" for i in range(small_X.shape[1])])
    estimator = VAETransformer(
        hidden_layer_sizes=(8,),
        max_epochs=2,
        device="cpu",
        random_state=np.random.RandomState(3),
        input_shape=(1, 2, 3),
    ).fit(frame)
    estimator.save(tmp_path / "model.skae")

    loaded = skae.load(tmp_path / "model.skae")

    assert_array_equal(loaded.feature_names_in_, estimator.feature_names_in_)
    assert loaded.input_shape == (1, 2, 3) and loaded.hidden_layer_sizes == (8,)
    # The generator's state as saved (after the fit drew from it).
    assert loaded.random_state.randint(1000) == estimator.random_state.randint(1000)
    assert_array_equal(loaded.transform(frame), estimator.transform(frame))


def test_pretrained_and_conv_models_round_trip(tmp_path, digits_X):
    models = [
        AutoencoderTransformer(
            hidden_layer_sizes=(16, 8),
            pretrain="layerwise",
            pretrain_epochs=1,
            max_epochs=2,
            device="cpu",
            random_state=0,
        ),
        VAETransformer(
            architecture="conv",
            input_shape=(1, 8, 8),
            conv_channels=(4,),
            hidden_layer_sizes=(8,),
            max_epochs=2,
            device="cpu",
            random_state=0,
        ),
    ]
    for index, model in enumerate(models):
        model.fit(digits_X)
        path = tmp_path / f"model{index}.skae"
        model.save(path)
        loaded = skae.load(path)
        assert_array_equal(loaded.transform(digits_X), model.transform(digits_X))
        assert loaded.pretrain_loss_curves_ == model.pretrain_loss_curves_


def test_load_places_the_model_on_the_requested_device(saved, small_X):
    estimator, path = saved
    assert skae.load(path, device="cpu").device_ == torch.device("cpu")
    with pytest.raises(ValueError, match="device"):
        skae.load(path, device="tpu")


@pytest.mark.gpu
def test_a_gpu_trained_model_loads_on_the_cpu_and_back(tmp_path, digits_X):
    model = AutoencoderTransformer(
        hidden_layer_sizes=(16,), max_epochs=2, device="cuda", random_state=0
    ).fit(digits_X)
    model.save(tmp_path / "model.skae")

    on_cpu = skae.load(tmp_path / "model.skae")
    on_gpu = skae.load(tmp_path / "model.skae", device="cuda")

    assert on_cpu.device_ == torch.device("cpu") and on_gpu.device_.type == "cuda"
    np.testing.assert_allclose(
        on_cpu.transform(digits_X), model.transform(digits_X), rtol=1e-5, atol=1e-6
    )
    assert_array_equal(on_gpu.transform(digits_X), model.transform(digits_X))
    on_gpu.partial_fit(digits_X)
    model.partial_fit(digits_X)
    assert_array_equal(on_gpu.transform(digits_X), model.transform(digits_X))


def test_the_file_holds_no_pickle(saved):
    _, path = saved
    data = path.read_bytes()
    assert b"\x80\x04\x95" not in data and b"\x80\x05\x95" not in data  # pickle protocol 4/5
    assert os.path.getsize(path) < 200_000


def test_numpy_scalar_parameters_save(tmp_path, small_X):
    estimator = AutoencoderTransformer(
        hidden_layer_sizes=(8,),
        max_epochs=2,
        device="cpu",
        random_state=0,
        learning_rate=np.float32(1e-3),
        weight_decay=np.float64(1e-5),
        batch_size=np.int64(16),
    ).fit(small_X)
    estimator.save(tmp_path / "model.skae")

    loaded = skae.load(tmp_path / "model.skae")

    assert_array_equal(loaded.transform(small_X), estimator.transform(small_X))
    assert loaded.batch_size == 16


def test_a_model_saved_for_an_absent_device_still_loads(saved, small_X):
    estimator, path = saved

    def ask_for_cuda(metadata):
        document = json.loads(metadata["estimator"])
        document["params"]["device"] = "cuda:7"
        metadata["estimator"] = json.dumps(document)

    rewrite(path, change_metadata=ask_for_cuda)
    loaded = skae.load(path)

    assert loaded.device == "cuda:7" and loaded.device_ == torch.device("cpu")
    assert_array_equal(loaded.transform(small_X), estimator.transform(small_X))


def edit(field, value):
    """A change to the saved estimator description: ``field`` set to ``value``.

    ``value`` may be ``KeyError`` (delete the field) or a callable of the old value.
    """

    def change(document):
        *path, last = field.split(".")
        for key in path:
            document = document[key]
        if value is KeyError:
            del document[last]
        else:
            document[last] = value(document.get(last)) if callable(value) else value

    change.__name__ = f"{field}={value!r}"
    return change


OTHER_CLASS = {
    "AutoencoderTransformer": "VAETransformer",
    "VAETransformer": "AutoencoderTransformer",
}


@pytest.mark.parametrize(
    "change",
    [
        edit("params", []),
        edit("params", KeyError),
        edit("params.n_components", -1),
        edit("params.not_a_parameter", 1),
        edit("spec.activation", "bogus"),
        edit("spec.hidden_layer_sizes", 5),
        edit("spec.extra", 1),
        edit("n_iter", 10**30),
        edit("n_iter", "abc"),
        edit("n_iter", -7),
        edit("loss_curve", "abc"),
        edit("n_features_in", 3),
        edit("feature_names_in", ["a"]),
        edit("model_attributes.encoder", 1),
        edit("model_attributes.loss", "bogus"),
        edit("class", OTHER_CLASS.get),
        edit("optimizer.state", {"99": {}}),
    ],
    ids=lambda change: change.__name__,
)
def test_an_invalid_description_is_a_clear_error(saved, change):
    _, path = saved

    def tamper(metadata):
        document = json.loads(metadata["estimator"])
        change(document)
        metadata["estimator"] = json.dumps(document)

    rewrite(path, change_metadata=tamper)
    with pytest.raises(ValueError, match="invalid skae model description"):
        skae.load(path)


@pytest.mark.parametrize("description", [None, "[1, 2]", "not json"])
def test_a_missing_or_broken_description_is_a_clear_error(saved, description):
    _, path = saved

    def replace(metadata):
        if description is None:
            del metadata["estimator"]
        else:
            metadata["estimator"] = description

    rewrite(path, change_metadata=replace)
    with pytest.raises(ValueError, match="invalid skae model description"):
        skae.load(path)
