"""Old path of the layers (before issue 19), now a re-export: every layer class, wherever in
:mod:`nnscratch.nn` it lives.

Before the move, ``nnscratch.layers`` held ``Dense`` and ``Dropout``, and after it the name was
the very module :mod:`nnscratch.nn.layers`. The convolution and normalisation layers live in
:mod:`nnscratch.nn.conv` and :mod:`nnscratch.nn.normalization`, so this is a module of its own
that hands over the same class objects (``nnscratch.layers.Conv2D is
nnscratch.nn.conv.Conv2D``); its ``__all__`` is theirs together (a test keeps it so). New code
imports from :mod:`nnscratch.nn`.
"""

from nnscratch.nn.conv import AvgPool2D, Conv2D, GlobalAvgPool2D, MaxPool2D
from nnscratch.nn.layers import Dense, Dropout, Flatten, Layer, Reshape
from nnscratch.nn.normalization import BatchNorm, LayerNorm

__all__ = [
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAvgPool2D",
    "Layer",
    "LayerNorm",
    "MaxPool2D",
    "Reshape",
]
