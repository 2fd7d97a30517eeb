"""Training settings checked before any work: config files, flags, values, memory.

``nnscratch train`` merges a recipe's defaults, a ``--config`` TOML file and the flags, then
checks everything here before it loads data or creates a folder. A mistake is a
:class:`SettingError` (a usage error: exit status 2) that names the setting as the user wrote it:
``--learning-rate`` for a flag, ``learning_rate in [train] of run.toml`` for a config key.

- **Config files** (:func:`check_config_document`): the only table is ``[train]``; an unknown
  table or key is refused with the closest valid name (``difflib``).
- **Types** are strict and derived from the recipes' own defaults (:mod:`nnscratch.runs.recipes`),
  so a new setting is checked as soon as a recipe has it: a boolean must be a TOML boolean
  (``"false"`` is a string, refused), an integer must not be a float or a string, a number may
  be an integer or a float, a list a list, a table a table.
- **Values** (:data:`BOUNDS`, :data:`CHOICES`): ranges such as ``learning_rate >= 0`` and
  ``0 <= dropout < 1``; NaN, infinity and numbers too large for a float are refused.

The memory estimate lives in :mod:`nnscratch._memory`.

What is left out: checks that need the data (a class with no examples is the loader's).
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nnscratch.runs.recipes import RECIPES, SETTING_KEYS

__all__ = ["BOUNDS", "CHOICES", "HIDDEN_ACTIVATIONS", "SettingError", "check_config_document",
           "check_settings", "expected_kind", "setting_name"]

#: The only table a config file has.
CONFIG_TABLE = "train"
#: Activations a hidden layer of a recipe may use.
HIDDEN_ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid")


class SettingError(ValueError):
    """A flag or config value is wrong: a usage error, reported before any work is done."""


@dataclass(frozen=True)
class Bound:
    """The range of a number: ``low <= value`` (``<`` if not ``low_inclusive``), likewise high."""

    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True

    def describe(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>=' if self.low_inclusive else '>'} {self.low}")
        if self.high is not None:
            parts.append(f"{'<=' if self.high_inclusive else '<'} {self.high}")
        return " and ".join(parts)

    def holds(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (value == self.low
                                                          and not self.low_inclusive)):
            return False
        return self.high is None or not (value > self.high or (value == self.high
                                                               and not self.high_inclusive))


#: The range of each numeric setting (and of each element of ``layers``).
BOUNDS: dict[str, Bound] = {
    "learning_rate": Bound(0.0),  # 0 trains nothing: allowed, with a warning
    "iterations": Bound(0),
    "log_every": Bound(1),
    "epochs": Bound(0),
    "batch_size": Bound(1),
    "seed": Bound(0, 2**32 - 1),
    "momentum": Bound(0.0, 1.0, high_inclusive=False),
    # Past 1 the decay swamps any gradient (used: 1e-5..1e-2), and 1e300 overflows float32.
    "weight_decay": Bound(0.0, 1.0),
    "dropout": Bound(0.0, 1.0, high_inclusive=False),
    "warmup_epochs": Bound(0),
    "validation_fraction": Bound(0.0, 1.0, low_inclusive=False, high_inclusive=False),
    "patience": Bound(0),
    "layers": Bound(1),
    "conv_layers": Bound(1),
    "pool_every": Bound(1),
}
#: Stricter ranges for the mlp recipes, whose classifier (like scikit-learn's) trains at least
#: one epoch with a positive learning rate; the tutorial accepts 0 iterations or a zero
#: learning rate, and warns that the model stays untrained.
MLP_BOUNDS: dict[str, Bound] = {
    "learning_rate": Bound(0.0, low_inclusive=False),
    "epochs": Bound(1),
}


def _choices() -> dict[str, tuple[str, ...]]:
    from nnscratch._validation import FLOAT_DTYPES
    from nnscratch.nn.optimizers import OPTIMIZERS, SCHEDULES

    return {"optimizer": tuple(OPTIMIZERS), "schedule": tuple(SCHEDULES),
            "dtype": tuple(FLOAT_DTYPES), "activation": HIDDEN_ACTIVATIONS}


#: The allowed strings of each choice setting.
CHOICES: dict[str, tuple[str, ...]] = _choices()


def setting_name(key: str, source: str) -> str:
    """How the user wrote a setting: ``--batch-size`` for a flag, else the config key.

    ``source`` is ``"flag"``, ``"recipe"`` or the config file's path.
    """
    if source == "flag":
        return "--" + key.replace("_", "-")
    if source == "recipe":
        return f"the recipe's {key}"
    return f"{key} in [{CONFIG_TABLE}] of {source}"


# ---------------------------------------------------------------------------------------------
# Config files


def check_config_document(document: Mapping[str, Any], path: str,
                          allowed: tuple[str, ...]) -> dict[str, Any]:
    """The ``[train]`` table of a parsed config file, every key a known setting.

    Parameters
    ----------
    document : mapping
        The whole parsed TOML file.
    path : str
        The file, named in every message.
    allowed : tuple of str
        The setting names valid in the table (every recipe's, and ``recipe``).

    Raises
    ------
    SettingError
        For a key outside ``[train]``, another table, ``train`` that is not a table, or an
        unknown key in it; the message suggests the closest valid name.
    """
    for name, value in document.items():
        if name == CONFIG_TABLE:
            continue
        if isinstance(value, Mapping):
            raise SettingError(
                f"{path}: unknown table [{name}]{_closest(name, (CONFIG_TABLE,), '[{}]')}; "
                f"the settings go in a [{CONFIG_TABLE}] table."
            )
        hint = (f"; put it under the [{CONFIG_TABLE}] table" if name in allowed
                else _closest(name, allowed, "{}") + f"; settings go in [{CONFIG_TABLE}]")
        raise SettingError(f"{path}: {name!r} is outside any table{hint}.")
    table = document.get(CONFIG_TABLE, {})
    if not isinstance(table, Mapping):
        raise SettingError(
            f"{path}: {CONFIG_TABLE} must be a table ([{CONFIG_TABLE}]), got "
            f"{_kind_of(table)} {table!r}."
        )
    for key in table:
        if key not in allowed:
            raise SettingError(
                f"{path}: unknown setting {key!r} in [{CONFIG_TABLE}]"
                f"{_closest(key, allowed, '{!r}')}."
            )
    return dict(table)


def _closest(word: str, valid: tuple[str, ...], form: str) -> str:
    matches = difflib.get_close_matches(word, valid, n=1, cutoff=0.6)
    if matches:
        return f" (did you mean {form.format(matches[0])}?)"
    return f" (valid: {', '.join(form.format(v) for v in valid)})"


# ---------------------------------------------------------------------------------------------
# Types, derived from the recipes' defaults


def expected_kind(key: str) -> type | None:
    """The Python type the recipes give ``key`` (``float`` also admits ``int``), or None."""
    kinds = {type(recipe.settings[key]) for recipe in RECIPES.values() if key in recipe.settings}
    if float in kinds:
        return float
    return kinds.pop() if len(kinds) == 1 else None


_KIND_WORDS = {bool: "a boolean (true or false)", int: "an integer", float: "a number",
               str: "a string", list: "a list", dict: "a table"}


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "the boolean"
    if isinstance(value, numbers.Integral):
        return "the integer"
    if isinstance(value, numbers.Real):
        return "the number"
    if isinstance(value, str):
        return "the string"
    return {list: "the list", dict: "the table"}.get(type(value), type(value).__name__)


def _type_holds(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    return isinstance(value, kind)


# ---------------------------------------------------------------------------------------------
# Values


def _check_number(value: Any, name: str, bound: Bound | None) -> None:
    try:
        as_float = float(value)
    except OverflowError:
        raise SettingError(
            f"{name} must be a finite number, got an integer of about "
            f"{int(int(value).bit_length() * 0.30103) + 1} digits, too large for a float."
        ) from None
    if not math.isfinite(as_float):
        raise SettingError(f"{name} must be a finite number, got {value}.")
    if bound is not None and not bound.holds(value):
        raise SettingError(f"{name} must be {bound.describe()}, got {value}.")


def _check_layers(value: Any, name: str, what: str = "layer size") -> None:
    if not isinstance(value, list) or not value:
        raise SettingError(f"{name} must list at least one {what}, got {value!r}.")
    for size in value:
        if not _type_holds(size, int):
            raise SettingError(
                f"{name} must hold whole numbers, got {_kind_of(size)} {size!r}."
            )
        if not BOUNDS["layers"].holds(size):
            raise SettingError(f"{name}: every {what} must be >= 1, got {size}.")


def _check_value(key: str, value: Any, name: str, bounds: Mapping[str, Bound]) -> None:
    kind = expected_kind(key)
    if kind is not None and not _type_holds(value, kind):
        raise SettingError(f"{name} must be {_KIND_WORDS[kind]}, got {_kind_of(value)} "
                           f"{value!r}.")
    if key == "layers":
        _check_layers(value, name)
    elif key == "conv_layers":
        _check_layers(value, name, "convolution's channel count")
    elif key in CHOICES and value not in CHOICES[key]:
        raise SettingError(f"{name} must be one of {', '.join(CHOICES[key])}, got {value!r}.")
    elif kind in (int, float):
        _check_number(value, name, bounds.get(key))


def _is_tutorial(settings: Mapping[str, Any]) -> bool:
    recipe = RECIPES.get(settings.get("recipe", ""))
    return recipe is not None and recipe.kind == "tutorial"


def check_settings(settings: dict[str, Any], sources: Mapping[str, str]) -> None:
    """Check every resolved setting's type and value.

    Parameters
    ----------
    settings : dict
        The merged settings (``recipe`` and every key the recipe allows).
    sources : mapping of str to str
        Where each key came from: ``"flag"``, ``"recipe"`` or a config file's path (the key's
        absence means the recipe).

    Raises
    ------
    SettingError
        Naming the setting as the user wrote it.
    """
    bounds = BOUNDS if _is_tutorial(settings) else {**BOUNDS, **MLP_BOUNDS}
    for key, value in settings.items():
        if key in SETTING_KEYS and key != "digits":
            _check_value(key, value, setting_name(key, sources.get(key, "recipe")), bounds)
    if "conv_layers" in settings:
        _check_pools(settings, sources)
    if _is_tutorial(settings) and settings["layers"][-1] != 1:
        raise SettingError(
            f"{setting_name('layers', sources.get('layers', 'recipe'))}: the tutorial's last "
            f"layer is its one sigmoid output, so it must be 1, got {settings['layers']}; use "
            "--recipe binary-fast or mnist10 for other outputs."
        )


def _check_pools(settings: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    """Every 2x2 max-pool of a cnn recipe must find at least 2x2 pixels of the 28x28 image."""
    n_pools = len(settings["conv_layers"]) // settings["pool_every"]
    side = 28
    for _ in range(n_pools):
        if side < 2:
            raise SettingError(
                f"{setting_name('conv_layers', sources.get('conv_layers', 'recipe'))} "
                f"{settings['conv_layers']} with pool_every {settings['pool_every']} pools the "
                f"28x28 image {n_pools} times, more than the 4 it can take; use fewer "
                "convolutions or a larger --pool-every."
            )
        side //= 2
