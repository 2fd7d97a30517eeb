"""Tests for nnscratch.nn.model: whole-model gradient checks, build_mlp and Sequential, with
dense layers and over images."""

from __future__ import annotations

import numpy as np
import pytest

from _concurrency import call_concurrently
from _numerics import assert_close
from nnscratch.nn.activations import (
    ELU,
    GELU,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Tanh,
    get_activation,
)
from nnscratch.nn.conv import Conv2D, GlobalAvgPool2D, MaxPool2D
from nnscratch.nn.gradcheck import check_layer, check_model
from nnscratch.nn.layers import Dense, Dropout, Flatten, Reshape
from nnscratch.nn.losses import BinaryCrossEntropy, MeanSquaredError, SoftmaxCrossEntropy
from nnscratch.nn.model import Sequential, build_mlp
from nnscratch.nn.normalization import BatchNorm

ACTIVATION_NAMES = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu"]
N_SAMPLES, IN_FEATURES, N_CLASSES = 6, 4, 3

# (loss factory, out_features, label factory)
LOSS_CASES = {
    "bce": (BinaryCrossEntropy, 1, lambda rng: rng.integers(0, 2, N_SAMPLES)),
    "sce": (SoftmaxCrossEntropy, N_CLASSES, lambda rng: rng.integers(0, N_CLASSES, N_SAMPLES)),
    "mse": (MeanSquaredError, 2, lambda rng: rng.standard_normal((N_SAMPLES, 2))),
}


def _nonzero_biases(model, rng):
    # Zero biases would hide a wrong bias gradient less well; random ones test more.
    for param in model.parameters():
        if param.name == "b":
            param.value[...] = 0.1 * rng.standard_normal(param.shape)


@pytest.mark.parametrize("loss_name", sorted(LOSS_CASES))
@pytest.mark.parametrize("hidden", [(5,), (5, 4)], ids=["2-layer", "3-layer"])
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_whole_model_gradcheck(activation, hidden, loss_name, rng):
    loss_cls, out_features, make_labels = LOSS_CASES[loss_name]
    model = build_mlp(IN_FEATURES, hidden, out_features, activation=activation, rng=1,
                      dtype=np.float64)
    _nonzero_biases(model, rng)
    X = rng.standard_normal((N_SAMPLES, IN_FEATURES))
    report = check_model(model, loss_cls(), X, make_labels(rng))
    n_dense = len(hidden) + 1
    # Keys index model.parameters(): W and b alternate, one pair per Dense layer.
    expected_keys = {f"{i}.{'b' if i % 2 else 'W'}" for i in range(2 * n_dense)}
    assert set(report.errors) == {"input"} | expected_keys
    assert report.max_error < 1e-7, str(report)


def test_gradcheck_with_class_weights(rng):
    model = build_mlp(IN_FEATURES, (5,), N_CLASSES, activation="tanh", rng=0, dtype=np.float64)
    loss = SoftmaxCrossEntropy(class_weight=[0.5, 2.0, 1.0])
    report = check_model(model, loss, rng.standard_normal((N_SAMPLES, IN_FEATURES)),
                         rng.integers(0, N_CLASSES, N_SAMPLES))
    assert report.max_error < 1e-7, str(report)


def test_sequential_as_a_layer_gradcheck(rng):
    model = build_mlp(IN_FEATURES, (5, 3), 2, activation="gelu", rng=0, dtype=np.float64)
    _nonzero_biases(model, rng)
    report = check_layer(model, rng.standard_normal((N_SAMPLES, IN_FEATURES)), rng=rng)
    assert report.max_error < 1e-7, str(report)


