"""
What drives each code: PCA's eigen-digits beside an autoencoder's loadings on MNIST
===================================================================================

Fits PCA and an ``AutoencoderTransformer`` with 10 components on a subset of
MNIST images (scikit-learn's 8x8 digits when MNIST is not found), then reads
the autoencoder the way PCA users read ``components_``, with
``skae.inspection``:

- ``code_loadings(ae, X).decoder``: how one unit along each code axis moves
  the reconstruction, averaged over the images (signed, as ``components_``);
- ``code_loadings(ae, X).encoder_per_std``: how strongly each code responds
  to a typical change of each pixel (the mean absolute encoder Jacobian
  times the pixel's standard deviation; the Jacobian alone is largest at
  border pixels that almost never change);
- ``code_attributions``: for one held-out image, how much each pixel
  contributes to each code value (integrated gradients from the mean image).

Prints what the loadings cost next to one ``transform`` of the same rows,
and saves two figures: the four readings side by side, and a traversal
(``skae.plotting.plot_code_traversal``): the decoded images along each code
axis from the 5th to the 95th percentile of the codes, the others at their
median.

Run ``python docs/examples/mnist_loadings.py [--data-home DIR]`` (MNIST as
described in ``_shared.py``, else digits); the figures go to ``docs/images/mnist_loadings.png``
and ``docs/images/mnist_traversal.png``.
"""

import time

from _shared import SEED, mnist_or_digits, save, timed_fit
from sklearn.decomposition import PCA

from skae import AutoencoderTransformer
from skae.inspection import code_attributions, code_loadings
from skae.plotting import plot_code_traversal, plot_loadings

N_TRAIN = 4000
N_INSPECTED = 2000
MAX_EPOCHS = 20
K = 10


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def main(argv=None):
    details = f"k={K}; {MAX_EPOCHS} epochs; loadings over up to {N_INSPECTED} training images"
    X_train, X_test, image_shape = mnist_or_digits(__doc__, argv, N_TRAIN, details)
    pca = PCA(n_components=K, random_state=SEED).fit(X_train)
    ae = AutoencoderTransformer(n_components=K, max_epochs=MAX_EPOCHS, random_state=SEED)
    timed_fit(ae, X_train)

    rows = X_train[:N_INSPECTED]
    _, transform_seconds = timed(ae.transform, rows)
    loadings, loadings_seconds = timed(code_loadings, ae, rows)
    attributions = code_attributions(ae, X_test[:1])
    print(
        f"code_loadings of {len(rows)} images: {loadings_seconds:.2f} s "
        f"(one transform of them: {transform_seconds:.3f} s)"
    )
    gap = ae.transform(X_test[:1]) - ae.transform(ae.mean_[None])
    print(
        "Integrated gradients of one test image add up to its code's distance from the "
        f"mean image's code to within {abs(attributions[0].sum(axis=1) - gap[0]).max():.1e}"
    )

    fig = plot_loadings(
        {
            "PCA components_": pca.components_,
            "AE decoder\nloadings": loadings.decoder,
            "AE encoder\n|Jacobian| x std": loadings.encoder_per_std,
            "AE attributions\nof one image": attributions[0],
        },
        image_shape=image_shape,
    )
    save(fig, "mnist_loadings.png", "What drives each of 10 codes (red +, blue -)")
    fig = plot_code_traversal(ae, rows, image_shape, n_steps=9, vmin=0, vmax=1)
    save(fig, "mnist_traversal.png", "Decoded images along each code axis (5th to 95th pct.)")


if __name__ == "__main__":
    main()
