"""The ``nnscratch`` command line: train, evaluate, predict, plot, info, gradcheck, serve, tune,
export.

Each sub-command is a thin layer over the library: ``train`` runs a recipe and writes a run
folder; ``evaluate`` scores a model on MNIST's train or test split; ``predict`` labels pictures
and arrays of digits; ``plot`` redraws a run's figures; ``info`` describes a model file;
``gradcheck`` proves the gradients of a small model numerically; ``serve`` runs a web page to
draw digits on (:mod:`nnscratch.serve`); ``tune`` searches a recipe's settings
(:mod:`nnscratch.tune`); ``export`` writes a model as an ONNX file (:mod:`nnscratch.export`).
``docs/cli.md`` is the reference.

Parsing is argparse's, with one parent parser giving every command ``--quiet``, ``--json``
(machine-readable output on stdout) and ``--debug``. Errors are printed as one line that says
what went wrong and how to fix it, with exit status 1 (2 for usage errors, 130 for Ctrl-C, 143
for SIGTERM); a failed gradient check also exits with 1, and so does a command whose optional
dependencies are missing (one line naming ``pip install "nnscratch[EXTRA]"``). ``train``
checks every flag and config value (:mod:`nnscratch.runs.settings_check`) and the memory the
model needs before it loads data, and writes its run folder as a transaction
(:mod:`nnscratch.runs._transaction`). ``--debug`` shows the full traceback instead. Ctrl-C and
SIGTERM set a flag checked at safe points (:mod:`nnscratch._signals`): they stop loading,
training and read-only commands at once, never split a commit, are never lost, and the last
line says what was saved.

What is left out: interactive prompts, colour, and shell completion.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import itertools
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nnscratch import _signals, runs
from nnscratch._files import explain_os_error
from nnscratch._json import to_json
from nnscratch._memory import available_memory, format_bytes, training_bytes
from nnscratch.images import MAX_PIXELS
from nnscratch.runs.recipes import (
    RECIPES,
    SETTING_KEYS,
    Recipe,
    allowed_keys,
    get_recipe,
    train_recipe,
)
from nnscratch.runs.settings_check import (
    HIDDEN_ACTIVATIONS,
    SettingError,
    check_config_document,
    check_settings,
    setting_name,
)
from nnscratch.serialization import MAX_PARAMETERS, sample_shapes

EXAMPLES_TRAIN = """\
examples:
  nnscratch train                                   # the tutorial: 1 vs 2, 98.87% / 99.26%
  nnscratch train --iterations 101 --log-every 1 --out run-check
  nnscratch train --recipe binary-fast --digits 3 8
  nnscratch train --recipe mnist10 --epochs 20
  nnscratch train --recipe mnist10-best               # 99%+ with augmented digits
  nnscratch train --dataset fashion-mnist --recipe fashion10
  nnscratch train --dataset fashion-mnist --recipe binary-fast --classes Shirt T-shirt/top
  nnscratch train --recipe mnist10 --augment shift=2 rotation=10 elastic_alpha=34
  nnscratch train --config runs/RUN/config.toml      # repeat a run exactly
"""

EXAMPLES_EVALUATE = """\
examples:
  nnscratch evaluate runs/RUN                        # the run folder's model.npz, test split
  nnscratch evaluate model.npz --split train
  nnscratch evaluate model.npz --json > scores.json
"""

EXAMPLES_PREDICT = """\
examples:
  nnscratch predict runs/RUN/model.npz seven.png photo-of-a-two.jpg
  nnscratch predict model.npz scans/                 # every picture in a folder
  nnscratch predict model.npz digits.npy             # one row per image: digits.npy[0], ...
  nnscratch predict model.npz t10k-images-idx3-ubyte.gz --json
"""

EXAMPLES_PLOT = """\
examples:
  nnscratch plot runs/RUN
  nnscratch plot runs/RUN --no-data                  # only the plots that need no MNIST
"""

EXAMPLES_INFO = """\
examples:
  nnscratch info runs/RUN/model.npz
  nnscratch info runs/RUN --json
"""

EXAMPLES_GRADCHECK = """\
examples:
  nnscratch gradcheck                                # 6-5-4-3 tanh, softmax cross-entropy
  nnscratch gradcheck --layers 5 4 --activation tanh --loss softmax
  nnscratch gradcheck --layers 8 --activation sigmoid --loss binary
  nnscratch gradcheck --activation elu --loss mse --classes 2 --json
"""

EXAMPLES_SERVE = """\
examples:
  nnscratch serve                                    # newest 10-digit run, else the default model
  nnscratch serve runs/RUN --port 8080
  nnscratch serve model.npz --port 0                 # any free port; the first line names it
"""

EXAMPLES_TUNE = """\
examples:
  nnscratch tune --trials 24                         # mnist10's default space, SQLite file
  nnscratch tune --trials 24                         # again: 24 more trials in the same study
  nnscratch tune --recipe binary-fast --digits 3 8 --trials 20 --jobs 2
  nnscratch tune --space space.toml --timeout 3600 --out runs/tune/wide
  nnscratch tune --trials 50 --storage postgresql+psycopg://me@db-host/optuna   # each machine
"""

EXAMPLES_EXPORT = """\
examples:
  nnscratch export runs/RUN --out digits.onnx        # the run folder's model.npz
  nnscratch export model.npz --out model.onnx --json
"""

#: Images scored per forward pass by evaluate and predict, to bound memory.
_CHUNK = 8192


class CLIError(Exception):
    """A problem the user can fix; printed as one line without a traceback."""


# ---------------------------------------------------------------------------------------------
# Settings: recipe defaults, then a TOML config, then command-line flags.


def resolve_settings(args: argparse.Namespace) -> tuple[Recipe, dict[str, Any]]:
    """Merge recipe defaults, the ``--config`` file and explicit flags, and check them all.

    Raises
    ------
    SettingError
        A usage error (exit status 2) naming the flag or the config key and file
        (:mod:`nnscratch.runs.settings_check`).
    CLIError
        If the config file cannot be read.
    """
    config = _read_config(args.config) if args.config is not None else {}
    recipe = _chosen_recipe(args, config)
    allowed = allowed_keys(recipe)
    settings: dict[str, Any] = {"recipe": recipe.name, **recipe.settings}
    sources: dict[str, str] = {}
    for source, values in ((str(args.config), config), ("flag", _given_flags(args))):
        for key, value in values.items():
            if key == "recipe":
                continue
            if key not in allowed:
                raise SettingError(
                    f"{setting_name(key, source)}: the setting {key!r} does not apply to the "
                    f"{recipe.name!r} recipe (it takes "
                    f"{', '.join(k for k in allowed if k != 'recipe')})."
                )
            settings[key], sources[key] = value, source
    check_settings(settings, sources)  # types first: the data checks below rely on them
    _check_data_settings(recipe, settings, sources)
    return recipe, settings


def _read_config(path: str) -> dict[str, Any]:
    """The ``[train]`` table of ``--config``, every table and key known."""
    try:
        document = runs.read_toml(Path(path))
    except runs.ConfigSyntaxError as error:  # the file's content is the user's input
        raise SettingError(str(error)) from None
    except runs.RunFolderError as error:
        raise CLIError(str(error)) from None
    return check_config_document(document, path, ("recipe", *SETTING_KEYS))


def _chosen_recipe(args: argparse.Namespace, config: dict[str, Any]) -> Recipe:
    name = args.recipe or config.get("recipe") or "tutorial"
    where = "--recipe" if args.recipe else setting_name("recipe", str(args.config))
    if not isinstance(name, str):
        raise SettingError(f"{where} must be a string, got {name!r}.")
    try:
        return get_recipe(name)
    except ValueError as error:
        raise SettingError(f"{where}: {error}") from None


def _given_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags: every setting of :data:`~nnscratch.runs.recipes.SETTING_KEYS`
    has a flag of the same name (``--batch-size`` for ``batch_size``)."""
    return {key: getattr(args, key) for key in SETTING_KEYS if getattr(args, key) is not None}


