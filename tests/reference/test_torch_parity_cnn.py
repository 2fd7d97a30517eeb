"""Parity with PyTorch in float64: convolution, pooling, batch and layer norm, and a small CNN
trained ten Adam steps by both.

Our layouts are PyTorch's (NCHW images, ``Conv2D.W`` of shape (out_channels, in_channels, kh,
kw)), so weights copy across as they are. Both libraries sum the same products in other orders,
so outputs, gradients and running statistics agree to rounding (:func:`_numerics.assert_close`,
1e-12 relative in float64), and trained weights to 1e-10.
"""

from __future__ import annotations

import numpy as np
import pytest

from _numerics import assert_close
from nnscratch.nn.activations import ReLU, Tanh
from nnscratch.nn.conv import AvgPool2D, Conv2D, GlobalAvgPool2D, MaxPool2D
from nnscratch.nn.layers import Dense, Flatten
from nnscratch.nn.losses import SoftmaxCrossEntropy
from nnscratch.nn.model import Sequential
from nnscratch.nn.normalization import BatchNorm, LayerNorm
from nnscratch.nn.optimizers import Adam
from nnscratch.nn.training import fit

torch = pytest.importorskip(
    "torch", reason="PyTorch not installed: pip install torch==2.13.0 for the parity tests"
)
nn = torch.nn

#: Ten optimiser steps carry every step's rounding into the next.
RTOL_TRAINED = 1e-10


def _tensor(array, *, requires_grad=False):
    return torch.tensor(np.asarray(array), dtype=torch.float64, requires_grad=requires_grad)


def _numpy(tensor):
    return tensor.detach().numpy()


def _run_torch(module, x, grad_output):
    """Torch's output and input gradient for ``x`` with ``grad_output`` flowing back."""
    x_torch = _tensor(x, requires_grad=True)
    y_torch = module(x_torch)
    y_torch.backward(_tensor(grad_output))
    return _numpy(y_torch), _numpy(x_torch.grad)


def _conv_like(layer):
    conv = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                     stride=layer.stride, padding=layer.padding, dtype=torch.float64)
    with torch.no_grad():
        conv.weight.copy_(_tensor(layer.W.value))
        conv.bias.copy_(_tensor(layer.b.value))
    return conv


# (in_channels, out_channels, kernel_size, stride, padding, height, width): odd image sizes,
# stride 2, padding 1 and 2, non-square kernels.
CONV_SETTINGS = [
    (1, 4, 3, 1, 1, 9, 7),
    (3, 2, 3, 2, 1, 11, 9),
    (2, 3, (3, 2), 2, 2, 7, 13),
    (2, 2, (2, 5), (1, 2), (2, 1), 5, 9),
    (3, 4, 5, 3, 2, 15, 15),
]
CONV_IDS = ["3x3-pad1", "stride2-pad1", "3x2-stride2-pad2", "2x5-mixed", "5x5-stride3-pad2"]


@pytest.mark.parametrize("setting", CONV_SETTINGS, ids=CONV_IDS)
def test_conv2d(rng, setting):
    c_in, c_out, kernel, stride, padding, height, width = setting
    ours = Conv2D(c_in, c_out, kernel, stride=stride, padding=padding, rng=0,
                  dtype=np.float64)
    ours.b.value[...] = rng.standard_normal(c_out)
    theirs = _conv_like(ours)
    x = rng.standard_normal((4, c_in, height, width))
    y = ours.forward(x)
    grad_output = rng.standard_normal(y.shape)
    y_torch, grad_input_torch = _run_torch(theirs, x, grad_output)
    assert_close(y, y_torch)
    assert_close(ours.backward(grad_output), grad_input_torch)
    assert_close(ours.W.grad, _numpy(theirs.weight.grad))
    assert_close(ours.b.grad, _numpy(theirs.bias.grad))


POOL_SETTINGS = [(2, None, 9, 7), (3, 2, 11, 9), ((2, 3), (1, 2), 7, 9), (3, None, 8, 10)]
POOL_IDS = ["2x2", "3x3-stride2", "2x3-stride12", "3x3-crop"]


