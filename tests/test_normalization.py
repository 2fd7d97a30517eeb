"""Tests for nnscratch.nn.normalization: BatchNorm and LayerNorm — equations, running
statistics, gradients, inference without side effects, errors.

PyTorch parity is in ``reference/test_torch_parity_cnn.py``.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from _numerics import assert_close
from nnscratch.nn.gradcheck import check_layer
from nnscratch.nn.normalization import BatchNorm, LayerNorm

DTYPES = [np.float32, np.float64]
SHAPES = [(6, 3), (4, 3, 5, 7)]
SHAPE_IDS = ["rows", "images"]


def _axes(x):
    return (0,) if x.ndim == 2 else (0, 2, 3)


def _channels(values, x):
    return values.reshape(1, -1) if x.ndim == 2 else values.reshape(1, -1, 1, 1)


def _batch_norm(num_features=3, dtype=np.float64, **kwargs):
    layer = BatchNorm(num_features, dtype=dtype, **kwargs)
    layer.gamma.value[...] = np.linspace(0.5, 1.5, num_features)
    layer.beta.value[...] = np.linspace(-0.3, 0.3, num_features)
    return layer


def _state(layer):
    """Every attribute of a layer, deep-copied, Parameters as (value, grad)."""
    state = {}
    for key, value in vars(layer).items():
        if hasattr(value, "grad"):
            value = (value.value, value.grad)
        state[key] = copy.deepcopy(value)
    return state


def _assert_same_state(before, after):
    assert before.keys() == after.keys()
    for key in before:
        a, b = before[key], after[key]
        if isinstance(a, tuple):
            for x, y in zip(a, b, strict=True):
                np.testing.assert_array_equal(x, y, err_msg=key)
        elif isinstance(a, np.ndarray) or a is None:
            if a is None:
                assert b is None, key
            else:
                np.testing.assert_array_equal(a, b, err_msg=key)
        else:
            assert a == b, key


# ---------------------------------------------------------------------------
# BatchNorm
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_batch_norm_training_is_the_formula(rng, shape):
    layer = _batch_norm()
    x = 2 + 3 * rng.standard_normal(shape)
    y = layer.forward(x)
    mean = x.mean(axis=_axes(x))
    var = x.var(axis=_axes(x))  # biased, to normalise
    expected = (x - _channels(mean, x)) / np.sqrt(_channels(var, x) + 1e-5)
    expected = expected * _channels(layer.gamma.value, x) + _channels(layer.beta.value, x)
    assert_close(y, expected)


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_batch_norm_running_statistics_follow_pytorch(rng, shape):
    layer = _batch_norm(momentum=0.25)
    running_mean, running_var = np.zeros(3), np.ones(3)
    m = int(np.prod(shape)) // 3
    for _ in range(4):
        x = 1 + 2 * rng.standard_normal(shape)
        layer.forward(x)
        # Unbiased variance in the running estimate, as torch.nn.BatchNorm1d/2d keep it.
        running_mean = 0.75 * running_mean + 0.25 * x.mean(axis=_axes(x))
        running_var = 0.75 * running_var + 0.25 * x.var(axis=_axes(x)) * m / (m - 1)
        assert_close(layer.running_mean, running_mean)
        assert_close(layer.running_var, running_var)


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_batch_norm_inference_uses_the_running_statistics(rng, shape):
    layer = _batch_norm()
    layer.running_mean[...] = [0.5, -1.0, 2.0]
    layer.running_var[...] = [4.0, 0.25, 1.0]
    x = rng.standard_normal(shape)
    expected = (x - _channels(layer.running_mean, x)) / np.sqrt(
        _channels(layer.running_var, x) + 1e-5)
    expected = expected * _channels(layer.gamma.value, x) + _channels(layer.beta.value, x)
    assert_close(layer.forward(x, training=False), expected)


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_batch_norm_inference_changes_nothing(rng, shape):
    layer = _batch_norm()
    layer.forward(rng.standard_normal(shape))
    layer.backward(rng.standard_normal(shape))
    before = _state(layer)
    layer.forward(5 + rng.standard_normal((9, *shape[1:])), training=False)
    _assert_same_state(before, _state(layer))


def test_fresh_batch_norm_inference_leaves_no_cache():
    layer = BatchNorm(2)
    layer.forward(np.ones((3, 2), np.float32), training=False)
    with pytest.raises(RuntimeError, match=r"BatchNorm.backward\(\) was called before forward"):
        layer.backward(np.ones((3, 2), np.float32))


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_batch_norm_gradcheck(rng, shape):
    layer = _batch_norm()
    report = check_layer(layer, 1 + 2 * rng.standard_normal(shape), rng=rng)
    assert report.passed(1e-7), str(report)
    assert set(report.errors) == {"input", "0.gamma", "1.beta"}


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_batch_norm_backward_is_the_compact_form(rng, shape):
    layer = _batch_norm()
    x = rng.standard_normal(shape)
    G = rng.standard_normal(shape)
    layer.forward(x)
    grad_input = layer.backward(G)
    axes = _axes(x)
    m = x.size // 3
    x_hat = (x - _channels(x.mean(axis=axes), x)) / np.sqrt(_channels(x.var(axis=axes), x) + 1e-5)
    scale = _channels(layer.gamma.value / np.sqrt(x.var(axis=axes) + 1e-5) / m, x)
    expected = scale * (m * G - _channels(G.sum(axis=axes), x)
                        - x_hat * _channels((G * x_hat).sum(axis=axes), x))
    assert_close(grad_input, expected)
    assert_close(layer.gamma.grad, (G * x_hat).sum(axis=axes))
    assert_close(layer.beta.grad, G.sum(axis=axes))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_batch_norm_keeps_its_dtype_and_float32_agrees(rng, dtype, shape):
    x, G = rng.standard_normal(shape), rng.standard_normal(shape)
    layer, reference = _batch_norm(dtype=dtype), _batch_norm()
    y = layer.forward(x.astype(dtype))
    grad_input = layer.backward(G.astype(dtype))
    for array in (y, grad_input, layer.gamma.grad, layer.beta.grad, layer.running_mean,
                  layer.running_var, layer.forward(x.astype(dtype), training=False)):
        assert array.dtype == dtype
    expected_y = reference.forward(x)
    expected_grad = reference.backward(G)
    assert_close(y, expected_y.astype(dtype))
    # The input gradient subtracts sums of the size of its terms: a float32 result carries
    # about sqrt(m) rounding errors of those sums.
    assert_close(grad_input, expected_grad.astype(dtype),
                 rtol=1e-4 if dtype == np.float32 else None)
    assert_close(layer.running_var, reference.running_var.astype(dtype))


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(2, 6), st.integers(1, 3),
                                        st.integers(1, 4), st.integers(1, 4)),
                  elements=st.floats(-100, 100)),
       st.floats(-50, 50), st.floats(0.1, 10))
def test_batch_norm_training_output_has_zero_mean_and_unit_variance(x, shift, spread):
    x = shift + spread * x
    channel_spread = x.std(axis=(0, 2, 3))
    # A channel that is (nearly) constant normalises to 0, not to unit variance: eps dominates.
    # Past a spread of 0.1 (variance 0.01), var / (var + eps) is within 1e-3 of 1.
    if np.any(channel_spread < 0.1):
        return
    layer = BatchNorm(x.shape[1], dtype=np.float64)  # gamma = 1, beta = 0
    y = layer.forward(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-9)
    # eps = 1e-5 in the denominator: the variance is var / (var + eps), just below 1.
    variance = x.var(axis=(0, 2, 3))
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), variance / (variance + 1e-5), rtol=1e-9)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, atol=2e-3)


def test_batch_norm_attributes_and_config():
    layer = BatchNorm(4, momentum=0.2, eps=1e-3)
    assert (layer.num_features, layer.momentum, layer.eps, layer.dtype) == (
        4, 0.2, 1e-3, np.float32)
    np.testing.assert_array_equal(layer.gamma.value, np.ones(4, np.float32))
    np.testing.assert_array_equal(layer.beta.value, np.zeros(4, np.float32))
    np.testing.assert_array_equal(layer.running_mean, np.zeros(4, np.float32))
    np.testing.assert_array_equal(layer.running_var, np.ones(4, np.float32))
    assert layer.parameters() == [layer.gamma, layer.beta]
    assert not any(array is p.value for p in layer.parameters()
                   for array in (layer.running_mean, layer.running_var))
    buffers = layer.buffers()
    assert list(buffers) == ["running_mean", "running_var"]
    assert buffers["running_mean"] is layer.running_mean
    assert layer.get_config() == {"num_features": 4, "momentum": 0.2, "eps": 1e-3,
                                  "dtype": "float32"}
    assert BatchNorm(**layer.get_config()).get_config() == layer.get_config()


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"num_features": 0}, ValueError, "num_features must be >= 1, got 0"),
    ({"num_features": 2.0}, TypeError, "num_features must be an integer"),
    ({"momentum": 1.5}, ValueError, "momentum must be <= 1.0, got 1.5"),
    ({"momentum": -0.1}, ValueError, "momentum must be >= 0.0"),
    ({"eps": 0}, ValueError, "eps must be > 0.0, got 0.0"),
    ({"dtype": np.int64}, ValueError, "dtype must be float32 or float64"),
])
def test_batch_norm_constructor_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        BatchNorm(**{"num_features": 3, **kwargs})


@pytest.mark.parametrize(("shape", "match"), [
    ((4, 2), r"BatchNorm expects 3 features, but x has 2"),
    ((4, 5, 2, 2), r"BatchNorm expects 3 channels, but x has 5"),
    ((4, 3, 2), r"BatchNorm takes \(n_samples, num_features\) or \(n_samples, channels, height, "
                r"width\), but x has shape \(4, 3, 2\)"),
])
def test_batch_norm_refuses_the_wrong_shape(shape, match):
    with pytest.raises(ValueError, match=match):
        BatchNorm(3).forward(np.zeros(shape, np.float32))


def test_batch_norm_needs_two_values_per_channel_in_training():
    layer = BatchNorm(3)
    with pytest.raises(ValueError, match=r"more than one value per channel.*shape \(1, 3\)"):
        layer.forward(np.zeros((1, 3), np.float32))
    assert layer.forward(np.zeros((1, 3), np.float32), training=False).shape == (1, 3)
    assert layer.forward(np.zeros((1, 3, 2, 1), np.float32)).shape == (1, 3, 2, 1)


def test_batch_norm_momentum_zero_keeps_the_running_statistics(rng):
    layer = BatchNorm(2, momentum=0, dtype=np.float64)
    layer.forward(rng.standard_normal((5, 2)) + 3)
    np.testing.assert_array_equal(layer.running_mean, [0, 0])
    np.testing.assert_array_equal(layer.running_var, [1, 1])


# ---------------------------------------------------------------------------
# LayerNorm
# ---------------------------------------------------------------------------

LAYER_NORM_CASES = [(5, (4, 5)), ((3, 4), (2, 6, 3, 4)), ((2, 3, 4), (3, 2, 3, 4))]
LAYER_NORM_IDS = ["rows", "trailing-two", "whole-image"]


def _layer_norm(normalized_shape, dtype=np.float64):
    layer = LayerNorm(normalized_shape, dtype=dtype)
    size = layer.gamma.value.size
    layer.gamma.value[...] = np.linspace(0.5, 1.5, size).reshape(layer.gamma.shape)
    layer.beta.value[...] = np.linspace(-0.2, 0.2, size).reshape(layer.gamma.shape)
    return layer


@pytest.mark.parametrize(("normalized_shape", "shape"), LAYER_NORM_CASES, ids=LAYER_NORM_IDS)
def test_layer_norm_is_the_formula(rng, normalized_shape, shape):
    layer = _layer_norm(normalized_shape)
    x = 3 + 2 * rng.standard_normal(shape)
    axes = tuple(range(-len(layer.normalized_shape), 0))
    expected = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(
        x.var(axis=axes, keepdims=True) + 1e-5)
    expected = expected * layer.gamma.value + layer.beta.value
    assert_close(layer.forward(x), expected)
    assert_close(layer.forward(x, training=False), expected)


@pytest.mark.parametrize(("normalized_shape", "shape"), LAYER_NORM_CASES, ids=LAYER_NORM_IDS)
def test_layer_norm_gradcheck(rng, normalized_shape, shape):
    report = check_layer(_layer_norm(normalized_shape), rng.standard_normal(shape), rng=rng)
    assert report.passed(1e-7), str(report)


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(2, 12)),
                  elements=st.floats(-100, 100)))
def test_layer_norm_output_has_zero_mean_and_unit_variance_per_sample(x):
    if np.any(x.std(axis=1) < 1e-2):
        return
    y = LayerNorm(x.shape[1], dtype=np.float64).forward(x)
    np.testing.assert_allclose(y.mean(axis=1), 0, atol=1e-9)
    variance = x.var(axis=1)
    np.testing.assert_allclose(y.var(axis=1), variance / (variance + 1e-5), rtol=1e-9)


def test_layer_norm_inference_changes_nothing(rng):
    layer = _layer_norm(4)
    layer.forward(rng.standard_normal((3, 4)))
    layer.backward(rng.standard_normal((3, 4)))
    before = _state(layer)
    layer.forward(rng.standard_normal((7, 4)), training=False)
    _assert_same_state(before, _state(layer))


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm_keeps_its_dtype_and_float32_agrees(rng, dtype):
    x, G = rng.standard_normal((4, 3, 5)), rng.standard_normal((4, 3, 5))
    layer, reference = _layer_norm((3, 5), dtype), _layer_norm((3, 5))
    y = layer.forward(x.astype(dtype))
    grad_input = layer.backward(G.astype(dtype))
    assert y.dtype == grad_input.dtype == layer.gamma.grad.dtype == dtype
    assert_close(y, reference.forward(x).astype(dtype))
    assert_close(grad_input, reference.backward(G).astype(dtype),
                 rtol=1e-4 if dtype == np.float32 else None)


def test_layer_norm_attributes_and_config():
    layer = LayerNorm((3, 4), eps=1e-6)
    assert layer.normalized_shape == (3, 4) and layer.eps == 1e-6 and layer.dtype == np.float32
    assert layer.gamma.shape == layer.beta.shape == (3, 4)
    assert LayerNorm(7).normalized_shape == (7,)
    assert layer.get_config() == {"normalized_shape": [3, 4], "eps": 1e-6, "dtype": "float32"}
    assert LayerNorm(**layer.get_config()).get_config() == layer.get_config()
    assert layer.buffers() == {}


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"normalized_shape": 0}, ValueError, "normalized_shape must be >= 1, got 0"),
    ({"normalized_shape": ()}, ValueError, "normalized_shape must have at least one entry"),
    ({"normalized_shape": 2.5}, TypeError, "normalized_shape must be an int or a tuple"),
    ({"normalized_shape": 3, "eps": -1.0}, ValueError, "eps must be > 0.0"),
])
def test_layer_norm_constructor_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        LayerNorm(**kwargs)


def test_layer_norm_refuses_the_wrong_trailing_shape():
    with pytest.raises(ValueError, match=r"trailing dimensions \(3, 4\), but x has shape "
                                         r"\(2, 4, 3\).*normalized_shape=\(4, 3\)"):
        LayerNorm((3, 4)).forward(np.zeros((2, 4, 3), np.float32))


def test_layer_norm_backward_without_forward_raises():
    with pytest.raises(RuntimeError, match=r"LayerNorm.backward\(\) was called before forward"):
        LayerNorm(3).backward(np.zeros((1, 3), np.float32))
