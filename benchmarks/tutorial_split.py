"""The tutorial recipe side by side: nnscratch, the tutorial's own code, and their products alone.

    python benchmarks/tutorial_split.py [--iterations N] [--rounds N] [--quick] [--data-dir DIR]

Issue 23's tutorial targets compare nnscratch's training with the tutorial's own NumPy loop
(``TutorialCode`` in ``_contenders.py``) and with the matrix products both must compute. On a
machine whose speed drifts (a shared virtual machine), separate runs minutes apart do not
compare; this script alternates the three in one process, round by round, in blocks of
``--iterations`` full-batch iterations on MNIST 1 vs 2 (12,700 x 784), and reports each one's
median milliseconds per iteration:

- ``nnscratch``: ``NeuralNet([196, 1], dtype).fit(X, y, learning_rate=0.1, n_iterations=N)``
  (its set-up, a few milliseconds, counted in the block);
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
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _contenders import TutorialCode, tutorial_weights

from nnscratch.classic import NeuralNet
from nnscratch.data import load_digits

clock = time.perf_counter


def _blocks(dtype: np.dtype, X: np.ndarray, y: np.ndarray, iterations: int
            ) -> dict[str, Callable[[], None]]:
    """The three contenders, each one block of ``iterations`` iterations."""
    def nnscratch() -> None:
        NeuralNet([196, 1], dtype=dtype).fit(X, y, learning_rate=0.1, n_iterations=iterations)

    def tutorial() -> None:
        pairs = tutorial_weights([X.shape[1], 196, 1], dtype)
        weights = [np.ascontiguousarray(W.T) for W, _ in pairs]
        biases = [b.reshape(-1, 1).copy() for _, b in pairs]
        TutorialCode._train(X, y.astype(dtype), weights, biases, 0.1, iterations)

    W = np.full((X.shape[1], 196), 0.01, dtype=dtype)
    G = np.full((X.shape[0], 196), 0.01, dtype=dtype)
    forward = [lambda: X @ W, lambda: (W.T @ X.T).T]
    weight_grad = [lambda: X.T @ G, lambda: (G.T @ X).T]
    fastest = [min(pair, key=lambda f: _seconds(f, 3)) for pair in (forward, weight_grad)]

    def products() -> None:
        for _ in range(iterations):
            for product in fastest:
                product()

    return {"nnscratch": nnscratch, "tutorial": tutorial, "products": products}


def _seconds(f: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``f`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = clock()
        f()
        times.append(clock() - start)
    return statistics.median(times)


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
        for block in blocks.values():  # untimed: matmul times its layouts on first sight
            block()
        times: dict[str, list[float]] = {name: [] for name in blocks}
        for round_ in range(rounds):
            order = list(blocks) if round_ % 2 == 0 else list(reversed(blocks))
            for name in order:
                start = clock()
                blocks[name]()
                times[name].append((clock() - start) / iterations * 1000)
        ms = {name: statistics.median(values) for name, values in times.items()}
        print(f"| {dtype.name} | {ms['nnscratch']:.1f} | {ms['tutorial']:.1f} | "
              f"{ms['products']:.1f} | {ms['nnscratch'] / ms['tutorial']:.2f} | "
              f"{ms['nnscratch'] / ms['products']:.2f} | {ms['tutorial'] / ms['products']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
