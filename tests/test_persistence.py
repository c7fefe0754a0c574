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
from skae._file_checks import digest

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def saved(tmp_path, make_estimator, small_X):
    """A fitted estimator and the path it was saved to."""
    estimator = make_estimator().fit(small_X)
    path = tmp_path / "model.skae"
    estimator.save(path)
    return estimator, path


def rewrite(path, change_metadata=None, change_tensors=None, reseal=True):
    """Write the file at ``path`` again with its metadata or tensors changed.

    ``reseal`` recomputes the file's SHA-256, as anyone who edits a file can:
    the checks behind the digest are what such a file meets.
    """
    with safe_open(str(path), framework="pt") as file:
        metadata = dict(file.metadata())
        tensors = {name: file.get_tensor(name) for name in file.keys()}
    if change_metadata:
        change_metadata(metadata)
    if change_tensors:
        change_tensors(tensors)
    if reseal:
        metadata["sha256"] = digest(metadata, tensors)
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
        document["objective"]["noise"] = payload
        metadata["estimator"] = json.dumps(document)

    rewrite(path, change_metadata=plant)
    with pytest.raises(ValueError, match="objective.noise has an invalid value"):
        skae.load(path)  # a string, never run, and not a noise kind

    assert not marker.exists()


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

    rewrite(path, change_tensors=drop_one)
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
        edit("objective.encoder", 1),
        edit("objective.reconstruction", "bogus"),
        edit("objective.reconstruction", lambda old: "gaussian" if old == "mse" else "mse"),
        edit("objective.sparsity", True),
        edit("objective.kl_warmup_epochs", 1.5),
        edit("objective.kernel", [1.0]),
        edit("model_attributes", {}),
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


# ------------------------------------------- doctored files (issue reproducers)


def fitted_file(tmp_path, optimizer="adam", **params):
    """A small model trained with ``optimizer``, saved; returns (model, path)."""
    model = AutoencoderTransformer(
        hidden_layer_sizes=(8,), max_epochs=2, device="cpu", random_state=0, optimizer=optimizer
    )
    model.set_params(**params).fit(np.random.RandomState(0).uniform(size=(40, 6)))
    path = tmp_path / f"{optimizer}.skae"
    model.save(path)
    return model, path


def edited_document(change):
    def tamper(metadata):
        document = json.loads(metadata["estimator"])
        change(document)
        metadata["estimator"] = json.dumps(document)

    return tamper


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.update({"optimizer.0.exp_avg": torch.zeros(3)}),
        lambda t: t.update({"optimizer.0.exp_avg_sq": torch.zeros(3)}),
        lambda t: t.update({"optimizer.0.step": torch.zeros(5)}),
        lambda t: t.update({"optimizer.0.exp_avg": t["optimizer.0.exp_avg"].double()}),
        lambda t: t.update({"optimizer.0.exp_avg_sq": -t["optimizer.0.exp_avg_sq"] - 1}),
        lambda t: t.update({"optimizer.0.step": torch.tensor(-3.0)}),
        lambda t: t.update({"optimizer.0.step": torch.tensor(2.5)}),
        lambda t: t.pop("optimizer.0.exp_avg"),
        lambda t: t.update({"optimizer.0.extra": torch.zeros(1)}),
        lambda t: t.update({"optimizer.99.exp_avg": torch.zeros(1)}),
        lambda t: t.update({"network.extra": torch.zeros(1)}),
    ],
    ids=[
        "exp_avg-zeros3",
        "exp_avg_sq-zeros3",
        "step-5-elements",
        "exp_avg-float64",
        "exp_avg_sq-negative",
        "step-negative",
        "step-fraction",
        "exp_avg-dropped",
        "extra-state",
        "unknown-parameter",
        "extra-network-tensor",
    ],
)
def test_a_doctored_optimizer_state_is_refused_before_torch_sees_it(tmp_path, optimizer, change):
    # Before these checks, the first partial_fit after loading the first of
    # these crashed Python (Adam: segfault; AdamW: heap corruption).
    _, path = fitted_file(tmp_path, optimizer)
    rewrite(path, change_tensors=change)

    with pytest.raises(ValueError, match="invalid skae model description"):
        skae.load(path)


