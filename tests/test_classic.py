"""Tests for nnscratch.classic: the tutorial's NeuralNet, its numbers and its interface."""

from __future__ import annotations

import doctest
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from _numerics import assert_close
from nnscratch import classic
from nnscratch.classic import NeuralNet
from nnscratch.nn.training import TrainingDivergedError

#: The figures measured from the tutorial's own code (a copy of
#: ``../shared/reference/tutorial_recipe.json``, so that a clone checks the headline claim).
REFERENCE = Path(__file__).resolve().parent / "tutorial_recipe.json"


@pytest.fixture
def separable(rng):
    """Two well separated clouds in 4-D, labels 0/1, in [0, 1] like scaled pixels."""
    y = np.repeat([0, 1], 40)
    X = np.clip(0.5 + 0.25 * (2 * y[:, None] - 1) + 0.08 * rng.standard_normal((80, 4)), 0, 1)
    return X, y


def _tutorial_costs(X, y, layer_sizes, learning_rate, n_iterations, seed=42):
    """The tutorial's own algorithm, written out: (out, in) weights, sigmoid on every layer."""
    np_random = np.random.RandomState(seed)
    sizes = [X.shape[1], *layer_sizes]
    weights, biases = [], []
    for fan_in, fan_out in itertools.pairwise(sizes):
        weights.append(np_random.randn(fan_out, fan_in) / np.sqrt(fan_in))
        biases.append(np.zeros((fan_out, 1)))
    A0, Y, m = X.T, y.reshape(1, -1), X.shape[0]
    costs = []
    for _ in range(n_iterations):
        activations = [A0]
        for W, b in zip(weights, biases, strict=True):
            activations.append(1 / (1 + np.exp(-(W @ activations[-1] + b))))
        A = activations[-1]
        costs.append(float(-np.mean(Y * np.log(A) + (1 - Y) * np.log(1 - A))))
        dZ = A - Y
        for layer in reversed(range(len(weights))):
            dW = dZ @ activations[layer].T / m
            db = dZ.sum(axis=1, keepdims=True) / m
            if layer > 0:
                a = activations[layer]
                dZ = (weights[layer].T @ dZ) * a * (1 - a)
            weights[layer] = weights[layer] - learning_rate * dW
            biases[layer] = biases[layer] - learning_rate * db
    return costs