def _check_memory(recipe: Recipe, settings: dict[str, Any]) -> None:
    """Refuse a model whose training cannot fit in the memory available (before any work)."""
    available = available_memory()
    if available is None:
        return
    if recipe.kind == "cnn":
        _check_cnn_memory(settings, available)
        return
    tutorial = recipe.kind == "tutorial"
    n_classes = len(settings["digits"])
    widths = list(settings["layers"]) + ([] if tutorial else [1 if n_classes == 2 else n_classes])
    estimate = training_bytes(
        widths, n_classes=n_classes, batch_size=None if tutorial else settings["batch_size"],
        optimizer=None if tutorial else settings["optimizer"],
        momentum=settings.get("momentum", 0.0), itemsize=np.dtype(settings["dtype"]).itemsize,
    )
    if estimate.total > available:
        smaller = "" if tutorial else ", a smaller --batch-size"
        raise CLIError(
            f"training layers {_short(settings['layers'])} needs about "
            f"{format_bytes(estimate.total)} "
            f"of memory ({estimate.describe()}), but {format_bytes(available)} is available. "
            f"Use fewer or smaller --layers{smaller} or --dtype float32."
        )


def _check_cnn_memory(settings: dict[str, Any], available: int) -> None:
    """Refuse a CNN whose training cannot fit: its activations counted from its own shapes."""
    from nnscratch._memory import image_model_training_bytes
    from nnscratch.nn.conv import Conv2D
    from nnscratch.nn.model import build_cnn

    n_classes = len(settings["digits"])
    model = build_cnn((1, 28, 28), settings["conv_layers"], settings["layers"],
                      1 if n_classes == 2 else n_classes, pool_every=settings["pool_every"],
                      batch_norm=settings["batch_norm"], rng=0, dtype=settings["dtype"])
    shapes = sample_shapes(model)
    values = sum(math.prod(shape) for shape in shapes[1:])
    values += sum(math.prod(after[1:]) * layer.in_channels * math.prod(layer.kernel_size)
                  for layer, after in zip(model.layers, shapes[1:], strict=True)
                  if isinstance(layer, Conv2D))
    estimate = image_model_training_bytes(
        sum(param.value.size for param in model.parameters()), values, n_classes=n_classes,
        batch_size=settings["batch_size"], optimizer=settings["optimizer"],
        momentum=settings.get("momentum", 0.0), itemsize=np.dtype(settings["dtype"]).itemsize,
    )
    if estimate.total > available:
        raise CLIError(
            f"training conv layers {settings['conv_layers']} with layers {settings['layers']} "
            f"needs about {format_bytes(estimate.total)} of memory ({estimate.describe()}), but "
            f"{format_bytes(available)} is available. Use fewer channels (--conv-layers), a "
            "smaller --batch-size or --dtype float32."
        )


def _warn_untrained(recipe: Recipe, settings: dict[str, Any]) -> None:
    """Say up front that the model will be saved untrained (the tutorial allows it)."""
    if recipe.kind != "tutorial":
        return
    if settings["iterations"] == 0 or settings["learning_rate"] == 0:
        why = ("--iterations 0" if settings["iterations"] == 0 else "--learning-rate 0")
        warnings.warn(f"{why}: the saved model keeps its initial weights: it is untrained.",
                      UserWarning, stacklevel=2)


# ---------------------------------------------------------------------------------------------
# Data sets and augmentation settings (issue 11): MNIST or Fashion-MNIST, classes by number or
# name, and the augment table.


def _check_data_settings(recipe: Recipe, settings: dict[str, Any],
                         sources: dict[str, str]) -> None:
    """Resolve the classes of the data set to numbers, and check the augment table: usage
    errors naming the flag or config key (:mod:`nnscratch.runs.settings_check`)."""
    from nnscratch.data import get_source, parse_classes
    from nnscratch.data.augment import Augmentation

    def name(key: str) -> str:
        return setting_name(key, sources.get(key, "recipe"))

    try:
        get_source(settings["dataset"])
    except ValueError as error:
        raise SettingError(f"{name('dataset')}: {error}") from None
    try:
        settings["digits"] = list(parse_classes(settings["digits"], settings["dataset"]))
    except (TypeError, ValueError) as error:
        flag = name("digits")
        if sources.get("digits") == "flag" and settings["dataset"] != "mnist":
            flag = "--classes"
        raise SettingError(f"{flag}: {error}") from None
    if recipe.kind == "tutorial" and len(settings["digits"]) != 2:
        raise SettingError(
            f"{name('digits')}: the tutorial recipe classifies two digits, got "
            f"{settings['digits']}; use --recipe mnist10 (or binary-fast) for other sets."
        )
    if settings.get("augment"):
        try:
            Augmentation.from_settings(settings["augment"])
        except (TypeError, ValueError) as error:
            raise SettingError(f"{name('augment')}: {error}") from None


def _augment_table(text: str) -> dict[str, Any]:
    """``--augment`` values: ``none``, or ``KEY=VALUE`` (numbers; ``flip=true``)."""
    if text.strip().lower() == "none":
        return {"": True}  # none's marker (no key is empty): refused beside other items
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not KEY=VALUE; write e.g. shift=2 rotation=10, or none.")
    if value.lower() in ("true", "false"):
        return {key: value.lower() == "true"}
    try:
        return {key: float(value)}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: {value!r} is not a number (or true/false).") from None


class _AugmentAction(argparse.Action):
    """Merge the ``--augment KEY=VALUE ...`` items into one table; ``none`` is ``{}``."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        table: dict[str, Any] = {}
        for item in values:
            key = next(iter(item))
            if key == "" and len(values) > 1:
                parser.error(f"{option_string}: 'none' must stand alone (it means no "
                             "augmentation); drop it or the KEY=VALUE items.")
            if key in table:
                parser.error(f"{option_string}: {key} is given twice; give each setting once.")
            table.update(item)
        table.pop("", None)
        setattr(namespace, self.dest, table)


def _model_source(saved: Any, path: Path) -> tuple[str, Any]:
    """The data set a model was trained on, by name, and its source; one rule for predict,
    evaluate and plot: a data set this package does not know is refused."""
    from nnscratch.data import get_source

    dataset = saved.metadata.get("dataset", "mnist")
    try:
        return dataset, get_source(dataset)
    except (TypeError, ValueError) as error:
        raise CLIError(f"{path}: {error}") from None


def _model_dataset(saved: Any, path: Path) -> tuple[str, list[int]]:
    """The data set a model was trained on, and the class number of each of its outputs."""
    from nnscratch.data import parse_classes

    dataset, source = _model_source(saved, path)
    labels = saved.classes.tolist()
    try:
        return dataset, list(parse_classes(labels, dataset))
    except (TypeError, ValueError):
        what = ("MNIST digits 0..9" if dataset == "mnist"
                else f"{source.title} classes ({', '.join(source.class_names)})")
        raise CLIError(
            f"{path} classifies {labels}, not {what}; evaluate it in Python on its own data."
        ) from None


def _augmentation(settings: dict[str, Any]) -> Any:
    """The Augmentation a run's settings describe, or None."""
    if not settings.get("augment"):
        return None
    from nnscratch.data.augment import Augmentation

    try:
        return Augmentation.from_settings(settings["augment"])
    except (TypeError, ValueError) as error:
        raise CLIError(f"config.toml: augment: {error}") from None


# ---------------------------------------------------------------------------------------------
# train


