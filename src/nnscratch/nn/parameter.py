"""Trainable parameters: an array and the gradient that backpropagation fills in.

A :class:`Parameter` is the only state an optimiser touches. It is deliberately tiny: no
autograd graph, no hooks, no shared storage — a layer's ``backward`` sets ``grad`` and an
optimiser reads it and updates ``value`` in place.

What is left out: gradient accumulation across calls (each backward pass sets ``grad`` anew),
parameter groups, and anything that moves arrays behind the owner's back.
"""

from __future__ import annotations

import numpy as np


class Parameter:
    """A trainable array and its gradient.

    Parameters
    ----------
    value : ndarray
        The initial value. It is used as is (not copied): optimisers update it in place.
    name : str, default=""
        A human-readable name such as ``"W"`` or ``"b"``, used in gradient-check reports and
        model files.

    Attributes
    ----------
    value : ndarray
        The current value; optimisers update it in place.
    grad : ndarray
        The gradient of the loss with respect to ``value``, of the same shape and dtype. It is
        zero until a backward pass sets it; each backward pass replaces it.

    Examples
    --------
    >>> import numpy as np
    >>> p = Parameter(np.ones((2, 3)), name="W")
    >>> p.shape, p.grad.sum()
    ((2, 3), np.float64(0.0))
    """

    __slots__ = ("grad", "name", "value")

    def __init__(self, value: np.ndarray, name: str = "") -> None:
        self.value = value
        self.grad = np.zeros_like(value)
        self.name = name

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of ``value``."""
        return self.value.shape

    @property
    def dtype(self) -> np.dtype:
        """The dtype of ``value`` (and of ``grad``)."""
        return self.value.dtype

    def zero_grad(self) -> None:
        """Set the gradient to zero."""
        self.grad = np.zeros_like(self.value)

    def __repr__(self) -> str:
        return f"Parameter(name={self.name!r}, shape={self.shape}, dtype={self.dtype})"
