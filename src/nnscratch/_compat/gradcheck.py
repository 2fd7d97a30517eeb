"""Old path of :mod:`nnscratch.nn.gradcheck` (before issue 19): the same module object."""

import sys

from nnscratch.nn import gradcheck as _module

sys.modules[__name__] = _module
