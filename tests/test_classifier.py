"""Tests for nnscratch.classifier.NeuralNetClassifier (no scikit-learn needed).

The scikit-learn estimator checks, Pipeline and GridSearchCV live in
``tests/reference/test_sklearn_compat.py``.
"""

from __future__ import annotations

import doctest
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from _concurrency import call_concurrently
from _numerics import assert_close
from nnscratch import NeuralNetClassifier, classifier
from nnscratch._validation import NotFittedError
from nnscratch.classifier import DataConversionWarning
from nnscratch.nn.losses import BinaryCrossEntropy, SoftmaxCrossEntropy


def _blobs(
    rng: np.random.Generator, n_classes: int, n_per_class: int = 40, n_features: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs (std 1) whose centres lie 4 apart on a circle: easy to separate."""
    angles = 2 * np.pi * np.arange(n_classes) / n_classes
    centres = np.zeros((n_classes, n_features))
    centres[:, 0], centres[:, 1] = 4 * np.cos(angles), 4 * np.sin(angles)
    y = np.repeat(np.arange(n_classes), n_per_class)
    X = centres[y] + rng.standard_normal((y.shape[0], n_features))
    order = rng.permutation(y.shape[0])
    return X[order], y[order]


def _small(**params) -> NeuralNetClassifier:
    """A network small enough for unit tests, fast to train on the blobs."""
    settings = {"hidden_layers": (16,), "epochs": 30, "batch_size": 32, "learning_rate": 0.01}
    return NeuralNetClassifier(**{**settings, **params})


def _cross_entropy(clf: NeuralNetClassifier, X: np.ndarray, y: np.ndarray) -> float:
    index = np.searchsorted(clf.classes_, y)
    probabilities = clf.predict_proba(X).astype(np.float64)
    return float(-np.mean(np.log(probabilities[np.arange(len(y)), index])))


def test_docstring_examples_run():
    result = doctest.testmod(classifier, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


# ---------------------------------------------------------------------------
# Learning and labels
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_learns_blobs(rng, n_classes):
    X, y = _blobs(rng, n_classes)
    clf = _small().fit(X, y)
    assert clf.score(X, y) > 0.95
    expected_loss = BinaryCrossEntropy if n_classes == 2 else SoftmaxCrossEntropy
    assert isinstance(clf.loss_, expected_loss)
    assert clf.model_.out_features == (1 if n_classes == 2 else n_classes)
    assert clf.n_features_in_ == X.shape[1]
    assert clf.history_.epochs == 30


def test_no_hidden_layers_is_a_linear_model(rng):
    X, y = _blobs(rng, 2)
    clf = _small(hidden_layers=()).fit(X, y)
    assert len(clf.model_.layers) == 1
    assert clf.score(X, y) > 0.95


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["setosa", "versicolor", "virginica"]),
        np.array([-7, 3, 42]),
        np.array(["no", "yes"]),
        np.array([10, -10]),
        np.array([False, True]),
    ],
    ids=["strings", "integers", "two-strings", "two-integers", "booleans"],
)
def test_labels_round_trip_through_classes(rng, labels):
    X, index = _blobs(rng, len(labels))
    y = labels[index]
    clf = _small().fit(X, y)
    np.testing.assert_array_equal(clf.classes_, np.sort(labels))
    predicted = clf.predict(X)
    assert predicted.dtype == y.dtype
    assert set(predicted.tolist()) <= set(labels.tolist())
    assert np.mean(predicted == y) > 0.95


@pytest.mark.parametrize("n_classes", [2, 4])
def test_predict_proba_rows_sum_to_one_in_classes_order(rng, n_classes):
    names = np.array(["d", "b", "c", "a"])[:n_classes]  # not in sorted order on purpose
    X, index = _blobs(rng, n_classes)
    y = names[index]
    clf = _small().fit(X, y)
    probabilities = clf.predict_proba(X)
    assert probabilities.shape == (X.shape[0], n_classes)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    np.testing.assert_array_equal(clf.classes_[probabilities.argmax(axis=1)], clf.predict(X))
    # Column j is the probability of classes_[j]: it is largest on the samples of that class.
    for j, label in enumerate(clf.classes_):
        assert probabilities[y == label, j].mean() > 0.8
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(probabilities))


def test_binary_decision_function_is_the_logit_of_the_second_class(rng):
    X, y = _blobs(rng, 2)
    clf = _small().fit(X, y)
    logits = clf.decision_function(X)
    assert logits.shape == (X.shape[0],)
    np.testing.assert_allclose(clf.predict_proba(X)[:, 1], 1 / (1 + np.exp(-logits)), rtol=1e-5)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[(logits > 0).astype(int)])


def test_multiclass_decision_function_has_one_column_per_class(rng):
    X, y = _blobs(rng, 3)
    clf = _small().fit(X, y)
    logits = clf.decision_function(X)
    assert logits.shape == (X.shape[0], 3)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[logits.argmax(axis=1)])


def test_score_is_weighted_accuracy(rng):
    X, y = _blobs(rng, 2)
    clf = _small().fit(X, y)
    correct = clf.predict(X) == y
    weights = rng.random(len(y))
    assert clf.score(X, y) == pytest.approx(np.mean(correct))
    assert clf.score(X, y, sample_weight=weights) == pytest.approx(
        np.sum(weights * correct) / np.sum(weights))


# ---------------------------------------------------------------------------
# partial_fit
# ---------------------------------------------------------------------------


def test_partial_fit_continues_training(rng):
    X, y = _blobs(rng, 3)
    # Full-batch gradient descent with a small step: the loss must fall at every call, which
    # it could not if a call started again from fresh weights.
    clf = NeuralNetClassifier(hidden_layers=(8,), optimizer="sgd", momentum=0.0,
                              learning_rate=0.1, batch_size=None, dtype="float64")
    losses = []
    for _ in range(6):
        clf.partial_fit(X, y, classes=[0, 1, 2])
        losses.append(_cross_entropy(clf, X, y))
    assert np.all(np.diff(losses) < 0)
    assert clf.history_.epochs == 1


def test_partial_fit_needs_classes_only_on_the_first_call(rng):
    X, y = _blobs(rng, 3)
    clf = _small()
    with pytest.raises(ValueError, match="classes must be given on the first call"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:30], y[:30], classes=np.array([2, 0, 1]))
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    clf.partial_fit(X[30:], y[30:])  # later calls may omit classes
    clf.partial_fit(X[30:], y[30:], classes=[0, 1, 2])  # or repeat them


def test_partial_fit_after_fit_starts_from_the_fitted_weights(rng):
    X, y = _blobs(rng, 2)
    clf = _small().fit(X, y)
    fitted = [p.value.copy() for p in clf.model_.parameters()]
    model = clf.model_
    clf.partial_fit(X, y)
    assert clf.model_ is model
    changes = [np.abs(p.value - w).max() for p, w in zip(model.parameters(), fitted, strict=True)]
    assert 0 < max(changes) < 0.5


def test_partial_fit_learns_from_a_stream(rng):
    X, y = _blobs(rng, 3, n_per_class=60)
    clf = _small()
    for chunk in np.array_split(np.arange(len(y)), 6):
        clf.partial_fit(X[chunk], y[chunk], classes=[0, 1, 2])
    for _ in range(5):
        clf.partial_fit(X, y)
    assert clf.score(X, y) > 0.95


@pytest.mark.parametrize(
    ("classes", "y_labels", "match"),
    [
        ([0], [0, 0], "classes has only one class"),
        ([0, 1], [0, 2], r"y contains labels that are not in classes_: \[2\]"),
        ([0, 1], ["a", "b"], "y contains labels that are not in classes_"),
        (np.array([0, "a"], dtype=object), [0, 0], "Unknown label type: classes mixes labels"),
    ],
)
def test_partial_fit_rejects_bad_classes(classes, y_labels, match):
    with pytest.raises(ValueError, match=match):
        _small().partial_fit(np.zeros((2, 3)), y_labels, classes=classes)


def test_partial_fit_rejects_other_classes_or_features_later(rng):
    X, y = _blobs(rng, 2)
    clf = _small().partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match=r"classes=\[0, 1, 2\] is not the same as classes_"):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="X has 2 features, but NeuralNetClassifier is "
                                         "expecting 3 features as input"):
        clf.partial_fit(X[:, :2], y)


# ---------------------------------------------------------------------------
# Reproducibility, dtypes, early stopping, sample weights
# ---------------------------------------------------------------------------


def test_same_random_state_gives_identical_predictions(rng):
    X, y = _blobs(rng, 3)
    X_new = rng.standard_normal((20, 3)) * 3
    first = _small(random_state=7, dropout=0.2).fit(X, y)
    second = _small(random_state=7, dropout=0.2).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X_new), second.predict_proba(X_new))
    np.testing.assert_array_equal(first.predict(X_new), second.predict(X_new))
    third = _small(random_state=8, dropout=0.2).fit(X, y)
    assert not np.array_equal(first.predict_proba(X_new), third.predict_proba(X_new))


def test_refit_is_idempotent(rng):
    X, y = _blobs(rng, 2)
    clf = _small(random_state=1)
    once = clf.fit(X, y).predict_proba(X)
    twice = clf.fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(once, twice)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("input_dtype", [np.float32, np.float64, np.int64])
def test_model_dtype_is_kept(rng, dtype, input_dtype):
    X, y = _blobs(rng, 3)
    X = (X * 10).astype(input_dtype)
    clf = _small(dtype=dtype, epochs=2).fit(X, y)
    expected = np.dtype(dtype)
    assert all(p.value.dtype == expected for p in clf.model_.parameters())
    assert clf.decision_function(X).dtype == expected
    assert clf.predict_proba(X).dtype == expected
    assert clf.predict_log_proba(X).dtype == expected
    clf.partial_fit(X.astype(np.float64), y)
    assert all(p.value.dtype == expected for p in clf.model_.parameters())


@pytest.mark.parametrize(
    ("input_dtype", "expected"),
    [(np.float32, np.float32), (np.float64, np.float64), (np.int64, np.float64),
     (np.float16, np.float64), (None, np.float64)],
)
def test_default_dtype_follows_the_input_as_scikit_learn_does(rng, input_dtype, expected):
    X, y = _blobs(rng, 2)
    X = X.tolist() if input_dtype is None else X.astype(input_dtype)  # None: a plain list
    clf = _small(epochs=1).fit(X, y)
    assert clf.dtype is None  # the parameter stays as given
    assert clf.model_.dtype == expected
    assert clf.predict_proba(X).dtype == expected
    # A refit on other input follows the new input.
    other = np.float64 if expected == np.float32 else np.float32
    assert clf.fit(np.asarray(X, dtype=other), y).model_.dtype == other


def test_predictions_are_the_same_from_many_threads_at_once(rng):
    # A web server predicts from several threads with one model: inference writes nothing.
    X, y = _blobs(rng, 3, n_per_class=50)
    clf = _small(dropout=0.2, epochs=3).fit(X, y)
    batches = [X[start:start + 7] for start in range(0, 60, 6)]
    expected = [clf.predict_proba(batch) for batch in batches]
    for thread in call_concurrently(clf.predict_proba, batches):
        for index, probabilities in thread:
            assert_close(probabilities, expected[index])


def test_early_stopping_restores_the_best_weights(rng):
    # Random labels: a wide network memorises the training part and the validation loss rises.
    X = rng.standard_normal((120, 5))
    y = rng.integers(0, 2, 120)
    settings = {"hidden_layers": (64,), "learning_rate": 0.05, "batch_size": 16,
                "early_stopping": True, "validation_fraction": 0.25, "patience": 4,
                "random_state": 3}
    stopped = NeuralNetClassifier(epochs=60, **settings).fit(X, y)
    history = stopped.history_
    best = history.best_epoch
    assert history.stopped_early
    assert best == int(np.argmin(history.val_loss))
    assert best < history.epochs - 1
    # Training that ends at the best epoch sees the same split, shuffles and steps up to it,
    # so its final weights are the ones early stopping must have restored.
    short = NeuralNetClassifier(epochs=best + 1, **settings).fit(X, y)
    for restored, reference in zip(stopped.model_.parameters(), short.model_.parameters(),
                                   strict=True):
        np.testing.assert_array_equal(restored.value, reference.value)


def test_zero_sample_weight_equals_removing_the_samples(rng):
    X, y = _blobs(rng, 3)
    weights = rng.integers(0, 2, len(y)).astype(np.float64)
    weights_before = weights.copy()
    settings = {"batch_size": None, "dtype": "float64", "epochs": 20}
    weighted = _small(**settings).fit(X, y, sample_weight=weights)
    kept = weights > 0
    removed = _small(**settings).fit(X[kept], y[kept])
    np.testing.assert_allclose(weighted.predict_proba(X), removed.predict_proba(X), rtol=1e-9)
    np.testing.assert_array_equal(weights, weights_before)  # the caller's array is untouched


def test_column_vector_y_warns_and_is_raveled(rng):
    X, y = _blobs(rng, 2)
    expected = _small().fit(X, y).predict(X)
    with pytest.warns(DataConversionWarning, match="A column-vector y was passed"):
        clf = _small().fit(X, y[:, None])
    np.testing.assert_array_equal(clf.predict(X), expected)


def test_accepts_lists_and_object_arrays_of_numbers(rng):
    X, y = _blobs(rng, 2)
    from_lists = _small().fit(X.tolist(), y.tolist()).predict_proba(X)
    from_objects = _small().fit(X.astype(object), y).predict_proba(X.astype(object))
    np.testing.assert_array_equal(from_lists, from_objects)


def test_pickle_round_trip_predicts_the_same(rng):
    X, y = _blobs(rng, 3)
    clf = _small().fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))


# ---------------------------------------------------------------------------
# The parameter protocol, and working without scikit-learn
# ---------------------------------------------------------------------------


def test_get_params_and_set_params_round_trip():
    clf = NeuralNetClassifier(hidden_layers=(8, 4), learning_rate=0.05)
    params = clf.get_params()
    assert params["hidden_layers"] == (8, 4)
    assert params["learning_rate"] == 0.05
    assert set(params) == set(NeuralNetClassifier().get_params())
    assert clf.set_params(epochs=3, dropout=0.1) is clf
    assert (clf.epochs, clf.dropout) == (3, 0.1)
    assert type(clf)(**clf.get_params()).get_params() == clf.get_params()
    with pytest.raises(ValueError, match="Invalid parameter 'epoch' for estimator"):
        clf.set_params(epoch=3)


def test_repr_shows_only_changed_params():
    assert repr(NeuralNetClassifier()) == "NeuralNetClassifier()"
    assert repr(NeuralNetClassifier(hidden_layers=(8,), dtype="float64")) == (
        "NeuralNetClassifier(hidden_layers=(8,), dtype='float64')")


def test_constructor_does_not_validate():
    clf = NeuralNetClassifier(learning_rate=-1, activation="nope")
    assert clf.learning_rate == -1  # stored as given; fit raises


def test_works_without_scikit_learn():
    script = textwrap.dedent("""
        import sys
        sys.modules["sklearn"] = None  # any import of scikit-learn now fails
        import numpy as np
        from nnscratch import NeuralNetClassifier
        from nnscratch._validation import NotFittedError
        X = np.random.default_rng(0).normal(size=(40, 2)); y = (X[:, 0] > 0).astype(int)
        try:
            NeuralNetClassifier().predict(X)
        except NotFittedError:
            pass
        clf = NeuralNetClassifier(hidden_layers=(4,), epochs=2).fit(X, y)
        clf.partial_fit(X, y)
        assert clf.predict(X).shape == (40,)
        assert "sklearn.base" not in sys.modules
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


# ---------------------------------------------------------------------------
# Errors: before fit, hyper-parameters, X, y, sample_weight
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["predict", "predict_proba", "predict_log_proba",
                                    "decision_function"])
