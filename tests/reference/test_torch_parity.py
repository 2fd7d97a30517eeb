"""Parity with PyTorch in float64: layers, activations, losses and optimiser steps.

Weights are copied across (our ``W`` is ``(in_features, out_features)``, the transpose of
``torch.nn.Linear.weight``), so outputs, gradients and trained weights must agree to rounding:
PyTorch multiplies with its own kernels and evaluates exp/tanh/log with its own vectorised
functions, so every comparison is :func:`_numerics.assert_close`, never bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

from _numerics import assert_close
from nnscratch.nn.activations import ELU, GELU, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from nnscratch.nn.layers import Dense
from nnscratch.nn.losses import BinaryCrossEntropy, MeanSquaredError, SoftmaxCrossEntropy
from nnscratch.nn.model import Sequential
from nnscratch.nn.optimizers import SGD, Adam, AdamW, clip_grad_norm
from nnscratch.nn.parameter import Parameter
from nnscratch.nn.training import fit

torch = pytest.importorskip(
    "torch", reason="PyTorch not installed: pip install torch==2.13.0 for the parity tests"
)
nn = torch.nn

#: Derivatives of the transcendental activations and losses: PyTorch's vectorised exp, tanh and
#: log differ from NumPy's by a few ulp, which a derivative's subtractions amplify.
RTOL_DERIVATIVE = 1e-11
#: Ten optimiser steps carry every step's rounding into the next.
RTOL_TRAINED = 1e-10


def _tensor(array, *, requires_grad=False):
    return torch.tensor(np.asarray(array), dtype=torch.float64, requires_grad=requires_grad)


def _numpy(tensor):
    return tensor.detach().numpy()


def _linear_like(dense):
    """A torch Linear holding a copy of a Dense layer's weights."""
    linear = nn.Linear(dense.in_features, dense.out_features, dtype=torch.float64)
    with torch.no_grad():
        linear.weight.copy_(_tensor(dense.W.value.T))
        linear.bias.copy_(_tensor(dense.b.value))
    return linear


# ---------------------------------------------------------------------------
# Layers and activations
# ---------------------------------------------------------------------------


def test_dense(rng):
    ours = Dense(5, 3, rng=0, dtype=np.float64)
    ours.b.value[...] = rng.standard_normal(3)
    theirs = _linear_like(ours)
    x = rng.standard_normal((7, 5))
    grad_output = rng.standard_normal((7, 3))

    x_torch = _tensor(x, requires_grad=True)
    y_torch = theirs(x_torch)
    y_torch.backward(_tensor(grad_output))

    assert_close(ours.forward(x), _numpy(y_torch))
    assert_close(ours.backward(grad_output), _numpy(x_torch.grad))
    assert_close(ours.W.grad, _numpy(theirs.weight.grad).T)
    assert_close(ours.b.grad, _numpy(theirs.bias.grad))


ACTIVATION_PAIRS = [
    (Identity, lambda: nn.Identity()),
    (ReLU, lambda: nn.ReLU()),
    (lambda: LeakyReLU(0.1), lambda: nn.LeakyReLU(0.1)),
    (Sigmoid, lambda: nn.Sigmoid()),
    (Tanh, lambda: nn.Tanh()),
    (lambda: ELU(1.3), lambda: nn.ELU(1.3)),
    (GELU, lambda: nn.GELU(approximate="tanh")),
    (Softmax, lambda: nn.Softmax(dim=1)),
]


@pytest.mark.parametrize(("make_ours", "make_theirs"), ACTIVATION_PAIRS,
                         ids=["identity", "relu", "leaky_relu", "sigmoid", "tanh", "elu", "gelu",
                              "softmax"])
def test_activation(make_ours, make_theirs, rng):
    x = 3 * rng.standard_normal((6, 5))
    x = x + 0.05 * np.sign(x)  # away from the kinks, where conventions may differ
    grad_output = rng.standard_normal((6, 5))
    ours = make_ours()
    x_torch = _tensor(x, requires_grad=True)
    y_torch = make_theirs()(x_torch)
    y_torch.backward(_tensor(grad_output))
    assert_close(ours.forward(x), _numpy(y_torch))
    assert_close(ours.backward(grad_output), _numpy(x_torch.grad), rtol=RTOL_DERIVATIVE)


@pytest.mark.parametrize(("make_ours", "make_theirs"),
                         [ACTIVATION_PAIRS[1], ACTIVATION_PAIRS[2], ACTIVATION_PAIRS[5]],
                         ids=["relu", "leaky_relu", "elu"])
