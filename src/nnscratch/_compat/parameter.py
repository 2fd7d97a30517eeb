"""Old path of :mod:`nnscratch.nn.parameter` (before issue 19): the same module object."""

import sys

from nnscratch.nn import parameter as _module

sys.modules[__name__] = _module
