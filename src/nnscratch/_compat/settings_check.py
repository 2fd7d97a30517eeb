"""Old path of :mod:`nnscratch.runs.settings_check` (before issue 19): the same module object."""

import sys

from nnscratch.runs import settings_check as _module

sys.modules[__name__] = _module
