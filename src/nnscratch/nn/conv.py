r"""Convolution and pooling over images: ``Conv2D``, ``MaxPool2D``, ``AvgPool2D`` and
``GlobalAvgPool2D``.

Images are NCHW, as in PyTorch and ONNX: a batch is an array of shape ``(n_samples, channels,
height, width)``. A model that takes the loaders' flat rows of 784 pixels starts with
``Reshape((1, 28, 28))`` (:mod:`nnscratch.nn.layers`) and ends its convolutional part with
``Flatten()`` before the dense layers.

Each class reads as its equation: the forward pass and every gradient are in its docstring, and
its methods call one kernel each. The kernels (unfolding windows into a matrix so that a
convolution is one matrix product, its input gradient as another convolution, pooling by
reshapes) live in :mod:`nnscratch.nn._kernels`, each beside the nested sum it equals, which
``tests/test_kernels.py`` checks against plain Python loops.

A convolution here is a cross-correlation (the kernel is not flipped), as in every deep-learning
library; a learned kernel does not care.

What is left out: dilation, groups (depthwise convolution), padding other than zeros
("same"/"reflect"), transposed convolution as a layer, ceil mode and padding in the pools,
1-D and 3-D variants.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from nnscratch._validation import check_dtype, check_int, check_rng
from nnscratch.nn._kernels import (
    avg_pool2d,
    avg_pool2d_backward,
    channels_first,
    conv2d,
    conv2d_grad_input,
    conv2d_grad_weight,
    conv_output_size,
    max_pool2d,
    max_pool2d_backward,
)
from nnscratch.nn.initializers import Initializer, RandomSource, get_initializer
from nnscratch.nn.layers import Layer
from nnscratch.nn.parameter import Parameter

__all__ = ["AvgPool2D", "Conv2D", "GlobalAvgPool2D", "MaxPool2D"]


def _pair(value: Any, name: str, *, low: int) -> tuple[int, int]:
    """An int or a pair of ints, each at least ``low``, as ``(height, width)``."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    try:
        if isinstance(value, str):
            raise TypeError
        pair = tuple(value)
    except TypeError:
        raise TypeError(
            f"{name} must be an integer or a pair (height, width) of integers, got {value!r}."
        ) from None
    if len(pair) != 2:
        raise ValueError(
            f"{name} must be an integer or a pair (height, width) of integers, got {value!r}."
        )
    height, width = (check_int(entry, name, low=low) for entry in pair)
    return height, width


def _check_images(layer: Layer, x: np.ndarray, name: str) -> None:
    """Raise unless ``x`` is a batch of images (n_samples, channels, height, width)."""
    if x.ndim != 4:
        raise ValueError(
            f"{type(layer).__name__} takes a batch of images (n_samples, channels, height, "
            f"width), but {name} has shape {x.shape}. For flat rows of pixels, put "
            "Reshape((channels, height, width)) first, e.g. Reshape((1, 28, 28)) for MNIST."
        )


def _check_window(
    layer: Layer, x: np.ndarray, kernel_size: tuple[int, int], padding: tuple[int, int],
    name: str,
) -> None:
    """Raise unless a ``kernel_size`` window fits in the (padded) image."""
    height, width = x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1]
    if kernel_size[0] > height or kernel_size[1] > width:
        padded = " padded" if any(padding) else ""
        fix = "kernel_size, more padding," if isinstance(layer, Conv2D) else "kernel_size"
        raise ValueError(
            f"{type(layer).__name__}'s kernel_size {kernel_size} is larger than the{padded} "
            f"input, {height} x {width} ({name} has shape {x.shape}); use a smaller "
            f"{fix} or larger images."
        )


