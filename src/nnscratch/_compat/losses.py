"""Old path of :mod:`nnscratch.nn.losses` (before issue 19): the same module object."""

import sys

from nnscratch.nn import losses as _module

sys.modules[__name__] = _module
