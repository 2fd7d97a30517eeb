"""Tiny MNIST-shaped data sets for loader tests, shared by test_mnist.py, test_datasets.py,
test_cli.py and test_tune.py.

The arrays have MNIST's kinds and image size but few examples (60 train, 10 test by default), so
their SHA-256 digests differ from the real ones: tests either load them with ``verify=False`` or
swap in their digests with :func:`use_hashes_of`.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from nnscratch.data import mnist

STYLES = ("canonical", "dotted")


def fake_arrays(seed: int = 0, n_train: int = 60, n_test: int = 10) -> dict[str, np.ndarray]:
    """Random uint8 images and labels 0..9 (each digit present), keyed like ``MNIST_FILES``."""
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.permutation(np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.permutation(np.arange(n_test) % 10).astype(np.uint8),
    }


def learnable_arrays(seed: int = 0, n_train: int = 600, n_test: int = 100) -> dict[str, np.ndarray]:
    """MNIST-shaped images a small network learns in a few epochs: digit ``k`` lights rows
    ``2k + 2`` and ``2k + 3`` over a faint noise (for searches that must tell good settings
    from bad ones, as ``nnscratch tune``'s tests do)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        labels = rng.permutation(np.arange(n) % 10)
        images = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
        for digit in range(10):
            images[labels == digit, 2 + 2 * digit:4 + 2 * digit, 4:24] = 255
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels.astype(np.uint8)
    return arrays


def idx_bytes(array: np.ndarray) -> bytes:
    """Uncompressed IDX bytes of a uint8 array, built by hand (independently of write_idx)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def gzipped(arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    """Gzipped IDX bytes of each array, as a mirror would serve them."""
    return {key: gzip.compress(idx_bytes(array), mtime=0) for key, array in arrays.items()}


def write_fake_mnist(
    directory: Path, arrays: dict[str, np.ndarray], *, style: str = "canonical", gz: bool = True
) -> dict[str, Path]:
    """Write the four files into `directory` with one of MNIST's two naming styles."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, array in arrays.items():
        spec = mnist.MNIST_FILES[key]
        name = spec.name if style == "canonical" else spec.alt_name
        data = idx_bytes(array)
        if gz:
            name, data = name + ".gz", gzip.compress(data, mtime=0)
        paths[key] = directory / name
        paths[key].write_bytes(data)
    return paths


def use_hashes_of(
    monkeypatch: pytest.MonkeyPatch, arrays: dict[str, np.ndarray], dataset: str = "mnist"
) -> None:
    """Make `arrays` the reference content that ``verify=True`` checks for `dataset`."""
    source = mnist.DATASETS[dataset]
    table = {
        key: dataclasses.replace(spec, sha256=hashlib.sha256(idx_bytes(arrays[key])).hexdigest())
        for key, spec in source.files.items()
    }
    monkeypatch.setitem(mnist.DATASETS, dataset, dataclasses.replace(source, files=table))


def assert_same(loaded: mnist.MNIST, arrays: dict[str, np.ndarray]) -> None:
    """The loaded tuple holds exactly `arrays`, with their dtypes and shapes."""
    for key, expected in arrays.items():
        actual = getattr(loaded, key)
        assert actual.dtype == np.uint8
        np.testing.assert_array_equal(actual, expected, strict=True)
