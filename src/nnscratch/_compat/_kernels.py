"""Old path of :mod:`nnscratch.nn._kernels` (before issue 19): the same module object."""

import sys

from nnscratch.nn import _kernels as _module

sys.modules[__name__] = _module
