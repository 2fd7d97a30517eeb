"""The training loop: mini-batches, ``fit``, ``History`` and early stopping.

:func:`fit` is the one loop every model in the package trains with — the tutorial's full-batch
gradient descent is ``fit(..., batch_size=None)``. It is split the way scikit-learn splits
``MLPClassifier._fit``, each part small enough to read at once:

- ``_prepare_data`` checks the inputs once, casts them to the model's dtype and holds out the
  validation data; ``_training_batches`` deals each epoch's mini-batches, augmented in a
  background thread when ``fit`` is given an augmentation (validation data never is);
- :func:`run_epoch` runs one epoch of steps, each the same four lines (forward, loss, backward,
  optimiser step), and returns the epoch's loss and count of correct predictions;
- ``_end_epoch`` does the bookkeeping after each epoch: validation, history, progress, early
  stopping and callbacks.

Training stops with :class:`TrainingDivergedError` as soon as the loss (checked at every step,
before the update) or a weight (checked after every epoch) is NaN or infinite, and the weights
from the start of that epoch (for full-batch training: from before the failing step) are put
back first. A finite loss that ends over ten times where it started warns
(:class:`LossRoseWarning`), and so does training that cannot change the weights
(:class:`UntrainedWarning`: no epochs, or a zero learning rate).

What is left out: distributed training, mixed precision, gradient accumulation.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from nnscratch._validation import (
    check_dtype,
    check_features,
    check_int,
    check_real,
    check_sample_weight,
)
from nnscratch.nn.losses import Loss
from nnscratch.nn.model import IMAGE_MODEL_ROWS, Sequential, has_image_layers
from nnscratch.nn.optimizers import Optimizer, Schedule

#: A callback gets the epoch number and its logs; returning True stops training.
Callback = Callable[[int, dict[str, float]], "bool | None"]


@runtime_checkable
class BatchAugmentation(Protocol):
    """What :func:`fit` needs of an augmentation of the training batches.

    :class:`nnscratch.data.augment.Augmentation` (shifts, rotations, elastic distortion) is the
    one the package provides. The network's code only sees this interface, so the training loop
    needs nothing of the data tools: it hands each epoch's batches over and trains on what
    comes back.
    """

    def check_features(self, n_features: int) -> None:
        """Raise ``ValueError`` unless rows of ``n_features`` values can be augmented."""

    def augment_batches(
        self, batches: Iterable[tuple[Any, ...]], rng: np.random.Generator
    ) -> Iterator[tuple[Any, ...]]:
        """The same batches with their first array (the images) augmented; has ``close()``."""


class TrainingDivergedError(FloatingPointError):
    """The loss or a weight became NaN or infinite during training.

    :func:`fit` restores the weights from before the failing step (full-batch) or epoch
    (mini-batch) before raising it, so the model is never left with NaN weights.

    Attributes
    ----------
    epoch : int
        The epoch (counted from 0; for full-batch training, the iteration) where it happened.
    what : str
        What happened and where, e.g. ``"The loss became nan at iteration 12"``.
    learning_rate : float or None
        The learning rate in use, for the advice.
    restored : str
        Which weights the model was given back (empty until :func:`fit` restores them).
    """

    def __init__(self, message: str, *, epoch: int, what: str = "",
                 learning_rate: float | None = None) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.what = what or message
        self.learning_rate = learning_rate
        self.restored = ""

    def describe(self, learning_rate_name: str = "learning_rate") -> str:
        """The message, with the advice naming the learning rate as the caller's interface
        does (``learning_rate`` in Python, ``--learning-rate`` on the command line)."""
        restored = f" {self.restored}" if self.restored else ""
        rate = f" (now {self.learning_rate:g})" if self.learning_rate is not None else ""
        return (f"{self.what}.{restored} Try a lower {learning_rate_name}{rate}, or inputs "
                "scaled to [0, 1].")

    def __str__(self) -> str:
        return self.describe() if self.learning_rate is not None else super().__str__()


class LossRoseWarning(UserWarning):
    """Training ended with a finite loss far above where it started: it diverged.

    Attributes
    ----------
    first, last : float
        The first and the last epoch's (iteration's) loss.
    learning_rate : float
    """

    def __init__(self, first: float, last: float, learning_rate: float) -> None:
        super().__init__(first, last, learning_rate)
        self.first, self.last, self.learning_rate = first, last, learning_rate

    def describe(self, learning_rate_name: str = "learning_rate") -> str:
        return (f"the training loss rose from {self.first:.4g} to {self.last:.4g} "
                f"({self.last / self.first:.3g} times the start): training diverged and the "
                f"model is worse than untrained. Try a lower {learning_rate_name} (now "
                f"{self.learning_rate:g}).")

    def __str__(self) -> str:
        return self.describe()


class UntrainedWarning(UserWarning):
    """Training ran no epochs or had a zero learning rate: the weights are the initial ones."""


#: A final loss this many times the first one warns (:class:`LossRoseWarning`).
LOSS_RISE_FACTOR = 10.0


@dataclass
class History:
    """What happened in each epoch of :func:`fit`.

    Attributes
    ----------
    loss, accuracy : list of float
        Mean training loss and accuracy over each epoch's batches (accuracy is empty for a
        regression loss). With full batches, ``loss[e]`` is the cost before epoch ``e``'s update.
    val_loss, val_accuracy : list of float
        The same on the validation data after each epoch (empty without validation data).
    seconds : list of float
        Wall time of each epoch, validation included.
    learning_rate : list of float
        The learning rate of each epoch.
    best_epoch : int or None
        The epoch whose weights early stopping kept (None without early stopping).
    stopped_early : bool
        Whether early stopping or a callback ended training before ``epochs``.
    """

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        """The number of epochs run."""
        return len(self.loss)

    def record(self, logs: dict[str, float], seconds: float, learning_rate: float) -> None:
        """Append one epoch's logs (the keys of :func:`fit`'s callbacks), time and rate."""
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if key in logs:
                getattr(self, key).append(logs[key])
        self.seconds.append(seconds)
        self.learning_rate.append(learning_rate)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable mapping of every field."""
        return {
            "loss": self.loss,
            "accuracy": self.accuracy,
            "val_loss": self.val_loss,
            "val_accuracy": self.val_accuracy,
            "seconds": self.seconds,
            "learning_rate": self.learning_rate,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
        }


