"""Tests for nnscratch.metrics: hand-computed cases, properties, errors, scikit-learn parity."""

from __future__ import annotations

import doctest
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nnscratch import metrics
from nnscratch.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    log_loss,
    precision_recall_f1,
    roc_auc_score,
    roc_curve,
)


@pytest.fixture
def skm():
    """scikit-learn's metrics module, or a visible skip when it is not installed."""
    return pytest.importorskip(
        "sklearn.metrics", reason="scikit-learn is not installed: pip install nnscratch[sklearn]"
    )


def test_docstring_examples_run():
    result = doctest.testmod(metrics, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


# ---------------------------------------------------------------------------
# Hand-computed cases (no scikit-learn needed)
# ---------------------------------------------------------------------------


def test_accuracy_by_hand():
    assert accuracy_score([0, 1, 2, 3], [0, 1, 0, 0]) == 0.5
    assert accuracy_score(["a", "b"], ["a", "b"]) == 1.0
    assert accuracy_score([0, 1, 1], [1, 1, 1], sample_weight=[2, 1, 1]) == 0.5
    # A zero weight removes a sample.
    assert accuracy_score([0, 1], [1, 1], sample_weight=[0, 5]) == 1.0


def test_confusion_matrix_by_hand():
    y_true = [2, 0, 2, 2, 0, 1]
    y_pred = [0, 0, 2, 2, 0, 2]
    expected = np.array([[2, 0, 0], [0, 0, 1], [1, 0, 2]])
    matrix = confusion_matrix(y_true, y_pred)
    np.testing.assert_array_equal(matrix, expected)
    assert matrix.dtype == np.int64


def test_confusion_matrix_labels_order_and_subset():
    y_true = ["cat", "ant", "cat", "bird"]
    y_pred = ["ant", "ant", "cat", "cat"]
    # Rows and columns follow the given order; "ant" is left out, so are its samples.
    matrix = confusion_matrix(y_true, y_pred, labels=["cat", "bird"])
    np.testing.assert_array_equal(matrix, [[1, 0], [1, 0]])
    # A label that never occurs gets an empty row and column.
    matrix = confusion_matrix([0, 1], [0, 1], labels=[0, 1, 7])
    np.testing.assert_array_equal(matrix, [[1, 0, 0], [0, 1, 0], [0, 0, 0]])


def test_confusion_matrix_labels_default_to_sorted_union():
    # Class 5 only appears in the predictions but still gets a row and column.
    matrix = confusion_matrix([3, 1], [5, 1])
    np.testing.assert_array_equal(matrix, [[1, 0, 0], [0, 0, 1], [0, 0, 0]])


def test_precision_recall_f1_by_hand():
    # Class 0: tp 1, predicted 1, support 2.  Class 1: tp 2, predicted 3, support 2.
    y_true = [0, 0, 1, 1]
    y_pred = [0, 1, 1, 1]
    precision, recall, f1, support = precision_recall_f1(y_true, y_pred)
    np.testing.assert_allclose(precision, [1.0, 2 / 3])
    np.testing.assert_allclose(recall, [0.5, 1.0])
    np.testing.assert_allclose(f1, [2 / 3, 0.8])
    np.testing.assert_array_equal(support, [2, 2])

    p, r, f, s = precision_recall_f1(y_true, y_pred, average="macro")
    assert (p, r, f, s) == pytest.approx((5 / 6, 0.75, (2 / 3 + 0.8) / 2, 4))
    p, r, f, s = precision_recall_f1(y_true, y_pred, average="micro")
    assert (p, r, f, s) == pytest.approx((0.75, 0.75, 0.75, 4))
    p, r, f, s = precision_recall_f1([0, 1, 1, 1], [0, 0, 1, 1], average="weighted")
    # Class 0: P 1/2, R 1, F 2/3, support 1.  Class 1: P 1, R 2/3, F 0.8, support 3.
    assert (p, r, f, s) == pytest.approx(
        (0.25 * 0.5 + 0.75, 0.25 + 0.75 * 2 / 3, 0.25 * 2 / 3 + 0.75 * 0.8, 4)
    )


def test_precision_recall_f1_zero_division_is_zero_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Class 2 is never predicted and never present; class 1 is never predicted.
        precision, recall, f1, support = precision_recall_f1([0, 1], [0, 0], labels=[0, 1, 2])
        averaged = precision_recall_f1([0], [0], labels=[1], average="weighted")
    np.testing.assert_allclose(precision, [0.5, 0.0, 0.0])
    np.testing.assert_allclose(recall, [1.0, 0.0, 0.0])
    np.testing.assert_allclose(f1, [2 / 3, 0.0, 0.0])
    np.testing.assert_array_equal(support, [1, 1, 0])
    assert averaged == (0.0, 0.0, 0.0, 0)


def test_roc_curve_by_hand():
    fpr, tpr, thresholds = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(thresholds, [np.inf, 0.8, 0.4, 0.35, 0.1])


def test_roc_curve_ties_share_one_threshold():
    fpr, tpr, thresholds = roc_curve([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9], drop_intermediate=False)
    np.testing.assert_allclose(thresholds, [np.inf, 0.9, 0.5, 0.2])
    np.testing.assert_allclose(tpr, [0, 0.5, 1, 1])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1])


