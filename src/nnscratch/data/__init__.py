"""Data for nnscratch: the IDX format, MNIST and Fashion-MNIST (find, download, verify, load).

- :mod:`~nnscratch.data.idx` reads and writes IDX files, gzipped or raw.
- :mod:`~nnscratch.data.mnist` finds MNIST or Fashion-MNIST (folder, ``NNSCRATCH_DATA`` or
  ``NNSCRATCH_DATA_FASHION``, cache) or downloads it.
- :mod:`~nnscratch.data.datasets` picks classes, relabels, flattens, scales and shuffles.
"""

from nnscratch.data.datasets import (
    ImageDataset,
    load_dataset,
    load_digits,
    parse_classes,
    parse_digits,
    preprocess_images,
    select_digits,
    shuffle,
)
from nnscratch.data.idx import IDXFormatError, parse_idx, read_idx, write_idx
from nnscratch.data.mnist import (
    DATASETS,
    FASHION_MNIST,
    MIRRORS,
    MNIST,
    MNIST_FILES,
    DataFile,
    DatasetSource,
    MNISTChecksumError,
    MNISTFile,
    MNISTNotFoundError,
    default_cache_dir,
    get_source,
    load_mnist,
)

__all__ = [
    "DATASETS",
    "FASHION_MNIST",
    "MIRRORS",
    "MNIST",
    "MNIST_FILES",
    "DataFile",
    "DatasetSource",
    "IDXFormatError",
    "ImageDataset",
    "MNISTChecksumError",
    "MNISTFile",
    "MNISTNotFoundError",
    "default_cache_dir",
    "get_source",
    "load_dataset",
    "load_digits",
    "load_mnist",
    "parse_classes",
    "parse_digits",
    "parse_idx",
    "preprocess_images",
    "read_idx",
    "select_digits",
    "shuffle",
    "write_idx",
]