def test_not_fitted_error_before_fit(method):
    with pytest.raises(NotFittedError, match="This NeuralNetClassifier instance is not fitted"):
        getattr(NeuralNetClassifier(), method)(np.zeros((2, 3)))
    assert issubclass(NotFittedError, ValueError)
    assert issubclass(NotFittedError, AttributeError)


def test_score_before_fit_raises_not_fitted():
    with pytest.raises(NotFittedError, match="call fit"):
        NeuralNetClassifier().score(np.zeros((2, 3)), [0, 1])


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"activation": "swish"}, ValueError, "activation must be one of"),
        ({"optimizer": "rmsprop"}, ValueError, "optimizer must be one of"),
        ({"schedule": "linear"}, ValueError, "schedule must be one of"),
        ({"init": "zeros"}, ValueError, "init must be None or one of"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate must be > 0.0"),
        ({"learning_rate": "fast"}, TypeError, "learning_rate must be a real number"),
        ({"epochs": 0}, ValueError, "epochs must be >= 1"),
        ({"epochs": 2.5}, TypeError, "epochs must be an integer"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"momentum": 1.0}, ValueError, "momentum must be < 1.0"),
        ({"weight_decay": -0.1}, ValueError, "weight_decay must be >= 0.0"),
        ({"dropout": 1.0}, ValueError, "dropout must be < 1.0"),
        ({"clip_norm": 0.0}, ValueError, "clip_norm must be > 0.0"),
        ({"warmup_epochs": -1}, ValueError, "warmup_epochs must be >= 0"),
        ({"validation_fraction": 1.0}, ValueError, "validation_fraction must be < 1.0"),
        ({"patience": -1}, ValueError, "patience must be >= 0"),
        ({"dtype": "float16"}, ValueError, "dtype must be float32 or float64"),
        ({"hidden_layers": 64}, TypeError, r"hidden_layers=\(64,\)"),
        ({"hidden_layers": (64, 0)}, ValueError, "each entry of hidden_layers must be >= 1"),
        ({"random_state": -1}, ValueError, "random_state must be a non-negative int"),
        ({"random_state": "seed"}, TypeError, "random_state must be an int"),
        ({"optimizer": "sgd", "momentum": 0.0, "nesterov": True}, ValueError,
         "nesterov=True needs momentum > 0"),
    ],
)
def test_invalid_hyper_parameters_raise_in_fit(params, error, match):
    X, y = np.zeros((4, 2)), [0, 1, 0, 1]
    clf = NeuralNetClassifier(**params)
    with pytest.raises(error, match=match):
        clf.fit(X, y)