@pytest.mark.parametrize(("kernel", "stride", "height", "width"), POOL_SETTINGS, ids=POOL_IDS)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool(rng, kind, kernel, stride, height, width):
    ours = (MaxPool2D if kind == "max" else AvgPool2D)(kernel, stride)
    theirs = (nn.MaxPool2d if kind == "max" else nn.AvgPool2d)(ours.kernel_size, ours.stride)
    # After a ReLU, whole windows of zeros: ties, whose gradient both send to the first.
    x = np.maximum(rng.standard_normal((3, 2, height, width)), 0)
    y = ours.forward(x)
    grad_output = rng.standard_normal(y.shape)
    y_torch, grad_input_torch = _run_torch(theirs, x, grad_output)
    assert_close(y, y_torch)
    assert_close(ours.backward(grad_output), grad_input_torch)


def test_global_avg_pool(rng):
    x = rng.standard_normal((3, 4, 7, 5))
    grad_output = rng.standard_normal((3, 4))
    ours = GlobalAvgPool2D()
    y_torch, grad_input_torch = _run_torch(lambda t: nn.AdaptiveAvgPool2d(1)(t)[:, :, 0, 0], x,
                                           grad_output)
    assert_close(ours.forward(x), y_torch)
    assert_close(ours.backward(grad_output), grad_input_torch)


