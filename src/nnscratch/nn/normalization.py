r"""Normalisation layers: ``BatchNorm`` (over the batch, per channel) and ``LayerNorm`` (over
each sample's features).

Both subtract a mean, divide by a standard deviation and then scale and shift by learned
``gamma`` and ``beta``, so the layer can undo the normalisation if that is what the loss wants.
They differ in what the statistics are taken over:

- ``BatchNorm`` normalises each channel (each feature of a 2-D input) over the batch and the
  image's pixels, and keeps running estimates of the mean and variance for inference, when there
  may be no batch to average over. The running estimates are updated exactly as PyTorch's
  ``BatchNorm1d``/``BatchNorm2d`` update theirs.
- ``LayerNorm`` normalises each sample over its trailing dimensions; training and inference
  compute the same thing.

Each class has its forward equation and every gradient in its docstring; batch norm's backward
pass is written in its compact form, with the derivation's steps in its Notes.

``forward(x, training=False)`` reads the running statistics and writes nothing, not even the
cache: a server predicts from several threads with one model.

What is left out: group and instance normalisation, ``momentum=None`` (PyTorch's cumulative
average), ``track_running_stats=False``, ``affine=False`` (fix ``gamma`` at 1 and ``beta`` at 0
by not training them), and synchronised statistics across processes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch._validation import check_dtype, check_int, check_real
from nnscratch.nn._kernels import channel_dot
from nnscratch.nn.layers import Layer
from nnscratch.nn.parameter import Parameter

__all__ = ["BatchNorm", "LayerNorm"]


class BatchNorm(Layer):
    r"""Batch normalisation of each channel, for ``(n, C)`` and ``(n, C, H, W)`` inputs.

    Parameters
    ----------
    num_features : int
        :math:`C`: features of a 2-D input, channels of a 4-D one.
    momentum : float, default=0.1
        Weight of each new batch in the running estimates, in ``[0, 1]`` (PyTorch's meaning
        and default; Keras's momentum is one minus this).
    eps : float, default=1e-5
        Added to the variance before the square root, > 0.
    dtype : {np.float32, np.float64}, default=np.float32

    Attributes
    ----------
    num_features : int
    momentum, eps : float
    dtype : numpy.dtype
    gamma : Parameter of shape (num_features,)
        The scale, initialised to one.
    beta : Parameter of shape (num_features,)
        The shift, initialised to zero.
    running_mean : ndarray of shape (num_features,)
        Running estimate of each channel's mean, initialised to zero. A plain array, not a
        ``Parameter``: no optimiser touches it.
    running_var : ndarray of shape (num_features,)
        Running estimate of each channel's (unbiased) variance, initialised to one.

    Raises
    ------
    ValueError
        In the constructor, for ``num_features < 1``, ``momentum`` outside ``[0, 1]`` or
        ``eps <= 0``; in :meth:`forward`, for an input that is neither 2-D nor 4-D, has
        another number of channels, or (in training) has a single value per channel.

    Notes
    -----
    For channel :math:`c`, the statistics are over the :math:`m` values of that channel in the
    batch (:math:`m = n` for a 2-D input, :math:`m = nHW` for images). In training:

    .. math::
        \mu = \frac{1}{m} \sum_k x_k, \qquad \sigma^2 = \frac{1}{m} \sum_k (x_k - \mu)^2,
        \qquad \hat x_k = \frac{x_k - \mu}{\sqrt{\sigma^2 + \epsilon}}, \qquad
        y_k = \gamma \hat x_k + \beta,

    and the running estimates move towards the batch's, the variance unbiased:

    .. math::
        \bar\mu \leftarrow (1 - \alpha)\, \bar\mu + \alpha\, \mu, \qquad
        \bar\sigma^2 \leftarrow (1 - \alpha)\, \bar\sigma^2 + \alpha\, \frac{m}{m - 1}\sigma^2

    with :math:`\alpha` the momentum. At inference (``training=False``) the running estimates
    take the batch's place: :math:`y = \gamma (x - \bar\mu) / \sqrt{\bar\sigma^2 + \epsilon}
    + \beta`, and nothing in the layer changes.

    Backward, given :math:`G = \partial L / \partial y`, summing over the :math:`m` values of
    each channel:

    .. math::
        \frac{\partial L}{\partial \gamma} = \sum_k G_k \hat x_k, \qquad
        \frac{\partial L}{\partial \beta} = \sum_k G_k, \qquad
        \frac{\partial L}{\partial x_k} = \frac{\gamma}{m \sqrt{\sigma^2 + \epsilon}}
        \Big( m\, G_k - \sum_j G_j - \hat x_k \sum_j G_j \hat x_j \Big).

    The derivation, step by step: the loss depends on :math:`x_k` directly through
    :math:`\hat x_k` and indirectly through :math:`\mu` and :math:`\sigma^2`. With
    :math:`\hat G_k = \partial L / \partial \hat x_k = \gamma G_k` and
    :math:`s = \sqrt{\sigma^2 + \epsilon}`,

    1. :math:`\partial L / \partial \sigma^2 = \sum_j \hat G_j (x_j - \mu) \cdot
       (-\tfrac12) s^{-3} = -\tfrac{1}{2 s^2} \sum_j \hat G_j \hat x_j`;
    2. :math:`\partial L / \partial \mu = -\tfrac1s \sum_j \hat G_j + \partial L / \partial
       \sigma^2 \cdot (-\tfrac2m) \sum_j (x_j - \mu) = -\tfrac1s \sum_j \hat G_j`, since the
       deviations sum to zero;
    3. :math:`\partial L / \partial x_k = \hat G_k / s + \partial L / \partial \sigma^2 \cdot
       2 (x_k - \mu) / m + \partial L / \partial \mu / m`;
    4. substituting 1 and 2 and :math:`x_k - \mu = s \hat x_k` into 3 gives
       :math:`\tfrac{1}{m s} \big( m \hat G_k - \sum_j \hat G_j - \hat x_k \sum_j \hat G_j
       \hat x_j \big)`, the compact form above. It needs only :math:`\hat x` and :math:`1/s`,
       which is what the cache keeps.

    References
    ----------
    Ioffe & Szegedy (2015), "Batch Normalization: Accelerating Deep Network Training by
    Reducing Internal Covariate Shift".

    Examples
    --------
    >>> import numpy as np
    >>> layer = BatchNorm(3, dtype=np.float64)
    >>> x = np.random.default_rng(0).normal(5.0, 2.0, size=(64, 3, 4, 4))
    >>> y = layer.forward(x)
    >>> bool(np.allclose(y.mean(axis=(0, 2, 3)), 0) and np.allclose(y.var(axis=(0, 2, 3)), 1,
    ...                                                               atol=1e-4))
    True
    >>> layer.running_mean.round(1)  # one step of momentum 0.1 from 0 towards about 5
    array([0.5, 0.5, 0.5])
    """

    def __init__(
        self,
        num_features: int,
        *,
        momentum: float = 0.1,
        eps: float = 1e-5,
        dtype: Any = np.float32,
    ) -> None:
        self.num_features = check_int(num_features, "num_features", low=1)
        self.momentum = check_real(momentum, "momentum", low=0.0, high=1.0)
        self.eps = check_real(eps, "eps", low=0.0, low_inclusive=False)
        self.dtype = check_dtype(dtype)
        self.gamma = Parameter(np.ones(self.num_features, dtype=self.dtype), name="gamma")
        self.beta = Parameter(np.zeros(self.num_features, dtype=self.dtype), name="beta")
        self.running_mean = np.zeros(self.num_features, dtype=self.dtype)
        self.running_var = np.ones(self.num_features, dtype=self.dtype)
        self._x_hat: np.ndarray | None = None
        self._inv_std: np.ndarray | None = None

    def _check_input(self, x: np.ndarray, name: str = "x") -> None:
        if x.ndim not in (2, 4):
            raise ValueError(
                f"BatchNorm takes (n_samples, num_features) or (n_samples, channels, height, "
                f"width), but {name} has shape {x.shape}."
            )
        if x.shape[1] != self.num_features:
            what = "features" if x.ndim == 2 else "channels"
            raise ValueError(
                f"BatchNorm expects {self.num_features} {what}, but {name} has {x.shape[1]} "
                f"(shape {x.shape}); build the layer with num_features={x.shape[1]} or pass "
                "matching inputs."
            )

    def _per_channel(self, x: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``values`` of shape (C,) shaped to broadcast against ``x``'s channel axis."""
        return values.reshape(1, -1) if x.ndim == 2 else values.reshape(1, -1, 1, 1)

    @staticmethod
    def _axes(x: np.ndarray) -> tuple[int, ...]:
        return (0,) if x.ndim == 2 else (0, 2, 3)

    def forward(self, x: np.ndarray, *, training: bool = True) -> np.ndarray:
        """Normalise with the batch's statistics (training) or the running ones (inference)."""
        self._check_input(x)
        gamma, beta = self._per_channel(x, self.gamma.value), self._per_channel(x, self.beta.value)
        if not training:
            inv_std = 1.0 / np.sqrt(self.running_var + x.dtype.type(self.eps))
            return (x - self._per_channel(x, self.running_mean)) * \
                self._per_channel(x, inv_std) * gamma + beta
        axes = self._axes(x)
        m = x.size // self.num_features
        if m < 2:
            raise ValueError(
                f"BatchNorm needs more than one value per channel to normalise in training, "
                f"but x has shape {x.shape}; use a batch of at least 2 samples, or "
                "training=False."
            )
        mean = x.mean(axis=axes)
        centred = x - self._per_channel(x, mean)
        var = channel_dot(centred, centred) / x.dtype.type(m)  # mean of centred ** 2
        inv_std = 1.0 / np.sqrt(var + x.dtype.type(self.eps))
        x_hat = centred * self._per_channel(x, inv_std)
        self._x_hat, self._inv_std = x_hat, inv_std
        alpha = self.momentum
        self.running_mean *= 1 - alpha
        self.running_mean += alpha * mean
        self.running_var *= 1 - alpha
        self.running_var += alpha * var * (m / (m - 1))
        return x_hat * gamma + beta

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Fill ``gamma.grad`` and ``beta.grad``; return dL/dx (the compact form above)."""
        if self._x_hat is None or self._inv_std is None:
            raise self._missing_cache()
        x_hat = self._x_hat
        axes = self._axes(x_hat)
        m = x_hat.size // self.num_features
        sum_g = grad_output.sum(axis=axes)
        sum_g_x_hat = channel_dot(grad_output, x_hat)
        self.gamma.grad = sum_g_x_hat
        self.beta.grad = sum_g
        scale = self._per_channel(x_hat, self.gamma.value * self._inv_std / m)
        return scale * (m * grad_output - self._per_channel(x_hat, sum_g)
                        - x_hat * self._per_channel(x_hat, sum_g_x_hat))

    def parameters(self) -> list[Parameter]:
        return [self.gamma, self.beta]

    def buffers(self) -> dict[str, np.ndarray]:
        """``running_mean`` and ``running_var``: the state that is not a parameter."""
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def get_config(self) -> dict[str, Any]:
        return {
            "num_features": self.num_features,
            "momentum": self.momentum,
            "eps": self.eps,
            "dtype": self.dtype.name,
        }


class LayerNorm(Layer):
    r"""Layer normalisation: each sample normalised over its trailing dimensions.

    Parameters
    ----------
    normalized_shape : int or tuple of int
        The trailing shape to normalise over: ``128`` for ``(n, 128)`` rows, ``(C, H, W)`` for
        whole images.
    eps : float, default=1e-5
        Added to the variance before the square root, > 0.
    dtype : {np.float32, np.float64}, default=np.float32

    Attributes
    ----------
    normalized_shape : tuple of int
    eps : float
    dtype : numpy.dtype
    gamma : Parameter of shape normalized_shape
        One scale per normalised element, initialised to one.
    beta : Parameter of shape normalized_shape
        Initialised to zero.

    Raises
    ------
    ValueError
        In the constructor, for an empty shape, a size below 1 or ``eps <= 0``; in
        :meth:`forward`, when the input's trailing dimensions are not ``normalized_shape``.

    Notes
    -----
    For each sample, over its :math:`D = \prod \text{normalized\_shape}` values :math:`x_k`:

    .. math::
        \mu = \frac1D \sum_k x_k, \qquad \sigma^2 = \frac1D \sum_k (x_k - \mu)^2, \qquad
        \hat x_k = \frac{x_k - \mu}{\sqrt{\sigma^2 + \epsilon}}, \qquad
        y_k = \gamma_k \hat x_k + \beta_k

    The same in training and inference (no running statistics). Backward, with
    :math:`\hat G_k = \gamma_k G_k` and sums over the sample's :math:`D` values (the
    derivation is batch norm's, with the roles of the axes swapped):

    .. math::
        \frac{\partial L}{\partial x_k} = \frac{1}{D \sqrt{\sigma^2 + \epsilon}}
        \Big( D\, \hat G_k - \sum_j \hat G_j - \hat x_k \sum_j \hat G_j \hat x_j \Big),

    and, summing over the samples (and any leading axes),

    .. math::
        \frac{\partial L}{\partial \gamma_k} = \sum_n G_{n,k}\, \hat x_{n,k}, \qquad
        \frac{\partial L}{\partial \beta_k} = \sum_n G_{n,k}.

    References
    ----------
    Ba, Kiros & Hinton (2016), "Layer Normalization".

    Examples
    --------
    >>> import numpy as np
    >>> layer = LayerNorm(4, dtype=np.float64)
    >>> y = layer.forward(np.array([[1.0, 2.0, 3.0, 4.0]]))
    >>> y.round(3)
    array([[-1.342, -0.447,  0.447,  1.342]])
    """

    def __init__(
        self,
        normalized_shape: int | tuple[int, ...],
        *,
        eps: float = 1e-5,
        dtype: Any = np.float32,
    ) -> None:
        if isinstance(normalized_shape, (int, np.integer)) and not isinstance(
                normalized_shape, bool):
            normalized_shape = (int(normalized_shape),)
        try:
            entries = tuple(normalized_shape)
        except TypeError:
            raise TypeError(
                f"normalized_shape must be an int or a tuple of ints, got {normalized_shape!r}."
            ) from None
        if not entries:
            raise ValueError("normalized_shape must have at least one entry, got ().")
        self.normalized_shape = tuple(
            check_int(size, "normalized_shape", low=1) for size in entries)
        self.eps = check_real(eps, "eps", low=0.0, low_inclusive=False)
        self.dtype = check_dtype(dtype)
        self.gamma = Parameter(np.ones(self.normalized_shape, dtype=self.dtype), name="gamma")
        self.beta = Parameter(np.zeros(self.normalized_shape, dtype=self.dtype), name="beta")
        self._axes = tuple(range(-len(self.normalized_shape), 0))
        self._x_hat: np.ndarray | None = None
        self._inv_std: np.ndarray | None = None

    def _check_input(self, x: np.ndarray, name: str = "x") -> None:
        k = len(self.normalized_shape)
        if x.ndim < k + 1 or x.shape[-k:] != self.normalized_shape:
            raise ValueError(
                f"LayerNorm normalises over trailing dimensions {self.normalized_shape}, but "
                f"{name} has shape {x.shape}; pass (n_samples, *{self.normalized_shape}) or "
                f"build the layer with normalized_shape={tuple(x.shape[1:])}."
            )

    def forward(self, x: np.ndarray, *, training: bool = True) -> np.ndarray:
        """Normalise each sample over its trailing ``normalized_shape`` dimensions."""
        self._check_input(x)
        mean = x.mean(axis=self._axes, keepdims=True)
        centred = x - mean
        var = np.mean(centred * centred, axis=self._axes, keepdims=True)
        inv_std = 1.0 / np.sqrt(var + x.dtype.type(self.eps))
        x_hat = centred * inv_std
        if training:
            self._x_hat, self._inv_std = x_hat, inv_std
        return x_hat * self.gamma.value + self.beta.value

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Fill ``gamma.grad`` and ``beta.grad``; return dL/dx."""
        if self._x_hat is None or self._inv_std is None:
            raise self._missing_cache()
        x_hat = self._x_hat
        leading = tuple(range(x_hat.ndim - len(self.normalized_shape)))
        self.gamma.grad = np.sum(grad_output * x_hat, axis=leading)
        self.beta.grad = grad_output.sum(axis=leading)
        grad_x_hat = grad_output * self.gamma.value
        d = int(np.prod(self.normalized_shape))
        sum_g = grad_x_hat.sum(axis=self._axes, keepdims=True)
        sum_g_x_hat = np.sum(grad_x_hat * x_hat, axis=self._axes, keepdims=True)
        return (self._inv_std / d) * (d * grad_x_hat - sum_g - x_hat * sum_g_x_hat)

    def parameters(self) -> list[Parameter]:
        return [self.gamma, self.beta]

    def get_config(self) -> dict[str, Any]:
        return {
            "normalized_shape": list(self.normalized_shape),
            "eps": self.eps,
            "dtype": self.dtype.name,
        }
