"""Tests for nnscratch.nn.conv: Conv2D and the pools — shapes, gradients, state, errors.

The kernels' equality with plain loops is in ``test_kernels.py``; PyTorch parity in
``reference/test_torch_parity_cnn.py``.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from _numerics import assert_close
from nnscratch.nn.activations import ReLU, Tanh
from nnscratch.nn.conv import AvgPool2D, Conv2D, GlobalAvgPool2D, MaxPool2D
from nnscratch.nn.gradcheck import check_layer, check_model
from nnscratch.nn.layers import Dense, Flatten, Reshape
from nnscratch.nn.losses import SoftmaxCrossEntropy
from nnscratch.nn.model import Sequential
from nnscratch.nn.normalization import BatchNorm, LayerNorm

DTYPES = [np.float32, np.float64]

# (in_channels, out_channels, kernel_size, stride, padding, height, width)
CONV_SETTINGS = [
    (1, 2, 3, 1, 1, 5, 5),
    (2, 3, (3, 2), 2, 2, 7, 6),
    (2, 2, (2, 3), (2, 1), (1, 2), 5, 7),
    (3, 2, 1, 2, 0, 5, 4),
]
CONV_IDS = ["3x3-pad1", "3x2-stride2-pad2", "2x3-mixed", "1x1-stride2"]


def _conv(in_channels, out_channels, kernel_size, stride, padding, *, dtype=np.float64):
    layer = Conv2D(in_channels, out_channels, kernel_size, stride=stride, padding=padding, rng=0,
                   dtype=dtype)
    layer.b.value[...] = np.linspace(-0.5, 0.5, out_channels)
    return layer


# ---------------------------------------------------------------------------
# Conv2D
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("setting", CONV_SETTINGS, ids=CONV_IDS)
def test_conv_shapes_and_dtype(rng, dtype, setting):
    c_in, c_out, kernel, stride, padding, height, width = setting
    layer = _conv(c_in, c_out, kernel, stride, padding, dtype=dtype)
    kh, kw = layer.kernel_size
    assert layer.W.shape == (c_out, c_in, kh, kw) and layer.b.shape == (c_out,)
    assert layer.W.dtype == dtype and layer.W.value.flags.c_contiguous
    x = rng.standard_normal((3, c_in, height, width)).astype(dtype)
    y = layer.forward(x)
    sh, sw = layer.stride
    ph, pw = layer.padding
    expected = (3, c_out, (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1)
    assert y.shape == expected == (3, *layer.output_shape(height, width))
    assert y.dtype == dtype
    grad_input = layer.backward(np.ones_like(y))
    assert grad_input.shape == x.shape and grad_input.dtype == dtype
    assert layer.W.grad.shape == layer.W.shape and layer.W.grad.dtype == dtype
    assert layer.b.grad.shape == layer.b.shape


def test_conv_by_hand():
    # One 2x2 filter of ones over a 3x3 image: each output is the sum of its window, plus b.
    layer = Conv2D(1, 1, 2, rng=0, dtype=np.float64)
    layer.W.value[...] = 1.0
    layer.b.value[...] = 0.5
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    y = layer.forward(x)
    np.testing.assert_array_equal(y[0, 0], [[8.5, 12.5], [20.5, 24.5]])
    grad_input = layer.backward(np.ones_like(y))
    # The centre pixel is in all four windows, the corners in one each.
    np.testing.assert_array_equal(grad_input[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    np.testing.assert_array_equal(layer.W.grad[0, 0], [[8, 12], [20, 24]])
    np.testing.assert_array_equal(layer.b.grad, [4.0])


@pytest.mark.parametrize("setting", CONV_SETTINGS, ids=CONV_IDS)
def test_conv_gradcheck(rng, setting):
    c_in, c_out, kernel, stride, padding, height, width = setting
    layer = _conv(c_in, c_out, kernel, stride, padding)
    x = rng.standard_normal((2, c_in, height, width))
    report = check_layer(layer, x, rng=rng)
    assert report.passed(1e-7), str(report)
    assert set(report.errors) == {"input", "0.W", "1.b"}


def test_conv_float32_agrees_with_float64(rng):
    x = rng.standard_normal((4, 2, 9, 7))
    layers = {dtype: _conv(2, 3, (3, 2), 2, 1, dtype=dtype) for dtype in DTYPES}
    grad = rng.standard_normal((4, *layers[np.float64].output_shape(9, 7)))
    results = {}
    for dtype, layer in layers.items():
        y = layer.forward(x.astype(dtype))
        results[dtype] = (y, layer.backward(grad.astype(dtype)), layer.W.grad, layer.b.grad)
    for ours, wanted in zip(results[np.float32], results[np.float64], strict=True):
        assert ours.dtype == np.float32
        assert_close(ours, wanted.astype(np.float32))


def test_conv_fill_parameter_grads_is_backward_without_the_input_gradient(rng):
    layer = _conv(2, 3, 3, 1, 1)
    x = rng.standard_normal((3, 2, 5, 5))
    grad = rng.standard_normal(layer.forward(x).shape)
    layer.backward(grad)
    W_grad, b_grad = layer.W.grad.copy(), layer.b.grad.copy()
    layer.W.grad[...] = 0
    layer.fill_parameter_grads(grad)
    np.testing.assert_array_equal(layer.W.grad, W_grad)
    np.testing.assert_array_equal(layer.b.grad, b_grad)


@pytest.mark.parametrize("method", ["backward", "fill_parameter_grads"])
def test_conv_backward_without_forward_raises(method):
    layer = Conv2D(1, 2, 3, rng=0)
    with pytest.raises(RuntimeError, match=r"Conv2D.backward\(\) was called before forward"):
        getattr(layer, method)(np.zeros((1, 2, 3, 3), np.float32))


def test_conv_he_normal_counts_the_window_in_fan_in():
    layer = Conv2D(16, 64, 3, rng=0, dtype=np.float64)  # fan_in = 16 * 9 = 144
    assert layer.W.value.std() == pytest.approx(np.sqrt(2 / 144), rel=0.05)
    assert layer.W.value.mean() == pytest.approx(0, abs=0.01)
    glorot = Conv2D(16, 64, 3, init="glorot_uniform", rng=0, dtype=np.float64)
    # Glorot's fan_out counts the window too: limit sqrt(6 / (144 + 576)).
    assert np.abs(glorot.W.value).max() <= np.sqrt(6 / (144 + 576))
    assert np.abs(glorot.W.value).max() > 0.95 * np.sqrt(6 / (144 + 576))


def test_conv_same_seed_same_weights_and_a_callable_init():
    np.testing.assert_array_equal(Conv2D(2, 3, 3, rng=7).W.value, Conv2D(2, 3, 3, rng=7).W.value)

    def ones(shape, rng):
        return np.ones(shape)

    layer = Conv2D(2, 3, (3, 1), init=ones, rng=0)
    np.testing.assert_array_equal(layer.W.value, np.ones((3, 2, 3, 1), np.float32))
    assert layer.init == "ones"


def test_conv_rejects_an_init_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"init returned an array of shape \(3, 2\)"):
        Conv2D(2, 3, 3, init=lambda shape, rng: np.ones((3, 2)))


def test_conv_attributes_and_config():
    layer = Conv2D(3, 8, (5, 3), stride=2, padding=(2, 1), init="he_uniform", rng=0)
    assert (layer.in_channels, layer.out_channels) == (3, 8)
    assert (layer.kernel_size, layer.stride, layer.padding) == ((5, 3), (2, 2), (2, 1))
    assert layer.dtype == np.float32
    assert layer.get_config() == {"in_channels": 3, "out_channels": 8, "kernel_size": [5, 3],
                                  "stride": [2, 2], "padding": [2, 1], "init": "he_uniform",
                                  "dtype": "float32"}
    rebuilt = Conv2D(**layer.get_config(), rng=0)
    np.testing.assert_array_equal(rebuilt.W.value, layer.W.value)
    assert layer.parameters() == [layer.W, layer.b]
    assert [p.name for p in layer.parameters()] == ["W", "b"]
    assert repr(layer).startswith("Conv2D(in_channels=3, out_channels=8, kernel_size=[5, 3]")


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"in_channels": 0}, ValueError, "in_channels must be >= 1, got 0"),
    ({"out_channels": -2}, ValueError, "out_channels must be >= 1, got -2"),
    ({"kernel_size": 0}, ValueError, "kernel_size must be >= 1, got 0"),
    ({"kernel_size": (3, -1)}, ValueError, "kernel_size must be >= 1, got -1"),
    ({"kernel_size": (3, 3, 3)}, ValueError, r"kernel_size must be an integer or a pair"),
    ({"kernel_size": "3"}, TypeError, "kernel_size must be an integer"),
    ({"kernel_size": 2.5}, TypeError, r"kernel_size must be an integer or a pair"),
    ({"stride": 0}, ValueError, "stride must be >= 1, got 0"),
    ({"padding": -1}, ValueError, "padding must be >= 0, got -1"),
    ({"padding": (1, True)}, TypeError, "padding must be an integer, got bool"),
    ({"init": "nope"}, ValueError, "init must be one of"),
    ({"dtype": np.int32}, ValueError, "dtype must be float32 or float64"),
])
def test_conv_constructor_validation(kwargs, error, match):
    arguments = {"in_channels": 1, "out_channels": 2, "kernel_size": 3, **kwargs}
    with pytest.raises(error, match=match):
        Conv2D(**arguments)


def test_conv_refuses_a_2d_batch_and_suggests_reshape():
    layer = Conv2D(1, 2, 3, rng=0)
    with pytest.raises(ValueError, match=r"\(n_samples, channels, height, width\).*shape "
                                         r"\(5, 784\).*Reshape\(\(1, 28, 28\)\)"):
        layer.forward(np.zeros((5, 784), np.float32))


def test_conv_names_both_channel_counts():
    layer = Conv2D(3, 2, 3, rng=0)
    with pytest.raises(ValueError, match=r"expects 3 input channel\(s\), but x has 1"):
        layer.forward(np.zeros((2, 1, 8, 8), np.float32))


@pytest.mark.parametrize(("padding", "match"), [
    (0, r"kernel_size \(5, 5\) is larger than the input, 4 x 4"),
    (1, r"kernel_size \(7, 7\) is larger than the padded input, 6 x 6"),
])
def test_conv_refuses_a_kernel_larger_than_the_padded_input(padding, match):
    layer = Conv2D(1, 1, 5 + 2 * padding, padding=padding, rng=0)
    with pytest.raises(ValueError, match=match):
        layer.forward(np.zeros((1, 1, 4, 4), np.float32))


def test_conv_inference_changes_nothing(rng):
    layer = _conv(2, 3, 3, 1, 1)
    x_train, x_test = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((4, 2, 6, 6))
    layer.forward(x_train)
    before = copy.deepcopy(vars(layer))
    layer.forward(x_test, training=False)
    after = vars(layer)
    assert before.keys() == after.keys()
    for key, value in before.items():
        other = after[key]
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(other, value)
        elif hasattr(value, "value"):  # a Parameter
            np.testing.assert_array_equal(other.value, value.value)
        else:
            assert other == value, key
    # backward still belongs to the training batch, not to the inference call in between.
    assert layer.backward(np.ones((2, 3, 5, 5))).shape == x_train.shape


def test_fresh_conv_inference_leaves_no_cache():
    layer = Conv2D(1, 2, 3, rng=0)
    layer.forward(np.zeros((1, 1, 5, 5), np.float32), training=False)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((1, 2, 3, 3), np.float32))


# ---------------------------------------------------------------------------
# Pools
# ---------------------------------------------------------------------------

POOLS = [MaxPool2D, AvgPool2D]
POOL_SETTINGS = [(2, None, 6, 6), (2, None, 7, 5), (3, 2, 7, 9), ((2, 3), (1, 2), 6, 7)]
POOL_IDS = ["tiled", "tiled-crop", "overlapping", "non-square"]


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize(("kernel", "stride", "height", "width"), POOL_SETTINGS, ids=POOL_IDS)
def test_pool_gradcheck(rng, pool, kernel, stride, height, width):
    layer = pool(kernel, stride)
    x = rng.standard_normal((2, 3, height, width))
    report = check_layer(layer, x, rng=rng)
    assert report.passed(1e-7), str(report)


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_pool_shapes_and_dtype(rng, pool, dtype):
    layer = pool(3, 2)
    x = rng.standard_normal((2, 3, 9, 8)).astype(dtype)
    y = layer.forward(x)
    assert y.shape == (2, 3, 4, 3) == (2, 3, *layer.output_shape(9, 8)) and y.dtype == dtype
    grad_input = layer.backward(np.ones_like(y))
    assert grad_input.shape == x.shape and grad_input.dtype == dtype
    assert layer.parameters() == []


@pytest.mark.parametrize("pool", POOLS)
def test_pool_stride_defaults_to_the_kernel_and_config(pool):
    layer = pool((2, 3))
    assert layer.kernel_size == layer.stride == (2, 3)
    assert layer.get_config() == {"kernel_size": [2, 3], "stride": [2, 3]}
    assert pool(**pool(3, 1).get_config()).stride == (1, 1)


def test_max_pool_routes_the_gradient_to_the_maximum():
    x = np.array([[[[1.0, 5.0], [3.0, 2.0]]]])
    layer = MaxPool2D(2)
    np.testing.assert_array_equal(layer.forward(x), [[[[5.0]]]])
    np.testing.assert_array_equal(layer.backward(np.array([[[[7.0]]]])),
                                  [[[[0.0, 7.0], [0.0, 0.0]]]])


def test_max_pool_gives_a_tie_to_the_first_maximum():
    x = np.zeros((1, 1, 2, 2))
    layer = MaxPool2D(2)
    layer.forward(x)
    np.testing.assert_array_equal(layer.backward(np.ones((1, 1, 1, 1))),
                                  [[[[1.0, 0.0], [0.0, 0.0]]]])


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 2), st.integers(1, 3),
                                        st.integers(3, 8), st.integers(3, 8)),
                  elements=st.floats(-1e6, 1e6)),
       st.integers(1, 3), st.integers(1, 3))
def test_pools_never_invent_a_value(x, kernel, stride):
    maxima = MaxPool2D(kernel, stride).forward(x)
    means = AvgPool2D(kernel, stride).forward(x)
    # Each maximum is an element of its own window; each mean lies between its window's
    # minimum and maximum.
    windows = np.lib.stride_tricks.sliding_window_view(x, (kernel, kernel), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]
    assert maxima.shape == means.shape == windows.shape[:4]
    in_window = (windows == maxima[..., None, None]).any(axis=(4, 5))
    assert in_window.all()
    low, high = windows.min(axis=(4, 5)), windows.max(axis=(4, 5))
    slack = 1e-12 * np.maximum(np.abs(low), np.abs(high))
    assert np.all(means >= low - slack) and np.all(means <= high + slack)
    np.testing.assert_array_equal(maxima, high)


@pytest.mark.parametrize("pool", [*POOLS, GlobalAvgPool2D])
def test_pool_refuses_a_2d_batch(pool):
    layer = pool(2) if pool is not GlobalAvgPool2D else pool()
    with pytest.raises(ValueError, match=rf"{pool.__name__} takes a batch of images \(n_samples, "
                                         r"channels, height, width\).*Reshape"):
        layer.forward(np.zeros((3, 16)))


@pytest.mark.parametrize("pool", POOLS)
def test_pool_refuses_a_window_larger_than_the_image(pool):
    with pytest.raises(ValueError, match=r"kernel_size \(3, 3\) is larger than the input, 2 x 5"):
        pool(3).forward(np.zeros((1, 1, 2, 5)))


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize(("kwargs", "match"), [({"kernel_size": 0}, "kernel_size must be >= 1"),
                                               ({"kernel_size": 2, "stride": 0},
                                                "stride must be >= 1")])
def test_pool_constructor_validation(pool, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pool(**kwargs)


@pytest.mark.parametrize("pool", [MaxPool2D(2), AvgPool2D(2), GlobalAvgPool2D()])
def test_pool_backward_without_forward_raises(pool):
    with pytest.raises(RuntimeError, match="before forward"):
        pool.backward(np.zeros((1, 1, 1, 1)))


@pytest.mark.parametrize("pool", [MaxPool2D(2), AvgPool2D(3, 1), GlobalAvgPool2D()])
def test_pool_inference_leaves_the_training_cache(rng, pool):
    x_train = rng.standard_normal((2, 2, 6, 6))
    y = pool.forward(x_train)
    grad = rng.standard_normal(y.shape)
    expected = pool.backward(grad)
    pool.forward(rng.standard_normal((5, 2, 8, 8)), training=False)
    np.testing.assert_array_equal(pool.backward(grad), expected)


def test_global_avg_pool(rng):
    layer = GlobalAvgPool2D()
    x = rng.standard_normal((3, 4, 5, 6))
    assert_close(layer.forward(x), x.mean(axis=(2, 3)))
    report = check_layer(layer, x, rng=rng)
    assert report.passed(1e-7), str(report)
    assert layer.get_config() == {}


# ---------------------------------------------------------------------------
# Small networks, checked end to end
# ---------------------------------------------------------------------------


def _small_cnn():
    rng = np.random.default_rng(3)
    return Sequential([
        Reshape((1, 7, 7)),
        Conv2D(1, 3, 3, padding=1, rng=rng, dtype=np.float64),
        ReLU(),
        MaxPool2D(2),
        BatchNorm(3, dtype=np.float64),
        Flatten(),
        Dense(27, 4, rng=rng, dtype=np.float64),
    ])


def _other_cnn():
    """Stride 2, padding 2, an overlapping average pool, layer norm and a global pool."""
    rng = np.random.default_rng(4)
    return Sequential([
        Conv2D(2, 3, (3, 2), stride=2, padding=2, rng=rng, dtype=np.float64),
        Tanh(),
        AvgPool2D(2, 1),
        LayerNorm((3, 3, 4), dtype=np.float64),
        Conv2D(3, 4, 1, rng=rng, dtype=np.float64),
        GlobalAvgPool2D(),
    ])


def test_small_cnn_gradcheck_with_its_loss(rng):
    model = _small_cnn()
    model[4].gamma.value[...] = [1.5, 0.7, 1.1]
    model[4].beta.value[...] = [0.1, -0.2, 0.3]
    X = rng.standard_normal((6, 49))
    y = rng.integers(0, 4, 6)
    report = check_model(model, SoftmaxCrossEntropy(), X, y)
    assert report.passed(1e-7), str(report)
    assert set(report.errors) == {"input", "0.W", "1.b", "2.gamma", "3.beta", "4.W", "5.b"}


def test_other_cnn_gradcheck(rng):
    model = _other_cnn()
    x = rng.standard_normal((3, 2, 5, 7))
    assert model.forward(x).shape == (3, 4)
    report = check_layer(model, x, rng=rng)
    assert report.passed(1e-7), str(report)


def test_small_cnn_shapes_through_the_model(rng):
    model = _small_cnn()
    assert model.in_features == 49 and model.out_features == 4
    assert model.dtype == np.float64
    assert list(model.buffers()) == ["4.running_mean", "4.running_var"]
    assert _other_cnn().in_features is None and _other_cnn().out_features == 4
    logits = model.forward(rng.standard_normal((5, 49)), training=False)
    assert logits.shape == (5, 4)
    # The image form of the same batch is accepted too: Reshape takes 49 values in any shape.
    assert model.forward(rng.standard_normal((5, 1, 7, 7)), training=False).shape == (5, 4)


@pytest.mark.parametrize("module", ["nnscratch.nn.conv", "nnscratch.nn.normalization",
                                    "nnscratch.nn.layers"])
def test_the_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