class EarlyStopping:
    """Stop when a monitored quantity has not improved for ``patience`` epochs.

    Parameters
    ----------
    monitor : {"val_loss", "val_accuracy", "loss", "accuracy"}, default="val_loss"
    patience : int, default=5
        Epochs without improvement to wait before stopping.
    min_delta : float, default=0.0
        The smallest change that counts as an improvement.
    restore_best : bool, default=True
        Put back the weights of the best epoch when training ends.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        *,
        patience: int = 5,
        min_delta: float = 0.0,
        restore_best: bool = True,
    ) -> None:
        if monitor not in ("val_loss", "val_accuracy", "loss", "accuracy"):
            raise ValueError(
                "monitor must be one of 'val_loss', 'val_accuracy', 'loss', 'accuracy', "
                f"got {monitor!r}."
            )
        self.monitor = monitor
        self.patience = check_int(patience, "patience", low=0)
        self.min_delta = check_real(min_delta, "min_delta", low=0.0)
        self.restore_best = bool(restore_best)
        self._sign = 1.0 if monitor.endswith("loss") else -1.0
        self.reset()

    def reset(self) -> None:
        """Forget previous runs."""
        self.best_value = math.inf
        self.best_epoch: int | None = None
        self.best_weights: list[np.ndarray] | None = None
        self.wait = 0

    def update(self, epoch: int, value: float, model: Sequential) -> bool:
        """Record an epoch's value; return True when training should stop."""
        score = self._sign * value
        if score < self.best_value - self.min_delta:
            self.best_value, self.best_epoch, self.wait = score, epoch, 0
            if self.restore_best:
                self.best_weights = [array.copy() for array in _state_arrays(model)]
            return False
        self.wait += 1
        return self.wait > self.patience

    def restore(self, model: Sequential) -> None:
        """Copy the best weights back into the model (in place)."""
        if self.restore_best and self.best_weights is not None:
            for array, best in zip(_state_arrays(model), self.best_weights, strict=False):
                array[...] = best


