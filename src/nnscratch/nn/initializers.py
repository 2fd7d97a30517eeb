r"""Weight initialisers: functions of ``(shape, rng)`` that return a new float64 array.

Each initialiser takes the weight shape and a random generator, and draws in float64; the layer
casts to its own dtype once. A dense layer's shape is ``(in_features, out_features)`` (``fan_in``
first). A convolution's is ``(out_channels, in_channels, kh, kw)``, as PyTorch lays it out, and
each input and output unit connects through the whole kernel window, so, as in PyTorch and Keras,
:math:`n_\text{in} = \text{in\_channels} \cdot k_h k_w` and
:math:`n_\text{out} = \text{out\_channels} \cdot k_h k_w`: ``he_normal`` then keeps a ReLU
network's activations at unit scale through convolutions as it does through dense layers.
Biases start at zero everywhere in this package, so there are no bias initialisers.

What is left out: orthogonal and data-dependent (LSUV) initialisation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

RandomSource = np.random.Generator | np.random.RandomState
Initializer = Callable[[tuple[int, ...], RandomSource], np.ndarray]


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a dense ``(in, out)`` or a convolution ``(out, in, kh, kw)``."""
    if len(shape) == 4:
        out_channels, in_channels, kh, kw = shape
        return in_channels * kh * kw, out_channels * kh * kw
    fan_in, fan_out = shape
    return fan_in, fan_out


def tutorial_normal(shape: tuple[int, ...], rng: RandomSource) -> np.ndarray:
    r"""The tutorial's initialiser: standard normals divided by :math:`\sqrt{\text{fan\_in}}`.

    The tutorial stores weights as ``(out_features, in_features)`` and draws them with
    ``np.random.randn(out, in)``. To reproduce its numbers exactly, this draws in that order and
    returns the transpose, so the result has our layout ``(in_features, out_features)``.

    Parameters
    ----------
    shape : tuple of int
        ``(in_features, out_features)``.
    rng : numpy.random.Generator or numpy.random.RandomState
        Pass ``np.random.RandomState(42)`` to get the tutorial's exact weights (it seeded the
        legacy global generator with ``np.random.seed(42)``).

    Returns
    -------
    ndarray of shape (in_features, out_features), float64

    Notes
    -----
    .. math:: W_{ij} \sim \mathcal{N}(0, 1) / \sqrt{n_\text{in}}

    A convolution's 4-D shape (the tutorial has none) is drawn in its own order.
    """
    fan_in, fan_out = _fans(shape)
    if len(shape) == 4:
        return rng.standard_normal(shape) / np.sqrt(fan_in)
    return rng.standard_normal((fan_out, fan_in)).T / np.sqrt(fan_in)


def lecun_normal(shape: tuple[int, ...], rng: RandomSource) -> np.ndarray:
    r"""LeCun normal: :math:`W \sim \mathcal{N}(0, 1/n_\text{in})` (LeCun et al., 1998)."""
    fan_in, _ = _fans(shape)
    return rng.standard_normal(shape) * np.sqrt(1.0 / fan_in)


def lecun_uniform(shape: tuple[int, ...], rng: RandomSource) -> np.ndarray:
    r"""LeCun uniform: :math:`W \sim U(-a, a)`, :math:`a = \sqrt{3 / n_\text{in}}`."""
    fan_in, _ = _fans(shape)
    limit = np.sqrt(3.0 / fan_in)
    return rng.uniform(-limit, limit, size=shape)


def glorot_normal(shape: tuple[int, ...], rng: RandomSource) -> np.ndarray:
    r"""Glorot (Xavier) normal: :math:`W \sim \mathcal{N}(0, 2 / (n_\text{in} + n_\text{out}))`.

    References
    ----------
    Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward neural
    networks".
    """
    fan_in, fan_out = _fans(shape)
    return rng.standard_normal(shape) * np.sqrt(2.0 / (fan_in + fan_out))


def glorot_uniform(shape: tuple[int, ...], rng: RandomSource) -> np.ndarray:
    r"""Glorot (Xavier) uniform: :math:`W \sim U(-a, a)`,
    :math:`a = \sqrt{6/(n_\text{in}+n_\text{out})}`."""
    fan_in, fan_out = _fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


def he_normal(shape: tuple[int, ...], rng: RandomSource) -> np.ndarray:
    r"""He (Kaiming) normal for ReLU layers: :math:`W \sim \mathcal{N}(0, 2 / n_\text{in})`.

    References
    ----------
    He et al. (2015), "Delving Deep into Rectifiers".
    """
    fan_in, _ = _fans(shape)
    return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)


def he_uniform(shape: tuple[int, ...], rng: RandomSource) -> np.ndarray:
    r"""He (Kaiming) uniform: :math:`W \sim U(-a, a)`, :math:`a = \sqrt{6 / n_\text{in}}`."""
    fan_in, _ = _fans(shape)
    limit = np.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=shape)


#: Initialisers by name, for string options such as ``Dense(..., init="he_normal")``.
INITIALIZERS: dict[str, Initializer] = {
    "tutorial": tutorial_normal,
    "lecun_normal": lecun_normal,
    "lecun_uniform": lecun_uniform,
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "xavier_normal": glorot_normal,
    "xavier_uniform": glorot_uniform,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
}


def get_initializer(init: str | Initializer) -> Initializer:
    """Resolve an initialiser given by name or as a callable."""
    if callable(init):
        return init
    try:
        return INITIALIZERS[init]
    except (KeyError, TypeError):
        raise ValueError(
            f"init must be one of {sorted(INITIALIZERS)} or a callable (shape, rng) -> array, "
            f"got {init!r}."
        ) from None