def test_roc_curve_drop_intermediate_keeps_the_area(rng):
    y = rng.integers(0, 2, 200)
    s = rng.normal(size=200) + y
    full = roc_curve(y, s, drop_intermediate=False)
    dropped = roc_curve(y, s)
    assert dropped[0].size < full[0].size
    area_full = np.trapezoid(full[1], full[0])
    area_dropped = np.trapezoid(dropped[1], dropped[0])
    assert area_dropped == pytest.approx(area_full)
    assert area_full == pytest.approx(roc_auc_score(y, s))


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([0.1, 0.2, 0.8, 0.9], 1.0),
        ([0.9, 0.8, 0.2, 0.1], 0.0),
        ([0.5, 0.5, 0.5, 0.5], 0.5),
        ([0.1, 0.5, 0.5, 0.9], 0.875),  # one tied positive-negative pair counts 1/2
    ],
)
def test_roc_auc_by_hand(scores, expected):
    assert roc_auc_score([0, 0, 1, 1], scores) == pytest.approx(expected)


def test_roc_auc_equals_pairwise_count_with_ties(rng):
    y = rng.integers(0, 2, 150)
    s = rng.integers(0, 10, 150).astype(float)  # many ties
    pos, neg = s[y == 1], s[y == 0]
    diff = pos[:, None] - neg[None, :]
    expected = ((diff > 0) + 0.5 * (diff == 0)).mean()
    assert roc_auc_score(y, s) == pytest.approx(expected, abs=1e-12)


def test_roc_pos_label_and_string_labels():
    y = ["spam", "ham", "spam", "ham"]
    s = [0.9, 0.2, 0.6, 0.7]
    assert roc_auc_score(y, s) == pytest.approx(0.75)  # "spam" > "ham", so spam is positive
    assert roc_auc_score(y, s, pos_label="ham") == pytest.approx(0.25)
    assert roc_auc_score(np.array([True, False]), [0.7, 0.1]) == 1.0


def test_log_loss_by_hand():
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
    expected = -np.mean(np.log([0.9, 0.8, 0.7]))
    assert log_loss([0, 1, 1], proba) == pytest.approx(expected)
    # 1-D: probability of the positive class (index 1).
    assert log_loss([0, 1, 1], proba[:, 1]) == pytest.approx(expected)
    assert log_loss(["no", "yes", "yes"], proba, labels=["no", "yes"]) == pytest.approx(expected)
    # Labels give the column order, whatever it is.
    assert log_loss(["b", "a", "a"], proba, labels=["b", "a"]) == pytest.approx(expected)