@pytest.mark.parametrize(
    ("X", "error", "match"),
    [
        (np.zeros(4), ValueError, "Reshape your data"),
        (np.zeros((4, 2, 2)), ValueError, "Flatten images first"),
        (np.zeros((4, 0)), ValueError, r"0 feature\(s\) \(shape=\(4, 0\)\)"),
        (np.array([[1.0, np.nan]] * 4), ValueError, "X contains NaN or infinity"),
        (np.array([[1.0, np.inf]] * 4), ValueError, "X contains NaN or infinity"),
        (np.ones((4, 2)) * 1j, ValueError, "Complex data not supported"),
        (np.array([["a", "b"]] * 4), TypeError, "X must hold numbers"),
        (np.array([[1.0, {}]] * 4, dtype=object), TypeError, "X must hold numbers only"),
        ([[1.0, 2.0], [3.0]] * 2, ValueError, "X must be a rectangular 2-D array"),
    ],
    ids=["1-D", "3-D", "no-features", "nan", "inf", "complex", "strings", "dict", "ragged"],
)
def test_invalid_X_raises(X, error, match):
    with pytest.raises(error, match=match):
        _small().fit(X, [0, 1, 0, 1])


def test_empty_X_raises():
    with pytest.raises(ValueError, match=r"X has 0 sample\(s\)"):
        _small().fit(np.zeros((0, 3)), [])