def minibatches(
    *arrays: np.ndarray | None, batch_size: int | None, rng: np.random.Generator | None = None
) -> Iterator[tuple[np.ndarray | None, ...]]:
    """Yield aligned mini-batches of every array, covering one epoch.

    Parameters
    ----------
    *arrays : ndarray or None
        Arrays with the same first dimension, e.g. ``X`` of shape (n_samples, n_features) and
        ``y`` of shape (n_samples,). ``None`` entries are passed through as ``None``.
    batch_size : int or None
        ``None`` (or a size >= n_samples) yields everything as one batch.
    rng : Generator or None, default=None
        Shuffles the rows when given.

    Yields
    ------
    tuple of ndarray or None
        One batch of each array, in the order given; the last batch may be smaller. Without
        shuffling each batch is a view (a slice); with shuffling, a small contiguous copy.

    Notes
    -----
    Shuffled batches are gathered one at a time (``X[order[i:i + batch_size]]``) rather than by
    copying the whole shuffled set once per epoch: the same bytes are moved, but the batch is
    still in cache when the first matrix product reads it, and no array the size of the data
    set is allocated each epoch (for MNIST in float32, 188 MB whose first touch alone cost
    0.27 s on our test machine).
    """
    n_samples = next(a for a in arrays if a is not None).shape[0]
    if batch_size is None or batch_size >= n_samples:
        if rng is not None:
            order = rng.permutation(n_samples)
            arrays = tuple(None if a is None else a[order] for a in arrays)
        yield arrays
        return
    order = rng.permutation(n_samples) if rng is not None else None
    for start in range(0, n_samples, batch_size):
        stop = start + batch_size
        if order is None:
            yield tuple(None if a is None else a[start:stop] for a in arrays)
        else:
            rows = order[start:stop]
            yield tuple(None if a is None else a[rows] for a in arrays)


