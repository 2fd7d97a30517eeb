"""Shared fixtures (a seeded random generator, where the real MNIST and Fashion-MNIST are)
and the run's header.

The header names the BLAS kernel set and thread count the run used: results computed along
different float paths agree only to rounding (see ``_numerics.py``), so a report of a failure
should say which kernels produced it.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Let Ctrl-C raise ``KeyboardInterrupt`` here and in the subprocesses the tests start.

    A runner started in the background of a non-interactive shell (``pytest &``) inherits
    SIGINT ignored, and Python then never raises ``KeyboardInterrupt``: the tests of what
    Ctrl-C does (``_thread.interrupt_main``, a real SIGINT sent to ``nnscratch train``) would
    wait forever. A Python handler, unlike an ignored signal, is reset to the default in a
    child process, so the subprocesses get Python's usual handler too.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_report_header() -> str:
    """One line under pytest's header: NumPy's BLAS, its kernel set and its threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return f"numpy {np.__version__}; BLAS kernels unknown (pip install threadpoolctl)"
    pools = [pool for pool in threadpool_info() if pool.get("user_api") == "blas"]
    described = "; ".join(
        f"{pool.get('internal_api')} {pool.get('version')} kernels {pool.get('architecture')}, "
        f"{pool.get('num_threads')} threads ({Path(pool.get('filepath', '')).name})"
        for pool in pools
    )
    return f"numpy {np.__version__}; BLAS: {described or 'none found'}"


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
