"""Old path of :mod:`nnscratch.nn.layers` (before issue 19): the same module object."""

import sys

from nnscratch.nn import layers as _module

sys.modules[__name__] = _module