def test_forward_is_the_composition_of_the_layers(rng):
    model = build_mlp(IN_FEATURES, (5,), 2, activation="tanh", rng=0, dtype=np.float64)
    X = rng.standard_normal((N_SAMPLES, IN_FEATURES))
    first, second = model[0], model[2]
    expected = np.tanh(X @ first.W.value + first.b.value) @ second.W.value + second.b.value
    assert_close(model.forward(X), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_flows_through(dtype, rng):
    model = build_mlp(IN_FEATURES, (5,), 2, activation="elu", rng=0, dtype=dtype)
    assert model.dtype == dtype
    X = rng.standard_normal((N_SAMPLES, IN_FEATURES)).astype(dtype)
    y = model.forward(X)
    assert y.dtype == dtype
    assert model.backward(np.ones_like(y)).dtype == dtype
    assert all(p.grad.dtype == dtype for p in model.parameters())


def test_inference_from_many_threads_at_once_matches_one_thread(rng):
    # forward(training=False) writes no state, so threads sharing a model cannot disturb
    # each other, even while the caches of a training step are in place.
    model = build_mlp(IN_FEATURES, (32, 16), 3, activation="sigmoid", dropout=0.3, rng=0,
                      dtype=np.float64)
    model.forward(rng.standard_normal((N_SAMPLES, IN_FEATURES)))
    batches = [rng.standard_normal((n, IN_FEATURES)) for n in (1, 5, 64, 300)]
    expected = [model.forward(batch, training=False) for batch in batches]
    for thread in call_concurrently(lambda x: model.forward(x, training=False), batches):
        for index, output in thread:
            assert_close(output, expected[index])


@pytest.mark.parametrize("first", ["dense", "dropout"])
def test_fill_parameter_grads_gives_backwards_parameter_gradients(rng, first):
    layers = [Dense(IN_FEATURES, 5, rng=0, dtype=np.float64), ReLU(),
              Dense(5, 2, rng=1, dtype=np.float64)]
    if first == "dropout":  # a first layer without parameters is not visited
        layers.insert(0, Dropout(0.0))
    model = Sequential(layers)
    X = rng.standard_normal((N_SAMPLES, IN_FEATURES))
    grad_output = rng.standard_normal((N_SAMPLES, 2))
    model.forward(X)
    assert model.fill_parameter_grads(grad_output) is None
    grads = [p.grad for p in model.parameters()]
    model.forward(X)
    assert model.backward(grad_output).shape == X.shape
    for grad, param in zip(grads, model.parameters(), strict=True):
        np.testing.assert_array_equal(param.grad, grad)  # the same code computes both


class _NoBackward(Identity):
    """A parameter-free layer whose backward must not run."""

    def backward(self, grad_output):
        raise AssertionError("the layers before the first one with parameters are skipped")


def test_fill_parameter_grads_stops_at_the_first_layer_with_parameters(rng):
    model = Sequential([_NoBackward(), Dense(IN_FEATURES, 3, rng=0, dtype=np.float64)])
    model.forward(rng.standard_normal((N_SAMPLES, IN_FEATURES)))
    model.fill_parameter_grads(rng.standard_normal((N_SAMPLES, 3)))
    assert model.layers[1].W.grad.shape == (IN_FEATURES, 3)
    Sequential([_NoBackward(), ReLU()]).fill_parameter_grads(np.ones(3))  # nothing to fill


def test_an_empty_model_is_the_identity(rng):
    X = rng.standard_normal((N_SAMPLES, IN_FEATURES))
    model = Sequential([])
    np.testing.assert_array_equal(model.forward(X), X)
    np.testing.assert_array_equal(model.backward(X), X)
    model.fill_parameter_grads(X)
    assert model.parameters() == []


def test_zero_grad(rng):
    model = build_mlp(IN_FEATURES, (5,), 2, rng=0, dtype=np.float64)
    model.forward(rng.standard_normal((N_SAMPLES, IN_FEATURES)))
    model.backward(np.ones((N_SAMPLES, 2)))
    assert any(np.any(p.grad != 0) for p in model.parameters())
    model.zero_grad()
    assert all(np.all(p.grad == 0) for p in model.parameters())


# ---------------------------------------------------------------------------
# build_mlp
# ---------------------------------------------------------------------------


def test_build_mlp_structure():
    model = build_mlp(784, [128, 64], 10, activation="tanh", dropout=0.2, rng=0)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Dense", "Tanh", "Dropout", "Dense", "Tanh", "Dropout", "Dense"]
    dense = [layer for layer in model.layers if isinstance(layer, Dense)]
    assert [(d.in_features, d.out_features) for d in dense] == [(784, 128), (128, 64), (64, 10)]
    assert all(layer.p == 0.2 for layer in model.layers if isinstance(layer, Dropout))
    assert model.in_features == 784 and model.out_features == 10
    assert model.dtype == np.float32
    assert len(model) == 7


def test_build_mlp_without_hidden_layers_is_linear():
    model = build_mlp(5, [], 3, rng=0)
    assert len(model) == 1
    assert (model[0].in_features, model[0].out_features) == (5, 3)


@pytest.mark.parametrize(("activation", "init"), [
    ("relu", "he_normal"), ("leaky_relu", "he_normal"), ("elu", "he_normal"),
    ("gelu", "he_normal"), ("sigmoid", "glorot_uniform"), ("tanh", "glorot_uniform"),
])
def test_build_mlp_default_init(activation, init):
    model = build_mlp(3, [4], 2, activation=activation, rng=0)
    assert all(layer.init == init for layer in model.layers if isinstance(layer, Dense))
    assert type(model[1]) is type(get_activation(activation))


def test_build_mlp_explicit_init():
    model = build_mlp(3, [4], 2, init="lecun_normal", rng=0)
    assert [layer.init for layer in model.layers if isinstance(layer, Dense)] == \
        ["lecun_normal", "lecun_normal"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_build_mlp_same_seed_same_weights(dtype):
    first = build_mlp(10, [8, 6], 3, rng=42, dtype=dtype)
    second = build_mlp(10, [8, 6], 3, rng=42, dtype=dtype)
    other = build_mlp(10, [8, 6], 3, rng=43, dtype=dtype)
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        np.testing.assert_array_equal(a.value, b.value)
    assert not np.array_equal(first.parameters()[0].value, other.parameters()[0].value)


def test_build_mlp_draws_every_layer_from_one_generator():
    # Each layer gets different weights even though they share one seed.
    model = build_mlp(6, [6], 6, activation="tanh", rng=0)
    assert not np.array_equal(model[0].W.value, model[2].W.value)


def test_parameters_order():
    layers = [Dense(4, 5, rng=0), ReLU(), Dense(5, 3, rng=1), Sigmoid(), Dense(3, 1, rng=2)]
    model = Sequential(layers)
    expected = [layers[0].W, layers[0].b, layers[2].W, layers[2].b, layers[4].W, layers[4].b]
    params = model.parameters()
    assert len(params) == len(expected)
    assert all(p is e for p, e in zip(params, expected, strict=True))
    assert [p.name for p in params] == ["W", "b"] * 3


def test_sequential_without_parameters():
    model = Sequential([Tanh(), LeakyReLU()])
    assert model.parameters() == []
    assert model.dtype == np.float64
    assert model.in_features is None and model.out_features is None


def test_sequential_rejects_non_layers():
    with pytest.raises(TypeError, match=r"layers\[1\] must be a Layer, got ufunc"):
        Sequential([Dense(2, 2, rng=0), np.tanh])


def test_sequential_config_and_repr():
    model = Sequential([Dense(2, 3, rng=0), ELU(0.5), GELU()])
    assert model.get_config() == {"layers": [
        {"type": "Dense", "in_features": 2, "out_features": 3, "init": "glorot_uniform",
         "dtype": "float32"},
        {"type": "ELU", "alpha": 0.5},
        {"type": "GELU"},
    ]}
    assert repr(model).startswith("Sequential([\n    Dense(in_features=2")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"activation": "swish"}, ValueError, r"activation must be one of \[.*\], got 'swish'"),
        ({"dropout": 1.0}, ValueError, r"dropout must be < 1\.0"),
        ({"dropout": -0.1}, ValueError, r"dropout must be >= 0\.0"),
        ({"dtype": np.int64}, ValueError, r"dtype must be float32 or float64"),
        ({"hidden_layers": [4, 0]}, ValueError, r"hidden_layers must be >= 1, got 0"),
        ({"in_features": 0}, ValueError, r"in_features must be >= 1"),
        ({"out_features": 0}, ValueError, r"out_features must be >= 1"),
        ({"init": "bogus"}, ValueError, r"init must be one of"),
        ({"rng": "x"}, TypeError, r"rng must be a numpy Generator"),
    ],
)
def test_build_mlp_validation(kwargs, error, match):
    arguments = {"in_features": 3, "hidden_layers": [4], "out_features": 2, **kwargs}
    with pytest.raises(error, match=match):
        build_mlp(**arguments)


