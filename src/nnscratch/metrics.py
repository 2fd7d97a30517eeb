r"""Classification metrics: how good are a model's predictions?

This module scores predictions that a model has already made. It is pure NumPy,
vectorised over whole arrays of labels, and it agrees with scikit-learn's functions
of the same names (``zero_division=0`` everywhere), so numbers reported here can be
compared with numbers reported there.

From the simplest to the most involved:

* :func:`accuracy_score` — the fraction of correct predictions;
* :func:`confusion_matrix` — counts of (true class, predicted class) pairs;
* :func:`precision_recall_f1` — per-class precision, recall, F1 and support,
  or their macro, micro or weighted averages;
* :func:`classification_report` — the same numbers as a text table;
* :func:`roc_curve` and :func:`roc_auc_score` — ranking quality of binary scores;
* :func:`log_loss` — the mean negative log-likelihood of predicted probabilities.

Labels may be any values NumPy can sort (integers, strings, booleans). Every
function checks its inputs once, at the top, and raises an error that names the
parameter, what was expected, what came and how to fix it.

What it leaves out: multilabel and multi-output targets (one label per sample
only), sample weights other than in :func:`accuracy_score`, multiclass ROC AUC
(one-vs-rest can be built from :func:`roc_auc_score`), precision-recall curves,
regression metrics and probability calibration. Training losses, which take
logits and have gradients, live in :mod:`nnscratch.nn.losses`, not here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nnscratch._validation import check_int, check_real, check_sample_weight

__all__ = [
    "accuracy_score",
    "classification_report",
    "confusion_matrix",
    "log_loss",
    "precision_recall_f1",
    "roc_auc_score",
    "roc_curve",
]


# ---------------------------------------------------------------------------
# Input checks shared by the public functions
# ---------------------------------------------------------------------------


def _as_1d(values: ArrayLike, name: str, *, hint: str = "") -> NDArray:
    """Return ``values`` as a non-empty 1-D array, or raise naming ``name``."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D with one entry per sample, got shape {array.shape}."
            + (f" {hint}" if hint else "")
        )
    if array.size == 0:
        raise ValueError(f"{name} is empty; pass at least one sample.")
    return array


def _is_text(array: NDArray) -> bool:
    return array.dtype.kind in "US"


def _check_same_kind(a: NDArray, a_name: str, b: NDArray, b_name: str) -> None:
    """Refuse to compare text labels with numeric labels (they never match)."""
    if a.dtype.kind == "O" or b.dtype.kind == "O":
        return
    if _is_text(a) != _is_text(b):
        raise TypeError(
            f"{a_name} holds {a.dtype} values but {b_name} holds {b.dtype} values; "
            "labels must be all strings or all numbers. Convert one of them, "
            "e.g. with .astype(str)."
        )


