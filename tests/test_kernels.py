"""Tests for nnscratch.nn._kernels: each speed trick equals the plain expression it names."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from _numerics import assert_close
from nnscratch.nn._kernels import adam_update, sigmoid, sigmoid_backward, times_transpose

DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_is_one_over_one_plus_exp_minus_x(rng, dtype):
    x = (rng.standard_normal((50, 7)) * 10).astype(dtype)
    with np.errstate(over="ignore"):
        plain = 1 / (1 + np.exp(-x))
    y = sigmoid(x)
    assert y.dtype == dtype and y is not x
    assert_close(y, plain)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_saturates_without_warnings(dtype):
    x = np.array([-1e4, -800.0, -100.0, 0.0, 100.0, 800.0, 1e4], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy's default error handling: no overflow warning
        y = sigmoid(x)
    np.testing.assert_array_equal(y[[0, 1, 3, 5, 6]], np.array([0, 0, 0.5, 1, 1], dtype=dtype))
    assert 0 <= y[2] < 1e-40 and y[4] == 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_backward_is_grad_times_y_times_one_minus_y(rng, dtype):
    y = rng.random((40, 9)).astype(dtype)
    grad_output = rng.standard_normal((40, 9)).astype(dtype)
    result = sigmoid_backward(grad_output, y)
    assert result.dtype == dtype
    assert_close(result, grad_output * y * (1 - y))
    assert result is not grad_output and result is not y


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out_features", [1, 2, 5])
def test_times_transpose_is_the_product_with_the_transpose(rng, dtype, out_features):
    grad_output = rng.standard_normal((33, out_features)).astype(dtype)
    W = rng.standard_normal((7, out_features)).astype(dtype)
    result = times_transpose(grad_output, W)
    assert result.shape == (33, 7) and result.dtype == dtype
    assert_close(result, grad_output @ W.T)


def _plain_adam(value, grad, m, v, *, learning_rate, beta1, beta2, eps, t):
    """adam_update's docstring, line by line, on copies."""
    value, m, v = value.copy(), m.copy(), v.copy()
    m[...] = beta1 * m + (1 - beta1) * grad
    v[...] = beta2 * v + (1 - beta2) * grad**2
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    value -= learning_rate * m_hat / (np.sqrt(v_hat) + eps)
    return value, m, v


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("settings", [
    {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
    {"learning_rate": 0.5, "beta1": 0.0, "beta2": 0.5, "eps": 1e-3},
    {"learning_rate": 0.0, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
])
def test_adam_update_is_the_plain_adam_step(rng, dtype, settings):
    value = rng.standard_normal((7, 5)).astype(dtype)
    m, v = np.zeros_like(value), np.zeros_like(value)
    expected = (value.copy(), m.copy(), v.copy())
    for t in range(1, 6):
        grad = rng.standard_normal(value.shape).astype(dtype)
        expected = _plain_adam(*expected[:1], grad, *expected[1:], t=t, **settings)
        adam_update(value, grad, m, v, np.empty_like(value), t=t, **settings)
        for actual, wanted in zip((value, m, v), expected, strict=True):
            assert actual.dtype == dtype
            assert_close(actual, wanted)


def test_adam_update_works_in_place_and_leaves_the_gradient(rng):
    value, grad = rng.standard_normal(4), rng.standard_normal(4)
    m, v, scratch = np.zeros(4), np.zeros(4), np.empty(4)
    value_before, grad_before = value.copy(), grad.copy()
    adam_update(value, grad, m, v, scratch, learning_rate=0.1, beta1=0.9, beta2=0.999,
                eps=1e-8, t=1)
    np.testing.assert_array_equal(grad, grad_before)
    # The first step moves every weight against its gradient by the learning rate, to within
    # eps: m_hat / sqrt(v_hat) is exactly +-1 when t = 1.
    assert_close(value_before - value, 0.1 * np.sign(grad), rtol=1e-6)
