"""Shared fixtures: a seeded random generator and where the real MNIST and Fashion-MNIST are."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh generator with a fixed seed, so every test is reproducible."""
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The directory of the real MNIST files named by ``NNSCRATCH_DATA``.

    Tests marked ``slow`` use it; without the variable they skip and say why.
    """
    value = os.environ.get("NNSCRATCH_DATA")
    if not value:
        pytest.skip("NNSCRATCH_DATA is not set: point it at a folder with the MNIST IDX files")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"NNSCRATCH_DATA={value} is not a directory")
    return path


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    """The directory of the real Fashion-MNIST files named by ``NNSCRATCH_DATA_FASHION``.

    Tests marked ``slow`` use it; without the variable they skip and say why.
    """
    value = os.environ.get("NNSCRATCH_DATA_FASHION")
    if not value:
        pytest.skip("NNSCRATCH_DATA_FASHION is not set: point it at a folder with the "
                    "Fashion-MNIST IDX files")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"NNSCRATCH_DATA_FASHION={value} is not a directory")
    return path