@pytest.mark.parametrize(
    "optimizer, entry", [("sgd", "momentum_buffer"), ("rmsprop", "square_avg")]
)
def test_a_misshaped_buffer_of_any_optimizer_is_refused(tmp_path, optimizer, entry):
    _, path = fitted_file(tmp_path, optimizer)
    rewrite(path, change_tensors=lambda t: t.update({f"optimizer.0.{entry}": torch.zeros(2, 2)}))

    with pytest.raises(ValueError, match=f"{entry} has shape"):
        skae.load(path)


def test_a_file_whose_optimizer_state_passed_the_checks_trains_like_the_original(tmp_path):
    for optimizer in ("adam", "adamw", "sgd", "rmsprop"):
        model, path = fitted_file(tmp_path, optimizer)
        X = np.random.RandomState(1).uniform(size=(40, 6))
        loaded = skae.load(path)
        loaded.partial_fit(X)
        model.partial_fit(X)
        assert_array_equal(loaded.transform(X), model.transform(X))


def file_with_description_edited(tmp_path, old, new):
    """A fitted model's file whose JSON description has ``old`` replaced by ``new``."""
    _, path = fitted_file(tmp_path)

    def replace(metadata):
        assert old in metadata["estimator"]
        metadata["estimator"] = metadata["estimator"].replace(old, new, 1)

    rewrite(path, change_metadata=replace)
    return path


@pytest.mark.parametrize(
    "old, new, message",
    [
        ('"n_features_in": 6', '"n_features_in": Infinity', "not a finite number"),
        ('"n_features_in": 6', '"n_features_in": 1e400', "not finite"),
        ('"n_features_in": 6', '"n_features_in": NaN', "not a finite number"),
        ('"mean": [', '"mean": [' + "1" + "0" * 400 + ", ", "out of range"),
        ('"loss_curve": [', '"loss_curve": [' + "[" * 100_000 + "]" * 100_000 + ", ", "levels"),
    ],
    ids=["infinity", "1e400", "nan", "10**400", "deep-nesting"],
)
def test_numbers_and_nesting_json_allows_but_we_do_not(tmp_path, old, new, message):
    with pytest.raises(ValueError, match=message):
        skae.load(file_with_description_edited(tmp_path, old, new))


@pytest.mark.parametrize(
    "change, message",
    [
        (edit("params.device", "cpu\n"), "device="),
        (edit("params.random_state", {"__random_state__": ["MT19937", [1], 0, 0, 0.0]}), "624"),
        (edit("spec.hidden_layer_sizes", {"__tuple__": [10**12]}), "does not match"),
        (edit("spec.n_features", 10**12), "n_features_in does not match"),
        (edit("spec.output_activation", "auto"), "spec.output_activation"),
        (edit("spec.input_shape", {"__tuple__": [1, 2, 3]}), "inconsistent"),
        (edit("objective.kernel", [-1.0, 1.0]), "objective.kernel"),
        (edit("objective.noise_level", -1.0), "objective.noise_level"),
        (edit("objective.min_dist", 2.0), "objective.min_dist"),
        (edit("training_error", -1.0), "training_error"),
        (edit("best_loss", "x"), "best_loss"),
        (edit("extra", 1), "unknown fields"),
        (edit("optimizer.param_groups", []), "param_groups must be a list of 1"),
        (
            lambda d: d["optimizer"]["param_groups"][0].update(betas="ab"),
            "param_groups.betas",
        ),
        (
            lambda d: d["optimizer"]["param_groups"][0].update(eps=-1.0),
            "param_groups.eps",
        ),
        (lambda d: d["optimizer"]["param_groups"][0].update(lr=-1.0), "param_groups.lr"),
        (lambda d: d["optimizer"]["param_groups"][0].update(params=[0]), "param_groups.params"),
        (edit("optimizer_name", "lbfgs"), "optimizer_name must be one of"),
        (edit("optimizer_name", None), "both be given"),
    ],
)
def test_every_field_is_checked_before_anything_is_built(tmp_path, change, message):
    _, path = fitted_file(tmp_path)
    rewrite(path, change_metadata=edited_document(change))

    with pytest.raises(ValueError, match=message):
        skae.load(path)


