"""Tests for nnscratch.nn.layers: Dense, Dropout, Flatten and Reshape — shapes, equations,
dtypes and errors."""

from __future__ import annotations

import numpy as np
import pytest

from _numerics import assert_close
from nnscratch.nn.gradcheck import check_layer
from nnscratch.nn.layers import Dense, Dropout, Flatten, Layer, Reshape
from nnscratch.nn.parameter import Parameter

DTYPES = [np.float32, np.float64]


# ---------------------------------------------------------------------------
# Dense
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("n_samples", "in_features", "out_features"), [(1, 1, 1), (5, 3, 2),
                                                                         (7, 4, 9)])
def test_dense_shapes(rng, dtype, n_samples, in_features, out_features):
    layer = Dense(in_features, out_features, rng=0, dtype=dtype)
    assert layer.W.shape == (in_features, out_features)
    assert layer.b.shape == (out_features,)
    x = rng.standard_normal((n_samples, in_features)).astype(dtype)
    y = layer.forward(x)
    assert y.shape == (n_samples, out_features)
    grad_input = layer.backward(np.ones_like(y))
    assert grad_input.shape == x.shape
    assert layer.W.grad.shape == layer.W.shape
    assert layer.b.grad.shape == layer.b.shape


def test_dense_biases_start_at_zero():
    layer = Dense(3, 4, rng=0)
    np.testing.assert_array_equal(layer.b.value, np.zeros(4, dtype=np.float32))


def test_dense_forward_and_backward_by_hand():
    layer = Dense(2, 3, rng=0, dtype=np.float64)
    layer.W.value[...] = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    layer.b.value[...] = [0.5, -1.0, 2.0]
    x = np.array([[1.0, -1.0], [2.0, 0.5]])
    # Row 0: [1 - 4, 2 - 5, 3 - 6] + b; row 1: [2 + 2, 4 + 2.5, 6 + 3] + b.
    expected = np.array([[-2.5, -4.0, -1.0], [4.5, 5.5, 11.0]])
    np.testing.assert_array_equal(layer.forward(x), expected)

    grad_output = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]])
    grad_input = layer.backward(grad_output)
    # dW = x^T G, db = sum of G's rows, dx = G W^T.
    np.testing.assert_array_equal(layer.W.grad, [[5.0, 2.0, -1.0], [-0.0, 0.5, 1.0]])
    np.testing.assert_array_equal(layer.b.grad, [3.0, 1.0, -1.0])
    np.testing.assert_array_equal(grad_input, [[-2.0, -2.0], [4.0, 13.0]])


@pytest.mark.parametrize("out_features", [4, 1])  # 1: the outer-product path of backward
def test_dense_matches_matrix_formula(rng, out_features):
    layer = Dense(6, out_features, rng=1, dtype=np.float64)
    layer.b.value[...] = rng.standard_normal(out_features)
    x = rng.standard_normal((10, 6))
    grad_output = rng.standard_normal((10, out_features))
    # The layer's products and sums may run along other BLAS paths than these: equal to rounding.
    assert_close(layer.forward(x), x @ layer.W.value + layer.b.value)
    grad_input = layer.backward(grad_output)
    assert_close(layer.W.grad, x.T @ grad_output)
    assert_close(layer.b.grad, grad_output.sum(axis=0))
    assert_close(grad_input, grad_output @ layer.W.value.T)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_single_output_input_gradient_is_the_exact_outer_product(rng, dtype):
    # With one output each entry of G W^T is a single product, so the broadcast form that
    # backward uses must equal the matrix product bit for bit.
    layer = Dense(7, 1, rng=3, dtype=dtype)
    x = rng.standard_normal((33, 7)).astype(dtype)
    layer.forward(x)
    grad_output = rng.standard_normal((33, 1)).astype(dtype)
    np.testing.assert_array_equal(layer.backward(grad_output),
                                  np.matmul(grad_output, layer.W.value.T))


@pytest.mark.parametrize("out_features", [3, 1])
def test_dense_gradcheck(rng, out_features):
    layer = Dense(5, out_features, rng=2, dtype=np.float64)
    layer.b.value[...] = rng.standard_normal(out_features)
    report = check_layer(layer, rng.standard_normal((4, 5)), rng=rng)
    assert set(report.errors) == {"input", "0.W", "1.b"}
    assert report.max_error < 1e-7, str(report)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_keeps_its_dtype(rng, dtype):
    layer = Dense(4, 3, rng=0, dtype=dtype)
    assert layer.W.dtype == dtype and layer.b.dtype == dtype
    assert layer.W.grad.dtype == dtype and layer.b.grad.dtype == dtype
    x = rng.standard_normal((6, 4)).astype(dtype)
    y = layer.forward(x)
    assert y.dtype == dtype
    grad_input = layer.backward(np.ones_like(y))
    assert grad_input.dtype == dtype
    assert layer.W.grad.dtype == dtype and layer.b.grad.dtype == dtype


