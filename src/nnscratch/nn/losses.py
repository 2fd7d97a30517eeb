r"""Loss functions that take logits, mean-reduced, with their gradients.

Each loss has ``forward(logits, y, *, sample_weight=None) -> float`` and ``backward() -> grad``,
where ``grad`` is :math:`\partial L / \partial \text{logits}`, shaped like the logits.

The output non-linearity is fused into the loss: sigmoid with binary cross-entropy, softmax with
cross-entropy. The fused gradient is the famous :math:`(p - y)/n` — no division by
:math:`p(1-p)` that could blow up — and the value is computed with ``logaddexp`` /
log-sum-exp, never ``log(clip(p))``, so it stays finite and exact for any logit.

Weighting: a per-example weight :math:`w_i` (``sample_weight`` times ``class_weight[y_i]``)
turns the mean into a weighted mean :math:`\sum_i w_i \ell_i / \sum_i w_i`; without weights it
is the plain mean over the batch. This matches PyTorch's ``CrossEntropyLoss(weight=...)``.

What is left out: label smoothing, focal loss, hinge loss.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from nnscratch._validation import check_sample_weight
from nnscratch.nn.activations import sigmoid, softmax


class Loss:
    """Base class: ``forward`` computes the mean loss and caches what ``backward`` needs.

    Parameters
    ----------
    class_weight : mapping of int to float, sequence of float or None, default=None
        Weight of each class index, multiplied into every example's weight.

    Attributes
    ----------
    is_classification : bool
        Whether the targets are classes: then :meth:`predict` gives class indices and training
        reports an accuracy. ``False`` for a regression loss.
    """

    is_classification: ClassVar[bool] = True

    def __init__(self, class_weight: Mapping[int, float] | np.ndarray | None = None) -> None:
        self.class_weight = class_weight
        self._grad: np.ndarray | None = None

    def forward(
        self, logits: np.ndarray, y: np.ndarray, *, sample_weight: np.ndarray | None = None
    ) -> float:
        """Return the (weighted) mean loss over the batch."""
        raise NotImplementedError

    def backward(self) -> np.ndarray:
        """Return dL/dlogits from the last ``forward`` call."""
        if self._grad is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() was called before forward(); "
                "compute the loss first."
            )
        return self._grad

    def predict(self, logits: np.ndarray) -> np.ndarray:
        """Class indices predicted from logits (classification losses only)."""
        raise TypeError(
            f"{type(self).__name__} is a regression loss: its outputs are values, not classes."
        )

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """The output non-linearity the loss fuses, applied to ``logits``."""
        return logits

    def class_probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Probabilities of every class, shape ``(n_samples, n_classes)``."""
        return self.probabilities(logits)

    def _weights(
        self, y_index: np.ndarray | None, n_samples: int, sample_weight: np.ndarray | None,
        dtype: np.dtype,
    ) -> np.ndarray | None:
        """Per-example weights normalised to sum to ``n_samples`` (``None`` when unweighted)."""
        if sample_weight is None and self.class_weight is None:
            return None
        weights = np.ones(n_samples, dtype=dtype)
        if sample_weight is not None:
            weights = check_sample_weight(sample_weight, n_samples, dtype=dtype)
        if self.class_weight is not None:
            if y_index is None:
                raise ValueError("class_weight needs class labels, not probability targets.")
            table = _class_weight_table(self.class_weight, int(y_index.max()) + 1, dtype)
            weights *= table[y_index]
        total = weights.sum()
        if total <= 0:
            raise ValueError(
                "The weights of this batch sum to zero (sample_weight times class_weight); "
                "give the samples of each class a positive weight."
            )
        # Scaling so the weights sum to n lets every loss keep its unweighted "/ n" formula.
        return weights * (n_samples / total)


