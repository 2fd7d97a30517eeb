"""Tests for nnscratch.nn.activations: gradients, hand values, stability and properties."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nnscratch.nn.activations import (
    ACTIVATIONS,
    ELU,
    GELU,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    get_activation,
    log_softmax,
    sigmoid,
    softmax,
)
from nnscratch.nn.gradcheck import check_layer

ALL = sorted(ACTIVATIONS.values(), key=lambda cls: cls.__name__)
# Activations with a kink at 0: their inputs are pushed away from it for gradient checks.
KINKED = (ReLU, LeakyReLU, ELU)

finite_matrices = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=8),
    elements=st.floats(-50, 50, allow_nan=False),
)


def _inputs(cls, rng, shape=(6, 5)):
    x = 2.0 * rng.standard_normal(shape)
    if cls in KINKED:
        x = x + 0.05 * np.sign(x)
    return x


def test_registry_covers_every_activation_class():
    assert set(ACTIVATIONS.values()) == {Identity, ReLU, LeakyReLU, Sigmoid, Tanh, ELU, GELU,
                                         Softmax}
    for name, cls in ACTIVATIONS.items():
        assert isinstance(get_activation(name), cls)


@pytest.mark.parametrize("name", ["swish", "", "ReLU", None])
def test_unknown_activation_name_raises(name):
    with pytest.raises(ValueError, match=r"activation must be one of \[.*\], got"):
        get_activation(name)


@pytest.mark.parametrize("cls", ALL, ids=lambda cls: cls.__name__)
def test_gradcheck(cls, rng):
    report = check_layer(cls(), _inputs(cls, rng), rng=rng)
    assert report.max_error < 1e-7, str(report)


@pytest.mark.parametrize(("cls", "kwargs"), [(LeakyReLU, {"negative_slope": 0.3}),
                                              (ELU, {"alpha": 2.5})])
def test_gradcheck_with_non_default_parameters(cls, kwargs, rng):
    report = check_layer(cls(**kwargs), _inputs(cls, rng), rng=rng)
    assert report.max_error < 1e-7, str(report)


@pytest.mark.parametrize("cls", ALL, ids=lambda cls: cls.__name__)
def test_no_parameters(cls):
    assert cls().parameters() == []


@pytest.mark.parametrize("cls", ALL, ids=lambda cls: cls.__name__)
def test_backward_without_forward_raises(cls):
    with pytest.raises(RuntimeError, match=rf"{cls.__name__}\.backward\(\) was called before"):
        cls().backward(np.ones((2, 3)))


@pytest.mark.parametrize("cls", ALL, ids=lambda cls: cls.__name__)
def test_inference_forward_does_not_fill_the_cache(cls):
    layer = cls()
    layer.forward(np.ones((2, 3)), training=False)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((2, 3)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls", ALL, ids=lambda cls: cls.__name__)
def test_dtype_is_kept(cls, dtype, rng):
    layer = cls()
    x = rng.standard_normal((4, 3)).astype(dtype)
    y = layer.forward(x)
    assert y.dtype == dtype
    assert layer.backward(np.ones_like(y)).dtype == dtype


@pytest.mark.parametrize("cls", ALL, ids=lambda cls: cls.__name__)
def test_returns_fresh_arrays(cls, rng):
    # A caller may keep an output or gradient: the next call must not overwrite it.
    layer = cls()
    y = layer.forward(rng.standard_normal((4, 3)))
    grad_input = layer.backward(rng.standard_normal((4, 3)))
    kept_y, kept_grad = y.copy(), grad_input.copy()
    layer.forward(rng.standard_normal((4, 3)))
    layer.backward(rng.standard_normal((4, 3)))
    np.testing.assert_array_equal(y, kept_y)
    np.testing.assert_array_equal(grad_input, kept_grad)


@settings(max_examples=30, deadline=None)
@given(x=finite_matrices)
@pytest.mark.parametrize("cls", ALL, ids=lambda cls: cls.__name__)
def test_backward_returns_the_input_shape(cls, x):
    layer = cls()
    y = layer.forward(x)
    assert y.shape == x.shape
    assert layer.backward(np.ones_like(y)).shape == x.shape


# ---------------------------------------------------------------------------
# Hand values
# ---------------------------------------------------------------------------

X_HAND = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]])


@pytest.mark.parametrize(
    ("layer", "expected"),
    [
        (Identity(), X_HAND[0]),
        (ReLU(), [0.0, 0.0, 0.0, 0.5, 3.0]),
        (LeakyReLU(), [-0.02, -0.005, 0.0, 0.5, 3.0]),
        (LeakyReLU(0.2), [-0.4, -0.1, 0.0, 0.5, 3.0]),
        (Sigmoid(), 1 / (1 + np.exp(-X_HAND[0]))),
        (Tanh(), np.tanh(X_HAND[0])),
        (ELU(), [np.exp(-2.0) - 1, np.exp(-0.5) - 1, 0.0, 0.5, 3.0]),
        (ELU(2.0), [2 * (np.exp(-2.0) - 1), 2 * (np.exp(-0.5) - 1), 0.0, 0.5, 3.0]),
        (GELU(), 0.5 * X_HAND[0] * (1 + np.tanh(np.sqrt(2 / np.pi)
                                                * (X_HAND[0] + 0.044715 * X_HAND[0] ** 3)))),
        (Softmax(), np.exp(X_HAND[0]) / np.exp(X_HAND[0]).sum()),
    ],
    ids=lambda value: repr(value) if not isinstance(value, (list, np.ndarray)) else "",
)
def test_forward_by_hand(layer, expected):
    np.testing.assert_allclose(layer.forward(X_HAND)[0], expected, rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize(
    ("layer", "expected"),
    [
        (ReLU(), [0.0, 0.0, 0.0, 1.0, 1.0]),  # the derivative at 0 is taken as 0
        (LeakyReLU(0.2), [0.2, 0.2, 0.2, 1.0, 1.0]),
        (ELU(), [np.exp(-2.0), np.exp(-0.5), 1.0, 1.0, 1.0]),
    ],
    ids=["relu", "leaky_relu", "elu"],
)
def test_derivative_by_hand(layer, expected):
    layer.forward(X_HAND)
    np.testing.assert_allclose(layer.backward(np.ones_like(X_HAND))[0], expected, rtol=1e-14)


def test_gelu_matches_the_exact_gelu_closely():
    from math import erf

    x = np.linspace(-6, 6, 241)
    exact = np.array([0.5 * v * (1 + erf(v / np.sqrt(2))) for v in x])
    assert np.max(np.abs(GELU().forward(x[None, :])[0] - exact)) < 1e-3


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"negative_slope": -0.1}, ValueError, r"negative_slope must be >= 0\.0, got -0\.1"),
    ({"negative_slope": "a"}, TypeError, r"negative_slope must be a real number"),
])
def test_leaky_relu_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        LeakyReLU(**kwargs)


@pytest.mark.parametrize(("alpha", "error", "match"), [
    (0.0, ValueError, r"alpha must be > 0\.0, got 0\.0"),
    (-1.0, ValueError, r"alpha must be > 0\.0"),
    (float("inf"), ValueError, r"alpha must be finite"),
])
def test_elu_validation(alpha, error, match):
    with pytest.raises(error, match=match):
        ELU(alpha)


def test_configs():
    assert LeakyReLU(0.3).get_config() == {"negative_slope": 0.3}
    assert ELU(1.5).get_config() == {"alpha": 1.5}
    assert repr(LeakyReLU(0.3)) == "LeakyReLU(negative_slope=0.3)"
    assert ReLU().get_config() == {}


# ---------------------------------------------------------------------------
# Stability
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_saturates_without_warnings(dtype):
    x = np.array([[-1000.0, -100.0, 0.0, 100.0, 1000.0]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer = Sigmoid()
        y = layer.forward(x)
        grad = layer.backward(np.ones_like(x))
    assert y.dtype == dtype
    assert y[0, 0] == 0.0 and y[0, -1] == 1.0 and y[0, 2] == 0.5
    assert np.all(np.isfinite(grad))
    assert grad[0, 0] == 0.0 and grad[0, -1] == 0.0


def test_sigmoid_function_keeps_relative_precision_for_negative_inputs():
    # sigma(-30) = e^-30 / (1 + e^-30): computing 1 - sigma(30) instead would lose every digit.
    np.testing.assert_allclose(sigmoid(np.array([-30.0])), np.exp(-30.0) / (1 + np.exp(-30.0)),
                               rtol=1e-15)


def test_softmax_with_huge_logits_is_finite():
    x = np.array([[1e300, 0.0, -1e300], [1000.0, 1000.0, 1000.0], [-1e4, -1e4 + 1.0, -1e4]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer = Softmax()
        y = layer.forward(x)
        grad = layer.backward(np.ones_like(x))
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(y[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(y[1], [1 / 3] * 3, rtol=1e-15)
    np.testing.assert_allclose(y[2], np.exp([0.0, 1.0, 0.0]) / np.exp([0.0, 1.0, 0.0]).sum(),
                               rtol=1e-12)


def test_log_softmax_with_huge_logits_is_finite():
    x = np.array([[1000.0, 0.0], [-1000.0, 1000.0]])
    np.testing.assert_allclose(log_softmax(x), [[0.0, -1000.0], [-2000.0, 0.0]])


@pytest.mark.parametrize("cls", [ReLU, LeakyReLU, ELU, GELU, Tanh])
def test_large_inputs_do_not_overflow(cls):
    x = np.array([[-1e5, -750.0, 750.0, 1e5]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer = cls()
        y = layer.forward(x)
        grad = layer.backward(np.ones_like(x))
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(grad))


# ---------------------------------------------------------------------------
# Softmax properties
# ---------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(x=finite_matrices)
def test_softmax_rows_sum_to_one(x):
    y = softmax(x)
    assert np.all(y >= 0) and np.all(y <= 1)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-12)


@settings(max_examples=100, deadline=None)
@given(x=finite_matrices, data=st.data())
def test_softmax_ignores_a_constant_per_row(x, data):
    shift = data.draw(hnp.arrays(np.float64, (x.shape[0], 1),
                                 elements=st.floats(-1e3, 1e3, allow_nan=False)))
    np.testing.assert_allclose(softmax(x + shift), softmax(x), rtol=1e-9, atol=1e-12)


@settings(max_examples=50, deadline=None)
@given(x=finite_matrices)
def test_log_softmax_is_log_of_softmax(x):
    np.testing.assert_allclose(np.exp(log_softmax(x)), softmax(x), rtol=1e-12, atol=1e-300)


@settings(max_examples=50, deadline=None)
@given(x=finite_matrices)
def test_softmax_gradient_rows_sum_to_zero(x):
    # Softmax outputs always sum to 1, so no input change can move the sum: each row of the
    # input gradient sums to 0 for any upstream gradient.
    layer = Softmax()
    layer.forward(x)
    grad = layer.backward(np.arange(x.size, dtype=np.float64).reshape(x.shape))
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-9 * max(1, x.size))