def test_derivative_at_the_kink_follows_torch(make_ours, make_theirs):
    # At exactly 0 each side picks a one-sided derivative; both must pick the same one.
    x = np.array([[-1.0, 0.0, 1.0], [0.0, -0.0, 2.0]])
    ours = make_ours()
    x_torch = _tensor(x, requires_grad=True)
    make_theirs()(x_torch).backward(torch.ones_like(x_torch))
    ours.forward(x)
    np.testing.assert_allclose(ours.backward(np.ones_like(x)), _numpy(x_torch.grad), rtol=1e-15)


# ---------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------


def _compare_loss(ours, logits, y, their_loss_of, sample_weight=None):
    """Compare value and dL/dlogits; ``their_loss_of(logits_tensor)`` builds torch's loss."""
    logits_torch = _tensor(logits, requires_grad=True)
    value = their_loss_of(logits_torch)
    value.backward()
    assert_close(ours.forward(logits, y, sample_weight=sample_weight), value.item())
    assert_close(ours.backward(), _numpy(logits_torch.grad), rtol=RTOL_DERIVATIVE)


def _weighted_mean(per_sample, weights):
    """PyTorch's class-weighted mean, sum(w l) / sum(w), for any per-example weights."""
    weights = _tensor(weights)
    return (weights * per_sample).sum() / weights.sum()


def test_bce_with_logits(rng):
    logits, y = 3 * rng.standard_normal((9, 1)), rng.integers(0, 2, 9)
    _compare_loss(BinaryCrossEntropy(), logits, y,
                  lambda z: nn.BCEWithLogitsLoss()(z, _tensor(y[:, None])))


def test_bce_with_logits_weighted(rng):
    logits, y = 3 * rng.standard_normal((9, 1)), rng.integers(0, 2, 9)
    sample_weight = rng.random(9) + 0.1
    class_weight = np.array([0.4, 2.5])
    weights = sample_weight * class_weight[y]
    _compare_loss(
        BinaryCrossEntropy(class_weight=class_weight), logits, y,
        lambda z: _weighted_mean(
            nn.BCEWithLogitsLoss(reduction="none")(z, _tensor(y[:, None]))[:, 0], weights),
        sample_weight=sample_weight,
    )


def test_cross_entropy(rng):
    logits, y = 3 * rng.standard_normal((9, 4)), rng.integers(0, 4, 9)
    _compare_loss(SoftmaxCrossEntropy(), logits, y,
                  lambda z: nn.CrossEntropyLoss()(z, torch.tensor(y)))


def test_cross_entropy_with_class_weights(rng):
    logits, y = 3 * rng.standard_normal((9, 4)), rng.integers(0, 4, 9)
    class_weight = np.array([0.5, 2.0, 1.0, 3.0])
    _compare_loss(SoftmaxCrossEntropy(class_weight=class_weight), logits, y,
                  lambda z: nn.CrossEntropyLoss(weight=_tensor(class_weight))(z, torch.tensor(y)))


def test_cross_entropy_with_sample_and_class_weights(rng):
    logits, y = 3 * rng.standard_normal((9, 4)), rng.integers(0, 4, 9)
    sample_weight = rng.random(9) + 0.1
    class_weight = np.array([0.5, 2.0, 1.0, 3.0])
    _compare_loss(
        SoftmaxCrossEntropy(class_weight=class_weight), logits, y,
        lambda z: _weighted_mean(nn.CrossEntropyLoss(reduction="none")(z, torch.tensor(y)),
                                 sample_weight * class_weight[y]),
        sample_weight=sample_weight,
    )


def test_cross_entropy_soft_targets(rng):
    logits = 3 * rng.standard_normal((9, 4))
    target = rng.random((9, 4))
    target /= target.sum(axis=1, keepdims=True)
    _compare_loss(SoftmaxCrossEntropy(), logits, target,
                  lambda z: nn.CrossEntropyLoss()(z, _tensor(target)))


def test_mse(rng):
    predictions, target = rng.standard_normal((9, 3)), rng.standard_normal((9, 3))
    _compare_loss(MeanSquaredError(), predictions, target,
                  lambda z: nn.MSELoss()(z, _tensor(target)))


# ---------------------------------------------------------------------------
# Optimisers: one toy network, trained the same way by both
# ---------------------------------------------------------------------------

N_SAMPLES, BATCH_SIZE, EPOCHS = 20, 4, 2  # 5 steps per epoch: 10 steps
TOY_SIZES = [(4, 8), (8, 3)]