def _class_weight_table(
    class_weight: Mapping[int, float] | np.ndarray, n_classes: int, dtype: np.dtype
) -> np.ndarray:
    if isinstance(class_weight, Mapping):
        size = max(n_classes, max(class_weight, default=-1) + 1)
        table = np.ones(size, dtype=dtype)
        for index, weight in class_weight.items():
            table[int(index)] = weight
        return table
    table = np.asarray(class_weight, dtype=dtype).reshape(-1)
    if table.shape[0] < n_classes:
        raise ValueError(
            f"class_weight has {table.shape[0]} entries but labels go up to {n_classes - 1}; "
            "give one weight per class."
        )
    return table


class MeanSquaredError(Loss):
    r"""Mean squared error between predictions and targets (no output non-linearity).

    Notes
    -----
    For predictions :math:`z` and targets :math:`y` of shape ``(n_samples, n_outputs)``,
    :math:`m` = ``n_outputs``:

    .. math:: L = \frac{1}{n} \sum_i w_i \frac{1}{m} \sum_j (z_{ij} - y_{ij})^2, \qquad
              \frac{\partial L}{\partial z_{ij}} = \frac{2 w_i (z_{ij} - y_{ij})}{n m}

    with :math:`w_i = 1` unweighted. This is PyTorch's ``MSELoss()`` (mean over all elements).
    """

    is_classification = False

    def forward(
        self, logits: np.ndarray, y: np.ndarray, *, sample_weight: np.ndarray | None = None
    ) -> float:
        z = logits.reshape(len(logits), -1)
        target = np.asarray(y, dtype=z.dtype).reshape(z.shape)
        n, m = z.shape
        diff = z - target
        weights = self._weights(None, n, sample_weight, z.dtype)
        per_sample = np.mean(diff * diff, axis=1)
        if weights is not None:
            per_sample = per_sample * weights
            diff = diff * weights[:, None]
        self._grad = (diff * z.dtype.type(2.0 / (n * m))).reshape(logits.shape)
        return float(np.mean(per_sample))


class BinaryCrossEntropy(Loss):
    r"""Sigmoid and binary cross-entropy, fused, on logits.

    Parameters
    ----------
    class_weight : mapping or sequence, default=None
        Weights for class 0 and class 1.

    Notes
    -----
    For logits :math:`z` (shape ``(n_samples,)`` or ``(n_samples, 1)``), targets
    :math:`y \in \{0, 1\}` and :math:`p = \sigma(z)`:

    .. math::
        \ell_i = -\big[y_i \log p_i + (1 - y_i) \log(1 - p_i)\big]
               = \log(1 + e^{z_i}) - y_i z_i

    and :math:`\log(1 + e^{z})` is evaluated as ``logaddexp(0, z)``, exact for any :math:`z`.
    Mean-reduced, :math:`L = \frac{1}{n}\sum_i w_i \ell_i`, and the fused gradient is

    .. math:: \frac{\partial L}{\partial z_i} = \frac{w_i (p_i - y_i)}{n}

    This is PyTorch's ``BCEWithLogitsLoss``.
    """

    def forward(
        self, logits: np.ndarray, y: np.ndarray, *, sample_weight: np.ndarray | None = None
    ) -> float:
        z = logits.reshape(-1)
        target = np.asarray(y).reshape(-1)
        if target.shape[0] != z.shape[0]:
            raise ValueError(
                f"y has {target.shape[0]} labels but logits has {z.shape[0]} rows."
            )
        n = z.shape[0]
        target_float = target.astype(z.dtype, copy=False)
        if np.any(target_float < 0) or np.any(target_float > 1):
            raise ValueError(
                "BinaryCrossEntropy needs targets in [0, 1] (class 0 or 1, or a probability), "
                f"got values from {target_float.min()} to {target_float.max()}; relabel the two "
                "classes as 0 and 1."
            )
        per_sample = np.logaddexp(0, z) - target_float * z  # log(1 + e^z) - y z
        grad = sigmoid(z) - target_float                     # p - y
        index = target.astype(np.intp) if self.class_weight is not None else None
        weights = self._weights(index, n, sample_weight, z.dtype)
        if weights is not None:
            per_sample = per_sample * weights
            grad = grad * weights
        self._grad = (grad / n).reshape(logits.shape)
        return float(np.mean(per_sample))

    def predict(self, logits: np.ndarray) -> np.ndarray:
        """Class 1 where :math:`z > 0` (that is, :math:`p > 0.5`), else class 0."""
        return (logits.reshape(-1) > 0).astype(np.intp)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """:math:`\\sigma(z)`, the probability of class 1, shape ``(n_samples,)``."""
        return sigmoid(logits.reshape(-1))

    def class_probabilities(self, logits: np.ndarray) -> np.ndarray:
        """:math:`(1 - \\sigma(z), \\sigma(z))` per row, shape ``(n_samples, 2)``."""
        p = self.probabilities(logits)
        return np.column_stack([1 - p, p])


