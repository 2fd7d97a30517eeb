"""Old path of :mod:`nnscratch.tune.space` (before issue 19): the same module object."""

import sys

from nnscratch.tune import space as _module

sys.modules[__name__] = _module
