"""Tests for nnscratch.nn.training: the fit loop, mini-batches, splits, early stopping, errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _numerics import assert_close
from nnscratch.data.augment import Augmentation
from nnscratch.nn.activations import ReLU, Sigmoid
from nnscratch.nn.conv import Conv2D, MaxPool2D
from nnscratch.nn.layers import Dense, Flatten, Reshape
from nnscratch.nn.losses import BinaryCrossEntropy, MeanSquaredError, SoftmaxCrossEntropy
from nnscratch.nn.model import Sequential, build_mlp
from nnscratch.nn.normalization import BatchNorm
from nnscratch.nn.optimizers import SGD, Adam, AdamW, StepDecay
from nnscratch.nn.training import (
    EarlyStopping,
    History,
    TrainingDivergedError,
    UntrainedWarning,
    evaluate,
    fit,
    minibatches,
    stratified_split,
)


def _blobs(rng, n_per_class=100):
    """Two Gaussian blobs in 2-D, 5.7 standard deviations apart: almost separable."""
    X = np.concatenate([rng.normal(-2.0, 1.0, (n_per_class, 2)),
                        rng.normal(2.0, 1.0, (n_per_class, 2))])
    y = np.repeat([0, 1], n_per_class)
    return X, y


def _weights(model):
    return [p.value.copy() for p in model.parameters()]


def _train(X, y, *, seed=0, epochs=5, batch_size=16, verbose=0, **kwargs):
    model = build_mlp(X.shape[1], [6], 1, activation="tanh", rng=3, dtype=np.float64)
    history = fit(model, X, y, loss=BinaryCrossEntropy(),
                  optimizer=Adam(model.parameters(), learning_rate=0.05), epochs=epochs,
                  batch_size=batch_size, seed=seed, verbose=verbose, **kwargs)
    return model, history


# ---------------------------------------------------------------------------
# Learning
# ---------------------------------------------------------------------------


def test_loss_falls_on_two_blobs(rng):
    X, y = _blobs(rng)
    model, history = _train(X, y, epochs=20)
    assert history.epochs == 20
    assert history.loss[-1] < 0.25 * history.loss[0]
    assert history.accuracy[-1] > 0.95
    predicted = BinaryCrossEntropy().predict(model.forward(X, training=False))
    assert np.mean(predicted == y) > 0.95


def test_softmax_classifier_learns_three_blobs(rng):
    centers = np.array([[0.0, 4.0], [-4.0, -2.0], [4.0, -2.0]])
    y = np.repeat([0, 1, 2], 60)
    X = centers[y] + rng.standard_normal((180, 2))
    model = build_mlp(2, [8], 3, activation="relu", rng=0, dtype=np.float64)
    history = fit(model, X, y, loss=SoftmaxCrossEntropy(),
                  optimizer=SGD(model.parameters(), 0.1, momentum=0.9), epochs=15,
                  batch_size=32, verbose=0)
    assert history.accuracy[-1] > 0.95
    loss, accuracy = evaluate(model, SoftmaxCrossEntropy(), X, y)
    assert accuracy > 0.95 and loss < history.loss[0]


def test_regression_learns_a_line(rng):
    X = rng.uniform(-1, 1, (100, 1))
    y = 3 * X - 0.5
    model = Sequential([Dense(1, 1, rng=0, dtype=np.float64)])
    history = fit(model, X, y, loss=MeanSquaredError(),
                  optimizer=SGD(model.parameters(), 0.3), epochs=200, batch_size=None, verbose=0)
    assert history.accuracy == []
    assert history.loss[-1] < 1e-8
    np.testing.assert_allclose(model[0].W.value, [[3.0]], rtol=1e-4)
    np.testing.assert_allclose(model[0].b.value, [-0.5], rtol=1e-4)


def test_full_batch_equals_manual_gradient_descent(rng):
    X = rng.standard_normal((12, 3))
    y = rng.integers(0, 2, 12)
    hidden, output = Dense(3, 4, rng=0, dtype=np.float64), Dense(4, 1, rng=1, dtype=np.float64)
    hidden.b.value[...] = 0.1
    W1, b1, W2, b2 = (hidden.W.value.copy(), hidden.b.value.copy(), output.W.value.copy(),
                      output.b.value.copy())
    model = Sequential([hidden, Sigmoid(), output])
    learning_rate, epochs = 0.5, 6
    history = fit(model, X, y, loss=BinaryCrossEntropy(),
                  optimizer=SGD(model.parameters(), learning_rate), epochs=epochs,
                  batch_size=None, verbose=0)

    n = len(X)
    costs = []
    for _ in range(epochs):
        a1 = 1 / (1 + np.exp(-(X @ W1 + b1)))
        z2 = (a1 @ W2 + b2)[:, 0]
        p = 1 / (1 + np.exp(-z2))
        costs.append(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))
        dz2 = ((p - y) / n)[:, None]
        dz1 = (dz2 @ W2.T) * a1 * (1 - a1)
        W2 = W2 - learning_rate * a1.T @ dz2
        b2 = b2 - learning_rate * dz2.sum(axis=0)
        W1 = W1 - learning_rate * X.T @ dz1
        b1 = b1 - learning_rate * dz1.sum(axis=0)

    # History holds each epoch's cost before that epoch's update. Both sides multiply the
    # same matrices, possibly along different BLAS paths: equal to float64 rounding.
    assert_close(history.loss, costs)
    for param, expected in zip(model.parameters(), [W1, b1, W2, b2], strict=True):
        assert_close(param.value, expected)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_same_seed_same_history_and_weights(seed):
    X, y = _blobs(np.random.default_rng(1), n_per_class=30)
    first_model, first = _train(X, y, seed=seed, validation_split=0.2)
    second_model, second = _train(X, y, seed=seed, validation_split=0.2)
    assert first.loss == second.loss
    assert first.accuracy == second.accuracy
    assert first.val_loss == second.val_loss
    assert first.val_accuracy == second.val_accuracy
    for a, b in zip(_weights(first_model), _weights(second_model), strict=True):
        np.testing.assert_array_equal(a, b)


def test_different_seeds_shuffle_differently(rng):
    X, y = _blobs(rng, n_per_class=30)
    _, first = _train(X, y, seed=0)
    _, second = _train(X, y, seed=1)
    assert first.loss != second.loss


def test_shuffle_false_is_independent_of_the_seed(rng):
    X, y = _blobs(rng, n_per_class=30)
    first_model, first = _train(X, y, seed=0, shuffle=False)
    second_model, second = _train(X, y, seed=1, shuffle=False)
    assert first.loss == second.loss
    for a, b in zip(_weights(first_model), _weights(second_model), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("make_optimizer", [
    lambda params: SGD(params, 0.1, momentum=0.9, nesterov=True, weight_decay=1e-3,
                       clip_norm=1.0),
    lambda params: Adam(params, 0.01, weight_decay=1e-3),
    lambda params: AdamW(params, 0.01),
], ids=["nesterov", "adam", "adamw"])
def test_float32_model_stays_float32(make_optimizer, rng):
    X, y = _blobs(rng, n_per_class=20)  # float64 data: cast once to the model's dtype
    model = build_mlp(2, [5], 1, rng=0)
    arrays = [p.value for p in model.parameters()]
    fit(model, X, y, loss=BinaryCrossEntropy(), optimizer=make_optimizer(model.parameters()),
        epochs=3, batch_size=8, validation_split=0.25, verbose=0)
    for param, array in zip(model.parameters(), arrays, strict=True):
        assert param.value is array  # updated in place
        assert param.value.dtype == np.float32 and param.grad.dtype == np.float32


def test_model_returns_fresh_arrays_after_fit(rng):
    X, y = _blobs(rng, n_per_class=10)
    model, _ = _train(X, y, epochs=2, batch_size=5)
    first = model.forward(X[:5], training=False)
    kept = first.copy()
    model.forward(X[5:10], training=False)
    np.testing.assert_array_equal(first, kept)


def test_sample_weight_zero_ignores_a_class(rng):
    y = np.repeat([0, 1, 2], 10)
    X = rng.standard_normal((30, 3)) + y[:, None]
    weights = (y != 2).astype(float)

    def train(X, y, sample_weight=None):
        model = build_mlp(3, [4], 3, activation="tanh", rng=0, dtype=np.float64)
        history = fit(model, X, y, loss=SoftmaxCrossEntropy(),
                      optimizer=SGD(model.parameters(), 0.5), epochs=5, batch_size=None,
                      sample_weight=sample_weight, verbose=0)
        return model, history

    weighted_model, weighted = train(X, y, weights)
    subset_model, subset = train(X[y != 2], y[y != 2])
    np.testing.assert_allclose(weighted.loss, subset.loss, rtol=1e-12)
    for a, b in zip(_weights(weighted_model), _weights(subset_model), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_sample_weight_changes_the_result(rng):
    X, y = _blobs(rng, n_per_class=20)
    plain, _ = _train(X, y)
    weighted, _ = _train(X, y, sample_weight=np.where(y == 1, 5.0, 1.0))
    assert not np.allclose(_weights(plain)[0], _weights(weighted)[0])


def test_schedule_sets_the_rate_per_epoch_and_restores_it(rng):
    X, y = _blobs(rng, n_per_class=10)
    model = build_mlp(2, [3], 1, rng=0, dtype=np.float64)
    optimizer = SGD(model.parameters(), 0.4)
    history = fit(model, X, y, loss=BinaryCrossEntropy(), optimizer=optimizer, epochs=5,
                  schedule=StepDecay(2, gamma=0.5), verbose=0)
    np.testing.assert_allclose(history.learning_rate, [0.4, 0.4, 0.2, 0.2, 0.1])
    assert optimizer.learning_rate == 0.4


def test_zero_epochs_change_nothing(rng):
    X, y = _blobs(rng, n_per_class=5)
    model = build_mlp(2, [3], 1, rng=0, dtype=np.float64)
    before = _weights(model)
    with pytest.warns(UntrainedWarning, match="0 epochs"):
        history = fit(model, X, y, loss=BinaryCrossEntropy(),
                      optimizer=SGD(model.parameters()), epochs=0, verbose=0)
    assert history.epochs == 0 and history.loss == []
    for a, b in zip(before, _weights(model), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("verbose", [0, 1])
@pytest.mark.parametrize("batch_size", [None, 7])
def test_history_fields(verbose, batch_size, rng):
    X, y = _blobs(rng, n_per_class=15)
    _, history = _train(X, y, epochs=3, batch_size=batch_size, validation_split=0.2,
                        verbose=verbose)
    assert isinstance(history, History)
    assert history.epochs == 3
    for values in (history.loss, history.accuracy, history.val_loss, history.val_accuracy,
                   history.seconds, history.learning_rate):
        assert len(values) == 3
    assert history.best_epoch is None and history.stopped_early is False
    assert set(history.as_dict()) == {"loss", "accuracy", "val_loss", "val_accuracy", "seconds",
                                      "learning_rate", "best_epoch", "stopped_early"}


# ---------------------------------------------------------------------------
# Validation split
# ---------------------------------------------------------------------------


def test_validation_split_keeps_class_proportions():
    # A model that always predicts class 0 and never learns (learning rate 0): its accuracy on
    # any subset is that subset's share of class 0, which stratification keeps at 80 %.
    X = np.linspace(-1, 1, 200).reshape(100, 2)
    y = np.repeat([0, 1], [80, 20])
    model = Sequential([Dense(2, 1, rng=0, dtype=np.float64)])
    model[0].W.value[...] = 0.0
    model[0].b.value[...] = -10.0
    with pytest.warns(UntrainedWarning, match="a learning rate of 0"):
        history = fit(model, X, y, loss=BinaryCrossEntropy(),
                      optimizer=SGD(model.parameters(), learning_rate=0.0), epochs=1,
                      batch_size=10, validation_split=0.25, verbose=0)
    assert history.val_accuracy == [0.8]
    assert history.accuracy == [0.8]


def _regression_with_validation_split(y_shape, rng):
    X = rng.standard_normal((40, 2))
    y = (X @ np.array([1.0, -2.0])).reshape(y_shape)
    model = Sequential([Dense(2, 1, rng=0, dtype=np.float64)])
    return fit(model, X, y, loss=MeanSquaredError(), optimizer=SGD(model.parameters(), 0.1),
               epochs=2, batch_size=None, validation_split=0.25, verbose=0)


def test_validation_split_for_regression_with_column_targets(rng):
    history = _regression_with_validation_split((40, 1), rng)
    assert len(history.val_loss) == 2


def test_validation_split_for_regression_with_flat_targets(rng):
    history = _regression_with_validation_split((40,), rng)
    assert len(history.val_loss) == 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stratified_split(seed):
    y = np.repeat([0, 1, 2], [50, 30, 2])
    train, validation = stratified_split(y, 0.2, np.random.default_rng(seed))
    assert np.array_equal(np.sort(np.concatenate([train, validation])), np.arange(len(y)))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(validation) > 0)
    assert np.bincount(y[validation]).tolist() == [10, 6, 1]  # at least one of each class


def test_stratified_split_accepts_one_hot_labels():
    y = np.repeat([0, 1], [40, 10])
    train_a, val_a = stratified_split(y, 0.3, np.random.default_rng(0))
    train_b, val_b = stratified_split(np.eye(2)[y], 0.3, np.random.default_rng(0))
    np.testing.assert_array_equal(val_a, val_b)
    np.testing.assert_array_equal(train_a, train_b)


def test_stratified_split_depends_on_the_generator():
    y = np.repeat([0, 1], 50)
    _, first = stratified_split(y, 0.2, np.random.default_rng(0))
    _, second = stratified_split(y, 0.2, np.random.default_rng(1))
    assert not np.array_equal(first, second)


def test_validation_split_is_not_used_with_validation_data(rng):
    X, y = _blobs(rng, n_per_class=10)
    X_val, y_val = X[:4], y[:4]
    model, history = _train(X, y, epochs=1, validation_data=(X_val, y_val),
                            validation_split=0.5)
    # All 20 rows trained (two batches of 16 and 4): accuracy is a multiple of 1/20.
    assert (history.accuracy[0] * 20) == pytest.approx(round(history.accuracy[0] * 20))
    assert history.val_loss[0] == pytest.approx(evaluate(model, BinaryCrossEntropy(),
                                                         X_val, y_val)[0])


# ---------------------------------------------------------------------------
# Early stopping and callbacks
# ---------------------------------------------------------------------------


def _early_stopping_case(rng):
    """A linear model that starts out wrong, and validation data with 30 % of labels flipped.

    Turning the weights round first lowers the validation loss; then growing confidence makes
    the flipped examples cost more and more: the validation loss falls, then rises.
    """
    X, y = _blobs(rng, n_per_class=40)
    X_val, y_val = _blobs(rng, n_per_class=10)
    y_val = y_val.copy()
    y_val[[0, 1, 2, 10, 11, 12]] ^= 1
    model = Sequential([Dense(2, 1, rng=0, dtype=np.float64)])
    model[0].W.value[...] = -0.5
    return model, X, y, X_val, y_val


def _fit_with_snapshots(model, X, y, X_val, y_val, stopping):
    """Train with early stopping; return the History and each epoch's weights."""
    snapshots = []
    history = fit(model, X, y, loss=BinaryCrossEntropy(),
                  optimizer=SGD(model.parameters(), 0.1), epochs=200, batch_size=None,
                  validation_data=(X_val, y_val), early_stopping=stopping,
                  callbacks=[lambda epoch, logs: snapshots.append(_weights(model))], verbose=0)
    return history, snapshots