def test_every_header_change_is_detected_by_the_digest(tmp_path):
    # Format 2 checksummed the tensors only: 235 of 6,080 one-bit flips of
    # the header loaded with altered values. Now any change is refused.
    model, path = fitted_file(tmp_path)
    data = path.read_bytes()
    header_end = 8 + int.from_bytes(data[:8], "little")
    X = np.random.RandomState(1).uniform(size=(10, 6))
    positions = np.random.RandomState(0).choice(np.arange(8, header_end), 300, replace=False)
    for position in positions:
        flipped = bytearray(data)
        flipped[position] ^= 1
        path.write_bytes(bytes(flipped))
        try:
            loaded = skae.load(path)
        except ValueError:
            continue
        # Only a flip that leaves the header's meaning unchanged may load.
        assert loaded.get_params() == model.get_params()
        assert_array_equal(loaded.transform(X), model.transform(X))


def test_a_key_signs_the_file_and_load_checks_it(tmp_path):
    model, path = fitted_file(tmp_path)
    model.save(path, key="our secret")

    assert_array_equal(
        skae.load(path, key="our secret").transform(np.eye(6)), model.transform(np.eye(6))
    )
    assert skae.load(path).n_iter_ == model.n_iter_  # the SHA-256 still serves without a key
    with pytest.raises(ValueError, match="not saved with this key"):
        skae.load(path, key=b"another")
    # Edited and resealed (the SHA-256 recomputed): the signature no longer fits.
    rewrite(path, change_metadata=edited_document(edit("params.learning_rate", 0.5)))
    assert skae.load(path).learning_rate == 0.5
    with pytest.raises(ValueError, match="not saved with this key"):
        skae.load(path, key="our secret")
    # A file saved without a key cannot be authenticated.
    model.save(path)
    with pytest.raises(ValueError, match="saved without a key"):
        skae.load(path, key="our secret")
    with pytest.raises(ValueError, match="key must be"):
        model.save(path, key="")


FORMAT2 = os.path.join(os.path.dirname(__file__), "data", "format2")
FORMAT3 = os.path.join(os.path.dirname(__file__), "data", "format3")


@pytest.mark.parametrize("name", ["autoencoder_adam", "vae_rmsprop", "conv_sgd", "neighbors_adamw"])
def test_format_3_files_still_load_with_their_objective_and_train(name, tmp_path):
    from sklearn.datasets import load_digits

    X = load_digits().data[:20] / 16.0
    model = skae.load(os.path.join(FORMAT3, f"{name}.skae"))
    if hasattr(model, "feature_names_in_"):
        X = pd.DataFrame(X, columns=model.feature_names_in_)
    expected = np.load(os.path.join(FORMAT3, f"{name}.codes.npy"))
    np.testing.assert_allclose(model.transform(X), expected, rtol=1e-12, atol=1e-12)

    # The hand-kept settings of format 3 became the model's objective.
    objective = model._network.objective
    assert objective.noise == model.noise and objective.noise_level == model.noise_level
    assert objective.neighbors == model.neighbor_weight
    if name == "neighbors_adamw":
        from skae._objectives import kernel_parameters

        np.testing.assert_allclose(objective.kernel, kernel_parameters(0.2), rtol=1e-6)
    if name == "vae_rmsprop":
        assert objective.kl == 0.5 and objective.kl_warmup_epochs == 2
    if name == "autoencoder_adam":
        assert objective.sparsity == 0.01

    # Saved again, it is a format 4 file with the same objective.
    model.save(tmp_path / "again.skae")
    again = skae.load(tmp_path / "again.skae")
    assert again._network.objective == objective
    model.partial_fit(X)