def _train(args: argparse.Namespace) -> int:
    recipe, settings = resolve_settings(args)
    _check_memory(recipe, settings)
    _warn_untrained(recipe, settings)
    if args.out:
        reservation = runs.reserve_run_dir(args.out, overwrite=args.overwrite)
    else:
        reservation = runs.reserve_new_run_dir(recipe.name)
    with reservation as reserved:
        run = _train_and_record(args, recipe, settings, reserved.folder)
        runs.write_run(reserved.folder, run, plots=not args.no_plots, overwrite=args.overwrite)
    _report_run(args, run.metrics, reserved.folder)
    return 0


def _train_and_record(args: argparse.Namespace, recipe: Recipe, settings: dict[str, Any],
                      out: Path) -> runs.Run:
    with _signals.interruptible():  # nothing but memory changes here: stop at once
        return _train_in_memory(args, recipe, settings, out)


def _train_in_memory(args: argparse.Namespace, recipe: Recipe, settings: dict[str, Any],
                     out: Path) -> runs.Run:
    from nnscratch.data import load_dataset
    from nnscratch.nn.training import TrainingDivergedError, UntrainedWarning

    quiet = args.quiet or args.json
    data = load_dataset(
        settings["dataset"], settings["digits"], data_dir=args.data_dir,
        dtype=np.dtype(settings["dtype"]), download=not args.no_download,
        verify=not args.no_verify, progress=not quiet,
    )
    if not quiet:
        what = (f"digits {settings['digits']}" if data.dataset == "mnist"
                else f"{data.dataset} classes {list(data.class_names)}")
        print(f"nnscratch train: recipe {recipe.name!r}, {what}, "
              f"{data.train_size} train / {data.test_size} test examples -> {out}", flush=True)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UntrainedWarning)  # said up front, with the flag
            predictor = train_recipe(recipe, settings, data.X_train, data.y_train,
                                     verbose=0 if quiet else 1)
    except TrainingDivergedError as error:
        raise CLIError(error.describe("--learning-rate") + " Nothing was saved.") from None
    except ValueError as error:
        raise CLIError(str(error)) from None
    return runs.record_run(recipe, settings, predictor, data, time.perf_counter() - start)


def _report_run(args: argparse.Namespace, metrics: dict[str, Any], out: Path) -> None:
    if args.json:
        _print_json({**metrics, "run_dir": str(out)})
    elif not args.quiet:
        print(f"train accuracy: {metrics['train_accuracy']:.2%} "
              f"({metrics['train_correct']}/{metrics['train_size']})")
        print(f"test accuracy:  {metrics['test_accuracy']:.2%} "
              f"({metrics['test_correct']}/{metrics['test_size']})")
        print(f"training time:  {metrics['seconds']:.1f} s")
        print(f"run folder:     {out}")


# ---------------------------------------------------------------------------------------------
# Shared by the commands that read a model


def _model_file(given: str) -> Path:
    """A model file, or the ``model.npz`` of a run folder."""
    path = Path(given)
    if path.is_dir():
        if not (path / "model.npz").is_file():
            raise CLIError(
                f"{path} is a folder without a model.npz; give a model file or a run folder "
                "written by nnscratch train."
            )
        return path / "model.npz"
    try:
        path.stat()
    except FileNotFoundError:
        raise CLIError(
            f"{path} does not exist; give a model file (.npz) or a run folder."
        ) from None
    except OSError as error:  # a symbolic link loop, permission denied...: say which
        raise CLIError(explain_os_error(error, path)) from None
    return path


def _load(given: str, **limits: Any) -> tuple[Path, Any]:
    from nnscratch.serialization import load_model

    path = _model_file(given)
    return path, load_model(path, **limits)


def _check_mnist_model(saved: Any, path: Path) -> None:
    """The model must read 784 pixels scaled to [0, 1], as ``train`` makes them."""
    try:
        saved.check_reads_28x28_pixels(path, "this command needs a model trained on MNIST")
    except ValueError as error:
        raise CLIError(str(error)) from None


def _class_indices(saved: Any, X: np.ndarray) -> np.ndarray:
    """The predicted class index of every row, a chunk at a time."""
    return np.concatenate([saved.predict_class_indices(X[i:i + _CHUNK])
                           for i in range(0, len(X), _CHUNK)])


def _probabilities(saved: Any, X: np.ndarray) -> np.ndarray:
    return np.concatenate([saved.predict_proba(X[i:i + _CHUNK])
                           for i in range(0, len(X), _CHUNK)])


def _load_data(args: argparse.Namespace, dataset: str, classes: Sequence[int],
               dtype: Any) -> Any:
    from nnscratch.data import load_dataset

    return load_dataset(
        dataset, classes, data_dir=args.data_dir, dtype=np.dtype(dtype),
        download=not args.no_download, verify=not args.no_verify,
        progress=not (args.quiet or args.json),
    )


def _print_json(document: Any) -> None:
    """Print strict JSON: a NaN or infinity is an error, never a bare ``NaN`` on stdout."""
    print(to_json(document, what="--json output"))


