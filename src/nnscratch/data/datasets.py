"""Turn MNIST into training data: pick digits, relabel, flatten, scale, shuffle.

The tutorial this package follows trains a network to tell 1s from 2s, so the default of
:func:`load_digits` is ``(1, 2)``: 12,700 training and 2,167 test images. Any two or more digits
work; each is relabelled to its position in ``digits``, so a binary task gets labels 0 and 1 and a
ten-class task keeps 0..9. Rows are samples: ``X`` has shape ``(n_samples, 784)``, scaled to
[0, 1] in the dtype the model asks for.

What it leaves out: one-hot encoding (the losses take integer labels), validation splits and
minibatching (see :mod:`nnscratch.training`), augmentation, and standardisation beyond dividing by
255. Nothing is shuffled unless asked, because the tutorial keeps MNIST's order.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from nnscratch.data.mnist import DataFile, load_mnist

__all__ = [
    "DigitsDataset",
    "load_digits",
    "parse_digits",
    "preprocess_images",
    "select_digits",
    "shuffle",
]

_ALL = "all"


def parse_digits(values: str | int | Iterable[int | str]) -> tuple[int, ...]:
    """Validate a choice of digit classes, e.g. from the command line.

    Parameters
    ----------
    values : "all", str, int or iterable of int or str
        Digits 0..9 as ints or strings (``(1, 2)``, ``["1", "2"]``), a comma- or space-separated
        string (``"1,2"``), or ``"all"`` (alone, or as the only element) for 0..9.

    Returns
    -------
    digits : tuple of int
        The digits in the order given; that order defines the new labels.

    Raises
    ------
    ValueError
        If a value is not a digit 0..9, a digit repeats, or fewer than 2 classes remain.
    TypeError
        If a value is neither an integer nor a string.

    Examples
    --------
    >>> parse_digits(["3", "8"])
    (3, 8)
    >>> parse_digits("all")
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
    """
    if isinstance(values, str):
        values = values.replace(",", " ").split()
    elif isinstance(values, numbers.Integral):
        values = [values]
    values = list(values)
    if len(values) == 1 and isinstance(values[0], str) and values[0].strip().lower() == _ALL:
        return tuple(range(10))
    digits = tuple(_parse_digit(value) for value in values)
    if len(set(digits)) != len(digits):
        repeated = sorted({d for d in digits if digits.count(d) > 1})
        raise ValueError(
            f"digits {digits} repeat {', '.join(map(str, repeated))}; list each digit once."
        )
    if len(digits) < 2:
        raise ValueError(
            f"digits {digits} give {len(digits)} class(es), but classification needs at least 2; "
            "add digits, e.g. (1, 2), or use 'all'."
        )
    return digits


def _parse_digit(value: object) -> int:
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == _ALL:
            raise ValueError("'all' must stand alone; to list digits, write them out, e.g. 1 2.")
        if not (text.isascii() and text.isdigit()):
            raise ValueError(f"digit {value!r} is not a number; give digits 0..9 or 'all'.")
        number = int(text)
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_):
        number = int(value)
    else:
        raise TypeError(
            f"digit {value!r} has type {type(value).__name__}; give digits as ints or strings."
        )
    if not 0 <= number <= 9:
        raise ValueError(f"digit {value!r} is out of range; MNIST digits are 0..9.")
    return number


def select_digits(
    images: np.ndarray, labels: np.ndarray, digits: Iterable[int | str]
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the examples of some digits, in their original order, and relabel them 0..k-1.

    Parameters
    ----------
    images : ndarray of shape (n_samples, ...)
        Any per-example array, e.g. ``(n_samples, 28, 28)``.
    labels : ndarray of shape (n_samples,)
        Integer labels.
    digits : iterable of int or str
        The classes to keep, checked with :func:`parse_digits`. Each example's new label is the
        position of its digit here: ``(1, 2)`` maps 1 to 0 and 2 to 1; ``(2, 1)`` maps 2 to 0.

    Returns
    -------
    images_subset : ndarray of shape (n_kept, ...)
        A copy of the kept examples.
    new_labels : ndarray of shape (n_kept,), dtype int64

    Raises
    ------
    ValueError
        If `labels` is not one-dimensional or its length differs from that of `images`, or the
        digits are invalid.

    Examples
    --------
    >>> import numpy as np
    >>> select_digits(np.arange(4), np.array([2, 0, 1, 2]), (2, 1))
    (array([0, 2, 3]), array([0, 1, 0]))
    """
    digits = parse_digits(digits)
    images, labels = np.asarray(images), np.asarray(labels)
    if labels.ndim != 1 or images.ndim == 0 or len(images) != len(labels):
        raise ValueError(
            f"images of shape {images.shape} and labels of shape {labels.shape} do not pair up: "
            "labels must be one-dimensional with one label per image (first axis of images)."
        )
    wanted = np.asarray(digits)
    keep = np.isin(labels, wanted)
    order = np.argsort(wanted)
    # Position of each kept label within `digits`, vectorised through the sorted digits.
    new_labels = order[np.searchsorted(wanted[order], labels[keep])].astype(np.int64)
    return images[keep], new_labels