def test_dense_weights_are_c_contiguous():
    # The tutorial initialiser returns a transposed view; the layer must store a plain array.
    layer = Dense(5, 3, init="tutorial", rng=np.random.RandomState(0), dtype=np.float64)
    assert layer.W.value.flags.c_contiguous


def test_dense_fill_parameter_grads_is_backward_without_the_input_gradient(rng):
    layer = Dense(3, 2, rng=0, dtype=np.float64)
    x = rng.standard_normal((4, 3))
    grad_output = rng.standard_normal((4, 2))
    layer.forward(x)
    assert layer.fill_parameter_grads(grad_output) is None
    W_grad, b_grad = layer.W.grad, layer.b.grad
    layer.backward(grad_output)
    np.testing.assert_array_equal(W_grad, layer.W.grad)  # the same code computes both
    np.testing.assert_array_equal(b_grad, layer.b.grad)


def test_dense_fill_parameter_grads_without_forward_raises():
    with pytest.raises(RuntimeError, match="before forward"):
        Dense(3, 2, rng=0).fill_parameter_grads(np.ones((1, 2), dtype=np.float32))


def test_dense_backward_without_forward_raises():
    layer = Dense(3, 2, rng=0)
    with pytest.raises(RuntimeError, match=r"Dense\.backward\(\) was called before forward\(\)"):
        layer.backward(np.ones((1, 2), dtype=np.float32))


def test_dense_inference_forward_does_not_fill_the_cache():
    layer = Dense(3, 2, rng=0)
    layer.forward(np.ones((2, 3), dtype=np.float32), training=False)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((2, 2), dtype=np.float32))


def test_dense_backward_uses_the_latest_training_batch(rng):
    layer = Dense(3, 2, rng=0, dtype=np.float64)
    first, second = rng.standard_normal((4, 3)), rng.standard_normal((5, 3))
    layer.forward(first)
    layer.forward(second)
    layer.forward(first, training=False)  # inference must not overwrite the cache
    grad_output = np.ones((5, 2))
    layer.backward(grad_output)
    assert_close(layer.W.grad, second.T @ grad_output)


def test_dense_returns_fresh_arrays(rng):
    # A caller may keep an output or gradient: the next call must not overwrite it.
    layer = Dense(3, 2, rng=0, dtype=np.float64)
    y = layer.forward(rng.standard_normal((4, 3)))
    grad_input = layer.backward(rng.standard_normal((4, 2)))
    kept_y, kept_grad = y.copy(), grad_input.copy()
    layer.forward(rng.standard_normal((4, 3)))
    layer.backward(rng.standard_normal((4, 2)))
    np.testing.assert_array_equal(y, kept_y)
    np.testing.assert_array_equal(grad_input, kept_grad)


def test_dense_same_seed_same_weights():
    a = Dense(8, 5, rng=123, dtype=np.float64)
    b = Dense(8, 5, rng=123, dtype=np.float64)
    c = Dense(8, 5, rng=124, dtype=np.float64)
    np.testing.assert_array_equal(a.W.value, b.W.value)
    assert not np.array_equal(a.W.value, c.W.value)


def test_dense_accepts_a_callable_initializer():
    def constant(shape, rng):
        return np.full(shape, 0.25)

    layer = Dense(2, 3, init=constant, dtype=np.float64)
    np.testing.assert_array_equal(layer.W.value, np.full((2, 3), 0.25))
    assert layer.get_config()["init"] == "constant"