def test_log_loss_clips_to_eps():
    proba = np.array([[1.0, 0.0], [0.0, 1.0]])
    eps64 = np.finfo(np.float64).eps
    assert log_loss([1, 1], proba) == pytest.approx(-np.log(eps64) / 2)
    assert log_loss([1, 1], proba, eps=1e-3) == pytest.approx(-(np.log(1e-3) + np.log1p(-1e-3)) / 2)
    eps32 = float(np.finfo(np.float32).eps)
    assert log_loss([1, 1], proba.astype(np.float32)) == pytest.approx(-np.log(eps32) / 2)
    assert log_loss([0, 1], proba) == pytest.approx(-np.log1p(-eps64))


def test_classification_report_by_hand():
    report = classification_report([0, 0, 1, 1], [0, 1, 1, 1], target_names=["no", "yes"])
    lines = report.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]
    assert lines[2].split() == ["no", "1.00", "0.50", "0.67", "2"]
    assert lines[3].split() == ["yes", "0.67", "1.00", "0.80", "2"]
    assert lines[5].split() == ["accuracy", "0.75", "4"]
    assert lines[6].split() == ["macro", "avg", "0.83", "0.75", "0.73", "4"]
    assert report.endswith("\n")


def test_classification_report_subset_shows_micro_avg_and_digits():
    report = classification_report([0, 1, 2], [0, 1, 1], labels=[0, 1], digits=3)
    assert "micro avg" in report
    assert "accuracy" not in report
    assert "0.667" in report


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

label_pairs = st.integers(1, 40).flatmap(
    lambda n: st.tuples(
        hnp.arrays(np.int64, n, elements=st.integers(0, 4)),
        hnp.arrays(np.int64, n, elements=st.integers(0, 4)),
    )
)


@given(label_pairs)
def test_accuracy_is_a_fraction(pair):
    y_true, y_pred = pair
    value = accuracy_score(y_true, y_pred)
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(np.trace(confusion_matrix(y_true, y_pred)) / y_true.size)


@given(label_pairs)
def test_confusion_matrix_sums_to_n_samples(pair):
    y_true, y_pred = pair
    matrix = confusion_matrix(y_true, y_pred)
    assert matrix.sum() == y_true.size
    np.testing.assert_array_equal(
        matrix.sum(axis=1), [np.sum(y_true == k) for k in np.union1d(y_true, y_pred)]
    )


@given(label_pairs)
def test_precision_recall_f1_are_fractions(pair):
    precision, recall, f1, _ = precision_recall_f1(*pair)
    for values in (precision, recall, f1):
        assert np.all((values >= 0) & (values <= 1))
    micro = precision_recall_f1(*pair, average="micro")
    assert micro[:3] == pytest.approx((accuracy_score(*pair),) * 3)


@given(
    hnp.arrays(np.float64, 12, elements=st.floats(-5, 5)),
    st.permutations([0] * 5 + [1] * 7),
)
def test_roc_auc_is_symmetric(scores, y):
    auc = roc_auc_score(y, scores)
    assert 0.0 <= auc <= 1.0
    assert roc_auc_score(y, -scores) == pytest.approx(1.0 - auc)