def test_docstring_example_runs():
    result = doctest.testmod(classic, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("layer_sizes", [[1], [5, 1], [6, 3, 1]])
def test_costs_match_the_tutorial_algorithm(separable, layer_sizes):
    X, y = separable
    net = NeuralNet(layer_sizes).fit(X, y, learning_rate=0.5, n_iterations=30, log_every=1)
    expected = _tutorial_costs(X, y, layer_sizes, learning_rate=0.5, n_iterations=30)
    # The tutorial's (out, in) layout multiplies the transposed matrices: another BLAS path,
    # whose rounding 30 updates carry along (so 1e-10, looser than one product's 1e-12).
    assert_close(net.costs_, expected, rtol=1e-10)


def test_does_not_mutate_the_callers_list(separable):
    X, y = separable
    sizes = [5, 1]
    net = NeuralNet(sizes)
    net.fit(X, y, n_iterations=3)
    assert sizes == [5, 1]
    assert net.layer_sizes == (5, 1)
    sizes.append(7)
    assert net.layer_sizes == (5, 1)


def test_structure_after_fit(separable):
    X, y = separable
    net = NeuralNet([5, 3, 1]).fit(X, y, n_iterations=1)
    kinds = [type(layer).__name__ for layer in net.model_.layers]
    assert kinds == ["Dense", "Sigmoid", "Dense", "Sigmoid", "Dense"]
    assert net.n_features_in_ == 4
    assert all(p.dtype == np.float64 for p in net.model_.parameters())


def test_predictions(separable):
    X, y = separable
    net = NeuralNet([5, 1]).fit(X, y, learning_rate=2.0, n_iterations=300)
    proba = net.predict_proba(X)
    assert proba.shape == (80,)
    assert np.all((proba >= 0) & (proba <= 1))
    labels = net.predict(X)
    assert labels.dtype == np.int64
    assert set(np.unique(labels).tolist()) <= {0, 1}
    np.testing.assert_array_equal(labels, (proba > 0.5).astype(np.int64))
    assert net.score(X, y) > 0.9
    assert net.score(X, y) == np.mean(labels == y)


def test_learns_a_separable_set(rng):
    X = rng.random((200, 6))
    y = (X[:, 0] + X[:, 1] > 1.0).astype(int)
    net = NeuralNet([8, 1]).fit(X[:150], y[:150], learning_rate=3.0, n_iterations=500,
                                log_every=50)
    assert net.costs_[-1] < net.costs_[0]
    assert net.score(X[:150], y[:150]) > 0.9
    assert net.score(X[150:], y[150:]) > 0.9


def test_fitting_twice_gives_identical_costs(separable):
    X, y = separable
    net = NeuralNet([5, 1])
    first = net.fit(X, y, n_iterations=20, log_every=1).costs_
    weights = [p.value.copy() for p in net.model_.parameters()]
    second = net.fit(X, y, n_iterations=20, log_every=1).costs_
    assert first == second
    for before, after in zip(weights, net.model_.parameters(), strict=True):
        np.testing.assert_array_equal(before, after.value)
    assert NeuralNet([5, 1]).fit(X, y, n_iterations=20, log_every=1).costs_ == first


def test_seed_changes_the_initial_weights(separable):
    X, y = separable
    first = NeuralNet([5, 1], seed=0).fit(X, y, n_iterations=1).costs_
    second = NeuralNet([5, 1], seed=1).fit(X, y, n_iterations=1).costs_
    assert first != second


def test_does_not_touch_the_global_random_state(separable):
    X, y = separable
    # The tutorial called np.random.seed(42); this class must leave the global state alone,
    # which only the legacy global API can observe.
    before = np.random.get_state(legacy=False)  # noqa: NPY002
    NeuralNet([5, 1]).fit(X, y, n_iterations=2)
    after = np.random.get_state(legacy=False)  # noqa: NPY002
    assert after["state"]["pos"] == before["state"]["pos"]
    np.testing.assert_array_equal(after["state"]["key"], before["state"]["key"])


@pytest.mark.parametrize(
    ("n_iterations", "log_every", "logged"),
    [
        (25, 10, [0, 10, 20, 24]),
        (21, 10, [0, 10, 20]),  # the last iteration is a multiple: logged once
        (5, 1, [0, 1, 2, 3, 4]),
        (3, 100, [0, 2]),
        (1, 100, [0]),
        (0, 10, []),
    ],
)
@pytest.mark.filterwarnings("ignore:training with 0 epochs")  # n_iterations=0: said elsewhere
def test_cost_logged_at_multiples_of_log_every_and_the_last(separable, n_iterations, log_every,
                                                            logged):
    X, y = separable
    net = NeuralNet([3, 1]).fit(X, y, n_iterations=n_iterations, log_every=log_every)
    assert [iteration for iteration, _ in net.cost_history_] == logged
    every = NeuralNet([3, 1]).fit(X, y, n_iterations=n_iterations, log_every=1).costs_
    assert net.costs_ == [every[i] for i in logged]


def test_callback_sees_every_iteration(separable):
    X, y = separable
    seen = []
    net = NeuralNet([3, 1]).fit(X, y, n_iterations=7, log_every=3,
                                callback=lambda i, cost: seen.append((i, cost)))
    assert [i for i, _ in seen] == list(range(7))
    assert [cost for i, cost in seen if i in (0, 3, 6)] == net.costs_


def test_float32_is_close_to_float64(separable):
    X, y = separable
    single = NeuralNet([5, 1], dtype=np.float32).fit(X, y, n_iterations=20, log_every=1)
    double = NeuralNet([5, 1]).fit(X, y, n_iterations=20, log_every=1)
    assert all(p.dtype == np.float32 for p in single.model_.parameters())
    np.testing.assert_allclose(single.costs_, double.costs_, rtol=1e-5)
    assert single.predict_proba(X).dtype == np.float32


@pytest.mark.parametrize(
    ("layer_sizes", "kwargs", "error", "match"),
    [
        ([], {}, ValueError, r"layer_sizes must name at least the output layer"),
        ([3, 2], {}, ValueError, r"the last layer size must be 1 .* got 2"),
        ([0, 1], {}, ValueError, r"layer_sizes must be >= 1, got 0"),
        ([3.5, 1], {}, TypeError, r"layer_sizes must be an integer"),
        ([3, 1], {"seed": -1}, ValueError, r"seed must be >= 0"),
        ([3, 1], {"dtype": np.int32}, ValueError, r"dtype must be float32 or float64"),
    ],
)
def test_constructor_validation(layer_sizes, kwargs, error, match):
    with pytest.raises(error, match=match):
        NeuralNet(layer_sizes, **kwargs)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"y": np.array([0, 1, 2] * 20)}, ValueError, r"y must hold 0/1 labels, got values "
                                                       r"\[0, 1, 2\]"),
        ({"y": np.array([-1, 1] * 30)}, ValueError, r"y must hold 0/1 labels"),
        ({"y": np.zeros(59)}, ValueError, r"y must have shape \(60,\) to match X, got \(59,\)"),
        ({"y": np.zeros((60, 1))}, ValueError, r"y must have shape \(60,\)"),
        ({"X": np.zeros(60)}, ValueError, r"X must be 2-D"),
        ({"learning_rate": -0.1}, ValueError, r"learning_rate must be >= 0\.0"),
        ({"n_iterations": -1}, ValueError, r"n_iterations must be >= 0"),
        ({"log_every": 0}, ValueError, r"log_every must be >= 1"),
    ],
)
def test_fit_validation(change, error, match, rng):
    arguments = {"X": rng.random((60, 4)), "y": np.array([0, 1] * 30), "n_iterations": 2,
                 **change}
    with pytest.raises(error, match=match):
        NeuralNet([3, 1]).fit(**arguments)


