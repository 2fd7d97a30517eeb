"""Old path of :mod:`nnscratch.nn.optimizers` (before issue 19): the same module object."""

import sys

from nnscratch.nn import optimizers as _module

sys.modules[__name__] = _module
