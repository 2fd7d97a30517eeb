"""The search space of ``nnscratch tune``: which settings of a recipe vary, and over what.

A space is a TOML table keyed by setting names (the keys of a recipe, as in ``config.toml``).
Each value is one of

- a range: ``{ low = 1e-4, high = 1e-1, log = true }`` (``step`` optional), for numbers;
  ``layers = { low = 64, high = 512, log = true, depth = 2 }`` draws each of ``depth`` hidden
  layer widths from the range;
- a list of choices: ``{ choices = ["relu", "gelu"] }`` (for ``layers``, a list of lists of
  hidden sizes);
- a plain value, which fixes the setting for every trial (``augment``, whose value is a
  table, can only be fixed).

Settings a space does not name keep the recipe's value. :func:`default_space` derives a space
from a recipe's settings. Every range end and every choice is checked here, before any work,
so a typo fails in a second with a message that names the setting and the fix. The Optuna
parameter each dimension suggests carries the setting's name (``layers`` as ``"512-256"``,
since Optuna's choices must be scalars).

What is left out: conditional spaces (a parameter that exists only for some choices of another).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nnscratch.runs.recipes import Recipe, allowed_keys

if TYPE_CHECKING:
    import optuna


class SpaceError(ValueError):
    """A search space that cannot be searched; the message names the setting and the fix."""


#: Settings that are whole numbers, with their smallest value.
INT_SETTINGS = {"batch_size": 1, "epochs": 1, "warmup_epochs": 0, "patience": 1}
#: Their largest value in a search: past these a trial never ends (1e9 epochs) or a batch is
#: more than the training set.
INT_MAXIMA = {"batch_size": 60_000, "epochs": 10_000, "warmup_epochs": 10_000,
              "patience": 10_000}
#: The most hidden layers a ``layers`` range may draw (``depth``).
MAX_DEPTH = 64
#: Settings that are real numbers: (low, high, low allowed, high allowed).
REAL_SETTINGS = {
    "learning_rate": (0.0, math.inf, False, False),
    "dropout": (0.0, 1.0, True, False),
    "weight_decay": (0.0, 1.0, True, True),  # as train's bound
    "momentum": (0.0, 1.0, True, False),
    "validation_fraction": (0.0, 1.0, False, False),
}
#: Settings that are fixed for a whole study: the task and its reproducibility.
FIXED_ONLY = ("recipe", "dataset", "digits", "seed", "dtype")
#: Settings whose one value is itself a table (so a table fixes them; it is no range).
TABLE_SETTINGS = ("augment",)


def _choice_settings() -> dict[str, tuple[Any, ...]]:
    from nnscratch.nn.activations import ACTIVATIONS
    from nnscratch.nn.optimizers import OPTIMIZERS, SCHEDULES

    return {
        "activation": tuple(sorted(ACTIVATIONS)),
        "optimizer": tuple(OPTIMIZERS),
        "schedule": tuple(SCHEDULES),
        "early_stopping": (False, True),
    }


@dataclass(frozen=True)
class Dimension:
    """One searched setting: a range (``low``, ``high``, ``log``, ``step``) or ``choices``.

    ``depth`` is for ``layers`` given as a range: that many hidden layers, each width drawn
    from the range.
    """

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] | None = None
    depth: int = 1

    @property
    def integer(self) -> bool:
        return self.name in INT_SETTINGS or self.name == "layers"

    def suggest(self, trial: optuna.Trial) -> Any:
        """The value of this setting for ``trial`` (Optuna's define-by-run API)."""
        if self.choices is not None:
            if self.name == "layers":
                return layers_from_label(trial.suggest_categorical(
                    "layers", [layers_label(c) for c in self.choices]))
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.name == "layers":
            return [self._suggest_number(trial, f"layers_{i + 1}") for i in range(self.depth)]
        return self._suggest_number(trial, self.name)

    def _suggest_number(self, trial: optuna.Trial, name: str) -> float | int:
        assert self.low is not None and self.high is not None
        if self.integer:
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log,
                                     step=int(self.step or 1))
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)

    def grid(self) -> dict[str, list[Any]]:
        """The values the grid sampler walks through, by Optuna parameter name."""
        if self.choices is not None:
            if self.name == "layers":
                return {"layers": [layers_label(c) for c in self.choices]}
            return {self.name: list(self.choices)}
        if self.integer and not self.log and self.name != "layers":
            assert self.low is not None and self.high is not None
            return {self.name: list(range(int(self.low), int(self.high) + 1,
                                          int(self.step or 1)))}
        raise SpaceError(
            f"{self.name}: the grid sampler needs a list of values, not a "
            f"{'log-scale ' if self.log else ''}range; write {self.name} = "
            "{ choices = [...] }, or use --sampler tpe or random."
        )


