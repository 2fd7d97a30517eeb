"""nnscratch: neural networks from scratch in NumPy.

Every equation is visible in NumPy: layers with explicit forward and backward passes, fused
losses on logits, optimisers that update arrays in place, and one training loop. The
tutorial's ``NeuralNet`` (MNIST 1 vs 2, sigmoid layers, full-batch gradient descent) is
reproduced exactly on top of the same pieces.

>>> import nnscratch
>>> sorted(nnscratch.__all__)[:3]
['Adam', 'AdamW', 'BinaryCrossEntropy']
"""

__version__ = "0.1.0"

from nnscratch import (
    activations,
    augment,
    data,
    gradcheck,
    initializers,
    layers,
    losses,
    metrics,
    optimizers,
    plotting,
)
from nnscratch.classic import NeuralNet
from nnscratch.classifier import NeuralNetClassifier
from nnscratch.layers import Dense, Dropout, Layer
from nnscratch.losses import BinaryCrossEntropy, MeanSquaredError, SoftmaxCrossEntropy
from nnscratch.model import Sequential, build_mlp
from nnscratch.optimizers import SGD, Adam, AdamW
from nnscratch.parameter import Parameter
from nnscratch.serialization import load_model, save_model
from nnscratch.training import EarlyStopping, History, fit

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "BinaryCrossEntropy",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "History",
    "Layer",
    "MeanSquaredError",
    "NeuralNet",
    "NeuralNetClassifier",
    "Parameter",
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
    "optimizers",
    "plotting",
    "save_model",
]
