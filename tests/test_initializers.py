"""Tests for nnscratch.nn.initializers: shapes, variances, reproducibility, the tutorial's draws."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch.nn.initializers import (
    INITIALIZERS,
    get_initializer,
    glorot_normal,
    glorot_uniform,
    he_normal,
    he_uniform,
    lecun_normal,
    lecun_uniform,
    tutorial_normal,
)

# The variance each initialiser promises, as a function of (fan_in, fan_out), and for uniform
# initialisers the limit a of U(-a, a).
VARIANCE = {
    tutorial_normal: lambda fan_in, fan_out: 1 / fan_in,
    lecun_normal: lambda fan_in, fan_out: 1 / fan_in,
    lecun_uniform: lambda fan_in, fan_out: 1 / fan_in,
    glorot_normal: lambda fan_in, fan_out: 2 / (fan_in + fan_out),
    glorot_uniform: lambda fan_in, fan_out: 2 / (fan_in + fan_out),
    he_normal: lambda fan_in, fan_out: 2 / fan_in,
    he_uniform: lambda fan_in, fan_out: 2 / fan_in,
}
LIMIT = {
    lecun_uniform: lambda fan_in, fan_out: np.sqrt(3 / fan_in),
    glorot_uniform: lambda fan_in, fan_out: np.sqrt(6 / (fan_in + fan_out)),
    he_uniform: lambda fan_in, fan_out: np.sqrt(6 / fan_in),
}
ALL = list(VARIANCE)


def NAMES(function):
    """Test ids: the initialiser's name."""
    return function.__name__


def test_registry_names_every_initializer():
    assert set(INITIALIZERS.values()) == set(ALL)
    assert INITIALIZERS["tutorial"] is tutorial_normal
    assert INITIALIZERS["xavier_uniform"] is glorot_uniform
    assert INITIALIZERS["xavier_normal"] is glorot_normal


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (784, 196), (196, 1)])
@pytest.mark.parametrize("initializer", ALL, ids=NAMES)
def test_shape_and_dtype(initializer, shape):
    weights = initializer(shape, np.random.default_rng(0))
    assert weights.shape == shape
    assert weights.dtype == np.float64
    assert np.all(np.isfinite(weights))


@pytest.mark.parametrize("shape", [(400, 300), (1000, 50), (60, 2000)])
@pytest.mark.parametrize("initializer", ALL, ids=NAMES)
def test_empirical_variance_matches_the_formula(initializer, shape):
    weights = initializer(shape, np.random.default_rng(1))
    expected = VARIANCE[initializer](*shape)
    # The sample variance of N draws has relative standard error sqrt(2 / N) (normal) or less
    # (uniform); 5 standard errors keeps the test deterministic-looking yet meaningful.
    tolerance = 5 * np.sqrt(2 / weights.size)
    assert weights.var() == pytest.approx(expected, rel=tolerance)
    assert abs(weights.mean()) < 5 * np.sqrt(expected / weights.size)


@pytest.mark.parametrize("initializer", list(LIMIT), ids=NAMES)
def test_uniform_initializers_stay_within_their_limit(initializer):
    shape = (200, 100)
    weights = initializer(shape, np.random.default_rng(2))
    limit = LIMIT[initializer](*shape)
    assert np.all(np.abs(weights) <= limit)
    # With 20,000 draws, the extremes come within 0.1 % of the limit.
    assert np.abs(weights).max() > 0.999 * limit


@pytest.mark.parametrize("initializer", ALL, ids=NAMES)
@pytest.mark.parametrize("source", [np.random.default_rng, np.random.RandomState])
def test_same_seed_same_weights(initializer, source):
    first = initializer((20, 10), source(5))
    second = initializer((20, 10), source(5))
    third = initializer((20, 10), source(6))
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, third)


@pytest.mark.parametrize(("n_in", "n_out"), [(784, 196), (196, 1), (5, 3)])
def test_tutorial_normal_reproduces_the_tutorial_draws(n_in, n_out):
    expected = np.random.RandomState(42).randn(n_out, n_in).T / np.sqrt(n_in)
    np.testing.assert_array_equal(tutorial_normal((n_in, n_out), np.random.RandomState(42)),
                                  expected)


def test_tutorial_normal_draws_layers_in_order_from_one_generator():
    # The tutorial seeds once and draws each layer's weights in turn.
    rng = np.random.RandomState(42)
    first, second = tutorial_normal((6, 4), rng), tutorial_normal((4, 1), rng)
    reference = np.random.RandomState(42)
    np.testing.assert_array_equal(first, reference.randn(4, 6).T / np.sqrt(6))
    np.testing.assert_array_equal(second, reference.randn(1, 4).T / np.sqrt(4))


def test_get_initializer_resolves_names_and_callables():
    for name, function in INITIALIZERS.items():
        assert get_initializer(name) is function

    def custom(shape, rng):
        return np.zeros(shape)

    assert get_initializer(custom) is custom


@pytest.mark.parametrize("init", ["glorot", "He_normal", "", 3, None, ["he_normal"]])
def test_unknown_name_raises(init):
    with pytest.raises(ValueError, match=r"init must be one of \[.*\] or a callable .* got"):
        get_initializer(init)