def test_a_format_3_file_with_a_foreign_model_setting_is_refused(tmp_path):
    path = tmp_path / "old.skae"
    path.write_bytes(open(os.path.join(FORMAT3, "autoencoder_adam.skae"), "rb").read())
    for change, message in [
        (edit("model_attributes.beta", 1.0), "unknown model setting 'beta'"),
        (edit("model_attributes.kernel_a", -1.0), "kernel_a must be positive"),
        (edit("model_attributes.noise", "salt"), "model_attributes.noise must be null"),
        (edit("objective", {}), "needs 'model_attributes'"),
    ]:
        copy = tmp_path / "changed.skae"
        copy.write_bytes(path.read_bytes())
        rewrite(copy, change_metadata=edited_document(change))
        with pytest.raises(ValueError, match=message):
            skae.load(copy)


@pytest.mark.parametrize("name", ["autoencoder_adam", "vae_rmsprop", "conv_sgd"])
def test_format_2_files_still_load_and_train(name):
    from sklearn.datasets import load_digits

    X = load_digits().data[:20] / 16.0
    model = skae.load(os.path.join(FORMAT2, f"{name}.skae"))
    if hasattr(model, "feature_names_in_"):
        X = pd.DataFrame(X, columns=model.feature_names_in_)

    # Bit-identical on the machine that wrote them; other CPUs' float64
    # kernels differ in the last bits (4e-16 on an H200 machine's host).
    expected = np.load(os.path.join(FORMAT2, f"{name}.codes.npy"))
    np.testing.assert_allclose(model.transform(X), expected, rtol=1e-12, atol=1e-12)
    model.partial_fit(X)  # the optimiser's state is checked and continues
    with pytest.raises(ValueError, match="no signature"):
        skae.load(os.path.join(FORMAT2, f"{name}.skae"), key="k")


def test_a_format_2_file_still_has_its_structure_checked(tmp_path):
    path = tmp_path / "old.skae"
    path.write_bytes(open(os.path.join(FORMAT2, "autoencoder_adam.skae"), "rb").read())
    # Format 2's checksum covers only the tensors: an edited header passes it
    # (the older guarantee), but not the checks of what the header says.
    rewrite(
        path,
        change_metadata=edited_document(edit("n_iter", -1)),
        reseal=False,
    )
    with pytest.raises(ValueError, match="n_iter"):
        skae.load(path)


def test_whatever_fit_accepts_save_writes(tmp_path, small_X):
    model = AutoencoderTransformer(
        hidden_layer_sizes=range(4, 6), max_epochs=1, device="cpu", random_state=0
    ).fit(small_X)
    model.save(tmp_path / "model.skae")

    loaded = skae.load(tmp_path / "model.skae")

    assert loaded.hidden_layer_sizes == (4, 5)
    assert_array_equal(loaded.transform(small_X), model.transform(small_X))


def test_saving_into_a_missing_folder_is_an_os_error(saved):
    estimator, path = saved
    with pytest.raises(FileNotFoundError, match="does not exist"):
        estimator.save(path.parent / "missing" / "model.skae")


def test_a_saved_file_gets_the_users_umask(saved, tmp_path):
    estimator, _ = saved
    previous = os.umask(0o022)
    try:
        estimator.save(tmp_path / "shared.skae")
        estimator.save(tmp_path / "shared.skae")  # and again, over the first
    finally:
        os.umask(previous)
    assert (tmp_path / "shared.skae").stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.skae", "shared.skae"]


# ------------------------------------------- found by a review of the checks


