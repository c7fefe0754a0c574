"""ONNX export through skl2onnx, checked against skae with onnxruntime."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

pytest.importorskip("onnxscript")
onnxruntime = pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")

import skae.onnx  # noqa: E402, F401  (registers the converters)
from skae import AutoencoderTransformer, VAETransformer  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
TOLERANCE = 1e-5


def run(model, X):
    session = onnxruntime.InferenceSession(model.SerializeToString())
    return session.run(None, {session.get_inputs()[0].name: X})


def small(cls, **params):
    params = {"n_components": 3, "hidden_layer_sizes": (16,), "max_epochs": 3, **params}
    return cls(random_state=0, **params)


@pytest.fixture
def X(digits_X):
    return digits_X.astype(np.float32)


@pytest.mark.parametrize(
    "estimator",
    [
        small(AutoencoderTransformer),
        small(AutoencoderTransformer, output_activation="sigmoid", batch_norm=True, dropout=0.1),
        small(AutoencoderTransformer, hidden_layer_sizes=(), linear_shortcut=False),
        small(VAETransformer),
        small(VAETransformer, likelihood="bernoulli"),
        small(
            AutoencoderTransformer, architecture="conv", input_shape=(1, 8, 8), conv_channels=(4,)
        ),
        small(AutoencoderTransformer, n_components=2, neighbor_weight=1.0),
    ],
    ids=["ae", "ae-sigmoid-bn-dropout", "linear", "vae", "vae-bernoulli", "conv", "map"],
)
def test_transform_and_inverse_transform_match_skae(estimator, X):
    estimator.fit(X)
    (codes,) = run(skl2onnx.to_onnx(estimator, X[:1]), X)
    assert codes.shape == (len(X), estimator.n_components)
    assert_allclose(codes, estimator.transform(X), atol=TOLERANCE)
    inverse = skl2onnx.to_onnx(estimator, codes[:1], options={id(estimator): {"inverse": True}})
    (reconstruction,) = run(inverse, codes)
    assert_allclose(reconstruction, estimator.inverse_transform(codes), atol=TOLERANCE)


def test_a_pipeline_with_an_autoencoder_and_a_classifier_converts(digits):
    X, y = digits[0].astype(np.float32), digits[1]
    pipe = make_pipeline(StandardScaler(), small(AutoencoderTransformer), LogisticRegression())
    pipe.fit(X, y)
    model = skl2onnx.to_onnx(pipe, X[:1], options={LogisticRegression: {"zipmap": False}})
    labels, probabilities = run(model, X)
    assert_allclose(probabilities, pipe.predict_proba(X), atol=TOLERANCE)
    np.testing.assert_array_equal(labels, pipe.predict(X))


def test_double_input_is_computed_in_float32(X):
    estimator = small(AutoencoderTransformer).fit(X)
    X64 = X.astype(np.float64)
    (codes,) = run(skl2onnx.to_onnx(estimator, X64[:1]), X64)
    assert codes.dtype == np.float32
    assert_allclose(codes, estimator.transform(X), atol=TOLERANCE)


def test_unfitted_estimator_and_old_opsets_are_refused(X):
    with pytest.raises(NotFittedError):
        skl2onnx.to_onnx(small(AutoencoderTransformer), X[:1])
    estimator = small(AutoencoderTransformer).fit(X)
    with pytest.raises(ValueError, match="target_opset >= 18"):
        skl2onnx.to_onnx(estimator, X[:1], target_opset=15)


def test_an_example_of_the_wrong_width_is_refused(X):
    estimator = small(AutoencoderTransformer).fit(X)
    with pytest.raises(ValueError, match="fitted on 64 features; .* has 10 columns"):
        skl2onnx.to_onnx(estimator, X[:1, :10])
    with pytest.raises(ValueError, match="rows of 64 features; .* shape \\[None\\], not 2-D"):
        skl2onnx.to_onnx(estimator, X[0])
    inverse = {id(estimator): {"inverse": True}}
    with pytest.raises(ValueError, match="inverse_transform takes 3 code values; .* 64 columns"):
        skl2onnx.to_onnx(estimator, X[:1], options=inverse)


def test_in_a_pipeline_the_width_is_the_previous_steps_output(digits):
    # PCA hands the autoencoder 10 columns of the 64 the pipeline takes.
    X, y = digits[0].astype(np.float32), digits[1]
    pipe = make_pipeline(PCA(n_components=10), small(VAETransformer), LogisticRegression())
    pipe.fit(X, y)
    assert pipe[1].n_features_in_ == 10
    model = skl2onnx.to_onnx(pipe, X[:1], options={LogisticRegression: {"zipmap": False}})
    labels, probabilities = run(model, X)
    assert_allclose(probabilities, pipe.predict_proba(X), atol=TOLERANCE)
    np.testing.assert_array_equal(labels, pipe.predict(X))