def preprocess_images(images: np.ndarray, dtype: npt.DTypeLike = np.float32) -> np.ndarray:
    """Flatten images to rows and scale pixels 0..255 to [0, 1].

    Parameters
    ----------
    images : ndarray of shape (n_samples, ...)
        Integer pixel values 0..255, e.g. uint8 of shape ``(n_samples, 28, 28)``.
    dtype : floating dtype, default=np.float32
        The dtype of the result, chosen by the model (float32 for speed, float64 for exactness).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        C-contiguous, ``n_features`` the product of the other axes (784 for MNIST).

    Raises
    ------
    TypeError
        If `dtype` is not a floating dtype, or `images` is not integer (already scaled images
        would be divided by 255 twice).
    ValueError
        If `images` is a scalar.

    Notes
    -----
    The scaling is computed in `dtype` as ``images.astype(dtype) / dtype(255)``, so for float64
    the result equals ``images / 255.0`` bit for bit, and float32 never passes through float64.

    Examples
    --------
    >>> import numpy as np
    >>> preprocess_images(np.array([[[0, 255], [51, 102]]], dtype=np.uint8))
    array([[0. , 1. , 0.2, 0.4]], dtype=float32)
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(
            f"dtype must be a floating type such as np.float32 or np.float64, got {dtype}."
        )
    images = np.asarray(images)
    if not np.issubdtype(images.dtype, np.integer):
        raise TypeError(
            f"images have dtype {images.dtype}, but preprocess_images expects integer pixels "
            "0..255 (e.g. uint8 from load_mnist) and divides them by 255. If they are already "
            "scaled, use them as they are."
        )
    if images.ndim == 0:
        raise ValueError("images is a scalar; expected an array of shape (n_samples, ...).")
    X = images.reshape(len(images), -1).astype(dtype, order="C")
    X /= dtype.type(255)  # in place: same bits as astype(dtype) / dtype(255), one copy fewer
    return X


def shuffle(
    X: np.ndarray, y: np.ndarray, seed: int | np.random.Generator | None
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle samples and their labels together, reproducibly.

    Parameters
    ----------
    X : ndarray of shape (n_samples, ...)
    y : ndarray of shape (n_samples, ...)
    seed : int, Generator or None
        Passed to ``np.random.default_rng``; the same int gives the same order.

    Returns
    -------
    X_shuffled, y_shuffled : ndarray
        New arrays; the inputs are not modified.

    Raises
    ------
    ValueError
        If `X` and `y` hold different numbers of samples.

    Examples
    --------
    >>> import numpy as np
    >>> shuffle(np.arange(5), np.arange(5) * 10, seed=0)[1]
    array([20, 40, 30,  0, 10])
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 0 or y.ndim == 0 or len(X) != len(y):
        raise ValueError(
            f"X of shape {X.shape} and y of shape {y.shape} must hold the same number of "
            "samples along their first axis."
        )
    permutation = np.random.default_rng(seed).permutation(len(X))
    return X[permutation], y[permutation]


@dataclass(frozen=True, eq=False)
class DigitsDataset:
    """A train/test split of some MNIST digits, ready for a model.

    Attributes
    ----------
    X_train : ndarray of shape (n_train, n_features)
        Pixels scaled to [0, 1].
    y_train : ndarray of shape (n_train,), dtype int64
        Labels 0..n_classes-1: the position of each digit in `digits`.
    X_test : ndarray of shape (n_test, n_features)
    y_test : ndarray of shape (n_test,), dtype int64
    digits : tuple of int
        The digit each label stands for: label ``i`` is digit ``digits[i]``.
    files : mapping of str to DataFile
        The MNIST file behind each array, with its SHA-256 (empty when not loaded from files).
    """

    X_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    X_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    digits: tuple[int, ...]
    files: Mapping[str, DataFile] = field(default_factory=dict, repr=False)

    @property
    def train_size(self) -> int:
        """Number of training examples."""
        return len(self.X_train)

    @property
    def test_size(self) -> int:
        """Number of test examples."""
        return len(self.X_test)

    @property
    def n_features(self) -> int:
        """Number of inputs per example (784 for MNIST)."""
        return self.X_train.shape[1]

    @property
    def n_classes(self) -> int:
        """Number of classes, ``len(digits)``."""
        return len(self.digits)

    def __repr__(self) -> str:
        return (
            f"DigitsDataset(digits={self.digits}, train_size={self.train_size}, "
            f"test_size={self.test_size}, n_features={self.n_features}, "
            f"dtype={self.X_train.dtype})"
        )


def _check_every_digit_present(
    y: np.ndarray, digits: tuple[int, ...], labels_file: DataFile | None, split: str
) -> None:
    """A chosen digit with no examples would vanish from the scores without a word."""
    missing = [d for i, d in enumerate(digits) if not np.any(y == i)]
    if missing:
        where = labels_file.path if labels_file is not None else f"the {split} labels"
        raise ValueError(
            f"{where}: the {split} split has no examples of digit(s) "
            f"{', '.join(map(str, missing))}, which were chosen; its labels are damaged, or "
            "choose digits it has."
        )


def load_digits(
    digits: str | Iterable[int | str] = (1, 2),
    *,
    data_dir: str | os.PathLike[str] | None = None,
    dtype: npt.DTypeLike = np.float64,
    shuffle_seed: int | None = None,
    download: bool = True,
    verify: bool = True,
    progress: bool = True,
) -> DigitsDataset:
    """Load the MNIST images of some digits, flattened, scaled and relabelled.

    Parameters
    ----------
    digits : iterable of int or str, or "all", default=(1, 2)
        The classes, in label order (see :func:`parse_digits`).
    data_dir : str or os.PathLike, optional
        Where the MNIST files are; see :func:`~nnscratch.data.mnist.load_mnist` for the search
        order and download.
    dtype : floating dtype, default=np.float64
        dtype of ``X_train`` and ``X_test``; float64 reproduces the tutorial exactly.
    shuffle_seed : int, optional
        If given, shuffle the training set with :func:`shuffle`; the test set keeps MNIST's
        order (evaluation does not depend on it). ``None`` keeps MNIST's order everywhere.
    download, verify, progress : bool, default=True
        Passed to :func:`~nnscratch.data.mnist.load_mnist`.

    Returns
    -------
    dataset : DigitsDataset

    Raises
    ------
    ValueError
        If `digits` is invalid (checked before any file is read).
    TypeError
        If `dtype` is not a floating dtype.
    MNISTNotFoundError, MNISTChecksumError, IDXFormatError
        As raised by :func:`~nnscratch.data.mnist.load_mnist`.

    Examples
    --------
    >>> data = load_digits((1, 2), progress=False)  # doctest: +SKIP
    >>> data  # doctest: +SKIP
    DigitsDataset(digits=(1, 2), train_size=12700, test_size=2167, n_features=784, dtype=float64)
    """
    digits = parse_digits(digits)
    if np.dtype(dtype).kind != "f":  # fail before reading 47 MB
        raise TypeError(f"dtype must be a floating type such as np.float64, got {dtype}.")
    mnist = load_mnist(data_dir, download=download, verify=verify, progress=progress)
    train_images, y_train = select_digits(mnist.train_images, mnist.train_labels, digits)
    test_images, y_test = select_digits(mnist.test_images, mnist.test_labels, digits)
    for split, y in (("train", y_train), ("test", y_test)):
        _check_every_digit_present(y, digits, mnist.files.get(f"{split}_labels"), split)
    X_train = preprocess_images(train_images, dtype)
    if shuffle_seed is not None:
        X_train, y_train = shuffle(X_train, y_train, shuffle_seed)
    return DigitsDataset(X_train, y_train, preprocess_images(test_images, dtype), y_test, digits,
                         mnist.files)