def _check_targets(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[NDArray, NDArray]:
    """Validate a pair of label arrays: 1-D, non-empty, equal lengths, same kind."""
    hint = "If these are one-hot rows or probabilities, take .argmax(axis=1) first."
    true = _as_1d(y_true, "y_true", hint=hint)
    pred = _as_1d(y_pred, "y_pred", hint=hint)
    if true.shape[0] != pred.shape[0]:
        raise ValueError(
            f"y_true has {true.shape[0]} samples but y_pred has {pred.shape[0]}; "
            "pass exactly one prediction per sample."
        )
    _check_same_kind(true, "y_true", pred, "y_pred")
    return true, pred


def _resolve_labels(labels: ArrayLike | None, *arrays: NDArray) -> NDArray:
    """Return the class labels to score: the given ones, or the sorted union."""
    if labels is None:
        return np.unique(np.concatenate(arrays))
    result = _as_1d(labels, "labels")
    unique = np.unique(result)
    if unique.size != result.size:
        raise ValueError(
            f"labels must not repeat a value, got {result.size} labels with only "
            f"{unique.size} distinct; remove the duplicates."
        )
    _check_same_kind(arrays[0], "y_true", result, "labels")
    return result


def _label_indices(values: NDArray, labels: NDArray) -> tuple[NDArray, NDArray]:
    """Position of each value in ``labels`` and whether it was found at all.

    Binary search on a sorted view of ``labels``, so the cost is
    ``O(n log k)`` for ``n`` values and ``k`` labels, with no Python loop.
    """
    sorter = np.argsort(labels, kind="stable")
    position = np.searchsorted(labels, values, sorter=sorter)
    position = np.minimum(position, labels.size - 1)
    index = sorter[position]
    found = labels[index] == values
    return index, found


def _safe_divide(numerator: NDArray, denominator: NDArray) -> NDArray:
    """``numerator / denominator`` with 0.0 wherever the denominator is 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    result = np.zeros(np.broadcast(numerator, denominator).shape)
    np.divide(numerator, denominator, out=result, where=denominator != 0)
    return result


# ---------------------------------------------------------------------------
# Accuracy and the confusion matrix
# ---------------------------------------------------------------------------


def accuracy_score(
    y_true: ArrayLike, y_pred: ArrayLike, *, sample_weight: ArrayLike | None = None
) -> float:
    r"""Fraction of samples whose predicted label equals the true label.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True class labels.
    y_pred : array-like of shape (n_samples,)
        Predicted class labels, e.g. ``logits.argmax(axis=1)``.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weight of each sample; ``None`` weighs every sample equally.

    Returns
    -------
    accuracy : float
        Weighted fraction of correct predictions, in :math:`[0, 1]`.

    Raises
    ------
    ValueError
        If ``y_true`` or ``y_pred`` is not 1-D or is empty, if their lengths
        differ, or if ``sample_weight`` is not one finite, non-negative number per
        sample, or is zero everywhere.
    TypeError
        If one of ``y_true`` and ``y_pred`` holds strings and the other numbers.

    Notes
    -----
    With weights :math:`w_i` (all 1 by default),

    .. math::

        \operatorname{accuracy} = \frac{\sum_i w_i \, [\hat y_i = y_i]}{\sum_i w_i}.

    Examples
    --------
    >>> accuracy_score([0, 1, 2, 2], [0, 2, 2, 2])
    0.75
    >>> accuracy_score([0, 1], [0, 0], sample_weight=[3, 1])
    0.75
    """
    true, pred = _check_targets(y_true, y_pred)
    correct = true == pred
    if sample_weight is None:
        return float(np.mean(correct))
    weight = check_sample_weight(sample_weight, true.shape[0])
    total = weight.sum()
    return float(np.dot(weight, correct) / total)


def confusion_matrix(
    y_true: ArrayLike, y_pred: ArrayLike, *, labels: ArrayLike | None = None
) -> NDArray[np.int64]:
    r"""Count how often each true class was predicted as each class.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True class labels.
    y_pred : array-like of shape (n_samples,)
        Predicted class labels.
    labels : array-like of shape (n_classes,), default=None
        The classes to count, in the order of the rows and columns. Samples whose
        true or predicted label is not among them are left out. ``None`` uses the
        sorted union of the labels in ``y_true`` and ``y_pred``.

    Returns
    -------
    matrix : ndarray of shape (n_classes, n_classes), dtype int64
        ``matrix[i, j]`` is the number of samples of true class ``labels[i]``
        predicted as ``labels[j]``: rows are true classes, columns predictions.

    Raises
    ------
    ValueError
        If ``y_true`` or ``y_pred`` is not 1-D or is empty, if their lengths
        differ, or if ``labels`` is not 1-D, is empty or repeats a value.
    TypeError
        If string labels are mixed with numeric labels.

    Notes
    -----
    .. math::

        C_{ij} = \#\{\, s : y_s = \ell_i \text{ and } \hat y_s = \ell_j \,\}.

    The diagonal holds the correct predictions, so ``matrix.trace() / n_samples``
    is the accuracy when every label is counted. It is computed with a single
    :func:`numpy.bincount` over the flattened index ``i * n_classes + j``.

    Examples
    --------
    >>> confusion_matrix([0, 1, 2, 2], [0, 2, 2, 1])
    array([[1, 0, 0],
           [0, 0, 1],
           [0, 1, 1]])
    >>> confusion_matrix(["cat", "dog", "dog"], ["dog", "dog", "dog"])
    array([[0, 1],
           [0, 2]])
    """
    true, pred = _check_targets(y_true, y_pred)
    classes = _resolve_labels(labels, true, pred)
    n_classes = classes.size
    row, row_found = _label_indices(true, classes)
    col, col_found = _label_indices(pred, classes)
    keep = row_found & col_found
    flat = row[keep] * n_classes + col[keep]
    counts = np.bincount(flat, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes).astype(np.int64)


# ---------------------------------------------------------------------------
# Precision, recall and F1
# ---------------------------------------------------------------------------


def _macro(precision, recall, f1, support, tp, pred_count):
    return float(precision.mean()), float(recall.mean()), float(f1.mean())


def _weighted(precision, recall, f1, support, tp, pred_count):
    total = support.sum()
    if total == 0:
        return 0.0, 0.0, 0.0
    weights = support / total
    return (
        float(np.dot(weights, precision)),
        float(np.dot(weights, recall)),
        float(np.dot(weights, f1)),
    )


def _micro(precision, recall, f1, support, tp, pred_count):
    tp_sum, pred_sum, true_sum = tp.sum(), pred_count.sum(), support.sum()
    return (
        float(_safe_divide(tp_sum, pred_sum)),
        float(_safe_divide(tp_sum, true_sum)),
        float(_safe_divide(2 * tp_sum, pred_sum + true_sum)),
    )


#: How ``average`` turns per-class scores into one number per metric.
AVERAGES: dict[str, Callable[..., tuple[float, float, float]]] = {
    "macro": _macro,
    "micro": _micro,
    "weighted": _weighted,
}


def precision_recall_f1(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    labels: ArrayLike | None = None,
    average: str | None = None,
) -> (
    tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]
    | tuple[float, float, float, int]
):
    r"""Precision, recall, F1 score and support of each class, or their average.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True class labels.
    y_pred : array-like of shape (n_samples,)
        Predicted class labels.
    labels : array-like of shape (n_classes,), default=None
        The classes to score, in the order of the returned arrays. ``None`` uses
        the sorted union of the labels in ``y_true`` and ``y_pred``.
    average : {None, "macro", "micro", "weighted"}, default=None
        ``None`` returns one value per class. ``"macro"`` is the unweighted mean
        over classes, ``"weighted"`` the mean weighted by support, and
        ``"micro"`` pools the counts of all classes before dividing (with every
        label counted, micro precision, recall and F1 all equal the accuracy).

    Returns
    -------
    precision : ndarray of shape (n_classes,) or float
        Fraction of predictions of a class that are right.
    recall : ndarray of shape (n_classes,) or float
        Fraction of samples of a class that are found.
    f1 : ndarray of shape (n_classes,) or float
        Harmonic mean of precision and recall.
    support : ndarray of shape (n_classes,) of int64, or int
        Number of samples of each class in ``y_true``; when averaged, their total.

    Raises
    ------
    ValueError
        If ``average`` is not one of the choices, if ``y_true`` or ``y_pred`` is
        not 1-D or is empty, if their lengths differ, or if ``labels`` is not
        1-D, is empty or repeats a value.
    TypeError
        If string labels are mixed with numeric labels.

    Notes
    -----
    With :math:`TP_k` the number of samples of class :math:`k` predicted as
    :math:`k`, :math:`P_k` the number predicted as :math:`k` and :math:`S_k`
    (the support) the number of class :math:`k`, all counted over every sample,
    even those whose other label is not in ``labels``:

    .. math::

        \text{precision}_k = \frac{TP_k}{P_k}, \qquad
        \text{recall}_k = \frac{TP_k}{S_k}, \qquad
        F_{1,k} = \frac{2\,TP_k}{P_k + S_k}
                = \frac{2\,\text{precision}_k\,\text{recall}_k}
                       {\text{precision}_k + \text{recall}_k}.

    A ratio whose denominator is zero (a class never predicted, or never
    present) is defined as 0.0 and raises no warning, as scikit-learn does with
    ``zero_division=0``.

    Examples
    --------
    >>> p, r, f, s = precision_recall_f1([0, 0, 1, 1], [0, 1, 1, 1])
    >>> p.round(3), r, f.round(3), s
    (array([1.   , 0.667]), array([0.5, 1. ]), array([0.667, 0.8  ]), array([2, 2]))
    >>> round(precision_recall_f1([0, 0, 1, 1], [0, 1, 1, 1], average="macro")[2], 4)
    0.7333
    """
    if average is not None and average not in AVERAGES:
        raise ValueError(f"average must be None or one of {sorted(AVERAGES)}, got {average!r}.")
    true, pred = _check_targets(y_true, y_pred)
    classes = _resolve_labels(labels, true, pred)
    # Counted over all samples, not only those whose both labels are in ``labels``:
    # a prediction of class k is a false positive whatever the true class is.
    true_index, true_found = _label_indices(true, classes)
    pred_index, pred_found = _label_indices(pred, classes)
    hit = true_found & (true == pred)
    tp = np.bincount(true_index[hit], minlength=classes.size)
    pred_count = np.bincount(pred_index[pred_found], minlength=classes.size)
    support = np.bincount(true_index[true_found], minlength=classes.size)
    precision = _safe_divide(tp, pred_count)
    recall = _safe_divide(tp, support)
    f1 = _safe_divide(2 * tp, pred_count + support)
    if average is None:
        return precision, recall, f1, support
    scores = AVERAGES[average](precision, recall, f1, support, tp, pred_count)
    return (*scores, int(support.sum()))


def classification_report(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    labels: ArrayLike | None = None,
    target_names: list[str] | None = None,
    digits: int = 2,
) -> str:
    r"""Text table of precision, recall, F1 and support per class and averaged.

    The layout matches scikit-learn's ``classification_report``: one row per
    class, then ``accuracy`` (or ``micro avg`` when ``labels`` leaves some
    classes out), ``macro avg`` and ``weighted avg``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True class labels.
    y_pred : array-like of shape (n_samples,)
        Predicted class labels.
    labels : array-like of shape (n_classes,), default=None
        The classes to report, in row order. ``None`` uses the sorted union of
        the labels in ``y_true`` and ``y_pred``.
    target_names : list of str of length n_classes, default=None
        Display name of each class; ``None`` prints the labels themselves.
    digits : int, default=2
        Number of decimals printed for each score.

    Returns
    -------
    report : str
        The table, ending with a newline.

    Raises
    ------
    ValueError
        If ``target_names`` does not have one name per class, if ``digits`` is
        negative, or for any input that :func:`precision_recall_f1` refuses.
    TypeError
        If ``digits`` is not an integer, or string labels are mixed with
        numeric labels.

    Notes
    -----
    The numbers are those of :func:`precision_recall_f1`; the support of the
    average rows is the total support of the reported classes.

    Examples
    --------
    >>> print(classification_report([0, 0, 1, 1], [0, 1, 1, 1], target_names=["no", "yes"]))
                  precision    recall  f1-score   support
    <BLANKLINE>
              no       1.00      0.50      0.67         2
             yes       0.67      1.00      0.80         2
    <BLANKLINE>
        accuracy                           0.75         4
       macro avg       0.83      0.75      0.73         4
    weighted avg       0.83      0.75      0.73         4
    <BLANKLINE>
    """
    digits = check_int(digits, "digits", low=0)
    true, pred = _check_targets(y_true, y_pred)
    all_labels = np.unique(np.concatenate([true, pred]))
    classes = _resolve_labels(labels, true, pred)
    if target_names is None:
        names = [str(label) for label in classes]
    else:
        names = [str(name) for name in target_names]
        if len(names) != classes.size:
            raise ValueError(
                f"target_names has {len(names)} names but there are {classes.size} "
                f"classes ({classes.tolist()}); pass one name per class, or set labels."
            )
    # Micro averaging over every label that occurs is exactly the accuracy.
    micro_is_accuracy = np.isin(all_labels, classes).all()

    precision, recall, f1, support = precision_recall_f1(true, pred, labels=classes)
    width = max(len("weighted avg"), digits, *(len(name) for name in names))
    headers = ("precision", "recall", "f1-score", "support")
    lines = [" " * width + " " + "".join(f" {h:>9}" for h in headers), ""]
    for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True):
        lines.append(
            f"{name:>{width}} " + "".join(f" {v:>9.{digits}f}" for v in (p, r, f)) + f" {s:>9}"
        )
    lines.append("")
    for average in ("micro", "macro", "weighted"):
        p, r, f, s = precision_recall_f1(true, pred, labels=classes, average=average)
        if average == "micro" and micro_is_accuracy:
            lines.append(f"{'accuracy':>{width}} " + " " * 20 + f" {f:>9.{digits}f} {s:>9}")
        else:
            lines.append(
                f"{average + ' avg':>{width}} "
                + "".join(f" {v:>9.{digits}f}" for v in (p, r, f))
                + f" {s:>9}"
            )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# Binary ranking: ROC curve and AUC
# ---------------------------------------------------------------------------


def _check_binary(
    y_true: ArrayLike, scores: ArrayLike, pos_label: object
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Validate binary targets and scores; return (is_positive, scores)."""
    true = _as_1d(y_true, "y_true")
    score = _as_1d(
        scores,
        "scores",
        hint="For a (n_samples, 2) predict_proba output pass proba[:, 1].",
    )
    if true.shape[0] != score.shape[0]:
        raise ValueError(
            f"y_true has {true.shape[0]} samples but scores has {score.shape[0]}; "
            "pass exactly one score per sample."
        )
    if score.dtype.kind not in "biuf":
        raise TypeError(f"scores must be numeric, got dtype {score.dtype}.")
    score = score.astype(np.float64, copy=False)
    if not np.all(np.isfinite(score)):
        raise ValueError("scores contains NaN or infinity; every score must be finite.")
    classes = np.unique(true)
    if classes.size != 2:
        raise ValueError(
            f"y_true must hold exactly two classes for a binary ROC, got {classes.size}: "
            f"{classes.tolist()[:10]}. For multiclass, score one class against the rest, "
            "e.g. y_true == k with scores proba[:, k]."
        )
    if pos_label is None:
        pos_label = classes[1]
    elif pos_label not in classes.tolist():
        raise ValueError(
            f"pos_label={pos_label!r} is not one of the classes in y_true "
            f"{classes.tolist()}; pass one of them."
        )
    return true == pos_label, score


def roc_curve(
    y_true: ArrayLike,
    scores: ArrayLike,
    *,
    pos_label: object = None,
    drop_intermediate: bool = True,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    r"""Receiver operating characteristic of binary scores.

    Each threshold :math:`t` classifies ``scores >= t`` as positive; the curve
    traces the false positive rate against the true positive rate as :math:`t`
    falls from :math:`+\infty` to the lowest score.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, exactly two distinct values.
    scores : array-like of shape (n_samples,)
        Scores where higher means "more likely positive": probabilities of the
        positive class, or logits.
    pos_label : object, default=None
        The label of the positive class; ``None`` takes the larger of the two
        labels (1 for {0, 1}, True for booleans).
    drop_intermediate : bool, default=True
        Drop thresholds that lie on a straight segment of the curve; the area
        under it is unchanged. ``False`` keeps one threshold per distinct score.

    Returns
    -------
    fpr : ndarray of shape (n_thresholds,)
        False positive rate at each threshold, non-decreasing from 0 to 1.
    tpr : ndarray of shape (n_thresholds,)
        True positive rate at each threshold, non-decreasing from 0 to 1.
    thresholds : ndarray of shape (n_thresholds,)
        Decreasing thresholds; the first is ``inf`` so that the curve starts at
        (0, 0).

    Raises
    ------
    ValueError
        If ``y_true`` or ``scores`` is not 1-D or is empty, if their lengths
        differ, if ``scores`` is not finite, if ``y_true`` does not hold exactly
        two classes, or if ``pos_label`` is not one of them.
    TypeError
        If ``scores`` is not numeric.

    Notes
    -----
    With :math:`n_+` positives and :math:`n_-` negatives,

    .. math::

        \mathrm{TPR}(t) = \frac{\#\{i : y_i = +,\ s_i \ge t\}}{n_+}, \qquad
        \mathrm{FPR}(t) = \frac{\#\{i : y_i = -,\ s_i \ge t\}}{n_-}.

    Both are cumulative sums over the samples sorted by decreasing score, read
    off at the last sample of each group of tied scores; the output is the same
    as scikit-learn's ``roc_curve``.

    Examples
    --------
    >>> fpr, tpr, thresholds = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> fpr
    array([0. , 0. , 0.5, 0.5, 1. ])
    >>> tpr
    array([0. , 0.5, 0.5, 1. , 1. ])
    >>> thresholds
    array([ inf, 0.8 , 0.4 , 0.35, 0.1 ])
    """
    positive, score = _check_binary(y_true, scores, pos_label)
    order = np.argsort(-score, kind="stable")
    score = score[order]
    positive = positive[order]
    # The last index of each run of equal scores, then the final sample.
    last_of_tie = np.flatnonzero(np.diff(score))
    threshold_index = np.append(last_of_tie, score.size - 1)
    tps = np.cumsum(positive)[threshold_index]
    fps = threshold_index + 1 - tps
    thresholds = score[threshold_index]
    if drop_intermediate and tps.size > 2:
        # A point is kept where the curve bends: a non-zero second difference.
        bends = np.logical_or(np.diff(fps, 2), np.diff(tps, 2))
        keep = np.flatnonzero(np.concatenate(([True], bends, [True])))
        tps, fps, thresholds = tps[keep], fps[keep], thresholds[keep]
    tps = np.concatenate(([0], tps))
    fps = np.concatenate(([0], fps))
    thresholds = np.concatenate(([np.inf], thresholds))
    return fps / fps[-1], tps / tps[-1], thresholds


def roc_auc_score(y_true: ArrayLike, scores: ArrayLike, *, pos_label: object = None) -> float:
    r"""Area under the ROC curve of binary scores.

    The probability that a random positive sample scores higher than a random
    negative one, with ties counting one half: 1.0 is a perfect ranking, 0.5 is
    chance.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, exactly two distinct values.
    scores : array-like of shape (n_samples,)
        Scores where higher means "more likely positive".
    pos_label : object, default=None
        The label of the positive class; ``None`` takes the larger of the two.

    Returns
    -------
    auc : float
        Area under the ROC curve, in :math:`[0, 1]`.

    Raises
    ------
    ValueError
        If ``y_true`` or ``scores`` is not 1-D or is empty, if their lengths
        differ, if ``scores`` is not finite, if ``y_true`` does not hold exactly
        two classes, or if ``pos_label`` is not one of them.
    TypeError
        If ``scores`` is not numeric.

    Notes
    -----
    The area equals the Mann–Whitney :math:`U` statistic normalised by the
    number of positive–negative pairs. With :math:`R_i` the rank of
    :math:`s_i` among all scores (1 = lowest, tied scores sharing the mean of
    their ranks),

    .. math::

        \mathrm{AUC} = \frac{U}{n_+ n_-}, \qquad
        U = \sum_{i : y_i = +} R_i - \frac{n_+ (n_+ + 1)}{2}
          = \sum_{i : y_i = +} \sum_{j : y_j = -}
            \Big([s_i > s_j] + \tfrac12 [s_i = s_j]\Big).

    This is the trapezoidal area under :func:`roc_curve`, computed in
    :math:`O(n \log n)` from one sort.

    References
    ----------
    Hanley, J. A. and McNeil, B. J. (1982). The meaning and use of the area
    under a receiver operating characteristic (ROC) curve. Radiology 143(1).

    Examples
    --------
    >>> roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> roc_auc_score([0, 1], [0.5, 0.5])
    0.5
    """
    positive, score = _check_binary(y_true, scores, pos_label)
    _, group, counts = np.unique(score, return_inverse=True, return_counts=True)
    # Average 1-based rank of each group of tied scores.
    group_rank = np.cumsum(counts) - (counts - 1) / 2.0
    ranks = group_rank[group.reshape(-1)]
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


# ---------------------------------------------------------------------------
# Probabilistic predictions
# ---------------------------------------------------------------------------


def log_loss(
    y_true: ArrayLike,
    proba: ArrayLike,
    *,
    eps: float | None = None,
    labels: ArrayLike | None = None,
) -> float:
    r"""Mean negative log-likelihood of the true class under predicted probabilities.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True classes: indices ``0 .. n_classes - 1`` into the columns of
        ``proba`` or, when ``labels`` is given, values of ``labels``.
    proba : array-like of shape (n_samples,) or (n_samples, n_classes)
        Predicted probabilities, each row summing to 1 (a softmax output). A
        1-D array is the probability of the positive class (index 1) of a
        binary problem.
    eps : float, default=None
        Probabilities are clipped to :math:`[\epsilon, 1 - \epsilon]` so that a
        confident mistake costs :math:`-\log \epsilon` rather than infinity.
        ``None`` uses the machine epsilon of ``proba``'s dtype (as scikit-learn
        does); otherwise a number in :math:`(0, 0.5)`.
    labels : array-like of shape (n_classes,), default=None
        The label of each column of ``proba``, in column order; ``y_true`` then
        holds such labels instead of indices.

    Returns
    -------
    loss : float
        Mean over samples of :math:`-\log p_{i, y_i}`; 0 is perfect.

    Raises
    ------
    ValueError
        If ``y_true`` is not 1-D or is empty; if ``proba`` is not 1-D or 2-D
        with at least two columns, has a different number of rows, holds values
        outside :math:`[0, 1]` or rows that do not sum to 1; if ``eps`` is out of
        range; if an entry of ``y_true`` is not a valid class index (or not in
        ``labels``); or if ``labels`` does not have one unique entry per column.
    TypeError
        If ``proba`` or ``eps`` is not numeric.

    Notes
    -----
    .. math::

        \mathcal{L} = -\frac{1}{n} \sum_{i=1}^{n}
            \log \operatorname{clip}(p_{i, y_i}, \epsilon, 1 - \epsilon).

    This is the cross-entropy of predicted probabilities, for scoring. Training
    losses in :mod:`nnscratch.nn.losses` take logits instead and never clip.

    Examples
    --------
    >>> round(log_loss([0, 1, 1], [[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]]), 5)
    0.22839
    >>> round(log_loss(["ham", "spam"], [0.1, 0.8], labels=["ham", "spam"]), 5)
    0.16425
    """
    true = _as_1d(y_true, "y_true")
    prob = _check_probabilities(proba)
    n_samples, n_classes = prob.shape
    if true.shape[0] != n_samples:
        raise ValueError(
            f"y_true has {true.shape[0]} samples but proba has {n_samples} rows; "
            "pass one row of probabilities per sample."
        )
    if eps is None:
        eps = float(np.finfo(prob.dtype).eps)
    else:
        eps = check_real(eps, "eps", low=0.0, high=0.5, low_inclusive=False, high_inclusive=False)
    index = _column_index(true, labels, n_classes)
    picked = np.clip(prob[np.arange(n_samples), index], eps, 1 - eps)
    return float(-np.mean(np.log(picked)))


def _check_probabilities(proba: ArrayLike) -> NDArray:
    """``proba`` as a float array (n_samples, n_classes) of probabilities whose rows sum to 1;
    a 1-D array is the positive-class probability of a binary problem."""
    prob = np.asarray(proba)
    if prob.dtype.kind not in "biuf":
        raise TypeError(f"proba must be numeric, got dtype {prob.dtype}.")
    if prob.dtype.kind != "f":
        prob = prob.astype(np.float64)
    if prob.ndim == 1:
        prob = np.stack([1 - prob, prob], axis=1)
    elif prob.ndim != 2 or prob.shape[1] < 2:
        raise ValueError(
            f"proba must have shape (n_samples,) or (n_samples, n_classes) with "
            f"n_classes >= 2, got shape {np.shape(proba)}. For a single column of "
            "positive-class probabilities, pass proba.ravel()."
        )
    if not (np.all(np.isfinite(prob)) and prob.min() >= 0 and prob.max() <= 1):
        raise ValueError(
            f"proba must hold probabilities in [0, 1], got values in "
            f"[{prob.min().item()!r}, {prob.max().item()!r}]. If these are logits, apply a softmax "
            "(or a sigmoid for one column) first."
        )
    tolerance = np.sqrt(np.finfo(prob.dtype).eps)
    row_sums = prob.sum(axis=1)
    if not np.allclose(row_sums, 1.0, rtol=tolerance, atol=0.0):
        worst = row_sums[np.argmax(np.abs(row_sums - 1))]
        raise ValueError(
            f"each row of proba must sum to 1, but one sums to {worst.item()!r}. "
            "Normalise with proba / proba.sum(axis=1, keepdims=True) or use a softmax."
        )
    return prob


def _column_index(true: NDArray, labels: ArrayLike | None, n_classes: int) -> NDArray:
    """The column of ``proba`` that holds each sample's true class."""
    if labels is None:
        if true.dtype.kind not in "biuf" or not np.all(np.mod(true, 1) == 0):
            raise ValueError(
                f"y_true must hold class indices 0..{n_classes - 1} when labels is None, "
                f"got values of dtype {true.dtype}; pass labels=[...] to name the classes."
            )
        index = true.astype(np.int64)
        bad = (index < 0) | (index >= n_classes)
        if bad.any():
            raise ValueError(
                f"y_true holds {true[bad][0].item()!r}, not a class index in 0..{n_classes - 1} "
                f"for proba with {n_classes} columns; pass labels=[...] if y_true holds labels."
            )
        return index
    classes = _resolve_labels(labels, true)
    if classes.size != n_classes:
        raise ValueError(
            f"labels has {classes.size} entries but proba has {n_classes} columns; "
            "pass one label per column, in column order."
        )
    index, found = _label_indices(true, classes)
    if not found.all():
        raise ValueError(
            f"y_true holds {true[~found][0].item()!r}, which is not in labels "
            f"{classes.tolist()}; add it to labels."
        )
    return index