def test_dense_parameters_and_config():
    layer = Dense(4, 2, init="he_normal", rng=0, dtype=np.float64)
    params = layer.parameters()
    assert all(isinstance(p, Parameter) for p in params)
    assert [p.name for p in params] == ["W", "b"]
    assert params[0] is layer.W and params[1] is layer.b
    assert layer.get_config() == {
        "in_features": 4, "out_features": 2, "init": "he_normal", "dtype": "float64",
    }
    assert repr(layer) == (
        "Dense(in_features=4, out_features=2, init='he_normal', dtype='float64')"
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"in_features": 0, "out_features": 2}, ValueError, r"in_features must be >= 1, got 0"),
        ({"in_features": 2, "out_features": -1}, ValueError, r"out_features must be >= 1"),
        ({"in_features": 2.0, "out_features": 2}, TypeError, r"in_features must be an integer"),
        ({"in_features": True, "out_features": 2}, TypeError, r"in_features must be an integer"),
        ({"in_features": 2, "out_features": "3"}, TypeError, r"out_features must be an integer"),
        ({"in_features": 2, "out_features": 2, "dtype": np.int32}, ValueError,
         r"dtype must be float32 or float64, got int32"),
        ({"in_features": 2, "out_features": 2, "dtype": np.float16}, ValueError,
         r"dtype must be float32 or float64"),
        ({"in_features": 2, "out_features": 2, "init": "nope"}, ValueError,
         r"init must be one of .* got 'nope'"),
        ({"in_features": 2, "out_features": 2, "rng": "seed"}, TypeError,
         r"rng must be a numpy Generator, an int seed or None"),
    ],
)
def test_dense_constructor_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        Dense(**kwargs)


def test_layer_base_is_abstract():
    layer = Layer()
    with pytest.raises(NotImplementedError):
        layer.forward(np.ones((1, 1)))
    with pytest.raises(NotImplementedError):
        layer.backward(np.ones((1, 1)))
    assert layer.parameters() == []
    assert layer.get_config() == {}


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_preserves_the_mean(p):
    layer = Dropout(p, rng=0)
    x = np.ones((400, 500), dtype=np.float64)
    y = layer.forward(x)
    kept = y != 0
    # Survivors are scaled by 1 / (1 - p), the others are zero.
    np.testing.assert_allclose(y[kept], 1.0 / (1.0 - p), rtol=1e-15)
    # 200,000 Bernoulli draws: the kept fraction is 1 - p within a few standard errors.
    standard_error = np.sqrt(p * (1 - p) / x.size)
    assert abs(kept.mean() - (1 - p)) < 5 * standard_error
    assert abs(y.mean() - 1.0) < 5 * standard_error / (1 - p)


def test_dropout_backward_uses_the_same_mask(rng):
    layer = Dropout(0.3, rng=1)
    x = rng.standard_normal((50, 20))
    y = layer.forward(x)
    grad_input = layer.backward(np.ones_like(x))
    # The gradient is the mask scaled by 1 / (1 - p): zero exactly where the output was dropped.
    np.testing.assert_array_equal(grad_input == 0, y == 0)
    np.testing.assert_allclose(grad_input[y != 0], 1 / 0.7, rtol=1e-15)
    np.testing.assert_allclose(y, x * grad_input, rtol=1e-15)


def test_dropout_is_identity_at_inference(rng):
    layer = Dropout(0.5, rng=0)
    x = rng.standard_normal((8, 6))
    np.testing.assert_array_equal(layer.forward(x, training=False), x)


def test_dropout_p_zero_is_identity(rng):
    layer = Dropout(0.0, rng=0)
    x = rng.standard_normal((8, 6))
    np.testing.assert_array_equal(layer.forward(x), x)
    grad_output = rng.standard_normal((8, 6))
    np.testing.assert_array_equal(layer.backward(grad_output), grad_output)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("source", [np.random.default_rng, np.random.RandomState])
def test_dropout_keeps_the_dtype(dtype, source):
    layer = Dropout(0.5, rng=source(0))
    x = np.ones((10, 4), dtype=dtype)
    assert layer.forward(x).dtype == dtype
    assert layer.backward(x).dtype == dtype


def test_dropout_same_seed_same_mask():
    x = np.ones((20, 10))
    first = Dropout(0.5, rng=7).forward(x)
    second = Dropout(0.5, rng=7).forward(x)
    np.testing.assert_array_equal(first, second)


def test_dropout_has_no_parameters():
    layer = Dropout(0.25)
    assert layer.parameters() == []
    assert layer.get_config() == {"p": 0.25}


def test_dropout_backward_without_forward_raises():
    with pytest.raises(RuntimeError, match=r"Dropout\.backward\(\) was called before forward"):
        Dropout(0.5, rng=0).backward(np.ones((2, 2)))


@pytest.mark.parametrize(
    ("p", "error", "match"),
    [
        (1.0, ValueError, r"p must be < 1\.0, got 1\.0"),
        (1.5, ValueError, r"p must be < 1\.0"),
        (-0.1, ValueError, r"p must be >= 0\.0, got -0\.1"),
        (float("nan"), ValueError, r"p must be finite"),
        ("0.5", TypeError, r"p must be a real number"),
        (None, TypeError, r"p must be a real number"),
    ],
)
def test_dropout_p_out_of_range_raises(p, error, match):
    with pytest.raises(error, match=match):
        Dropout(p)


