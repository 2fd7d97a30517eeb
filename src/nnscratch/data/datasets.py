"""Turn MNIST or Fashion-MNIST into training data: pick classes, relabel, flatten, scale, shuffle.

:func:`load_dataset` loads either data set by name (``"mnist"``, ``"fashion-mnist"``) and keeps
the classes asked for, by number or by name (``"Sneaker"``). The tutorial this package follows
trains a network to tell 1s from 2s, so the default of :func:`load_digits` (MNIST) is ``(1, 2)``:
12,700 training and 2,167 test images. Any two or more classes work; each is relabelled to its
position in the list given, so a binary task gets labels 0 and 1 and a ten-class task keeps
0..9. Rows are samples: ``X`` has shape ``(n_samples, 784)``, scaled to [0, 1] in the dtype the
model asks for.

What it leaves out: one-hot encoding (the losses take integer labels), validation splits and
minibatching (see :mod:`nnscratch.nn.training`), augmentation (see
:mod:`nnscratch.data.augment`), and standardisation beyond dividing by 255. Nothing is shuffled
unless asked, because the tutorial keeps MNIST's order.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from nnscratch.data.mnist import DataFile, get_source, load_mnist

__all__ = [
    "ImageDataset",
    "load_dataset",
    "load_digits",
    "parse_classes",
    "parse_digits",
    "preprocess_images",
    "select_digits",
    "shuffle",
]

_ALL = "all"


def parse_classes(
    values: str | int | Iterable[int | str], dataset: str = "mnist"
) -> tuple[int, ...]:
    """Validate a choice of classes of a data set, by number or by name, e.g. from the CLI.

    Parameters
    ----------
    values : "all", str, int or iterable of int or str
        Class numbers 0..9 as ints or strings (``(1, 2)``, ``["1", "2"]``), class names
        (``["Shirt", "T-shirt/top"]``; case, spaces and punctuation do not matter; numbers are
        plain digits: ``"-1"``, ``"+3"``, ``"3."`` and ``"(3)"`` are refused), a comma- or
        space-separated string (``"1,2"``; names with spaces need commas: ``"Ankle boot, Bag"``),
        or ``"all"`` (alone, or as the only element) for every class.
    dataset : {"mnist", "fashion-mnist"}, default="mnist"
        Whose class names are accepted, and what the messages call a class.

    Returns
    -------
    classes : tuple of int
        The class numbers in the order given; that order defines the new labels.

    Raises
    ------
    ValueError
        If a value is not a class number or name, a class repeats, fewer than 2 classes remain,
        or `dataset` is unknown.
    TypeError
        If a value is neither an integer nor a string.

    Examples
    --------
    >>> parse_classes(["Shirt", "t-shirt/top"], "fashion-mnist")
    (6, 0)
    """
    names = get_source(dataset).class_names
    noun = "digit" if dataset == "mnist" else "class"
    plural = "digits" if dataset == "mnist" else "classes"
    if isinstance(values, str):
        values = values.split(",") if "," in values else values.split()
    elif isinstance(values, numbers.Integral):
        values = [values]
    values = list(values)
    if len(values) == 1 and isinstance(values[0], str) and values[0].strip().lower() == _ALL:
        return tuple(range(len(names)))
    classes = tuple(_parse_class(value, names, dataset, noun, plural) for value in values)
    if len(set(classes)) != len(classes):
        repeated = sorted({c for c in classes if classes.count(c) > 1})
        raise ValueError(
            f"{plural} {classes} repeat {', '.join(map(str, repeated))}; list each {noun} once."
        )
    if len(classes) < 2:
        raise ValueError(
            f"{plural} {classes} give {len(classes)} class(es), but classification needs at "
            f"least 2; add {plural}, e.g. (1, 2), or use 'all'."
        )
    return classes


def parse_digits(values: str | int | Iterable[int | str]) -> tuple[int, ...]:
    """Validate a choice of MNIST digit classes: :func:`parse_classes` for ``"mnist"``.

    Parameters
    ----------
    values : "all", str, int or iterable of int or str
        Digits 0..9 as ints or strings (``(1, 2)``, ``["1", "2"]``), a comma- or
        space-separated string (``"1,2"``), or ``"all"`` (alone, or as the only element) for 0..9.

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
    return parse_classes(values, "mnist")