def test_early_stopping_restores_the_best_weights(rng):
    model, X, y, X_val, y_val = _early_stopping_case(rng)
    history, snapshots = _fit_with_snapshots(model, X, y, X_val, y_val, EarlyStopping(patience=3))
    best = int(np.argmin(history.val_loss))
    assert best > 0  # the validation loss first fell ...
    assert history.val_loss[-1] > history.val_loss[best]  # ... then rose
    assert history.best_epoch == best
    assert history.stopped_early
    # Epochs 0..best, then `patience` epochs tolerated without improvement; the next one stops.
    assert history.epochs == (best + 1) + 3 + 1
    for restored, expected in zip(_weights(model), snapshots[best], strict=True):
        np.testing.assert_array_equal(restored, expected)
    assert not np.array_equal(_weights(model)[0], snapshots[-1][0])


def test_early_stopping_without_restore_keeps_the_last_weights(rng):
    model, X, y, X_val, y_val = _early_stopping_case(rng)
    history, snapshots = _fit_with_snapshots(model, X, y, X_val, y_val,
                                             EarlyStopping(patience=3, restore_best=False))
    assert history.stopped_early
    for final, expected in zip(_weights(model), snapshots[-1], strict=True):
        np.testing.assert_array_equal(final, expected)


def test_early_stopping_on_accuracy_maximises(rng):
    stopping = EarlyStopping("val_accuracy", patience=0)
    model = build_mlp(2, [2], 1, rng=0)
    assert stopping.update(0, 0.5, model) is False
    assert stopping.update(1, 0.7, model) is False
    assert stopping.best_epoch == 1
    assert stopping.update(2, 0.6, model) is True


