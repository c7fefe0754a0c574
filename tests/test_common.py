"""scikit-learn's own estimator checks, run over every skae estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skae import AutoencoderTransformer

# Small networks and few epochs: the checks test the contract, not the quality.
ESTIMATORS = [
    AutoencoderTransformer(hidden_layer_sizes=(8,), max_epochs=3, random_state=0),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
