"""nnscratch: neural networks from scratch in NumPy.

Every equation is visible in NumPy: layers with explicit forward and backward passes, fused
losses on logits, optimisers that update arrays in place, and one training loop. The
tutorial's ``NeuralNet`` (MNIST 1 vs 2, sigmoid layers, full-batch gradient descent) is
reproduced exactly on top of the same pieces.

>>> import nnscratch
>>> sorted(nnscratch.__all__)[:3]
['Adam', 'AdamW', 'BinaryCrossEntropy']
"""

import os as _os

# The module paths of before the move into nnscratch.nn (``nnscratch.layers``, ...) are found in
# _compat/, whose files hand over the modules that hold the code now (see its docstring).
__path__.append(_os.path.join(_os.path.dirname(__file__), "_compat"))

from nnscratch import data, layers, metrics, nn, plotting  # noqa: E402  (layers: _compat)
from nnscratch._version import __version__  # noqa: E402
from nnscratch.classic import NeuralNet  # noqa: E402
from nnscratch.classifier import NeuralNetClassifier  # noqa: E402
from nnscratch.data import augment  # noqa: E402
from nnscratch.nn import (  # noqa: E402
    activations,
    gradcheck,
    initializers,
    losses,
    optimizers,
)
from nnscratch.nn.conv import AvgPool2D, Conv2D, GlobalAvgPool2D, MaxPool2D  # noqa: E402
from nnscratch.nn.layers import Dense, Dropout, Flatten, Layer, Reshape  # noqa: E402
from nnscratch.nn.losses import (  # noqa: E402
    BinaryCrossEntropy,
    MeanSquaredError,
    SoftmaxCrossEntropy,
)
from nnscratch.nn.model import Sequential, build_mlp  # noqa: E402
from nnscratch.nn.normalization import BatchNorm, LayerNorm  # noqa: E402
from nnscratch.nn.optimizers import SGD, Adam, AdamW  # noqa: E402
from nnscratch.nn.parameter import Parameter  # noqa: E402
from nnscratch.nn.training import EarlyStopping, History, fit  # noqa: E402
from nnscratch.serialization import load_model, save_model  # noqa: E402

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "AvgPool2D",
    "BatchNorm",
    "BinaryCrossEntropy",
    "Conv2D",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "Flatten",
    "GlobalAvgPool2D",
    "History",
    "Layer",
    "LayerNorm",
    "MaxPool2D",
    "MeanSquaredError",
    "NeuralNet",
    "NeuralNetClassifier",
    "Parameter",
    "Reshape",
    "Sequential",
    "SoftmaxCrossEntropy",
    "__version__",
    "activations",
    "augment",
    "build_mlp",
    "data",
    "fit",
    "gradcheck",
    "initializers",
    "layers",
    "load_model",
    "losses",
    "metrics",
    "nn",
    "optimizers",
    "plotting",
    "save_model",
]
