"""Tests for nnscratch.nn.losses: gradients, hand formulas, weighting, stability and errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nnscratch.nn.gradcheck import check_loss
from nnscratch.nn.losses import (
    LOSSES,
    BinaryCrossEntropy,
    Loss,
    MeanSquaredError,
    SoftmaxCrossEntropy,
)

N_SAMPLES, N_CLASSES = 7, 4


def _bce_case(rng):
    return rng.standard_normal((N_SAMPLES, 1)) * 2, rng.integers(0, 2, N_SAMPLES)


def _sce_case(rng):
    return rng.standard_normal((N_SAMPLES, N_CLASSES)) * 2, rng.integers(0, N_CLASSES, N_SAMPLES)


def _soft_case(rng):
    target = rng.random((N_SAMPLES, N_CLASSES))
    return rng.standard_normal((N_SAMPLES, N_CLASSES)) * 2, target / target.sum(axis=1,
                                                                                keepdims=True)


def _mse_case(rng):
    return rng.standard_normal((N_SAMPLES, 3)), rng.standard_normal((N_SAMPLES, 3))


# (name, loss factory, case factory, whether class_weight applies)
CASES = [
    ("bce", BinaryCrossEntropy, _bce_case, True),
    ("sce", SoftmaxCrossEntropy, _sce_case, True),
    ("sce_soft", SoftmaxCrossEntropy, _soft_case, False),
    ("mse", MeanSquaredError, _mse_case, False),
]


def _class_weight(case):
    return {"bce": [0.3, 2.0], "sce": [1.0, 0.5, 3.0, 0.25]}.get(case)


GRADCHECK_CASES = [
    pytest.param(cls, make, case if weighted in ("class", "both") else None, weighted,
                 id=f"{case}-{weighted}")
    for case, cls, make, has_classes in CASES
    for weighted in ("none", "sample", "class", "both")
    if has_classes or weighted in ("none", "sample")
]


@pytest.mark.parametrize(("cls", "make", "class_weight_of", "weighted"), GRADCHECK_CASES)
def test_gradcheck(cls, make, class_weight_of, weighted, rng):
    logits, y = make(rng)
    sample_weight = rng.random(N_SAMPLES) + 0.1 if weighted in ("sample", "both") else None
    report = check_loss(cls(class_weight=_class_weight(class_weight_of)), logits, y,
                        sample_weight=sample_weight)
    assert report.max_error < 1e-7, str(report)


def test_gradcheck_bce_with_flat_logits(rng):
    logits, y = _bce_case(rng)
    report = check_loss(BinaryCrossEntropy(), logits.reshape(-1), y)
    assert report.max_error < 1e-7, str(report)


# ---------------------------------------------------------------------------
# Hand formulas
# ---------------------------------------------------------------------------


def _weighted_mean(per_sample, weights):
    return np.sum(weights * per_sample) / np.sum(weights)


@pytest.mark.parametrize("use_sample", [False, True])
@pytest.mark.parametrize("use_class", [False, True])
def test_bce_value_and_gradient_by_hand(use_sample, use_class, rng):
    logits, y = _bce_case(rng)
    z = logits[:, 0]
    p = 1 / (1 + np.exp(-z))
    per_sample = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    sample_weight = rng.random(N_SAMPLES) + 0.1 if use_sample else None
    class_weight = np.array([0.3, 2.0]) if use_class else None
    weights = np.ones(N_SAMPLES)
    if use_sample:
        weights *= sample_weight
    if use_class:
        weights *= class_weight[y]
    loss = BinaryCrossEntropy(class_weight=class_weight)
    value = loss.forward(logits, y, sample_weight=sample_weight)
    assert isinstance(value, float)
    np.testing.assert_allclose(value, _weighted_mean(per_sample, weights), rtol=1e-13)
    grad = loss.backward()
    assert grad.shape == logits.shape
    np.testing.assert_allclose(grad[:, 0], weights * (p - y) / weights.sum(), rtol=1e-12)


@pytest.mark.parametrize("use_sample", [False, True])
@pytest.mark.parametrize("use_class", [False, True])
def test_sce_value_and_gradient_by_hand(use_sample, use_class, rng):
    logits, y = _sce_case(rng)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    per_sample = -np.log(p[np.arange(N_SAMPLES), y])
    sample_weight = rng.random(N_SAMPLES) + 0.1 if use_sample else None
    class_weight = {0: 1.0, 1: 0.5, 2: 3.0, 3: 0.25} if use_class else None
    weights = np.ones(N_SAMPLES)
    if use_sample:
        weights *= sample_weight
    if use_class:
        weights *= np.array([1.0, 0.5, 3.0, 0.25])[y]
    loss = SoftmaxCrossEntropy(class_weight=class_weight)
    value = loss.forward(logits, y, sample_weight=sample_weight)
    np.testing.assert_allclose(value, _weighted_mean(per_sample, weights), rtol=1e-13)
    one_hot = np.eye(N_CLASSES)[y]
    np.testing.assert_allclose(loss.backward(), weights[:, None] * (p - one_hot) / weights.sum(),
                               rtol=1e-12, atol=1e-17)


@pytest.mark.parametrize("use_sample", [False, True])
def test_sce_soft_targets_by_hand(use_sample, rng):
    logits, target = _soft_case(rng)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    per_sample = -np.sum(target * np.log(p), axis=1)
    sample_weight = rng.random(N_SAMPLES) + 0.1 if use_sample else None
    weights = sample_weight if use_sample else np.ones(N_SAMPLES)
    loss = SoftmaxCrossEntropy()
    value = loss.forward(logits, target, sample_weight=sample_weight)
    np.testing.assert_allclose(value, _weighted_mean(per_sample, weights), rtol=1e-13)
    np.testing.assert_allclose(loss.backward(), weights[:, None] * (p - target) / weights.sum(),
                               rtol=1e-12, atol=1e-17)


def test_sce_one_hot_targets_equal_index_labels(rng):
    logits, y = _sce_case(rng)
    by_index = SoftmaxCrossEntropy()
    by_one_hot = SoftmaxCrossEntropy()
    np.testing.assert_allclose(by_index.forward(logits, y),
                               by_one_hot.forward(logits, np.eye(N_CLASSES)[y]), rtol=1e-14)
    np.testing.assert_allclose(by_index.backward(), by_one_hot.backward(), rtol=1e-14,
                               atol=1e-17)


@pytest.mark.parametrize("use_sample", [False, True])
def test_mse_value_and_gradient_by_hand(use_sample, rng):
    z, y = _mse_case(rng)
    sample_weight = rng.random(N_SAMPLES) + 0.1 if use_sample else None
    weights = sample_weight if use_sample else np.ones(N_SAMPLES)
    per_sample = np.mean((z - y) ** 2, axis=1)
    loss = MeanSquaredError()
    value = loss.forward(z, y, sample_weight=sample_weight)
    np.testing.assert_allclose(value, _weighted_mean(per_sample, weights), rtol=1e-13)
    expected = 2 * weights[:, None] * (z - y) / (z.shape[1] * weights.sum())
    np.testing.assert_allclose(loss.backward(), expected, rtol=1e-12)


def test_mse_small_example():
    loss = MeanSquaredError()
    assert loss.forward(np.array([[1.0, 2.0], [3.0, 5.0]]), np.array([[1.0, 0.0], [0.0, 5.0]])) \
        == pytest.approx((0 + 4 + 9 + 0) / 4)
    np.testing.assert_allclose(loss.backward(), [[0.0, 1.0], [1.5, 0.0]])


def test_mse_accepts_flat_targets_for_one_output():
    loss = MeanSquaredError()
    assert loss.forward(np.array([[1.0], [3.0]]), np.array([0.0, 1.0])) == pytest.approx(2.5)
    assert loss.backward().shape == (2, 1)


@pytest.mark.parametrize("make", [_bce_case, _sce_case], ids=["bce", "sce"])
def test_uniform_sample_weight_changes_nothing(make, rng):
    logits, y = make(rng)
    cls = BinaryCrossEntropy if make is _bce_case else SoftmaxCrossEntropy
    plain, weighted = cls(), cls()
    np.testing.assert_allclose(plain.forward(logits, y),
                               weighted.forward(logits, y, sample_weight=np.full(N_SAMPLES, 3.0)),
                               rtol=1e-14)
    np.testing.assert_allclose(plain.backward(), weighted.backward(), rtol=1e-14)


def test_zero_sample_weight_removes_a_sample(rng):
    logits, y = _sce_case(rng)
    weights = np.ones(N_SAMPLES)
    weights[:3] = 0
    full, subset = SoftmaxCrossEntropy(), SoftmaxCrossEntropy()
    np.testing.assert_allclose(full.forward(logits, y, sample_weight=weights),
                               subset.forward(logits[3:], y[3:]), rtol=1e-14)
    grad = full.backward()
    np.testing.assert_array_equal(grad[:3], 0)
    np.testing.assert_allclose(grad[3:], subset.backward(), rtol=1e-14)


def test_class_weight_mapping_defaults_missing_classes_to_one(rng):
    logits, y = _sce_case(rng)
    as_mapping = SoftmaxCrossEntropy(class_weight={2: 3.0})
    as_array = SoftmaxCrossEntropy(class_weight=np.array([1.0, 1.0, 3.0, 1.0]))
    np.testing.assert_allclose(as_mapping.forward(logits, y), as_array.forward(logits, y),
                               rtol=1e-14)


# ---------------------------------------------------------------------------
# Stability
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_is_stable_for_huge_logits(dtype):
    logits = np.array([1000.0, -1000.0, 1000.0, -1000.0], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = BinaryCrossEntropy()
        right = loss.forward(logits, np.array([1, 0, 1, 0]))
        right_grad = loss.backward().copy()
        wrong = loss.forward(logits, np.array([0, 1, 0, 1]))
        wrong_grad = loss.backward()
    assert right == 0.0
    np.testing.assert_array_equal(right_grad, 0.0)
    # On the wrong side the loss is |z| (log(1 + e^|z|) ≈ |z|), and the gradient is ±1/n.
    assert wrong == pytest.approx(1000.0, rel=1e-12)
    np.testing.assert_allclose(wrong_grad, [0.25, -0.25, 0.25, -0.25])
    assert wrong_grad.dtype == dtype


def test_sce_is_stable_for_huge_logits():
    logits = np.array([[1000.0, -1000.0, 0.0], [0.0, 1e300, -1e300]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = SoftmaxCrossEntropy()
        value = loss.forward(logits, np.array([1, 0]))
        grad = loss.backward()
    # Row 0 is wrong by 2000, row 1 by 1e300: the mean is finite and the gradient bounded.
    assert value == pytest.approx((2000.0 + 1e300) / 2)
    np.testing.assert_allclose(grad, [[0.5, -0.5, 0.0], [-0.5, 0.5, 0.0]])


@pytest.mark.parametrize("cls", [BinaryCrossEntropy, SoftmaxCrossEntropy])
def test_float32_stays_float32(cls, rng):
    logits = rng.standard_normal((5, 1 if cls is BinaryCrossEntropy else 3)).astype(np.float32)
    y = rng.integers(0, logits.shape[1] + (cls is BinaryCrossEntropy), 5)
    loss = cls(class_weight=[1.0, 2.0, 0.5])
    loss.forward(logits, y, sample_weight=np.ones(5))
    assert loss.backward().dtype == np.float32


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------


@st.composite
def _loss_inputs(draw):
    n = draw(st.integers(1, 8))
    k = draw(st.integers(1, 5))
    logits = draw(hnp.arrays(np.float64, (n, k), elements=st.floats(-1e3, 1e3)))
    weights = draw(st.none() | hnp.arrays(np.float64, n, elements=st.floats(0.01, 10)))
    return logits, weights, draw(st.data())


@settings(max_examples=100, deadline=None)
@given(inputs=_loss_inputs())
def test_losses_are_non_negative(inputs):
    logits, weights, data = inputs
    n, k = logits.shape
    labels = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, k - 1)))
    binary = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, 1)))
    targets = data.draw(hnp.arrays(np.float64, (n, k), elements=st.floats(-1e3, 1e3)))
    assert SoftmaxCrossEntropy().forward(logits, labels, sample_weight=weights) >= 0
    assert BinaryCrossEntropy().forward(logits[:, :1], binary, sample_weight=weights) >= 0
    assert MeanSquaredError().forward(logits, targets, sample_weight=weights) >= 0


@settings(max_examples=50, deadline=None)
@given(inputs=_loss_inputs())
def test_gradient_has_the_shape_of_the_logits(inputs):
    logits, weights, data = inputs
    labels = data.draw(hnp.arrays(np.int64, logits.shape[0],
                                  elements=st.integers(0, logits.shape[1] - 1)))
    loss = SoftmaxCrossEntropy()
    loss.forward(logits, labels, sample_weight=weights)
    grad = loss.backward()
    assert grad.shape == logits.shape
    assert np.all(np.isfinite(grad))
    # Each row of p - onehot sums to 0.
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-12)


# ---------------------------------------------------------------------------
# Errors and the rest of the interface
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [BinaryCrossEntropy, SoftmaxCrossEntropy, MeanSquaredError])
def test_backward_before_forward_raises(cls):
    with pytest.raises(RuntimeError, match=rf"{cls.__name__}\.backward\(\) was called before"):
        cls().backward()


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (np.array([0, 1, 4]), r"labels must be class indices in \[0, 3\], got values from 0 to 4"),
        (np.array([-1, 1, 2]), r"labels must be class indices in \[0, 3\], got values from -1"),
        (np.array([0, 1]), r"y has 2 labels but logits has 3 rows"),
    ],
)
def test_sce_bad_labels_raise(labels, match):
    with pytest.raises(ValueError, match=match):
        SoftmaxCrossEntropy().forward(np.zeros((3, 4)), labels)


def test_bce_label_count_mismatch_raises():
    with pytest.raises(ValueError, match=r"y has 2 labels but logits has 3 rows"):
        BinaryCrossEntropy().forward(np.zeros((3, 1)), np.array([0, 1]))


@pytest.mark.parametrize("cls", [BinaryCrossEntropy, SoftmaxCrossEntropy, MeanSquaredError])
def test_sample_weight_errors(cls):
    logits = np.zeros((3, 2)) if cls is not BinaryCrossEntropy else np.zeros((3, 1))
    y = np.array([0, 1, 1]) if cls is not MeanSquaredError else np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"sample_weight has shape \(2,\) but there are 3 "):
        cls().forward(logits, y, sample_weight=np.ones(2))
    with pytest.raises(ValueError, match=r"sample_weight must hold finite, non-negative"):
        cls().forward(logits, y, sample_weight=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match=r"sample_weight is zero for every sample"):
        cls().forward(logits, y, sample_weight=np.zeros(3))


def test_class_weight_too_short_raises():
    with pytest.raises(ValueError, match=r"class_weight has 2 entries but labels go up to 2"):
        SoftmaxCrossEntropy(class_weight=[1.0, 2.0]).forward(np.zeros((3, 3)), np.array([0, 1, 2]))


@pytest.mark.parametrize(("cls", "y"), [
    (SoftmaxCrossEntropy, np.full((2, 3), 1 / 3)),
    (MeanSquaredError, np.zeros((2, 3))),
])
def test_class_weight_needs_labels(cls, y):
    with pytest.raises(ValueError, match="class_weight needs class labels"):
        cls(class_weight=[1.0, 2.0, 3.0]).forward(np.zeros((2, 3)), y)


def test_predictions_and_probabilities():
    logits = np.array([[2.0, -1.0, 0.5], [-3.0, 0.0, 4.0]])
    np.testing.assert_array_equal(SoftmaxCrossEntropy().predict(logits), [0, 2])
    np.testing.assert_allclose(SoftmaxCrossEntropy().probabilities(logits).sum(axis=1), 1.0)
    bce = BinaryCrossEntropy()
    np.testing.assert_array_equal(bce.predict(np.array([[-0.1], [0.0], [0.1]])), [0, 0, 1])
    np.testing.assert_allclose(bce.probabilities(np.array([[0.0], [np.log(3.0)]])), [0.5, 0.75])
    with pytest.raises(TypeError, match="MeanSquaredError is a regression loss"):
        MeanSquaredError().predict(logits)
    np.testing.assert_array_equal(MeanSquaredError().probabilities(logits), logits)


def test_losses_say_whether_they_classify():
    assert BinaryCrossEntropy.is_classification and SoftmaxCrossEntropy.is_classification
    assert not MeanSquaredError.is_classification


def test_registry_and_base():
    assert LOSSES == {
        "binary_cross_entropy": BinaryCrossEntropy,
        "softmax_cross_entropy": SoftmaxCrossEntropy,
        "mean_squared_error": MeanSquaredError,
    }
    with pytest.raises(NotImplementedError):
        Loss().forward(np.zeros((1, 1)), np.zeros(1))


@pytest.mark.parametrize("labels", [np.array([0, 2]), np.array([-1, 1])])
def test_bce_labels_outside_zero_one_raise(labels):
    with pytest.raises(ValueError, match=r"(?i)label"):
        BinaryCrossEntropy().forward(np.array([10.0, 10.0]), labels)
