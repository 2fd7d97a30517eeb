r"""The speed tricks, in one place: each is the plain NumPy expression it equals, computed faster.

Layers and optimisers read as their equations. Where a benchmark showed that another way of
computing the same numbers pays clearly, that way lives here, once: its docstring gives the
plain expression it equals (up to rounding), ``tests/test_kernels.py`` asserts the equality,
and the docstring records the gain measured, by interleaved A/B timing in one process, against
the plain expression in place. A trick whose gain is small is not kept; ``docs/performance.md``
lists those measured and dropped.

What is left out: anything that changes the numbers by more than rounding.
"""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Any

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    r"""The logistic function :math:`1 / (1 + e^{-x})`, element-wise, in one new array.

    Equals::

        with np.errstate(over="ignore"):
            return 1 / (1 + np.exp(-x))

    Parameters
    ----------
    x : ndarray
        Any shape, float32 or float64.

    Returns
    -------
    ndarray of the same shape and dtype as ``x``, values in :math:`[0, 1]`.

    Notes
    -----
    The same four operations, in the same order, but each writes into the array the first one
    made, where the expression above allocates three. For :math:`x < -709` (float64;
    :math:`-89` in float32) :math:`e^{-x}` overflows to infinity and :math:`1 / (1 + \infty) = 0`
    is the correct limit, so the overflow warning is silenced rather than avoided.

    Measured: the expression above took 12.9 ms on the tutorial's 12,700 x 196 float32
    activations, this 11.0 ms (26.7 and 23.3 ms in float64): 4 % of a float32 iteration.
    """
    y = np.negative(x)
    with np.errstate(over="ignore"):
        np.exp(y, out=y)
    y += 1
    return np.reciprocal(y, out=y)


def sigmoid_backward(grad_output: np.ndarray, y: np.ndarray) -> np.ndarray:
    r"""The sigmoid's backward pass from its output :math:`y`: :math:`G \odot y (1 - y)`.

    Equals::

        grad_output * y * (1 - y)

    Notes
    -----
    Three passes over one new array instead of three passes and two temporaries. Measured on
    the tutorial's 12,700 x 196 arrays: 5.1 ms against 3.7 ms in float32 (12.0 against 10.1 ms
    in float64), 3 % of a float32 iteration.
    """
    grad_input = np.subtract(1, y)
    grad_input *= y
    grad_input *= grad_output
    return grad_input


def times_transpose(grad_output: np.ndarray, W: np.ndarray, like: np.ndarray | None = None
                    ) -> np.ndarray:
    r"""A dense layer's input gradient :math:`G W^\top`, in the memory order of ``like``.

    Equals, up to rounding::

        grad_output @ W.T

    Parameters
    ----------
    grad_output : ndarray of shape (n_samples, out_features)
    W : ndarray of shape (in_features, out_features)
    like : ndarray of shape (n_samples, in_features), default=None
        The layer's input: the result takes its memory order (C or F), because the layer
        below combines it element by element with arrays of that order (its cached output),
        and mixed orders make NumPy's element-wise loops stride through memory.

    Notes
    -----
    With one output (``W`` of shape ``(in_features, 1)``, the tutorial's last layer) the
    product has inner size 1: each entry is a single multiplication, and a broadcast multiply
    computes the same numbers, exactly, in one pass. BLAS's matrix product with inner size 1
    is slow: measured on the tutorial's (12,700, 1) x (1, 196), 4.2 ms against 1.7 ms in
    float32 (6.7 against 4.5 ms in float64), 5 % of a float32 iteration. Other shapes go to
    :func:`matmul`.
    """
    order = None if like is None else _memory_order(like)
    if W.shape[1] == 1:
        return np.multiply(grad_output, W.T, order=order or "K")
    return matmul(grad_output, W.T, order=order)


