"""Tests for nnscratch.nn._kernels: each speed trick equals the plain expression it names.

The convolution and pooling kernels are compared with the nested sums of their docstrings,
written here as deliberately plain Python loops over every index.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from _numerics import assert_close
from nnscratch.nn._kernels import (
    adam_update,
    avg_pool2d,
    avg_pool2d_backward,
    channels_first,
    conv2d,
    conv2d_grad_input,
    conv2d_grad_weight,
    im2col,
    max_pool2d,
    max_pool2d_backward,
    sigmoid,
    sigmoid_backward,
    times_transpose,
)

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



# ---------------------------------------------------------------------------------------------
# Convolution and pooling against plain loops

# (n, in_channels, out_channels, height, width, kernel, stride, padding): odd sizes, stride 2,
# padding 1 and 2, non-square kernels and strides, a padding larger than kernel - 1 (a crop in
# the input gradient) and rows the last window never reaches.
CONV_CASES = [
    (2, 2, 3, 5, 7, (3, 3), (1, 1), (1, 1)),
    (2, 3, 2, 7, 6, (3, 2), (2, 2), (2, 2)),
    (1, 2, 2, 6, 5, (2, 3), (2, 1), (1, 2)),
    (2, 1, 2, 5, 5, (1, 1), (2, 2), (2, 2)),
    (1, 2, 3, 9, 8, (5, 4), (3, 2), (0, 1)),
    (3, 1, 1, 4, 4, (4, 4), (1, 1), (0, 0)),
]
CONV_IDS = ["3x3-pad1", "3x2-stride2-pad2", "2x3-stride21-pad12", "1x1-pad2-crop",
            "5x4-stride32-rest", "whole-image"]


def _padded(x, padding):
    ph, pw = padding
    out = np.zeros((x.shape[0], x.shape[1], x.shape[2] + 2 * ph, x.shape[3] + 2 * pw), x.dtype)
    out[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]] = x
    return out


def _out_size(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


def _loop_conv(x, W, b, stride, padding):
    """y[n, o, i, j] = b[o] + sum over c, p, q of W[o, c, p, q] x_padded[n, c, i s + p, j s + q]."""
    n, c_in, height, width = x.shape
    c_out, _, kh, kw = W.shape
    xp = _padded(x, padding)
    out_h = _out_size(height, kh, stride[0], padding[0])
    out_w = _out_size(width, kw, stride[1], padding[1])
    y = np.zeros((n, c_out, out_h, out_w), x.dtype)
    for ni in range(n):
        for o in range(c_out):
            for i in range(out_h):
                for j in range(out_w):
                    total = b[o]
                    for c in range(c_in):
                        for p in range(kh):
                            for q in range(kw):
                                total += W[o, c, p, q] * xp[ni, c, i * stride[0] + p,
                                                            j * stride[1] + q]
                    y[ni, o, i, j] = total
    return y


def _loop_conv_grads(x, W, G, stride, padding):
    """dW and dx by adding each product's share where the forward pass read it."""
    n, c_in, height, width = x.shape
    c_out, _, kh, kw = W.shape
    xp = _padded(x, padding)
    dW = np.zeros_like(W)
    dxp = np.zeros_like(xp)
    for ni in range(n):
        for o in range(c_out):
            for i in range(G.shape[2]):
                for j in range(G.shape[3]):
                    for c in range(c_in):
                        for p in range(kh):
                            for q in range(kw):
                                row, col = i * stride[0] + p, j * stride[1] + q
                                dW[o, c, p, q] += G[ni, o, i, j] * xp[ni, c, row, col]
                                dxp[ni, c, row, col] += G[ni, o, i, j] * W[o, c, p, q]
    ph, pw = padding
    return dW, dxp[:, :, ph:ph + height, pw:pw + width]