def test_early_stopping_min_delta(rng):
    stopping = EarlyStopping("loss", patience=1, min_delta=0.1)
    model = build_mlp(2, [2], 1, rng=0)
    stopping.update(0, 1.0, model)
    assert stopping.update(1, 0.95, model) is False  # not better by 0.1: wait 1
    assert stopping.best_epoch == 0
    assert stopping.update(2, 0.85, model) is False  # better by 0.15
    assert stopping.best_epoch == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"monitor": "val_acc"}, ValueError, r"monitor must be one of .* got 'val_acc'"),
        ({"patience": -1}, ValueError, r"patience must be >= 0"),
        ({"patience": 1.5}, TypeError, r"patience must be an integer"),
        ({"min_delta": -0.1}, ValueError, r"min_delta must be >= 0\.0"),
    ],
)
def test_early_stopping_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        EarlyStopping(**kwargs)


def test_early_stopping_on_validation_needs_validation_data(rng):
    X, y = _blobs(rng, n_per_class=5)
    with pytest.raises(ValueError, match=r"early stopping monitors 'val_loss' but there is no "
                                         r"validation data"):
        _train(X, y, early_stopping=EarlyStopping())


def test_early_stopping_on_accuracy_needs_a_classifier(rng):
    X = rng.standard_normal((10, 2))
    model = build_mlp(2, [2], 1, rng=0, dtype=np.float64)
    with pytest.raises(ValueError, match=r"monitors 'accuracy', which this loss does not report"):
        fit(model, X, X[:, :1], loss=MeanSquaredError(), optimizer=SGD(model.parameters()),
            epochs=2, early_stopping=EarlyStopping("accuracy"), verbose=0)


