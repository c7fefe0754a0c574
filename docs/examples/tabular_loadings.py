"""
Which features drive each code: loadings on a table with named columns (wine)
=============================================================================

scikit-learn's wine data (178 wines, 13 chemical measurements) after a
``StandardScaler``, reduced to 2 components by PCA and by an
``AutoencoderTransformer``, each inside a ``Pipeline`` that keeps the column
names (``set_output(transform="pandas")``). ``skae.inspection.code_loadings``
reads the autoencoder step on the scaled table (``pipe[:-1].transform(X)``,
the input that step sees), and ``skae.plotting.plot_loadings`` draws the six
features of largest loading of each component beside PCA's ``components_``.

Run ``python docs/examples/tabular_loadings.py``; the figure goes to
``docs/images/wine_loadings.png``.
"""

import numpy as np
from _shared import SEED, parse_args, save, timed_fit
from sklearn.datasets import load_wine
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderTransformer
from skae.inspection import code_loadings
from skae.plotting import plot_loadings


def top_features(values, names, n=3):
    order = np.argsort(-np.abs(values))[:n]
    return ", ".join(f"{names[j]} {values[j]:+.2f}" for j in order)


def main(argv=None):
    parse_args(__doc__, argv, data_home=False)
    X, y = load_wine(return_X_y=True, as_frame=True)
    pca = make_pipeline(StandardScaler(), PCA(n_components=2)).set_output(transform="pandas")
    ae = make_pipeline(
        StandardScaler(), AutoencoderTransformer(n_components=2, random_state=SEED)
    ).set_output(transform="pandas")
    pca.fit(X)
    timed_fit(ae, X)

    scaled = ae[:-1].transform(X)  # what the autoencoder step sees
    loadings = code_loadings(ae[-1], scaled)
    names = loadings.feature_names
    for k in range(2):
        print(f"component {k}")
        print(f"  PCA components_:      {top_features(pca[-1].components_[k], names)}")
        print(f"  AE decoder loadings:  {top_features(loadings.decoder[k], names)}")
        print(f"  AE encoder |Jacobian|: {top_features(loadings.encoder[k], names)}")

    fig = plot_loadings(
        {
            "PCA": pca[-1].components_,
            "AE decoder": loadings.decoder,
            "AE encoder |J|": loadings.encoder,
        },
        feature_names=names,
        n_top=6,
    )
    save(fig, "wine_loadings.png", "Wine, standardised: the six largest loadings of each code")


if __name__ == "__main__":
    main()
