"""``Sequential``: a model that is a list of layers applied in order.

The forward pass runs the layers first to last; the backward pass runs them last to first,
each turning the gradient of its output into the gradient of its input (the chain rule). The
loss is separate (see :mod:`nnscratch.nn.losses`): the model outputs logits.

A model takes rows ``(n_samples, n_features)`` or, when it starts with a convolution, images
``(n_samples, channels, height, width)``; :meth:`Sequential.check_input` says whether an array
fits, before any layer runs.

What is left out: branching graphs (residual connections), shared weights, and building the
layer list from a spec — :func:`build_mlp` covers the common multi-layer perceptron.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from nnscratch._validation import check_dtype, check_int, check_real, check_rng
from nnscratch.nn.activations import ACTIVATIONS, get_activation
from nnscratch.nn.conv import AvgPool2D, Conv2D, GlobalAvgPool2D, MaxPool2D
from nnscratch.nn.initializers import RandomSource
from nnscratch.nn.layers import Dense, Dropout, Flatten, Layer, Reshape
from nnscratch.nn.normalization import BatchNorm, LayerNorm
from nnscratch.nn.parameter import Parameter

#: Layers that take images of any size (their input width is not fixed).
_IMAGE_LAYERS = (Conv2D, MaxPool2D, AvgPool2D, GlobalAvgPool2D)


class Sequential(Layer):
    """A stack of layers applied one after the other.

    Parameters
    ----------
    layers : iterable of Layer
        The layers, first to last.

    Examples
    --------
    >>> import numpy as np
    >>> from nnscratch.nn.layers import Dense
    >>> from nnscratch.nn.activations import ReLU
    >>> model = Sequential([Dense(4, 8, rng=0), ReLU(), Dense(8, 3, rng=1)])
    >>> model.forward(np.zeros((5, 4), dtype=np.float32)).shape
    (5, 3)
    """

    def __init__(self, layers: Iterable[Layer]) -> None:
        self.layers: list[Layer] = list(layers)
        for position, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise TypeError(
                    f"layers[{position}] must be a Layer, got {type(layer).__name__}."
                )

    def forward(self, x: np.ndarray, *, training: bool = True) -> np.ndarray:
        """Run every layer in order; return the last output (the logits)."""
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Run every layer's backward in reverse order; return dL/d(model input).

        Parameters
        ----------
        grad_output : ndarray
            dL/d(model output), shaped like the last forward output.

        Returns
        -------
        ndarray shaped like the model input.
        """
        grad = grad_output
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def fill_parameter_grads(self, grad_output: np.ndarray) -> None:
        r"""Backpropagate to every parameter, but not to the model input.

        Training needs no gradient with respect to the data, so the first layer with parameters
        only fills its parameter gradients, and the layers before it (a ``Reshape``, say) are not
        visited: for a first :class:`~nnscratch.nn.layers.Dense` layer that skips the largest
        matrix product of the step (:math:`G W^\top` with ``in_features`` columns), for a first
        :class:`~nnscratch.nn.conv.Conv2D` its whole input gradient.
        """
        first = next((i for i, layer in enumerate(self.layers) if layer.parameters()), None)
        if first is None:
            return
        grad = grad_output
        for layer in reversed(self.layers[first + 1:]):
            grad = layer.backward(grad)
        self.layers[first].fill_parameter_grads(grad)

    def parameters(self) -> list[Parameter]:
        """All parameters, layer by layer, in order."""
        return [param for layer in self.layers for param in layer.parameters()]

    def zero_grad(self) -> None:
        """Zero every parameter gradient."""
        for param in self.parameters():
            param.zero_grad()

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the parameters (float64 for a model without any)."""
        params = self.parameters()
        return params[0].dtype if params else np.dtype(np.float64)

    def buffers(self) -> dict[str, np.ndarray]:
        """Every layer's buffers (batch norm's running statistics), keyed ``"<index>.<name>"``
        by the layer's position."""
        return {f"{position}.{name}": array for position, layer in enumerate(self.layers)
                for name, array in layer.buffers().items()}

    @property
    def in_features(self) -> int | None:
        """The width of the rows ``(n_samples, in_features)`` the model takes, if it fixes one.

        The first layer that fixes it decides: a :class:`~nnscratch.nn.layers.Dense` layer's
        ``in_features``, a :class:`~nnscratch.nn.layers.Reshape`'s values per sample. Layers
        that keep the width (activations, ``Dropout``, ``Flatten``, the normalisations) are
        looked through. ``None`` when a convolution or a pool comes first (its input is an
        image of any size) or there is no such layer. For a dense network: its first
        ``Dense`` layer's ``in_features``.
        """
        for layer in self.layers:
            if isinstance(layer, Dense):
                return layer.in_features
            if isinstance(layer, Reshape):
                return layer.n_features
            if isinstance(layer, _IMAGE_LAYERS):
                return None
        return None

    @property
    def out_features(self) -> int | None:
        """The width of each output row, if the last layer that fixes it says.

        The last :class:`~nnscratch.nn.layers.Dense` layer's ``out_features``; a
        :class:`~nnscratch.nn.layers.Reshape`'s values per sample; a
        :class:`~nnscratch.nn.conv.Conv2D`'s ``out_channels`` when only a
        :class:`~nnscratch.nn.conv.GlobalAvgPool2D` (and width-keeping layers) follow it.
        ``None`` otherwise.
        """
        pooled = False
        for layer in reversed(self.layers):
            if isinstance(layer, Dense):
                return layer.out_features
            if isinstance(layer, Reshape):
                return layer.n_features
            if isinstance(layer, GlobalAvgPool2D):
                pooled = True
            elif isinstance(layer, Conv2D):
                return layer.out_channels if pooled else None
            elif isinstance(layer, (Flatten, MaxPool2D, AvgPool2D)):
                return None
        return None

    def check_input(self, X: np.ndarray, *, name: str = "X") -> None:
        """Raise ``ValueError`` unless ``X`` has the shape the model's first layers take.

        The first layer that fixes the input's shape decides: ``Dense`` takes rows of its
        ``in_features``; ``Reshape`` any shape with its number of values per sample; a
        convolution, a pool or a normalisation checks what its ``forward`` would. Layers that
        keep the shape are looked through; ``Flatten`` lets a ``Dense`` layer after it take
        images with ``in_features`` values each.

        Parameters
        ----------
        X : ndarray of shape (n_samples, ...)
        name : str, default="X"
            The name the message uses.

        Raises
        ------
        ValueError
            Naming the shape that came, the shape expected and the fix.
        """
        flat = False
        for layer in self.layers:
            if isinstance(layer, Flatten):
                flat = True
            elif isinstance(layer, Dense):
                if X.ndim != 2 and not flat:
                    raise ValueError(
                        f"{name} has shape {X.shape}, but the model starts with "
                        f"Dense({layer.in_features}, {layer.out_features}), which takes rows "
                        f"(n_samples, {layer.in_features}); flatten the images with "
                        f"{name}.reshape(len({name}), -1) or put Flatten() first."
                    )
                n_features = int(np.prod(X.shape[1:]))
                if n_features != layer.in_features:
                    raise ValueError(
                        f"{name} has {n_features} features, but the model expects "
                        f"{layer.in_features}. Use inputs preprocessed the same way as the "
                        "training data."
                    )
                return
            elif isinstance(layer, Reshape):
                n_features = int(np.prod(X.shape[1:]))
                if n_features != layer.n_features:
                    raise ValueError(
                        f"{name} has {n_features} values per sample (shape {X.shape}), but the "
                        f"model starts with Reshape({layer.shape}), which needs "
                        f"{layer.n_features}. Use inputs preprocessed the same way as the "
                        "training data."
                    )
                return
            elif isinstance(layer, (*_IMAGE_LAYERS, BatchNorm, LayerNorm)):
                layer._check_input(X.reshape(len(X), -1) if flat else X, name)
                return

    def get_config(self) -> dict[str, Any]:
        return {
            "layers": [
                {"type": type(layer).__name__, **layer.get_config()} for layer in self.layers
            ]
        }

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Layer:
        return self.layers[index]

    def __repr__(self) -> str:
        inner = ",\n".join(f"    {layer!r}" for layer in self.layers)
        return f"Sequential([\n{inner}\n])"