def test_callback_can_stop_training(rng):
    X, y = _blobs(rng, n_per_class=10)
    seen = []

    def stop_after_three(epoch, logs):
        seen.append((epoch, sorted(logs)))
        return epoch == 2

    _, history = _train(X, y, epochs=10, validation_split=0.2, callbacks=[stop_after_three])
    assert history.epochs == 3 and history.stopped_early
    assert seen == [(e, ["accuracy", "loss", "val_accuracy", "val_loss"]) for e in range(3)]


def test_callback_stopping_at_the_last_epoch_is_not_early(rng):
    X, y = _blobs(rng, n_per_class=10)
    _, history = _train(X, y, epochs=3, callbacks=[lambda epoch, logs: True if epoch == 2
                                                   else None])
    assert history.epochs == 3 and not history.stopped_early


# ---------------------------------------------------------------------------
# Divergence and input errors
# ---------------------------------------------------------------------------


def test_non_finite_loss_names_the_epoch_and_batch():
    X = np.ones((12, 2))
    X[4:8] = 1e200  # the second batch of four overflows the squared error
    model = Sequential([Dense(2, 1, rng=0, dtype=np.float64)])
    before = _weights(model)
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(
        TrainingDivergedError, match=r"The loss became (inf|nan) at epoch 1, batch 2 of 3\. The "
                                     r"weights from the start of epoch 1 are restored\. Try a "
                                     r"lower learning_rate \(now 0\.01\)"
    ) as caught:
        fit(model, X, np.zeros((12, 1)), loss=MeanSquaredError(),
            optimizer=SGD(model.parameters(), 0.01), epochs=3, batch_size=4, shuffle=False,
            verbose=0)
    assert caught.value.epoch == 0
    # The epoch's first update is undone too: the model is back where the epoch started.
    assert all(np.array_equal(w, b) for w, b in zip(_weights(model), before, strict=True))