def test_an_unclosed_string_of_escaped_quotes_is_refused_quickly(tmp_path):
    import time

    _, path = fitted_file(tmp_path)
    # A regular expression over strings backtracked quadratically here:
    # 64 KB took 18 s, 1 MB would have taken over an hour.
    rewrite(path, change_metadata=lambda m: m.update(estimator='"' + '\\"' * 500_000))
    started = time.perf_counter()
    with pytest.raises(ValueError, match="not valid JSON"):
        skae.load(path)
    assert time.perf_counter() - started < 10


def test_a_description_beyond_the_size_limit_is_refused(tmp_path, monkeypatch):
    import skae._file_checks

    _, path = fitted_file(tmp_path)
    monkeypatch.setattr(skae._file_checks, "MAX_DESCRIPTION_CHARACTERS", 100)
    with pytest.raises(ValueError, match="characters"):
        skae.load(path)


@pytest.mark.parametrize("field", ["sha256", "hmac"])
def test_a_non_ascii_digest_is_corruption_not_a_type_error(tmp_path, field):
    _, path = fitted_file(tmp_path)
    rewrite(path, change_metadata=lambda m: m.update({field: "é"}), reseal=field == "hmac")
    with pytest.raises(ValueError, match="corrupted|not saved with this key"):
        skae.load(path, key="k" if field == "hmac" else None)


def test_many_layers_load_in_linear_time(tmp_path, small_X):
    import time

    timings = []
    for depth in (100, 400):
        model = AutoencoderTransformer(
            hidden_layer_sizes=(2,) * depth, max_epochs=1, device="cpu", random_state=0
        ).fit(small_X)
        model.save(tmp_path / f"{depth}.skae")
        started = time.perf_counter()
        skae.load(tmp_path / f"{depth}.skae")
        timings.append(time.perf_counter() - started)
    # 4x the layers: linear is 4x, torch's load_state_dict was 16x.
    assert timings[1] < 10 * timings[0] + 0.5


@pytest.mark.parametrize(
    "buffer, value, message",
    [
        ("running_var", -1.0, "must not be negative"),
        ("decoder.output.scale", 0.0, "must be positive"),
        ("encoder.scaler.scale", -1.0, "must be positive"),
    ],
)
def test_buffers_that_divide_or_are_variances_are_checked(tmp_path, buffer, value, message):
    _, path = fitted_file(tmp_path, batch_norm=True)

    def change(tensors):
        name = next(n for n in tensors if n.endswith(buffer))
        tensors[name] = torch.full_like(tensors[name], value)

    rewrite(path, change_tensors=change)
    with pytest.raises(ValueError, match=message):
        skae.load(path)


@pytest.mark.parametrize("device", ["cuda:007", "cuda:300", "cuda:99999999999999999999"])
def test_device_indices_torch_cannot_hold_are_refused(tmp_path, device):
    _, path = fitted_file(tmp_path)
    with pytest.raises(ValueError, match="is not valid"):
        skae.load(path, device=device)
    rewrite(path, change_metadata=edited_document(edit("params.device", device)))
    with pytest.raises(ValueError, match="is not valid"):
        skae.load(path)


@pytest.mark.parametrize("key", ["", 5, b""])
def test_an_invalid_key_is_named_before_the_file_is_read(tmp_path, key):
    model, path = fitted_file(tmp_path)
    with pytest.raises(ValueError, match="key must be"):
        skae.load(path, key=key)
    with pytest.raises(ValueError, match="key must be"):
        model.save(path, key=key)


def test_bytes_paths_work(tmp_path):
    model, path = fitted_file(tmp_path)
    target = os.fsencode(tmp_path / "bytes.skae")
    model.save(target)
    assert skae.load(target).n_iter_ == model.n_iter_


# ------------------------------------------------------- a whole Pipeline


