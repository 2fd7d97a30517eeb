"""Comparing floats that were computed along different paths: one tolerance per dtype.

Two computations of the same value along different paths agree to rounding, not bit for bit:
another batch shape or row position, another BLAS kernel set (blocking, FMA, summation order),
another number of BLAS threads, NumPy's pairwise sum against a BLAS product, PyTorch against
NumPy. Such results are compared with :func:`assert_close`, whose tolerance follows the dtype.

Exact equality stays where it is guaranteed: the same code path on the same inputs (a fixed
seed run twice, a save/load round trip), integer counts and labels, values that are exact in
binary (small integers, halves), element-wise IEEE arithmetic that every CPU rounds alike.

How the tolerances were chosen: a float32 dot product of n terms summed in another order moves
by about sqrt(n) units in the last place of the sum of the terms' magnitudes; for MNIST's
n = 784 that is 28 ulp, 3e-6 relative (measured: a 784-16-10 network's float32 probabilities
differ from float64 by up to 1.4e-6 relative, so two float32 paths by up to 3e-6). ``1e-5``
(84 ulp) covers that with room for a few layers; a real bug moves results by far more. float64
gets ``1e-12`` (4500 ulp), which a correct computation in any order meets and a wrong one
(an off-by-one, a missing term) misses by orders of magnitude.

Elements near zero carry the absolute error of the large terms that cancelled in them, so the
comparison is also normwise: an element passes when its difference is within ``rtol`` of its
own size or within ``rtol`` of the largest expected magnitude (``atol = rtol * max|expected|``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

#: Relative tolerance for results computed along different paths, by floating dtype.
RTOL: dict[np.dtype, float] = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def rtol_for(*arrays: ArrayLike) -> float:
    """The tolerance of the least precise floating dtype among ``arrays``.

    Python floats and integer arrays count as float64: they were computed, or are exact, in
    double precision.
    """
    dtypes = [np.asarray(array).dtype for array in arrays]
    floating = [dtype for dtype in dtypes if np.issubdtype(dtype, np.floating)] or [
        np.dtype(np.float64)
    ]
    least_precise = min(floating, key=lambda dtype: np.finfo(dtype).precision)
    if least_precise not in RTOL:
        raise TypeError(f"no tolerance for dtype {least_precise}; known: {sorted(map(str, RTOL))}")
    return RTOL[least_precise]


def assert_close(actual: ArrayLike, expected: ArrayLike, *, rtol: float | None = None,
                 err_msg: str = "") -> None:
    """Assert ``actual`` equals ``expected`` to the rounding of their dtype, elementwise.

    An element passes when ``|actual - expected| <= rtol * |expected| + rtol * max|expected|``.
    Shapes must match exactly; NaNs must sit in the same places.

    Parameters
    ----------
    actual, expected : array_like
        The two results, computed along different paths.
    rtol : float, optional
        The relative tolerance; by default :data:`RTOL` of the least precise dtype of the two.
        Pass a looser one where the computation is known to amplify rounding (say so beside it).
    err_msg : str, default=""
        Printed with the mismatch.
    """
    actual_array = np.asarray(actual)
    expected_array = np.asarray(expected)
    if actual_array.shape != expected_array.shape:
        raise AssertionError(f"shapes differ: actual {actual_array.shape}, "
                             f"expected {expected_array.shape}. {err_msg}")
    if rtol is None:
        rtol = rtol_for(actual_array, expected_array)
    finite = expected_array[np.isfinite(expected_array)]
    scale = float(np.max(np.abs(finite))) if finite.size else 0.0
    np.testing.assert_allclose(actual_array, expected_array, rtol=rtol, atol=rtol * scale,
                               err_msg=err_msg)