def stratified_split(
    y: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into train and validation, keeping each class's share.

    Returns
    -------
    train_index, validation_index : ndarray of int
        Each sorted; every class with at least 2 examples gets at least one validation example.
    """
    labels = y if y.ndim == 1 else np.argmax(y, axis=1)
    validation: list[np.ndarray] = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        count = round(fraction * members.size)
        if members.size >= 2:
            count = min(max(count, 1), members.size - 1)
        validation.append(members[:count])
    validation_index = np.sort(np.concatenate(validation))
    mask = np.ones(labels.shape[0], dtype=bool)
    mask[validation_index] = False
    return np.flatnonzero(mask), validation_index


def evaluate(
    model: Sequential, loss: Loss, X: np.ndarray, y: np.ndarray, *, batch_size: int = 8192
) -> tuple[float, float | None]:
    """Mean loss and accuracy (None for regression) of ``model`` on ``(X, y)``, in batches
    (of at most :data:`~nnscratch.nn.model.IMAGE_MODEL_ROWS` for a model with convolutions,
    whose intermediate arrays would take gigabytes for 8192 images)."""
    if has_image_layers(model):
        batch_size = min(batch_size, IMAGE_MODEL_ROWS)
    total_loss, correct, n_samples = 0.0, 0, X.shape[0]
    for start in range(0, n_samples, batch_size):
        X_batch, y_batch = X[start:start + batch_size], y[start:start + batch_size]
        logits = model.forward(X_batch, training=False)
        total_loss += loss.forward(logits, y_batch) * X_batch.shape[0]
        if loss.is_classification:
            correct += _count_correct(loss, logits, y_batch)
    accuracy = correct / n_samples if loss.is_classification else None
    return total_loss / n_samples, accuracy


def _count_correct(loss: Loss, logits: np.ndarray, y: np.ndarray) -> int:
    """How many rows of ``logits`` predict the class of ``y`` (indices or one-hot rows)."""
    target = y if y.ndim == 1 else np.argmax(y, axis=1)
    return int(np.count_nonzero(loss.predict(logits) == target))


# ---------------------------------------------------------------------------------------------
# fit, in three parts: prepare the data, run each epoch, then the bookkeeping of each epoch.


@dataclass
class EpochResult:
    """What one epoch of training measured, as :func:`run_epoch` returns it.

    Attributes
    ----------
    loss : float
        The mean of the batch losses, each weighted by its number of samples. A batch's loss is
        computed before its update.
    correct : int or None
        Correct predictions over the epoch's batches (None for a regression loss).
    n_samples : int
        Samples seen in the epoch.
    """

    loss: float
    correct: int | None
    n_samples: int

    @property
    def accuracy(self) -> float | None:
        """``correct / n_samples``, or None for a regression loss."""
        return None if self.correct is None else self.correct / self.n_samples


def run_epoch(
    model: Sequential,
    loss: Loss,
    optimizer: Optimizer,
    batches: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray | None]],
    *,
    epoch: int = 0,
    n_batches: int | None = None,
    on_batch: Callable[[int, EpochResult], None] | None = None,
) -> EpochResult:
    """Take one gradient step per batch: forward, loss, backward, update.

    Parameters
    ----------
    model : Sequential
        Updated in place.
    loss : Loss
    optimizer : Optimizer
        Built on ``model.parameters()``.
    batches : iterable of (X_batch, y_batch, sample_weight or None)
        One epoch of batches, as :func:`minibatches` yields them.
    epoch : int, default=0
        The epoch's number (from 0), for the error message if training diverges.
    n_batches : int or None, default=None
        How many batches there are; 1 means full-batch training, whose epochs are called
        iterations in error messages.
    on_batch : callable (batch, EpochResult so far) -> None, default=None
        Called after each step (a progress bar).

    Returns
    -------
    EpochResult

    Raises
    ------
    TrainingDivergedError
        If a batch's loss is NaN or infinite (then that batch's update is not applied), or a
        weight is after the epoch.
    """
    total_loss, correct, seen = 0.0, 0, 0
    for batch, (X_batch, y_batch, weights) in enumerate(batches):
        logits = model.forward(X_batch, training=True)
        batch_loss = loss.forward(logits, y_batch, sample_weight=weights)
        _check_finite_loss(batch_loss, optimizer, epoch, batch, n_batches)
        model.fill_parameter_grads(loss.backward())
        optimizer.step()
        total_loss += batch_loss * X_batch.shape[0]
        seen += X_batch.shape[0]
        if loss.is_classification:
            correct += _count_correct(loss, logits, y_batch)
        if on_batch is not None:
            on_batch(batch, _result(total_loss, correct, seen, loss))
    _check_finite_weights(model, optimizer, epoch, n_batches)
    return _result(total_loss, correct, seen, loss)


def _result(total_loss: float, correct: int, seen: int, loss: Loss) -> EpochResult:
    return EpochResult(total_loss / seen, correct if loss.is_classification else None, seen)


def _where(epoch: int, batch: int | None, n_batches: int | None) -> str:
    """The place in training, as the user counts it: "iteration 12" when every epoch is one
    full batch (counted from 0, like the cost log), else "epoch 3, batch 17 of 469"."""
    if n_batches == 1:
        return f"iteration {epoch}"
    if batch is None:
        return f"epoch {epoch + 1}"
    of = f" of {n_batches}" if n_batches is not None else ""
    return f"epoch {epoch + 1}, batch {batch + 1}{of}"


def _diverged(what: str, optimizer: Optimizer, epoch: int) -> TrainingDivergedError:
    return TrainingDivergedError(what, epoch=epoch, what=what,
                                 learning_rate=float(optimizer.learning_rate))


def _check_finite_loss(
    value: float, optimizer: Optimizer, epoch: int, batch: int, n_batches: int | None
) -> None:
    """Raise before the update if the batch's loss is NaN or infinite."""
    if not math.isfinite(value):
        raise _diverged(f"The loss became {value} at {_where(epoch, batch, n_batches)}",
                        optimizer, epoch)


def _check_finite_weights(
    model: Sequential, optimizer: Optimizer, epoch: int, n_batches: int | None
) -> None:
    """Raise if any weight of the model is NaN or infinite, naming the first such array."""
    layers = model.layers if isinstance(model, Sequential) else [model]
    for position, layer in enumerate(layers):
        for param in layer.parameters():
            if not np.all(np.isfinite(param.value)):
                raise _diverged(
                    f"The weights became non-finite (layers[{position}].{param.name} holds NaN "
                    f"or infinity) at {_where(epoch, None, n_batches)}", optimizer, epoch)