def test_a_pipeline_with_skae_saves_safely_with_skops(tmp_path):
    sio = pytest.importorskip("skops.io")
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    pipe = make_pipeline(
        StandardScaler(),
        AutoencoderTransformer(
            n_components=4,
            hidden_layer_sizes=(8,),
            max_epochs=2,
            device="cpu",
            random_state=np.random.RandomState(0),
        ),
        LogisticRegression(max_iter=200),
    ).fit(X[:300], y[:300])
    sio.dump(pipe, tmp_path / "pipe.skops")

    untrusted = sio.get_untrusted_types(file=tmp_path / "pipe.skops")
    assert untrusted == ["skae._autoencoder.AutoencoderTransformer"]
    loaded = sio.load(tmp_path / "pipe.skops", trusted=untrusted)

    assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))
    assert_array_equal(loaded[1].transform(X), pipe[1].transform(X))
    loaded[1].partial_fit(X)  # and keeps training


def test_a_pickled_state_holds_no_torch_object_and_is_checked(saved):
    estimator, _ = saved
    state = estimator.__getstate__()
    assert "_state" not in state and state["_skae_file"].dtype == np.uint8
    damaged = state["_skae_file"].copy()
    damaged[-3] ^= 1
    with pytest.raises(ValueError, match="corrupted"):
        type(estimator).__new__(type(estimator)).__setstate__({**state, "_skae_file": damaged})


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.update({"fitted.embedding": t["fitted.embedding"].double()}), "float32"),
        (lambda t: t.update({"fitted.embedding": t["fitted.embedding"][:, :1].clone()}), "1\\)"),
        (lambda t: t["fitted.embedding"].__setitem__((0, 0), float("nan")), "not finite"),
        (lambda t: t.update({"fitted.extra": t["fitted.embedding"].clone()}), "unknown tensors"),
    ],
)
def test_a_doctored_map_is_refused(tmp_path, make_estimator, small_X, change, message):
    estimator = make_estimator(neighbor_weight=1.0, n_neighbors=5).fit(small_X)
    path = tmp_path / "map.skae"
    estimator.save(path)
    assert_array_equal(skae.load(path).embedding_, estimator.embedding_)

    rewrite(path, change_tensors=change)
    with pytest.raises(ValueError, match=message):
        skae.load(path)


# ------------------------------------------------ promises under attack


def sealed_digest(data):
    """The SHA-256 a skae file's header holds, after checking the whole file against it."""
    from skae._loading import plan_for
    from skae._persistence import read_bytes

    read_bytes(data, plan_for)  # raises unless the file is whole and its digest fits
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    return header["__metadata__"]["sha256"]


def test_concurrent_saves_to_one_path_always_leave_one_whole_model(tmp_path):
    # A temporary named after the process (path.PID.tmp) was shared by its
    # threads: one thread's replace moved another's half-written file into
    # place, and the other's replace then failed with FileNotFoundError.
    import threading

    from skae._persistence import model_bytes

    X = np.random.RandomState(0).uniform(size=(40, 6))
    models = [
        AutoencoderTransformer(
            hidden_layer_sizes=(64,), max_epochs=1, device="cpu", random_state=seed
        ).fit(X)
        for seed in range(6)
    ]
    candidates = {sealed_digest(model_bytes(model._saved())) for model in models}
    path = tmp_path / "shared.skae"
    models[0].save(path)
    start, errors, seen = threading.Barrier(len(models) + 1), [], []

    def saving(model):
        start.wait()
        try:
            for _ in range(30):
                model.save(path)
        except Exception as error:  # noqa: BLE001 - what the test counts
            errors.append(error)

    def reading():
        start.wait()
        while any(thread.is_alive() for thread in writers):
            try:
                seen.append(sealed_digest(path.read_bytes()) in candidates)
            except (OSError, ValueError) as error:
                seen.append(error)

    writers = [threading.Thread(target=saving, args=(model,)) for model in models]
    reader = threading.Thread(target=reading)
    for thread in [*writers, reader]:
        thread.start()
    for thread in [*writers, reader]:
        thread.join()

    assert errors == []
    assert seen and all(found is True for found in seen), seen  # never a half-written file
    assert sealed_digest(path.read_bytes()) in candidates
    assert [p.name for p in tmp_path.iterdir()] == ["shared.skae"]  # no temporaries left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(saved, monkeypatch):
    estimator, path = saved
    before = path.read_bytes()

    def no_space(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space"):
        estimator.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_save_is_flushed_to_disk_before_it_replaces_the_file(saved, monkeypatch):
    estimator, path = saved
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda *a: events.append("replace") or real_replace(*a))

    estimator.save(path)

    assert events[:2] == ["fsync", "replace"]  # the file's data, then the rename
    if os.name == "posix":
        assert events[2:] == ["fsync"]  # then the folder's entry


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_loading_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    import subprocess
    import time

    path = tmp_path / "model.skae"
    os.mkfifo(path)
    # The guard: a writer that opens the FIFO after 20 s, which ends a load
    # waiting in open() (the wait holds the GIL: no thread of ours could).
    writer = subprocess.Popen(["sh", "-c", 'sleep 20 && exec 3>"$0"', str(path)])
    try:
        started = time.perf_counter()
        with pytest.raises(ValueError, match="not a regular file") as error:
            skae.load(path)
        assert time.perf_counter() - started < 10
        assert str(path) in str(error.value)
    finally:
        writer.kill()
        writer.wait()


