"""
Concatenating autoencoder codes with selected features (FeatureUnion)
=====================================================================

scikit-learn's ``plot_feature_union`` example joins the features that PCA
finds with the single best original feature (``SelectKBest``) in a
``FeatureUnion`` and grid-searches the number of components, the number of
selected features and the SVM's ``C`` together, on iris. Swapping
``PCA(n_components=2)`` for ``AutoencoderTransformer(n_components=2)``
changes nothing else: the search reaches into the autoencoder through the
same ``features__pca__n_components`` name.

The union is not needed on iris; the example shows the mechanics, and the
two searches' best cross-validated accuracies side by side.
"""

import warnings

from sklearn.datasets import load_iris
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectKBest
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import SVC

from skae import AutoencoderTransformer

warnings.simplefilter("ignore", ConvergenceWarning)

X, y = load_iris(return_X_y=True)

reducers = {
    "PCA": PCA(n_components=2),
    "AutoencoderTransformer": AutoencoderTransformer(n_components=2, random_state=0),
}
for name, pca in reducers.items():
    selection = SelectKBest(k=1)
    combined_features = FeatureUnion([("pca", pca), ("univ_select", selection)])
    X_features = combined_features.fit(X, y).transform(X)

    svm = SVC(kernel="linear")
    pipeline = Pipeline([("features", combined_features), ("svm", svm)])
    param_grid = dict(
        features__pca__n_components=[1, 2, 3],
        features__univ_select__k=[1, 2],
        svm__C=[0.1, 1, 10],
    )
    grid_search = GridSearchCV(pipeline, param_grid=param_grid)
    grid_search.fit(X, y)

    print(f"{name}: the combined space has {X_features.shape[1]} features")
    print(f"  best CV accuracy {grid_search.best_score_:.3f} with {grid_search.best_params_}")
