r"""Numerical gradient checks: compare a backward pass with central finite differences.

If ``backward`` is right, nudging one input by :math:`\pm h` changes the loss by about
:math:`\pm h` times the analytic gradient. This module does that for every entry of a layer's
input and parameters, a loss's logits, or a whole model — the way to *prove* a gradient, and
the way to learn what one is. It is public because it teaches.

To check a layer (whose output is an array, not a scalar), the scalar is
:math:`L = \sum_{ij} R_{ij}\, y_{ij}` for a fixed random :math:`R`; then
:math:`\partial L / \partial y = R`, and any mistake in ``backward`` shows up.

Use float64: in float32, rounding (about 1e-7) swamps the differences.

What is left out: complex-step differentiation and checks of second derivatives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from nnscratch.nn.layers import Layer
from nnscratch.nn.losses import Loss


@dataclass
class GradcheckReport:
    r"""The worst relative error of each checked array.

    Attributes
    ----------
    errors : dict of str to float
        ``"input"``, ``"logits"`` or a parameter name (``"2.W"``: the third parameter, a ``W``),
        each mapped to
        :math:`\lVert g_\text{analytic} - g_\text{numeric} \rVert_2 /
        \max(\lVert g_\text{analytic} \rVert_2, \lVert g_\text{numeric} \rVert_2)`.
    """

    errors: dict[str, float] = field(default_factory=dict)

    @property
    def max_error(self) -> float:
        """The worst error over all checked arrays."""
        return max(self.errors.values(), default=0.0)

    def passed(self, tolerance: float = 1e-7) -> bool:
        """Whether every error is below ``tolerance``."""
        return self.max_error < tolerance

    def __str__(self) -> str:
        width = max((len(name) for name in self.errors), default=0)
        lines = [f"{name:<{width}}  {error:.2e}" for name, error in self.errors.items()]
        return "\n".join(lines)


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    r"""Norm-wise relative error :math:`\lVert a - n \rVert / \max(\lVert a \rVert, \lVert n
    \rVert)`, 0 when both are 0."""
    scale = max(float(np.linalg.norm(analytic)), float(np.linalg.norm(numeric)))
    if scale == 0.0:
        return 0.0
    return float(np.linalg.norm(analytic - numeric)) / scale


def numerical_gradient(
    f: Callable[[], float], array: np.ndarray, *, h: float = 1e-6
) -> np.ndarray:
    r"""Central differences of the scalar ``f()`` with respect to every entry of ``array``.

    ``array`` is perturbed in place and restored.

    .. math:: \frac{\partial f}{\partial a_k} \approx \frac{f(a + h e_k) - f(a - h e_k)}{2h}

    Returns
    -------
    ndarray shaped like ``array``, float64
    """
    grad = np.zeros(array.shape, dtype=np.float64)
    flat = array.reshape(-1)  # a view: writing to it perturbs ``array``
    grad_flat = grad.reshape(-1)
    for k in range(flat.size):
        original = flat[k]
        flat[k] = original + h
        plus = f()
        flat[k] = original - h
        minus = f()
        flat[k] = original
        grad_flat[k] = (plus - minus) / (2 * h)
    return grad


def _require_float64(*arrays: np.ndarray) -> None:
    for array in arrays:
        if array.dtype != np.float64:
            raise TypeError(
                f"gradient checks need float64 arrays, got {array.dtype}; build the layer with "
                "dtype=np.float64 and pass float64 inputs."
            )


def check_layer(
    layer: Layer, x: np.ndarray, *, rng: np.random.Generator | None = None, h: float = 1e-6
) -> GradcheckReport:
    """Check a layer's (or a whole ``Sequential``'s) input and parameter gradients.

    Parameters
    ----------
    layer : Layer
        In float64. Layers with randomness (``Dropout``) must be checked with a fixed mask;
        run with ``p=0`` or check the model in evaluation mode instead.
    x : ndarray of shape (n_samples, in_features), float64
    rng : Generator, default=None
        Draws the projection :math:`R`.
    h : float, default=1e-6

    Returns
    -------
    GradcheckReport
        Keys ``"input"`` and ``"<index>.<name>"`` for each parameter.
    """
    _require_float64(x, *(p.value for p in layer.parameters()))
    rng = rng if rng is not None else np.random.default_rng(0)
    x = np.array(x, dtype=np.float64)
    projection = rng.standard_normal(layer.forward(x, training=True).shape)

    def objective() -> float:
        return float(np.sum(layer.forward(x, training=True) * projection))

    layer.forward(x, training=True)
    grad_input = layer.backward(projection.copy())
    analytic = {f"{i}.{p.name}": p.grad.copy() for i, p in enumerate(layer.parameters())}
    report = GradcheckReport()
    report.errors["input"] = relative_error(grad_input, numerical_gradient(objective, x, h=h))
    for (name, grad), param in zip(analytic.items(), layer.parameters(), strict=True):
        report.errors[name] = relative_error(grad, numerical_gradient(objective, param.value, h=h))
    return report


def check_loss(
    loss: Loss,
    logits: np.ndarray,
    y: np.ndarray,
    *,
    sample_weight: np.ndarray | None = None,
    h: float = 1e-6,
) -> GradcheckReport:
    """Check a loss's gradient with respect to its logits.

    Returns
    -------
    GradcheckReport
        One key, ``"logits"``.
    """
    _require_float64(logits)
    logits = np.array(logits, dtype=np.float64)
    loss.forward(logits, y, sample_weight=sample_weight)
    analytic = loss.backward().copy()

    def objective() -> float:
        return loss.forward(logits, y, sample_weight=sample_weight)

    numeric = numerical_gradient(objective, logits, h=h)
    return GradcheckReport({"logits": relative_error(analytic, numeric)})


def check_model(
    model: Layer,
    loss: Loss,
    X: np.ndarray,
    y: np.ndarray,
    *,
    h: float = 1e-6,
) -> GradcheckReport:
    """Check a whole model trained with ``loss``: input and every parameter gradient.

    Returns
    -------
    GradcheckReport
        Keys ``"input"`` and ``"<index>.<name>"`` over ``model.parameters()``.
    """
    params = model.parameters()
    _require_float64(X, *(p.value for p in params))
    X = np.array(X, dtype=np.float64)

    def objective() -> float:
        return loss.forward(model.forward(X, training=True), y)

    objective()
    grad_input = model.backward(loss.backward())
    report = GradcheckReport()
    analytic = [p.grad.copy() for p in params]
    report.errors["input"] = relative_error(grad_input, numerical_gradient(objective, X, h=h))
    for index, (param, grad) in enumerate(zip(params, analytic, strict=True)):
        numeric = numerical_gradient(objective, param.value, h=h)
        report.errors[f"{index}.{param.name}"] = relative_error(grad, numeric)
    return report
