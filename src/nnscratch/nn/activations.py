r"""Activation functions as parameter-free layers, each with its derivative beside it.

Every class here is a :class:`~nnscratch.nn.layers.Layer` with no parameters: ``forward`` applies
the function element-wise (``Softmax`` row-wise) and caches what the derivative needs,
``backward`` multiplies the incoming gradient by the derivative (the chain rule). They are
ordered from the simplest to the most involved.

Numerical stability: ``Sigmoid`` evaluates :math:`1/(1+e^{-x})` with overflow of :math:`e^{-x}`
silenced — an overflow to ``inf`` gives the correct limit 0 — and ``Softmax`` subtracts the row
maximum before exponentiating. When the last activation feeds a loss, prefer the fused losses
in :mod:`nnscratch.nn.losses` (they take logits) to a separate ``Sigmoid`` or ``Softmax`` layer.

What is left out: parametric activations (PReLU), SELU, Swish/SiLU.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch._validation import check_real
from nnscratch.nn._kernels import sigmoid, sigmoid_backward
from nnscratch.nn.layers import Layer

__all__ = [
    "ACTIVATIONS",
    "ELU",
    "GELU",
    "Identity",
    "LeakyReLU",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "get_activation",
    "log_softmax",
    "sigmoid",
    "softmax",
]


class Identity(Layer):
    r"""The identity :math:`y = x`; its gradient passes through unchanged.

    Useful as a placeholder activation (a linear output layer).
    """

    def __init__(self) -> None:
        self._seen = False

    def forward(self, x: np.ndarray, *, training: bool = True) -> np.ndarray:
        if training:
            self._seen = True
        return x

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        if not self._seen:
            raise self._missing_cache()
        return grad_output


class ReLU(Layer):
    r"""Rectified linear unit.

    Notes
    -----
    .. math:: y = \max(0, x), \qquad \frac{\partial y}{\partial x} = [x > 0]

    The derivative at exactly 0 is taken as 0 (as PyTorch does).
    """

    def __init__(self) -> None:
        self._y: np.ndarray | None = None

    def forward(self, x: np.ndarray, *, training: bool = True) -> np.ndarray:
        y = np.maximum(x, 0)
        if training:
            self._y = y
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        if self._y is None:
            raise self._missing_cache()
        # y > 0 exactly where x > 0, so the output doubles as the mask and x need not be kept.
        return grad_output * (self._y > 0)


class LeakyReLU(Layer):
    r"""Leaky ReLU with slope ``negative_slope`` for negative inputs.

    Parameters
    ----------
    negative_slope : float, default=0.01
        The slope :math:`\alpha` for :math:`x < 0`; must be non-negative.

    Notes
    -----
    .. math:: y = \begin{cases} x & x > 0 \\ \alpha x & x \le 0 \end{cases}, \qquad
              \frac{\partial y}{\partial x} = \begin{cases} 1 & x > 0 \\ \alpha & x \le 0
              \end{cases}
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        self.negative_slope = check_real(negative_slope, "negative_slope", low=0.0)
        self._positive: np.ndarray | None = None

    def forward(self, x: np.ndarray, *, training: bool = True) -> np.ndarray:
        positive = x > 0
        if training:
            self._positive = positive
        return np.where(positive, x, x * x.dtype.type(self.negative_slope))

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        if self._positive is None:
            raise self._missing_cache()
        slope = grad_output.dtype.type(self.negative_slope)
        return np.where(self._positive, grad_output, grad_output * slope)

    def get_config(self) -> dict[str, Any]:
        return {"negative_slope": self.negative_slope}


class Sigmoid(Layer):
    r"""The logistic sigmoid, the tutorial's activation.

    Notes
    -----
    .. math:: y = \sigma(x) = \frac{1}{1 + e^{-x}}, \qquad
              \frac{\partial y}{\partial x} = y (1 - y)

    Computed as written, with the overflow warning of :math:`e^{-x}` for :math:`x < -709`
    silenced: :math:`e^{-x} = \infty` then gives exactly the limit :math:`y = 0`, and for every
    other :math:`x` each step keeps full relative precision.
    """

    def __init__(self) -> None:
        self._y: np.ndarray | None = None

    def forward(self, x: np.ndarray, *, training: bool = True) -> np.ndarray:
        y = sigmoid(x)
        if training:
            self._y = y
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        if self._y is None:
            raise self._missing_cache()
        return sigmoid_backward(grad_output, self._y)  # grad_output * y * (1 - y)


class Tanh(Layer):
    r"""Hyperbolic tangent.

    Notes
    -----
    .. math:: y = \tanh(x), \qquad \frac{\partial y}{\partial x} = 1 - y^2
    """

    def __init__(self) -> None:
        self._y: np.ndarray | None = None

    def forward(self, x: np.ndarray, *, training: bool = True) -> np.ndarray:
        y = np.tanh(x)
        if training:
            self._y = y
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        if self._y is None:
            raise self._missing_cache()
        y = self._y
        return grad_output * (1 - y * y)


