"""Trainable parameters: an array and the gradient that backpropagation fills in.

A :class:`Parameter` is the only state an optimiser touches. It is deliberately tiny:
no autograd graph, no hooks — a layer's ``backward`` writes ``grad`` and an optimiser reads it.
"""

from __future__ import annotations

import itertools

import numpy as np


class Parameter:
    """A trainable array and its gradient.

    Parameters
    ----------
    value : ndarray
        The initial value. It is used as is (not copied) so that optimisers can update it
        in place.
    name : str, default=""
        A human-readable name such as ``"W"`` or ``"b"``, used in gradient-check reports and
        model files.

    Attributes
    ----------
    value : ndarray
        The current value; optimisers update it in place.
    grad : ndarray
        The gradient of the loss with respect to ``value``, same shape and dtype; zero until a
        backward pass writes it.

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
        """Set the gradient to zero in place."""
        self.grad.fill(0)

    def __repr__(self) -> str:
        return f"Parameter(name={self.name!r}, shape={self.shape}, dtype={self.dtype})"


class ParameterBlock:
    """Several parameters stored as views into one contiguous value array and one gradient array.

    An optimiser step is about ten element-wise operations per parameter; on one block they are
    about ten operations in all, whatever the number of layers — fewer Python calls, and long
    contiguous loops that NumPy vectorises well. :class:`~nnscratch.model.Sequential` builds one
    for its parameters with :meth:`consolidate`, which moves the values (and gradients) into the
    block and points each ``Parameter`` at its slice, so layers keep reading ``param.value`` as
    before; an optimiser recognises it with :meth:`find`.

    Attributes
    ----------
    value, grad : ndarray of shape (total_size,)
    slices : list of slice
        Where each parameter lives in the block.
    """

    def __init__(self, value: np.ndarray, grad: np.ndarray, slices: list[slice]) -> None:
        self.value = value
        self.grad = grad
        self.slices = slices

    @classmethod
    def consolidate(cls, params: list[Parameter]) -> ParameterBlock | None:
        """Move ``params`` into one block; ``None`` when they do not share one dtype."""
        if not params or len({p.dtype for p in params}) != 1:
            return None
        sizes = [p.value.size for p in params]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        value = np.empty(offsets[-1], dtype=params[0].dtype)
        grad = np.zeros_like(value)
        slices = [slice(start, stop) for start, stop in itertools.pairwise(offsets)]
        for param, where in zip(params, slices, strict=True):
            value[where] = param.value.reshape(-1)
            grad[where] = param.grad.reshape(-1)
            param.value = value[where].reshape(param.shape)
            param.grad = grad[where].reshape(param.shape)
        return cls(value, grad, slices)

    @classmethod
    def find(cls, params: list[Parameter]) -> ParameterBlock | None:
        """The block that ``params``, in order, exactly fill — or ``None`` if there is none.

        ``None`` when the parameters were never consolidated, or are only part of a block (an
        optimiser given a subset of a model's parameters must not update the rest).
        """
        if not params:
            return None
        value, grad = params[0].value.base, params[0].grad.base
        if value is None or grad is None or value.ndim != 1 or grad.shape != value.shape:
            return None
        slices, offset = [], 0
        for param in params:
            size = param.value.size
            if not (param.value.base is value and param.grad.base is grad
                    and _starts_at(param.value, value, offset)
                    and _starts_at(param.grad, grad, offset)):
                return None
            slices.append(slice(offset, offset + size))
            offset += size
        return cls(value, grad, slices) if offset == value.size else None

    def intact(self, params: list[Parameter]) -> bool:
        """Whether every parameter still lives in this block (nobody re-assigned an array)."""
        return all(p.value.base is self.value and p.grad.base is self.grad for p in params)

    def zeros(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """A zeroed array the size of the block, and its per-parameter views."""
        block = np.zeros_like(self.value)
        return block, [block[where] for where in self.slices]


def _starts_at(view: np.ndarray, block: np.ndarray, offset: int) -> bool:
    """Whether ``view`` is a C-contiguous stretch of ``block`` starting at element ``offset``."""
    if not view.flags.c_contiguous:
        return False
    start = view.__array_interface__["data"][0] - block.__array_interface__["data"][0]
    return start == offset * block.itemsize