def build_mlp(
    in_features: int,
    hidden_layers: Sequence[int],
    out_features: int,
    *,
    activation: str = "relu",
    init: str | None = None,
    dropout: float = 0.0,
    rng: RandomSource | int | None = None,
    dtype: Any = np.float32,
) -> Sequential:
    """Build a multi-layer perceptron: ``Dense → activation [→ Dropout]`` per hidden layer,
    then a final ``Dense`` that outputs logits.

    Parameters
    ----------
    in_features : int
        Input width (784 for flattened MNIST).
    hidden_layers : sequence of int
        Width of each hidden layer; may be empty (a linear model).
    out_features : int
        Number of logits: 1 for a binary task, ``n_classes`` otherwise.
    activation : str, default="relu"
        A name from :data:`nnscratch.nn.activations.ACTIVATIONS`.
    init : str or None, default=None
        Initialiser name; ``None`` picks ``he_normal`` for the ReLU family and
        ``glorot_uniform`` otherwise.
    dropout : float, default=0.0
        Dropout probability after each hidden activation (0 adds no Dropout layers).
    rng : Generator, RandomState, int or None, default=None
        One generator draws every layer's weights in order, so a seed fixes the whole model.
    dtype : {np.float32, np.float64}, default=np.float32

    Returns
    -------
    Sequential
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}.")
    check_real(dropout, "dropout", low=0.0, high=1.0, high_inclusive=False)
    dtype = check_dtype(dtype)
    rng = check_rng(rng)
    if init is None:
        relu_family = activation in ("relu", "leaky_relu", "elu", "gelu")
        init = "he_normal" if relu_family else "glorot_uniform"
    sizes = [check_int(in_features, "in_features", low=1)]
    sizes += [check_int(width, "hidden_layers", low=1) for width in hidden_layers]
    layers: list[Layer] = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        layers.append(Dense(fan_in, fan_out, init=init, rng=rng, dtype=dtype))
        layers.append(get_activation(activation))
        if dropout > 0:
            layers.append(Dropout(dropout, rng=rng))
    layers.append(Dense(sizes[-1], check_int(out_features, "out_features", low=1), init=init,
                        rng=rng, dtype=dtype))
    return Sequential(layers)


def build_cnn(
    image_shape: Sequence[int],
    conv_layers: Sequence[int],
    hidden_layers: Sequence[int],
    out_features: int,
    *,
    pool_every: int = 2,
    batch_norm: bool = True,
    activation: str = "relu",
    init: str | None = None,
    dropout: float = 0.0,
    rng: RandomSource | int | None = None,
    dtype: Any = np.float32,
) -> Sequential:
    """Build a convolutional network for flat image rows: ``Reshape(image_shape)``, then
    ``Conv2D 3×3 pad 1 [→ BatchNorm] → activation`` per entry of ``conv_layers`` with a
    ``MaxPool2D 2×2`` after every ``pool_every`` of them, then ``Flatten`` and the dense part
    of :func:`build_mlp` (``Dense → activation [→ Dropout]`` per hidden layer, then the logits).

    Parameters
    ----------
    image_shape : sequence of 3 int
        ``(channels, height, width)`` of one image; the model takes rows of
        ``prod(image_shape)`` values (784 for MNIST's ``(1, 28, 28)``).
    conv_layers : sequence of int
        The output channels of each convolution, first to last; at least one.
    hidden_layers : sequence of int
        Width of each dense hidden layer after the convolutions; may be empty.
    out_features : int
        Number of logits: 1 for a binary task, ``n_classes`` otherwise.
    pool_every : int, default=2
        A 2×2 max-pool (stride 2) follows every ``pool_every``-th convolution; each halves the
        height and width (rounding down), so the image must stay at least 2×2 before each.
    batch_norm : bool, default=True
        Put a ``BatchNorm`` between each convolution and its activation; the convolutions then
        have no use for their bias, which stays but is redundant.
    activation, init, dropout, rng, dtype
        As in :func:`build_mlp`; ``dropout`` applies after the dense hidden layers only.

    Returns
    -------
    Sequential

    Raises
    ------
    ValueError
        For an image shape that is not 3 positive sizes, no convolution, a size below 1, or
        more pools than the image can take.

    Examples
    --------
    >>> model = build_cnn((1, 28, 28), [8, 16], [32], 10, rng=0)
    >>> model.forward(np.zeros((2, 784), dtype=np.float32)).shape
    (2, 10)
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}.")
    check_real(dropout, "dropout", low=0.0, high=1.0, high_inclusive=False)
    dtype = check_dtype(dtype)
    rng = check_rng(rng)
    shape = tuple(check_int(size, "image_shape", low=1) for size in image_shape)
    if len(shape) != 3:
        raise ValueError(
            f"image_shape must be (channels, height, width), got {tuple(image_shape)}; MNIST's "
            "is (1, 28, 28)."
        )
    channels = [check_int(width, "conv_layers", low=1) for width in conv_layers]
    if not channels:
        raise ValueError("conv_layers must list at least one convolution's channels, e.g. "
                         "[32, 64]; use build_mlp for a network without convolutions.")
    pool_every = check_int(pool_every, "pool_every", low=1)
    if init is None:
        relu_family = activation in ("relu", "leaky_relu", "elu", "gelu")
        init = "he_normal" if relu_family else "glorot_uniform"
    layers: list[Layer] = [Reshape(shape)]
    in_channels, height, width = shape
    for position, out_channels in enumerate(channels, start=1):
        layers.append(Conv2D(in_channels, out_channels, 3, padding=1, init=init, rng=rng,
                             dtype=dtype))
        if batch_norm:
            layers.append(BatchNorm(out_channels, dtype=dtype))
        layers.append(get_activation(activation))
        in_channels = out_channels
        if position % pool_every == 0:
            if height < 2 or width < 2:
                raise ValueError(
                    f"conv_layers {channels} with pool_every {pool_every} pool a "
                    f"{height}x{width} image; use fewer convolutions or a larger pool_every."
                )
            layers.append(MaxPool2D(2))
            height, width = height // 2, width // 2
    layers.append(Flatten())
    sizes = [in_channels * height * width]
    sizes += [check_int(size, "hidden_layers", low=1) for size in hidden_layers]
    for fan_in, fan_out in itertools.pairwise(sizes):
        layers.append(Dense(fan_in, fan_out, init=init, rng=rng, dtype=dtype))
        layers.append(get_activation(activation))
        if dropout > 0:
            layers.append(Dropout(dropout, rng=rng))
    layers.append(Dense(sizes[-1], check_int(out_features, "out_features", low=1), init=init,
                        rng=rng, dtype=dtype))
    return Sequential(layers)


#: Rows per forward pass when a model with convolutions predicts (:func:`forward_in_chunks`):
#: a convolution's intermediate arrays take tens of kilobytes per image where an MLP's take a
#: few, so 60,000 rows at once would need gigabytes.
IMAGE_MODEL_ROWS = 256


def forward_in_chunks(model: Sequential, X: np.ndarray) -> np.ndarray:
    """``model.forward(X, training=False)``, :data:`IMAGE_MODEL_ROWS` rows at a time for a model
    with image layers (any other runs in one pass). At inference no row's output depends on
    the other rows, so the result is the same up to the rounding of the matrix products."""
    if len(X) <= IMAGE_MODEL_ROWS or not has_image_layers(model):
        return model.forward(X, training=False)
    return np.concatenate([model.forward(X[start:start + IMAGE_MODEL_ROWS], training=False)
                           for start in range(0, len(X), IMAGE_MODEL_ROWS)])


def has_image_layers(model: Sequential) -> bool:
    """Whether ``model`` has a convolution or a pool (its inference runs in small chunks)."""
    return any(isinstance(layer, _IMAGE_LAYERS) for layer in model.layers)
