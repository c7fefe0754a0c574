"""The CUDA path of every kind of fit: each feature once on a GPU.

These run only where CUDA is available (the ``gpu`` marker); each compares
with the same fit on the CPU where the two should agree, and otherwise
checks that the fit ran on the device and produced finite, useful results.
"""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

import skae

pytestmark = pytest.mark.gpu


def _on_cuda(estimator):
    return estimator.device_.type == "cuda" and all(
        p.device.type == "cuda" for p in estimator.encoder_.parameters()
    )


def test_conv_fit_on_cuda(make_autoencoder, digits_X):
    ae = make_autoencoder(
        device="cuda", architecture="conv", input_shape=(1, 8, 8), conv_channels=(4, 8)
    ).fit(digits_X)

    assert _on_cuda(ae)
    codes = ae.transform(digits_X)
    assert codes.shape == (len(digits_X), 2) and np.all(np.isfinite(codes))
    assert ae.inverse_transform(codes).shape == digits_X.shape


def test_neighbor_objective_on_cuda(make_autoencoder, digits_X):
    ae = make_autoencoder(device="cuda", neighbor_weight=1.0, n_neighbors=5).fit(digits_X)

    assert _on_cuda(ae)
    assert np.all(np.isfinite(ae.transform(digits_X)))


def test_layerwise_pretraining_on_cuda(make_autoencoder, digits_X):
    ae = make_autoencoder(
        device="cuda", hidden_layer_sizes=(16, 8), pretrain="layerwise", pretrain_epochs=2
    ).fit(digits_X)

    assert _on_cuda(ae)
    assert len(ae.pretrain_loss_curves_) == 3  # two hidden layers and the code


def test_streamed_memmap_fit_on_cuda(make_autoencoder, digits_X, tmp_path):
    path = tmp_path / "rows.npy"
    np.save(path, digits_X.astype(np.float32))
    rows = np.load(path, mmap_mode="r")

    with skae.config_context(memory_budget=1, stream_block_rows=20):
        streamed = make_autoencoder(device="cuda", early_stopping=True).fit(rows)

    assert _on_cuda(streamed)
    assert np.all(np.isfinite(streamed.transform(rows)))


def test_partial_fit_and_warm_start_on_cuda(make_estimator, digits_X):
    model = make_estimator(device="cuda")
    for _ in range(3):
        model.partial_fit(digits_X)
    model.set_params(warm_start=True).fit(digits_X)

    assert model.device_.type == "cuda"
    assert model.n_iter_ == 6
    assert np.all(np.isfinite(model.transform(digits_X)))


def test_save_on_cuda_loads_on_cpu_identically(make_estimator, digits_X, tmp_path):
    model = make_estimator(device="cuda").fit(digits_X)
    model.save(tmp_path / "model.skae")

    on_cpu = skae.load(tmp_path / "model.skae", device="cpu")
    on_cuda = skae.load(tmp_path / "model.skae", device="cuda")

    assert_array_equal(on_cuda.transform(digits_X), model.transform(digits_X))
    assert_allclose(on_cpu.transform(digits_X), model.transform(digits_X), rtol=1e-4, atol=1e-5)
    on_cuda.partial_fit(digits_X)  # the optimiser's state lands on the device too
    assert on_cuda.device_.type == "cuda"


def test_cuda_fit_is_reproducible(make_autoencoder, digits_X):
    first = make_autoencoder(device="cuda").fit(digits_X).transform(digits_X)
    second = make_autoencoder(device="cuda").fit(digits_X).transform(digits_X)
    assert_allclose(first, second, rtol=1e-5, atol=1e-6)


def test_onnx_export_of_a_cuda_model(make_autoencoder, digits_X):
    pytest.importorskip("skl2onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    from skl2onnx import to_onnx

    import skae.onnx  # noqa: F401  (registers the converters)

    ae = make_autoencoder(device="cuda").fit(digits_X)
    X32 = digits_X.astype(np.float32)
    onx = to_onnx(ae, X32[:1])
    session = onnxruntime.InferenceSession(onx.SerializeToString())
    (codes,) = session.run(None, {session.get_inputs()[0].name: X32})
    assert_allclose(codes, ae.transform(X32), rtol=1e-4, atol=1e-5)
    assert ae.device_.type == "cuda"


def test_fit_leaves_cuda_global_state_alone(make_autoencoder, digits_X):
    flags = (
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        torch.backends.cuda.matmul.allow_tf32,
        torch.get_default_dtype(),
    )
    rng_state = torch.cuda.get_rng_state()
    make_autoencoder(device="cuda", precision="bf16", noise="gaussian").fit(digits_X)
    assert flags == (
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        torch.backends.cuda.matmul.allow_tf32,
        torch.get_default_dtype(),
    )
    assert torch.equal(rng_state, torch.cuda.get_rng_state())


def test_inspection_runs_on_the_device(make_autoencoder, digits_X):
    from skae.inspection import code_attributions, code_loadings, encoder_jacobian

    ae = make_autoencoder(device="cuda").fit(digits_X)
    on_cpu = skae.load(_saved(ae, digits_X), device="cpu")

    assert_allclose(
        encoder_jacobian(ae, digits_X[:20]),
        encoder_jacobian(on_cpu, digits_X[:20]),
        rtol=1e-5,
        atol=1e-8,
    )
    assert code_loadings(ae, digits_X).decoder.shape == (2, 64)
    assert np.isfinite(code_attributions(ae, digits_X[:5])).all()


def _saved(model, X):
    import tempfile

    directory = tempfile.mkdtemp()
    path = f"{directory}/model.skae"
    model.save(path)
    return path
