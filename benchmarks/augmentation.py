"""What augmentation costs per epoch, and whether preparing it in the background pays.

Usage::

    python benchmarks/augmentation.py [--data-dir DIR] [--images N] [--epochs N]
        [--layers 1024 1024] [--batch-size 128]

Prints, for the 60,000 training images of MNIST (timed on ``--images`` of them and scaled up):

0. whether ``scipy.ndimage.map_coordinates`` releases the GIL (so that a thread can prepare
   batches while the main thread trains): the longest pause of a Python loop in the main
   thread while another thread runs one long call;
1. the cost of one epoch of augmentation on one thread, for each recipe's setting, split into
   drawing the maps (affine and elastic) and resampling;
2. the speed tricks of :mod:`nnscratch.data.augment` against the plain expressions they equal:
   one stacked 2-D ``map_coordinates`` call against a loop over images and against one 3-D
   call; Gaussian smoothing by matrix products against ``scipy.ndimage.gaussian_filter``;
   mirror images and whole-pixel shifts copied (``move_pixels``) against resampled;
3. seconds per training epoch of an MLP without augmentation, with augmentation inline, and
   with augmentation in a background thread, with BLAS on all cores and on one (if
   threadpoolctl is installed). Runs alternate, and the median of ``--epochs`` is reported.

Run it on a quiet machine: other work on the cores changes every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator

import numpy as np

from nnscratch.data import load_dataset
from nnscratch.data.augment import (
    Augmentation,
    _affine_coordinates,
    _resample_each,
    _smooth,
    augmented_batches,
    elastic_displacement,
    move_pixels,
    resample,
)
from nnscratch.runs.recipes import RECIPES

N_TRAIN = 60_000


def _per_epoch(seconds: float, n_images: int) -> float:
    return seconds * N_TRAIN / n_images


def _time(function: Callable[[], object], repeats: int = 3) -> float:
    """The fastest of `repeats` runs, in seconds of this process's CPU time.

    CPU time rather than wall time: on a shared machine another job's work does not count
    (a busy neighbour still slows the caches). Parts 1 and 2 run on one thread, so for them
    CPU time is the time the work takes on a core of its own.
    """
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        function()
        best = min(best, time.process_time() - start)
    return best


def _in_batches(images: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(images), batch_size):
        yield images[start:start + batch_size]


def gil_check() -> None:
    import threading

    from scipy import ndimage

    rng = np.random.default_rng(0)
    image = rng.random((3000, 30), dtype=np.float32)
    points = [rng.uniform(0, 2999, 4_000_000), rng.uniform(0, 29, 4_000_000)]
    seconds: list[float] = []

    def call() -> None:
        start = time.perf_counter()
        ndimage.map_coordinates(image, points, order=1, mode="nearest")
        seconds.append(time.perf_counter() - start)

    thread = threading.Thread(target=call)
    stamps = [time.perf_counter()]
    thread.start()
    while thread.is_alive():
        stamps.append(time.perf_counter())
    pause = float(np.max(np.diff(stamps)))
    print(f"0. a {seconds[0]:.2f} s map_coordinates call in a thread paused the main thread's "
          f"Python loop for at most {pause * 1000:.0f} ms: the GIL is "
          f"{'released' if pause < seconds[0] / 4 else 'held'}.\n")


def augmentation_cost(images: np.ndarray, batch_size: int) -> None:
    print(f"1. augmentation of one epoch ({N_TRAIN:,} images), CPU seconds on one thread, "
          f"batches of {batch_size}:")
    print(f"   {'recipe':<14} {'draw maps':>10} {'resample':>10} {'total':>10}")
    batches = list(_in_batches(images, batch_size))
    n = len(images)
    for name, recipe in RECIPES.items():
        settings = recipe.settings.get("augment")
        if not settings:
            continue
        augment = Augmentation.from_settings(settings)
        rng = np.random.default_rng(0)

        def draw(augment: Augmentation = augment, rng: np.random.Generator = rng) -> None:
            for batch in batches:
                augment.source_coordinates(len(batch), rng)

        maps = [augment.source_coordinates(len(batch), rng) for batch in batches]

        def warp(maps: list[np.ndarray] = maps) -> None:
            for batch, coordinates in zip(batches, maps, strict=True):
                resample(batch, coordinates)

        def total(augment: Augmentation = augment, rng: np.random.Generator = rng) -> None:
            for batch in batches:
                augment(batch, rng)

        print(f"   {name:<14} {_per_epoch(_time(draw), n):>9.2f}s "
              f"{_per_epoch(_time(warp), n):>9.2f}s {_per_epoch(_time(total), n):>9.2f}s")


def _resample_3d(images: np.ndarray, coordinates: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    index = np.broadcast_to(np.arange(len(images), dtype=np.float64)[:, None, None],
                            coordinates.shape[:1] + coordinates.shape[2:])
    return ndimage.map_coordinates(images, [index, coordinates[:, 0], coordinates[:, 1]],
                                   order=1, mode="grid-constant")


def tricks(images: np.ndarray, batch_size: int) -> None:
    from scipy import ndimage

    print("\n2. the speed tricks against the plain expressions (seconds per epoch, one thread):")
    augment = Augmentation(shift=2, rotation=10, scale=0.1, shear=10, elastic_alpha=34)
    rng = np.random.default_rng(0)
    batches = list(_in_batches(images, batch_size))
    maps = [augment.source_coordinates(len(b), rng) for b in batches]
    n = len(images)
    for label, function in (("stacked 2-D map_coordinates (used)", resample),
                            ("a loop of 2-D calls, one per image", _resample_each),
                            ("one 3-D call on the batch", _resample_3d)):
        seconds = _time(lambda f=function: [f(b, c) for b, c in zip(batches, maps, strict=True)])
        print(f"   resample: {label:<38} {_per_epoch(seconds, n):6.2f} s")
    noise = [np.random.default_rng(1).random((len(b), 2, 28, 28), dtype=np.float32)
             for b in batches]
    for label, function in (("two matrix products (used)", lambda u: _smooth(u, 4.0)),
                            ("scipy.ndimage.gaussian_filter",
                             lambda u: ndimage.gaussian_filter(u, (0, 0, 4.0, 4.0)))):
        seconds = _time(lambda f=function: [f(u) for u in noise])
        print(f"   smooth:   {label:<38} {_per_epoch(seconds, n):6.2f} s")
    seconds = _time(lambda: [elastic_displacement(len(b), (28, 28), alpha=34, sigma=4, rng=rng)
                             for b in batches])
    print(f"   elastic field, noise included (used)             {_per_epoch(seconds, n):6.2f} s")
    # Mirror images and whole-pixel shifts (fashion10's kind): copied, or read bilinearly.
    moves = []
    for b in batches:
        shift = rng.integers(-2, 3, (len(b), 2)).astype(np.float64)
        flip = rng.random(len(b)) < 0.5
        zeros = np.zeros(len(b))
        moves.append((shift, flip, _affine_coordinates(28, 28, zeros, zeros + 1, zeros, shift,
                                                       flip)))
    for label, function in (
            ("copying pixels, move_pixels (used)", lambda b, m: move_pixels(b, m[0], m[1])),
            ("resample at the same maps", lambda b, m: resample(b, m[2]))):
        seconds = _time(lambda f=function: [f(b, m) for b, m in zip(batches, moves, strict=True)])
        print(f"   mirror and whole-pixel shift: {label:<22} {_per_epoch(seconds, n):6.2f} s")


def _blas_threads(limit: int | None) -> contextlib.AbstractContextManager[object]:
    if limit is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=limit, user_api="blas")


def training(X: np.ndarray, y: np.ndarray, layers: list[int], batch_size: int,
             epochs: int) -> None:
    from nnscratch.nn.losses import SoftmaxCrossEntropy
    from nnscratch.nn.model import build_mlp
    from nnscratch.nn.optimizers import Adam
    from nnscratch.nn.training import minibatches

    try:
        import threadpoolctl  # noqa: F401
        thread_limits: list[int | None] = [None, 1]
    except ImportError:
        thread_limits = [None]
        print("\n   (threadpoolctl is not installed: BLAS runs on all cores only)")
    augment = Augmentation.from_settings(RECIPES["mnist10-best"].settings["augment"])
    model = build_mlp(X.shape[1], layers, 10, dropout=0.2, rng=0, dtype=np.float32)
    loss, optimizer = SoftmaxCrossEntropy(), Adam(model.parameters(), 1e-3)

    def epoch(mode: str) -> float:
        rng, augment_rng = np.random.default_rng(0), np.random.default_rng(1)
        batches = minibatches(X, y, batch_size=batch_size, rng=rng)
        if mode != "none":  # BLAS threads as this loop sets them (not "auto")
            batches = augmented_batches(batches, augment, augment_rng,
                                        background=mode == "background", blas_threads=None)
        start = time.perf_counter()
        with model.reusing_buffers(), contextlib.closing(batches):
            for X_batch, y_batch in batches:
                logits = model.forward(X_batch, training=True)
                loss.forward(logits, y_batch)
                model.backward(loss.backward(), input_grad=False)
                optimizer.step()
        return _per_epoch(time.perf_counter() - start, len(X))

    modes = ["none", "inline", "background"]
    print(f"\n3. one training epoch of 784-{'-'.join(map(str, layers))}-10, batch {batch_size}, "
          f"float32, with the mnist10-best augmentation (median of {epochs}, seconds):")
    print(f"   ({os.cpu_count()} cores; fit runs the background mode with BLAS on all cores "
          f"but one, at least one)")
    print(f"   {'BLAS threads':<14}" + "".join(f"{m:>12}" for m in modes))
    for limit in thread_limits:
        times: dict[str, list[float]] = {mode: [] for mode in modes}
        with _blas_threads(limit):
            epoch("none")  # warm up
            for _ in range(epochs):
                for mode in modes:
                    times[mode].append(epoch(mode))
        label = "all" if limit is None else str(limit)
        print(f"   {label:<14}" + "".join(f"{statistics.median(times[m]):>12.2f}"
                                          for m in modes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder with the MNIST files (else NNSCRATCH_DATA)")
    parser.add_argument("--images", type=int, default=6000,
                        help="images timed in parts 1 and 2 (default 6000)")
    parser.add_argument("--train-images", type=int, default=12000,
                        help="training images per epoch in part 3 (default 12000)")
    parser.add_argument("--epochs", type=int, default=3, help="repeats in part 3 (default 3)")
    parser.add_argument("--layers", type=int, nargs="+", default=None,
                        help="hidden layers in part 3 (default: mnist10-best's)")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    data = load_dataset("mnist", data_dir=args.data_dir, dtype=np.float32, progress=False)
    images = data.X_train[:args.images].reshape(-1, 28, 28)
    gil_check()
    augmentation_cost(images, args.batch_size)
    tricks(images, args.batch_size)
    layers = args.layers or RECIPES["mnist10-best"].settings["layers"]
    training(data.X_train[:args.train_images], data.y_train[:args.train_images], layers,
             args.batch_size, args.epochs)


if __name__ == "__main__":
    main()