class Conv2D(Layer):
    r"""A 2-D convolution: each output channel is a learned filter slid over every input channel.

    Parameters
    ----------
    in_channels : int
        Channels of the input images (1 for MNIST).
    out_channels : int
        Filters, hence output channels.
    kernel_size : int or (int, int)
        The filter's ``(kh, kw)``; an int for a square one.
    stride : int or (int, int), default=1
        Steps between neighbouring windows, ``(sh, sw)``.
    padding : int or (int, int), default=0
        Zero rows (columns) added on each side, ``(ph, pw)``; ``padding=1`` with a 3 x 3 kernel
        keeps the image size.
    init : str or callable, default="he_normal"
        Weight initialiser: a name from :data:`nnscratch.nn.initializers.INITIALIZERS`, or a
        callable ``(shape, rng) -> ndarray`` called with the 4-D shape ``(out_channels,
        in_channels, kh, kw)``. Their fans count the window, :math:`n_\text{in} = C_\text{in}
        k_h k_w` (see :mod:`nnscratch.nn.initializers`).
    rng : numpy.random.Generator, numpy.random.RandomState, int or None, default=None
        Source of the initial weights.
    dtype : {np.float32, np.float64}, default=np.float32
        The dtype of the weights; inputs must have the same dtype.

    Attributes
    ----------
    in_channels, out_channels : int
    kernel_size, stride, padding : (int, int)
        Always pairs ``(height, width)``, whatever form the constructor got.
    init : str
    dtype : numpy.dtype
    W : Parameter of shape (out_channels, in_channels, kh, kw)
    b : Parameter of shape (out_channels,)
        Initialised to zero.

    Raises
    ------
    ValueError
        In the constructor, for a size below 1 (a padding below 0); in :meth:`forward`, for an
        input that is not a 4-D batch of images (the message suggests ``Reshape``), has another
        number of channels than ``in_channels``, or is smaller than the kernel even padded.

    Notes
    -----
    Forward, for :math:`x` of shape ``(n, C_in, H, W)`` zero-padded to :math:`\tilde x`:

    .. math::
        y_{n,o,i,j} = b_o + \sum_{c=0}^{C_\text{in}-1} \sum_{p=0}^{k_h-1} \sum_{q=0}^{k_w-1}
                      W_{o,c,p,q}\, \tilde x_{n,c,\, i s_h + p,\, j s_w + q}

    with output size :math:`H_\text{out} = \lfloor (H + 2 p_h - k_h) / s_h \rfloor + 1` (and
    alike for the width). Backward, given :math:`G = \partial L / \partial y`:

    .. math::
        \frac{\partial L}{\partial W_{o,c,p,q}}
            = \sum_{n,i,j} G_{n,o,i,j}\, \tilde x_{n,c,\, i s_h + p,\, j s_w + q}, \qquad
        \frac{\partial L}{\partial b_o} = \sum_{n,i,j} G_{n,o,i,j},

    .. math::
        \frac{\partial L}{\partial \tilde x_{n,c,h,w}}
            = \sum_{o,p,q} \sum_{\substack{i,j:\ i s_h + p = h \\ j s_w + q = w}}
              G_{n,o,i,j}\, W_{o,c,p,q},

    and :math:`\partial L / \partial x` is that with the padding cropped off. Every window
    that read an input pixel sends back its share: :func:`nnscratch.nn._kernels.conv2d_grad_input`
    computes :math:`W^\top G` (the gradient of the unfolded columns) and adds each column back
    where it was read from (col2im). The forward pass is one matrix
    product of ``W`` with the input's windows unfolded into columns
    (:func:`nnscratch.nn._kernels.im2col`), and so is :math:`\partial L / \partial W`.
    :meth:`fill_parameter_grads` skips the input gradient (training never needs it for the
    first layer).

    References
    ----------
    LeCun et al. (1998), "Gradient-based learning applied to document recognition";
    Chellapilla, Puri & Simard (2006), "High performance convolutional neural networks for
    document processing" (the unfolding into a matrix product).

    Examples
    --------
    >>> import numpy as np
    >>> layer = Conv2D(1, 8, 3, padding=1, rng=0, dtype=np.float64)
    >>> layer.W.shape
    (8, 1, 3, 3)
    >>> layer.forward(np.zeros((2, 1, 28, 28))).shape
    (2, 8, 28, 28)
    >>> Conv2D(3, 4, (3, 5), stride=2, rng=0).forward(np.zeros((1, 3, 9, 9), np.float32)).shape
    (1, 4, 4, 3)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        *,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        init: str | Initializer = "he_normal",
        rng: RandomSource | int | None = None,
        dtype: Any = np.float32,
    ) -> None:
        self.in_channels = check_int(in_channels, "in_channels", low=1)
        self.out_channels = check_int(out_channels, "out_channels", low=1)
        self.kernel_size = _pair(kernel_size, "kernel_size", low=1)
        self.stride = _pair(stride, "stride", low=1)
        self.padding = _pair(padding, "padding", low=0)
        self.dtype = check_dtype(dtype)
        self.init = init if isinstance(init, str) else getattr(init, "__name__", "custom")
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        weights = np.asarray(get_initializer(init)(shape, check_rng(rng)))
        if weights.shape != shape:
            raise ValueError(
                f"init returned an array of shape {weights.shape}, but Conv2D needs {shape} "
                "(out_channels, in_channels, kh, kw)."
            )
        self.W = Parameter(np.ascontiguousarray(weights, dtype=self.dtype), name="W")
        self.b = Parameter(np.zeros(self.out_channels, dtype=self.dtype), name="b")
        self._cols: np.ndarray | None = None
        self._input_shape: tuple[int, ...] | None = None

    def output_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """The ``(out_channels, out_h, out_w)`` of one sample for an input of that size."""
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (self.out_channels, conv_output_size(height, kh, sh, ph),
                conv_output_size(width, kw, sw, pw))

    def _check_input(self, x: np.ndarray, name: str = "x") -> None:
        _check_images(self, x, name)
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"Conv2D expects {self.in_channels} input channel(s), but {name} has "
                f"{x.shape[1]} (shape {x.shape}, read as (n_samples, channels, height, "
                "width)); pass images with that many channels or build the layer with "
                f"in_channels={x.shape[1]}."
            )
        _check_window(self, x, self.kernel_size, self.padding, name)

    def forward(self, x: np.ndarray, *, training: bool = True) -> np.ndarray:
        """Return the convolution of ``x``, shape ``(n_samples, out_channels, out_h, out_w)``."""
        self._check_input(x)
        y, cols = conv2d(x, self.W.value, self.b.value, self.stride, self.padding)
        if training:
            self._cols, self._input_shape = cols, x.shape
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Fill ``W.grad`` and ``b.grad``; return dL/dx, shaped like the input."""
        grad_cf = self._fill(grad_output)
        return conv2d_grad_input(grad_cf, self.W.value, self._input_shape, self.stride,
                                 self.padding)

    def fill_parameter_grads(self, grad_output: np.ndarray) -> None:
        """Fill ``W.grad`` and ``b.grad`` only."""
        self._fill(grad_output)

    def _fill(self, grad_output: np.ndarray) -> np.ndarray:
        """Fill the parameter gradients; return the gradient laid out channels first."""
        if self._cols is None or self._input_shape is None:
            raise self._missing_cache()
        grad_cf = channels_first(grad_output)  # (out_channels, n, out_h, out_w)
        self.W.grad = conv2d_grad_weight(self._cols, grad_cf).reshape(self.W.shape)
        self.b.grad = grad_cf.sum(axis=(1, 2, 3))
        return grad_cf

    def parameters(self) -> list[Parameter]:
        return [self.W, self.b]

    def get_config(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": list(self.padding),
            "init": self.init,
            "dtype": self.dtype.name,
        }


