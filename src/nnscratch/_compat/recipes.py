"""Old path of :mod:`nnscratch.runs.recipes` (before issue 19): the same module object."""

import sys

from nnscratch.runs import recipes as _module

sys.modules[__name__] = _module