def test_huge_learning_rate_diverges_with_a_clear_error(rng):
    X = rng.standard_normal((16, 3))
    y = rng.standard_normal((16, 1))
    model = Sequential([Dense(3, 1, rng=0, dtype=np.float64)])
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(
        TrainingDivergedError, match=r"became .* at iteration \d+\. .*now 1e\+30"
    ) as caught:
        fit(model, X, y, loss=MeanSquaredError(), optimizer=SGD(model.parameters(), 1e30),
            epochs=50, batch_size=None, verbose=0)
    assert isinstance(caught.value, FloatingPointError)
    iteration = int(re.search(r"iteration (\d+)", str(caught.value)).group(1))
    assert iteration > 0 and caught.value.epoch == iteration  # it blew up after some updates


@pytest.mark.parametrize(("batch_size", "where"), [(None, "iteration 0"), (2, "epoch 1")])
def test_a_non_finite_weight_stops_training_even_with_a_finite_loss(batch_size, where):
    # The losses are finite; the last update, 1e308 times a gradient of about 10, overflows. (In
    # mini-batches the first batch, all zeros, has a zero gradient.)
    model = Sequential([Dense(2, 1, rng=0, dtype=np.float64)])
    X, y = np.ones((4, 2)), np.full((4, 1), 10.0)
    X[:2], y[:2] = 0.0, 0.0
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(
        TrainingDivergedError,
        match=rf"The weights became non-finite \(layers\[0\]\.W holds NaN or infinity\) at "
              rf"{where}\. The weights from .* are restored\. Try a lower learning_rate",
    ):
        fit(model, X, y, loss=MeanSquaredError(), optimizer=SGD(model.parameters(), 1e308),
            epochs=3, batch_size=batch_size, shuffle=False, verbose=0)
    assert all(np.all(np.isfinite(w)) for w in _weights(model))  # the last good weights


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"dtype": np.float32}, ValueError,
         r"dtype=float32 but the model's weights are float64"),
        ({"y": np.zeros(5)}, ValueError, r"X has 10 samples but y has 5"),
        ({"X": np.zeros((10, 3))}, ValueError, r"X has 3 features, but the model expects 2"),
        ({"X": np.zeros(10)}, ValueError, r"X must be 2-D"),
        ({"X": np.full((10, 2), np.nan)}, ValueError, r"X contains NaN or infinity"),
        ({"X": np.array([["a", "b"]] * 10)}, TypeError, r"X must hold numbers"),
        ({"epochs": -1}, ValueError, r"epochs must be >= 0"),
        ({"batch_size": 0}, ValueError, r"batch_size must be >= 1"),
        ({"validation_split": 1.0}, ValueError, r"validation_split must be < 1\.0"),
        ({"sample_weight": np.ones(3)}, ValueError,
         r"sample_weight has shape \(3,\) but there are 10 samples"),
        ({"validation_data": (np.zeros((2, 2, 1)), np.zeros(2))}, ValueError,
         r"X_val must be 2-D"),
    ],
)
def test_fit_input_errors(change, error, match, rng):
    model = build_mlp(2, [3], 1, rng=0, dtype=np.float64)
    arguments = {"X": rng.standard_normal((10, 2)), "y": rng.integers(0, 2, 10),
                 "loss": BinaryCrossEntropy(), "optimizer": SGD(model.parameters()),
                 "epochs": 1, "verbose": 0, **change}
    with pytest.raises(error, match=match):
        fit(model, **arguments)


