"""Does each speed trick in ``nnscratch.nn._kernels`` still pay? Each against its plain expression.

    python benchmarks/tricks.py [--rounds N] [--quick] [--data-dir DIR]

A trick stays only while it pays (``docs/performance.md``). This script measures each one twice,
in one process, alternating the two variants round by round and reporting medians:

- alone: the kernel against the plain expression of its docstring, on the shapes where it runs
  (the tutorial's 12,700 x 196 activations; Adam over the 784-256-128-10 network's weights);
- in place: whole training work with the kernels as shipped against the same work with the
  plain expressions put in their place: three full-batch iterations of the tutorial's recipe in
  float32 and float64, a batch-128 Adam epoch of 784-256-128-10 and of 784-512-256-10 (the
  ``mnist10`` network) on all ten digits, a batch-512 epoch of 784-256-128-10, and its
  inference on the 10,000 test rows.

The layouts of ``matmul`` are one of the tricks: "plain" computes every product as the plain
``a @ b``; "alone" also times ``matmul`` against the direct layout on the tutorial's products.

Run it on an otherwise idle machine (it uses the BLAS's default threads). ``--quick`` runs every
path on small data for a round or two; its figures say nothing about speed.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from _timing import alternate

from nnscratch import SoftmaxCrossEntropy, build_mlp, fit
from nnscratch import optimizers as optim
from nnscratch.classic import NeuralNet
from nnscratch.data import load_digits
from nnscratch.nn import _kernels, activations, layers


# -- the plain expressions, exactly as each kernel's docstring gives them ---------------------
def plain_sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def plain_sigmoid_backward(grad_output: np.ndarray, y: np.ndarray) -> np.ndarray:
    return grad_output * y * (1 - y)


def plain_times_transpose(grad_output: np.ndarray, W: np.ndarray,
                          like: np.ndarray | None = None) -> np.ndarray:
    return grad_output @ W.T


def plain_affine(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    return x @ W + b


def plain_transpose_times(x: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
    return x.T @ grad_output


def plain_adam_update(value: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray,
                      scratch: np.ndarray, *, learning_rate: float, beta1: float, beta2: float,
                      eps: float, t: int) -> None:
    m[...] = beta1 * m + (1 - beta1) * grad
    v[...] = beta2 * v + (1 - beta2) * grad**2
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    value -= learning_rate * m_hat / (np.sqrt(v_hat) + eps)


#: Where each kernel is called from: (module, name) -> the plain stand-in.
PLAIN = {
    (activations, "sigmoid"): plain_sigmoid,
    (activations, "sigmoid_backward"): plain_sigmoid_backward,
    (layers, "times_transpose"): plain_times_transpose,
    (layers, "affine"): plain_affine,
    (layers, "transpose_times"): plain_transpose_times,
    (optim, "adam_update"): plain_adam_update,
}


@contextlib.contextmanager
def plain_expressions() -> Iterator[None]:
    """Put the plain expressions where the kernels are called, for the length of the block."""
    saved = {key: getattr(*key) for key in PLAIN}
    try:
        for (module, name), function in PLAIN.items():
            setattr(module, name, function)
        yield
    finally:
        for (module, name), function in saved.items():
            setattr(module, name, function)


def report(title: str, medians: dict[str, float], unit: str) -> None:
    plain, kernel = medians["plain"], medians["kernel"]
    print(f"{title:58s} plain {plain * 1e3:9.2f} ms  kernel {kernel * 1e3:9.2f} ms  "
          f"plain / kernel {plain / kernel:5.2f}  ({unit})")


def repeat(function: Callable[[], object], times: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(times):
            function()
    return run


def alone(rounds: int, rows: int) -> None:
    """Each kernel against its plain expression, on the arrays it runs on."""
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        name = np.dtype(dtype).name
        z = rng.standard_normal((rows, 196)).astype(dtype)
        y = _kernels.sigmoid(z)
        grad = rng.standard_normal((rows, 196)).astype(dtype)
        g1 = rng.standard_normal((rows, 1)).astype(dtype)
        w2 = rng.standard_normal((196, 1)).astype(dtype)
        for title, plain, kernel, arrays in (
            ("sigmoid", plain_sigmoid, _kernels.sigmoid, (z,)),
            ("sigmoid_backward", plain_sigmoid_backward, _kernels.sigmoid_backward, (grad, y)),
            ("times_transpose, one output", plain_times_transpose, _kernels.times_transpose,
             (g1, w2)),
        ):
            medians = alternate({"plain": repeat(functools.partial(plain, *arrays), 10),
                                 "kernel": repeat(functools.partial(kernel, *arrays), 10)},
                                rounds)
            report(f"alone: {title}, {name} ({rows} x 196)",
                   {k: v / 10 for k, v in medians.items()}, "per call")
    shapes = [(784, 256), (256,), (256, 128), (128,), (128, 10), (10,)]
    state = [[rng.standard_normal(s).astype(np.float32) for _ in range(2)]
             + [np.zeros(s, np.float32) for _ in range(3)] for s in shapes]
    settings = {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "t": 5}

    def step(update: Callable[..., None]) -> Callable[[], None]:
        return repeat(lambda: [update(*arrays, **settings) for arrays in state], 10)

    medians = alternate({"plain": step(plain_adam_update), "kernel": step(_kernels.adam_update)},
                        rounds)
    report("alone: adam_update over 784-256-128-10 (float32)",
           {k: v / 10 for k, v in medians.items()}, "per step")
    # The in-place bias add, with the product's layout held to "direct" on both sides.
    for rows_affine, fan_in, fan_out in ((10_000, 784, 256), (512, 784, 256), (rows, 784, 196)):
        x = rng.standard_normal((rows_affine, fan_in)).astype(np.float32)
        W = rng.standard_normal((fan_in, fan_out)).astype(np.float32)
        b = rng.standard_normal(fan_out).astype(np.float32)
        previous = _kernels.set_matmul_layout("direct")
        medians = alternate({"plain": functools.partial(plain_affine, x, W, b),
                             "kernel": functools.partial(_kernels.affine, x, W, b)}, rounds)
        _kernels.set_matmul_layout(previous)
        report(f"alone: affine, direct layout, float32 ({rows_affine} x {fan_in} x {fan_out})",
               medians, "per call")
    # The layouts: each product of the tutorial's float64 iteration, direct against the layout
    # timing chose (the same, where they tie).
    for dtype in (np.float64, np.float32):
        x = rng.random((rows, 784)).astype(dtype)
        W = rng.standard_normal((784, 196)).astype(dtype)
        g = rng.standard_normal((rows, 196)).astype(dtype)
        for title, a, b_, order in (("x @ W", x, W, None), ("x.T @ G", x.T, g, "C")):
            _kernels.matmul(a, b_, order=order)  # times the layouts once
            chosen = _kernels.matmul_layouts()[-1]["layout"]

            def direct(a=a, b_=b_, order=order) -> None:
                previous = _kernels.set_matmul_layout("direct")
                _kernels.matmul(a, b_, order=order)
                _kernels.set_matmul_layout(previous)

            medians = alternate({"plain": direct,
                                 "kernel": functools.partial(_kernels.matmul, a, b_,
                                                             order=order)}, rounds)
            report(f"alone: matmul {title}, {np.dtype(dtype).name} ({rows} x 784 x 196), "
                   f"chose {chosen}", medians, "per call")


def in_place(rounds: int, data_dir: str | None, quick: bool) -> None:
    """Whole training work, with the kernels and with the plain expressions in their place."""
    for dtype in (np.float32, np.float64):
        data = load_digits((1, 2), data_dir=data_dir, dtype=dtype, progress=False)
        X, y = data.X_train[:1000] if quick else data.X_train, data.y_train
        y = y[:X.shape[0]]
        tutorial = functools.partial(_tutorial, X, y, dtype)
        medians = alternate(variants(tutorial), rounds)
        report(f"in place: tutorial, {np.dtype(dtype).name}, {TUTORIAL_ITERATIONS} iterations",
               medians, "per run")
    data = load_digits("all", data_dir=data_dir, dtype=np.float32, progress=False)
    X, y = (data.X_train[:2048], data.y_train[:2048]) if quick else (data.X_train,
                                                                     data.y_train)
    for hidden, dropout, batch_size in (([256, 128], 0.0, 128), ([512, 256], 0.2, 128),
                                        ([256, 128], 0.0, 512)):
        model = build_mlp(784, hidden, 10, dropout=dropout, rng=0)
        optimizer = optim.Adam(model.parameters(), learning_rate=1e-3)

        epoch = functools.partial(_epoch, model, optimizer, X, y, batch_size)
        medians = alternate(variants(epoch), rounds)
        sizes = "-".join(map(str, [784, *hidden, 10]))
        report(f"in place: batch-{batch_size} Adam epoch, {sizes}", medians, "per epoch")
    model = build_mlp(784, [256, 128], 10, rng=0)
    X_test = data.X_test[:1000] if quick else data.X_test

    def predict() -> None:
        activations.softmax(model.forward(X_test, training=False))

    medians = alternate(variants(predict), rounds)
    report(f"in place: inference, {X_test.shape[0]:,} rows, 784-256-128-10", medians,
           "per call")


TUTORIAL_ITERATIONS = 3


def _tutorial(X: np.ndarray, y: np.ndarray, dtype: type) -> None:
    NeuralNet([196, 1], dtype=dtype).fit(X, y, n_iterations=TUTORIAL_ITERATIONS)


def _epoch(model: Any, optimizer: Any, X: np.ndarray, y: np.ndarray, batch_size: int) -> None:
    fit(model, X, y, loss=SoftmaxCrossEntropy(), optimizer=optimizer, epochs=1,
        batch_size=batch_size, verbose=0)


def variants(work: Callable[[], None]) -> dict[str, Callable[[], None]]:
    def plain() -> None:
        with plain_expressions():
            work()
    return {"plain": plain, "kernel": work}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/tricks.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=None,
                        help="alternations per comparison (default: 15, quick: 2)")
    parser.add_argument("--quick", action="store_true",
                        help="small data, 2 rounds: proves the code paths, times nothing")
    parser.add_argument("--data-dir", help="the MNIST files (else NNSCRATCH_DATA or the cache)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 15)
    alone(rounds, 1000 if args.quick else 12_700)
    in_place(rounds, args.data_dir, args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
