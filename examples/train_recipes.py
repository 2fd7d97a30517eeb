"""Train named recipes, for one or more seeds, and print each run's test accuracy and time.

Usage::

    python examples/train_recipes.py [--recipes tutorial binary-fast mnist10] [--seeds 0 1 2]
        [--data-dir DIR] [--report DIR] [--fill FILE ...] [--blas-threads N]
        [--epochs N] [--train-size N]

The recipes are those of ``nnscratch train --recipe NAME`` (see ``nnscratch/runs/recipes.py``);
this script runs them through the Python API, the way a notebook would. Each recipe's data set
(MNIST or Fashion-MNIST) is found as everywhere in nnscratch: ``--data-dir`` (for a single data
set), ``NNSCRATCH_DATA`` / ``NNSCRATCH_DATA_FASHION``, the cache, a download.

The training time is the wall time of the recipe's ``fit`` (data loading and scoring are not
included). Only the training set is used for training (and, where a recipe stops early, for
its validation split); the test set is scored once, after training.

With ``--report DIR``, it also writes the figures of ``docs/recipes.md`` as Markdown fragments
and pictures: ``<recipe>-results.md`` (every seed's accuracy and time, and the median),
``<recipe>-settings.md``, and, for the run with the median accuracy of each recipe,
``<recipe>-classes.md`` (per-class accuracy), ``<recipe>-confusions.md`` (the classes it
mixes up most) and ``<recipe>-confusion.png`` (the confusion matrix); ``<recipe>-row.md``
holds its row of README's recipe table, and ``<recipe>-runs.json`` every figure of its runs.

With ``--fill FILE ...`` (needs ``--report``), the fragments go straight into Markdown files:
each block between ``<!-- train_recipes KEY -->`` and ``<!-- /train_recipes KEY -->`` (KEY
``<recipe>-results``, ``-settings``, ``-classes`` or ``-confusions``) is
replaced, and in a table headed ``| recipe | task | test accuracy |...`` (README's) each
recipe's row is replaced, or added at the end of the table. Running it again refreshes them;
recipes run separately fill their own blocks and rows.

``--epochs`` and ``--train-size`` shorten a run for a quick check of this script; the figures
they give are not the recipe's, and the fragments say so.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from nnscratch._atomic import atomic_write
from nnscratch.data import load_dataset
from nnscratch.runs.recipes import RECIPES, train_recipe

#: The first cells of README's recipe table, whose rows ``--fill`` replaces.
README_TABLE_HEADER = "| recipe | task | test accuracy |"
#: The augmentation settings in README's words (those not named go without saying).
AUGMENT_WORDS = {"shift": "shifts", "rotation": "rotations", "scale": "scaling",
                 "shear": "shear", "flip": "mirror images", "elastic_alpha": "elastic distortion"}


def run(name: str, settings: dict[str, Any], seed: int, data: Any) -> dict[str, Any]:
    """Train recipe ``name`` with ``settings`` and ``seed``; return its accuracy, time and
    test predictions."""
    recipe = RECIPES[name]
    settings = {**settings, "seed": seed}
    start = time.perf_counter()
    model = train_recipe(recipe, settings, data.X_train, data.y_train)
    seconds = time.perf_counter() - start
    predicted = np.asarray(model.predict(data.X_test))
    correct = int(np.count_nonzero(predicted == data.y_test))
    return {"seed": seed, "accuracy": correct / data.test_size, "correct": correct,
            "seconds": seconds, "predicted": predicted}


def _median_run(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose accuracy is the median (the lower middle one for an even count)."""
    ranked = sorted(results, key=lambda r: r["accuracy"])
    return ranked[(len(ranked) - 1) // 2]


def _which_run(results: list[dict[str, Any]]) -> str:
    if len(results) == 1:
        return "its only seed"
    if len(results) % 2:
        return "the median of its seeds"
    return "the lower of its two middle seeds"


# ---------------------------------------------------------------------------------------------
# The Markdown fragments


def _layers(settings: dict[str, Any], n_classes: int) -> str:
    """``784-1024-1024-10``: the input, the hidden layers and the outputs (one for two
    classes, whose loss is the sigmoid's binary cross-entropy); a CNN's convolutions in
    brackets, ``784-[conv32-BN-pool]-[conv64-BN-pool]-128-10`` (3×3 convolutions, 2×2 pools)."""
    parts: list[Any] = [784]
    if settings.get("conv_layers"):
        block: list[str] = []
        for position, channels in enumerate(settings["conv_layers"], start=1):
            block += [f"conv{channels}"] + (["BN"] if settings.get("batch_norm") else [])
            if position % settings["pool_every"] == 0:
                parts.append(f"[{'-'.join([*block, 'pool'])}]")
                block = []
        if block:
            parts.append(f"[{'-'.join(block)}]")
    parts += [*settings["layers"], 1 if n_classes == 2 else n_classes]
    return "-".join(map(str, parts))


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _shortened(overrides: dict[str, Any]) -> str:
    """A warning line for runs shortened by --epochs / --train-size, else ''."""
    if not overrides:
        return ""
    what = ", ".join(f"{key} {value}" for key, value in overrides.items())
    return (f"**A shortened check ({what}), not the recipe's figures.** Run "
            "`examples/train_recipes.py` without `--epochs` and `--train-size` for those.\n\n")


def classes_fragment(name: str, best: dict[str, Any], data: Any, matrix: np.ndarray,
                     which: str) -> str:
    """Per-class accuracy of one run, and what each class is most often taken for."""
    lines = [f"Recipe `{name}`, seed {best['seed']} ({which}): "
             f"{best['accuracy']:.2%} ({best['correct']}/{data.test_size}) on the test set.", "",
             "| class | test images | correct | accuracy | most often taken for |",
             "|---|---|---|---|---|"]
    for k, class_name in enumerate(data.class_names):
        row = matrix[k].copy()
        row[k] = 0
        confused = int(np.argmax(row))
        taken_for = (f"{data.class_names[confused]} ({row[confused]})" if row[confused]
                     else "—")
        lines.append(f"| {class_name} | {matrix[k].sum()} | {matrix[k, k]} | "
                     f"{matrix[k, k] / matrix[k].sum():.2%} | {taken_for} |")
    return "\n".join(lines)


def confusions_fragment(name: str, best: dict[str, Any], data: Any, matrix: np.ndarray,
                        top: int = 5) -> str:
    """The pairs of classes the run mixes up most, both ways counted together."""
    off = matrix.astype(np.int64)
    np.fill_diagonal(off, 0)
    both_ways = np.triu(off + off.T, k=1)
    order = np.argsort(both_ways, axis=None)[::-1][:top]
    total_wrong = int(off.sum())
    lines = [f"Of the {total_wrong} test images `{name}` gets wrong (seed {best['seed']}), "
             "the pairs of classes it mixes up most:", ""]
    for flat in order:
        i, j = np.unravel_index(flat, both_ways.shape)
        if both_ways[i, j] == 0:
            break
        a, b = data.class_names[i], data.class_names[j]
        lines.append(f"- {a} and {b}: {both_ways[i, j]} ({both_ways[i, j] / total_wrong:.0%} of "
                     f"the errors): {off[i, j]} {a} taken for {b}, {off[j, i]} {b} for {a}.")
    return "\n".join(lines)


def settings_fragment(name: str, data: Any) -> str:
    """The recipe's description and every one of its own settings, as a table."""
    settings = RECIPES[name].settings
    lines = [f"`nnscratch train --recipe {name}`: {RECIPES[name].description}", "",
             "| setting | value |", "|---|---|"]
    layers = _layers(settings, data.n_classes)
    for key, value in settings.items():
        shown = layers if key == "layers" else value
        if key == "digits":
            shown = ", ".join(data.class_names)
        if key == "augment":
            shown = (", ".join(f"{k} {v}" for k, v in value.items()) or "none") if value \
                else "none"
        lines.append(f"| `{key}` | {shown} |")
    return "\n".join(lines)


def machine() -> str:
    """Where the figures were measured: the date, the cores, NumPy and its BLAS (with the
    threads BLAS runs on now)."""
    from nnscratch.runs import blas_info

    blas = ", ".join(f"{b['library']} {b['version']} ({b['kernel']}, {b['threads']} "
                     f"thread{'s' if b['threads'] != 1 else ''})" for b in blas_info())
    return (f"Measured {datetime.now().astimezone():%Y-%m-%d} on {os.cpu_count()} cores, "
            f"NumPy {np.__version__}, BLAS {blas or 'unknown'}.")


def results_fragment(recipes: dict[str, list[dict[str, Any]]], test_sizes: dict[str, int],
                     overrides: dict[str, Any], where: str) -> str:
    """Every seed's accuracy and training time, and each recipe's median."""
    lines = [_shortened(overrides).rstrip("\n"), ""] if overrides else []
    lines += [where, "", "| recipe | seed | test accuracy | correct | training time |",
              "|---|---|---|---|---|"]
    for name, results in recipes.items():
        for r in results:
            lines.append(f"| `{name}` | {r['seed']} | {r['accuracy']:.2%} | "
                         f"{r['correct']}/{test_sizes[name]} | {_duration(r['seconds'])} |")
        if len(results) > 1:
            accuracy = statistics.median(r["accuracy"] for r in results)
            seconds = statistics.median(r["seconds"] for r in results)
            lines.append(f"| **`{name}`** | **median** | **{accuracy:.2%}** | | "
                         f"**{_duration(seconds)}** |")
    return "\n".join(lines)


def _task(data: Any) -> str:
    """The classes in words: "all ten digits", "1 vs 2", "Fashion-MNIST, ten classes"."""
    names = list(data.class_names)
    if data.dataset == "mnist":
        return "all ten digits" if len(names) == 10 else " vs ".join(names)
    what = "Fashion-MNIST" if data.dataset == "fashion-mnist" else data.dataset
    return f"{what}, ten classes" if len(names) == 10 else f"{what}: {' vs '.join(names)}"


def readme_row(name: str, settings: dict[str, Any], results: list[dict[str, Any]],
               data: Any) -> str:
    """README's table row: the task in words, the median accuracy and training time."""
    task, test_size = _task(data), data.test_size
    layers = _layers(settings, data.n_classes)
    augment = ", ".join(AUGMENT_WORDS[key] for key, value in (settings.get("augment") or {}).items()
                        if value and key in AUGMENT_WORDS)
    parts = [task, f"{layers} {settings['activation']}".replace("relu", "ReLU")]
    if settings.get("dropout"):
        parts.append(f"dropout {settings['dropout']}")
    if augment:
        parts.append(f"augmented ({augment})")
    parts.append(f"{settings['optimizer'].capitalize()}, {settings['schedule']} schedule, "
                 f"{settings['epochs']} epochs")
    median = _median_run(results)
    if len(results) % 2:
        accuracy = f"{median['accuracy']:.2%} ({median['correct']}/{test_size})"
    else:
        accuracy = f"{statistics.median(r['accuracy'] for r in results):.2%}"
    if len(results) > 1:
        accuracy += f", median of {len(results)} seeds"
    seconds = statistics.median(r["seconds"] for r in results)
    return f"| `{name}` | {', '.join(parts)} | {accuracy} | {_duration(seconds)} |"


# ---------------------------------------------------------------------------------------------
# Writing the report and filling Markdown files


def _write(path: Path, text: str) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(text)


def write_figures(name: str, results: list[dict[str, Any]], data: Any,
                  folder: Path) -> dict[str, str]:
    """The confusion matrix (PNG) and the per-class fragments of the median run."""
    best = _median_run(results)
    from nnscratch.metrics import confusion_matrix
    from nnscratch.plotting import plot_confusion_matrix

    folder.mkdir(parents=True, exist_ok=True)
    matrix = confusion_matrix(data.y_test, best["predicted"], labels=np.arange(data.n_classes))
    plot_confusion_matrix(matrix, list(data.class_names), path=folder / f"{name}-confusion.png")
    return {f"{name}-classes": classes_fragment(name, best, data, matrix, _which_run(results)),
            f"{name}-confusions": confusions_fragment(name, best, data, matrix)}


def fill(path: Path, fragments: dict[str, str], rows: dict[str, str]) -> list[str]:
    """Put the fragments into the marked blocks of ``path``, and the rows into README's
    recipe table; return what was filled."""
    text = path.read_text(encoding="utf-8")
    filled = []

    def block(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in fragments:
            return match.group(0)
        filled.append(key)
        return (f"<!-- train_recipes {key} -->\n{fragments[key]}\n"
                f"<!-- /train_recipes {key} -->")

    text = re.sub(r"<!-- train_recipes (\S+) -->\n.*?<!-- /train_recipes \1 -->", block, text,
                  flags=re.S)
    lines = text.split("\n")
    for start, line in enumerate(lines):
        if not line.startswith(README_TABLE_HEADER):
            continue
        end = start
        while end + 1 < len(lines) and lines[end + 1].startswith("|"):
            end += 1
        table = lines[start:end + 1]
        for name, row in rows.items():
            mine = [i for i, old in enumerate(table) if old.startswith(f"| `{name}` |")]
            if mine:
                table[mine[0]] = row
            else:
                table.append(row)
            filled.append(f"README row {name}")
        lines[start:end + 1] = table
        break
    _write(path, "\n".join(lines))
    return filled


def write_report(folder: Path, fragments: dict[str, str], rows: dict[str, str],
                 runs: dict[str, list[dict[str, Any]]], overrides: dict[str, Any]) -> None:
    """Every fragment as ``<key>.md``, and per recipe its README row and its runs' figures."""
    folder.mkdir(parents=True, exist_ok=True)
    for key, text in fragments.items():
        _write(folder / f"{key}.md", text + "\n")
    for name, row in rows.items():
        _write(folder / f"{name}-row.md", row + "\n")
    for name, results in runs.items():
        document = {"recipe": name, "overrides": overrides,
                    "runs": [{k: v for k, v in r.items() if k != "predicted"} for r in results]}
        _write(folder / f"{name}-runs.json", json.dumps(document, indent=2) + "\n")


def _blas_threads(limit: int | None) -> contextlib.AbstractContextManager[object]:
    if limit is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=limit, user_api="blas")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder with the data set's files (one data set only)")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help="seeds to train each recipe with (default: the recipe's own)")
    parser.add_argument("--report", type=Path, metavar="DIR",
                        help="write the Markdown fragments, runs.json and the confusion "
                             "matrices of the median runs into DIR")
    parser.add_argument("--fill", type=Path, nargs="+", metavar="FILE", default=[],
                        help="fill the marked blocks of these Markdown files and README's "
                             "recipe table (needs --report)")
    parser.add_argument("--blas-threads", type=int, metavar="N",
                        help="limit BLAS to N threads (needs threadpoolctl)")
    parser.add_argument("--epochs", type=int, metavar="N",
                        help="a quick check: train N epochs instead of the recipe's")
    parser.add_argument("--train-size", type=int, metavar="N",
                        help="a quick check: train on the first N training images only")
    return parser