def _table(rows: list[list[str]], *, right: bool = True) -> str:
    """Columns padded to their widest cell; the first column left-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(w) if right else cell.ljust(w) for cell, w in zip(row[1:],
                                                                               widths[1:],
                                                                               strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# evaluate


def _evaluate(args: argparse.Namespace) -> int:
    from nnscratch.metrics import confusion_matrix, precision_recall_f1

    path, saved = _load(args.model, max_parameters=args.max_parameters)
    _check_mnist_model(saved, path)
    dataset, digits = _model_dataset(saved, path)
    data = _load_data(args, dataset, digits, saved.model.dtype)
    names = saved.classes.tolist()  # digits for MNIST, class names for Fashion-MNIST
    X, y = (data.X_test, data.y_test) if args.split == "test" else (data.X_train, data.y_train)
    predicted = _class_indices(saved, X)
    labels = np.arange(len(digits))
    correct = int(np.count_nonzero(predicted == y))
    precision, recall, f1, support = precision_recall_f1(y, predicted, labels=labels)
    macro = precision_recall_f1(y, predicted, labels=labels, average="macro")
    matrix = confusion_matrix(y, predicted, labels=labels)
    report = {
        "model": str(path),
        "dataset": dataset,
        "split": args.split,
        "digits": digits,
        "classes": names,
        "n_samples": len(y),
        "correct": correct,
        "accuracy": correct / len(y),
        "per_class": [
            {"label": digit, "precision": float(p), "recall": float(r), "f1": float(f),
             "support": int(n)}
            for digit, p, r, f, n in zip(names, precision, recall, f1, support, strict=True)
        ],
        "macro_avg": {"precision": float(macro[0]), "recall": float(macro[1]),
                      "f1": float(macro[2])},
        "confusion_matrix": matrix.tolist(),
    }
    if args.json:
        _print_json(report)
    elif not args.quiet:
        noun = "digit" if dataset == "mnist" else "class"
        what = f"digits {digits}" if dataset == "mnist" else f"{dataset} classes {names}"
        print(f"model {path}, {what}, {args.split} split: {len(y)} images")
        print(f"accuracy: {report['accuracy']:.2%} ({correct}/{len(y)})\n")
        rows = [[noun, "precision", "recall", "f1", "support"]]
        rows += [[str(c["label"]), f"{c['precision']:.4f}", f"{c['recall']:.4f}",
                  f"{c['f1']:.4f}", str(c["support"])] for c in report["per_class"]]
        rows.append(["macro avg", f"{macro[0]:.4f}", f"{macro[1]:.4f}", f"{macro[2]:.4f}",
                     str(len(y))])
        print(_table(rows))
        print(f"\nconfusion matrix (rows: true {noun}, columns: predicted {noun})")
        print(_table([["", *map(str, names)]]
                     + [[str(d), *map(str, row)] for d, row in zip(names, matrix, strict=True)]))
    return 0


# ---------------------------------------------------------------------------------------------
# predict


def _predict(args: argparse.Namespace) -> int:
    from nnscratch.data import preprocess_images
    from nnscratch.images import load_inputs, preprocess_digit, preprocess_product

    path, saved = _load(args.model, max_parameters=args.max_parameters)
    _check_mnist_model(saved, path)
    # Pictures are prepared the way the model's data set was made.
    fashion = _model_source(saved, path)[0] == "fashion-mnist"
    names, images = load_inputs(args.inputs, max_pixels=args.max_pixels,
                                preprocess=preprocess_product if fashion else preprocess_digit)
    probabilities = _probabilities(saved, preprocess_images(images, saved.model.dtype))
    labels = saved.classes[np.argmax(probabilities, axis=1)].tolist()
    classes = [str(c) for c in saved.classes.tolist()]
    if args.json:
        _print_json([
            {"input": name, "label": label,
             "probabilities": dict(zip(classes, map(float, row), strict=True))}
            for name, label, row in zip(names, labels, probabilities, strict=True)
        ])
    elif not args.quiet:
        rows = [["input", "label", *(f"p({c})" for c in classes)]]
        rows += [[_printable(name), str(label), *(f"{p:.3f}" for p in row)]
                 for name, label, row in zip(names, labels, probabilities, strict=True)]
        print(_table(rows))
    return 0


def _printable(name: str) -> str:
    """A file name for a table row: control characters (a newline...) escaped as ``\\n``."""
    return "".join(repr(c)[1:-1] if not c.isprintable() else c for c in name)


# ---------------------------------------------------------------------------------------------
# plot


def _plot(args: argparse.Namespace) -> int:
    from nnscratch.runs.folder import check_consistent, redraw_figures

    try:
        run = runs.read_run(args.run, max_parameters=args.max_parameters)
        recipe = run.recipe
        check_consistent(run)  # a model.npz from another run: refused before any work
    except runs.RunFolderError as error:
        raise CLIError(str(error)) from None
    model_path = run.path / "model.npz"
    dataset, classes = _model_dataset(run.saved, model_path)
    labels = run.saved.classes.tolist()  # the labels shown: digits, or Fashion-MNIST's names
    matrix = np.asarray(run.metrics.get("confusion_matrix", np.zeros((len(labels),) * 2)))
    figures = runs.Figures(recipe.kind, run.cost_history, run.history_rows,
                           runs.first_layer_weights(run.saved.model), labels, matrix,
                           augment=_augmentation(run.settings))
    if not args.no_data:
        from nnscratch.metrics import confusion_matrix

        data = _load_data(args, dataset, classes, run.saved.model.dtype)
        figures.X_test, figures.y_test = data.X_test, data.y_test
        figures.X_train, figures.y_train = data.X_train, data.y_train
        figures.test_pred = _class_indices(run.saved, data.X_test)
        figures.confusion = confusion_matrix(data.y_test, figures.test_pred,
                                             labels=np.arange(len(labels)))
        if len(labels) == 2:
            figures.scores = _probabilities(run.saved, data.X_test)[:, 1]
    written = redraw_figures(run, figures)  # one transaction, as train writes its folder
    if args.json:
        _print_json({"run_dir": str(run.path), "plots": [str(p) for p in written]})
    elif not args.quiet:
        for plot in written:
            print(plot)
    return 0


# ---------------------------------------------------------------------------------------------
# info


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _describe_layer(layer: Any) -> str:
    """One layer in words: ``1→32 3×3 pad 1`` for a convolution, ``2×2`` for a pool..."""
    from nnscratch.nn.conv import AvgPool2D, Conv2D, MaxPool2D
    from nnscratch.nn.layers import Dense, Flatten, Reshape
    from nnscratch.nn.normalization import BatchNorm, LayerNorm

    def pair(sizes: Sequence[int]) -> str:
        return "×".join(map(str, sizes))

    if isinstance(layer, Dense):
        return f"{layer.in_features} -> {layer.out_features}, init {layer.init}"
    if isinstance(layer, Conv2D):
        words = f"{layer.in_channels}→{layer.out_channels} {pair(layer.kernel_size)}"
        ph, pw = layer.padding
        if ph or pw:
            words += f" pad {ph if ph == pw else pair(layer.padding)}"
        if layer.stride != (1, 1):
            words += f" stride {pair(layer.stride)}"
        return f"{words}, init {layer.init}"
    if isinstance(layer, MaxPool2D | AvgPool2D):
        words = pair(layer.kernel_size)
        if layer.stride != layer.kernel_size:
            words += f" stride {pair(layer.stride)}"
        return words
    if isinstance(layer, BatchNorm):
        return f"{layer.num_features}, momentum {layer.momentum}, eps {layer.eps}"
    if isinstance(layer, LayerNorm):
        return f"{pair(layer.normalized_shape)}, eps {layer.eps}"
    if isinstance(layer, Reshape):
        return f"to {pair(layer.shape)}"
    if isinstance(layer, Flatten):
        return ""
    return ", ".join(f"{key}={value}" for key, value in layer.get_config().items())


def _distinct(shapes: Sequence[Any]) -> list[Any]:
    """``shapes`` without consecutive repeats (the layers that keep the shape)."""
    return [shape for i, shape in enumerate(shapes) if i == 0 or shape != shapes[i - 1]]


def _info(args: argparse.Namespace) -> int:
    path, saved = _load(args.model, max_parameters=args.max_parameters)
    meta = saved.metadata
    layers = [
        {"type": type(layer).__name__, "config": layer.get_config(),
         "parameters": sum(p.value.size for p in layer.parameters())}
        for layer in saved.model.layers
    ]
    widths = [saved.model.in_features] + [
        layer.out_features for layer in saved.model.layers if hasattr(layer, "out_features")]
    shapes = sample_shapes(saved.model)
    report = {
        "path": str(path),
        "file_size": path.stat().st_size,
        "file_sha256": _file_sha256(path),
        "format": meta["format"],
        "format_version": meta["format_version"],
        "versions": meta.get("versions", {}),
        "layer_sizes": widths,
        "sample_shapes": [list(shape) for shape in shapes],
        "layers": layers,
        "n_parameters": saved.n_parameters,
        "classes": saved.classes.tolist(),
        "output": meta.get("output"),
        "dtype": meta["dtype"],
        "preprocessing": meta.get("preprocessing"),
        "seeds": meta.get("seeds"),
        "training_data_sha256": meta.get("training_data_sha256"),
        "metrics": meta.get("metrics"),
        "config": meta.get("config"),
    }
    if args.json:
        _print_json(report)
        return 0
    if args.quiet:
        return 0
    versions = report["versions"]
    lines = [
        ("model file", f"{path} ({report['file_size']:,} bytes)"),
        ("file SHA-256", report["file_sha256"]),
        ("format", f"{report['format']} version {report['format_version']}, written by "
                   f"nnscratch {versions.get('nnscratch', '?')} with NumPy "
                   f"{versions.get('numpy', '?')}"),
        ("architecture", " -> ".join(
            "×".join(map(str, shape)) for shape in _distinct(shapes))),
        ("parameters", f"{saved.n_parameters:,}"),
        ("classes", f"{' '.join(map(str, report['classes']))} ({report['output']} output)"),
        ("dtype", report["dtype"]),
    ]
    if report["preprocessing"]:
        lines.append(("preprocessing", "; ".join(f"{k}: {v}" for k, v in
                                                  report["preprocessing"].items())))
    if report["config"]:
        lines.append(("recipe", str(report["config"].get("recipe", "?"))))
    if report["seeds"]:
        lines.append(("seeds", ", ".join(f"{k} {v}" for k, v in report["seeds"].items())))
    if report["training_data_sha256"]:
        lines.append(("training data", f"SHA-256 {report['training_data_sha256']}"))
    if report["metrics"]:
        lines.append(("metrics", ", ".join(
            f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
            for k, v in report["metrics"].items())))
    width = max(len(key) for key, _ in lines)
    for key, value in lines:
        print(f"{key + ':':<{width + 1}}  {value}")
    print("layers:")
    print(_table([[f"  {i}", entry["type"], _describe_layer(layer),
                   f"{entry['parameters']:,} parameters" if entry["parameters"] else ""]
                  for i, (entry, layer) in enumerate(zip(layers, saved.model.layers,
                                                         strict=True))], right=False))
    return 0


# ---------------------------------------------------------------------------------------------
# gradcheck

#: The losses gradcheck can check, by their option name.
_GRADCHECK_LOSSES = {
    "softmax": "softmax_cross_entropy",
    "binary": "binary_cross_entropy",
    "mse": "mean_squared_error",
}


#: The most a gradient check may do (minutes): two loss evaluations per input and parameter
#: entry (about 0.5 ms each for a small model), each of samples x parameters multiply-adds.
GRADCHECK_MAX_EVALUATIONS = 10**6
GRADCHECK_MAX_WORK = 10**11


def _check_gradcheck(args: argparse.Namespace, classes: int, outputs: int) -> None:
    """Usage errors (exit 2) before any work: sizes, step, tolerance, and the cost."""
    if args.loss == "binary" and classes != 2:
        raise SettingError(f"--classes {classes}: the binary loss has 2 classes (one logit).")
    if classes < 2 and args.loss == "softmax":
        raise SettingError(f"--classes {classes}: softmax needs at least 2 classes.")
    for name, value in (("--inputs", args.inputs), ("--samples", args.samples),
                        ("--classes", classes), *(("--layers", n) for n in args.layers)):
        if value < 1:
            raise SettingError(f"{name} must be at least 1, got {value}.")
    if not 0 < args.step < 1:  # NaN fails too
        raise SettingError(f"--step must be between 0 and 1 (e.g. 1e-6), got {args.step}.")
    if not 0 < args.tolerance < float("inf"):
        raise SettingError(f"--tolerance must be a positive number (e.g. 1e-7), got "
                           f"{args.tolerance}.")
    sizes = [args.inputs, *args.layers, outputs]
    n_parameters = sum((a + 1) * b for a, b in itertools.pairwise(sizes))
    evaluations = 2 * (args.samples * args.inputs + n_parameters)
    work = evaluations * args.samples * n_parameters
    # Parameters, gradients and their two copies; inputs and their numerical gradient; the
    # activations of the batch (input, output, gradient), all in float64.
    needed = 8 * (4 * n_parameters + 2 * args.samples * args.inputs
                  + 3 * args.samples * sum(sizes[1:]))
    available = available_memory()
    if available is not None and needed > available:
        raise SettingError(
            f"a gradient check of {'-'.join(map(str, sizes))} with --samples {args.samples} "
            f"needs about {format_bytes(needed)} of memory, but {format_bytes(available)} is "
            "available; use smaller --layers, --inputs or --samples.")
    if evaluations > GRADCHECK_MAX_EVALUATIONS or work > GRADCHECK_MAX_WORK:
        raise SettingError(
            f"a gradient check of {'-'.join(map(str, sizes))} with --samples {args.samples} "
            f"takes {evaluations:,} loss evaluations (two per input and parameter entry), "
            f"about {work:.1e} multiply-adds; the limits are {GRADCHECK_MAX_EVALUATIONS:,} "
            f"and {GRADCHECK_MAX_WORK:.0e} (minutes); use smaller --layers, --inputs or "
            "--samples.")


def _gradcheck(args: argparse.Namespace) -> int:
    from nnscratch.nn.gradcheck import check_model
    from nnscratch.nn.losses import LOSSES
    from nnscratch.nn.model import build_mlp

    classes = args.classes if args.classes is not None else (2 if args.loss == "binary" else 3)
    outputs = 1 if args.loss == "binary" else classes
    _check_gradcheck(args, classes, outputs)
    rng = np.random.default_rng(args.seed)
    model = build_mlp(args.inputs, args.layers, outputs, activation=args.activation,
                      rng=rng, dtype=np.float64)
    X = rng.standard_normal((args.samples, args.inputs))
    if args.loss == "mse":
        y = rng.standard_normal((args.samples, outputs))
    else:
        y = rng.integers(0, classes, args.samples)
    loss = LOSSES[_GRADCHECK_LOSSES[args.loss]]()
    report = check_model(model, loss, X, y, h=args.step)
    names = ["input"] + [f"layers[{i}].{p.name}" for i, layer in enumerate(model.layers)
                         for p in layer.parameters()]
    errors = dict(zip(names, report.errors.values(), strict=True))
    passed = report.max_error < args.tolerance
    sizes = [args.inputs, *args.layers, outputs]
    summary = {
        "layer_sizes": sizes,
        "activation": args.activation,
        "loss": args.loss,
        "samples": args.samples,
        "step": args.step,
        "errors": errors,
        "max_error": report.max_error,
        "tolerance": args.tolerance,
        "passed": passed,
    }
    if args.json:
        _print_json(summary)
    elif not args.quiet:
        print(f"gradient check of {'-'.join(map(str, sizes))} {args.activation}, {args.loss} "
              f"loss, {args.samples} samples, float64, central differences with h={args.step:g}")
        print(_table([["array", "relative error"]]
                     + [[name, f"{error:.2e}"] for name, error in errors.items()]))
        verdict = "passed" if passed else "FAILED"
        print(f"worst: {report.max_error:.2e}, tolerance {args.tolerance:g}: {verdict}")
    return 0 if passed else 1


# ---------------------------------------------------------------------------------------------
# serve


def _serve(args: argparse.Namespace) -> int:
    _require_extra("serve")
    from nnscratch.serve import serve

    return serve(args.model, host=args.host, port=args.port, quiet=args.quiet,
                 data_dir=args.data_dir, download=not args.no_download,
                 verify=not args.no_verify, max_parameters=args.max_parameters,
                 allow_hosts=args.allow_host)


# ---------------------------------------------------------------------------------------------
# tune


def _tune(args: argparse.Namespace) -> int:
    _require_extra("tune")
    from nnscratch import tune

    options = tune.TuneOptions(
        recipe=args.recipe, dataset=args.dataset, digits=args.digits, space=args.space,
        out=args.out,
        trials=args.trials, timeout=args.timeout, jobs=args.jobs, study=args.study,
        storage=args.storage, sampler=args.sampler, pruner=args.pruner, seed=args.seed,
        heartbeat=args.heartbeat, final=args.final, plots=not args.no_plots,
        data_dir=args.data_dir,
        download=not args.no_download, verify=not args.no_verify,
        quiet=args.quiet or args.json,
    )
    try:
        result = tune.tune(options)
    except tune.TuneError as error:
        raise CLIError(str(error)) from None
    if args.json:
        _print_json(tune.result_json(result))
    elif not args.quiet:
        print(tune.format_summary(result))
    return 0


# ---------------------------------------------------------------------------------------------
# export


def _export(args: argparse.Namespace) -> int:
    _require_extra("export")
    from nnscratch.export import IR_VERSION, OPSET, to_onnx

    path, saved = _load(args.model, max_parameters=args.max_parameters)
    result = to_onnx(saved, args.out, data_files_sha256=_data_files_sha256(path, saved))
    if result.converted_from:
        warnings.warn(f"{path} is a {result.converted_from} model; ONNX gets its weights in "
                      "float32 (probabilities agree to about 1e-6).", stacklevel=1)
    n_features, n_classes = saved.model.in_features, len(saved.classes)
    if args.json:
        _print_json({"model": str(path), "out": result.path, "opset": OPSET,
                     "ir_version": IR_VERSION, "converted_from": result.converted_from,
                     "inputs": {"pixels": ["N", n_features]},
                     "outputs": {"probabilities": ["N", n_classes],
                                 "logits": ["N", saved.model.out_features]},
                     "metadata": {p.key: p.value for p in result.model.metadata_props}})
    elif not args.quiet:
        print(f"Wrote {result.path} (ONNX opset {OPSET}, IR version {IR_VERSION}): input pixels "
              f"float32 (N, {n_features}), outputs probabilities (N, {n_classes}) and logits.")
    return 0


def _data_files_sha256(path: Path, saved: Any) -> dict[str, str] | None:
    """The data files' SHA-256 from the ``provenance.json`` beside a run's model, if it is
    this model's (the training data's SHA-256 agree)."""
    sha256 = saved.metadata.get("training_data_sha256")
    try:
        document = json.loads((path.parent / "provenance.json").read_text(encoding="utf-8"))
        if sha256 is None or document["training_data_sha256"] != sha256:
            return None
        return {role: entry["sha256"] for role, entry in document["data_files"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # no run folder around the model, or not its provenance


# ---------------------------------------------------------------------------------------------
# Optional dependencies: each command's extra, checked before the command starts

#: The extra of each command that needs one, and the modules the extra provides.
EXTRAS = {
    "serve": ("serve", ("fastapi", "fastapi_offline", "uvicorn")),
    "tune": ("tune", ("optuna",)),
    "export": ("onnx", ("onnx",)),
}


def _require_extra(command: str) -> None:
    """Raise :class:`CLIError` naming ``pip install "nnscratch[EXTRA]"`` if a module is missing."""
    import importlib

    extra, modules = EXTRAS[command]
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise CLIError(
                f"nnscratch {command} needs {module}, which is not installed: "
                f'pip install "nnscratch[{extra}]"'
            ) from None


# ---------------------------------------------------------------------------------------------
# The parser


def _common_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("output")
    group.add_argument("--quiet", "-q", action="store_true",
                       help="print nothing but errors (no progress bars)")
    group.add_argument("--json", action="store_true",
                       help="print the result as JSON on stdout, for scripts (no progress bars)")
    group.add_argument("--debug", action="store_true",
                       help="show the full traceback of an error instead of one line")
    return parent


def _data_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("data (MNIST or Fashion-MNIST)")
    group.add_argument("--data-dir", metavar="DIR",
                       help="folder with the data set's four files (else $NNSCRATCH_DATA for "
                            "MNIST or $NNSCRATCH_DATA_FASHION for Fashion-MNIST, the cache "
                            "~/.cache/nnscratch/DATASET, or a verified download into it)")
    group.add_argument("--no-download", action="store_true",
                       help="fail instead of downloading the data")
    group.add_argument("--no-verify", action="store_true",
                       help="skip the SHA-256 check (for a deliberately different dataset)")
    return parent


def _add_command(
    commands: Any, name: str, parents: list[argparse.ArgumentParser], summary: str,
    description: str, examples: str,
) -> argparse.ArgumentParser:
    return commands.add_parser(
        name, parents=parents, help=summary, description=_wrap(description), epilog=examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _wrap(text: str, width: int = 79) -> str:
    """Wrap each paragraph of a description; indented lines (lists) wrap under themselves."""
    import textwrap

    lines = []
    for line in text.splitlines():
        indent = line[: len(line) - len(line.lstrip())]
        fill = functools.partial(textwrap.fill, width=width, break_on_hyphens=False)
        lines.append(fill(line, subsequent_indent=indent + "  ")
                     if indent else fill(line) if line else "")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``nnscratch`` command."""
    from nnscratch._version import __version__
    from nnscratch.nn.activations import ACTIVATIONS
    from nnscratch.nn.optimizers import OPTIMIZERS, SCHEDULES

    parser = argparse.ArgumentParser(
        prog="nnscratch",
        description="Neural networks from scratch in NumPy, trained on MNIST.",
        epilog="Run 'nnscratch COMMAND --help' for the options and examples of each command.",
    )
    parser.add_argument("--version", action="version", version=f"nnscratch {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    common, data = _common_options(), _data_options()

    train = _add_command(
        commands, "train", [common, data], "train a network and write a run folder",
        "Train a network on MNIST digits (or Fashion-MNIST) and write a run folder with "
        "metrics.json, history.csv, config.toml (the settings that repeat the run exactly), "
        "model.npz and plots. With no options it runs the tutorial's experiment. Settings "
        "come from the recipe, then --config, then the flags.\n\nrecipes:\n"
        + "\n".join(f"  {r.name}: {r.description}" for r in RECIPES.values()),
        EXAMPLES_TRAIN,
    )
    what = train.add_argument_group("what to train")
    what.add_argument("--recipe", choices=sorted(RECIPES),
                      help="named settings (default: tutorial)")
    what.add_argument("--config", metavar="FILE",
                      help="TOML file with a [train] table of settings (a run's config.toml)")
    what.add_argument("--dataset", choices=["mnist", "fashion-mnist"],
                      help="the data set (default: the recipe's, mnist for most)")
    what.add_argument("--digits", "--classes", nargs="+", metavar="C", dest="digits",
                      help="classes to classify, in label order: digits, Fashion-MNIST class "
                           "numbers or names ('Ankle boot'), or 'all' (tutorial: 1 2)")
    what.add_argument("--layers", nargs="+", type=int, metavar="N",
                      help="tutorial: sizes after the input, ending with the output (196 1); "
                           "other recipes: hidden layer sizes")
    what.add_argument("--conv-layers", nargs="+", type=int, metavar="C",
                      help="cnn recipes: the channels of each 3x3 convolution (32 32 64 64)")
    what.add_argument("--pool-every", type=int, metavar="N",
                      help="cnn recipes: a 2x2 max-pool after every N convolutions (2)")
    what.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=None,
                      help="cnn recipes: batch norm after each convolution")
    how = train.add_argument_group("how to train")
    how.add_argument("--learning-rate", type=float, metavar="LR", help="step size")
    how.add_argument("--iterations", type=int, metavar="N",
                     help="tutorial: full-batch gradient-descent steps (1000)")
    how.add_argument("--log-every", type=int, metavar="N",
                     help="tutorial: log the cost every N iterations (100)")
    how.add_argument("--epochs", type=int, metavar="N", help="passes over the training set")
    how.add_argument("--batch-size", type=int, metavar="N", help="examples per update")
    how.add_argument("--optimizer", choices=list(OPTIMIZERS))
    how.add_argument("--activation",
                     choices=HIDDEN_ACTIVATIONS,
                     help="hidden-layer activation")
    how.add_argument("--momentum", type=float, metavar="M", help="for sgd")
    how.add_argument("--weight-decay", type=float, metavar="WD",
                     help="L2 penalty (decoupled for adamw)")
    how.add_argument("--dropout", type=float, metavar="P",
                     help="dropout probability after each hidden layer")
    how.add_argument("--schedule", choices=list(SCHEDULES),
                     help="learning-rate schedule over the epochs")
    how.add_argument("--warmup-epochs", type=int, metavar="N",
                     help="linear learning-rate warm-up")
    how.add_argument("--early-stopping", action=argparse.BooleanOptionalAction, default=None,
                     help="stop when the validation loss stops improving")
    how.add_argument("--validation-fraction", type=float, metavar="F",
                     help="held out for early stopping")
    how.add_argument("--patience", type=int, metavar="N",
                     help="epochs without improvement before stopping")
    how.add_argument("--augment", nargs="+", type=_augment_table, action=_AugmentAction,
                     metavar="KEY=VALUE",
                     help="augment the training images: shift, rotation, scale, shear, flip, "
                          "elastic_alpha, elastic_sigma (see nnscratch.data.augment), e.g. shift=2 "
                          "rotation=10; 'none' for no augmentation (replaces the recipe's)")
    how.add_argument("--seed", type=int, help="seeds weights, dropout, shuffling, augmentation")
    how.add_argument("--dtype", choices=["float32", "float64"])
    folder = train.add_argument_group("run folder")
    folder.add_argument("--out", metavar="DIR",
                        help="run folder (default: a new one in runs/); an existing one that "
                             "holds files is refused unless --overwrite")
    folder.add_argument("--overwrite", action="store_true",
                        help="replace an existing --out folder whole, once the new run is "
                             "complete")
    folder.add_argument("--no-plots", action="store_true",
                        help="skip the figures (draw them later with: nnscratch plot RUN)")
    train.set_defaults(handler=_train)

    evaluate = _add_command(
        commands, "evaluate", [common, data], "score a model on MNIST or Fashion-MNIST",
        "Score a model on MNIST: accuracy, per-class precision, recall and F1, and the "
        "confusion matrix. The data set (MNIST or Fashion-MNIST), the classes and the "
        "preprocessing are read from the model file; the same classes are selected from the "
        "data set, found as train finds it.",
        EXAMPLES_EVALUATE,
    )
    evaluate.add_argument("model", metavar="MODEL", help="a model.npz or a run folder")
    evaluate.add_argument("--split", choices=["test", "train"], default="test",
                          help="which part of MNIST to score (default: test)")
    _add_max_parameters(evaluate)
    evaluate.set_defaults(handler=_evaluate, read_only=True)  # interruptible at once

    predict = _add_command(
        commands, "predict", [common], "label pictures or arrays of digits",
        "Print the label and the class probabilities of every input. Pictures (PNG, JPEG, "
        "...; a folder means every picture in it) are preprocessed as MNIST was made: "
        "grayscale, inverted when the background is light, cropped to the digit, scaled to "
        "fit 20x20 keeping the aspect ratio and centred by centre of mass in 28x28; for a "
        "Fashion-MNIST model, as Fashion-MNIST was made: negated on a light background, "
        "trimmed, scaled so the longer side is 28 and centred. .npy and "
        "IDX files hold MNIST-style uint8 images, (28, 28), (n, 28, 28), (784,) or (n, 784), "
        "used as they are; each image of a file with several is one row, 'file.npy[3]'. "
        "--json prints a list of {input, label, probabilities}.",
        EXAMPLES_PREDICT,
    )
    predict.add_argument("model", metavar="MODEL", help="a model.npz or a run folder")
    predict.add_argument("inputs", metavar="INPUT", nargs="+",
                         help="picture files, folders of them, .npy or IDX files")
    predict.add_argument("--max-pixels", type=_positive_int, default=MAX_PIXELS, metavar="N",
                         help="refuse a picture with more pixels, or an array file with more "
                              f"gray levels (default: {MAX_PIXELS:,}; decompression bombs "
                              "declare far more)")
    _add_max_parameters(predict)
    predict.set_defaults(handler=_predict, read_only=True)  # interruptible at once

    plot = _add_command(
        commands, "plot", [common, data], "redraw the plots of a run folder",
        "Redraw the figures of a run folder from its metrics.json, history.csv, config.toml "
        "and model.npz: the cost (and history) curves, the confusion matrix, the first-layer "
        "weights and, with MNIST, the misclassified test digits and (for two digits) the ROC "
        "curve.",
        EXAMPLES_PLOT,
    )
    plot.add_argument("run", metavar="RUN", help="a run folder written by nnscratch train")
    plot.add_argument("--no-data", action="store_true",
                      help="do not load MNIST: skip the misclassified digits and the ROC curve")
    _add_max_parameters(plot)
    plot.set_defaults(handler=_plot, read_only=True)  # interruptible at once

    info = _add_command(
        commands, "info", [common], "describe a model file",
        "Describe a model file: the architecture, parameter count, classes, dtype, the "
        "nnscratch and NumPy versions that wrote it, the preprocessing, seeds, the SHA-256 of "
        "its training data and of the file itself, and its metrics. The file is fully checked "
        "on the way (version, array names, shapes and checksums).",
        EXAMPLES_INFO,
    )
    info.add_argument("model", metavar="MODEL", help="a model.npz or a run folder")
    _add_max_parameters(info)
    info.set_defaults(handler=_info, read_only=True)  # interruptible at once

    gradcheck = _add_command(
        commands, "gradcheck", [common], "check backpropagation with finite differences",
        "Build a small float64 model of the chosen architecture and compare the gradient of "
        "the loss from backpropagation with central finite differences, for the input and "
        "every parameter. Prints the relative error of each (norm of the difference over the "
        "larger norm) and exits with status 1 if the worst is not below the tolerance.",
        EXAMPLES_GRADCHECK,
    )
    model = gradcheck.add_argument_group("model")
    model.add_argument("--layers", nargs="*", type=int, default=[5, 4], metavar="N",
                       help="hidden layer sizes (default: 5 4; none for a linear model)")
    model.add_argument("--activation", choices=sorted(ACTIVATIONS), default="tanh",
                       help="hidden-layer activation (default: tanh)")
    model.add_argument("--loss", choices=sorted(_GRADCHECK_LOSSES), default="softmax",
                       help="softmax cross-entropy, binary cross-entropy (one logit) or mean "
                            "squared error (default: softmax)")
    model.add_argument("--inputs", type=int, default=6, metavar="N",
                       help="input features (default: 6)")
    model.add_argument("--classes", type=int, metavar="K",
                       help="classes, or outputs for mse (default: 3; binary: 2)")
    check = gradcheck.add_argument_group("check")
    check.add_argument("--samples", type=int, default=8, metavar="N",
                       help="random examples in the batch (default: 8)")
    check.add_argument("--seed", type=int, default=0, help="seeds weights and data (default: 0)")
    check.add_argument("--step", type=float, default=1e-6, metavar="H",
                       help="finite-difference step (default: 1e-6)")
    check.add_argument("--tolerance", type=float, default=1e-7, metavar="TOL",
                       help="largest relative error that passes (default: 1e-7)")
    gradcheck.set_defaults(handler=_gradcheck, read_only=True)  # interruptible at once

    serve = _add_command(
        commands, "serve", [common, data], "draw digits on a web page and see the answers",
        "Serve a web page to draw a digit on and watch the network answer: the prediction, "
        "every class's probability, the 28x28 picture the network received and its first "
        "hidden layer; and the JSON API behind it (POST /api/predict, GET /api/model, docs at "
        "/docs). Without MODEL it serves the newest 10-digit run under runs/, else a default "
        "model kept in the cache (~/.cache/nnscratch/models/mnist10), trained once with the "
        "mnist10 recipe (MNIST is found as train finds it). The first line printed is "
        "'Serving on http://HOST:PORT'. Ctrl-C stops it.",
        EXAMPLES_SERVE,
    )
    serve.add_argument("model", metavar="MODEL", nargs="?",
                       help="a model.npz or a run folder (default: see above)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default: 127.0.0.1, this computer only; "
                            "the page has no authentication)")
    serve.add_argument("--port", type=_port, default=8000,
                       help="port to listen on (default: 8000; 0 picks a free one)")
    serve.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                       help="answer requests for this Host name too (repeatable; by default "
                            "only the address served, localhost, 127.0.0.1 and [::1])")
    _add_max_parameters(serve)
    serve.set_defaults(handler=_serve)
    _add_tune_command(commands, common, data)
    _add_export_command(commands, common)
    return parser