def _normalise(name: str) -> str:
    """Lower case, letters and digits only: "T-shirt/top" and "t shirt top" compare equal."""
    return "".join(character for character in name.lower() if character.isalnum())


def _parse_class(value: object, names: tuple[str, ...], dataset: str, noun: str,
                 plural: str) -> int:
    n_classes = len(names)
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == _ALL:
            raise ValueError(
                f"'all' must stand alone; to list {plural}, write them out, e.g. 1 2."
            )
        # Names are matched ignoring case, spaces and punctuation ("t shirt top"), numbers are
        # not: "-1", "+3", "3." or "(3)" would otherwise read as 1 or 3 (issue 22).
        by_name = [k for k, name in enumerate(names)
                   if any(c.isalpha() for c in text) and _normalise(name) == _normalise(text)]
        if by_name:
            return by_name[0]
        if not (text.isascii() and text.isdigit()):
            if any(c.isdigit() for c in text) and not any(c.isalpha() for c in text):
                raise ValueError(
                    f"{noun} {value!r} is not a plain number 0..{n_classes - 1} (no signs, "
                    f"points or brackets); write {plural} as e.g. 1 2, or 'all'."
                )
            if dataset == "mnist":
                raise ValueError(f"digit {value!r} is not a number; give digits 0..9 or 'all'.")
            raise ValueError(
                f"class {value!r} is neither a number 0..{n_classes - 1} nor a class name of "
                f"{get_source(dataset).title} ({', '.join(names)}); give numbers, names or "
                "'all'."
            )
        number = int(text)
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_):
        number = int(value)
    else:
        raise TypeError(
            f"{noun} {value!r} has type {type(value).__name__}; give {plural} as ints or "
            "strings."
        )
    if not 0 <= number < n_classes:
        title = get_source(dataset).title
        raise ValueError(
            f"{noun} {value!r} is out of range; {title} {plural} are 0..{n_classes - 1}."
        )
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
class ImageDataset:
    """A train/test split of some classes of MNIST or Fashion-MNIST, ready for a model.

    Attributes
    ----------
    X_train : ndarray of shape (n_train, n_features)
        Pixels scaled to [0, 1].
    y_train : ndarray of shape (n_train,), dtype int64
        Labels 0..n_classes-1: the position of each example's class in `classes`.
    X_test : ndarray of shape (n_test, n_features)
    y_test : ndarray of shape (n_test,), dtype int64
    classes : tuple of int
        The data set's class number each label stands for: label ``i`` is class
        ``classes[i]`` (for MNIST, the digit).
    class_names : tuple of str
        The name of each label: ``"7"`` for MNIST, ``"Sneaker"`` for Fashion-MNIST.
    dataset : str
        ``"mnist"`` or ``"fashion-mnist"``.
    files : mapping of str to DataFile
        The data set's file behind each array, with its SHA-256 (empty when not loaded from
        files).
    """

    X_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    X_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    classes: tuple[int, ...]
    class_names: tuple[str, ...]
    dataset: str = "mnist"
    files: Mapping[str, DataFile] = field(default_factory=dict, repr=False)

    @property
    def digits(self) -> tuple[int, ...]:
        """MNIST's name for `classes`: the digit each label stands for."""
        return self.classes

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
        """Number of classes, ``len(classes)``."""
        return len(self.classes)

    def __repr__(self) -> str:
        return (
            f"ImageDataset(dataset={self.dataset!r}, classes={self.classes}, "
            f"train_size={self.train_size}, test_size={self.test_size}, "
            f"n_features={self.n_features}, dtype={self.X_train.dtype})"
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


def load_dataset(
    name: str = "mnist",
    classes: str | Iterable[int | str] = "all",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    dtype: npt.DTypeLike = np.float64,
    shuffle_seed: int | None = None,
    download: bool = True,
    verify: bool = True,
    progress: bool = True,
) -> ImageDataset:
    """Load MNIST or Fashion-MNIST, keep some classes, flatten, scale and relabel.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist"}, default="mnist"
        The data set. Each is found in `data_dir`, then its environment variable
        (``NNSCRATCH_DATA``, ``NNSCRATCH_DATA_FASHION``), then its cache, else downloaded; see
        :func:`~nnscratch.data.mnist.load_mnist`.
    classes : "all" or iterable of int or str, default="all"
        The classes, in label order, by number or name (see :func:`parse_classes`).
    data_dir : str or os.PathLike, optional
        The folder with the data set's four files.
    dtype : floating dtype, default=np.float64
        dtype of ``X_train`` and ``X_test``: float32 for speed, float64 for exactness.
    shuffle_seed : int, optional
        If given, shuffle the training set with :func:`shuffle`; the test set keeps the data
        set's order (evaluation does not depend on it). ``None`` keeps the order everywhere.
    download, verify, progress : bool, default=True
        Passed to :func:`~nnscratch.data.mnist.load_mnist`.

    Returns
    -------
    dataset : ImageDataset

    Raises
    ------
    ValueError
        If `name` or `classes` is invalid (checked before any file is read).
    TypeError
        If `dtype` is not a floating dtype.
    MNISTNotFoundError, MNISTChecksumError, IDXFormatError
        As raised by :func:`~nnscratch.data.mnist.load_mnist`.

    Examples
    --------
    >>> data = load_dataset("fashion-mnist", ["Shirt", "T-shirt/top"])  # doctest: +SKIP
    >>> data.class_names, data.train_size  # doctest: +SKIP
    (('Shirt', 'T-shirt/top'), 12000)
    """
    source = get_source(name)
    classes = parse_classes(classes, name)
    if np.dtype(dtype).kind != "f":  # fail before reading 47 MB
        raise TypeError(f"dtype must be a floating type such as np.float64, got {dtype}.")
    arrays = load_mnist(data_dir, dataset=name, download=download, verify=verify,
                        progress=progress)
    train_images, y_train = select_digits(arrays.train_images, arrays.train_labels, classes)
    test_images, y_test = select_digits(arrays.test_images, arrays.test_labels, classes)
    for split, y in (("train", y_train), ("test", y_test)):
        _check_every_digit_present(y, classes, arrays.files.get(f"{split}_labels"), split)
    X_train = preprocess_images(train_images, dtype)
    if shuffle_seed is not None:
        X_train, y_train = shuffle(X_train, y_train, shuffle_seed)
    return ImageDataset(X_train, y_train, preprocess_images(test_images, dtype), y_test,
                        classes, tuple(source.class_names[c] for c in classes), name,
                        arrays.files)


def load_digits(
    digits: str | Iterable[int | str] = (1, 2),
    *,
    data_dir: str | os.PathLike[str] | None = None,
    dtype: npt.DTypeLike = np.float64,
    shuffle_seed: int | None = None,
    download: bool = True,
    verify: bool = True,
    progress: bool = True,
) -> ImageDataset:
    """Load the MNIST images of some digits: ``load_dataset("mnist", digits, ...)``.

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
    dataset : ImageDataset

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
    ImageDataset(dataset='mnist', classes=(1, 2), train_size=12700, test_size=2167, \
n_features=784, dtype=float64)
    """
    return load_dataset("mnist", digits, data_dir=data_dir, dtype=dtype,
                        shuffle_seed=shuffle_seed, download=download, verify=verify,
                        progress=progress)
