"""Old path of :mod:`nnscratch.nn.initializers` (before issue 19): the same module object."""

import sys

from nnscratch.nn import initializers as _module

sys.modules[__name__] = _module