def test_dropout_rejects_a_bad_rng():
    with pytest.raises(TypeError, match="rng must be a numpy Generator"):
        Dropout(0.5, rng=0.5)


# ---------------------------------------------------------------------------
# Flatten and Reshape
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 3, 5, 2), (4, 7), (4, 2, 3)])
def test_flatten_and_back(rng, shape):
    layer = Flatten()
    x = rng.standard_normal(shape)
    y = layer.forward(x)
    assert y.shape == (4, int(np.prod(shape[1:])))
    np.testing.assert_array_equal(y, x.reshape(4, -1))  # C order: channels, rows, columns
    grad = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(layer.backward(grad), grad.reshape(shape))
    assert layer.parameters() == [] and layer.get_config() == {}


@pytest.mark.parametrize(("shape", "input_shape"), [((1, 28, 28), (5, 784)), ((2, 3), (5, 6)),
                                                    ((12,), (5, 3, 2, 2))])
def test_reshape_and_back(rng, shape, input_shape):
    layer = Reshape(shape)
    x = rng.standard_normal(input_shape)
    y = layer.forward(x)
    assert y.shape == (5, *shape)
    np.testing.assert_array_equal(y.reshape(input_shape), x)
    grad = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(layer.backward(grad), grad.reshape(input_shape))


@pytest.mark.parametrize("layer", [Flatten(), Reshape((3, 2))])
def test_flatten_and_reshape_gradcheck(rng, layer):
    report = check_layer(layer, rng.standard_normal((3, 2, 3)), rng=rng)
    assert report.passed(1e-7), str(report)


def test_reshape_attributes_and_config():
    layer = Reshape([1, 28, 28])
    assert layer.shape == (1, 28, 28) and layer.n_features == 784
    assert layer.get_config() == {"shape": [1, 28, 28]}
    assert Reshape(**layer.get_config()).shape == layer.shape
    assert repr(layer) == "Reshape(shape=[1, 28, 28])"


def test_reshape_names_both_sizes():
    with pytest.raises(ValueError, match=r"Reshape\(\(1, 28, 28\)\) needs 784 values per sample, "
                                         r"but x has shape \(5, 100\) \(100 per sample\)"):
        Reshape((1, 28, 28)).forward(np.zeros((5, 100)))


@pytest.mark.parametrize(("shape", "error", "match"), [
    ((), ValueError, r"shape must have at least one entry, e.g. \(1, 28, 28\)"),
    ((1, 0, 28), ValueError, "shape must be >= 1, got 0"),
    ((1, 2.0), TypeError, "shape must be an integer"),
    (784, TypeError, r"shape must be a tuple of integers such as \(1, 28, 28\), got 784"),
])
def test_reshape_constructor_validation(shape, error, match):
    with pytest.raises(error, match=match):
        Reshape(shape)


def test_flatten_refuses_a_batch_without_sample_axes():
    with pytest.raises(ValueError, match=r"Flatten takes a batch \(n_samples, \.\.\.\)"):
        Flatten().forward(np.zeros(5))


@pytest.mark.parametrize("layer", [Flatten(), Reshape((4,))])
def test_flatten_and_reshape_inference_leave_no_cache(layer):
    layer.forward(np.zeros((2, 4)), training=False)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((2, 4)))
    layer.forward(np.zeros((2, 2, 2)))
    layer.forward(np.zeros((3, 4)), training=False)  # does not replace the training cache
    assert layer.backward(np.zeros((2, 4))).shape == (2, 2, 2)


@pytest.mark.parametrize(("shape", "match"), [
    ((4, 48), r"Dense\(36, 3\) takes rows \(n_samples, 36\), but its input has shape \(4, 48\)\. "
              r"Build it with in_features=48"),
    ((4, 3, 4, 4), r"input has shape \(4, 3, 4, 4\)\. Build it with in_features=48; after a "
                   r"convolution, put Flatten\(\) before it"),
])
def test_dense_names_the_width_it_takes(shape, match):
    layer = Dense(36, 3, rng=0)
    with pytest.raises(ValueError, match=match):
        layer.forward(np.zeros(shape, np.float32))
    with pytest.raises(ValueError, match=match):
        layer.forward(np.zeros(shape, np.float32), training=False)
