"""
New MNIST digits from a Bernoulli VAETransformer, and a map of its 2-D latent space
===================================================================================

Fits ``VAETransformer(likelihood="bernoulli")`` (pixel intensities in [0, 1];
its decoder always ends in a sigmoid, so ``output_activation`` needs no
setting) at 10 and at 2 components on a subset of MNIST images. Prints each
model's test ELBO and IWAE negative log-likelihood in nats per image, then
saves two figures: digits drawn from the 10-component model's prior
(``skae.plotting.plot_samples``), and the 2-component model's decoder
evaluated on a grid of latent points (``inverse_transform``), spaced by the
prior's quantiles.

Run ``python docs/examples/vae_samples.py [--data-home DIR]`` (MNIST as
described in ``_shared.py``); the figures go to ``docs/images/mnist_vae_samples.png``
and ``docs/images/mnist_vae_latent_grid.png``.
"""

import matplotlib.pyplot as plt
import numpy as np
from _shared import SEED, mnist_example, save, timed_fit
from scipy.stats import norm

from skae import VAETransformer
from skae.plotting import plot_samples

N_TRAIN = 5000
MAX_EPOCHS = 25
GRID = 12


def latent_grid(vae):
    """Decode a GRID x GRID lattice of codes at the prior's quantiles 5%..95%, tiled."""
    values = norm.ppf(np.linspace(0.05, 0.95, GRID))
    z1, z2 = np.meshgrid(values, values[::-1])
    codes = np.column_stack([z1.ravel(), z2.ravel()])
    images = vae.inverse_transform(codes).reshape(GRID, GRID, 28, 28)
    return images.transpose(0, 2, 1, 3).reshape(GRID * 28, GRID * 28), values


def latent_grid_figure(vae):
    tiled, values = latent_grid(vae)
    lo, hi = values[0], values[-1]
    half = (hi - lo) / (GRID - 1) / 2
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(
        tiled, cmap="gray_r", vmin=0, vmax=1, extent=(lo - half, hi + half, lo - half, hi + half)
    )
    ax.set_xlabel("code component 1")
    ax.set_ylabel("code component 2")
    ax.set_title("2-D Bernoulli VAE: decoded grid of codes\n(prior quantiles 5% to 95%)")
    return fig


def main(argv=None):
    details = f"grey levels in [0, 1]; {MAX_EPOCHS} epochs per VAE"
    X_train, X_test, _, _ = mnist_example(__doc__, argv, N_TRAIN, details)
    print(f"{'k':>3} {'test ELBO':>10} {'test NLL (IWAE, 100 draws)':>27} {'fit s':>6}")
    vaes = {}
    for k in (10, 2):
        vaes[k] = VAETransformer(
            n_components=k, likelihood="bernoulli", max_epochs=MAX_EPOCHS, random_state=SEED
        )
        seconds = timed_fit(vaes[k], X_train)
        elbo = vaes[k].score(X_test)
        nll = -vaes[k].iwae_log_likelihood(X_test, n_draws=100, random_state=SEED).mean()
        print(f"{k:>3} {elbo:>10.1f} {nll:>27.1f} {seconds:>6.1f}")
    print()

    samples = plot_samples(vaes[10], (28, 28), n=36, random_state=SEED, vmin=0, vmax=1)
    title = f"Digits drawn from the prior of a {vaes[10].n_components}-D Bernoulli VAE"
    save(samples, "mnist_vae_samples.png", title, dpi=75)
    save(latent_grid_figure(vaes[2]), "mnist_vae_latent_grid.png")


if __name__ == "__main__":
    main()
