"""Tests for nnscratch.nn.parameter: a Parameter is an array, its gradient and a name."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch.nn.layers import Dense
from nnscratch.nn.model import Sequential, build_mlp
from nnscratch.nn.optimizers import SGD
from nnscratch.nn.parameter import Parameter


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_value_is_kept_as_given_and_grad_starts_at_zero(dtype):
    value = np.arange(6, dtype=dtype).reshape(2, 3)
    param = Parameter(value, name="W")
    assert param.value is value  # not copied: optimisers update the caller's array
    assert param.grad.shape == value.shape and param.grad.dtype == dtype
    assert not np.any(param.grad)
    assert param.grad is not value
    assert (param.shape, param.dtype, param.name) == ((2, 3), np.dtype(dtype), "W")


def test_zero_grad_clears_the_gradient_and_leaves_the_value():
    param = Parameter(np.ones(3), name="b")
    param.grad = np.array([1.0, -2.0, 3.0])
    param.zero_grad()
    np.testing.assert_array_equal(param.grad, np.zeros(3))
    np.testing.assert_array_equal(param.value, np.ones(3))


def test_repr_names_the_parameter():
    assert repr(Parameter(np.zeros((4, 2), dtype=np.float32), name="W")) == (
        "Parameter(name='W', shape=(4, 2), dtype=float32)")


def test_a_parameter_has_no_other_attributes():
    param = Parameter(np.zeros(2))
    with pytest.raises(AttributeError):
        param.momentum = 0.9  # state belongs to optimisers, not to parameters


def test_a_model_keeps_its_layers_arrays():
    # Building a model moves no weights: each parameter is the array its layer created.
    first, second = Dense(4, 3, rng=0), Dense(3, 2, rng=1)
    arrays = [first.W.value, first.b.value, second.W.value, second.b.value]
    model = Sequential([first, second])
    assert all(p.value is a for p, a in zip(model.parameters(), arrays, strict=True))
    assert all(a.flags.owndata for a in arrays)


def test_backward_sets_each_gradient_and_an_optimiser_updates_each_value_in_place(rng):
    model = build_mlp(3, [4], 2, rng=0, dtype=np.float64)
    values = [p.value for p in model.parameters()]
    before = [v.copy() for v in values]
    model.forward(rng.standard_normal((5, 3)))
    model.backward(np.ones((5, 2)))
    assert all(p.grad.shape == p.shape and p.grad.dtype == p.dtype for p in model.parameters())
    SGD(model.parameters(), learning_rate=0.1).step()
    for param, value, old in zip(model.parameters(), values, before, strict=True):
        assert param.value is value
        np.testing.assert_array_equal(value, old - 0.1 * param.grad)
