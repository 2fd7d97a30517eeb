"""Old path of :mod:`nnscratch.data.augment` (before issue 19): the same module object."""

import sys

from nnscratch.data import augment as _module

sys.modules[__name__] = _module
