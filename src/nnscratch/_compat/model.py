"""Old path of :mod:`nnscratch.nn.model` (before issue 19): the same module object."""

import sys

from nnscratch.nn import model as _module

sys.modules[__name__] = _module
