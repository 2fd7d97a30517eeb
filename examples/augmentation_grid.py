"""Draw what the recipes' augmentation does: each image beside seven random versions of it.

Usage::

    python examples/augmentation_grid.py [--out docs/images]

Writes ``augmentation.png`` (MNIST digits, the augmentation of ``mnist10-best``) and
``augmentation-fashion.png`` (Fashion-MNIST, that of ``fashion10``) into ``--out``. The data
sets are found as everywhere in nnscratch (``NNSCRATCH_DATA``, ``NNSCRATCH_DATA_FASHION``,
the cache, a download).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from nnscratch.data import load_dataset
from nnscratch.data.augment import Augmentation
from nnscratch.plotting import plot_augmentation
from nnscratch.runs.recipes import RECIPES


def draw(recipe: str, path: Path) -> None:
    settings = RECIPES[recipe].settings
    data = load_dataset(settings["dataset"], dtype=np.float32, progress=False)
    # The first training image of each of six classes.
    rows = [int(np.flatnonzero(data.y_train == k)[0]) for k in range(0, 10, 2)][:6]
    plot_augmentation(data.X_train[rows], Augmentation.from_settings(settings["augment"]),
                      labels=[data.class_names[data.y_train[i]] for i in rows], path=path)
    print(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    draw("mnist10-best", args.out / "augmentation.png")
    draw("fashion10", args.out / "augmentation-fashion.png")


if __name__ == "__main__":
    main()
