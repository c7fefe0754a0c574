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
    _, path = fitted_file(tmp_path)

    def replace(metadata):
        assert old in metadata["estimator"]
        metadata["estimator"] = metadata["estimator"].replace(old, new, 1)

    rewrite(path, change_metadata=replace)
    with pytest.raises(ValueError, match=message):
        skae.load(path)


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
