"""The network: every equation of a neural network in plain NumPy, and nothing else.

Read the modules in this order; each builds only on the ones before it.

1. :mod:`~nnscratch.nn.parameter` — ``Parameter``: an array and the gradient backward fills in.
2. :mod:`~nnscratch.nn.initializers` — starting weights, functions of ``(shape, rng)``.
3. :mod:`~nnscratch.nn.layers` — the layer interface (``forward``/``backward``), ``Dense``,
   ``Dropout``, ``Flatten``, ``Reshape``.
4. :mod:`~nnscratch.nn.activations` — parameter-free layers, each with its derivative.
5. :mod:`~nnscratch.nn.losses` — losses on logits, fused with their output activation.
6. :mod:`~nnscratch.nn.model` — ``Sequential``: layers forward first to last, backward last
   to first.
7. :mod:`~nnscratch.nn.optimizers` — SGD, Adam, AdamW and the learning-rate schedules.
8. :mod:`~nnscratch.nn.training` — ``fit``: the four lines of a training step, in a loop.
9. :mod:`~nnscratch.nn.gradcheck` — finite differences that prove each backward pass.
10. :mod:`~nnscratch.nn.conv` — the next chapter: ``Conv2D`` and the pools, over images
    ``(n, C, H, W)``.
11. :mod:`~nnscratch.nn.normalization` — ``BatchNorm`` and ``LayerNorm``.
12. :mod:`~nnscratch.nn._kernels` — the speed tricks (among them im2col), each beside the
    plain expression it equals.

This package imports NumPy and :mod:`nnscratch._validation` (the argument checks every public
function shares) and nothing else of nnscratch: no files, no plots, no command line. Data
loading, run folders, model files, the server and the search are built on top of it
(``docs/architecture.md``); an import-linter contract in CI keeps the dependency one-way.
"""

from nnscratch.nn import (
    activations,
    conv,
    gradcheck,
    initializers,
    layers,
    losses,
    model,
    normalization,
    optimizers,
    parameter,
    training,
)
from nnscratch.nn.activations import ELU, GELU, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from nnscratch.nn.conv import AvgPool2D, Conv2D, GlobalAvgPool2D, MaxPool2D
from nnscratch.nn.layers import Dense, Dropout, Flatten, Layer, Reshape
from nnscratch.nn.losses import BinaryCrossEntropy, Loss, MeanSquaredError, SoftmaxCrossEntropy
from nnscratch.nn.model import Sequential, build_mlp
from nnscratch.nn.normalization import BatchNorm, LayerNorm
from nnscratch.nn.optimizers import SGD, Adam, AdamW, Optimizer
from nnscratch.nn.parameter import Parameter
from nnscratch.nn.training import EarlyStopping, History, fit

__all__ = [  # noqa: RUF022 (reading order, not alphabetical)
    # In reading order, as above.
    "Parameter",
    "Layer",
    "Dense",
    "Dropout",
    "Flatten",
    "Reshape",
    "Conv2D",
    "MaxPool2D",
    "AvgPool2D",
    "GlobalAvgPool2D",
    "BatchNorm",
    "LayerNorm",
    "Identity",
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "ELU",
    "GELU",
    "Softmax",
    "Loss",
    "MeanSquaredError",
    "BinaryCrossEntropy",
    "SoftmaxCrossEntropy",
    "Sequential",
    "build_mlp",
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "fit",
    "History",
    "EarlyStopping",
    "parameter",
    "initializers",
    "layers",
    "conv",
    "normalization",
    "activations",
    "losses",
    "model",
    "optimizers",
    "training",
    "gradcheck",
]