def test_loading_a_folder_is_a_value_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match="not a regular file"):
        skae.load(tmp_path)


def neighbor_file(tmp_path, **params):
    """A 120-row fit with the neighbour objective, saved; returns (model, path)."""
    X = np.random.RandomState(0).uniform(size=(120, 6))
    model = AutoencoderTransformer(
        hidden_layer_sizes=(8,),
        n_components=2,
        max_epochs=2,
        device="cpu",
        random_state=0,
        neighbor_weight=1.0,
        **params,
    ).fit(X)
    path = tmp_path / "map.skae"
    model.save(path)
    assert model.embedding_.shape == (120, 2)
    return model, path


def embedding_rows(rows):
    def change(tensors):
        tensors["fitted.embedding"] = torch.zeros((rows, 2), dtype=torch.float32)

    return change


@pytest.mark.parametrize(
    "change, message",
    [
        (edit("params.hidden_layer_sizes", {"__tuple__": [16]}), "params.hidden_layer_sizes"),
        (edit("params.n_components", 3), "params.n_components"),
        (edit("params.activation", "tanh"), "params.activation"),
        (edit("params.output_activation", "sigmoid"), "params.output_activation"),
        (edit("feature_names_in", ["a", "b", "c", "d", "e", "a"]), "feature_names_in.*'a'"),
    ],
    ids=["hidden_layer_sizes", "n_components", "activation", "output_activation", "names"],
)
def test_a_description_that_contradicts_itself_is_refused(tmp_path, change, message):
    _, path = fitted_file(tmp_path, output_activation="linear")
    rewrite(path, change_metadata=edited_document(change))

    with pytest.raises(ValueError, match=message):
        skae.load(path)


@pytest.mark.parametrize("rows", [0, 5, 15, 100_000])
def test_a_map_of_more_rows_than_were_seen_or_too_few_is_refused(tmp_path, rows):
    _, path = neighbor_file(tmp_path)
    rewrite(path, change_tensors=embedding_rows(rows))

    with pytest.raises(ValueError, match=f"embedding has {rows} rows"):
        skae.load(path)


def test_a_map_without_the_neighbour_term_is_refused(tmp_path):
    _, path = fitted_file(tmp_path, n_components=2)
    rewrite(path, change_tensors=embedding_rows(40))
    with pytest.raises(ValueError, match="embedding.*no neighbour term"):
        skae.load(path)

    _, path = neighbor_file(tmp_path)
    rewrite(path, change_metadata=edited_document(edit("objective.neighbors", 0.0)))
    with pytest.raises(ValueError, match="embedding.*no neighbour term"):
        skae.load(path)


