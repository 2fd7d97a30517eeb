"""Tests for nnscratch.nn.optimizers: update rules by hand, clipping, schedules and validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nnscratch.nn.optimizers import (
    OPTIMIZERS,
    SGD,
    Adam,
    AdamW,
    ConstantSchedule,
    CosineDecay,
    ExponentialDecay,
    LinearWarmup,
    Optimizer,
    StepDecay,
    clip_grad_norm,
)
from nnscratch.nn.parameter import Parameter

# Every optimiser configuration, each a factory (params, learning_rate) -> Optimizer.
CONFIGS = {
    "sgd": lambda params, lr: SGD(params, lr),
    "sgd_decay": lambda params, lr: SGD(params, lr, weight_decay=0.1),
    "momentum": lambda params, lr: SGD(params, lr, momentum=0.9),
    "nesterov": lambda params, lr: SGD(params, lr, momentum=0.9, nesterov=True),
    "adam": lambda params, lr: Adam(params, lr),
    "adam_l2": lambda params, lr: Adam(params, lr, weight_decay=0.1),
    "adamw": lambda params, lr: AdamW(params, lr, weight_decay=0.1),
    "clipped": lambda params, lr: Adam(params, lr, clip_norm=0.5),
}


def _param(value, grad):
    param = Parameter(np.array(value, dtype=np.float64), name="w")
    param.grad[...] = grad
    return param


@settings(max_examples=60, deadline=None)
@given(
    config=st.sampled_from(sorted(CONFIGS)),
    value=hnp.arrays(np.float64, st.integers(1, 6), elements=st.floats(-1e3, 1e3)),
    grads=st.lists(hnp.arrays(np.float64, 6, elements=st.floats(-1e3, 1e3)), min_size=1,
                   max_size=4),
)
def test_learning_rate_zero_changes_nothing(config, value, grads):
    param = Parameter(value.copy(), name="w")
    optimizer = CONFIGS[config]([param], 0.0)
    for grad in grads:
        param.grad[...] = grad[: value.size]
        optimizer.step()
    np.testing.assert_array_equal(param.value, value)


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_updates_in_place_and_keeps_dtype(config):
    param = Parameter(np.ones(3, dtype=np.float32))
    param.grad[...] = [0.5, -0.5, 2.0]
    array = param.value
    CONFIGS[config]([param], 0.1).step()
    assert param.value is array
    assert param.value.dtype == np.float32 and param.grad.dtype == np.float32
    assert not np.array_equal(param.value, np.ones(3))


def test_sgd_plain_step():
    w, g = np.array([1.0, -2.0, 3.0]), np.array([0.5, 0.25, -1.0])
    param = _param(w, g)
    SGD([param], learning_rate=0.1).step()
    np.testing.assert_array_equal(param.value, w - 0.1 * g)


def test_sgd_weight_decay_adds_l2_gradient():
    param = _param([2.0, -4.0], [1.0, 1.0])
    SGD([param], learning_rate=0.5, weight_decay=0.1).step()
    # g = [1 + 0.2, 1 - 0.4]
    np.testing.assert_allclose(param.value, [2.0 - 0.5 * 1.2, -4.0 - 0.5 * 0.6], rtol=1e-15)


def test_momentum_two_steps_by_hand():
    param = _param([1.0], [2.0])
    optimizer = SGD([param], learning_rate=0.1, momentum=0.9)
    optimizer.step()  # v = 2, w = 1 - 0.2 = 0.8
    np.testing.assert_allclose(param.value, [0.8], rtol=1e-15)
    param.grad[...] = 1.0
    optimizer.step()  # v = 0.9 * 2 + 1 = 2.8, w = 0.8 - 0.28 = 0.52
    np.testing.assert_allclose(optimizer.velocities[0], [2.8], rtol=1e-15)
    np.testing.assert_allclose(param.value, [0.52], rtol=1e-14)


def test_nesterov_two_steps_by_hand():
    param = _param([1.0], [2.0])
    optimizer = SGD([param], learning_rate=0.1, momentum=0.9, nesterov=True)
    optimizer.step()  # v = 2, step = g + 0.9 v = 3.8, w = 1 - 0.38 = 0.62
    np.testing.assert_allclose(param.value, [0.62], rtol=1e-14)
    param.grad[...] = 1.0
    optimizer.step()  # v = 2.8, step = 1 + 2.52 = 3.52, w = 0.62 - 0.352 = 0.268
    np.testing.assert_allclose(param.value, [0.268], rtol=1e-13)


def test_adam_two_steps_by_hand():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    g1, g2 = np.array([0.3, -2.0]), np.array([-0.1, 1.0])
    param = _param([1.0, 1.0], g1)
    optimizer = Adam([param], lr, beta1=b1, beta2=b2, eps=eps)
    optimizer.step()
    param.grad[...] = g2
    optimizer.step()
    m = (1 - b1) * g1
    v = (1 - b2) * g1**2
    w = 1.0 - lr * (m / (1 - b1)) / (np.sqrt(v / (1 - b2)) + eps)
    m = b1 * m + (1 - b1) * g2
    v = b2 * v + (1 - b2) * g2**2
    w = w - lr * (m / (1 - b1**2)) / (np.sqrt(v / (1 - b2**2)) + eps)
    np.testing.assert_allclose(param.value, w, rtol=1e-13)
    assert optimizer.iterations == 2


@pytest.mark.parametrize("grad", [[1e-3, -5.0, 1e4], [0.7, 0.7, -0.7]])
def test_adam_first_step_has_magnitude_lr(grad):
    # m / sqrt(v) after bias correction is g / |g|, so the first step is lr * sign(g).
    param = _param([0.0, 0.0, 0.0], grad)
    Adam([param], learning_rate=0.01).step()
    np.testing.assert_allclose(param.value, -0.01 * np.sign(grad), rtol=1e-4)


def test_adamw_decay_is_decoupled():
    lr, decay = 0.01, 0.1
    w = np.array([2.0, -3.0])
    g = np.array([0.5, 0.5])
    adamw = _param(w, g)
    AdamW([adamw], lr, weight_decay=decay).step()
    adam = _param(w * (1 - lr * decay), g)  # decay first, then a plain Adam step
    Adam([adam], lr).step()
    np.testing.assert_allclose(adamw.value, adam.value, rtol=1e-15)
    # Coupled (L2) decay enters the gradient instead, and Adam's normalisation hides it.
    coupled = _param(w, g)
    Adam([coupled], lr, weight_decay=decay).step()
    assert not np.allclose(coupled.value, adamw.value, rtol=1e-6)


def test_adamw_decays_weights_with_zero_gradient():
    param = _param([2.0, -3.0], [0.0, 0.0])
    AdamW([param], learning_rate=0.1, weight_decay=0.5).step()
    np.testing.assert_allclose(param.value, [2.0 * 0.95, -3.0 * 0.95], rtol=1e-15)


def test_adamw_default_weight_decay_is_pytorchs():
    assert AdamW([_param([1.0], [0.0])]).weight_decay == 0.01


def test_zero_grad():
    params = [_param([1.0, 2.0], [3.0, 4.0]), _param([[1.0]], [[5.0]])]
    SGD(params).zero_grad()
    for param in params:
        np.testing.assert_array_equal(param.grad, 0)


# ---------------------------------------------------------------------------
# Gradient clipping
# ---------------------------------------------------------------------------


def test_clip_grad_norm_rescales_the_global_norm():
    params = [_param([0.0, 0.0], [3.0, 0.0]), _param([0.0], [4.0])]
    total = clip_grad_norm(params, max_norm=1.0)
    assert total == pytest.approx(5.0)
    np.testing.assert_allclose(params[0].grad, [3.0 / (5 + 1e-6), 0.0], rtol=1e-15)
    np.testing.assert_allclose(params[1].grad, [4.0 / (5 + 1e-6)], rtol=1e-15)
    new_norm = math.sqrt(sum(float(np.sum(p.grad**2)) for p in params))
    assert new_norm == pytest.approx(1.0, rel=1e-6)


def test_clip_grad_norm_leaves_small_gradients_alone():
    params = [_param([0.0, 0.0], [0.3, 0.4])]
    assert clip_grad_norm(params, max_norm=1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(params[0].grad, [0.3, 0.4])


def test_clip_norm_is_applied_before_the_step():
    param = _param([0.0, 0.0], [30.0, 40.0])
    SGD([param], learning_rate=1.0, clip_norm=5.0).step()
    np.testing.assert_allclose(param.value, [-3.0, -4.0], rtol=1e-6)


# ---------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------


def test_constant_schedule():
    assert [ConstantSchedule()(epoch) for epoch in range(3)] == [1.0, 1.0, 1.0]


def test_step_decay():
    schedule = StepDecay(step_size=3, gamma=0.5)
    assert [schedule(epoch) for epoch in range(8)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]


def test_exponential_decay():
    schedule = ExponentialDecay(0.9)
    np.testing.assert_allclose([schedule(epoch) for epoch in range(4)], [1, 0.9, 0.81, 0.729])


def test_cosine_decay():
    schedule = CosineDecay(total_epochs=4, min_factor=0.2)
    expected = [0.2 + 0.4 * (1 + math.cos(math.pi * e / 4)) for e in range(5)]
    np.testing.assert_allclose([schedule(e) for e in range(5)], expected, rtol=1e-15)
    assert schedule(0) == 1.0
    assert schedule(2) == pytest.approx(0.6)
    assert schedule(4) == pytest.approx(0.2)
    assert schedule(10) == pytest.approx(0.2)  # stays at the floor after the last epoch


def test_linear_warmup():
    plain = LinearWarmup(3)
    assert [plain(epoch) for epoch in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    then_decay = LinearWarmup(1, after=ExponentialDecay(0.5))
    assert [then_decay(epoch) for epoch in range(4)] == [0.5, 1.0, 0.5, 0.25]
    assert [LinearWarmup(0)(epoch) for epoch in range(2)] == [1.0, 1.0]


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


def _params():
    return [_param([1.0], [0.0])]


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: SGD([]), ValueError, r"The optimizer got no parameters"),
        (lambda: SGD(_params(), -0.1), ValueError, r"learning_rate must be >= 0\.0, got -0\.1"),
        (lambda: SGD(_params(), "0.1"), TypeError, r"learning_rate must be a real number"),
        (lambda: SGD(_params(), math.inf), ValueError, r"learning_rate must be finite"),
        (lambda: SGD(_params(), momentum=1.0), ValueError, r"momentum must be < 1\.0, got 1\.0"),
        (lambda: SGD(_params(), momentum=-0.5), ValueError, r"momentum must be >= 0\.0"),
        (lambda: SGD(_params(), nesterov=True), ValueError, r"nesterov=True needs momentum > 0"),
        (lambda: SGD(_params(), weight_decay=-1), ValueError, r"weight_decay must be >= 0\.0"),
        (lambda: SGD(_params(), clip_norm=0), ValueError, r"clip_norm must be > 0\.0, got 0\.0"),
        (lambda: Adam(_params(), beta1=1.0), ValueError, r"beta1 must be < 1\.0"),
        (lambda: Adam(_params(), beta2=-0.1), ValueError, r"beta2 must be >= 0\.0"),
        (lambda: Adam(_params(), eps=-1e-8), ValueError, r"eps must be >= 0\.0"),
        (lambda: AdamW(_params(), weight_decay=-0.01), ValueError, r"weight_decay must be >= 0"),
        (lambda: StepDecay(0), ValueError, r"step_size must be >= 1, got 0"),
        (lambda: StepDecay(2.5), TypeError, r"step_size must be an integer"),
        (lambda: StepDecay(2, gamma=-0.1), ValueError, r"gamma must be >= 0\.0"),
        (lambda: ExponentialDecay(-1.0), ValueError, r"gamma must be >= 0\.0"),
        (lambda: CosineDecay(0), ValueError, r"total_epochs must be >= 1"),
        (lambda: CosineDecay(5, min_factor=1.5), ValueError, r"min_factor must be <= 1\.0"),
        (lambda: LinearWarmup(-1), ValueError, r"warmup_epochs must be >= 0"),
    ],
)
def test_validation_errors(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_zero_momentum_is_accepted_as_an_integer():
    optimizer = SGD(_params(), learning_rate=1, momentum=0)
    assert optimizer.momentum == 0.0 and optimizer.velocities == []


def test_registry_and_base():
    assert OPTIMIZERS == {"sgd": SGD, "adam": Adam, "adamw": AdamW}
    with pytest.raises(NotImplementedError):
        Optimizer(_params(), 0.1).step()
