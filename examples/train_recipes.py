"""Train named recipes, for one or more seeds, and print each run's test accuracy and time.

Usage::

    python examples/train_recipes.py [--recipes tutorial binary-fast mnist10] [--seeds 0 1 2]
        [--data-dir DIR] [--report DIR] [--blas-threads N]

The recipes are those of ``nnscratch train --recipe NAME`` (see ``nnscratch/recipes.py``);
this script runs them through the Python API, the way a notebook would. Each recipe's data set
(MNIST or Fashion-MNIST) is found as everywhere in nnscratch: ``--data-dir`` (for a single data
set), ``NNSCRATCH_DATA`` / ``NNSCRATCH_DATA_FASHION``, the cache, a download.

The training time is the wall time of the recipe's ``fit`` (data loading and scoring are not
included). Only the training set is used for training (and, where a recipe stops early, for
its validation split); the test set is scored once, after training.

With ``--report DIR``, it also writes, for the run with the median accuracy of each recipe, the
per-class accuracy as a Markdown table (``DIR/<recipe>.md``) and the confusion matrix as a
picture (``DIR/<recipe>-confusion.png``): the figures of ``docs/recipes.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from nnscratch.data import load_dataset
from nnscratch.recipes import RECIPES, train_recipe


def run(name: str, seed: int, data: Any) -> dict[str, Any]:
    """Train recipe ``name`` with ``seed``; return its accuracy, time and test predictions."""
    recipe = RECIPES[name]
    settings = {**recipe.settings, "seed": seed}
    start = time.perf_counter()
    model = train_recipe(recipe, settings, data.X_train, data.y_train)
    seconds = time.perf_counter() - start
    predicted = np.asarray(model.predict(data.X_test))
    correct = int(np.count_nonzero(predicted == data.y_test))
    return {"seed": seed, "accuracy": correct / data.test_size, "correct": correct,
            "seconds": seconds, "predicted": predicted}


def write_report(name: str, best: dict[str, Any], data: Any, folder: Path) -> None:
    """Per-class accuracy (Markdown) and the confusion matrix (PNG) of one run."""
    from nnscratch.metrics import confusion_matrix
    from nnscratch.plotting import plot_confusion_matrix

    folder.mkdir(parents=True, exist_ok=True)
    labels = np.arange(data.n_classes)
    matrix = confusion_matrix(data.y_test, best["predicted"], labels=labels)
    plot_confusion_matrix(matrix, data.class_names, path=folder / f"{name}-confusion.png")
    lines = [f"Recipe `{name}`, seed {best['seed']}: {best['accuracy']:.2%} "
             f"({best['correct']}/{data.test_size}) on the test set.", "",
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
    (folder / f"{name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _blas_threads(limit: int | None) -> contextlib.AbstractContextManager[object]:
    if limit is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=limit, user_api="blas")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder with the data set's files (one data set only)")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help="seeds to train each recipe with (default: the recipe's own)")
    parser.add_argument("--report", type=Path, metavar="DIR",
                        help="write per-class accuracy and the confusion matrix of the median run")
    parser.add_argument("--blas-threads", type=int, metavar="N",
                        help="limit BLAS to N threads (needs threadpoolctl)")
    args = parser.parse_args()
    print(f"{'recipe':<14} {'seed':>4} {'test accuracy':>14} {'correct':>12} {'seconds':>8}",
          flush=True)
    with _blas_threads(args.blas_threads):
        for name in args.recipes:
            settings = RECIPES[name].settings
            data = load_dataset(settings["dataset"], settings["digits"], data_dir=args.data_dir,
                                dtype=np.dtype(settings["dtype"]), progress=False)
            results = []
            for seed in args.seeds if args.seeds is not None else [settings["seed"]]:
                result = run(name, seed, data)
                results.append(result)
                print(f"{name:<14} {seed:>4} {result['accuracy']:>14.2%} "
                      f"{result['correct']:>6}/{data.test_size:<5} {result['seconds']:>8.1f}",
                      flush=True)
            if len(results) > 1:
                ranked = sorted(results, key=lambda r: r["accuracy"])
                median = ranked[(len(ranked) - 1) // 2]
                accuracy = statistics.median(r["accuracy"] for r in results)
                seconds = statistics.median(r["seconds"] for r in results)
                print(f"{name:<14} {'med':>4} {accuracy:>14.2%} {'':>12} {seconds:>8.1f}",
                      flush=True)
            else:
                median = results[0]
            if args.report is not None:
                write_report(name, median, data, args.report)


if __name__ == "__main__":
    main()
