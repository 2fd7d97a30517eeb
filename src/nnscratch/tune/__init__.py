"""Hyper-parameter search: ``nnscratch tune``.

- :mod:`~nnscratch.tune.space`: the search space — its TOML format, checked before any work, and
  the default space of each recipe.
- :mod:`~nnscratch.tune.search`: the study on Optuna — trials, pruning, workers, the final
  training of the best settings and the tune folder.

The names below are those of :mod:`nnscratch.tune.search`, as ``nnscratch.tune`` offered them
before it became a package. Optuna itself is imported only when a search starts.
"""

from nnscratch.tune.search import (
    PRUNERS,
    SAMPLERS,
    Objective,
    TuneError,
    TuneOptions,
    TuneResult,
    check_option,
    format_summary,
    open_storage,
    plan,
    redact,
    result_json,
    retried_trial_number,
    tune,
)

__all__ = [
    "PRUNERS",
    "SAMPLERS",
    "Objective",
    "TuneError",
    "TuneOptions",
    "TuneResult",
    "check_option",
    "format_summary",
    "open_storage",
    "plan",
    "redact",
    "result_json",
    "retried_trial_number",
    "tune",
]