def test_a_map_of_the_last_partial_fit_call_loads(tmp_path):
    model, path = neighbor_file(tmp_path, n_neighbors=5)
    model.partial_fit(np.random.RandomState(1).uniform(size=(30, 6)))
    model.save(path)

    loaded = skae.load(path)

    assert loaded.n_samples_seen_ == 150 and loaded.embedding_.shape == (30, 2)
    assert_array_equal(loaded.embedding_, model.embedding_)


def test_a_pickled_estimator_keeps_parameters_set_after_its_fit(tmp_path, small_X):
    # A fitted estimator whose shaping parameters were changed (to be fitted
    # again) is a state a pickle or a deep copy must carry as it is.
    import copy

    model = AutoencoderTransformer(
        hidden_layer_sizes=(8,), max_epochs=1, device="cpu", random_state=0
    ).fit(small_X)
    model.set_params(hidden_layer_sizes=(4,), loss="bce")

    for copied in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert copied.hidden_layer_sizes == (4,) and copied.loss == "bce"
        assert_array_equal(copied.transform(small_X), model.transform(small_X))


def test_save_refuses_parameters_that_no_longer_describe_the_network(tmp_path, small_X):
    from skae._persistence import save_model

    model = AutoencoderTransformer(
        hidden_layer_sizes=(8,), max_epochs=1, device="cpu", random_state=0
    ).fit(small_X)
    model.set_params(hidden_layer_sizes=(4,))
    path = tmp_path / "model.skae"

    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        save_model(model._saved(), path, plan_for=model._plan_of_own_class)
    assert not path.exists()


def test_an_estimator_changed_after_its_fit_is_not_saved_as_a_file_load_refuses(tmp_path, small_X):
    model = AutoencoderTransformer(
        hidden_layer_sizes=(8,), max_epochs=1, device="cpu", random_state=0
    ).fit(small_X)
    model.set_params(hidden_layer_sizes=(4,))

    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        model.save(tmp_path / "model.skae")


@pytest.mark.parametrize(
    "old, new, message",
    [
        ('"n_samples_seen": 40', '"n_samples_seen": 9223372036854775808', "n_samples_seen"),
        ('"n_iter": 2', '"n_iter": -9223372036854775809', "n_iter"),
        ('"best_loss": ', '"best_loss": 1e400, "x": ', "best_loss"),
        ('"mean": [', '"mean": [NaN, ', "mean\\[0\\]"),
        ('"params": {', '"params": {"x": [1, {"y": Infinity}], ', "params.x\\[1\\].y"),
    ],
)
def test_a_number_out_of_range_is_named_by_its_field(tmp_path, old, new, message):
    with pytest.raises(ValueError, match=message):
        skae.load(file_with_description_edited(tmp_path, old, new))


def test_a_key_that_is_not_utf8_is_a_clear_error(tmp_path):
    model, path = fitted_file(tmp_path)
    with pytest.raises(ValueError, match="key must be encodable as UTF-8"):
        model.save(path, key="\ud800")
    with pytest.raises(ValueError, match="key must be encodable as UTF-8"):
        skae.load(path, key="\ud800")


@pytest.mark.parametrize(
    "data",
    [
        "garbage",
        12,
        np.array(["a", "b"]),
        np.array([1.5, 2.0]),
        np.zeros((2, 2), dtype=np.uint8),
        [300],
    ],
    ids=["str", "int", "str-array", "float-array", "2d", "list"],
)
def test_the_bytes_of_a_pickled_state_must_be_bytes(data):
    from skae._loading import plan_for
    from skae._persistence import read_bytes

    with pytest.raises(ValueError, match="bytes of a skae file"):
        read_bytes(data, plan_for)


def test_a_doctored_pickled_state_is_a_value_error_naming_it(saved):
    estimator, _ = saved
    state = estimator.__getstate__()
    with pytest.raises(ValueError, match="bytes of a skae file"):
        type(estimator).__new__(type(estimator)).__setstate__({**state, "_skae_file": "abc"})
