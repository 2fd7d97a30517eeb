"""The ``nnscratch`` command line: ``train`` now; one sub-command per task.

Parsing is argparse's; the work is done by the library. Errors are printed as one line that
says what went wrong and how to fix it, with exit status 1 (2 for usage errors, 130 for
Ctrl-C); ``--debug`` shows the full traceback instead.

What is left out: interactive prompts and colour.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from nnscratch._atomic import atomic_write
from nnscratch.recipes import RECIPES, Recipe, allowed_keys, get_recipe

EXAMPLES_TRAIN = """\
examples:
  nnscratch train                                   # the tutorial: 1 vs 2, 98.87% / 99.26%
  nnscratch train --iterations 101 --log-every 1 --out run-check
  nnscratch train --recipe binary-fast --digits 3 8
  nnscratch train --recipe mnist10 --epochs 20
  nnscratch train --config runs/RUN/config.toml      # repeat a run exactly
"""


class CLIError(Exception):
    """A problem the user can fix; printed as one line without a traceback."""


# ---------------------------------------------------------------------------------------------
# Settings: recipe defaults, then a TOML config, then command-line flags.


def _load_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise CLIError(f"config file {path} does not exist.") from None
    except tomllib.TOMLDecodeError as error:
        raise CLIError(f"config file {path} is not valid TOML: {error}") from None


def resolve_settings(args: argparse.Namespace) -> tuple[Recipe, dict[str, Any]]:
    """Merge recipe defaults, the ``--config`` file and explicit flags, and check them."""
    config: dict[str, Any] = {}
    if args.config is not None:
        config = dict(_load_toml(Path(args.config)).get("train", {}))
    name = args.recipe or config.get("recipe") or "tutorial"
    try:
        recipe = get_recipe(name)
    except ValueError as error:
        raise CLIError(str(error)) from None
    allowed = allowed_keys(recipe)
    settings: dict[str, Any] = {"recipe": recipe.name, **recipe.settings}
    for source, values in (("config", config), ("flags", _given_flags(args))):
        for key, value in values.items():
            if key not in allowed:
                where = f"in {args.config}" if source == "config" else f"--{key.replace('_', '-')}"
                raise CLIError(
                    f"{where}: the setting {key!r} does not apply to the {recipe.name!r} recipe "
                    f"(it takes {', '.join(k for k in allowed if k != 'recipe')})."
                )
            settings[key] = value
    from nnscratch.data import parse_digits

    try:
        settings["digits"] = list(parse_digits(settings["digits"]))
    except ValueError as error:
        raise CLIError(f"--digits: {error}") from None
    if recipe.kind == "tutorial" and len(settings["digits"]) != 2:
        raise CLIError(
            f"the tutorial recipe classifies two digits, got {settings['digits']}; use "
            "--recipe mnist10 (or binary-fast) for other sets."
        )
    return recipe, settings


_SETTING_FLAGS = (
    "digits", "layers", "learning_rate", "iterations", "log_every", "seed", "dtype",
    "activation", "optimizer", "batch_size", "epochs", "momentum", "weight_decay", "dropout",
    "schedule", "warmup_epochs", "early_stopping", "validation_fraction", "patience",
)


def _given_flags(args: argparse.Namespace) -> dict[str, Any]:
    return {key: getattr(args, key) for key in _SETTING_FLAGS if getattr(args, key) is not None}


# ---------------------------------------------------------------------------------------------
# train


def _new_run_dir(recipe: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{stamp}-{recipe}"
    path, suffix = base, 1
    while path.exists():
        suffix += 1
        path = Path(f"{base}-{suffix}")
    return path


def _sha256_of(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _write_text(path: Path, text: str) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(text)


def _write_config(path: Path, settings: dict[str, Any]) -> None:
    import tomli_w

    header = (
        "# The exact settings of this run. Repeat it with:\n"
        f"#   nnscratch train --config {path}\n"
    )
    _write_text(path, header + tomli_w.dumps({"train": settings}))


def _write_history_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["epoch"])
    writer.writeheader()
    writer.writerows(rows)
    _write_text(path, buffer.getvalue())


def _train(args: argparse.Namespace) -> int:
    from nnscratch.data import load_digits

    recipe, settings = resolve_settings(args)
    out = Path(args.out) if args.out else _new_run_dir(recipe.name)
    quiet = args.quiet or args.json
    data = load_digits(
        settings["digits"], data_dir=args.data_dir, dtype=np.dtype(settings["dtype"]),
        download=not args.no_download, verify=not args.no_verify, progress=not quiet,
    )
    out.mkdir(parents=True, exist_ok=True)
    digits = np.asarray(settings["digits"])
    if not quiet:
        print(f"nnscratch train: recipe {recipe.name!r}, digits {settings['digits']}, "
              f"{data.train_size} train / {data.test_size} test examples -> {out}")
    start = time.perf_counter()
    if recipe.kind == "tutorial":
        trained = _train_tutorial(settings, data, verbose=0 if quiet else 1)
    else:
        trained = _train_mlp(settings, data, verbose=0 if quiet else 1)
    seconds = time.perf_counter() - start
    predictor, cost_history, history_rows = trained

    train_pred = predictor.predict(data.X_train)
    test_pred = predictor.predict(data.X_test)
    train_correct = int(np.count_nonzero(train_pred == data.y_train))
    test_correct = int(np.count_nonzero(test_pred == data.y_test))
    from nnscratch.metrics import confusion_matrix

    metrics = {
        "recipe": recipe.name,
        "digits": settings["digits"],
        "train_accuracy": train_correct / data.train_size,
        "test_accuracy": test_correct / data.test_size,
        "train_correct": train_correct,
        "test_correct": test_correct,
        "train_size": data.train_size,
        "test_size": data.test_size,
        "seconds": seconds,
        "cost_history": [{"iteration": i, "cost": c} for i, c in cost_history],
        "confusion_matrix": confusion_matrix(
            data.y_test, test_pred, labels=np.arange(len(digits))).tolist(),
    }
    _write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    _write_config(out / "config.toml", settings)
    _write_history_csv(out / "history.csv", history_rows)
    from nnscratch.serialization import save_model

    save_model(
        out / "model.npz", predictor.model_, digits,
        metadata={
            "config": settings,
            "preprocessing": {
                "source": "MNIST 28x28 grayscale, digit white on black",
                "flatten": [28, 28],
                "scale": "pixel / 255",
                "dtype": settings["dtype"],
            },
            "seeds": {"seed": settings["seed"]},
            "training_data_sha256": _sha256_of(data.X_train, data.y_train),
            "metrics": {k: metrics[k] for k in ("train_accuracy", "test_accuracy", "seconds")},
        },
    )
    _write_plots(out, recipe, cost_history, history_rows, predictor, data, test_pred)
    if args.json:
        print(json.dumps({**metrics, "run_dir": str(out)}, indent=2))
    elif not args.quiet:
        print(f"train accuracy: {metrics['train_accuracy']:.2%} "
              f"({train_correct}/{data.train_size})")
        print(f"test accuracy:  {metrics['test_accuracy']:.2%} ({test_correct}/{data.test_size})")
        print(f"training time:  {seconds:.1f} s")
        print(f"run folder:     {out}")
    return 0


def _train_tutorial(settings: dict[str, Any], data: Any, *, verbose: int) -> tuple:
    from nnscratch.classic import NeuralNet

    net = NeuralNet(settings["layers"], seed=settings["seed"], dtype=settings["dtype"])
    try:
        net.fit(data.X_train, data.y_train, learning_rate=settings["learning_rate"],
                n_iterations=settings["iterations"], log_every=settings["log_every"],
                verbose=verbose)
    except ValueError as error:
        raise CLIError(str(error)) from None
    rows = [{"iteration": i, "cost": c} for i, c in net.cost_history_]
    return _TutorialPredictor(net), net.cost_history_, rows


class _TutorialPredictor:
    """Adapts NeuralNet to the class-index predictions the run folder records."""

    def __init__(self, net: Any) -> None:
        self.net = net
        self.model_ = net.model_

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.net.predict(X)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.net.predict_proba(X)


def _train_mlp(settings: dict[str, Any], data: Any, *, verbose: int) -> tuple:
    from nnscratch.classifier import NeuralNetClassifier

    classifier = NeuralNetClassifier(
        hidden_layers=tuple(settings["layers"]), activation=settings["activation"],
        optimizer=settings["optimizer"], learning_rate=settings["learning_rate"],
        batch_size=settings["batch_size"], epochs=settings["epochs"],
        momentum=settings["momentum"], weight_decay=settings["weight_decay"],
        dropout=settings["dropout"], schedule=settings["schedule"],
        warmup_epochs=settings["warmup_epochs"], early_stopping=settings["early_stopping"],
        validation_fraction=settings["validation_fraction"], patience=settings["patience"],
        dtype=settings["dtype"], random_state=settings["seed"], verbose=verbose,
    )
    try:
        classifier.fit(data.X_train, data.y_train)
    except ValueError as error:
        raise CLIError(str(error)) from None
    history = classifier.history_
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
    cost_history = [(epoch + 1, loss) for epoch, loss in enumerate(history.loss)]
    return classifier, cost_history, rows


def _write_plots(out: Path, recipe: Recipe, cost_history: list, history_rows: list,
                 predictor: Any, data: Any, test_pred: np.ndarray) -> None:
    from nnscratch import plotting
    from nnscratch.metrics import confusion_matrix

    digits = [str(d) for d in data.digits]
    if recipe.kind == "tutorial":
        iterations, costs = zip(*cost_history, strict=True) if cost_history else ((), ())
        if costs:
            plotting.plot_cost(list(costs), list(iterations), path=out / "cost.png",
                               title=f"Training cost, digits {digits[0]} vs {digits[1]}")
    else:
        history = {key: [row[key] for row in history_rows] for key in history_rows[0]
                   if key in ("loss", "accuracy", "val_loss", "val_accuracy")}
        plotting.plot_history(history, path=out / "history.png")
        plotting.plot_cost(history["loss"], [row["epoch"] for row in history_rows],
                           path=out / "cost.png", title="Training loss per epoch")
    matrix = confusion_matrix(data.y_test, test_pred, labels=np.arange(len(digits)))
    plotting.plot_confusion_matrix(matrix, digits, path=out / "confusion_matrix.png")
    wrong = np.flatnonzero(test_pred != data.y_test)
    plotting.plot_misclassified(
        data.X_test[wrong].reshape(-1, 28, 28), np.asarray(data.digits)[data.y_test[wrong]],
        np.asarray(data.digits)[test_pred[wrong]], path=out / "misclassified.png",
    )
    plotting.plot_first_layer_weights(predictor.model_.layers[0].W.value,
                                      path=out / "first_layer_weights.png")
    if len(digits) == 2:
        scores = predictor.predict_proba(data.X_test)
        scores = scores[:, 1] if scores.ndim == 2 else scores
        plotting.plot_roc(data.y_test, scores, path=out / "roc.png")


# ---------------------------------------------------------------------------------------------
# The parser


def _common_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("output")
    group.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    group.add_argument("--json", action="store_true", help="print the result as JSON")
    group.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``nnscratch`` command."""
    parser = argparse.ArgumentParser(
        prog="nnscratch",
        description="Neural networks from scratch in NumPy, trained on MNIST.",
        epilog="Run 'nnscratch COMMAND --help' for the options of each command.",
    )
    from nnscratch import __version__

    parser.add_argument("--version", action="version", version=f"nnscratch {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = _common_options()

    train = commands.add_parser(
        "train", parents=[common], help="train a network and write a run folder",
        description=(
            "Train a network on MNIST digits and write a run folder with metrics.json, "
            "history.csv, config.toml, model.npz and plots. With no options it runs the "
            "tutorial's experiment. Recipes: "
            + "; ".join(f"{r.name}: {r.description}" for r in RECIPES.values())
        ),
        epilog=EXAMPLES_TRAIN, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = train.add_argument_group("what to train")
    what.add_argument("--recipe", choices=sorted(RECIPES),
                      help="named settings (default: tutorial)")
    what.add_argument("--config", metavar="FILE",
                      help="TOML file with a [train] table of settings (a run's config.toml)")
    what.add_argument("--digits", nargs="+", metavar="D",
                      help="digits to classify, in label order, or 'all' (tutorial: 1 2)")
    what.add_argument("--layers", nargs="+", type=int, metavar="N",
                      help="tutorial: sizes after the input, ending with the output (196 1); "
                           "other recipes: hidden layer sizes")
    how = train.add_argument_group("how to train")
    how.add_argument("--learning-rate", type=float, metavar="LR")
    how.add_argument("--iterations", type=int, metavar="N",
                     help="tutorial: full-batch gradient-descent steps (1000)")
    how.add_argument("--log-every", type=int, metavar="N",
                     help="tutorial: log the cost every N iterations (100)")
    how.add_argument("--epochs", type=int, metavar="N")
    how.add_argument("--batch-size", type=int, metavar="N")
    how.add_argument("--optimizer", choices=["sgd", "adam", "adamw"])
    how.add_argument("--activation",
                     choices=["relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid"])
    how.add_argument("--momentum", type=float)
    how.add_argument("--weight-decay", type=float)
    how.add_argument("--dropout", type=float)
    how.add_argument("--schedule", choices=["constant", "cosine", "step", "exponential"])
    how.add_argument("--warmup-epochs", type=int, metavar="N")
    how.add_argument("--early-stopping", action=argparse.BooleanOptionalAction, default=None)
    how.add_argument("--validation-fraction", type=float)
    how.add_argument("--patience", type=int)
    how.add_argument("--seed", type=int)
    how.add_argument("--dtype", choices=["float32", "float64"])
    where = train.add_argument_group("data and output")
    where.add_argument("--data-dir", metavar="DIR",
                       help="folder with the MNIST files (else $NNSCRATCH_DATA, the cache, or "
                            "a download)")
    where.add_argument("--no-download", action="store_true",
                       help="fail instead of downloading MNIST")
    where.add_argument("--no-verify", action="store_true",
                       help="skip the SHA-256 check (for a deliberately different dataset)")
    where.add_argument("--out", metavar="DIR", help="run folder (default: a new one in runs/)")
    train.set_defaults(handler=_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("nnscratch: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # one clear line for the user, unless they asked for details
        if args.debug:
            raise
        message = str(error) or type(error).__name__
        print(f"nnscratch: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