@pytest.mark.parametrize("shape", [(7, 3), (5, 3, 7, 9)], ids=["BatchNorm1d", "BatchNorm2d"])
def test_batch_norm_steps_and_running_statistics(rng, shape):
    ours = BatchNorm(3, momentum=0.3, eps=1e-4, dtype=np.float64)
    ours.gamma.value[...] = rng.standard_normal(3)
    ours.beta.value[...] = rng.standard_normal(3)
    module = nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d
    theirs = module(3, momentum=0.3, eps=1e-4, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight.copy_(_tensor(ours.gamma.value))
        theirs.bias.copy_(_tensor(ours.beta.value))
    for _ in range(3):
        x = 1.5 + 2 * rng.standard_normal(shape)
        grad_output = rng.standard_normal(shape)
        theirs.zero_grad()
        y_torch, grad_input_torch = _run_torch(theirs, x, grad_output)
        assert_close(ours.forward(x), y_torch)
        assert_close(ours.backward(grad_output), grad_input_torch)
        assert_close(ours.gamma.grad, _numpy(theirs.weight.grad))
        assert_close(ours.beta.grad, _numpy(theirs.bias.grad))
        assert_close(ours.running_mean, _numpy(theirs.running_mean))
        assert_close(ours.running_var, _numpy(theirs.running_var))
    theirs.eval()
    x = rng.standard_normal(shape)
    assert_close(ours.forward(x, training=False), _numpy(theirs(_tensor(x))))


@pytest.mark.parametrize(("normalized_shape", "shape"),
                         [(6, (5, 6)), ((7, 9), (3, 2, 7, 9)), ((2, 7, 9), (3, 2, 7, 9))])
def test_layer_norm(rng, normalized_shape, shape):
    ours = LayerNorm(normalized_shape, eps=1e-4, dtype=np.float64)
    ours.gamma.value[...] = rng.standard_normal(ours.gamma.shape)
    ours.beta.value[...] = rng.standard_normal(ours.beta.shape)
    theirs = nn.LayerNorm(normalized_shape, eps=1e-4, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight.copy_(_tensor(ours.gamma.value))
        theirs.bias.copy_(_tensor(ours.beta.value))
    x = 2 + rng.standard_normal(shape)
    grad_output = rng.standard_normal(shape)
    y_torch, grad_input_torch = _run_torch(theirs, x, grad_output)
    assert_close(ours.forward(x), y_torch)
    assert_close(ours.backward(grad_output), grad_input_torch)
    assert_close(ours.gamma.grad, _numpy(theirs.weight.grad))
    assert_close(ours.beta.grad, _numpy(theirs.bias.grad))


# ---------------------------------------------------------------------------
# A small CNN, ten Adam steps in each library
# ---------------------------------------------------------------------------

N_SAMPLES, BATCH_SIZE, EPOCHS = 20, 4, 2  # 5 steps per epoch: 10 steps


def _small_cnn():
    rng = np.random.default_rng(5)
    model = Sequential([
        Conv2D(1, 3, 3, padding=1, rng=rng, dtype=np.float64),
        ReLU(),
        MaxPool2D(2),
        BatchNorm(3, dtype=np.float64),
        Conv2D(3, 4, (3, 2), stride=2, padding=2, rng=rng, dtype=np.float64),
        Tanh(),
        Flatten(),
        Dense(4 * 3 * 4, 3, rng=rng, dtype=np.float64),
    ])
    for layer in (model[0], model[4], model[7]):
        layer.b.value[...] = 0.1 * rng.standard_normal(layer.b.shape)
    return model


def _torch_copy(model):
    layers = []
    for layer in model.layers:
        if isinstance(layer, Conv2D):
            layers.append(_conv_like(layer))
        elif isinstance(layer, Dense):
            linear = nn.Linear(layer.in_features, layer.out_features, dtype=torch.float64)
            with torch.no_grad():
                linear.weight.copy_(_tensor(layer.W.value.T))
                linear.bias.copy_(_tensor(layer.b.value))
            layers.append(linear)
        elif isinstance(layer, BatchNorm):
            layers.append(nn.BatchNorm2d(layer.num_features, dtype=torch.float64))
        elif isinstance(layer, MaxPool2D):
            layers.append(nn.MaxPool2d(layer.kernel_size, layer.stride))
        else:
            layers.append({ReLU: nn.ReLU, Tanh: nn.Tanh, Flatten: nn.Flatten}[type(layer)]())
    return nn.Sequential(*layers)


def test_ten_adam_steps_of_a_small_cnn_match():
    data = np.random.default_rng(6)
    X = data.standard_normal((N_SAMPLES, 1, 7, 9))
    y = data.integers(0, 3, N_SAMPLES)
    ours = _small_cnn()
    theirs = _torch_copy(ours)

    history = fit(ours, X, y, loss=SoftmaxCrossEntropy(),
                  optimizer=Adam(ours.parameters(), learning_rate=0.01), epochs=EPOCHS,
                  batch_size=BATCH_SIZE, shuffle=False, verbose=0)

    optimizer = torch.optim.Adam(theirs.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    their_losses = []
    for _ in range(EPOCHS):
        losses = []
        for start in range(0, N_SAMPLES, BATCH_SIZE):
            optimizer.zero_grad()
            loss = loss_fn(theirs(_tensor(X[start:start + BATCH_SIZE])),
                           torch.tensor(y[start:start + BATCH_SIZE]))
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        their_losses.append(float(np.mean(losses)))

    assert_close(history.loss, their_losses, rtol=RTOL_TRAINED)
    for param, their_param in zip(ours.parameters(), theirs.parameters(), strict=True):
        expected = _numpy(their_param)
        if param.value.ndim == 2:  # Dense.W is the transpose of Linear.weight
            expected = expected.T
        assert_close(param.value, expected, rtol=RTOL_TRAINED)
    batch_norm = theirs[3]
    assert_close(ours[3].running_mean, _numpy(batch_norm.running_mean), rtol=RTOL_TRAINED)
    assert_close(ours[3].running_var, _numpy(batch_norm.running_var), rtol=RTOL_TRAINED)
    # The weights really moved: parity is not two networks standing still.
    assert not np.allclose(ours[0].W.value, _small_cnn()[0].W.value, rtol=1e-3)
    # And inference agrees, with the running statistics.
    theirs.eval()
    X_test = data.standard_normal((5, 1, 7, 9))
    assert_close(ours.forward(X_test, training=False), _numpy(theirs(_tensor(X_test))),
                 rtol=RTOL_TRAINED)