class _Pool2D(Layer):
    """What the two window pools share: the sizes, their checks and the cache."""

    def __init__(
        self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None
    ) -> None:
        self.kernel_size = _pair(kernel_size, "kernel_size", low=1)
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride", low=1)
        self._input_shape: tuple[int, ...] | None = None

    def output_shape(self, height: int, width: int) -> tuple[int, int]:
        """The ``(out_h, out_w)`` of an input of that size."""
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        return conv_output_size(height, kh, sh, 0), conv_output_size(width, kw, sw, 0)

    def _check_input(self, x: np.ndarray, name: str = "x") -> None:
        _check_images(self, x, name)
        _check_window(self, x, self.kernel_size, (0, 0), name)

    def get_config(self) -> dict[str, Any]:
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride)}


class MaxPool2D(_Pool2D):
    r"""Max pooling: the largest value of each window, channel by channel.

    Parameters
    ----------
    kernel_size : int or (int, int)
        The window's ``(kh, kw)``.
    stride : int, (int, int) or None, default=None
        Steps between windows; ``None`` means ``kernel_size`` (windows that tile the image).

    Attributes
    ----------
    kernel_size, stride : (int, int)

    Raises
    ------
    ValueError
        In the constructor, for a size below 1; in :meth:`forward`, for an input that is not a
        4-D batch of images or is smaller than the window.

    Notes
    -----
    .. math:: y_{n,c,i,j} = \max_{0 \le p < k_h,\ 0 \le q < k_w} x_{n,c,\, i s_h + p,\, j s_w + q}

    The maximum's derivative is 1 for the element that is the maximum and 0 for the others,
    so each output's gradient goes back to the position :math:`(p^*, q^*)` of its window's
    maximum (the first one, in row-major order, when values tie, as in PyTorch):

    .. math:: \frac{\partial L}{\partial x_{n,c,h,w}}
              = \sum_{i,j:\ (i s_h + p^*_{ij},\ j s_w + q^*_{ij}) = (h, w)} G_{n,c,i,j}

    Rows and columns past the last full window are never read and get zero gradient.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> MaxPool2D(2).forward(x)[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    """

    def __init__(
        self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None
    ) -> None:
        super().__init__(kernel_size, stride)
        self._argmax: np.ndarray | None = None

    def forward(self, x: np.ndarray, *, training: bool = True) -> np.ndarray:
        """Return the window maxima, shape ``(n_samples, channels, out_h, out_w)``."""
        self._check_input(x)
        y, argmax = max_pool2d(x, self.kernel_size, self.stride)
        if training:
            self._argmax, self._input_shape = argmax, x.shape
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Return dL/dx: each gradient at its window's maximum, zero elsewhere."""
        if self._argmax is None or self._input_shape is None:
            raise self._missing_cache()
        return max_pool2d_backward(grad_output, self._argmax, self._input_shape,
                                   self.kernel_size, self.stride)


