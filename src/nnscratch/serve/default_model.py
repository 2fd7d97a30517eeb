"""Which model ``nnscratch serve`` shows when none is named, training one the first time.

In order: the model given on the command line; else the newest run under ``runs/`` whose model
classifies the ten digits 0..9 (newest by the model file's modification time); else the default
model in the cache, ``$XDG_CACHE_HOME/nnscratch/models/mnist10`` (by default
``~/.cache/nnscratch/models/mnist10``), which is trained once with the ``mnist10`` recipe and
reused afterwards. The cached model is a complete run folder (``model.npz``, ``metrics.json``,
``config.toml``...): ``nnscratch train`` writes it into a temporary folder beside the cache,
which is renamed into place only when training has finished, so an interrupted training leaves
nothing half-written. It is trained through the library (:func:`nnscratch.runs.train_run`), not
the command line: the server is built on the library, never on ``nnscratch.cli``.

What is left out: choosing among several cached models, and updating the cache when the recipe
changes (delete the folder to train again).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_RECIPE",
    "default_model_dir",
    "newest_ten_digit_run",
    "resolve_model",
    "train_default_model",
]

#: The recipe that trains the cached default model.
DEFAULT_RECIPE = "mnist10"
_TEN_DIGITS = list(range(10))


def default_model_dir() -> Path:
    """The cached default model's run folder: ``$XDG_CACHE_HOME/nnscratch/models/mnist10``.

    ``XDG_CACHE_HOME`` counts when it is an absolute path (the XDG rule), else
    ``~/.cache`` is used, as for the MNIST cache. The folder is not created.
    """
    from nnscratch.data.mnist import default_cache_dir

    return default_cache_dir().parent / "models" / DEFAULT_RECIPE


def newest_ten_digit_run(runs: Path) -> Path | None:
    """The run folder under `runs` with the newest ``model.npz`` that classifies digits 0..9.

    Newest first, each file's metadata is read and the first that lists digits 0..9 is loaded
    whole (arrays, shapes, checksums): a file that cannot be read or loaded is passed over for
    the next older one. Returns ``None`` when there is no such run (or no `runs` folder).
    """
    if not runs.is_dir():
        return None
    models = [folder / "model.npz" for folder in runs.iterdir()
              if (folder / "model.npz").is_file()]
    for model in sorted(models, key=lambda path: path.stat().st_mtime, reverse=True):
        if _classes(model) == _TEN_DIGITS and _loads(model):
            return model.parent
    return None


def _loads(path: Path) -> bool:
    """Whether the model file loads whole and reads 28x28 pixels (what serving it needs)."""
    from nnscratch.serialization import load_model

    try:
        load_model(path).check_reads_28x28_pixels(path, "serve it")
    except Exception:  # a damaged or tampered file, or other pixels: not a candidate
        return False
    return True


def _classes(path: Path) -> Any:
    """The classes listed in a model file's metadata, or None if it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return json.loads(archive["metadata"].tobytes().decode("utf-8")).get("classes")
    except Exception:  # any unreadable file is simply not a candidate
        return None


def train_default_model(
    folder: Path,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    verify: bool = True,
    quiet: bool = False,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> None:
    """Train the ``mnist10`` recipe into the run folder `folder`, atomically.

    Trained through the library (:func:`nnscratch.runs.train_run`), exactly as
    ``nnscratch train --recipe mnist10 --no-plots --out FOLDER`` would train it; the folder is
    written as a transaction, so an interrupted training leaves nothing behind.

    Parameters
    ----------
    folder : Path
        Where the finished run folder goes; its parent is created.
    data_dir, download, verify : optional
        Where MNIST is, and whether it may be downloaded and must be verified
        (``serve --data-dir``, ``--no-download``, ``--no-verify``).
    quiet : bool, default=False
        No progress bars.
    say : callable, default=print to stderr
        Gets the line that reports the trained model's test accuracy.

    Raises
    ------
    RuntimeError
        If training failed: the message says why, and what to do.
    KeyboardInterrupt
        If interrupted; no folder is left behind.

    Notes
    -----
    The progress bars go to stderr, so that stdout holds only the server's own lines.
    """
    from nnscratch.nn.training import TrainingDivergedError
    from nnscratch.runs import FolderExistsError, train_run

    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        run = train_run(DEFAULT_RECIPE, folder, data_dir=data_dir, download=download,
                        verify=verify, progress=not quiet, plots=False)
    except FolderExistsError:
        if (folder / "model.npz").is_file():  # another server finished the same training first
            return
        raise
    except (OSError, ValueError, TrainingDivergedError) as error:
        raise RuntimeError(
            f"the default model could not be trained: {error} Give a MODEL, or train one "
            f"with: nnscratch train --recipe {DEFAULT_RECIPE}"
        ) from error
    metrics = run.metrics
    say(f"default model: test accuracy {metrics['test_accuracy']:.2%} "
        f"({metrics['test_correct']}/{metrics['test_size']}), trained in "
        f"{metrics['seconds']:.1f} s -> {folder}")


def resolve_model(
    given: str | os.PathLike[str] | None,
    *,
    runs: Path = Path("runs"),
    cache: Path | None = None,
    train: Callable[[Path], None] = train_default_model,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> Path:
    """The model file or run folder to serve.

    Parameters
    ----------
    given : str, PathLike or None
        The MODEL argument; returned as it is when given.
    runs : Path, default=Path("runs")
        Where ``nnscratch train`` writes run folders.
    cache : Path or None, default=None
        The default model's folder; ``None`` means :func:`default_model_dir`.
    train : callable, default=train_default_model
        Called with the cache folder when it holds no model yet.
    say : callable, default=print to stderr
        Tells the user which model was picked, and that training starts.

    Returns
    -------
    Path
        A model file or a run folder.
    """
    if given is not None:
        return Path(given)
    run = newest_ten_digit_run(runs)
    if run is not None:
        say(f"nnscratch serve: no model given; serving the newest 10-digit run, {run}")
        return run
    folder = cache if cache is not None else default_model_dir()
    if (folder / "model.npz").is_file():
        say(f"nnscratch serve: no model given; serving the default model in {folder}")
        return folder
    say(f"nnscratch serve: no model given and no 10-digit run under {runs}/: training the "
        f"default model once ({DEFAULT_RECIPE} recipe, about a minute); it is kept in {folder}")
    train(folder)
    say(f"nnscratch serve: the default model is ready in {folder}; it will be reused")
    return folder
