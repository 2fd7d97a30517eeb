"""The module paths nnscratch had before the network moved into :mod:`nnscratch.nn`.

``import nnscratch.layers`` and ``from nnscratch.training import fit`` keep working: the
package's ``__init__`` adds this folder to ``nnscratch.__path__``, so Python finds
``nnscratch.training`` here, and each file puts the module that now holds the code in its place
(``nnscratch.training is nnscratch.nn.training``). ``nnscratch.layers`` is the one exception:
the layers now live in three modules, so it is a module of its own that re-exports the classes
of all three (the same objects). New code imports the new paths. Old path → new:

==========================  ==================================
``nnscratch.parameter``     :mod:`nnscratch.nn.parameter`
``nnscratch.layers``        :mod:`nnscratch.nn.layers`, :mod:`~nnscratch.nn.conv`,
                            :mod:`~nnscratch.nn.normalization` (a re-export)
``nnscratch.activations``   :mod:`nnscratch.nn.activations`
``nnscratch.losses``        :mod:`nnscratch.nn.losses`
``nnscratch.initializers``  :mod:`nnscratch.nn.initializers`
``nnscratch.optimizers``    :mod:`nnscratch.nn.optimizers`
``nnscratch.model``         :mod:`nnscratch.nn.model`
``nnscratch.training``      :mod:`nnscratch.nn.training`
``nnscratch.gradcheck``     :mod:`nnscratch.nn.gradcheck`
``nnscratch._kernels``      :mod:`nnscratch.nn._kernels`
``nnscratch.augment``       :mod:`nnscratch.data.augment`
``nnscratch.recipes``       :mod:`nnscratch.runs.recipes`
``nnscratch.settings_check`` :mod:`nnscratch.runs.settings_check`
``nnscratch._transaction``  :mod:`nnscratch.runs._transaction`
``nnscratch.tune_space``    :mod:`nnscratch.tune.space`
==========================  ==================================

``nnscratch.runs`` and ``nnscratch.tune`` became packages that re-export what the modules of
those names offered.
"""

#: Each old module path and the module that holds its code now.
MOVED = {
    "nnscratch.parameter": "nnscratch.nn.parameter",
    "nnscratch.layers": "nnscratch.nn.layers",
    "nnscratch.activations": "nnscratch.nn.activations",
    "nnscratch.losses": "nnscratch.nn.losses",
    "nnscratch.initializers": "nnscratch.nn.initializers",
    "nnscratch.optimizers": "nnscratch.nn.optimizers",
    "nnscratch.model": "nnscratch.nn.model",
    "nnscratch.training": "nnscratch.nn.training",
    "nnscratch.gradcheck": "nnscratch.nn.gradcheck",
    "nnscratch._kernels": "nnscratch.nn._kernels",
    "nnscratch.augment": "nnscratch.data.augment",
    "nnscratch.recipes": "nnscratch.runs.recipes",
    "nnscratch.settings_check": "nnscratch.runs.settings_check",
    "nnscratch._transaction": "nnscratch.runs._transaction",
    "nnscratch.tune_space": "nnscratch.tune.space",
}