def run_seeds(name: str, args: argparse.Namespace) -> tuple[list[dict[str, Any]], Any,
                                                             dict[str, Any]]:
    """Train recipe ``name`` for each seed, printing a line per run (and the median);
    return the results, the data and the settings used."""
    settings = dict(RECIPES[name].settings)
    if args.epochs is not None and "epochs" in settings:
        settings["epochs"] = args.epochs
    data = load_dataset(settings["dataset"], settings["digits"], data_dir=args.data_dir,
                        dtype=np.dtype(settings["dtype"]), progress=False)
    if args.train_size is not None:
        data = dataclasses.replace(data, X_train=data.X_train[:args.train_size],
                                   y_train=data.y_train[:args.train_size])
    results = []
    for seed in args.seeds if args.seeds is not None else [settings["seed"]]:
        result = run(name, settings, seed, data)
        results.append(result)
        print(f"{name:<14} {seed:>4} {result['accuracy']:>14.2%} "
              f"{result['correct']:>6}/{data.test_size:<5} {result['seconds']:>8.1f}",
              flush=True)
    if len(results) > 1:
        accuracy = statistics.median(r["accuracy"] for r in results)
        seconds = statistics.median(r["seconds"] for r in results)
        print(f"{name:<14} {'med':>4} {accuracy:>14.2%} {'':>12} {seconds:>8.1f}", flush=True)
    return results, data, settings