class _Checkpoint:
    """The weights at the start of an epoch, kept to undo a step that diverged.

    One copy per epoch into buffers allocated once: for full-batch training (one step per
    epoch) that is the weights from before the failing step.
    """

    def __init__(self, model: Sequential) -> None:
        self.arrays = _state_arrays(model)
        self.saved = [np.empty_like(array) for array in self.arrays]

    def save(self) -> None:
        for saved, array in zip(self.saved, self.arrays, strict=True):
            np.copyto(saved, array)

    def restore(self) -> None:
        for saved, array in zip(self.saved, self.arrays, strict=True):
            np.copyto(array, saved)


def _state_arrays(model: Sequential) -> list[np.ndarray]:
    """The arrays that make a trained model: its parameters' values, then its buffers (batch
    norm's running statistics), which are restored with the weights they go with."""
    return [p.value for p in model.parameters()] + list(model.buffers().values())


@dataclass
class _Data:
    """The checked training arrays of :func:`fit`, in the model's dtype, and the augmentation
    of the training rows (never of the validation rows)."""

    X: np.ndarray
    y: np.ndarray
    sample_weight: np.ndarray | None
    validation: tuple[np.ndarray, np.ndarray] | None
    augment: BatchAugmentation | None = None


def _prepare_data(
    model: Sequential,
    loss: Loss,
    X: Any,
    y: Any,
    *,
    dtype: Any,
    sample_weight: Any,
    validation_data: tuple[Any, Any] | None,
    validation_split: float,
    rng: np.random.Generator,
    augment: BatchAugmentation | None = None,
) -> _Data:
    """Check ``fit``'s data, cast it to the model's dtype once and hold out the validation set."""
    model_dtype = model.dtype
    if dtype is not None and check_dtype(dtype) != model_dtype:
        raise ValueError(
            f"dtype={np.dtype(dtype).name} but the model's weights are {model_dtype.name}; "
            "build the model with the dtype you want to train in."
        )
    X = check_features(X, model_dtype, allow_images=True)
    y = _check_targets(y, X.shape[0], model_dtype)
    _check_input(model, X, "X")
    if sample_weight is not None:
        sample_weight = check_sample_weight(sample_weight, X.shape[0], dtype=model_dtype)
    if augment is not None:
        _check_augment(augment, X.shape[1:])
    if validation_data is None and validation_split > 0:
        if loss.is_classification:
            train_index, val_index = stratified_split(y, validation_split, rng)
        else:
            train_index, val_index = _random_split(X.shape[0], validation_split, rng)
        validation_data = (X[val_index], y[val_index])
        X, y = X[train_index], y[train_index]
        if sample_weight is not None:
            sample_weight = sample_weight[train_index]
    if validation_data is not None:
        X_val = check_features(validation_data[0], model_dtype, name="X_val",
                               allow_images=True)
        _check_input(model, X_val, "X_val")
        validation_data = (X_val, _check_targets(validation_data[1], X_val.shape[0], model_dtype,
                                                 name="y_val"))
    return _Data(X, y, sample_weight, validation_data, augment)


def _check_input(model: Sequential, X: np.ndarray, name: str) -> None:
    """The model's check of its input's shape (a lone layer's, as a one-layer Sequential)."""
    stack = model if isinstance(model, Sequential) else Sequential([model])
    stack.check_input(X, name=name)


def _check_augment(augment: BatchAugmentation, sample_shape: tuple[int, ...]) -> None:
    """Refuse an ``augment`` that is no :class:`~nnscratch.data.augment.Augmentation`, or whose
    image shape does not fit one sample of ``sample_shape`` (a row of pixels, or one channel of
    an image), before training starts."""
    if not isinstance(augment, BatchAugmentation):
        raise TypeError(f"augment must be an nnscratch.data.augment.Augmentation or None, got "
                        f"{augment!r}.")
    if len(sample_shape) == 3 and sample_shape[0] != 1:
        raise ValueError(
            f"augment transforms single-channel images, but X has {sample_shape[0]} channels "
            f"(images of shape {sample_shape}); train without augment, or on one channel."
        )
    augment.check_features(int(np.prod(sample_shape)))


