"""``NeuralNetClassifier`` against scikit-learn: the estimator checks, clone, Pipeline, search.

scikit-learn is an optional extra; without it this module skips and says how to install it.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip(
    "sklearn",
    minversion="1.6",
    reason="scikit-learn >= 1.6 not installed: pip install scikit-learn for the estimator checks",
)

from sklearn.base import clone, is_classifier  # noqa: E402
from sklearn.datasets import make_blobs  # noqa: E402
from sklearn.exceptions import NotFittedError as SklearnNotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402
from sklearn.utils.validation import check_is_fitted  # noqa: E402

from nnscratch import NeuralNetClassifier  # noqa: E402
from nnscratch._validation import NotFittedError  # noqa: E402

# scikit-learn warns, once at collection, that the class does not inherit from BaseEstimator.
# That is deliberate: scikit-learn is optional, so the class implements the protocol itself,
# and these checks are what proves it. No check is expected to fail.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*does not inherit from `sklearn.base")
    _ESTIMATOR_CHECKS = parametrize_with_checks(
        [
            # The classifier exactly as a user gets it.
            NeuralNetClassifier(),
            # Mini-batches smaller than the checks' data sets, so that shuffling runs too.
            NeuralNetClassifier(hidden_layers=(32,), epochs=50, batch_size=32),
        ],
    )


@_ESTIMATOR_CHECKS
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """Three well-separated blobs in 4-D, scaled far from unit variance."""
    X, y = make_blobs(n_samples=150, centers=3, n_features=4, random_state=0)
    return X * 50.0 + 100.0, y


def _small(**params) -> NeuralNetClassifier:
    return NeuralNetClassifier(hidden_layers=(16,), epochs=30, batch_size=32, **params)


def test_is_a_classifier_for_sklearn():
    assert is_classifier(NeuralNetClassifier())


def test_clone_copies_params_not_fitted_state(blobs):
    X, y = blobs
    original = _small(learning_rate=0.01, random_state=3).fit(X, y)
    copy = clone(original)
    assert copy is not original
    assert copy.get_params() == original.get_params()
    assert not hasattr(copy, "model_")
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(copy)
    check_is_fitted(original)


def test_not_fitted_error_is_both_nnscratch_and_sklearn():
    X = np.zeros((2, 3))
    with pytest.raises(SklearnNotFittedError, match="not fitted yet") as caught:
        NeuralNetClassifier().predict(X)
    assert isinstance(caught.value, NotFittedError)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, AttributeError)
    restored = pickle.loads(pickle.dumps(caught.value))  # as from a joblib worker
    assert isinstance(restored, SklearnNotFittedError)
    assert str(restored) == str(caught.value)


def test_pipeline_with_standard_scaler(blobs):
    X, y = blobs
    pipeline = Pipeline([("scale", StandardScaler()), ("net", _small(learning_rate=0.01))])
    pipeline.fit(X, y)
    assert pipeline.score(X, y) > 0.95
    assert pipeline.predict_proba(X).shape == (X.shape[0], 3)
    np.testing.assert_array_equal(pipeline.classes_, [0, 1, 2])
    pipeline.set_params(net__hidden_layers=(8,))
    assert pipeline.fit(X, y).named_steps["net"].model_.layers[0].out_features == 8


def test_grid_search_over_learning_rate_and_hidden_layers(blobs):
    X, y = blobs
    X = StandardScaler().fit_transform(X)
    search = GridSearchCV(
        _small(),
        {"learning_rate": [1e-4, 1e-2], "hidden_layers": [(4,), (16,)]},
        cv=3,
    )
    search.fit(X, y)
    assert search.cv_results_["mean_test_score"].shape == (4,)
    # 30 epochs at 1e-4 barely move the weights; 1e-2 separates the blobs.
    assert search.best_params_["learning_rate"] == 1e-2
    assert search.best_score_ > 0.95
    assert isinstance(search.best_estimator_, NeuralNetClassifier)
    np.testing.assert_array_equal(search.predict(X), search.best_estimator_.predict(X))


def test_cross_val_score_with_string_labels(blobs):
    X, y = blobs
    labels = np.array(["cat", "dog", "eel"])[y]
    scores = cross_val_score(_small(learning_rate=0.01), StandardScaler().fit_transform(X),
                             labels, cv=3)
    assert scores.min() > 0.9