def main() -> None:
    parser = _parser()
    args = parser.parse_args()
    if args.fill and args.report is None:
        parser.error("--fill needs --report DIR (where the confusion matrices go)")
    overrides = {key: value for key, value in (("epochs", args.epochs),
                                               ("training images", args.train_size))
                 if value is not None}
    print(f"{'recipe':<14} {'seed':>4} {'test accuracy':>14} {'correct':>12} {'seconds':>8}",
          flush=True)
    fragments: dict[str, str] = {}
    rows: dict[str, str] = {}
    all_results: dict[str, list[dict[str, Any]]] = {}
    test_sizes: dict[str, int] = {}
    with _blas_threads(args.blas_threads):
        where = machine()
        for name in args.recipes:
            results, data, settings = run_seeds(name, args)
            all_results[name], test_sizes[name] = results, data.test_size
            if args.report is None:
                continue
            fragments.update(write_figures(name, results, data, args.report))
            fragments[f"{name}-settings"] = settings_fragment(name, data)
            for key in (f"{name}-classes", f"{name}-confusions"):
                fragments[key] = _shortened(overrides) + fragments[key]
            rows[name] = readme_row(name, settings, results, data)
    if args.report is None:
        return
    for name, results in all_results.items():  # one block each: recipes may run separately
        fragments[f"{name}-results"] = results_fragment({name: results}, test_sizes, overrides,
                                                        where)
    write_report(args.report, fragments, rows, all_results, overrides)
    if overrides and args.fill:  # a shortened check never lands in README's table
        print("README's recipe table is left alone: --epochs / --train-size shortened the runs.")
    for path in args.fill:
        filled = fill(path, fragments, {} if overrides else rows)
        print(f"{path}: filled {', '.join(filled) or 'nothing'}")


if __name__ == "__main__":
    main()