def _check_targets(y: Any, n_samples: int, dtype: np.dtype, *, name: str = "y") -> np.ndarray:
    """``y`` as an array with one row per sample; float targets in the model's dtype."""
    y = np.asarray(y)
    if y.ndim == 0 or y.shape[0] != n_samples:
        x_name = "X_val" if name == "y_val" else "X"
        raise ValueError(
            f"{x_name} has {n_samples} samples but {name} has "
            f"{y.shape[0] if y.ndim else 'a single value'}; pass one label per row of {x_name}."
        )
    return y.astype(dtype, copy=False) if y.dtype.kind == "f" else y


def _random_split(
    n_samples: int, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices at random (for regression, which has no classes to stratify by)."""
    order = rng.permutation(n_samples)
    n_val = max(1, round(fraction * n_samples))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def fit(
    model: Sequential,
    X: np.ndarray,
    y: np.ndarray,
    *,
    loss: Loss,
    optimizer: Optimizer,
    epochs: int,
    batch_size: int | None = 32,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    validation_split: float = 0.0,
    early_stopping: EarlyStopping | None = None,
    schedule: Schedule | None = None,
    seed: int | None = 0,
    shuffle: bool = True,
    dtype: Any = None,
    sample_weight: np.ndarray | None = None,
    callbacks: Sequence[Callback] = (),
    verbose: int = 1,
    augment: BatchAugmentation | None = None,
) -> History:
    """Train ``model`` on ``(X, y)`` with mini-batch gradient descent.

    Parameters
    ----------
    model : Sequential
        Updated in place.
    X : array-like of shape (n_samples, n_features) or (n_samples, channels, height, width)
        Images for a model that starts with a convolution; rows for one that starts with
        ``Dense`` or ``Reshape``.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Class indices for the classification losses, targets for ``MeanSquaredError``.
    loss : Loss
    optimizer : Optimizer
        Built on ``model.parameters()``.
    epochs : int
        Passes over the training data.
    batch_size : int or None, default=32
        ``None`` means full batch: one gradient step per epoch on all the data.
    validation_data : tuple (X_val, y_val), default=None
    validation_split : float, default=0.0
        Fraction of ``(X, y)`` held out for validation, stratified by class, when
        ``validation_data`` is not given.
    early_stopping : EarlyStopping or None, default=None
    schedule : callable epoch -> factor, default=None
        Multiplies the optimiser's initial learning rate at the start of each epoch.
    seed : int or None, default=0
        Seeds the per-epoch shuffling and the validation split.
    shuffle : bool, default=True
        Shuffle the rows each epoch (full batches are never shuffled: order cannot matter).
    dtype : {np.float32, np.float64} or None, default=None
        Must equal the model's dtype when given; the data is cast to the model's dtype once.
    sample_weight : array-like of shape (n_samples,), default=None
    callbacks : sequence of callable (epoch, logs) -> bool or None
        Called after each epoch; returning True stops training.
    verbose : int, default=1
        0 is silent; 1 shows a progress bar (per epoch over batches, or over epochs when each
        epoch is one batch) with the live loss and accuracy.
    augment : BatchAugmentation or None, default=None
        Random transforms of each training batch (:class:`nnscratch.data.augment.Augmentation`),
        prepared in a background thread while the previous batch trains (inline when they
        only move whole pixels, see :func:`nnscratch.data.augment.augmented_batches`); validation
        data is never augmented. Its random draws are seeded by ``seed``.

    Returns
    -------
    History

    Raises
    ------
    ValueError
        If shapes disagree, a fraction is out of range or ``dtype`` differs from the model's.
    TrainingDivergedError
        If the loss or a weight becomes NaN or infinite; the message names the epoch and batch
        (the iteration, for full-batch training) and what to try.
    """
    epochs = check_int(epochs, "epochs", low=0)
    if batch_size is not None:
        batch_size = check_int(batch_size, "batch_size", low=1)
    check_real(validation_split, "validation_split", low=0.0, high=1.0, high_inclusive=False)
    rng = np.random.default_rng(seed)
    data = _prepare_data(model, loss, X, y, dtype=dtype, sample_weight=sample_weight,
                         validation_data=validation_data, validation_split=validation_split,
                         rng=rng, augment=augment)
    _check_early_stopping(early_stopping, data)
    n_train = data.X.shape[0]
    full_batch = batch_size is None or batch_size >= n_train
    n_batches = 1 if full_batch else math.ceil(n_train / batch_size)
    shuffle_rng = rng if (shuffle and not full_batch) else None
    augment_rng = np.random.default_rng(rng.integers(2**63)) if augment is not None else None
    history = History()
    base_rate = optimizer.learning_rate
    progress = _Progress(verbose, epochs, n_batches)
    checkpoint = _Checkpoint(model)
    _warn_if_untrained(epochs, base_rate)
    try:
        for epoch in range(epochs):
            if schedule is not None:
                optimizer.learning_rate = base_rate * schedule(epoch)
            start = time.perf_counter()
            checkpoint.save()
            try:
                # `closing` stops the thread preparing augmented batches however the epoch ends.
                with contextlib.closing(_training_batches(data, batch_size, shuffle_rng,
                                                          augment_rng)) as batches:
                    result = run_epoch(model, loss, optimizer, batches, epoch=epoch,
                                       n_batches=n_batches,
                                       on_batch=progress.start_epoch(epoch))
            except TrainingDivergedError as error:
                checkpoint.restore()
                error.restored = ("The weights from before that step are restored."
                                  if n_batches == 1 else
                                  f"The weights from the start of epoch {epoch + 1} are "
                                  "restored.")
                raise
            stop = _end_epoch(epoch, result, model=model, loss=loss, data=data,
                              history=history, seconds=time.perf_counter() - start,
                              learning_rate=optimizer.learning_rate, progress=progress,
                              early_stopping=early_stopping, callbacks=callbacks)
            if stop:
                history.stopped_early = epoch < epochs - 1
                break
    finally:
        progress.close()
        optimizer.learning_rate = base_rate
    if early_stopping is not None:
        early_stopping.restore(model)
        history.best_epoch = early_stopping.best_epoch
    _warn_if_loss_rose(history, base_rate)
    return history


def _warn_if_untrained(epochs: int, learning_rate: float) -> None:
    if epochs == 0 or learning_rate == 0:
        why = "0 epochs" if epochs == 0 else "a learning rate of 0"
        warnings.warn(
            f"training with {why} leaves the model's weights as initialised: it is untrained.",
            UntrainedWarning, stacklevel=3,
        )


def _warn_if_loss_rose(history: History, learning_rate: float) -> None:
    """Warn when the last epoch's loss is over :data:`LOSS_RISE_FACTOR` times the first's."""
    if len(history.loss) >= 2 and history.loss[0] > 0:
        first, last = history.loss[0], history.loss[-1]
        if last > LOSS_RISE_FACTOR * first:
            warnings.warn(LossRoseWarning(first, last, learning_rate), stacklevel=3)


def _training_batches(
    data: _Data,
    batch_size: int | None,
    shuffle_rng: np.random.Generator | None,
    augment_rng: np.random.Generator | None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """One epoch of training batches, as :func:`minibatches` yields them; with an augmentation,
    augmented copies of each batch's images, prepared in a background thread while the
    previous batch trains, or inline when the augmentation only moves whole pixels
    (:func:`nnscratch.data.augment.augmented_batches`). Close it when done."""
    batches = minibatches(data.X, data.y, data.sample_weight, batch_size=batch_size,
                          rng=shuffle_rng)
    if data.augment is None:
        return batches
    if data.X.ndim == 2:
        return data.augment.augment_batches(batches, augment_rng)
    # Images (n, 1, height, width): the augmentation takes flat rows of pixels.
    flat = ((X_batch.reshape(len(X_batch), -1), *rest) for X_batch, *rest in batches)
    return _as_images(data.augment.augment_batches(flat, augment_rng), data.X.shape[1:])


def _as_images(
    batches: Iterator[tuple[Any, ...]], sample_shape: tuple[int, ...]
) -> Iterator[tuple[Any, ...]]:
    """``batches`` with their flat rows of pixels reshaped back to images; closing it closes
    ``batches`` (the augmentation's background thread)."""
    try:
        for X_batch, *rest in batches:
            yield (X_batch.reshape(len(X_batch), *sample_shape), *rest)
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()


def _check_early_stopping(early_stopping: EarlyStopping | None, data: _Data) -> None:
    if early_stopping is None:
        return
    early_stopping.reset()
    if early_stopping.monitor.startswith("val") and data.validation is None:
        raise ValueError(
            f"early stopping monitors {early_stopping.monitor!r} but there is no validation "
            "data; pass validation_data or validation_split, or monitor 'loss'."
        )


def _end_epoch(
    epoch: int,
    result: EpochResult,
    *,
    model: Sequential,
    loss: Loss,
    data: _Data,
    history: History,
    seconds: float,
    learning_rate: float,
    progress: _Progress,
    early_stopping: EarlyStopping | None,
    callbacks: Sequence[Callback],
) -> bool:
    """Validate, record and show one epoch; return whether early stopping or a callback stops.

    The seconds recorded for the epoch include its validation.
    """
    start = time.perf_counter()
    logs: dict[str, float] = {"loss": result.loss}
    if result.accuracy is not None:
        logs["accuracy"] = result.accuracy
    if data.validation is not None:
        logs["val_loss"], val_accuracy = evaluate(model, loss, *data.validation)
        if val_accuracy is not None:
            logs["val_accuracy"] = val_accuracy
    history.record(logs, seconds + time.perf_counter() - start, learning_rate)
    progress.end_epoch(logs)
    stop = False
    if early_stopping is not None:
        if early_stopping.monitor not in logs:
            raise ValueError(
                f"early stopping monitors {early_stopping.monitor!r}, which this loss does "
                "not report; monitor 'loss' or 'val_loss'."
            )
        stop = early_stopping.update(epoch, logs[early_stopping.monitor], model)
    for callback in callbacks:
        stop = bool(callback(epoch, logs)) or stop
    return stop


class _Progress:
    """tqdm progress bars for :func:`fit`: one over the epochs when each epoch is one batch,
    else one over the batches of each epoch. Silent with ``verbose=0``; tqdm is imported only
    when a bar is shown."""

    def __init__(self, verbose: int, epochs: int, n_batches: int) -> None:
        self.enabled = bool(verbose)
        self.epochs, self.n_batches = epochs, n_batches
        self.epoch_bar = self._bar(epochs, "train", "it") if self.enabled and n_batches == 1 \
            else None
        self.batch_bar: Any = None

    @staticmethod
    def _bar(total: int, description: str, unit: str) -> Any:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=description, unit=unit, leave=False, dynamic_ncols=True)

    def start_epoch(self, epoch: int) -> Callable[[int, EpochResult], None] | None:
        """Open the epoch's batch bar; return the per-batch update for :func:`run_epoch`."""
        if not self.enabled or self.n_batches == 1:
            return None
        self.batch_bar = self._bar(self.n_batches, f"epoch {epoch + 1}/{self.epochs}", "batch")
        return self._batch_done

    def _batch_done(self, batch: int, so_far: EpochResult) -> None:
        self.batch_bar.update(1)
        if batch % 10 == 0 or batch == self.n_batches - 1:
            self.batch_bar.set_postfix(_postfix({"loss": so_far.loss,
                                                 "accuracy": so_far.accuracy}))

    def end_epoch(self, logs: dict[str, float]) -> None:
        """Show the epoch's figures; close its batch bar."""
        if self.batch_bar is not None:
            self.batch_bar.set_postfix(_postfix(logs))
            self.batch_bar.close()
            self.batch_bar = None
        if self.epoch_bar is not None:
            self.epoch_bar.update(1)
            self.epoch_bar.set_postfix(_postfix({"loss": logs["loss"],
                                                 "accuracy": logs.get("accuracy")}),
                                       refresh=False)

    def close(self) -> None:
        for bar in (self.batch_bar, self.epoch_bar):
            if bar is not None:
                bar.close()


def _postfix(logs: dict[str, float | None]) -> dict[str, str]:
    """The figures a progress bar shows, four decimals each."""
    names = {"loss": "loss", "accuracy": "acc", "val_loss": "val_loss",
             "val_accuracy": "val_acc"}
    return {short: f"{logs[key]:.4f}" for key, short in names.items()
            if logs.get(key) is not None}
