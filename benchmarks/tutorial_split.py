"""The tutorial recipe side by side: nnscratch, the tutorial's own code, and their products alone.

    python benchmarks/tutorial_split.py [--iterations N] [--rounds N] [--quick] [--data-dir DIR]

Issue 23's tutorial targets compare nnscratch's training with the tutorial's own NumPy loop
(``TutorialCode`` in ``_contenders.py``) and with the matrix products both must compute. On a
machine whose speed drifts (a shared virtual machine), separate runs minutes apart do not
compare; this script alternates the three in one process (the order rotated each round), in
blocks of ``--iterations`` full-batch iterations on MNIST 1 vs 2 (12,700 x 784), and reports
each one's median milliseconds per iteration:

- ``nnscratch``: ``NeuralNet([196, 1], dtype).fit(X, y, learning_rate=0.1, n_iterations=N)``
  (its set-up, a few milliseconds, counted in the block, as the tutorial's is);
- ``tutorial``: the tutorial's loop, feature-major, with its cost computed every iteration;
- ``products``: the two large products of an iteration, ``X @ W`` (12,700 x 784 x 196) and
  ``X.T @ G``, each in the faster of ``direct`` and ``transposed`` (the same layouts
  ``nnscratch.nn._kernels.matmul`` chooses between; the tiny products of the output layer are
  left out), which neither code can beat.

Each contender runs one untimed block first (``matmul`` times its layouts on the first
product of each shape, once per process). Run it on an otherwise idle machine; ``--quick``
proves the code path in seconds.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable

import numpy as np
from _contenders import TutorialCode
from _timing import alternate

from nnscratch.classic import NeuralNet
from nnscratch.data import load_digits


def _blocks(dtype: np.dtype, X: np.ndarray, y: np.ndarray, iterations: int
            ) -> dict[str, Callable[[], None]]:
    """The three contenders, each one block of ``iterations`` iterations."""
    def nnscratch() -> None:
        NeuralNet([196, 1], dtype=dtype).fit(X, y, learning_rate=0.1, n_iterations=iterations)

    def tutorial() -> None:
        weights, biases = TutorialCode.initial([X.shape[1], 196, 1], dtype)
        TutorialCode._train(X, y.astype(dtype), weights, biases, 0.1, iterations)

    W = np.full((X.shape[1], 196), 0.01, dtype=dtype)
    G = np.full((X.shape[0], 196), 0.01, dtype=dtype)
    forward = {"direct": lambda: X @ W, "transposed": lambda: (W.T @ X.T).T}
    weight_grad = {"direct": lambda: X.T @ G, "transposed": lambda: (G.T @ X).T}
    fastest = []
    for layouts in (forward, weight_grad):
        seconds = alternate(layouts, 3)
        fastest.append(layouts[min(seconds, key=seconds.__getitem__)])

    def products() -> None:
        for _ in range(iterations):
            for product in fastest:
                product()

    return {"nnscratch": nnscratch, "tutorial": tutorial, "products": products}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20, help="iterations per block")
    parser.add_argument("--rounds", type=int, default=5, help="blocks per contender")
    parser.add_argument("--quick", action="store_true", help="2 iterations, 1 round")
    parser.add_argument("--data-dir", default=None, help="folder with the MNIST files")
    args = parser.parse_args(argv)
    # tutorial_weights reads the initial weights off an untrained NeuralNet, which warns.
    warnings.filterwarnings("ignore", message="training with 0 epochs")
    iterations, rounds = (2, 1) if args.quick else (args.iterations, args.rounds)

    print(f"ms per iteration, median of {rounds} alternated blocks of {iterations} iterations")
    print("| dtype | nnscratch | tutorial's own code | the two products alone | "
          "nnscratch / tutorial | nnscratch / products | tutorial / products |")
    print("|---|---|---|---|---|---|---|")
    for dtype in (np.dtype(np.float64), np.dtype(np.float32)):
        data = load_digits((1, 2), data_dir=args.data_dir, dtype=dtype, progress=False)
        blocks = _blocks(dtype, data.X_train, data.y_train, iterations)
        # alternate's untimed first call of each lets matmul time its layouts on first sight.
        seconds = alternate(blocks, rounds)
        ms = {name: 1e3 * block_seconds / iterations for name, block_seconds in seconds.items()}
        print(f"| {dtype.name} | {ms['nnscratch']:.1f} | {ms['tutorial']:.1f} | "
              f"{ms['products']:.1f} | {ms['nnscratch'] / ms['tutorial']:.2f} | "
              f"{ms['nnscratch'] / ms['products']:.2f} | {ms['tutorial'] / ms['products']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
