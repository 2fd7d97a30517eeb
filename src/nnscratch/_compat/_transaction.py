"""Old path of :mod:`nnscratch.runs._transaction` (before issue 19): the same module object."""

import sys

from nnscratch.runs import _transaction as _module

sys.modules[__name__] = _module
