"""Run folders: the complete record of one training run, written and read back.

``nnscratch train`` writes a run folder and ``nnscratch plot`` redraws its figures from it.
The folder holds:

- ``config.toml``: the resolved settings as a ``[train]`` table (the data set, its classes and
  the augmentation included); ``nnscratch train --config RUN/config.toml`` repeats the run;
- ``metrics.json``: the results: the data set and its class names, train and test accuracy
  and counts, the sizes, the training seconds, the logged cost history and the test confusion
  matrix;
- ``history.csv``: one row per logged iteration (the tutorial) or per epoch;
- ``provenance.json``: what produced the results: the data set, each of its files (MNIST's or
  Fashion-MNIST's) with the SHA-256 of its bytes,
  the SHA-256 of the training arrays, and the versions of Python, nnscratch and NumPy, NumPy's
  BLAS (library, version, kernel, threads), the platform and the BLAS environment variables;
- ``model.npz``: the trained model (:mod:`nnscratch.serialization`);
- the figures: ``cost.png``, ``history.png`` (mini-batch recipes), ``confusion_matrix.png``,
  ``misclassified.png``, ``first_layer_weights.png``, for two classes ``roc.png`` and, when
  the training images were augmented, ``augmentation.png``.

:func:`record_run` gathers a :class:`Run` from a trained model and its data; :func:`write_run`,
the one entry point that writes, turns a :class:`Run` into a folder, as a transaction: the folder
appears complete at its path or not at all, an existing run is never replaced unless asked, and
two writers of one folder cannot mix (:mod:`nnscratch.runs._transaction`); :func:`read_run` reads a
folder back.

What is left out: comparing runs, and any server or database of runs.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nnscratch._atomic import atomic_write
from nnscratch._files import open_regular_file, user_file_errors
from nnscratch._json import to_json
from nnscratch.runs._transaction import (
    FolderBusyError,
    FolderExistsError,
    Reservation,
    reserve_folder,
    reserve_new_folder,
)
from nnscratch.runs.recipes import Recipe, get_recipe

if TYPE_CHECKING:
    from nnscratch.classic import NeuralNet
    from nnscratch.classifier import NeuralNetClassifier
    from nnscratch.data import ImageDataset
    from nnscratch.data.augment import Augmentation
    from nnscratch.nn.model import Sequential
    from nnscratch.serialization import SavedModel

__all__ = [
    "RUN_FILES",
    "ConfigSyntaxError",
    "Figures",
    "FolderBusyError",
    "FolderExistsError",
    "Run",
    "RunFolder",
    "RunFolderError",
    "draw_figures",
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

#: The files every run folder has (the figures are optional: ``--no-plots``).
RUN_FILES = ("config.toml", "metrics.json", "history.csv", "provenance.json", "model.npz")
#: Environment variables that choose BLAS kernels or thread counts, recorded when set.
BLAS_ENVIRONMENT = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                    "MKL_NUM_THREADS", "MKL_ENABLE_INSTRUCTIONS", "NPY_DISABLE_CPU_FEATURES")
#: How each data set's pictures were made into model inputs; models trained on them record it.
PREPROCESSING = {
    "mnist": {
        "source": "MNIST 28x28 grayscale, digit white on black",
        "flatten": [28, 28],
        "scale": "pixel / 255",
    },
    "fashion-mnist": {
        "source": "Fashion-MNIST 28x28 grayscale, product white on black",
        "flatten": [28, 28],
        "scale": "pixel / 255",
    },
}


class RunFolderError(ValueError):
    """A run folder (or a config file) is missing, incomplete or unreadable."""


class ConfigSyntaxError(RunFolderError):
    """A config file was read but is not valid TOML (a usage error, like a bad flag)."""


@dataclass
class Figures:
    """What a run's figures are drawn from.

    Attributes
    ----------
    kind : {"tutorial", "mlp"}
        The recipe's kind: the tutorial logs a cost per iteration, the others a history per
        epoch.
    cost_history : list of (int, float)
        ``(iteration or epoch, cost)`` pairs.
    history_rows : list of dict
        The rows of ``history.csv``.
    first_layer_W : ndarray of shape (784, n_units)
    digits : list of int or str
        The label of each class index: the digit for MNIST, the class name (``"Sneaker"``)
        for Fashion-MNIST.
    confusion : ndarray of shape (n_classes, n_classes)
    X_test, y_test, test_pred : ndarray or None
        The test images, labels and predicted class indices, for the misclassified images.
    scores : ndarray of shape (n_test,) or None
        The probability of the second class, for the ROC curve of two classes.
    augment : Augmentation or None
        The augmentation the model was trained with, for ``augmentation.png``.
    X_train, y_train : ndarray or None
        The training images and labels, whose first eight ``augmentation.png`` shows.
    """

    kind: str
    cost_history: list[tuple[int, float]]
    history_rows: list[dict[str, Any]]
    first_layer_W: np.ndarray
    digits: list[Any]
    confusion: np.ndarray
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    test_pred: np.ndarray | None = None
    scores: np.ndarray | None = None
    augment: Augmentation | None = None
    X_train: np.ndarray | None = None
    y_train: np.ndarray | None = None


@dataclass
class Run:
    """Everything a run folder holds, before it is written.

    Attributes
    ----------
    settings : dict
        ``config.toml``'s ``[train]`` table.
    metrics : dict
        ``metrics.json``.
    history_rows : list of dict
        ``history.csv``, one dict per row.
    provenance : dict
        ``provenance.json`` (see :func:`provenance`).
    model : Sequential
    classes : ndarray
        The label of each model output: the digits for MNIST, the class names for the other
        data sets.
    model_metadata : dict
        The metadata saved with the model (:func:`nnscratch.serialization.save_model`).
    figures : Figures
    """

    settings: dict[str, Any]
    metrics: dict[str, Any]
    history_rows: list[dict[str, Any]]
    provenance: dict[str, Any]
    model: Sequential
    classes: np.ndarray
    model_metadata: dict[str, Any]
    figures: Figures


@dataclass
class RunFolder:
    """A run folder read back by :func:`read_run`.

    Attributes
    ----------
    path : Path
    settings, metrics : dict
    history_rows : list of dict
        Numbers parsed back to int or float.
    saved : SavedModel
        The loaded model with its classes and metadata.
    provenance : dict
        Empty for folders written before nnscratch recorded it.
    """

    path: Path
    settings: dict[str, Any]
    metrics: dict[str, Any]
    history_rows: list[dict[str, Any]]
    saved: SavedModel
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def recipe(self) -> Recipe:
        """The recipe the run's ``config.toml`` names."""
        try:
            return get_recipe(self.settings.get("recipe", ""))
        except ValueError as error:
            raise RunFolderError(f"{self.path / 'config.toml'}: {error}") from None

    @property
    def cost_history(self) -> list[tuple[int, float]]:
        """``(iteration or epoch, cost)``: the tutorial's logged costs, else the epoch losses."""
        if self.recipe.kind == "tutorial":
            return [(p["iteration"], p["cost"]) for p in self.metrics.get("cost_history", [])]
        return [(row["epoch"], row["loss"]) for row in self.history_rows]