def _add_export_command(commands: Any, common: argparse.ArgumentParser) -> None:
    export = _add_command(
        commands, "export", [common], "write a model as an ONNX file",
        "Write a model as an ONNX file that onnxruntime (and any ONNX runtime) runs: input "
        "'pixels', float32 (N, n_features) scaled as in training; outputs 'probabilities' "
        "(what predict prints) and 'logits'; the classes, recipe, data hashes and nnscratch "
        "version in its metadata. A float64 model is exported in float32 (the command says "
        "so). A layer without an ONNX form is refused by name before anything is written. "
        'Needs the onnx package: pip install "nnscratch[onnx]". docs/export.md has an '
        "example that runs the file.",
        EXAMPLES_EXPORT,
    )
    export.add_argument("model", metavar="MODEL", help="a model.npz or a run folder")
    export.add_argument("--out", required=True, metavar="FILE",
                        help="the ONNX file to write (FILE.onnx); replaced atomically")
    _add_max_parameters(export)
    export.set_defaults(handler=_export)


def _add_tune_command(commands: Any, common: argparse.ArgumentParser,
                      data: argparse.ArgumentParser) -> None:
    from nnscratch.tune import PRUNERS, SAMPLERS

    tune = _add_command(
        commands, "tune", [common, data], "search hyper-parameters with Optuna",
        "Search a recipe's settings with Optuna. Each trial trains on the training set minus "
        "a fixed, stratified 10% validation split and reports the validation accuracy after "
        "every epoch, so the pruner stops bad trials early; the test set is not touched. Then "
        "the best settings are trained on the whole training set, tested once and written as "
        "a run folder (OUT/best) with OUT/best.toml for nnscratch train --config. The study "
        "is kept in a database (a SQLite file in OUT unless --storage names another): the "
        "same command again adds trials, and every machine that runs it with one PostgreSQL "
        "--storage shares the study. docs/tune.md has the --space format.",
        EXAMPLES_TUNE,
    )
    what = tune.add_argument_group("what to search")
    what.add_argument("--recipe", choices=sorted(r for r in RECIPES if r != "tutorial"),
                      default="mnist10", help="the recipe whose settings vary (default: mnist10)")
    what.add_argument("--dataset", choices=["mnist", "fashion-mnist"],
                      help="the data set (default: the recipe's)")
    what.add_argument("--digits", "--classes", nargs="+", metavar="C", dest="digits",
                      help="classes to tell apart, by number or name, or 'all' (default: the "
                           "recipe's)")
    what.add_argument("--space", metavar="FILE",
                      help="TOML file with a [space] table (default: a space around the "
                           "recipe's settings)")
    how = tune.add_argument_group("how to search")
    how.add_argument("--trials", type=_positive_int, metavar="N",
                     help="trials this command runs (Optuna's n_trials)")
    how.add_argument("--timeout", type=functools.partial(_tune_option, "timeout"),
                     metavar="SECONDS", help="start no trial after this long (at most a year)")
    how.add_argument("--jobs", type=_positive_int, default=1, metavar="N",
                     help="worker processes on this machine, sharing its cores (default: 1)")
    how.add_argument("--sampler", choices=SAMPLERS, default="tpe", help="default: tpe")
    how.add_argument("--pruner", choices=PRUNERS, default="median", help="default: median")
    how.add_argument("--seed", type=functools.partial(_tune_option, "seed"),
                     help="seeds the sampler (worker i gets SEED + i), 0..2**32-1")
    study = tune.add_argument_group("study")
    study.add_argument("--study", metavar="NAME", type=functools.partial(_tune_option, "study"),
                       help="study name: letters, digits, '.', '_', '-' (default: the recipe, "
                            "and the digits if not its own)")
    study.add_argument("--storage", metavar="URL",
                       help="SQLAlchemy URL of the study database (default: sqlite:/// "
                            "OUT/study.db), e.g. postgresql+psycopg://user@host/db")
    study.add_argument("--heartbeat", type=_positive_int, default=30, metavar="SECONDS",
                       help="a running trial without a heartbeat for twice this long is "
                            "failed and retried (default: 30)")
    study.add_argument("--out", metavar="DIR",
                       help="tune folder (default: runs/tune/STUDY)")
    study.add_argument("--final", action=argparse.BooleanOptionalAction, default=True,
                       help="train and test the best settings at the end (default: yes)")
    study.add_argument("--no-plots", action="store_true",
                       help="skip the figures of the study and of the best run")
    tune.set_defaults(handler=_tune)


