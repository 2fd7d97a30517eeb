"""Where a CNN training step spends its time: each layer's forward and backward, and the matrix
products inside them.

    python benchmarks/cnn_layers.py [--batch-norm] [--steps N] [--quick]

Builds ``compare.py``'s ``cnn-epoch`` network (Conv2D(1,32,3,padding=1)-ReLU-MaxPool2D(2)-
Conv2D(32,64,3,padding=1)-ReLU-MaxPool2D(2)-Flatten-Dense(3136,128)-ReLU-Dense(128,10), float32;
with ``--batch-norm`` a BatchNorm after each convolution, as in the ``mnist-cnn`` recipe) and
times, on random batches of 128 images, each layer's ``forward(training=True)`` and the backward
pass as training runs it (``Sequential.fill_parameter_grads``: the first convolution fills its
parameter gradients only). Then the same step's matrix products alone, on arrays of the same
shapes: that is what BLAS cannot make faster, the rest is NumPy's element-wise passes and
copies. Printed per step and per 60,000-image epoch (469 steps).

Run it on an otherwise idle machine; ``--quick`` proves the code path with a few steps.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nnscratch.nn import _kernels
from nnscratch.nn.activations import ReLU
from nnscratch.nn.conv import Conv2D, MaxPool2D
from nnscratch.nn.layers import Dense, Flatten, Layer, Reshape
from nnscratch.nn.normalization import BatchNorm

BATCH, STEPS_PER_EPOCH = 128, 469
clock = time.perf_counter


def network(batch_norm: bool) -> list[Layer]:
    rng = np.random.default_rng(0)
    norm = (lambda channels: [BatchNorm(channels)]) if batch_norm else (lambda channels: [])
    return [Reshape((1, 28, 28)), Conv2D(1, 32, 3, padding=1, rng=rng), *norm(32), ReLU(),
            MaxPool2D(2), Conv2D(32, 64, 3, padding=1, rng=rng), *norm(64), ReLU(),
            MaxPool2D(2), Flatten(), Dense(3136, 128, rng=rng), ReLU(), Dense(128, 10, rng=rng)]


def first_with_parameters(layers: list[Layer]) -> int:
    """Where training's backward pass stops (``Sequential.fill_parameter_grads``)."""
    return next(i for i, layer in enumerate(layers) if layer.parameters())


def layer_times(layers: list[Layer], X: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Median seconds per step of each layer's forward and backward."""
    first = first_with_parameters(layers)
    forward = np.zeros((steps, len(layers)))
    backward = np.zeros((steps, len(layers)))
    for step in range(steps + 2):  # two warm-up steps
        h = X
        times_f, times_b = np.zeros(len(layers)), np.zeros(len(layers))
        for i, layer in enumerate(layers):
            start = clock()
            h = layer.forward(h, training=True)
            times_f[i] = clock() - start
        grad = np.full_like(h, 1.0 / h.size)
        for i in range(len(layers) - 1, first - 1, -1):
            start = clock()
            if i == first:
                layers[i].fill_parameter_grads(grad)
            else:
                grad = layers[i].backward(grad)
            times_b[i] = clock() - start
        if step >= 2:
            forward[step - 2], backward[step - 2] = times_f, times_b
    return np.median(forward, axis=0), np.median(backward, axis=0)


def product_times(layers: list[Layer], X: np.ndarray, steps: int) -> float:
    """Median seconds per step of the step's matrix products alone (same shapes, same calls
    as the kernels make)."""
    h, products = X, []
    first = layers[first_with_parameters(layers)]
    for layer in layers:
        if isinstance(layer, Conv2D):
            y, cols = _kernels.conv2d(h, layer.W.value, layer.b.value, layer.stride,
                                      layer.padding)
            W = layer.W.value.reshape(layer.out_channels, -1)
            G = np.ascontiguousarray(np.ones_like(y).transpose(1, 0, 2, 3)).reshape(
                layer.out_channels, -1)
            products += [(W, cols), (cols, G.T)]
            if layer is not first:  # the first layer computes no input gradient
                products.append((W.T, G))
        elif isinstance(layer, Dense):
            W = layer.W.value
            G = np.ones((h.shape[0], W.shape[1]), dtype=h.dtype)
            products += [(h, W), (h.T, G)] + ([(G, W.T)] if layer is not first else [])
        h = layer.forward(h, training=False)
    times = []
    for step in range(steps + 2):
        start = clock()
        for a, b in products:
            a @ b
        if step >= 2:
            times.append(clock() - start)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-norm", action="store_true",
                        help="a BatchNorm after each convolution (the mnist-cnn recipe's net)")
    parser.add_argument("--steps", type=int, default=20, help="steps timed (default 20)")
    parser.add_argument("--quick", action="store_true", help="3 steps: proves the code path")
    args = parser.parse_args(argv)
    steps = 3 if args.quick else args.steps
    layers = network(args.batch_norm)
    X = np.random.default_rng(1).random((BATCH, 784), dtype=np.float32)
    forward, backward = layer_times(layers, X, steps)
    products = product_times(layers, X, steps)
    print(f"one training step, batch {BATCH}, float32, median of {steps} steps")
    print(f"{'layer':<12} {'forward ms':>11} {'backward ms':>12}")
    for layer, f, b in zip(layers, forward, backward, strict=True):
        print(f"{type(layer).__name__:<12} {f * 1e3:>11.2f} {b * 1e3:>12.2f}")
    step = float(forward.sum() + backward.sum())
    print(f"{'all layers':<12} {step * 1e3:>24.1f} ms per step, "
          f"{step * STEPS_PER_EPOCH:.1f} s per epoch")
    print(f"{'products':<12} {products * 1e3:>24.1f} ms per step, "
          f"{products * STEPS_PER_EPOCH:.1f} s per epoch ({products / step:.0%} of the step)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