# ---------------------------------------------------------------------------------------------
# Gathering a run


def record_run(
    recipe: Recipe,
    settings: dict[str, Any],
    predictor: NeuralNet | NeuralNetClassifier,
    data: ImageDataset,
    seconds: float,
) -> Run:
    """Score a trained model on its data and gather everything its run folder records.

    Parameters
    ----------
    recipe : Recipe
    settings : dict
        The resolved settings the model was trained with.
    predictor : NeuralNet or NeuralNetClassifier
        The trained model (``recipes.train_recipe``'s result).
    data : ImageDataset
        The data it was trained on (MNIST or Fashion-MNIST), with its test split and source
        files.
    seconds : float
        The training time.

    Returns
    -------
    Run
    """
    from nnscratch.metrics import confusion_matrix
    from nnscratch.serialization import sha256_of_arrays

    labels = model_classes(data)
    train_pred = np.asarray(predictor.predict(data.X_train))
    test_pred = np.asarray(predictor.predict(data.X_test))
    train_correct = int(np.count_nonzero(train_pred == data.y_train))
    test_correct = int(np.count_nonzero(test_pred == data.y_test))
    confusion = confusion_matrix(data.y_test, test_pred, labels=np.arange(len(labels)))
    cost_history, history_rows = _history(recipe.kind, predictor)
    metrics = {
        "recipe": recipe.name,
        "dataset": data.dataset,
        "digits": settings["digits"],
        "class_names": list(data.class_names),
        "train_accuracy": train_correct / data.train_size,
        "test_accuracy": test_correct / data.test_size,
        "train_correct": train_correct,
        "test_correct": test_correct,
        "train_size": data.train_size,
        "test_size": data.test_size,
        "seconds": seconds,
        "cost_history": [{"iteration": i, "cost": c} for i, c in cost_history],
        "confusion_matrix": confusion.tolist(),
    }
    training_data_sha256 = sha256_of_arrays(data.X_train, data.y_train)
    model_metadata = {
        "config": settings,
        "dataset": data.dataset,
        "preprocessing": {**PREPROCESSING[data.dataset], "dtype": settings["dtype"]},
        "seeds": {"seed": settings["seed"]},
        "training_data_sha256": training_data_sha256,
        "metrics": {k: metrics[k] for k in ("train_accuracy", "test_accuracy", "seconds")},
    }
    model = predictor.model_
    figures = Figures(
        recipe.kind, cost_history, history_rows, model.layers[0].W.value, labels, confusion,
        data.X_test, data.y_test, test_pred, _second_class_scores(predictor, data),
        getattr(predictor, "augment", None), data.X_train, data.y_train,
    )
    return Run(settings, metrics, history_rows,
               provenance(data.files, training_data_sha256, dataset=data.dataset),
               model, np.asarray(labels), model_metadata, figures)


