"""Train each named recipe and print its test accuracy and training time.

Usage::

    python examples/train_recipes.py [--data-dir DIR] [--recipes tutorial binary-fast mnist10]

The recipes are those of ``nnscratch train --recipe NAME`` (see ``nnscratch/recipes.py``);
this script runs them through the Python API, the way a notebook would.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nnscratch.data import load_digits
from nnscratch.recipes import RECIPES, train_recipe


def run(name: str, data_dir: str | None) -> tuple[float, float, int, int]:
    """Train recipe ``name``; return (test accuracy, training seconds, correct, test size)."""
    recipe = RECIPES[name]
    settings = recipe.settings
    data = load_digits(settings["digits"], data_dir=data_dir, dtype=np.dtype(settings["dtype"]),
                       progress=False)
    start = time.perf_counter()
    model = train_recipe(recipe, settings, data.X_train, data.y_train)
    seconds = time.perf_counter() - start
    correct = int(np.count_nonzero(model.predict(data.X_test) == data.y_test))
    return correct / data.test_size, seconds, correct, data.test_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder with the MNIST files (else NNSCRATCH_DATA)")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    args = parser.parse_args()
    print(f"{'recipe':<12} {'test accuracy':>14} {'correct':>12} {'seconds':>8}")
    for name in args.recipes:
        accuracy, seconds, correct, size = run(name, args.data_dir)
        print(f"{name:<12} {accuracy:>14.2%} {f'{correct}/{size}':>12} {seconds:>8.1f}")


if __name__ == "__main__":
    main()