def test_sparse_X_raises():
    sparse = pytest.importorskip("scipy.sparse", reason="scipy is not installed")
    with pytest.raises(TypeError, match=r"Sparse input is not supported.*toarray"):
        _small().fit(sparse.csr_matrix(np.eye(4)), [0, 1, 0, 1])


@pytest.mark.parametrize(
    ("y", "match"),
    [
        (None, "requires y to be passed, but the target y is None"),
        (np.zeros((4, 2)), "y should be a 1d array, got an array of shape"),
        ([0, 1, 0], "X has 4 samples but y has 3 labels"),
        ([0.5, 1.5, 0.5, 2.0], "Unknown label type: continuous"),
        ([0.0, np.nan, 1.0, 0.0], "y contains NaN or infinity"),
        ([1, 1, 1, 1], "y has only one class"),
        (np.array([0, "a", 0, "a"], dtype=object), "Unknown label type: y mixes labels"),
        ([1j, 0, 1j, 0], "Complex data not supported"),
    ],
    ids=["none", "2-D", "length", "continuous", "nan", "one-class", "mixed", "complex"],
)
def test_invalid_y_raises(y, match):
    with pytest.raises(ValueError, match=match):
        _small().fit(np.zeros((4, 2)), y)


@pytest.mark.parametrize(
    ("sample_weight", "match"),
    [
        (np.ones(3), r"sample_weight has shape \(3,\) but there are 4 samples"),
        (np.ones((4, 2)), r"sample_weight has shape \(4, 2\) but there are 4 samples"),
        ([1.0, -1.0, 1.0, 1.0], "sample_weight must hold finite, non-negative numbers"),
        ([1.0, np.nan, 1.0, 1.0], "sample_weight must hold finite, non-negative numbers"),
        (np.zeros(4), "sample_weight is zero for every sample"),
    ],
)
def test_invalid_sample_weight_raises(sample_weight, match):
    with pytest.raises(ValueError, match=match):
        _small().fit(np.zeros((4, 2)), [0, 1, 0, 1], sample_weight=sample_weight)


