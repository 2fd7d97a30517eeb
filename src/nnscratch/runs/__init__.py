"""Run folders: what ``nnscratch train`` writes and every other command reads.

- :mod:`~nnscratch.runs.folder`: the run folder — its files, how it is written whole and read
  back, where it came from (data hashes, versions, BLAS).
- :mod:`~nnscratch.runs._transaction`: writing a folder as one transaction (a temporary folder
  renamed in, the old run kept until the new one is in place).
- :mod:`~nnscratch.runs.recipes`: the named trainings (``tutorial``, ``mnist10``, …) and
  :func:`~nnscratch.runs.recipes.train_recipe`, which trains one.
- :mod:`~nnscratch.runs.settings_check`: every setting of a run checked before any work.

The names below are those of :mod:`nnscratch.runs.folder`, as ``nnscratch.runs`` offered them
before it became a package.
"""

from nnscratch.runs.folder import (
    RUN_FILES,
    ConfigSyntaxError,
    Figures,
    FolderBusyError,
    FolderExistsError,
    Run,
    RunFolder,
    RunFolderError,
    blas_info,
    draw_figures,
    model_classes,
    new_run_dir,
    provenance,
    read_config,
    read_metrics,
    read_run,
    read_toml,
    record_run,
    reserve_new_run_dir,
    reserve_run_dir,
    train_run,
    write_config,
    write_run,
)

__all__ = [
    "RUN_FILES",
    "ConfigSyntaxError",
    "Figures",
    "FolderBusyError",
    "FolderExistsError",
    "Run",
    "RunFolder",
    "RunFolderError",
    "blas_info",
    "draw_figures",
    "model_classes",
    "new_run_dir",
    "provenance",
    "read_config",
    "read_metrics",
    "read_run",
    "read_toml",
    "record_run",
    "reserve_new_run_dir",
    "reserve_run_dir",
    "train_run",
    "write_config",
    "write_run",
]