# ---------------------------------------------------------------------------
# Documented errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "function", [accuracy_score, confusion_matrix, precision_recall_f1, classification_report]
)
def test_label_functions_reject_bad_targets(function):
    with pytest.raises(ValueError, match="y_true has 3 samples but y_pred has 2"):
        function([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match=r"y_pred must be 1-D .* got shape \(2, 3\).*argmax"):
        function([0, 1], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="y_true is empty"):
        function([], [])
    with pytest.raises(TypeError, match="labels must be all strings or all numbers"):
        function(["a", "b"], [0, 1])


def test_accuracy_rejects_bad_sample_weight():
    with pytest.raises(ValueError, match=r"sample_weight has shape \(1,\) but there are 2"):
        accuracy_score([0, 1], [0, 1], sample_weight=[1])
    with pytest.raises(ValueError, match="sample_weight must hold finite, non-negative numbers"):
        accuracy_score([0, 1], [0, 1], sample_weight=[1, -1])
    with pytest.raises(ValueError, match="sample_weight must hold finite, non-negative numbers"):
        accuracy_score([0, 1], [0, 1], sample_weight=[1, np.nan])
    with pytest.raises(ValueError, match="sample_weight is zero for every sample"):
        accuracy_score([0, 1], [0, 1], sample_weight=[0, 0])


def test_labels_are_validated():
    with pytest.raises(ValueError, match="labels must not repeat a value"):
        confusion_matrix([0, 1], [0, 1], labels=[0, 1, 1])
    with pytest.raises(ValueError, match="labels is empty"):
        confusion_matrix([0, 1], [0, 1], labels=[])
    with pytest.raises(ValueError, match="labels must be 1-D"):
        precision_recall_f1([0, 1], [0, 1], labels=[[0, 1]])
    with pytest.raises(TypeError, match="labels must be all strings or all numbers"):
        confusion_matrix([0, 1], [0, 1], labels=["0", "1"])


def test_precision_recall_f1_rejects_unknown_average():
    with pytest.raises(ValueError, match=r"average must be None or one of .*'macro'.*got 'binary'"):
        precision_recall_f1([0, 1], [0, 1], average="binary")


def test_classification_report_rejects_bad_options():
    with pytest.raises(ValueError, match="target_names has 1 names but there are 2 classes"):
        classification_report([0, 1], [0, 1], target_names=["zero"])
    with pytest.raises(ValueError, match="digits must be >= 0"):
        classification_report([0, 1], [0, 1], digits=-1)
    with pytest.raises(TypeError, match="digits must be an integer"):
        classification_report([0, 1], [0, 1], digits=2.5)


@pytest.mark.parametrize("function", [roc_curve, roc_auc_score])
def test_binary_functions_reject_bad_input(function):
    with pytest.raises(ValueError, match=r"exactly two classes.*got 3"):
        function([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"exactly two classes.*got 1"):
        function([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="y_true has 2 samples but scores has 3"):
        function([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"scores must be 1-D.*proba\[:, 1\]"):
        function([0, 1], [[0.9, 0.1], [0.2, 0.8]])
    with pytest.raises(ValueError, match="scores contains NaN or infinity"):
        function([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="y_true is empty"):
        function([], [])
    with pytest.raises(ValueError, match="pos_label=2 is not one of the classes"):
        function([0, 1], [0.1, 0.2], pos_label=2)
    with pytest.raises(TypeError, match="scores must be numeric"):
        function([0, 1], ["a", "b"])


def test_log_loss_rejects_bad_input():
    good = np.array([[0.5, 0.5], [0.2, 0.8]])
    with pytest.raises(ValueError, match=r"proba must have shape .* got shape \(2, 1\)"):
        log_loss([0, 1], good[:, :1])
    with pytest.raises(ValueError, match="y_true has 3 samples but proba has 2 rows"):
        log_loss([0, 1, 1], good)
    with pytest.raises(ValueError, match=r"proba must hold probabilities in \[0, 1\].*softmax"):
        log_loss([0, 1], [[2.0, -1.0], [0.2, 0.8]])
    with pytest.raises(
        ValueError, match=r"each row of proba must sum to 1, but one sums to 0\.9\. Normalise"
    ):
        log_loss([0, 1], [[0.5, 0.4], [0.2, 0.8]])
    with pytest.raises(ValueError, match=r"eps must be < 0.5"):
        log_loss([0, 1], good, eps=0.5)
    with pytest.raises(ValueError, match=r"eps must be > 0"):
        log_loss([0, 1], good, eps=0.0)
    with pytest.raises(TypeError, match="eps must be a real number"):
        log_loss([0, 1], good, eps="small")
    with pytest.raises(ValueError, match=r"y_true holds 2, not a class index in 0..1"):
        log_loss([0, 2], good)
    with pytest.raises(ValueError, match="y_true must hold class indices"):
        log_loss(["a", "b"], good)
    with pytest.raises(ValueError, match="y_true holds 'c', which is not in labels"):
        log_loss(["a", "c"], good, labels=["a", "b"])
    with pytest.raises(ValueError, match="labels has 3 entries but proba has 2 columns"):
        log_loss(["a", "b"], good, labels=["a", "b", "c"])
    with pytest.raises(ValueError, match="y_true is empty"):
        log_loss([], np.zeros((0, 2)))
    with pytest.raises(TypeError, match="proba must be numeric"):
        log_loss([0, 1], ["a", "b"])


# ---------------------------------------------------------------------------
# Parity with scikit-learn on random data
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_label_metrics_match_sklearn(skm, seed):
    rng = np.random.default_rng(seed)
    n, k = 300, 6
    y_true = rng.integers(0, k, n)
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, k - 1, n))
    weight = rng.random(n)
    subset = [4, 1, 3]

    assert accuracy_score(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert accuracy_score(y_true, y_pred, sample_weight=weight) == pytest.approx(
        skm.accuracy_score(y_true, y_pred, sample_weight=weight)
    )
    np.testing.assert_array_equal(
        confusion_matrix(y_true, y_pred), skm.confusion_matrix(y_true, y_pred)
    )
    np.testing.assert_array_equal(
        confusion_matrix(y_true, y_pred, labels=subset),
        skm.confusion_matrix(y_true, y_pred, labels=subset),
    )
    for labels in (None, subset):
        ours = precision_recall_f1(y_true, y_pred, labels=labels)
        theirs = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(a, b)
        for average in ("macro", "micro", "weighted"):
            ours = precision_recall_f1(y_true, y_pred, labels=labels, average=average)
            theirs = skm.precision_recall_fscore_support(
                y_true, y_pred, labels=labels, average=average, zero_division=0
            )
            assert ours[:3] == pytest.approx(theirs[:3])


@pytest.mark.parametrize("labels", [None, [2, 0, 1], [0, 1]])
def test_classification_report_matches_sklearn_text(skm, rng, labels):
    y_true = rng.integers(0, 3, 50)
    y_pred = rng.integers(0, 3, 50)
    ours = classification_report(y_true, y_pred, labels=labels, digits=3)
    theirs = skm.classification_report(y_true, y_pred, labels=labels, digits=3, zero_division=0)
    assert ours == theirs


def test_classification_report_matches_sklearn_with_names(skm):
    y_true = ["ant", "bee", "bee", "cicada"]
    y_pred = ["bee", "bee", "bee", "cicada"]
    names = ["Formicidae", "Apis", "Cicadidae"]
    assert classification_report(y_true, y_pred, target_names=names) == skm.classification_report(
        y_true, y_pred, target_names=names, zero_division=0
    )


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("drop_intermediate", [True, False])
def test_roc_matches_sklearn(skm, seed, drop_intermediate):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 400)
    scores = np.round(rng.normal(size=400) + y, 1)  # rounding creates ties
    ours = roc_curve(y, scores, drop_intermediate=drop_intermediate)
    theirs = skm.roc_curve(y, scores, drop_intermediate=drop_intermediate)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b)
    assert roc_auc_score(y, scores) == pytest.approx(skm.roc_auc_score(y, scores), abs=1e-12)
    labels = np.where(y == 1, "pos", "neg")
    assert roc_auc_score(labels, scores, pos_label="pos") == pytest.approx(
        skm.roc_auc_score(y, scores)
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_classes", [2, 5])
def test_log_loss_matches_sklearn(skm, rng, dtype, n_classes):
    n = 200
    logits = 3 * rng.normal(size=(n, n_classes))
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba = (proba / proba.sum(axis=1, keepdims=True)).astype(dtype)
    proba[0] = 0
    proba[0, 0] = 1  # a confident prediction, right or wrong: exercises the clipping
    y = rng.integers(0, n_classes, n)
    y[:n_classes] = np.arange(n_classes)  # sklearn infers the classes from y_true
    expected = skm.log_loss(y, proba)
    assert log_loss(y, proba) == pytest.approx(expected, rel=1e-5)
    if n_classes == 2:
        assert log_loss(y, proba[:, 1]) == pytest.approx(skm.log_loss(y, proba[:, 1]), rel=1e-5)
    names = np.array(list("abcde"))[:n_classes]
    assert log_loss(names[y], proba, labels=names) == pytest.approx(expected, rel=1e-5)