# ---------------------------------------------------------------------------
# minibatches and evaluate
# ---------------------------------------------------------------------------


def test_minibatches_cover_the_epoch_in_order():
    X = np.arange(20).reshape(10, 2)
    y = np.arange(10)
    batches = list(minibatches(X, y, None, batch_size=4))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    assert all(b[2] is None for b in batches)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), X)


def test_minibatches_shuffle_keeps_rows_aligned():
    X = np.arange(20).reshape(10, 2)
    y = np.arange(10)
    batches = list(minibatches(X, y, batch_size=3, rng=np.random.default_rng(0)))
    order = np.concatenate([b[1] for b in batches])
    assert sorted(order.tolist()) == list(range(10)) and order.tolist() != list(range(10))
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), X[order])


@pytest.mark.parametrize("batch_size", [None, 10, 50])
def test_minibatches_full_batch(batch_size):
    X = np.arange(10).reshape(10, 1)
    batches = list(minibatches(X, batch_size=batch_size))
    assert len(batches) == 1 and batches[0][0] is X


def test_evaluate_in_batches_equals_one_pass(rng):
    X = rng.standard_normal((25, 2))
    y = rng.integers(0, 3, 25)
    model = build_mlp(2, [4], 3, rng=0, dtype=np.float64)
    loss = SoftmaxCrossEntropy()
    whole_loss, whole_accuracy = evaluate(model, loss, X, y)
    batched_loss, batched_accuracy = evaluate(model, loss, X, y, batch_size=4)
    assert_close(batched_loss, whole_loss)
    logits = model.forward(X, training=False)
    # Batches of 4 and one batch of 25 give logits equal to rounding; the accuracies (counts)
    # are then equal exactly because no example's top two logits are that close.
    top_two = np.sort(logits, axis=1)[:, -2:]
    assert np.min(top_two[:, 1] - top_two[:, 0]) > 1e-9
    assert batched_accuracy == whole_accuracy
    assert_close(whole_loss, SoftmaxCrossEntropy().forward(logits, y))
    assert whole_accuracy == np.mean(np.argmax(logits, axis=1) == y)
    assert evaluate(model, MeanSquaredError(), X, np.zeros((25, 3)))[1] is None


