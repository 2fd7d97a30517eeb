"""An up-front memory estimate for training, so a model that cannot fit is refused at once.

``nnscratch train --layers 100000 1`` would otherwise load the data, then allocate for many
seconds before failing (or before the system starts swapping). :func:`training_bytes` adds up,
in the model's dtype:

- the parameters and their gradients: ``2 P`` numbers, ``P = sum((n_in + 1) n_out)``;
- the optimiser's state: Adam and AdamW keep two moments (``2 P``), SGD with momentum one
  velocity (``P``), plain gradient descent nothing;
- the activations of one batch: each layer keeps its input and output for the backward pass
  and a gradient of the same size flows back, about ``3 * rows * sum(widths)`` numbers, where
  ``rows`` is the batch size (the whole training set for full-batch gradient descent);
  scoring the whole training set after training needs ``2 * n_train * sum(widths)``;
- the data itself: ``(n_train + n_test) * 784``.

The training-set size is not known before the data loads, so it is bounded from above: 7,000
examples per class (MNIST's largest digit has 6,742, Fashion-MNIST 6,000 per class). The
estimate is compared with the memory available now (``MemAvailable`` in ``/proc/meminfo``, else
``os.sysconf``); where neither exists the check is skipped. ``NNSCRATCH_MEMORY_AVAILABLE``
(bytes, or with a K, M, G or T suffix) stands in for the measured figure, for tests and for
users who know better.

What is left out: the memory of NumPy's temporaries inside one layer, and of the progress bars
and figures (small next to the activations).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MemoryEstimate", "available_memory", "format_bytes", "image_model_training_bytes",
           "training_bytes"]

#: The environment variable that overrides the measured available memory.
MEMORY_ENVIRONMENT = "NNSCRATCH_MEMORY_AVAILABLE"
#: An upper bound on the training examples of one class.
EXAMPLES_PER_CLASS = 7000
#: An upper bound on the test examples of one class.
TEST_EXAMPLES_PER_CLASS = 1200
N_FEATURES = 784
_SUFFIXES = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes needed to train a model, by what needs them."""

    parameters: int
    optimizer: int
    activations: int
    data: int
    batch_rows: int

    @property
    def total(self) -> int:
        return self.parameters + self.optimizer + self.activations + self.data

    def describe(self) -> str:
        return (f"parameters and gradients {format_bytes(self.parameters)}, optimiser state "
                f"{format_bytes(self.optimizer)}, activations of one batch of up to "
                f"{self.batch_rows:,} examples {format_bytes(self.activations)}, data "
                f"{format_bytes(self.data)}")


def training_bytes(
    widths: Sequence[int],
    *,
    n_classes: int,
    batch_size: int | None,
    optimizer: str | None,
    momentum: float = 0.0,
    itemsize: int = 8,
) -> MemoryEstimate:
    """Estimate the memory to train and score a network of layer ``widths`` after the input.

    Parameters
    ----------
    widths : sequence of int
        Every layer's size after the 784 inputs, the output included.
    n_classes : int
        Classes trained on; bounds the training-set size.
    batch_size : int or None
        Rows per step; ``None`` means the whole training set (full-batch gradient descent).
    optimizer : {"sgd", "adam", "adamw"} or None
        ``None`` is plain gradient descent (the tutorial).
    momentum : float, default=0.0
        SGD's momentum (a velocity per parameter when non-zero).
    itemsize : int, default=8
        Bytes per number (8 for float64, 4 for float32).

    Returns
    -------
    MemoryEstimate
    """
    n_train = EXAMPLES_PER_CLASS * n_classes
    n_test = TEST_EXAMPLES_PER_CLASS * n_classes
    sizes = [N_FEATURES, *widths]
    n_parameters = sum((a + 1) * b for a, b in itertools.pairwise(sizes))
    states = {"adam": 2, "adamw": 2}.get(optimizer or "", 1 if optimizer == "sgd" and momentum
                                         else 0)
    rows = n_train if batch_size is None else min(batch_size, n_train)
    units = sum(widths)
    activations = max(3 * rows * units, 2 * n_train * units)
    return MemoryEstimate(
        parameters=2 * n_parameters * itemsize,
        optimizer=states * n_parameters * itemsize,
        activations=activations * itemsize,
        data=(n_train + n_test) * N_FEATURES * itemsize,
        batch_rows=rows,
    )


def image_model_training_bytes(
    n_parameters: int,
    values_per_sample: int,
    *,
    n_classes: int,
    batch_size: int,
    optimizer: str,
    momentum: float = 0.0,
    itemsize: int = 4,
    inference_rows: int = 256,
) -> MemoryEstimate:
    """Estimate the memory to train and score a network with convolutions.

    Like :func:`training_bytes`, but the activations are counted from the model's own shapes:
    ``values_per_sample`` is the sum, over its layers, of the values one sample has after each
    (and of the unfolded im2col columns of each convolution, which are kept for the backward
    pass); a batch keeps about three times that (input, output and gradient of each layer).
    Scoring runs ``inference_rows`` images at a time, so it needs little beside.
    """
    n_train = EXAMPLES_PER_CLASS * n_classes
    n_test = TEST_EXAMPLES_PER_CLASS * n_classes
    states = {"adam": 2, "adamw": 2}.get(optimizer, 1 if optimizer == "sgd" and momentum else 0)
    rows = min(batch_size, n_train)
    activations = 3 * max(rows, inference_rows) * values_per_sample
    return MemoryEstimate(
        parameters=2 * n_parameters * itemsize,
        optimizer=states * n_parameters * itemsize,
        activations=activations * itemsize,
        data=(n_train + n_test) * N_FEATURES * itemsize,
        batch_rows=rows,
    )


def available_memory() -> int | None:
    """Bytes of memory available now, or ``None`` where the system does not say.

    Raises
    ------
    ValueError
        If ``NNSCRATCH_MEMORY_AVAILABLE`` is set but is not a size such as ``512M``.
    """
    given = os.environ.get(MEMORY_ENVIRONMENT)
    if given:
        return parse_size(given)
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):  # pragma: no cover - Windows, macOS
        return None


def parse_size(text: str) -> int:
    """``"512M"`` → 536870912; a plain number is bytes."""
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    number, suffix = (text[:-1], text[-1]) if text[-1:] in _SUFFIXES else (text, "")
    try:
        value = float(number) * _SUFFIXES[suffix]
    except ValueError:
        raise ValueError(
            f"{MEMORY_ENVIRONMENT}={text!r} is not a size; give bytes, e.g. 512M or 16G."
        ) from None
    return int(value)


def format_bytes(n: int) -> str:
    """``1536`` → ``"1.5 KiB"``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover
