r"""Layers with an explicit forward and backward pass: the base class, ``Dense``, ``Dropout``,
``Flatten`` and ``Reshape``.

Every layer follows one interface (see ``STYLE.md``):

- ``forward(x, *, training=True) -> y`` keeps in a cache only what ``backward`` needs; each call
  overwrites the cache. With ``training=False`` it changes nothing in the layer, so one model
  can predict from several threads at once.
- ``backward(grad_output) -> grad_input`` fills each ``Parameter.grad`` and returns
  :math:`\partial L / \partial x`, shaped like the input. Without a cache it raises
  ``RuntimeError``.
- ``fill_parameter_grads(grad_output)`` fills the parameter gradients only: training calls it on
  the first layer, whose input (the data) needs no gradient.
- ``parameters() -> list[Parameter]``; ``buffers() -> dict[str, ndarray]`` for state that is
  not trained but kept with the weights (batch norm's running statistics).

There is no autograd: the gradient of each layer is written next to its forward equation, so it
can be read, and checked numerically (:mod:`nnscratch.nn.gradcheck`). Parameter-free activation
layers live in :mod:`nnscratch.nn.activations`, convolution and pooling in
:mod:`nnscratch.nn.conv`, batch and layer normalisation in :mod:`nnscratch.nn.normalization`.

What is left out: recurrent layers, attention, and any layer that changes the batch size.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnscratch._validation import check_dtype, check_int, check_real, check_rng
from nnscratch.nn._kernels import affine, times_transpose, transpose_times
from nnscratch.nn.initializers import Initializer, RandomSource, get_initializer
from nnscratch.nn.parameter import Parameter

__all__ = ["Dense", "Dropout", "Flatten", "Layer", "Reshape"]


class Layer:
    """Base class of every layer: the forward/backward/parameters interface.

    Subclasses implement :meth:`forward` and :meth:`backward`; layers with weights override
    :meth:`parameters` (and may override :meth:`fill_parameter_grads`). :meth:`get_config`
    returns the constructor arguments that rebuild the layer (used by model files).

    ``forward(x, training=False)`` must not change the layer (no cache, no buffer): inference
    runs from several threads at once on one model.
    """

    def forward(self, x: np.ndarray, *, training: bool = True) -> np.ndarray:
        """Compute the layer's output for a batch ``x`` of shape ``(n_samples, ...)``."""
        raise NotImplementedError

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Given dL/dy, fill parameter gradients and return dL/dx."""
        raise NotImplementedError

    def fill_parameter_grads(self, grad_output: np.ndarray) -> None:
        r"""Given dL/dy, fill the parameter gradients only; dL/dx is not needed.

        Training calls this on the first layer, whose input is the data. The default runs
        :meth:`backward` and drops its result; :class:`Dense` skips the product
        :math:`G W^\top`.
        """
        self.backward(grad_output)

    def parameters(self) -> list[Parameter]:
        """The trainable parameters, in a fixed order (empty for activations)."""
        return []

    def buffers(self) -> dict[str, np.ndarray]:
        """State that is not a parameter but belongs with the weights, by name (empty here).

        :class:`~nnscratch.nn.normalization.BatchNorm`'s running statistics: training updates
        them in place, inference reads them, no optimiser touches them, and model files and
        early stopping keep them with the parameters. The arrays themselves, not copies.
        """
        return {}

    def get_config(self) -> dict[str, Any]:
        """The JSON-serialisable constructor arguments that rebuild this layer."""
        return {}

    def _missing_cache(self) -> RuntimeError:
        return RuntimeError(
            f"{type(self).__name__}.backward() was called before forward(); "
            "run forward(x, training=True) on the batch first."
        )

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Dense(Layer):
    r"""A fully connected (affine) layer: :math:`y = x W + b`.

    Parameters
    ----------
    in_features : int
        Size of each input row.
    out_features : int
        Size of each output row.
    init : str or callable, default="glorot_uniform"
        Weight initialiser: a name from :data:`nnscratch.nn.initializers.INITIALIZERS`
        ({"tutorial", "lecun_normal", "lecun_uniform", "glorot_normal", "glorot_uniform",
        "he_normal", "he_uniform"}) or a callable ``(shape, rng) -> ndarray``.
    rng : numpy.random.Generator, numpy.random.RandomState, int or None, default=None
        Source of the initial weights. ``None`` draws fresh entropy; pass a seed or generator
        for reproducible weights.
    dtype : {np.float32, np.float64}, default=np.float32
        The dtype of the weights; inputs must have the same dtype.

    Attributes
    ----------
    W : Parameter of shape (in_features, out_features)
    b : Parameter of shape (out_features,)
        Initialised to zero.

    Notes
    -----
    Forward, for a batch :math:`x` of shape ``(n_samples, in_features)``:

    .. math:: y = x W + b

    Backward, given :math:`G = \partial L / \partial y` of shape ``(n_samples, out_features)``:

    .. math::
        \frac{\partial L}{\partial W} = x^\top G, \qquad
        \frac{\partial L}{\partial b} = \sum_{i} G_{i,:}, \qquad
        \frac{\partial L}{\partial x} = G W^\top

    The loss is already averaged over the batch (see :mod:`nnscratch.nn.losses`), so the sums here
    are plain sums. :meth:`fill_parameter_grads` computes the first two only: training needs no
    gradient with respect to the data.

    The three products run through :mod:`nnscratch.nn._kernels` (``affine``,
    ``transpose_times``, ``times_transpose``), which compute each in the BLAS layout that is
    fastest on the machine for its shapes: the same numbers up to rounding, and the output may
    be stored column by column (F order). See :func:`nnscratch.nn._kernels.matmul`.

    Examples
    --------
    >>> import numpy as np
    >>> layer = Dense(3, 2, rng=0, dtype=np.float64)
    >>> layer.forward(np.ones((4, 3))).shape
    (4, 2)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        init: str | Initializer = "glorot_uniform",
        rng: RandomSource | int | None = None,
        dtype: Any = np.float32,
    ) -> None:
        self.in_features = check_int(in_features, "in_features", low=1)
        self.out_features = check_int(out_features, "out_features", low=1)
        self.dtype = check_dtype(dtype)
        self.init = init if isinstance(init, str) else getattr(init, "__name__", "custom")
        initializer = get_initializer(init)
        weights = initializer((self.in_features, self.out_features), check_rng(rng))
        self.W = Parameter(np.ascontiguousarray(weights, dtype=self.dtype), name="W")
        self.b = Parameter(np.zeros(self.out_features, dtype=self.dtype), name="b")
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray, *, training: bool = True) -> np.ndarray:
        """Return ``x @ W + b``, shape ``(n_samples, out_features)``."""
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise self._wrong_width(x)
        if training:
            self._x = x
        return affine(x, self.W.value, self.b.value)  # x @ W + b

    def _wrong_width(self, x: np.ndarray) -> ValueError:
        per_sample = int(np.prod(x.shape[1:])) if x.ndim >= 1 else 0
        return ValueError(
            f"Dense({self.in_features}, {self.out_features}) takes rows (n_samples, "
            f"{self.in_features}), but its input has shape {x.shape}. Build it with "
            f"in_features={per_sample}; after a convolution, put Flatten() before it (its "
            "in_features is then channels x height x width of the image that reaches it)."
        )

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Fill ``W.grad`` and ``b.grad``; return ``grad_output @ W.T``, shaped like ``x``."""
        self.fill_parameter_grads(grad_output)
        return times_transpose(grad_output, self.W.value, like=self._x)  # grad_output @ W.T

    def fill_parameter_grads(self, grad_output: np.ndarray) -> None:
        """Fill ``W.grad = x.T @ grad_output`` and ``b.grad = grad_output.sum(axis=0)``."""
        if self._x is None:
            raise self._missing_cache()
        self.W.grad = transpose_times(self._x, grad_output)  # x.T @ grad_output
        self.b.grad = grad_output.sum(axis=0)

    def parameters(self) -> list[Parameter]:
        return [self.W, self.b]

    def get_config(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "init": self.init,
            "dtype": self.dtype.name,
        }


class Dropout(Layer):
    r"""Inverted dropout: zero each input with probability ``p`` during training.

    Parameters
    ----------
    p : float, default=0.5
        Probability of dropping a unit, in ``[0, 1)``.
    rng : numpy.random.Generator, int or None, default=None
        Source of the dropout masks.

    Notes
    -----
    In training, with a mask :math:`m_{ij} \sim \text{Bernoulli}(1 - p)`:

    .. math:: y = \frac{m \odot x}{1 - p}, \qquad
              \frac{\partial L}{\partial x} = \frac{m \odot G}{1 - p}

    Scaling by :math:`1/(1-p)` at training time keeps the expected activation unchanged, so at
    inference (``training=False``) the layer is the identity.

    References
    ----------
    Srivastava et al. (2014), "Dropout: A Simple Way to Prevent Neural Networks from
    Overfitting".
    """

    def __init__(self, p: float = 0.5, *, rng: RandomSource | int | None = None) -> None:
        self.p = check_real(p, "p", low=0.0, high=1.0, high_inclusive=False)
        self.rng = check_rng(rng)
        self._scaled_mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, *, training: bool = True) -> np.ndarray:
        if not training:
            return x
        if self.p == 0.0:
            self._scaled_mask = np.ones((), dtype=x.dtype)
            return x
        if isinstance(self.rng, np.random.Generator):
            uniform = self.rng.random(x.shape, dtype=x.dtype)
        else:  # a legacy RandomState draws float64 only
            uniform = self.rng.random_sample(x.shape)
        self._scaled_mask = (uniform >= self.p) * x.dtype.type(1.0 / (1.0 - self.p))
        return x * self._scaled_mask

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        if self._scaled_mask is None:
            raise self._missing_cache()
        return grad_output * self._scaled_mask

    def get_config(self) -> dict[str, Any]:
        return {"p": self.p}


class Flatten(Layer):
    r"""Flatten each sample into one row: ``(n_samples, d_1, ..., d_k)`` → ``(n_samples,
    d_1 \cdots d_k)``, in C order (an image's channels, then rows, then columns).

    Notes
    -----
    A reshape moves no numbers, so the gradient is the incoming one reshaped back:

    .. math:: y_{n,\, (i_1, \dots, i_k)} = x_{n, i_1, \dots, i_k}, \qquad
              \frac{\partial L}{\partial x_{n, i_1, \dots, i_k}}
              = G_{n,\, (i_1, \dots, i_k)}

    where :math:`(i_1, \dots, i_k)` is the row-major flat index. A 2-D input passes through
    unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> Flatten().forward(np.zeros((2, 3, 4, 5))).shape
    (2, 60)
    """

    def __init__(self) -> None:
        self._input_shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray, *, training: bool = True) -> np.ndarray:
        """Return ``x.reshape(len(x), -1)``, shape ``(n_samples, n_features)``."""
        if x.ndim < 2:
            raise ValueError(
                f"Flatten takes a batch (n_samples, ...) of at least 2 dimensions, got shape "
                f"{x.shape}; add the batch axis, e.g. x[None]."
            )
        if training:
            self._input_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Return ``grad_output`` reshaped to the input's shape."""
        if self._input_shape is None:
            raise self._missing_cache()
        return grad_output.reshape(self._input_shape)


class Reshape(Layer):
    r"""Give each sample a new shape: ``(n_samples, ...)`` → ``(n_samples, *shape)``.

    ``Reshape((1, 28, 28))`` first lets an image model take the loaders' 784 columns.

    Parameters
    ----------
    shape : tuple of int
        The shape of one sample after the layer, without the batch axis; each entry >= 1.

    Attributes
    ----------
    shape : tuple of int
    n_features : int
        The values per sample, ``prod(shape)``: the input must have as many.

    Raises
    ------
    ValueError
        In the constructor, for an empty shape or a size below 1; in :meth:`forward`, when a
        sample does not hold ``prod(shape)`` values.

    Notes
    -----
    In row-major (C) order, with :math:`\text{flat}` the flat index within a sample:

    .. math:: y_{n, j_1, \dots, j_m} = x_{n,\, \text{flat}(j)}, \qquad
              \frac{\partial L}{\partial x_{n,\, \text{flat}(j)}} = G_{n, j_1, \dots, j_m}

    Examples
    --------
    >>> import numpy as np
    >>> Reshape((1, 28, 28)).forward(np.zeros((5, 784))).shape
    (5, 1, 28, 28)
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        try:
            entries = tuple(shape)
        except TypeError:
            raise TypeError(
                f"shape must be a tuple of integers such as (1, 28, 28), got {shape!r}."
            ) from None
        if not entries:
            raise ValueError("shape must have at least one entry, e.g. (1, 28, 28); got ().")
        self.shape = tuple(check_int(size, "shape", low=1) for size in entries)
        self.n_features = int(np.prod(self.shape))
        self._input_shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray, *, training: bool = True) -> np.ndarray:
        """Return ``x.reshape(len(x), *shape)``."""
        if x.ndim < 1 or int(np.prod(x.shape[1:])) != self.n_features:
            per_sample = int(np.prod(x.shape[1:])) if x.ndim >= 1 else 0
            raise ValueError(
                f"Reshape({self.shape}) needs {self.n_features} values per sample, but x has "
                f"shape {x.shape} ({per_sample} per sample); pass inputs of that size or "
                "change the shape."
            )
        if training:
            self._input_shape = x.shape
        return x.reshape(x.shape[0], *self.shape)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Return ``grad_output`` reshaped to the input's shape."""
        if self._input_shape is None:
            raise self._missing_cache()
        return grad_output.reshape(self._input_shape)

    def get_config(self) -> dict[str, Any]:
        return {"shape": list(self.shape)}
