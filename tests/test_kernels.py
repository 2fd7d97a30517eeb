"""Tests for nnscratch.nn._kernels: each speed trick equals the plain expression it names.

The convolution and pooling kernels are compared with the nested sums of their docstrings,
written here as deliberately plain Python loops over every index.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from _numerics import assert_close
from nnscratch.nn import _kernels
from nnscratch.nn._kernels import (
    MATMUL_LAYOUT_ENV,
    MATMUL_LAYOUTS,
    MATMUL_TUNE_MIN,
    adam_update,
    affine,
    avg_pool2d,
    avg_pool2d_backward,
    channel_dot,
    channels_first,
    clear_matmul_layouts,
    conv2d,
    conv2d_grad_input,
    conv2d_grad_weight,
    im2col,
    matmul,
    matmul_layouts,
    max_pool2d,
    max_pool2d_backward,
    set_matmul_layout,
    sigmoid,
    sigmoid_backward,
    times_transpose,
    transpose_times,
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
@pytest.mark.parametrize("like_order", [None, "C", "F"])
def test_times_transpose_is_the_product_with_the_transpose(rng, dtype, out_features,
                                                           like_order):
    grad_output = rng.standard_normal((33, out_features)).astype(dtype)
    W = rng.standard_normal((7, out_features)).astype(dtype)
    like = None if like_order is None else np.zeros((33, 7), dtype=dtype, order=like_order)
    result = times_transpose(grad_output, W, like=like)
    assert result.shape == (33, 7) and result.dtype == dtype
    assert_close(result, grad_output @ W.T)
    if like_order == "C":
        assert result.flags.c_contiguous
    if like_order == "F":
        assert result.flags.f_contiguous


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
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7, 3), (5, 3, 4, 6), (1, 1, 1, 1)])
def test_channel_dot_is_the_per_channel_sum_of_products(rng, shape, dtype):
    a = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    b = rng.standard_normal(shape).astype(dtype)
    axes = (0,) if len(shape) == 2 else (0, 2, 3)
    result = channel_dot(a, b)
    assert result.shape == (shape[1],) and result.dtype == dtype
    assert_close(result, np.sum(a * b, axis=axes))
    transposed = np.ascontiguousarray(a.swapaxes(0, 1)).swapaxes(0, 1)  # another memory order
    assert_close(channel_dot(transposed, b), np.sum(a * b, axis=axes))


# -- matrix products in the fastest layout ---------------------------------------------------
LAYOUT_SETTINGS = ["auto", *MATMUL_LAYOUTS]


@pytest.fixture
def fresh_layouts():
    """Every product timed afresh, and the layout setting restored afterwards."""
    previous = set_matmul_layout("auto")
    clear_matmul_layouts()
    yield
    clear_matmul_layouts()
    set_matmul_layout(previous)


@pytest.fixture(params=LAYOUT_SETTINGS)
def layout(request, fresh_layouts):
    """Each layout forced in turn, and ``auto`` (timing chooses)."""
    set_matmul_layout(request.param)
    return request.param


def _operand(rng, shape, dtype, stored_transposed):
    """An array of ``shape``, either C-ordered or the transposed view of a C-ordered array."""
    if stored_transposed:
        return np.ascontiguousarray(rng.standard_normal(shape[::-1]).astype(dtype)).T
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("a_transposed", [False, True])
@pytest.mark.parametrize("b_transposed", [False, True])
@pytest.mark.parametrize("order", [None, "C", "F"])
# (7, 5, 3) is far below the timing threshold; (80, 64, 70) is above it, so "auto" times it.
@pytest.mark.parametrize(("m", "k", "n"), [(7, 5, 3), (80, 64, 70), (64, 96, 1)])
def test_matmul_is_the_matrix_product_in_every_layout(rng, layout, dtype, a_transposed,
                                                      b_transposed, order, m, k, n):
    a = _operand(rng, (m, k), dtype, a_transposed)
    b = _operand(rng, (k, n), dtype, b_transposed)
    result = matmul(a, b, order=order)
    assert result.shape == (m, n) and result.dtype == dtype
    assert_close(result, a @ b)
    if order == "C":
        assert result.flags.c_contiguous
    if order == "F":
        assert result.flags.f_contiguous


def test_matmul_forced_layouts_store_the_result_as_named(rng, fresh_layouts):
    a, b = rng.standard_normal((9, 4)), rng.standard_normal((4, 6))
    set_matmul_layout("direct")
    assert matmul(a, b).flags.c_contiguous
    set_matmul_layout("transposed")
    assert matmul(a, b).flags.f_contiguous
    assert matmul(a, b, order="C").flags.c_contiguous


def test_matmul_times_a_shape_once_and_keeps_its_choice(rng, fresh_layouts):
    a, b = rng.standard_normal((80, 64)), rng.standard_normal((64, 70))
    assert 80 * 64 * 70 >= MATMUL_TUNE_MIN
    first = matmul(a, b)
    (choice,) = matmul_layouts()
    assert choice["layout"] in MATMUL_LAYOUTS
    assert (choice["a"], choice["b"], choice["dtype"]) == ([80, 64], [64, 70], "float64")
    assert (choice["a_order"], choice["b_order"], choice["order"]) == ("C", "C", None)
    assert set(choice["seconds"]) == set(MATMUL_LAYOUTS)
    assert all(0 < seconds < 10 for seconds in choice["seconds"].values())
    # The first call already returns the chosen layout's result: every later call, and the
    # chosen layout forced, give the same bits.
    np.testing.assert_array_equal(matmul(a, b), first)
    set_matmul_layout(choice["layout"])
    np.testing.assert_array_equal(matmul(a, b), first)
    assert len(matmul_layouts()) == 1


def test_matmul_times_each_key_separately(rng, fresh_layouts):
    a, b = rng.standard_normal((80, 64)), rng.standard_normal((64, 70))
    matmul(a, b)
    matmul(a, b, order="C")
    matmul(np.asfortranarray(a), b)
    matmul(a.astype(np.float32), b.astype(np.float32))
    keys = [(c["a_order"], c["order"], c["dtype"]) for c in matmul_layouts()]
    assert keys == [("C", None, "float64"), ("C", "C", "float64"), ("F", None, "float64"),
                    ("C", None, "float32")]


def test_matmul_small_and_non_2d_products_are_not_timed(rng, fresh_layouts):
    matmul(rng.standard_normal((8, 8)), rng.standard_normal((8, 8)))
    batched, W = rng.standard_normal((3, 80, 64)), rng.standard_normal((64, 70))
    assert_close(matmul(batched, W), batched @ W)
    assert matmul_layouts() == []


def test_matmul_threads_share_one_choice(rng, fresh_layouts):
    a, b = rng.standard_normal((96, 64)), rng.standard_normal((64, 80))
    barrier = threading.Barrier(8)

    def product(_):
        barrier.wait()
        return matmul(a, b)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(product, range(8)))
    assert len(matmul_layouts()) == 1
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])


def test_seeded_training_is_deterministic_in_a_process_while_layouts_are_chosen(fresh_layouts):
    from nnscratch.nn.losses import SoftmaxCrossEntropy
    from nnscratch.nn.model import build_mlp
    from nnscratch.nn.optimizers import Adam
    from nnscratch.nn.training import fit

    data = np.random.default_rng(0)
    X = data.random((300, 64))
    y = data.integers(0, 5, 300)

    def train():
        model = build_mlp(64, [96, 80], 5, activation="relu", rng=0, dtype=np.float64)
        fit(model, X, y, loss=SoftmaxCrossEntropy(), optimizer=Adam(model.parameters(), 1e-2),
            epochs=2, batch_size=100, seed=0, verbose=0)
        return [p.value.copy() for p in model.parameters()]

    first = train()  # its first batch chooses the layouts of all of its products
    assert len(matmul_layouts()) >= 5
    for again, before in zip(train(), first, strict=True):
        np.testing.assert_array_equal(again, before)


def test_set_matmul_layout_returns_the_previous_setting(fresh_layouts):
    assert set_matmul_layout("transposed") == "auto"
    assert set_matmul_layout("direct") == "transposed"
    assert set_matmul_layout("auto") == "direct"


def test_set_matmul_layout_rejects_an_unknown_layout(fresh_layouts):
    with pytest.raises(ValueError, match=r"layout must be one of \['auto', 'direct'"):
        set_matmul_layout("fastest")


def _forced_layout_in_a_fresh_process(value):
    code = "from nnscratch.nn import _kernels; print(_kernels.set_matmul_layout('auto'))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, MATMUL_LAYOUT_ENV: value}, check=False, timeout=120)


@pytest.mark.parametrize(("value", "expected"), [("transposed", "transposed"),
                                                 (" Direct ", "direct"), ("", "auto")])
def test_the_environment_variable_forces_a_layout(value, expected):
    completed = _forced_layout_in_a_fresh_process(value)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == expected


def test_an_unknown_layout_in_the_environment_names_the_variable_and_the_choices():
    completed = _forced_layout_in_a_fresh_process("fast")
    assert completed.returncode != 0
    assert f"{MATMUL_LAYOUT_ENV}='fast' is not a matrix-product layout" in completed.stderr


@pytest.mark.parametrize("dtype", DTYPES)
def test_affine_is_x_times_w_plus_b(rng, layout, dtype):
    x = rng.standard_normal((90, 64)).astype(dtype)
    W = rng.standard_normal((64, 50)).astype(dtype)
    b = rng.standard_normal(50).astype(dtype)
    result = affine(x, W, b)
    assert result.dtype == dtype
    assert_close(result, x @ W + b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_order", ["C", "F"])
def test_transpose_times_is_the_weight_gradient_in_the_weights_order(rng, layout, dtype,
                                                                     x_order):
    x = np.asarray(rng.standard_normal((90, 64)).astype(dtype), order=x_order)
    grad_output = rng.standard_normal((90, 50)).astype(dtype)
    result = transpose_times(x, grad_output)
    assert result.dtype == dtype and result.flags.c_contiguous
    assert_close(result, x.T @ grad_output)


@pytest.mark.parametrize("out_features", [50, 1])
def test_dense_is_its_plain_expressions_in_every_layout(rng, layout, out_features):
    from nnscratch.nn.layers import Dense

    layer = Dense(64, out_features, rng=1, dtype=np.float64)
    layer.b.value[...] = rng.standard_normal(out_features)
    x = rng.standard_normal((90, 64))
    grad_output = rng.standard_normal((90, out_features))
    y = layer.forward(x)
    assert_close(y, x @ layer.W.value + layer.b.value)
    grad_input = layer.backward(grad_output)
    assert_close(layer.W.grad, x.T @ grad_output)
    assert layer.W.grad.flags.c_contiguous
    assert_close(grad_input, grad_output @ layer.W.value.T)
    if layout == "transposed" and out_features > 1:
        assert y.flags.f_contiguous  # the layout shows in the output's memory order ...
    assert grad_input.flags.c_contiguous  # ... but the input gradient follows the input


@pytest.mark.slow
@pytest.mark.parametrize("forced", [name for name in MATMUL_LAYOUTS if name != "direct"])
def test_real_mnist_tutorial_counts_hold_in_every_layout(mnist_dir, forced, fresh_layouts):
    """The tutorial's exact counts and costs with each layout forced (~2 min each).

    ``direct`` is not repeated here: ``test_classic.py``'s ``tutorial_run`` forces it and checks
    the same counts and all 1000 costs.
    """
    from nnscratch.classic import NeuralNet
    from nnscratch.data import load_digits

    reference = json.loads((Path(__file__).parent / "tutorial_recipe.json").read_text())
    set_matmul_layout(forced)
    data = load_digits((1, 2), data_dir=mnist_dir, dtype=np.float64, progress=False)
    net = NeuralNet([196, 1]).fit(data.X_train, data.y_train, learning_rate=0.1,
                                  n_iterations=1000, log_every=1)
    train_correct = int(np.count_nonzero(net.predict(data.X_train) == data.y_train))
    test_correct = int(np.count_nonzero(net.predict(data.X_test) == data.y_test))
    assert (train_correct, test_correct) == (reference["train_correct"],
                                             reference["test_correct"])
    np.testing.assert_allclose(net.costs_, reference["cost"], rtol=1e-6)
    assert _kernels.matmul_layouts() == []  # forced: nothing was timed
