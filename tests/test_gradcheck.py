"""Tests for nnscratch.nn.gradcheck: it must pass right gradients and catch wrong ones."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch.nn.activations import Sigmoid, Tanh
from nnscratch.nn.gradcheck import (
    GradcheckReport,
    check_layer,
    check_loss,
    check_model,
    numerical_gradient,
    relative_error,
)
from nnscratch.nn.layers import Dense
from nnscratch.nn.losses import SoftmaxCrossEntropy
from nnscratch.nn.model import Sequential


class _WeightGradTwiceTooLarge(Dense):
    """A deliberately broken Dense: its weight gradient is doubled."""

    def backward(self, grad_output):
        grad_input = super().backward(grad_output)
        self.W.grad *= 2
        return grad_input


class _InputGradTransposedWeights(Dense):
    """A deliberately broken Dense: multiplies by W's rows in the wrong order."""

    def backward(self, grad_output):
        super().backward(grad_output)
        return grad_output @ self.W.value[::-1].T


class _SigmoidWithoutChainRule(Sigmoid):
    """A deliberately broken activation: forgets to multiply by the incoming gradient."""

    def backward(self, grad_output):
        super().backward(grad_output)
        return self._y * (1 - self._y)


class _LossWithoutMean(SoftmaxCrossEntropy):
    """A deliberately broken loss: its gradient is not divided by the batch size."""

    def backward(self):
        return super().backward() * 5


def test_numerical_gradient_of_a_known_function():
    a = np.array([[1.0, -2.0], [0.5, 3.0]])
    grad = numerical_gradient(lambda: float(np.sum(a**3)), a)
    np.testing.assert_allclose(grad, 3 * a**2, rtol=1e-8)
    np.testing.assert_array_equal(a, [[1.0, -2.0], [0.5, 3.0]])  # restored after perturbing
    assert grad.dtype == np.float64


def test_a_right_layer_passes(rng):
    layer = Dense(4, 3, rng=0, dtype=np.float64)
    report = check_layer(layer, rng.standard_normal((5, 4)), rng=rng)
    assert report.passed()
    assert report.max_error < 1e-7


def test_a_wrong_weight_gradient_is_caught(rng):
    layer = _WeightGradTwiceTooLarge(4, 3, rng=0, dtype=np.float64)
    report = check_layer(layer, rng.standard_normal((5, 4)), rng=rng)
    # |2g - g| / |2g| = 1/2 exactly.
    assert report.errors["0.W"] == pytest.approx(0.5, rel=1e-6)
    assert report.errors["input"] < 1e-7 and report.errors["1.b"] < 1e-7
    assert not report.passed()
    assert report.max_error == report.errors["0.W"]


def test_a_wrong_input_gradient_is_caught(rng):
    layer = _InputGradTransposedWeights(4, 3, rng=0, dtype=np.float64)
    report = check_layer(layer, rng.standard_normal((5, 4)), rng=rng)
    assert report.errors["input"] > 0.1
    assert report.errors["0.W"] < 1e-7


def test_a_missing_chain_rule_is_caught(rng):
    report = check_layer(_SigmoidWithoutChainRule(), rng.standard_normal((5, 4)), rng=rng)
    assert report.errors["input"] > 0.1


def test_a_wrong_loss_gradient_is_caught(rng):
    report = check_loss(_LossWithoutMean(), rng.standard_normal((6, 3)), rng.integers(0, 3, 6))
    assert report.errors == {"logits": pytest.approx(0.8, rel=1e-6)}  # |5g - g| / |5g|
    assert not report.passed()


def test_a_wrong_layer_inside_a_model_is_caught(rng):
    model = Sequential([Dense(3, 4, rng=0, dtype=np.float64), Tanh(),
                        _WeightGradTwiceTooLarge(4, 2, rng=1, dtype=np.float64)])
    report = check_model(model, SoftmaxCrossEntropy(), rng.standard_normal((5, 3)),
                         rng.integers(0, 2, 5))
    assert report.errors["2.W"] == pytest.approx(0.5, rel=1e-6)
    assert max(error for name, error in report.errors.items() if name != "2.W") < 1e-7


def test_model_report_names_every_parameter(rng):
    model = Sequential([Dense(3, 4, rng=0, dtype=np.float64), Tanh(),
                        Dense(4, 2, rng=1, dtype=np.float64)])
    report = check_model(model, SoftmaxCrossEntropy(), rng.standard_normal((5, 3)),
                         rng.integers(0, 2, 5))
    assert list(report.errors) == ["input", "0.W", "1.b", "2.W", "3.b"]
    assert report.passed()


@pytest.mark.parametrize(
    ("analytic", "numeric", "expected"),
    [
        ([0.0, 0.0], [0.0, 0.0], 0.0),  # both zero: no error, not 0/0
        ([1.0, 2.0], [1.0, 2.0], 0.0),
        ([1.0, 0.0], [0.0, 0.0], 1.0),  # one side zero: the worst "relative" error is 1
        ([0.0, 0.0], [0.0, 3.0], 1.0),
        ([1.0, 2.0], [-1.0, -2.0], 2.0),  # opposite directions
        ([3.0, 4.0], [3.0, 4.5], 0.5 / np.hypot(3.0, 4.5)),
        ([1e-20], [1.1e-20], 0.1 / 1.1),  # scale-free: tiny gradients are judged relatively
    ],
)
def test_relative_error(analytic, numeric, expected):
    value = relative_error(np.array(analytic), np.array(numeric))
    assert isinstance(value, float)
    assert value == pytest.approx(expected, rel=1e-12)


def test_relative_error_is_symmetric(rng):
    a, b = rng.standard_normal(5), rng.standard_normal(5)
    assert relative_error(a, b) == relative_error(b, a)


def test_report():
    report = GradcheckReport({"input": 1e-9, "0.W": 3e-8})
    assert report.max_error == 3e-8
    assert report.passed() and not report.passed(tolerance=1e-8)
    assert str(report) == "input  1.00e-09\n0.W    3.00e-08"
    assert GradcheckReport().max_error == 0.0


@pytest.mark.parametrize("where", ["input", "weights"])
def test_layer_check_needs_float64(where, rng):
    dtype = np.float32 if where == "weights" else np.float64
    layer = Dense(3, 2, rng=0, dtype=dtype)
    x = rng.standard_normal((4, 3)).astype(np.float32 if where == "input" else np.float64)
    with pytest.raises(TypeError, match=r"gradient checks need float64 arrays, got float32"):
        check_layer(layer, x)


def test_loss_check_needs_float64(rng):
    with pytest.raises(TypeError, match=r"need float64 arrays, got float32"):
        check_loss(SoftmaxCrossEntropy(), rng.standard_normal((3, 2)).astype(np.float32),
                   np.array([0, 1, 0]))


def test_model_check_needs_float64(rng):
    model = Sequential([Dense(3, 2, rng=0)])  # float32 weights
    with pytest.raises(TypeError, match=r"build the layer with dtype=np\.float64"):
        check_model(model, SoftmaxCrossEntropy(), rng.standard_normal((4, 3)),
                    np.array([0, 1, 0, 1]))


def test_check_layer_does_not_change_the_layer(rng):
    layer = Dense(3, 2, rng=0, dtype=np.float64)
    before = layer.W.value.copy()
    x = rng.standard_normal((4, 3))
    x_before = x.copy()
    check_layer(layer, x, rng=rng)
    np.testing.assert_array_equal(layer.W.value, before)
    np.testing.assert_array_equal(x, x_before)
