"""Old path of :mod:`nnscratch.nn.training` (before issue 19): the same module object."""

import sys

from nnscratch.nn import training as _module

sys.modules[__name__] = _module