def _add_max_parameters(command: argparse.ArgumentParser) -> None:
    """The model-file size limit, for every command that loads a model."""
    command.add_argument("--max-parameters", type=_positive_int, default=MAX_PARAMETERS,
                         metavar="N",
                         help="refuse a model file that declares more parameters (default: "
                              f"{MAX_PARAMETERS:,}; raise it for a genuinely bigger model)")


def _positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (underscores allowed: 500_000_000)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def _tune_option(name: str, text: str) -> Any:
    """An argparse type for tune's --study, --seed and --timeout: usage errors (exit 2) with
    the bounds that :func:`nnscratch.tune.plan` checks."""
    from nnscratch import tune

    try:
        value: Any = text if name == "study" else (int if name == "seed" else float)(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    try:
        return tune.check_option(name, value)
    except tune.TuneError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix(f"--{name} ")) from None


#: The longest error line: a value of millions of elements is cut in the middle.
MAX_MESSAGE = 2000


def _port(text: str) -> int:
    """An argparse type: a TCP port, 0..65535 (0 picks a free one)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"a port is between 0 and 65535 (0 picks a free one), got {value}")
    return value


def _one_line(message: str) -> str:
    """Join a multi-line message (a list of places looked in, say) into one line, at most
    :data:`MAX_MESSAGE` characters (the start and the end, which says the fix, are kept)."""
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    if len(line) <= MAX_MESSAGE:
        return line
    cut = len(line) - MAX_MESSAGE + 40
    return f"{line[:MAX_MESSAGE - 440]} ... [{cut:,} characters cut] ... {line[-400:]}"


def _short(value: Any) -> str:
    """``repr`` of a setting's value, long lists cut: ``[10, 10, ... (2,000,000 elements)]``."""
    import reprlib

    shortener = reprlib.Repr()  # keyword arguments only from Python 3.12
    shortener.maxlist, shortener.maxlevel = 8, 3
    text = shortener.repr(value)
    if isinstance(value, list) and len(value) > 8:
        text = f"{text[:-1]} ({len(value):,} elements)]"
    return text