class SoftmaxCrossEntropy(Loss):
    r"""Softmax and cross-entropy, fused, on logits.

    Parameters
    ----------
    class_weight : mapping or sequence, default=None
        Weight of each class index.

    Notes
    -----
    For logits :math:`z` of shape ``(n_samples, n_classes)`` and class indices :math:`y_i`:

    .. math::
        \ell_i = -\log \operatorname{softmax}(z_i)_{y_i}
               = \operatorname{logsumexp}(z_i) - z_{i, y_i}

    with log-sum-exp computed after subtracting the row maximum. Mean-reduced, and with
    :math:`p_i = \operatorname{softmax}(z_i)` and one-hot :math:`Y`:

    .. math:: \frac{\partial L}{\partial z_{ij}} = \frac{w_i (p_{ij} - Y_{ij})}{n}

    ``y`` may also be a probability matrix of shape ``(n_samples, n_classes)`` (soft targets,
    :math:`\ell_i = -\sum_j Y_{ij} \log p_{ij}`). This is PyTorch's ``CrossEntropyLoss``.
    """

    def forward(
        self, logits: np.ndarray, y: np.ndarray, *, sample_weight: np.ndarray | None = None
    ) -> float:
        n, n_classes = logits.shape
        y = np.asarray(y)
        shifted = logits - np.max(logits, axis=1, keepdims=True)  # z - max(z): no overflow
        exp_shifted = np.exp(shifted)
        sum_exp = np.sum(exp_shifted, axis=1, keepdims=True)
        log_sum_exp = np.log(sum_exp)
        p = exp_shifted / sum_exp  # softmax(z)
        if y.ndim == 1:
            if y.shape[0] != n:
                raise ValueError(f"y has {y.shape[0]} labels but logits has {n} rows.")
            index = y.astype(np.intp, copy=False)
            if index.min(initial=0) < 0 or index.max(initial=0) >= n_classes:
                raise ValueError(
                    f"labels must be class indices in [0, {n_classes - 1}], "
                    f"got values from {index.min()} to {index.max()}."
                )
            rows = np.arange(n)
            # -log p[y] = logsumexp(z) - z[y], read off at the targets only.
            per_sample = log_sum_exp[:, 0] - shifted[rows, index]
            grad = p
            grad[rows, index] -= 1  # p - Y, with Y one-hot
        else:
            index = None
            target = y.astype(logits.dtype, copy=False).reshape(n, n_classes)
            per_sample = -np.sum(target * (shifted - log_sum_exp), axis=1)
            grad = p - target
        weights = self._weights(index, n, sample_weight, logits.dtype)
        if weights is not None:
            per_sample = per_sample * weights
            grad = grad * weights[:, None]
        self._grad = grad / n
        return float(np.mean(per_sample))

    def predict(self, logits: np.ndarray) -> np.ndarray:
        """The class with the largest logit in each row."""
        return np.argmax(logits, axis=1)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Row-wise softmax, shape ``(n_samples, n_classes)``."""
        return softmax(logits)


#: Losses by name, for string options.
LOSSES: dict[str, type[Loss]] = {
    "binary_cross_entropy": BinaryCrossEntropy,
    "softmax_cross_entropy": SoftmaxCrossEntropy,
    "mean_squared_error": MeanSquaredError,
}