def adam_update(
    value: np.ndarray,
    grad: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    scratch: np.ndarray,
    *,
    learning_rate: float,
    beta1: float,
    beta2: float,
    eps: float,
    t: int,
) -> None:
    r"""One Adam step on one array, in place: 12 passes over memory and no allocation.

    Equals, up to rounding::

        m[...] = beta1 * m + (1 - beta1) * grad
        v[...] = beta2 * v + (1 - beta2) * grad**2
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        value -= learning_rate * m_hat / (np.sqrt(v_hat) + eps)

    Parameters
    ----------
    value, grad, m, v : ndarray, all of one shape and dtype
        ``value``, ``m`` and ``v`` are updated in place.
    scratch : ndarray of the same shape and dtype
        Workspace, overwritten.
    learning_rate, beta1, beta2, eps : float
    t : int
        The step number, from 1.

    Notes
    -----
    The moments are updated through ``scratch`` instead of temporaries, and the four scalars of
    the last line fold into two, with :math:`c_1 = 1 - \beta_1^t`, :math:`c_2 = 1 - \beta_2^t`:

    .. math:: \eta \frac{m / c_1}{\sqrt{v / c_2} + \epsilon}
              = \frac{m}{a \sqrt{v} + b}, \qquad
              a = \frac{c_1}{\eta \sqrt{c_2}}, \quad b = \frac{\epsilon\, c_1}{\eta}

    Measured: with the plain expression a batch-128 Adam epoch took 1.41 times as long on
    784-256-128-10 and 1.28 times on 784-512-256-10 (see ``docs/performance.md``).
    """
    m *= beta1
    np.multiply(grad, 1 - beta1, out=scratch)
    m += scratch
    v *= beta2
    np.multiply(grad, grad, out=scratch)
    scratch *= 1 - beta2
    v += scratch
    if learning_rate == 0:  # no step (and a and b would divide by zero)
        return
    c1, c2 = 1 - beta1**t, 1 - beta2**t
    np.sqrt(v, out=scratch)
    scratch *= c1 / (learning_rate * math.sqrt(c2))
    scratch += eps * c1 / learning_rate
    np.divide(m, scratch, out=scratch)
    value -= scratch


def channel_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    r"""Per channel, the sum of ``a * b`` over every other axis: :math:`\sum_{n,h,w}
    a_{n,c,h,w} b_{n,c,h,w}` for images (n, c, h, w), :math:`\sum_n a_{n,c} b_{n,c}` for rows.

    Equals ``np.sum(a * b, axis=(0, 2, 3))`` (``axis=0`` for rows), computed by
    :func:`numpy.einsum` without the temporary product: batch norm's variance and backward
    sums, 1.5 ms against 3.6 ms on the ``cnn-epoch`` net's first layer (batch 128, 32 channels
    of 28 x 28, float32), with the same rounding error to within a few percent.
    """
    subscripts = "nc,nc->c" if a.ndim == 2 else "nchw,nchw->c"
    return np.einsum(subscripts, a, b)


# ---------------------------------------------------------------------------------------------
# Convolution and pooling (:mod:`nnscratch.nn.conv`). Images are NCHW: (n_samples, channels,
# height, width). Each function below equals a nested sum, written out in its docstring, that
# ``tests/test_kernels.py`` computes with plain Python loops.