class ELU(Layer):
    r"""Exponential linear unit.

    Parameters
    ----------
    alpha : float, default=1.0
        Saturation value :math:`\alpha` for large negative inputs; must be positive.

    Notes
    -----
    .. math:: y = \begin{cases} x & x > 0 \\ \alpha (e^{x} - 1) & x \le 0 \end{cases}, \qquad
              \frac{\partial y}{\partial x} = \begin{cases} 1 & x > 0 \\ y + \alpha & x \le 0
              \end{cases}

    ``expm1`` keeps precision near 0, and the exponential is taken of :math:`\min(x, 0)` only,
    so large positive inputs cannot overflow.

    References
    ----------
    Clevert et al. (2016), "Fast and Accurate Deep Network Learning by Exponential Linear Units".
    """

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = check_real(alpha, "alpha", low=0.0, low_inclusive=False)
        self._x: np.ndarray | None = None
        self._y: np.ndarray | None = None

    def forward(self, x: np.ndarray, *, training: bool = True) -> np.ndarray:
        alpha = x.dtype.type(self.alpha)
        y = np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))
        if training:
            self._x, self._y = x, y
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        if self._x is None or self._y is None:
            raise self._missing_cache()
        alpha = grad_output.dtype.type(self.alpha)
        return grad_output * np.where(self._x > 0, 1, self._y + alpha)

    def get_config(self) -> dict[str, Any]:
        return {"alpha": self.alpha}


class GELU(Layer):
    r"""Gaussian error linear unit, in its tanh approximation.

    NumPy has no ``erf``, so this is the tanh form used by BERT and GPT-2 (and by PyTorch's
    ``GELU(approximate="tanh")``), which differs from the exact GELU by less than 1e-3.

    Notes
    -----
    With :math:`c = \sqrt{2/\pi}`, :math:`u = c (x + 0.044715 x^3)` and :math:`t = \tanh u`:

    .. math::
        y = \tfrac{1}{2} x (1 + t), \qquad
        \frac{\partial y}{\partial x} = \tfrac{1}{2} (1 + t)
            + \tfrac{1}{2} x (1 - t^2) \, c \, (1 + 3 \cdot 0.044715 x^2)

    References
    ----------
    Hendrycks & Gimpel (2016), "Gaussian Error Linear Units (GELUs)".
    """

    _C = float(np.sqrt(2.0 / np.pi))
    _K = 0.044715

    def __init__(self) -> None:
        self._x: np.ndarray | None = None
        self._t: np.ndarray | None = None

    def forward(self, x: np.ndarray, *, training: bool = True) -> np.ndarray:
        c, k = x.dtype.type(self._C), x.dtype.type(self._K)
        t = np.tanh(c * (x + k * x * x * x))
        if training:
            self._x, self._t = x, t
        return 0.5 * x * (1 + t)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        if self._x is None or self._t is None:
            raise self._missing_cache()
        x, t = self._x, self._t
        c, k = x.dtype.type(self._C), x.dtype.type(self._K)
        derivative = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * k * x * x)
        return grad_output * derivative


class Softmax(Layer):
    r"""Row-wise softmax, turning each row of scores into probabilities.

    Use :class:`~nnscratch.nn.losses.SoftmaxCrossEntropy` on logits for training; this layer is for
    models that must output probabilities, and for teaching the Jacobian below.

    Notes
    -----
    .. math:: y_{ij} = \frac{e^{x_{ij} - m_i}}{\sum_k e^{x_{ik} - m_i}}, \quad
              m_i = \max_k x_{ik}

    Subtracting the row maximum changes nothing mathematically and keeps :math:`e^{(\cdot)}`
    from overflowing. The Jacobian-vector product is

    .. math:: \frac{\partial L}{\partial x_{ij}} = y_{ij}
              \Big(G_{ij} - \sum_k G_{ik} y_{ik}\Big)
    """

    def __init__(self) -> None:
        self._y: np.ndarray | None = None

    def forward(self, x: np.ndarray, *, training: bool = True) -> np.ndarray:
        y = softmax(x)
        if training:
            self._y = y
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        if self._y is None:
            raise self._missing_cache()
        y = self._y
        return y * (grad_output - np.sum(grad_output * y, axis=1, keepdims=True))


def softmax(x: np.ndarray) -> np.ndarray:
    r"""Row-wise softmax of a 2-D array ``(n_samples, n_classes)``, stable by max subtraction."""
    z = x - np.max(x, axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= np.sum(z, axis=1, keepdims=True)
    return z


def log_softmax(x: np.ndarray) -> np.ndarray:
    r"""Row-wise :math:`\log \mathrm{softmax}(x) = x - \operatorname{logsumexp}(x)`, stably."""
    shifted = x - np.max(x, axis=1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))


#: Activation layers by name, for string options such as ``activation="relu"``.
ACTIVATIONS: dict[str, type[Layer]] = {
    "identity": Identity,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "elu": ELU,
    "gelu": GELU,
    "softmax": Softmax,
}


def get_activation(name: str) -> Layer:
    """Build a fresh activation layer from its name in :data:`ACTIVATIONS`."""
    try:
        return ACTIVATIONS[name]()
    except (KeyError, TypeError):
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}."
        ) from None
