"""Tests for nnscratch._kernels: each speed trick equals the plain expression in its docstring."""

from __future__ import annotations

import numpy as np
import pytest

from _numerics import assert_close
from nnscratch._kernels import adam_update

DTYPES = [np.float32, np.float64]


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