# ---------------------------------------------------------------------------
# Models over images: Reshape, Conv2D, pools and normalisation inside a Sequential
# ---------------------------------------------------------------------------


def _cnn(first="reshape", dtype=np.float64):
    layers = [Conv2D(1, 2, 3, padding=1, rng=0, dtype=dtype), ReLU(), MaxPool2D(2),
              BatchNorm(2, dtype=dtype), Flatten(), Dense(2 * 3 * 3, 3, rng=1, dtype=dtype)]
    if first == "reshape":
        layers.insert(0, Reshape((1, 6, 6)))
    return Sequential(layers)


def test_in_and_out_features_of_image_models():
    assert _cnn("reshape").in_features == 36
    assert _cnn("conv").in_features is None
    assert _cnn("conv").out_features == 3
    assert Sequential([Flatten(), Dense(12, 2, rng=0)]).in_features == 12
    assert Sequential([BatchNorm(5), Dense(5, 2, rng=0)]).in_features == 5
    assert Sequential([MaxPool2D(2), Flatten(), Dense(8, 2, rng=0)]).in_features is None
    head = Sequential([Conv2D(3, 10, 1, rng=0), GlobalAvgPool2D()])
    assert (head.in_features, head.out_features) == (None, 10)
    assert Sequential([Conv2D(3, 10, 1, rng=0), Flatten()]).out_features is None
    assert Sequential([Dense(4, 8, rng=0), Reshape((2, 2, 2))]).out_features == 8
    # Dense-only models are unchanged: the first and last Dense layers decide.
    mlp = build_mlp(784, [16], 10, rng=0, dropout=0.2)
    assert (mlp.in_features, mlp.out_features) == (784, 10)
    assert mlp.buffers() == {}


