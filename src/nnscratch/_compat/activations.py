"""Old path of :mod:`nnscratch.nn.activations` (before issue 19): the same module object."""

import sys

from nnscratch.nn import activations as _module

sys.modules[__name__] = _module
