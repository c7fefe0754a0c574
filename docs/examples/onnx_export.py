"""
Deploy a Pipeline that contains an autoencoder with ONNX
========================================================

Fits ``MinMaxScaler -> AutoencoderTransformer -> LogisticRegression`` on
scikit-learn's digits, converts the whole Pipeline with skl2onnx (``import
skae.onnx`` registers skae's converters), and also the autoencoder's
``inverse_transform`` on its own (the ``inverse`` option). onnxruntime then
computes the probabilities and the reconstructions without Python's torch,
and the script prints the largest difference from scikit-learn's outputs
and the size of each ONNX file.

Needs the ``onnx`` extra (``pip install -e ".[onnx]"`` in a clone of skae).
Run ``python docs/examples/onnx_export.py``.
"""

import warnings

import numpy as np
import onnxruntime
from _shared import SEED, parse_args
from skl2onnx import to_onnx
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

import skae.onnx  # noqa: F401  (registers the converters)
from skae import AutoencoderTransformer


def run(model, X):
    session = onnxruntime.InferenceSession(model.SerializeToString())
    return session.run(None, {session.get_inputs()[0].name: X})


def main(argv=None):
    parse_args(__doc__, argv, data_home=False)
    warnings.simplefilter("ignore", ConvergenceWarning)  # a short epoch budget on purpose
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    pipeline = make_pipeline(
        MinMaxScaler(),
        AutoencoderTransformer(n_components=10, max_epochs=30, random_state=SEED),
        LogisticRegression(max_iter=1000),
    ).fit(X, y)
    onx = to_onnx(pipeline, X[:1], options={LogisticRegression: {"zipmap": False}})
    labels, probabilities = run(onx, X)
    print(f"Pipeline -> ONNX: {len(onx.SerializeToString()) / 1024:.0f} KiB")
    print(f"  labels equal to predict: {np.mean(labels == pipeline.predict(X)):.4f}")
    print(
        "  largest probability difference: "
        f"{np.abs(probabilities - pipeline.predict_proba(X)).max():.2e}"
    )
    autoencoder = pipeline.named_steps["autoencodertransformer"]
    codes = autoencoder.transform(pipeline.named_steps["minmaxscaler"].transform(X))
    decoder = to_onnx(autoencoder, codes[:1], options={id(autoencoder): {"inverse": True}})
    (reconstructions,) = run(decoder, codes)
    print(f"inverse_transform -> ONNX: {len(decoder.SerializeToString()) / 1024:.0f} KiB")
    print(
        "  largest reconstruction difference: "
        f"{np.abs(reconstructions - autoencoder.inverse_transform(codes)).max():.2e}"
    )


if __name__ == "__main__":
    main()
