"""Where the time goes: inference on 10,000 rows and a batch-512 epoch, step by step.

    python benchmarks/profile_paths.py [--calls N] [--epochs N] [--quick] [--data-dir DIR]

Times, in one process, the two paths of ``compare.py`` whose targets sit closest to PyTorch
(issue 23): ``softmax(model.forward(x, training=False))`` on the 10,000 test rows, and one
epoch of ``fit`` at batch 512, both on the benchmark's 784-256-128-10 ReLU network in float32.
Each function of the path is wrapped in a timer that records its *own* time (its callees'
subtracted), so the table splits a dense layer into its matrix products (``matmul``), the bias
add around them (``affine``) and the rest, and ``fit`` into its steps and its own overhead.
The wrappers cost about a microsecond a call: a few milliseconds on an epoch.

Run it on an otherwise idle machine; ``--quick`` proves the code paths on small data.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from nnscratch.data import load_digits
from nnscratch.nn import _kernels, activations, layers, losses, model, optimizers, training

clock = time.perf_counter


class Profile:
    """Own time per wrapped function: inclusive time minus the wrapped callees' time."""

    def __init__(self) -> None:
        self.own: dict[str, list[float]] = defaultdict(list)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[list[float]] = []

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._stack.append([0.0])
            start = clock()
            try:
                return function(*args, **kwargs)
            finally:
                inclusive = clock() - start
                (children,) = self._stack.pop()
                self.own[name].append(inclusive - children)
                self.calls[name] += 1
                if self._stack:
                    self._stack[-1][0] += inclusive
        return timed

    def total(self, name: str) -> float:
        return sum(self.own[name])


#: (owner, attribute, label): what is timed. Module functions are patched where they are
#: looked up (``layers.affine`` is the name Dense calls; ``_kernels.matmul`` the one affine
#: calls), methods on their class.
TIMED = [
    (_kernels, "matmul", "matrix products (_kernels.matmul)"),
    (layers, "affine", "bias add (affine, outside its product)"),
    (layers, "transpose_times", "weight-gradient wrapper (transpose_times)"),
    (layers, "times_transpose", "input-gradient wrapper (times_transpose)"),
    (layers.Dense, "forward", "Dense.forward (outside affine)"),
    (layers.Dense, "backward", "Dense.backward (outside its kernels)"),
    (layers.Dense, "fill_parameter_grads", "Dense bias gradient G.sum(axis=0)"),
    (activations.ReLU, "forward", "ReLU.forward"),
    (activations.ReLU, "backward", "ReLU.backward"),
    (activations, "softmax", "softmax"),
    (losses.SoftmaxCrossEntropy, "forward", "SoftmaxCrossEntropy.forward"),
    (losses.SoftmaxCrossEntropy, "backward", "SoftmaxCrossEntropy.backward"),
    (optimizers, "adam_update", "Adam update (adam_update)"),
    (optimizers.Adam, "step", "Adam.step (outside adam_update)"),
    (model.Sequential, "forward", "Sequential.forward (own)"),
    (model.Sequential, "fill_parameter_grads", "Sequential.backward (own)"),
    (training, "fit", "fit's own work (batches, checks, counting)"),
]


@contextlib.contextmanager
def profiled(profile: Profile) -> Iterator[None]:
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in TIMED]
    try:
        for owner, name, label in TIMED:
            setattr(owner, name, profile.wrap(label, getattr(owner, name)))
        yield
    finally:
        for owner, name, function in saved:
            setattr(owner, name, function)


def print_table(title: str, profile: Profile, wall: float, runs: int) -> None:
    print(f"\n{title}: {wall / runs * 1e3:.1f} ms per run (median of {runs} runs, wrapped)")
    print(f"{'step':48} {'ms per run':>10} {'share':>6} {'calls':>7}")
    rows = sorted(((profile.total(label) / runs, label) for _, _, label in TIMED
                   if profile.calls[label]), reverse=True)
    for seconds, label in rows:
        print(f"{label:48} {seconds * 1e3:10.2f} {seconds / (wall / runs):6.1%} "
              f"{profile.calls[label] // runs:7d}")


def inference(X: np.ndarray, calls: int) -> None:
    net = model.build_mlp(784, [256, 128], 10, activation="relu", rng=0, dtype=np.float32)
    for _ in range(2):  # warm-up: layouts chosen, caches and threads warm
        activations.softmax(net.forward(X, training=False))
    profile = Profile()
    walls = []
    with profiled(profile):
        for _ in range(calls):
            start = clock()
            activations.softmax(net.forward(X, training=False))
            walls.append(clock() - start)
    print_table(f"inference, {X.shape[0]:,} rows", profile, statistics.median(walls) * calls,
                calls)


def epoch(X: np.ndarray, y: np.ndarray, epochs: int, batch_size: int) -> None:
    def run(net: model.Sequential) -> None:
        training.fit(net, X, y, loss=losses.SoftmaxCrossEntropy(),
                     optimizer=optimizers.Adam(net.parameters(), 1e-3), epochs=1,
                     batch_size=batch_size, seed=0, verbose=0)

    def network() -> model.Sequential:
        return model.build_mlp(784, [256, 128], 10, activation="relu", rng=0,
                               dtype=np.float32)

    run(network())  # warm-up
    profile = Profile()
    walls = []
    with profiled(profile):
        for _ in range(epochs):
            net = network()
            start = clock()
            run(net)
            walls.append(clock() - start)
    print_table(f"one epoch, batch {batch_size}, {X.shape[0]:,} rows", profile,
                statistics.median(walls) * epochs, epochs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/profile_paths.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10, help="inference calls (default 10)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed (default 3)")
    parser.add_argument("--quick", action="store_true", help="small data: proves the paths")
    parser.add_argument("--data-dir", help="the MNIST files (else NNSCRATCH_DATA or the cache)")
    args = parser.parse_args(argv)
    data = load_digits("all", data_dir=args.data_dir, dtype=np.float32, progress=False)
    rows = 1000 if args.quick else None
    inference(data.X_test[:rows], 2 if args.quick else args.calls)
    epoch(data.X_train[:rows], data.y_train[:rows], 1 if args.quick else args.epochs, 512)
    layouts = _kernels.matmul_layouts()
    print(f"\nlayouts chosen: {sum(c['layout'] == 'transposed' for c in layouts)} of "
          f"{len(layouts)} products transposed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