def _pad2d(x: np.ndarray, padding: tuple[int, int]) -> np.ndarray:
    """``x`` (n, c, h, w) with ``padding`` zero rows and columns on each side (``x`` if none)."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def _windows(
    x: np.ndarray, kernel_size: tuple[int, int], stride: tuple[int, int]
) -> np.ndarray:
    """Every ``kernel_size`` window of ``x`` (n, c, h, w), ``stride`` apart, as a strided view.

    Returns a view of shape (n, c, out_h, out_w, kh, kw): ``windows[n, c, i, j]`` is
    ``x[n, c, i*sh:i*sh+kh, j*sw:j*sw+kw]``. No copy is made.
    """
    sh, sw = stride
    view = np.lib.stride_tricks.sliding_window_view(x, kernel_size, axis=(2, 3))
    return view[:, :, ::sh, ::sw]


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    r"""The output length of a convolution or pool along one axis:
    :math:`\lfloor (n + 2p - k) / s \rfloor + 1` (the last window that fits; no ceil mode)."""
    return (size + 2 * padding - kernel) // stride + 1


def im2col(
    x: np.ndarray, kernel_size: tuple[int, int], stride: tuple[int, int]
) -> np.ndarray:
    r"""Unfold every window of ``x`` into a column: the matrix that turns convolution into one
    matrix product.

    Equals::

        cols = np.empty((c * kh * kw, n * out_h * out_w))
        for ci in range(c):
            for p in range(kh):
                for q in range(kw):
                    for ni in range(n):
                        for i in range(out_h):
                            for j in range(out_w):
                                cols[(ci * kh + p) * kw + q, (ni * out_h + i) * out_w + j] = \
                                    x[ni, ci, i * sh + p, j * sw + q]

    Parameters
    ----------
    x : ndarray of shape (n_samples, channels, height, width)
        Already padded.
    kernel_size, stride : (int, int)

    Returns
    -------
    ndarray of shape (channels * kh * kw, n_samples * out_h * out_w)
        A new array, except where the windows already lie in that order (a view of ``x``).

    Notes
    -----
    The windows are a strided view (:func:`numpy.lib.stride_tricks.sliding_window_view`, no
    copy); the one copy is the reshape into a matrix. Rows are (channel, kernel row, kernel
    column), columns (sample, output row, output column): in this order the copy's innermost
    run is an image row (``out_w`` values), where the order (sample, row, column) × (channel,
    kernel) copies runs of ``kw`` values. Measured on the ``cnn-epoch`` net's second layer
    (batch 128, 32 channels of 16 x 16 padded, 3 x 3): 10.8 ms against 31 ms.
    """
    windows = _windows(x, kernel_size, stride)  # (n, c, out_h, out_w, kh, kw)
    n, c, out_h, out_w, kh, kw = windows.shape
    return windows.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * out_h * out_w)


def conv2d(
    x: np.ndarray,
    W: np.ndarray,
    b: np.ndarray,
    stride: tuple[int, int],
    padding: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    r"""A 2-D convolution (cross-correlation, as in PyTorch) through one matrix product.

    Equals, with :math:`\tilde x` the input zero-padded by ``padding``::

        y = np.empty((n, out_channels, out_h, out_w))
        for ni in range(n):
            for o in range(out_channels):
                for i in range(out_h):
                    for j in range(out_w):
                        y[ni, o, i, j] = b[o] + sum(
                            W[o, c, p, q] * x_padded[ni, c, i * sh + p, j * sw + q]
                            for c in range(in_channels) for p in range(kh) for q in range(kw))

    Parameters
    ----------
    x : ndarray of shape (n_samples, in_channels, height, width)
    W : ndarray of shape (out_channels, in_channels, kh, kw)
    b : ndarray of shape (out_channels,)
    stride, padding : (int, int)

    Returns
    -------
    y : ndarray of shape (n_samples, out_channels, out_h, out_w), C-contiguous
    cols : ndarray of shape (in_channels * kh * kw, n_samples * out_h * out_w)
        :func:`im2col` of the padded input, which :func:`conv2d_grad_weight` needs.

    Notes
    -----
    .. math:: Y_{(o),(n,i,j)} = \sum_{(c,p,q)} W_{o,(c,p,q)}\, \text{cols}_{(c,p,q),(n,i,j)}
              + b_o,

    a product of ``W`` seen as an ``(out_channels, in_channels * kh * kw)`` matrix with
    :func:`im2col`'s matrix, then one transposing copy from (channel, sample, ...) to NCHW.
    """
    n = x.shape[0]
    out_channels, _, kh, kw = W.shape
    cols = im2col(_pad2d(x, padding), (kh, kw), stride)
    out = W.reshape(out_channels, -1) @ cols  # (out_channels, n * out_h * out_w)
    out += b[:, None]
    out_h = conv_output_size(x.shape[2], kh, stride[0], padding[0])
    out_w = conv_output_size(x.shape[3], kw, stride[1], padding[1])
    y = out.reshape(out_channels, n, out_h, out_w).transpose(1, 0, 2, 3)
    return np.ascontiguousarray(y), cols


def channels_first(grad_output: np.ndarray) -> np.ndarray:
    """``grad_output`` (n, c, h, w) as a C-contiguous (c, n, h, w) array: the layout of the
    gradient products below, computed once for both."""
    return np.ascontiguousarray(grad_output.transpose(1, 0, 2, 3))


def conv2d_grad_weight(cols: np.ndarray, grad_output_cf: np.ndarray) -> np.ndarray:
    r"""The convolution's weight gradient, as one matrix product.

    Equals, with ``G = grad_output`` of shape (n, out_channels, out_h, out_w)::

        dW[o, c, p, q] = sum(G[ni, o, i, j] * x_padded[ni, c, i * sh + p, j * sw + q]
                             for ni in range(n) for i in range(out_h) for j in range(out_w))

    Parameters
    ----------
    cols : ndarray of shape (in_channels * kh * kw, n * out_h * out_w)
        What :func:`conv2d` returned.
    grad_output_cf : ndarray of shape (out_channels, n, out_h, out_w)
        :func:`channels_first` of the gradient.

    Returns
    -------
    ndarray of shape (out_channels, in_channels * kh * kw); reshape to ``W``'s shape.

    Notes
    -----
    .. math:: \frac{\partial L}{\partial W} = G\, \text{cols}^\top
              = (\text{cols}\, G^\top)^\top

    computed in the second form: both are one product with the long inner dimension
    ``n * out_h * out_w``, but BLAS ran ``cols @ G.T`` (a tall result) about four times as fast
    as ``G @ cols.T`` on the ``cnn-epoch`` net's second layer (24 ms against 115 ms, float32,
    batch 128, 288 x 25,088 columns).
    """
    return (cols @ grad_output_cf.reshape(grad_output_cf.shape[0], -1).T).T


def conv2d_grad_input(
    grad_output_cf: np.ndarray,
    W: np.ndarray,
    input_shape: tuple[int, ...],
    stride: tuple[int, int],
    padding: tuple[int, int],
) -> np.ndarray:
    r"""The convolution's input gradient: one matrix product, then each column's values added
    back where the forward pass read them (col2im), with no loop over pixels or kernel
    positions.

    Equals, with ``G = grad_output`` and every index where the forward pass read it::

        dx_padded = np.zeros((n, in_channels, height + 2 * ph, width + 2 * pw))
        for ni, o, i, j, c, p, q in every index:
            dx_padded[ni, c, i * sh + p, j * sw + q] += G[ni, o, i, j] * W[o, c, p, q]
        dx = dx_padded[:, :, ph:ph + height, pw:pw + width]

    Parameters
    ----------
    grad_output_cf : ndarray of shape (out_channels, n, out_h, out_w)
        :func:`channels_first` of the gradient.
    W : ndarray of shape (out_channels, in_channels, kh, kw)
    input_shape : (n, in_channels, height, width)
    stride, padding : (int, int)

    Returns
    -------
    ndarray of shape ``input_shape``, C-contiguous

    Notes
    -----
    The gradient of :func:`im2col`'s matrix is the product

    .. math:: \frac{\partial L}{\partial\, \text{cols}_{(c,p,q),(n,i,j)}}
              = \sum_o W_{o,(c,p,q)}\, G_{o,(n,i,j)} = (W^\top G)_{(c,p,q),(n,i,j)},

    and column entry :math:`(c,p,q),(n,i,j)` was read from
    :math:`\tilde x_{n,c,\, i s_h + p,\, j s_w + q}`, so the input gradient is the sum, over
    the kernel positions :math:`(p, q)`, of those entries put back in place. Each kernel
    position gets its own zeroed copy of the padded image, shaped ``(c, kh, kw, n, H + 2 ph,
    W + 2 pw)``; a strided view of it whose ``(p, q)`` strides also step ``p`` rows and ``q``
    columns is exactly "the place entry ``(c, p, q, n, i, j)`` was read from", so one
    assignment puts every entry back without overlap, and a sum over the ``(p, q)`` axes adds
    them up. Measured, interleaved A/B, on the ``cnn-epoch`` net's second layer (batch 128,
    64 → 32 channels, 14 x 14, float32, 2 cores): 32 ms, against 39 ms for the transposed
    convolution it replaced (im2col of the stride-spread, padded :math:`G` and the flipped
    kernel, whose unfolded matrix has ``out_channels * kh * kw`` rows, twice this product's
    ``in_channels * kh * kw`` here).
    """
    out_channels, in_channels, kh, kw = W.shape
    _, n, out_h, out_w = grad_output_cf.shape
    height, width = input_shape[2], input_shape[3]
    (sh, sw), (ph, pw) = stride, padding
    grad_cols = W.reshape(out_channels, -1).T @ grad_output_cf.reshape(out_channels, -1)
    per_position = np.zeros((in_channels, kh, kw, n, height + 2 * ph, width + 2 * pw),
                            dtype=grad_cols.dtype)
    c_, p_, q_, n_, h_, w_ = per_position.strides
    read_from = np.lib.stride_tricks.as_strided(
        per_position, shape=(in_channels, kh, kw, n, out_h, out_w),
        strides=(c_, p_ + h_, q_ + w_, n_, sh * h_, sw * w_), writeable=True)
    read_from[...] = grad_cols.reshape(read_from.shape)
    padded = per_position.sum(axis=(1, 2))  # (in_channels, n, height + 2 ph, width + 2 pw)
    return np.ascontiguousarray(padded[:, :, ph:ph + height, pw:pw + width].transpose(1, 0, 2, 3))


def _window_positions(
    kernel_size: tuple[int, int], stride: tuple[int, int], out_shape: tuple[int, int]
) -> list[tuple[int, tuple[slice, ...]]]:
    """For each kernel position ``(p, q)``, in the order ``k = p * kw + q``: ``k`` and the index
    that picks that element of every window, ``x[:, :, i*sh + p, j*sw + q]`` for all ``(i, j)``.

    ``x[index]`` is a strided view of shape (n, c, out_h, out_w); the ``kh * kw`` views cover
    every window element once (where the windows tile, each input element at most once).
    """
    (kh, kw), (sh, sw), (out_h, out_w) = kernel_size, stride, out_shape
    return [
        (p * kw + q, (slice(None), slice(None), slice(p, p + (out_h - 1) * sh + 1, sh),
                      slice(q, q + (out_w - 1) * sw + 1, sw)))
        for p in range(kh) for q in range(kw)
    ]


def _pool_output_shape(
    input_shape: tuple[int, ...], kernel_size: tuple[int, int], stride: tuple[int, int]
) -> tuple[int, int]:
    return (conv_output_size(input_shape[2], kernel_size[0], stride[0], 0),
            conv_output_size(input_shape[3], kernel_size[1], stride[1], 0))


def max_pool2d(
    x: np.ndarray, kernel_size: tuple[int, int], stride: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    r"""Max pooling: the largest value of each window.

    Equals::

        y[ni, c, i, j] = max(x[ni, c, i * sh + p, j * sw + q]
                             for p in range(kh) for q in range(kw))

    Returns
    -------
    y : ndarray of shape (n, c, out_h, out_w)
    argmax : ndarray of unsigned int of shape (n, c, out_h, out_w)
        The position of the maximum in its window, ``p * kw + q``, the first one where values
        tie (as PyTorch routes the gradient).

    Notes
    -----
    The windows are never copied out. For each of the ``kh * kw`` kernel positions, the
    element at that position of every window is one strided view of ``x``
    (:func:`_window_positions`); a running maximum over those views, updated where a later
    position is strictly larger, is the window maximum and its first position (a NaN in a
    window makes its maximum NaN, as in PyTorch; its position then stays the largest number
    before it). NumPy reduces a short axis of a copied or reshaped array element by element:
    on the ``cnn-epoch`` net's first pool (batch 128, 32 channels of 28 x 28, float32), laying
    each window out flat and taking ``argmax`` took 40 ms where the running maximum over four
    views takes 14 (``benchmarks/cnn_layers.py``).
    """
    kh, kw = kernel_size
    positions = _window_positions(kernel_size, stride, _pool_output_shape(x.shape, kernel_size,
                                                                          stride))
    _, first = positions[0]
    y = x[first].copy()
    argmax = np.zeros(y.shape, dtype=np.min_scalar_type(kh * kw - 1))
    for k, index in positions[1:]:
        candidate = x[index]
        larger = candidate > y
        argmax += larger * (k - argmax)  # k where larger, else unchanged (small-integer work)
        np.maximum(y, candidate, out=y)
    return y, argmax


def max_pool2d_backward(
    grad_output: np.ndarray,
    argmax: np.ndarray,
    input_shape: tuple[int, ...],
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
) -> np.ndarray:
    r"""Max pooling's input gradient: each output's gradient goes to its window's maximum.

    Equals::

        dx = np.zeros(input_shape)
        for ni, c, i, j in every output index:
            p, q = divmod(argmax[ni, c, i, j], kw)
            dx[ni, c, i * sh + p, j * sw + q] += G[ni, c, i, j]

    Notes
    -----
    For each kernel position ``k``, the gradients of the windows whose maximum is there are
    added to that position's strided view of ``dx`` (an input in several overlapping windows
    sums their gradients).
    """
    positions = _window_positions(kernel_size, stride, grad_output.shape[2:])
    out_h, out_w = grad_output.shape[2:]
    if stride == kernel_size and input_shape[2:] == (out_h * stride[0], out_w * stride[1]):
        # Tiling windows that cover the input: each element is written exactly once.
        grad = np.empty(input_shape, dtype=grad_output.dtype)
        for k, index in positions:
            np.multiply(grad_output, argmax == k, out=grad[index])
        return grad
    grad = np.zeros(input_shape, dtype=grad_output.dtype)
    for k, index in positions:
        grad[index] += grad_output * (argmax == k)
    return grad


def avg_pool2d(
    x: np.ndarray, kernel_size: tuple[int, int], stride: tuple[int, int]
) -> np.ndarray:
    r"""Average pooling: the mean of each window.

    Equals::

        y[ni, c, i, j] = sum(x[ni, c, i * sh + p, j * sw + q]
                             for p in range(kh) for q in range(kw)) / (kh * kw)

    Notes
    -----
    The sum of the ``kh * kw`` strided views of :func:`_window_positions`, as for
    :func:`max_pool2d` (a mean over the short axes of a reshape is reduced element by element).
    """
    kh, kw = kernel_size
    positions = _window_positions(kernel_size, stride, _pool_output_shape(x.shape, kernel_size,
                                                                          stride))
    _, first = positions[0]
    total = x[first].copy()
    for _, index in positions[1:]:
        total += x[index]
    return total / x.dtype.type(kh * kw)


def avg_pool2d_backward(
    grad_output: np.ndarray,
    input_shape: tuple[int, ...],
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
) -> np.ndarray:
    r"""Average pooling's input gradient: each output's gradient, divided by the window size,
    to every element of its window.

    Equals::

        dx = np.zeros(input_shape)
        for ni, c, i, j in every output index:
            for p in range(kh):
                for q in range(kw):
                    dx[ni, c, i * sh + p, j * sw + q] += G[ni, c, i, j] / (kh * kw)

    Notes
    -----
    The share added to each kernel position's strided view of ``dx`` in turn (where windows
    overlap, an input collects the shares of every window it is in).
    """
    kh, kw = kernel_size
    share = grad_output / grad_output.dtype.type(kh * kw)
    grad = np.zeros(input_shape, dtype=grad_output.dtype)
    for _, index in _window_positions(kernel_size, stride, grad_output.shape[2:]):
        grad[index] += share
    return grad

# =============================================================================================
# Matrix products in the layout this machine runs fastest (issue 23).
#
# Everything from here to the end of the section is one trick: a dense layer's three products
# (x @ W, x.T @ G, G @ W.T) are asked of BLAS in whichever of two equivalent layouts is faster
# for their shapes, dtype and operand layouts on the machine the code runs on, chosen by timing
# both the first time a shape is met (the way cuDNN's benchmark mode picks convolution
# algorithms). ``matmul_layouts()`` reports the choices, ``set_matmul_layout()`` and the
# environment variable NNSCRATCH_MATMUL_LAYOUT force one.
# =============================================================================================

#: The two ways of asking BLAS for :math:`C = A B`: ``"direct"`` writes :math:`C` row by row
#: (``a @ b``, a C-ordered result), ``"transposed"`` computes :math:`C^\top = B^\top A^\top` and
#: returns its transpose (``(b.T @ a.T).T``, the same numbers stored column by column).
MATMUL_LAYOUTS = ("direct", "transposed")
#: The environment variable read at import: ``auto`` (the default), ``direct`` or ``transposed``.
MATMUL_LAYOUT_ENV = "NNSCRATCH_MATMUL_LAYOUT"
#: Products of fewer multiply-adds (:math:`m k n`) than this are computed ``direct`` and never
#: timed: they take microseconds, where timing is noise and a look-up would cost more than any
#: gain (a single-row prediction is 200,704 multiply-adds per layer at most).
MATMUL_TUNE_MIN = 1 << 18
#: ``"transposed"`` is chosen only when it is faster than ``"direct"`` by 20 % or more (the
#: float64 case that motivated it: 30 ms against 43 ms): where the two nearly tie, results keep
#: the plain expression's layout, and two processes on one machine, timing afresh, make the
#: same choice (a 5 % margin let timing noise flip it, and a repeated run differed by rounding).
MATMUL_MARGIN = 0.80


def _layout_from_environment() -> str | None:
    value = os.environ.get(MATMUL_LAYOUT_ENV, "auto").strip().lower() or "auto"
    if value not in ("auto", *MATMUL_LAYOUTS):
        raise ValueError(
            f"{MATMUL_LAYOUT_ENV}={os.environ[MATMUL_LAYOUT_ENV]!r} is not a matrix-product "
            f"layout; set it to one of {['auto', *MATMUL_LAYOUTS]} or unset it."
        )
    return None if value == "auto" else value


_forced_layout: str | None = _layout_from_environment()
#: (a.shape, b.shape, a.dtype, b.dtype, a's order, b's order, order asked) -> the choice.
_layout_choices: dict[tuple[Any, ...], dict[str, Any]] = {}
_tuning_lock = threading.Lock()


def _memory_order(a: np.ndarray) -> str | None:
    """``"C"`` or ``"F"`` for a contiguous 2-D array, else None."""
    if a.flags.c_contiguous:
        return "C"
    if a.flags.f_contiguous:
        return "F"
    return None


def _direct(a: np.ndarray, b: np.ndarray, order: str | None) -> np.ndarray:
    c = a @ b
    return np.asfortranarray(c) if order == "F" else c


def _transposed(a: np.ndarray, b: np.ndarray, order: str | None) -> np.ndarray:
    c = (b.T @ a.T).T
    return np.ascontiguousarray(c) if order == "C" else c


_PRODUCTS = {"direct": _direct, "transposed": _transposed}


def matmul(a: np.ndarray, b: np.ndarray, *, order: str | None = None) -> np.ndarray:
    r"""The matrix product :math:`A B`, in the BLAS layout that is fastest here for its shapes.

    Equals, up to rounding::

        a @ b                              # order=None
        np.asarray(a @ b, order=order)     # order="C" or "F"

    Parameters
    ----------
    a : ndarray of shape (m, k)
    b : ndarray of shape (k, n)
        Either may be a transposed view (``x.T``, ``W.T``): BLAS reads those without a copy.
    order : {None, "C", "F"}, default=None
        The memory order the caller needs the result in; None takes whichever is fastest.

    Returns
    -------
    ndarray of shape (m, n)
        C-ordered, F-ordered (a transposed view of a C-ordered array) or as ``order`` asks.

    Notes
    -----
    BLAS computes :math:`C = A B` into row-major memory as the column-major product
    :math:`C^\top = B^\top A^\top`, so the two layouts of :data:`MATMUL_LAYOUTS` give its
    kernels the two dimensions :math:`m` and :math:`n` in swapped roles; which is faster
    depends on the CPU, the kernel set OpenBLAS picks and the dtype. Measured on a 2-core
    Intel Xeon with OpenBLAS 0.3.31's SkylakeX kernels, float64, the tutorial's
    :math:`12{,}700 \times 784` times :math:`784 \times 196`: 43 ms direct, 30 ms transposed
    (issue 23); on the AMD EPYC of ``docs/performance.md`` (Haswell kernels) the two tie.

    The first call with a given key (the shapes, dtypes and memory orders of ``a`` and ``b``,
    and ``order``) times both layouts on the caller's operands, twice each in the order
    direct, transposed, transposed, direct, keeps the faster (``"transposed"`` only if it is
    :data:`MATMUL_MARGIN` faster) and returns its result; later calls look the choice up in a
    dict. Products under :data:`MATMUL_TUNE_MIN` multiply-adds, and operands that are not 2-D,
    always go direct. The choice is made under a lock, so threads that predict at once share
    it.

    Reproducibility: the two layouts round differently (the same sums, added in another
    grouping), by far less than the tests' dtype-aware tolerances. Within a process a key's
    layout never changes once chosen, and the first call already returns the chosen layout's
    result, so seeded training is deterministic in a process; two processes, or two machines,
    may choose differently. To fix the layout, set ``NNSCRATCH_MATMUL_LAYOUT`` or call
    :func:`set_matmul_layout`.
    """
    layout = _forced_layout
    if a.ndim != 2 or b.ndim != 2:
        layout = "direct"
    elif layout is None:
        if a.shape[0] * a.shape[1] * b.shape[1] < MATMUL_TUNE_MIN:
            layout = "direct"
        else:
            key = (a.shape, b.shape, a.dtype, b.dtype, _memory_order(a), _memory_order(b), order)
            choice = _layout_choices.get(key)
            if choice is None:
                return _tune(key, a, b, order)
            layout = choice["layout"]
    return _PRODUCTS[layout](a, b, order)


def _tune(key: tuple[Any, ...], a: np.ndarray, b: np.ndarray, order: str | None) -> np.ndarray:
    """Time both layouts on these operands, record the faster, return its result."""
    with _tuning_lock:
        choice = _layout_choices.get(key)  # another thread may have chosen meanwhile
        if choice is not None:
            return _PRODUCTS[choice["layout"]](a, b, order)
        seconds = dict.fromkeys(MATMUL_LAYOUTS, math.inf)
        results = {}
        # ABBA: the first call of a process (cold caches, sleeping BLAS threads) is only one
        # of direct's two timings, and each layout keeps its faster.
        for layout in ("direct", "transposed", "transposed", "direct"):
            results.pop(layout, None)  # at most two results alive at once
            start = time.perf_counter()
            results[layout] = _PRODUCTS[layout](a, b, order)
            seconds[layout] = min(seconds[layout], time.perf_counter() - start)
        faster = seconds["transposed"] < MATMUL_MARGIN * seconds["direct"]
        layout = "transposed" if faster else "direct"
        _layout_choices[key] = {"layout": layout, "seconds": seconds}
        return results[layout]


def set_matmul_layout(layout: str) -> str:
    """Force the layout of every :func:`matmul` (``"direct"``, ``"transposed"``), or let each
    shape's timing choose again (``"auto"``); return the setting it replaces.

    For tests and benchmarks; the environment variable ``NNSCRATCH_MATMUL_LAYOUT`` sets the
    same at import. Forcing applies to every size (even the products too small to be timed);
    choices already timed are kept for when ``"auto"`` returns.

    Raises
    ------
    ValueError
        If ``layout`` is not one of ``"auto"``, ``"direct"``, ``"transposed"``.
    """
    global _forced_layout
    if layout not in ("auto", *MATMUL_LAYOUTS):
        raise ValueError(
            f"layout must be one of {['auto', *MATMUL_LAYOUTS]}, got {layout!r}."
        )
    previous = _forced_layout or "auto"
    _forced_layout = None if layout == "auto" else layout
    return previous


def matmul_layouts() -> list[dict[str, Any]]:
    """Which layout :func:`matmul` chose for each key it timed in this process, and the times.

    Returns
    -------
    list of dict
        One per key: ``a`` and ``b`` (shapes), ``dtype``, ``a_order`` and ``b_order`` (``"C"``,
        ``"F"`` or None), ``order`` (asked for), ``layout`` (chosen) and ``seconds`` (the
        faster of the two timings of each layout), in the order they were chosen.
    """
    with _tuning_lock:
        items = list(_layout_choices.items())
    return [
        {"a": list(a_shape), "b": list(b_shape), "dtype": np.result_type(a_dtype, b_dtype).name,
         "a_order": a_order, "b_order": b_order, "order": order, "layout": choice["layout"],
         "seconds": dict(choice["seconds"])}
        for (a_shape, b_shape, a_dtype, b_dtype, a_order, b_order, order), choice in items
    ]


def clear_matmul_layouts() -> None:
    """Forget every timed choice, so that each key is timed again at its next product."""
    with _tuning_lock:
        _layout_choices.clear()


def affine(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    r"""A dense layer's forward pass :math:`x W + b`.

    Equals, up to rounding::

        x @ W + b

    Notes
    -----
    The product goes through :func:`matmul` (its layout, and so the memory order of the
    result, is whichever is faster here); the bias is then added in place, into the array the
    product made, where the expression above allocates a second ``(n_samples, out_features)``
    array.
    """
    y = matmul(x, W)
    y += b
    return y


def transpose_times(x: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
    r"""A dense layer's weight gradient :math:`x^\top G`, C-ordered like the weights.

    Equals, up to rounding::

        x.T @ grad_output

    Notes
    -----
    Through :func:`matmul` with ``order="C"``: the optimiser updates the C-ordered weights
    with it element by element, which runs at full speed only when both have one order. The
    result is ``(in_features, out_features)``, small next to the product, so copying a
    transposed result into that order costs little.
    """
    return matmul(x.T, grad_output, order="C")
# ============================= end of the matrix-product section =============================