def model_classes(data: ImageDataset) -> list[Any]:
    """What a model trained on ``data`` calls its classes: MNIST's digits as numbers (as
    the tutorial's models always have), the other data sets' class names (``"Ankle boot"``)."""
    return list(data.classes) if data.dataset == "mnist" else list(data.class_names)


def _history(
    kind: str, predictor: NeuralNet | NeuralNetClassifier
) -> tuple[list[tuple[int, float]], list[dict[str, Any]]]:
    """The cost history and the rows of ``history.csv`` of a trained model."""
    if kind == "tutorial":
        cost_history = list(predictor.cost_history_)  # type: ignore[union-attr]
        return cost_history, [{"iteration": i, "cost": c} for i, c in cost_history]
    history = predictor.history_  # type: ignore[union-attr]
    rows = []
    for epoch in range(history.epochs):
        row: dict[str, Any] = {"epoch": epoch + 1, "loss": history.loss[epoch],
                               "accuracy": history.accuracy[epoch]}
        if history.val_loss:
            row["val_loss"] = history.val_loss[epoch]
            row["val_accuracy"] = history.val_accuracy[epoch]
        row["seconds"] = history.seconds[epoch]
        row["learning_rate"] = history.learning_rate[epoch]
        rows.append(row)
    return [(row["epoch"], row["loss"]) for row in rows], rows


def _second_class_scores(predictor: Any, data: ImageDataset) -> np.ndarray | None:
    """For two classes, the probability of the second on each test image (for the ROC curve)."""
    if data.n_classes != 2:
        return None
    scores = predictor.predict_proba(data.X_test)
    return scores[:, 1] if scores.ndim == 2 else scores


def provenance(
    data_files: Mapping[str, Any], training_data_sha256: str | None = None, *,
    dataset: str | None = None,
) -> dict[str, Any]:
    """What produced a run, for ``provenance.json``.

    Parameters
    ----------
    data_files : mapping of str to DataFile
        The data files read, by role (``train_images``, ...).
    training_data_sha256 : str, optional
        The SHA-256 of the training arrays as the model saw them (as in the model file).
    dataset : str, optional
        The data set the files hold (``"mnist"``, ``"fashion-mnist"``).

    Returns
    -------
    dict
        ``dataset``, ``data_files`` (path and SHA-256 of each), ``training_data_sha256``,
        ``python``, ``platform``, ``versions`` (nnscratch, NumPy), ``blas`` (one entry per BLAS
        library loaded: library, version, kernel, threads, threading layer, file) and
        ``environment`` (the variables of :data:`BLAS_ENVIRONMENT` that are set).
    """
    from nnscratch._version import __version__

    return {
        "created": datetime.now().astimezone().isoformat(timespec="seconds"),
        "dataset": dataset,
        "data_files": {key: {"path": file.path, "sha256": file.sha256}
                       for key, file in data_files.items()},
        "training_data_sha256": training_data_sha256,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "versions": {"nnscratch": __version__, "numpy": np.__version__},
        "blas": blas_info(),
        "environment": {name: os.environ[name] for name in BLAS_ENVIRONMENT
                        if name in os.environ},
    }