def test_predict_before_fit_raises():
    with pytest.raises(RuntimeError, match=r"This NeuralNet is not fitted yet"):
        NeuralNet([3, 1]).predict(np.zeros((2, 4)))


def test_predict_with_the_wrong_width_raises(separable):
    X, y = separable
    net = NeuralNet([3, 1]).fit(X, y, n_iterations=1)
    with pytest.raises(ValueError, match=r"X has 5 features, but the model expects 4"):
        net.predict(np.zeros((2, 5)))


def test_a_diverging_run_names_the_iteration_and_the_fix(separable):
    X, y = separable
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(
        TrainingDivergedError,
        match=r"became .* at iteration \d+\. The weights from before that step are restored\. "
              r"Try a lower learning_rate \(now 1e\+308\)",
    ):
        NeuralNet([3, 1]).fit(X * 1e3, y, learning_rate=1e308, n_iterations=20)


def test_score_length_mismatch_raises(separable):
    X, y = separable
    net = NeuralNet([3, 1]).fit(X, y, n_iterations=1)
    with pytest.raises(ValueError, match=r"X has 80 rows but y has 3 labels"):
        net.score(X, y[:3])


def test_the_reference_figures_travel_with_the_tests():
    reference = json.loads(REFERENCE.read_text())
    assert len(reference["cost"]) == 1000 and all(0 < cost < 1 for cost in reference["cost"])
    assert (reference["train_size"], reference["test_size"]) == (12700, 2167)
    assert (reference["train_correct"], reference["test_correct"]) == (12557, 2151)


@pytest.fixture(scope="module")
def tutorial_run(mnist_dir):
    """The tutorial's full recipe on the real MNIST, trained once for the tests below (~2 min).

    Every product is computed in the plain ``direct`` layout (``x @ W``), so this run is also the
    ``direct`` case of ``test_kernels.py``'s tutorial counts in every layout, which forces only
    the others: each full run costs minutes of CI.
    """
    from nnscratch.data import load_digits
    from nnscratch.nn._kernels import set_matmul_layout

    data = load_digits((1, 2), data_dir=mnist_dir, dtype=np.float64, progress=False)
    previous = set_matmul_layout("direct")
    try:
        net = NeuralNet([196, 1]).fit(data.X_train, data.y_train, learning_rate=0.1,
                                      n_iterations=1000, log_every=1)
    finally:
        set_matmul_layout(previous)
    return json.loads(REFERENCE.read_text()), data, net


@pytest.mark.slow
def test_real_mnist_all_1000_costs_match_the_tutorial(tutorial_run):
    reference, data, net = tutorial_run
    assert data.train_size == reference["train_size"]
    assert np.bincount(data.y_train).tolist() == reference["train_label_counts"]
    assert [iteration for iteration, _ in net.cost_history_] == list(range(1000))
    np.testing.assert_allclose(net.costs_, reference["cost"], rtol=1e-6)


@pytest.mark.slow
def test_real_mnist_accuracy_counts_match_the_tutorial_exactly(tutorial_run):
    reference, data, net = tutorial_run
    train_correct = int(np.count_nonzero(net.predict(data.X_train) == data.y_train))
    test_correct = int(np.count_nonzero(net.predict(data.X_test) == data.y_test))
    assert (train_correct, test_correct) == (reference["train_correct"], reference["test_correct"])
    assert data.test_size == reference["test_size"]
    assert np.bincount(data.y_test).tolist() == reference["test_label_counts"]


@pytest.mark.slow
def test_real_mnist_float32_counts_within_one_test_example(tutorial_run, mnist_dir):
    """float32 is the fast path: same recipe, at most one test example classified differently."""
    from nnscratch.data import load_digits

    reference, _, _ = tutorial_run
    data = load_digits((1, 2), data_dir=mnist_dir, dtype=np.float32, progress=False)
    net = NeuralNet([196, 1], dtype=np.float32).fit(data.X_train, data.y_train,
                                                    learning_rate=0.1, n_iterations=1000)
    assert net.model_.dtype == np.float32
    test_correct = int(np.count_nonzero(net.predict(data.X_test) == data.y_test))
    assert abs(test_correct - reference["test_correct"]) <= 1
    np.testing.assert_allclose(net.costs_[-1], reference["cost"][-1], rtol=1e-3)