@dataclass(frozen=True)
class Space:
    """A parsed search space: the searched dimensions and the fixed settings."""

    dimensions: tuple[Dimension, ...]
    fixed: dict[str, Any]
    table: dict[str, Any]

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        """The settings this space gives ``trial``: the fixed ones and one value per dimension."""
        return {**self.fixed, **{d.name: d.suggest(trial) for d in self.dimensions}}

    def grid(self) -> dict[str, list[Any]]:
        """Optuna's ``GridSampler`` search space (every dimension must be discrete)."""
        grid: dict[str, list[Any]] = {}
        for dimension in self.dimensions:
            grid.update(dimension.grid())
        return grid


def layers_label(layers: list[int] | tuple[int, ...]) -> str:
    """``[512, 256]`` as the Optuna choice ``"512-256"`` (``"none"`` for no hidden layer)."""
    return "-".join(map(str, layers)) or "none"


def layers_from_label(label: str) -> list[int]:
    """The inverse of :func:`layers_label`."""
    return [] if label == "none" else [int(width) for width in label.split("-")]


def default_space(recipe: Recipe) -> dict[str, Any]:
    """A sensible space around ``recipe``'s settings, as a TOML-ready table.

    The learning rate spans a decade either side of the recipe's, on a log scale; the layers
    are the recipe's, half as wide, or its first layer alone; dropout spans [0, 0.5]; the
    batch size is halved, kept or doubled; Adam or AdamW; four weight decays; three
    activations. The epochs stay the recipe's: the pruner stops bad trials early instead.
    """
    settings = recipe.settings
    rate, layers, batch = settings["learning_rate"], settings["layers"], settings["batch_size"]
    return {
        "learning_rate": {"low": rate / 10, "high": rate * 10, "log": True},
        "layers": {"choices": _distinct([list(layers), [max(1, w // 2) for w in layers],
                                         list(layers[:1])])},
        "activation": {"choices": ["relu", "gelu", "tanh"]},
        "dropout": {"low": 0.0, "high": 0.5},
        "batch_size": {"choices": [max(1, batch // 2), batch, batch * 2]},
        "optimizer": {"choices": ["adam", "adamw"]},
        "weight_decay": {"choices": [0.0, 1e-5, 1e-4, 1e-3]},
    }


def _distinct(choices: list[list[int]]) -> list[list[int]]:
    """``choices`` without repeats, in order (a one-layer recipe's first layer is itself)."""
    return [choice for i, choice in enumerate(choices) if choice not in choices[:i]]


def parse_space(table: dict[str, Any], recipe: Recipe, *, where: str = "the space") -> Space:
    """Check a space table against ``recipe`` and parse it.

    Parameters
    ----------
    table : dict
        Setting name to a range table, a choices table or a fixed value (module docstring).
    recipe : Recipe
        A mini-batch recipe (``kind="mlp"``).
    where : str
        Where the table came from (the ``--space`` file), for the messages.

    Returns
    -------
    Space

    Raises
    ------
    SpaceError
        For an unknown setting, an empty range or list, a low above a high, a value out of the
        setting's bounds or of the wrong type; the message names the setting and the fix.
    """
    allowed = [k for k in allowed_keys(recipe) if k not in ("recipe", "dataset", "digits")]
    dimensions, fixed = [], {}
    for name, spec in table.items():
        if name not in allowed:
            hint = (" (--dataset and --digits choose the task)"
                    if name in ("dataset", "digits") else "")
            raise SpaceError(
                f"{where}: unknown setting {name!r} for the {recipe.name!r} recipe{hint}; "
                f"use one of {', '.join(allowed)}."
            )
        if not isinstance(spec, dict) or name in TABLE_SETTINGS:
            fixed[name] = _checked(name, spec, where)
        elif name in FIXED_ONLY:
            raise SpaceError(
                f"{where}: {name} is fixed for a whole study; give it one value "
                f"({name} = {recipe.settings[name]!r}), not a range or choices."
            )
        else:
            dimensions.append(_dimension(name, spec, where))
    return Space(tuple(dimensions), fixed, table)


def _dimension(name: str, spec: dict[str, Any], where: str) -> Dimension:
    keys = set(spec)
    if "choices" in keys:
        if keys != {"choices"}:
            raise SpaceError(f"{where}: {name} has choices and {sorted(keys - {'choices'})}; "
                             "give either choices or low and high.")
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise SpaceError(f"{where}: {name} has an empty list of choices; list at least one "
                             f"value, e.g. {name} = {{ choices = [...] }}.")
        return Dimension(name, choices=tuple(_checked(name, c, where) for c in choices))
    unknown = keys - {"low", "high", "log", "step", "depth"}
    if unknown or not {"low", "high"} <= keys:
        raise SpaceError(
            f"{where}: {name} = {spec!r} is neither a range nor choices; write "
            f"{name} = {{ low = ..., high = ... }} (log and step optional) or "
            f"{name} = {{ choices = [...] }}."
        )
    if name not in INT_SETTINGS and name not in REAL_SETTINGS and name != "layers":
        raise SpaceError(f"{where}: {name} is not a number; give {name} = {{ choices = [...] }}.")
    low, high = spec["low"], spec["high"]
    if name == "layers":
        depth = spec.get("depth", 1)
        if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= MAX_DEPTH:
            raise SpaceError(f"{where}: layers depth must be a whole number from 1 to "
                             f"{MAX_DEPTH}, got {depth!r}.")
        _checked(name, [low, high], where)
    else:
        depth = 1
        _checked(name, low, where)
        _checked(name, high, where)
    _check_range(name, spec, where)
    return Dimension(name, float(low) if name in REAL_SETTINGS else low,
                     float(high) if name in REAL_SETTINGS else high,
                     bool(spec.get("log", False)), spec.get("step"), depth=depth)


def _check_range(name: str, spec: dict[str, Any], where: str) -> None:
    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    if not isinstance(log, bool):
        raise SpaceError(f"{where}: {name} log must be true or false, got {log!r}.")
    if low > high:
        raise SpaceError(f"{where}: {name} has low {low} above high {high}; swap them.")
    if low == high:
        raise SpaceError(f"{where}: {name} has an empty range (low = high = {low}); widen it, "
                         f"or fix the setting with {name} = {low}.")
    if log and low <= 0:
        raise SpaceError(f"{where}: {name} is on a log scale, so low must be above 0, got "
                         f"{low}; raise low or set log = false.")
    step = spec.get("step")
    if step is None:
        return
    if (not isinstance(step, numbers.Real) or isinstance(step, bool) or not step > 0
            or not math.isfinite(step) or log):
        raise SpaceError(f"{where}: {name} step must be a positive number without log = true, "
                         f"got {step!r}.")
    if (name in INT_SETTINGS or name == "layers") and not _is_int(step):
        raise SpaceError(f"{where}: {name} is a whole number, so its step must be one too, "
                         f"got {step!r}.")
    if step > high - low:  # Optuna would silently keep low alone
        raise SpaceError(f"{where}: {name} step {step} is larger than the range {low}..{high}; "
                         f"use a step of at most {high - low}, or fix {name} = {low}.")


def _checked(name: str, value: Any, where: str) -> Any:
    """``value`` if it is a valid value of setting ``name``, else a :class:`SpaceError`."""
    problem = _problem(name, value)
    if problem:
        raise SpaceError(f"{where}: {name} = {value!r}: {problem}.")
    return value


def _problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for setting ``name``, or ``None``."""
    choices = _choice_settings()
    if name in choices:
        allowed = choices[name]
        ok = value in allowed and type(value) is type(allowed[0])
        return None if ok else f"choose from {list(allowed)}"
    if name in INT_SETTINGS:
        if not _is_int(value):
            return "expected a whole number"
        if value < INT_SETTINGS[name]:
            return f"expected at least {INT_SETTINGS[name]}"
        return None if value <= INT_MAXIMA[name] else f"expected at most {INT_MAXIMA[name]:,}"
    if name in REAL_SETTINGS:
        return _real_problem(name, value)
    if name == "layers":
        ok = isinstance(value, list) and all(_is_int(w) and w >= 1 for w in value)
        return None if ok else ("expected a list of hidden layer widths, each a whole number "
                                "of at least 1")
    if name == "seed":
        return None if _is_int(value) else "expected a whole number"
    if name == "dtype":
        return None if value in ("float32", "float64") else "choose float32 or float64"
    if name == "augment":
        return _augment_problem(value)
    return None


def _augment_problem(value: Any) -> str | None:
    from nnscratch.data.augment import Augmentation

    if not isinstance(value, dict):
        return "expected a table such as { shift = 2.0, rotation = 10.0 } (fixed, not searched)"
    try:
        Augmentation.from_settings(value)
    except (TypeError, ValueError) as error:
        return str(error).rstrip(".")
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _real_problem(name: str, value: Any) -> str | None:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return "expected a number"
    low, high, low_ok, high_ok = REAL_SETTINGS[name]
    inside = (low < value or (value == low and low_ok)) and (
        value < high or (value == high and high_ok))
    if inside:
        return None
    return f"expected a number in {'[' if low_ok else '('}{low}, {high}{']' if high_ok else ')'}"