def blas_info() -> list[dict[str, Any]]:
    """The BLAS libraries loaded in this process, as threadpoolctl reports them.

    Returns
    -------
    list of dict
        For each: ``library`` (e.g. ``"openblas"``), ``version``, ``kernel`` (the CPU kernels
        chosen, e.g. ``"Haswell"``), ``threads``, ``threading_layer`` and ``path``.
    """
    from threadpoolctl import threadpool_info

    return [
        {"library": entry.get("internal_api"), "version": entry.get("version"),
         "kernel": entry.get("architecture"), "threads": entry.get("num_threads"),
         "threading_layer": entry.get("threading_layer"), "path": entry.get("filepath")}
        for entry in threadpool_info() if entry.get("user_api") == "blas"
    ]


# ---------------------------------------------------------------------------------------------
# Writing


def new_run_dir(recipe: str, root: str | os.PathLike[str] = "runs") -> Path:
    """The default folder name under ``root``: ``<date>-<time>-<recipe>``.

    :func:`reserve_new_run_dir` adds a suffix (``-2``, ``-3``...) when it is taken.
    """
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{stamp}-{recipe}"


def reserve_run_dir(
    out: str | os.PathLike[str], *, overwrite: bool = False
) -> contextlib.AbstractContextManager[Reservation]:
    """Claim a run folder before any work: lock it and refuse it if it already holds files.

    ``nnscratch train`` reserves ``--out`` before loading data, so a refusal costs nothing;
    :func:`write_run` inside the ``with`` block reuses the reservation (see
    :mod:`nnscratch.runs._transaction`).

    Raises
    ------
    FolderExistsError
        If ``out`` holds files and ``overwrite`` is false, or is a file.
    FolderBusyError
        If another process is writing ``out``.
    """
    return reserve_folder(out, overwrite=overwrite)


def reserve_new_run_dir(
    recipe: str, root: str | os.PathLike[str] = "runs"
) -> contextlib.AbstractContextManager[Reservation]:
    """Reserve a fresh default run folder (:func:`new_run_dir`, with a suffix if taken)."""
    return reserve_new_folder(new_run_dir(recipe, root))


def write_run(out: str | os.PathLike[str], run: Run, *, plots: bool = True,
              overwrite: bool = False) -> list[Path]:
    """Write a whole run folder as a transaction: every file of :data:`RUN_FILES`, the figures.

    The folder is built in a hidden temporary sibling (``.NAME.tmp-<pid>-<random>``) and
    renamed to ``out`` only once complete; on any error or interruption the temporary folder
    is removed and ``out`` is left as it was (:mod:`nnscratch.runs._transaction`).

    Parameters
    ----------
    out : str or PathLike
        The run folder; its parent folders are created if needed.
    run : Run
    plots : bool, default=True
        Draw the figures (``False``: ``nnscratch train --no-plots``).
    overwrite : bool, default=False
        Replace an existing run folder whole; without it a folder holding files is refused.

    Returns
    -------
    list of Path
        The files written, under ``out``.

    Raises
    ------
    FolderExistsError
        If ``out`` holds files and ``overwrite`` is false (nothing is written).
    FolderBusyError
        If another process is writing ``out``.
    """
    out = Path(out)
    with reserve_folder(out, overwrite=overwrite) as reservation:
        names = reservation.build(lambda folder: _write_files(folder, out, run, plots))
    return [out / name for name in names]