def test_early_stopping_needs_a_class_with_two_samples():
    with pytest.raises(ValueError, match="early_stopping holds out a validation set"):
        _small(early_stopping=True).fit(np.eye(2), [0, 1])


@pytest.mark.parametrize("method", ["predict", "predict_proba", "decision_function"])
def test_predict_with_other_features_raises(rng, method):
    X, y = _blobs(rng, 2)
    clf = _small(epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="X has 2 features, but NeuralNetClassifier is "
                                         "expecting 3 features as input"):
        getattr(clf, method)(X[:, :2])
    with pytest.raises(ValueError, match="Reshape your data"):
        getattr(clf, method)(X[0])


def test_score_with_wrong_length_y_raises(rng):
    X, y = _blobs(rng, 2)
    clf = _small(epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="X has 80 samples but y has 79 labels"):
        clf.score(X, y[:-1])


def test_validation_data_is_scored_after_every_epoch_for_the_callbacks(rng):
    X, y = _blobs(rng, 3)
    labels = np.array(["a", "b", "c"])[y]
    seen = []
    clf = _small(epochs=4).fit(X[:90], labels[:90], validation_data=(X[90:], labels[90:]),
                               callbacks=[lambda epoch, logs: seen.append((epoch, dict(logs)))])
    assert [epoch for epoch, _ in seen] == [0, 1, 2, 3]
    assert seen[-1][1]["val_accuracy"] == clf.history_.val_accuracy[-1]
    assert_close(np.float64(seen[-1][1]["val_accuracy"]),
                 np.float64(clf.score(X[90:], labels[90:])))


def test_a_callback_that_returns_true_stops_fit(rng):
    X, y = _blobs(rng, 2)
    clf = _small(epochs=10).fit(X, y, callbacks=[lambda epoch, logs: epoch == 2])
    assert clf.history_.epochs == 3 and clf.history_.stopped_early


def test_validation_labels_must_be_known_classes(rng):
    X, y = _blobs(rng, 2)
    with pytest.raises(ValueError, match="not in classes_"):
        _small(epochs=1).fit(X, y, validation_data=(X[:5], np.full(5, 7)))