# name: (our optimiser factory, torch optimiser factory, clip_norm)
OPTIMIZER_CASES = {
    "sgd": (lambda p: SGD(p, 0.1), lambda p: torch.optim.SGD(p, lr=0.1), None),
    "sgd_l2": (lambda p: SGD(p, 0.1, weight_decay=0.05),
               lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.05), None),
    "momentum": (lambda p: SGD(p, 0.1, momentum=0.9),
                 lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), None),
    "nesterov": (lambda p: SGD(p, 0.1, momentum=0.9, nesterov=True),
                 lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True), None),
    "adam": (lambda p: Adam(p, 0.01), lambda p: torch.optim.Adam(p, lr=0.01), None),
    "adam_betas": (lambda p: Adam(p, 0.02, beta1=0.8, beta2=0.99, eps=1e-6),
                   lambda p: torch.optim.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-6), None),
    "adam_l2": (lambda p: Adam(p, 0.01, weight_decay=0.1),
                lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1), None),
    "adamw": (lambda p: AdamW(p, 0.01, weight_decay=0.1),
              lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1), None),
    "sgd_clip": (lambda p: SGD(p, 0.5, momentum=0.9, clip_norm=0.05),
                 lambda p: torch.optim.SGD(p, lr=0.5, momentum=0.9), 0.05),
    "adam_clip": (lambda p: Adam(p, 0.01, clip_norm=0.05),
                  lambda p: torch.optim.Adam(p, lr=0.01), 0.05),
}


def _toy_data():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((N_SAMPLES, TOY_SIZES[0][0]))
    y = rng.integers(0, TOY_SIZES[-1][1], N_SAMPLES)
    return X, y


def _toy_model():
    """Dense → Tanh → Dense, with non-zero biases so their updates are compared too."""
    rng = np.random.default_rng(2)
    first, second = (Dense(n_in, n_out, rng=rng, dtype=np.float64) for n_in, n_out in TOY_SIZES)
    for dense in (first, second):
        dense.b.value[...] = 0.1 * rng.standard_normal(dense.out_features)
    return Sequential([first, Tanh(), second])


def _torch_copy(model):
    """The same network in PyTorch, built layer by layer from ours."""
    converters = {Dense: _linear_like, Tanh: lambda layer: nn.Tanh()}
    return nn.Sequential(*(converters[type(layer)](layer) for layer in model.layers))


def _train_torch(network, make_optimizer, clip_norm, X, y):
    optimizer = make_optimizer(network.parameters())
    loss_fn = nn.CrossEntropyLoss()
    epoch_losses = []
    for _ in range(EPOCHS):
        losses = []
        for start in range(0, N_SAMPLES, BATCH_SIZE):
            optimizer.zero_grad()
            loss = loss_fn(network(_tensor(X[start:start + BATCH_SIZE])),
                           torch.tensor(y[start:start + BATCH_SIZE]))
            loss.backward()
            if clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(network.parameters(), clip_norm)
            optimizer.step()
            losses.append(loss.item())
        epoch_losses.append(float(np.mean(losses)))
    return epoch_losses


@pytest.mark.parametrize("case", sorted(OPTIMIZER_CASES))
def test_training_steps_match(case):
    make_ours, make_theirs, clip_norm = OPTIMIZER_CASES[case]
    X, y = _toy_data()
    ours = _toy_model()
    theirs = _torch_copy(ours)

    history = fit(ours, X, y, loss=SoftmaxCrossEntropy(),
                  optimizer=make_ours(ours.parameters()), epochs=EPOCHS,
                  batch_size=BATCH_SIZE, shuffle=False, verbose=0)
    their_losses = _train_torch(theirs, make_theirs, clip_norm, X, y)

    assert_close(history.loss, their_losses, rtol=RTOL_TRAINED)
    their_params = [_numpy(p) for p in theirs.parameters()]
    for param, theirs_value in zip(ours.parameters(), their_params, strict=True):
        expected = theirs_value.T if param.name == "W" else theirs_value
        assert_close(param.value, expected, rtol=RTOL_TRAINED)
    # The weights really moved: parity is not two networks standing still.
    assert not np.allclose(ours[0].W.value, _toy_model()[0].W.value, rtol=1e-3)


def test_clip_grad_norm_matches_torch(rng):
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
    params = []
    for grad in grads:
        param = Parameter(np.zeros_like(grad))
        param.grad[...] = grad
        params.append(param)
    tensors = [_tensor(np.zeros_like(grad), requires_grad=True) for grad in grads]
    for tensor, grad in zip(tensors, grads, strict=True):
        tensor.grad = _tensor(grad)
    total = clip_grad_norm(params, 0.5)
    their_total = torch.nn.utils.clip_grad_norm_(tensors, 0.5)
    assert_close(total, their_total.item())
    for param, tensor in zip(params, tensors, strict=True):
        assert_close(param.grad, _numpy(tensor.grad))