def train_run(
    recipe: str,
    out: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    verify: bool = True,
    progress: bool = True,
    plots: bool = True,
    overwrite: bool = False,
) -> Run:
    """Train a recipe with its own settings on its data set and write its run folder.

    What ``nnscratch train --recipe NAME --out OUT`` does, for programs: load the data, train
    (:func:`~nnscratch.runs.recipes.train_recipe`), score (:func:`record_run`) and write the
    folder as a transaction (:func:`write_run`) — an interrupted call leaves ``out`` as it was.

    Parameters
    ----------
    recipe : str
        A name of :data:`~nnscratch.runs.recipes.RECIPES`; its settings are used as they are.
    out : str or PathLike
        The run folder.
    data_dir, download, verify : optional
        Where the data set is, and whether it may be downloaded and must be verified
        (:func:`nnscratch.data.load_dataset`).
    progress : bool, default=True
        Show the download and training progress bars (on stderr).
    plots : bool, default=True
        Draw the run's figures.
    overwrite : bool, default=False
        Replace an existing run folder whole.

    Returns
    -------
    Run
        What was written; ``run.metrics["test_accuracy"]`` is the model's test accuracy.

    Raises
    ------
    FileNotFoundError, OSError, ValueError
        If the data set cannot be found, read or verified (nothing is written).
    FolderExistsError
        If ``out`` holds files and ``overwrite`` is false.
    nnscratch.nn.training.TrainingDivergedError
        If training diverged (nothing is written).
    """
    import time

    from nnscratch.data import load_dataset
    from nnscratch.runs.recipes import train_recipe

    chosen = get_recipe(recipe)
    settings: dict[str, Any] = {"recipe": chosen.name, **chosen.settings}
    data = load_dataset(settings["dataset"], settings["digits"], data_dir=data_dir,
                        dtype=np.dtype(settings["dtype"]), download=download, verify=verify,
                        progress=progress)
    start = time.perf_counter()
    predictor = train_recipe(chosen, settings, data.X_train, data.y_train,
                             verbose=1 if progress else 0)
    run = record_run(chosen, settings, predictor, data, time.perf_counter() - start)
    write_run(out, run, plots=plots, overwrite=overwrite)
    return run


def _write_files(folder: Path, final: Path, run: Run, plots: bool) -> list[str]:
    """Write the run's files into ``folder`` (to become ``final``); return their names."""
    from nnscratch.serialization import save_model

    _write_json(folder / "metrics.json", run.metrics)
    write_config(folder / "config.toml", run.settings, shown=final / "config.toml")
    _write_history(folder / "history.csv", run.history_rows)
    _write_json(folder / "provenance.json", run.provenance)
    save_model(folder / "model.npz", run.model, run.classes, metadata=run.model_metadata)
    names = list(RUN_FILES)
    if plots:
        names += [path.name for path in draw_figures(folder, run.figures)]
    return names


def _write_text(path: Path, text: str) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(text)


def _write_json(path: Path, document: Any) -> None:
    _write_text(path, to_json(document, what=path.name) + "\n")


def write_config(path: Path, settings: dict[str, Any], *, shown: Path | None = None) -> None:
    """Write ``settings`` as the ``[train]`` table of a TOML file that repeats the run.

    ``shown`` is the path named in the file's header comment (default: ``path``).
    """
    import tomli_w

    header = (
        "# The exact settings of this run. Repeat it with:\n"
        f"#   nnscratch train --config {shown or path}\n"
    )
    _write_text(path, header + tomli_w.dumps({"train": settings}))


def _write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["epoch"])
    writer.writeheader()
    writer.writerows(rows)
    _write_text(path, buffer.getvalue())


def draw_figures(out: Path, figures: Figures) -> list[Path]:
    """Draw a run's figures into ``out``; return the files written.

    The misclassified digits need ``X_test``, ``y_test`` and ``test_pred``; the ROC curve needs
    ``scores``; the other figures need only the run folder's own files.
    """
    from nnscratch import plotting

    names = [str(d) for d in figures.digits]
    written = []
    if figures.kind == "tutorial":
        if figures.cost_history:
            iterations, costs = zip(*figures.cost_history, strict=True)
            written.append(out / "cost.png")
            plotting.plot_cost(list(costs), list(iterations), path=written[-1],
                               title=f"Training cost, digits {names[0]} vs {names[1]}")
    elif figures.history_rows:
        rows = figures.history_rows
        history = {key: [row[key] for row in rows] for key in rows[0]
                   if key in ("loss", "accuracy", "val_loss", "val_accuracy")}
        written.append(out / "history.png")
        plotting.plot_history(history, path=written[-1])
        written.append(out / "cost.png")
        plotting.plot_cost(history["loss"], [row["epoch"] for row in rows], path=written[-1],
                           title="Training loss per epoch")
    written.append(out / "confusion_matrix.png")
    plotting.plot_confusion_matrix(figures.confusion, names, path=written[-1])
    written += _draw_test_figures(out, figures)
    return written


