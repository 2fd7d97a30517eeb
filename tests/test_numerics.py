"""Tests for the tests' own float comparison, tests/_numerics.py: it must fail where it should."""

from __future__ import annotations

import numpy as np
import pytest

from _numerics import RTOL, assert_close, rtol_for


def test_tolerance_follows_the_least_precise_dtype():
    single, double = np.ones(2, np.float32), np.ones(2, np.float64)
    assert rtol_for(single, double) == RTOL[np.dtype(np.float32)]
    assert rtol_for(double, [1, 2]) == RTOL[np.dtype(np.float64)]
    assert rtol_for(3.0) == RTOL[np.dtype(np.float64)]
    with pytest.raises(TypeError, match="no tolerance for dtype float16"):
        rtol_for(np.ones(2, np.float16))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_reordered_sum_passes_and_a_wrong_one_fails(rng, dtype):
    terms = rng.standard_normal((1000, 784)).astype(dtype)
    forward = terms.sum(axis=1)
    backward = terms[:, ::-1].cumsum(axis=1)[:, -1]  # the same sums, added in another order
    assert not np.array_equal(forward, backward)  # the orders really differ
    assert_close(forward, backward)
    one_term_short = backward - terms[:, 0]
    with pytest.raises(AssertionError):
        assert_close(forward, one_term_short)


def test_elements_near_zero_are_judged_against_the_largest_magnitude():
    expected = np.array([1.0, 1e-20])
    assert_close(np.array([1.0, 2e-20]), expected)  # a cancellation-sized absolute error
    with pytest.raises(AssertionError):
        assert_close(np.array([1.0, 1e-9]), expected)


def test_shapes_and_nans_must_match():
    with pytest.raises(AssertionError, match=r"shapes differ: actual \(3,\), expected \(1, 3\)"):
        assert_close(np.zeros(3), np.zeros((1, 3)))
    assert_close(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]))
    with pytest.raises(AssertionError):
        assert_close(np.array([np.nan, 1.0]), np.array([0.0, 1.0]))


def test_an_explicit_rtol_overrides_the_dtype_default():
    assert_close(np.array([1.0 + 1e-9]), np.array([1.0]), rtol=1e-8)
    with pytest.raises(AssertionError):
        assert_close(np.array([1.0 + 1e-9]), np.array([1.0]))