def _conv_arrays(rng, case, dtype=np.float64):
    n, c_in, c_out, height, width, kernel, stride, padding = case
    x = rng.standard_normal((n, c_in, height, width)).astype(dtype)
    W = rng.standard_normal((c_out, c_in, *kernel)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    out_h = _out_size(height, kernel[0], stride[0], padding[0])
    out_w = _out_size(width, kernel[1], stride[1], padding[1])
    G = rng.standard_normal((n, c_out, out_h, out_w)).astype(dtype)
    return x, W, b, G, stride, padding


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_im2col_is_the_nested_copy(rng, case):
    x, W, _, _, stride, padding = _conv_arrays(rng, case)
    xp = _padded(x, padding)
    kh, kw = W.shape[2:]
    cols = im2col(xp, (kh, kw), stride)
    n, c = x.shape[:2]
    out_h = (xp.shape[2] - kh) // stride[0] + 1
    out_w = (xp.shape[3] - kw) // stride[1] + 1
    expected = np.empty((c * kh * kw, n * out_h * out_w))
    for ci in range(c):
        for p in range(kh):
            for q in range(kw):
                for ni in range(n):
                    for i in range(out_h):
                        for j in range(out_w):
                            expected[(ci * kh + p) * kw + q, (ni * out_h + i) * out_w + j] = \
                                xp[ni, ci, i * stride[0] + p, j * stride[1] + q]
    np.testing.assert_array_equal(cols, expected)  # a copy: exact


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_is_the_nested_sum(rng, case):
    x, W, b, _, stride, padding = _conv_arrays(rng, case)
    y, _ = conv2d(x, W, b, stride, padding)
    assert y.flags.c_contiguous
    assert_close(y, _loop_conv(x, W, b, stride, padding))


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_gradients_are_the_nested_sums(rng, case):
    x, W, b, G, stride, padding = _conv_arrays(rng, case)
    _, cols = conv2d(x, W, b, stride, padding)
    grad_cf = channels_first(G)
    dW, dx = _loop_conv_grads(x, W, G, stride, padding)
    assert_close(conv2d_grad_weight(cols, grad_cf).reshape(W.shape), dW)
    grad_input = conv2d_grad_input(grad_cf, W, x.shape, stride, padding)
    assert grad_input.shape == x.shape and grad_input.flags.c_contiguous
    assert_close(grad_input, dx)


@pytest.mark.parametrize("case", CONV_CASES[:3], ids=CONV_IDS[:3])
def test_conv2d_float32_agrees_with_float64(rng, case):
    x, W, b, G, stride, padding = _conv_arrays(rng, case)
    y64, cols64 = conv2d(x, W, b, stride, padding)
    as32 = [a.astype(np.float32) for a in (x, W, b, G)]
    y32, cols32 = conv2d(*as32[:3], stride, padding)
    assert y32.dtype == np.float32
    assert_close(y32, y64.astype(np.float32))
    dx64 = conv2d_grad_input(channels_first(G), W, x.shape, stride, padding)
    dx32 = conv2d_grad_input(channels_first(as32[3]), as32[1], x.shape, stride, padding)
    assert dx32.dtype == np.float32
    assert_close(dx32, dx64.astype(np.float32))
    dW32 = conv2d_grad_weight(cols32, channels_first(as32[3]))
    assert_close(dW32, conv2d_grad_weight(cols64, channels_first(G)).astype(np.float32))


# (height, width, kernel, stride): tiled windows (kernel == stride), tiled with rows to crop,
# overlapping and non-square ones.
POOL_CASES = [(6, 8, (2, 2), (2, 2)), (7, 5, (2, 2), (2, 2)), (7, 9, (3, 3), (2, 2)),
              (6, 7, (2, 3), (1, 2)), (5, 5, (3, 2), (3, 2))]
POOL_IDS = ["tiled", "tiled-crop", "overlapping", "non-square", "tiled-non-square-crop"]


def _pool_windows(x, kernel, stride):
    """Every window as a list of ((p, q), value), in row-major order, by output index."""
    kh, kw = kernel
    out_h = (x.shape[2] - kh) // stride[0] + 1
    out_w = (x.shape[3] - kw) // stride[1] + 1
    for ni in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(out_h):
                for j in range(out_w):
                    window = [((p, q), x[ni, c, i * stride[0] + p, j * stride[1] + q])
                              for p in range(kh) for q in range(kw)]
                    yield (ni, c, i, j), window


def _pool_input(rng, height, width):
    x = rng.standard_normal((2, 3, height, width))
    x[0, 0, :3, :3] = 0.0  # ties: the gradient goes to the first maximum
    return x


@pytest.mark.parametrize(("height", "width", "kernel", "stride"), POOL_CASES, ids=POOL_IDS)
def test_max_pool2d_is_the_window_maximum(rng, height, width, kernel, stride):
    x = _pool_input(rng, height, width)
    y, argmax = max_pool2d(x, kernel, stride)
    G = rng.standard_normal(y.shape)
    expected_dx = np.zeros_like(x)
    for (ni, c, i, j), window in _pool_windows(x, kernel, stride):
        values = [value for _, value in window]
        first = values.index(max(values))
        assert y[ni, c, i, j] == values[first]
        assert argmax[ni, c, i, j] == first
        p, q = window[first][0]
        expected_dx[ni, c, i * stride[0] + p, j * stride[1] + q] += G[ni, c, i, j]
    grad_input = max_pool2d_backward(G, argmax, x.shape, kernel, stride)
    assert grad_input.shape == x.shape
    assert_close(grad_input, expected_dx)


@pytest.mark.parametrize(("height", "width", "kernel", "stride"), POOL_CASES, ids=POOL_IDS)
def test_avg_pool2d_is_the_window_mean(rng, height, width, kernel, stride):
    x = _pool_input(rng, height, width)
    y = avg_pool2d(x, kernel, stride)
    G = rng.standard_normal(y.shape)
    size = kernel[0] * kernel[1]
    expected_dx = np.zeros_like(x)
    for (ni, c, i, j), window in _pool_windows(x, kernel, stride):
        assert_close(y[ni, c, i, j], sum(value for _, value in window) / size)
        for (p, q), _ in window:
            expected_dx[ni, c, i * stride[0] + p, j * stride[1] + q] += G[ni, c, i, j] / size
    grad_input = avg_pool2d_backward(G, x.shape, kernel, stride)
    assert grad_input.shape == x.shape
    assert_close(grad_input, expected_dx)


@pytest.mark.parametrize(("kernel", "stride"), [((2, 2), (2, 2)), ((3, 3), (2, 2))])
def test_pool_kernels_keep_float32(rng, kernel, stride):
    x = rng.standard_normal((2, 2, 7, 7)).astype(np.float32)
    y, argmax = max_pool2d(x, kernel, stride)
    G = np.ones_like(y)
    assert y.dtype == np.float32
    assert max_pool2d_backward(G, argmax, x.shape, kernel, stride).dtype == np.float32
    assert avg_pool2d(x, kernel, stride).dtype == np.float32
    assert avg_pool2d_backward(G, x.shape, kernel, stride).dtype == np.float32