def _show_warning(message: Any, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    from nnscratch.nn.training import LossRoseWarning

    text = message.describe("--learning-rate") if isinstance(message, LossRoseWarning) \
        else str(message)
    print(f"nnscratch: warning: {_one_line(text)}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Parameters
    ----------
    argv : sequence of str, default=None
        The arguments after the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    int
        0 on success, 1 for an error or a failed gradient check, 2 for a usage error (a flag
        or config value), 130 when interrupted (Ctrl-C), 143 when terminated (SIGTERM).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    try:
        with _warnings_as_lines(args.debug), _signals.handling():
            with (_signals.interruptible() if getattr(args, "read_only", False)
                  else contextlib.nullcontext()):
                status = args.handler(args)
            _signals.check()  # a signal that came after the last safe point
            return status
    except _signals.Interrupted as interrupted:
        print(f"nnscratch: {interrupted.describe()}", file=sys.stderr)
        return interrupted.exit_status
    except KeyboardInterrupt:
        print("nnscratch: interrupted", file=sys.stderr)
        return 130
    except SettingError as error:  # a usage error: the flag or config key is named
        if args.debug:
            raise
        print(f"nnscratch {args.command}: error: {_one_line(str(error))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (| head): nothing left to say
        # Python's own flush at exit would fail again and print a traceback; point stdout at
        # /dev/null first, as the Python documentation advises for SIGPIPE.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as error:  # one clear line for the user, unless they asked for details
        if args.debug:
            raise
        # An OSError straight from the system ("[Errno 13] Permission denied: 'x'") is
        # reworded to name the path and the fix; every other error already says both.
        text = explain_os_error(error) if isinstance(error, OSError) else str(error)
        message = _one_line(text) or type(error).__name__
        print(f"nnscratch: error: {message}", file=sys.stderr)
        return 1


@contextlib.contextmanager
def _warnings_as_lines(debug: bool) -> Iterator[None]:
    """Show warnings as one ``nnscratch: warning:`` line (with the source line under --debug)."""
    with warnings.catch_warnings():
        if not debug:
            warnings.showwarning = _show_warning
        yield


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