@pytest.mark.parametrize(("model", "X", "match"), [
    (Sequential([Dense(4, 2, rng=0)]), np.zeros((3, 1, 2, 2)),
     r"X has shape \(3, 1, 2, 2\), but the model starts with Dense\(4, 2\), which takes rows "
     r"\(n_samples, 4\); flatten the images with X.reshape\(len\(X\), -1\) or put Flatten"),
    (Sequential([Dense(4, 2, rng=0)]), np.zeros((3, 5)),
     "X has 5 features, but the model expects 4"),
    (Sequential([Flatten(), Dense(4, 2, rng=0)]), np.zeros((3, 1, 3, 3)),
     "X has 9 features, but the model expects 4"),
    (_cnn("reshape"), np.zeros((3, 35)),
     r"X has 35 values per sample \(shape \(3, 35\)\), but the model starts with "
     r"Reshape\(\(1, 6, 6\)\), which needs 36"),
    (_cnn("conv"), np.zeros((3, 36)),
     r"Conv2D takes a batch of images \(n_samples, channels, height, width\), but X has shape "
     r"\(3, 36\).*Reshape"),
    (_cnn("conv"), np.zeros((3, 2, 6, 6)), r"Conv2D expects 1 input channel\(s\), but X has 2"),
    (Sequential([ReLU(), BatchNorm(3)]), np.zeros((3, 4)), "BatchNorm expects 3 features"),
])
def test_check_input_names_the_shape_and_the_fix(model, X, match):
    with pytest.raises(ValueError, match=match):
        model.check_input(X)


def test_check_input_accepts_what_the_model_takes():
    _cnn("reshape").check_input(np.zeros((2, 36)))
    _cnn("reshape").check_input(np.zeros((2, 1, 6, 6)))
    _cnn("conv").check_input(np.zeros((2, 1, 9, 7)))
    Sequential([Flatten(), Dense(4, 2, rng=0)]).check_input(np.zeros((2, 1, 2, 2)))
    Sequential([ReLU()]).check_input(np.zeros((2, 3, 4, 5)))


def test_cnn_gradcheck_without_the_reshape(rng):
    model = _cnn("conv")
    report = check_model(model, SoftmaxCrossEntropy(), rng.standard_normal((5, 1, 6, 6)),
                         rng.integers(0, 3, 5))
    assert report.passed(1e-7), str(report)


def test_cnn_fill_parameter_grads_equals_backward(rng):
    model = _cnn("conv")
    X = rng.standard_normal((4, 1, 6, 6))
    grad_output = rng.standard_normal((4, 3))
    model.forward(X)
    model.backward(grad_output)
    expected = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    model.forward(X)
    model.fill_parameter_grads(grad_output)
    for param, grad in zip(model.parameters(), expected, strict=True):
        assert_close(param.grad, grad)


def test_cnn_inference_from_threads_matches_one_thread(rng):
    model = _cnn("reshape", dtype=np.float32)
    model.forward(rng.standard_normal((8, 36)).astype(np.float32))  # running statistics move
    batches = [rng.standard_normal((n, 36)).astype(np.float32) for n in (1, 5, 33)]
    expected = [model.forward(batch, training=False) for batch in batches]
    state = [array.copy() for array in model.buffers().values()]
    for thread in call_concurrently(lambda x: model.forward(x, training=False), batches):
        for index, output in thread:
            np.testing.assert_array_equal(output, expected[index])
    for before, after in zip(state, model.buffers().values(), strict=True):
        np.testing.assert_array_equal(before, after)


def test_sequential_buffers_are_keyed_by_position():
    model = Sequential([BatchNorm(2), ReLU(), BatchNorm(3)])
    assert list(model.buffers()) == ["0.running_mean", "0.running_var", "2.running_mean",
                                     "2.running_var"]
    assert model.buffers()["2.running_var"] is model[2].running_var
    assert model.get_config()["layers"][0] == {"type": "BatchNorm", "num_features": 2,
                                               "momentum": 0.1, "eps": 1e-5, "dtype": "float32"}