class AvgPool2D(_Pool2D):
    r"""Average pooling: the mean of each window, channel by channel.

    Parameters
    ----------
    kernel_size : int or (int, int)
        The window's ``(kh, kw)``.
    stride : int, (int, int) or None, default=None
        Steps between windows; ``None`` means ``kernel_size``.

    Attributes
    ----------
    kernel_size, stride : (int, int)

    Raises
    ------
    ValueError
        In the constructor, for a size below 1; in :meth:`forward`, for an input that is not a
        4-D batch of images or is smaller than the window.

    Notes
    -----
    .. math:: y_{n,c,i,j} = \frac{1}{k_h k_w} \sum_{p=0}^{k_h-1} \sum_{q=0}^{k_w-1}
              x_{n,c,\, i s_h + p,\, j s_w + q}, \qquad
              \frac{\partial L}{\partial x_{n,c,h,w}}
              = \frac{1}{k_h k_w} \sum_{i,j:\ (h, w) \in \text{window}(i,j)} G_{n,c,i,j}

    Examples
    --------
    >>> import numpy as np
    >>> AvgPool2D(2).forward(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """

    def forward(self, x: np.ndarray, *, training: bool = True) -> np.ndarray:
        """Return the window means, shape ``(n_samples, channels, out_h, out_w)``."""
        self._check_input(x)
        if training:
            self._input_shape = x.shape
        return avg_pool2d(x, self.kernel_size, self.stride)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Return dL/dx: each gradient shared equally by its window."""
        if self._input_shape is None:
            raise self._missing_cache()
        return avg_pool2d_backward(grad_output, self._input_shape, self.kernel_size,
                                   self.stride)


class GlobalAvgPool2D(Layer):
    r"""Global average pooling: each channel's mean over the whole image, ``(n, C, H, W)`` →
    ``(n, C)``.

    Raises
    ------
    ValueError
        In :meth:`forward`, for an input that is not a 4-D batch of images.

    Notes
    -----
    .. math:: y_{n,c} = \frac{1}{HW} \sum_{h,w} x_{n,c,h,w}, \qquad
              \frac{\partial L}{\partial x_{n,c,h,w}} = \frac{G_{n,c}}{HW}

    Examples
    --------
    >>> import numpy as np
    >>> GlobalAvgPool2D().forward(np.ones((2, 3, 5, 5))).shape
    (2, 3)
    """

    def __init__(self) -> None:
        self._input_shape: tuple[int, ...] | None = None

    def _check_input(self, x: np.ndarray, name: str = "x") -> None:
        _check_images(self, x, name)

    def forward(self, x: np.ndarray, *, training: bool = True) -> np.ndarray:
        """Return each channel's mean, shape ``(n_samples, channels)``."""
        self._check_input(x)
        if training:
            self._input_shape = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Return dL/dx: each channel's gradient spread evenly over its pixels."""
        if self._input_shape is None:
            raise self._missing_cache()
        height, width = self._input_shape[2:]
        share = grad_output / grad_output.dtype.type(height * width)
        return np.ascontiguousarray(np.broadcast_to(share[:, :, None, None], self._input_shape))