# ---------------------------------------------------------------------------
# Augmentation (nnscratch.data.augment): training batches only, seeded
# ---------------------------------------------------------------------------


class _RecordingAugmentation(Augmentation):
    """Records the batches it is given, and adds 1 to them."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    def __call__(self, X, rng):
        self.seen.append(np.array(X))
        return np.asarray(X) + 1.0


def _image_blobs(rng, n=120):
    X, y = _blobs(rng, n // 2)
    return np.hstack([X, np.zeros((n, 2))]), y  # rows are 2x2 "images"


def test_fit_augments_every_training_batch_and_never_the_validation_data(rng):
    X, y = _image_blobs(rng)
    augment = _RecordingAugmentation(image_shape=(2, 2))
    model, history = _train(X, y, epochs=2, batch_size=16, validation_split=0.25,
                            augment=augment)
    seen = np.concatenate(augment.seen)
    assert len(augment.seen) == 2 * 6 and seen.shape == (2 * 90, 4)  # 90 training rows a pass
    training_rows = {row.tobytes() for row in seen}
    assert len(training_rows) == 90  # each training row once per epoch, no validation row
    # The model trained on the augmented batches (X + 1), not on X.
    plain, _ = _train(X, y, epochs=2, batch_size=16, validation_split=0.25)
    assert not all(np.array_equal(a, b) for a, b in zip(_weights(model), _weights(plain),
                                                          strict=True))
    assert len(history.val_loss) == 2


def test_fit_with_augmentation_is_reproducible(rng):
    X = rng.random((64, 16))
    y = (X[:, :8].sum(axis=1) > 4).astype(np.int64)
    augment = Augmentation(shift=1.0, rotation=10.0, elastic_alpha=2.0, image_shape=(4, 4))
    runs = [_train(X, y, epochs=3, seed=5, augment=augment)[0] for _ in range(2)]
    other = _train(X, y, epochs=3, seed=6, augment=augment)[0]
    for a, b in zip(_weights(runs[0]), _weights(runs[1]), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(_weights(runs[0])[0], _weights(other)[0])


def test_fit_rejects_an_augmentation_of_other_images(rng):
    X, y = _blobs(rng)
    with pytest.raises(ValueError, match=r"augment works on 28x28 images .* X has 2 features"):
        _train(X, y, augment=Augmentation(shift=1.0))


# ---------------------------------------------------------------------------
# Image batches (n_samples, channels, height, width) and models that start with a convolution
# ---------------------------------------------------------------------------


def _bars(rng, n=96):
    """4 x 4 images: class 0 is bright in the top half, class 1 in the bottom half."""
    y = np.arange(n) % 2
    X = rng.random((n, 1, 4, 4)) * 0.5
    X[y == 0, :, :2] += 0.5
    X[y == 1, :, 2:] += 0.5
    return X, y


def _conv_net(first_reshape=False, momentum=0.1):
    layers = [Conv2D(1, 2, 3, padding=1, rng=0, dtype=np.float64), ReLU(), MaxPool2D(2),
              BatchNorm(2, momentum=momentum, dtype=np.float64), Flatten(),
              Dense(8, 2, rng=1, dtype=np.float64)]
    return Sequential([Reshape((1, 4, 4)), *layers] if first_reshape else layers)


def _fit_images(model, X, y, **kwargs):
    settings = {"epochs": 4, "batch_size": 16, "verbose": 0, **kwargs}
    return fit(model, X, y, loss=SoftmaxCrossEntropy(),
               optimizer=Adam(model.parameters(), learning_rate=0.05), **settings)


def test_fit_trains_a_cnn_on_image_batches(rng):
    X, y = _bars(rng)
    model = _conv_net()
    history = _fit_images(model, X, y, epochs=8, validation_data=_bars(rng, 32))
    assert history.loss[-1] < history.loss[0]
    assert history.val_accuracy[-1] >= 0.9
    assert not np.array_equal(model[3].running_mean, np.zeros(2))  # batch norm trained too


def test_fit_on_flat_rows_with_reshape_equals_fit_on_images(rng):
    X, y = _bars(rng)
    on_images, on_rows = _conv_net(), _conv_net(first_reshape=True)
    history_images = _fit_images(on_images, X, y)
    history_rows = _fit_images(on_rows, X.reshape(len(X), -1), y)
    assert history_images.loss == history_rows.loss  # the same numbers, reshaped: exact
    for a, b in zip(on_images.parameters(), on_rows.parameters(), strict=True):
        np.testing.assert_array_equal(a.value, b.value)


@pytest.mark.parametrize(("X", "match"), [
    (np.zeros((8, 4, 4)), r"X must be 2-D \(n_samples, n_features\) or 4-D \(n_samples, "
                          r"channels, height, width\), got shape \(8, 4, 4\).*X\[:, None\]"),
    (np.zeros((8, 3, 4, 4)), r"Conv2D expects 1 input channel\(s\), but X has 3"),
    (np.zeros((8, 16)), r"Conv2D takes a batch of images .* but X has shape \(8, 16\)"),
    (np.zeros((8, 1, 1, 1)), r"MaxPool2D's kernel_size \(2, 2\) is larger than the input, 1 x 1 "
                             r".*use a smaller kernel_size or larger images"),
])
def test_fit_refuses_images_the_model_cannot_take(X, match):
    with pytest.raises(ValueError, match=match):
        _fit_images(_conv_net(), X, np.zeros(8, dtype=np.int64))


def test_fit_refuses_validation_images_of_another_shape(rng):
    X, y = _bars(rng)
    with pytest.raises(ValueError, match=r"X_val has 9 values per sample"):
        _fit_images(_conv_net(first_reshape=True), X, y,
                    validation_data=(np.zeros((4, 1, 3, 3)), np.zeros(4, dtype=np.int64)))


def test_fit_refuses_images_for_a_dense_model(rng):
    X, y = _bars(rng)
    model = build_mlp(16, [4], 2, rng=0, dtype=np.float64)
    with pytest.raises(ValueError, match=r"starts with Dense\(16, 4\), which takes rows"):
        _fit_images(model, X, y)


def test_fit_augments_single_channel_image_batches(rng):
    X, y = _bars(rng)
    augment = _RecordingAugmentation(image_shape=(4, 4))
    model = _conv_net()
    _fit_images(model, X, y, epochs=1, augment=augment)
    assert len(augment.seen) == 6 and all(batch.shape == (16, 16) for batch in augment.seen)
    plain = _conv_net()
    _fit_images(plain, X, y, epochs=1)
    assert not np.array_equal(model[0].W.value, plain[0].W.value)  # it trained on X + 1


def test_fit_refuses_to_augment_images_of_several_channels(rng):
    X = rng.random((8, 2, 4, 4))
    model = Sequential([Conv2D(2, 2, 3, rng=0, dtype=np.float64), Flatten(),
                        Dense(8, 2, rng=1, dtype=np.float64)])
    with pytest.raises(ValueError, match="augment transforms single-channel images, but X has 2"):
        _fit_images(model, X, np.zeros(8, dtype=np.int64),
                    augment=Augmentation(image_shape=(4, 4)))


def test_early_stopping_restores_batch_norm_statistics_with_the_weights(rng):
    model = _conv_net()
    stopping = EarlyStopping("loss", patience=0)
    model.forward(rng.random((8, 1, 4, 4)))
    best = [array.copy() for array in model.buffers().values()]
    best_weights = _weights(model)
    assert not stopping.update(0, 1.0, model)
    model.forward(rng.random((8, 1, 4, 4)) + 3)  # the running statistics move
    model[0].W.value += 1
    assert stopping.update(1, 2.0, model)
    stopping.restore(model)
    for array, expected in zip(model.buffers().values(), best, strict=True):
        np.testing.assert_array_equal(array, expected)
    for restored, expected in zip(_weights(model), best_weights, strict=True):
        np.testing.assert_array_equal(restored, expected)