def _draw_test_figures(out: Path, figures: Figures) -> list[Path]:
    """The figures about single images: misclassified test images, weights, ROC, and the
    augmented training images."""
    from nnscratch import plotting

    written = []
    if figures.X_test is not None and figures.test_pred is not None:
        wrong = np.flatnonzero(figures.test_pred != figures.y_test)
        digits = np.asarray(figures.digits)
        written.append(out / "misclassified.png")
        plotting.plot_misclassified(
            figures.X_test[wrong].reshape(-1, 28, 28), digits[figures.y_test[wrong]],
            digits[figures.test_pred[wrong]], path=written[-1],
        )
    written.append(out / "first_layer_weights.png")
    plotting.plot_first_layer_weights(figures.first_layer_W, path=written[-1])
    if figures.y_test is not None and figures.scores is not None:
        written.append(out / "roc.png")
        plotting.plot_roc(figures.y_test, figures.scores, path=written[-1])
    if figures.augment is not None and figures.X_train is not None:
        labels = [str(figures.digits[k]) for k in figures.y_train[:8]]
        written.append(out / "augmentation.png")  # what the network was trained on
        plotting.plot_augmentation(figures.X_train[:8], figures.augment, path=written[-1],
                                   labels=labels)
    return written


# ---------------------------------------------------------------------------------------------
# Reading


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``[train]`` table of a TOML config file (a run's ``config.toml``).

    Raises
    ------
    RunFolderError
        If the file does not exist, is not a regular readable file, is not UTF-8 or is not
        valid TOML; the message names the file.
    """
    return dict(read_toml(path).get("train", {}))


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A whole TOML config file, parsed.

    Raises
    ------
    RunFolderError
        As :func:`read_config`.
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        with open_regular_file(path, what="a config file") as handle, user_file_errors(path):
            return dict(tomllib.load(handle))
    except FileNotFoundError:
        raise RunFolderError(f"config file {path} does not exist.") from None
    except OSError as error:  # a folder, a pipe, permission denied...: already one clear line
        raise RunFolderError(str(error)) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigSyntaxError(f"config file {path} is not valid TOML: {error}") from None
    except ValueError as error:  # not UTF-8
        raise RunFolderError(f"config file {error}") from None


def read_run(path: str | os.PathLike[str], *, max_parameters: int | None = None) -> RunFolder:
    """Read a run folder written by :func:`write_run`.

    Parameters
    ----------
    path : str or PathLike
    max_parameters : int, optional
        Passed to :func:`~nnscratch.serialization.load_model` (its default when ``None``).

    Raises
    ------
    RunFolderError
        If ``path`` is not a folder, lacks one of :data:`RUN_FILES` (``provenance.json`` may be
        missing from folders written before it existed) or holds invalid JSON or TOML.
    ModelFileError
        If ``model.npz`` is damaged.
    """
    from nnscratch.serialization import load_model

    run = Path(path)
    if not run.is_dir():
        raise RunFolderError(
            f"{run} is not a folder; give a run folder written by nnscratch train."
        )
    missing = [n for n in RUN_FILES if n != "provenance.json" and not (run / n).is_file()]
    if missing:
        raise RunFolderError(
            f"{run} lacks {', '.join(missing)}; give a complete run folder written by "
            "nnscratch train (or train again)."
        )
    settings = read_config(run / "config.toml")
    metrics = read_metrics(run)
    with user_file_errors(run / "history.csv"), \
            open(run / "history.csv", newline="", encoding="utf-8") as handle:
        rows = [{key: _number(value) for key, value in row.items()}
                for row in csv.DictReader(handle)]
    limits = {} if max_parameters is None else {"max_parameters": max_parameters}
    provenance_file = run / "provenance.json"
    return RunFolder(run, settings, metrics, rows, load_model(run / "model.npz", **limits),
                     _read_json(provenance_file) if provenance_file.is_file() else {})


def read_metrics(run: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``metrics.json`` of a run folder.

    Raises
    ------
    FileNotFoundError
        If the folder has no ``metrics.json``.
    RunFolderError
        If it is not a JSON object.
    """
    path = Path(run) / "metrics.json"
    metrics = _read_json(path)
    if not isinstance(metrics, dict):
        raise RunFolderError(f"{path} holds a JSON {type(metrics).__name__}, not an object.")
    return metrics


def _read_json(path: Path) -> Any:
    try:
        with user_file_errors(path):
            return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise RunFolderError(f"{path} is not valid JSON: {error}") from None


def _number(text: str) -> float | int | str:
    for kind in (int, float):
        with contextlib.suppress(ValueError):
            return kind(text)
    return text
