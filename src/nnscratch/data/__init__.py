"""Data for nnscratch: the IDX format, MNIST (find, download, verify, load) and digit subsets.

- :mod:`~nnscratch.data.idx` reads and writes IDX files, gzipped or raw.
- :mod:`~nnscratch.data.mnist` finds MNIST (folder, ``NNSCRATCH_DATA``, cache) or downloads it.
- :mod:`~nnscratch.data.datasets` picks digits, relabels, flattens, scales and shuffles.
"""

from nnscratch.data.datasets import (
    DigitsDataset,
    load_digits,
    parse_digits,
    preprocess_images,
    select_digits,
    shuffle,
)
from nnscratch.data.idx import IDXFormatError, parse_idx, read_idx, write_idx
from nnscratch.data.mnist import (
    MIRRORS,
    MNIST,
    MNIST_FILES,
    DataFile,
    MNISTChecksumError,
    MNISTFile,
    MNISTNotFoundError,
    default_cache_dir,
    load_mnist,
)

__all__ = [
    "MIRRORS",
    "MNIST",
    "MNIST_FILES",
    "DataFile",
    "DigitsDataset",
    "IDXFormatError",
    "MNISTChecksumError",
    "MNISTFile",
    "MNISTNotFoundError",
    "default_cache_dir",
    "load_digits",
    "load_mnist",
    "parse_digits",
    "parse_idx",
    "preprocess_images",
    "read_idx",
    "select_digits",
    "shuffle",
    "write_idx",
]
