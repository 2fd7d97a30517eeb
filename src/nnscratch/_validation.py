"""Shared checks for public boundaries: constructors, ``fit``, loaders and the CLI.

Each helper raises with a message that names the parameter, what was expected, what came,
and how to fix it. Inner loops never call these.
"""

from __future__ import annotations

import numbers
import sys
from typing import Any

import numpy as np

#: The floating dtypes a model may compute in.
FLOAT_DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}


def check_dtype(dtype: Any, name: str = "dtype") -> np.dtype:
    """Resolve ``dtype`` to ``np.float32`` or ``np.float64``, or raise ``ValueError``."""
    try:
        resolved = np.dtype(dtype)
    except TypeError as error:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}.") from error
    if resolved not in FLOAT_DTYPES.values():
        raise ValueError(
            f"{name} must be float32 or float64, got {resolved}. "
            "Use float32 for speed or float64 for exactness."
        )
    return resolved


def check_real(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Check that ``value`` is a real number within the given bounds and return it as float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}.")
    try:
        value = float(value)
    except OverflowError:  # an integer such as 10**400
        raise ValueError(
            f"{name} must be finite, got an integer of about {_digits(value)} digits, too large "
            "for a float."
        ) from None
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}.")
    if low is not None and (value < low or (value == low and not low_inclusive)):
        bound = ">=" if low_inclusive else ">"
        raise ValueError(f"{name} must be {bound} {low}, got {value}.")
    if high is not None and (value > high or (value == high and not high_inclusive)):
        bound = "<=" if high_inclusive else "<"
        raise ValueError(f"{name} must be {bound} {high}, got {value}.")
    return value


def _digits(value: numbers.Integral) -> int:
    """The decimal digits of a huge integer (``str`` refuses ones over 4300 digits)."""
    return int(int(value).bit_length() * 0.30103) + 1


def check_int(value: Any, name: str, *, low: int | None = None) -> int:
    """Check that ``value`` is an integer (not a bool) at least ``low`` and return it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}.")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}.")
    return value


def check_features(
    X: Any, dtype: np.dtype, *, name: str = "X", allow_images: bool = False
) -> np.ndarray:
    """Return ``X`` as a C-contiguous, finite 2-D array of ``dtype``, or raise a clear error.

    With ``allow_images=True`` (:func:`nnscratch.nn.training.fit`, whose models may start with
    a convolution) a 4-D batch of images ``(n_samples, channels, height, width)`` is accepted
    too; whether its shape fits the model is the model's check
    (:meth:`nnscratch.nn.model.Sequential.check_input`).

    Casting to the model's dtype is the model's choice, made once here, never inside a layer.
    The messages contain the phrases scikit-learn's ``check_array`` uses ("Complex data not
    supported", "Reshape your data", "0 feature(s)", "sparse"), because its estimator checks
    look for them.

    Raises
    ------
    TypeError
        For sparse matrices, text, or objects that are not numbers.
    ValueError
        For complex numbers, a shape other than 2-D (or 4-D, with ``allow_images``), no rows
        or columns, NaN or infinity.
    """
    if _is_sparse(X):
        raise TypeError(
            f"Sparse input is not supported: {name} is a scipy.sparse {type(X).__name__}. Pass "
            f"a dense array, e.g. {name}.toarray()."
        )
    try:
        array = np.asarray(X)
    except ValueError as error:  # ragged nested lists
        raise ValueError(f"{name} must be a rectangular 2-D array: {error}") from None
    if array.dtype.kind == "c":
        raise ValueError(
            f"Complex data not supported: {name} has dtype {array.dtype}. Split the real and "
            "imaginary parts into separate features."
        )
    if array.dtype.kind in "USV":
        raise TypeError(
            f"{name} must hold numbers, got an array of dtype {array.dtype}; encode categorical "
            "features as numbers first (e.g. one-hot)."
        )
    if array.ndim != 2 and not (allow_images and array.ndim == 4):
        _raise_wrong_shape(array, name, allow_images=allow_images)
    n_samples, n_features = array.shape[0], int(np.prod(array.shape[1:]))
    if n_samples == 0:
        raise ValueError(
            f"{name} has 0 sample(s) (shape={array.shape}) while a minimum of 1 is required; "
            "pass at least one row."
        )
    if n_features == 0:
        raise ValueError(
            f"{name} has 0 feature(s) (shape={array.shape}) while a minimum of 1 is required; "
            "pass at least one column."
        )
    try:
        array = np.asarray(array, dtype=dtype)  # object arrays of numbers convert here
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must hold numbers only: {error}") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinity; clean or impute the input first.")
    return np.ascontiguousarray(array)


def _raise_wrong_shape(array: np.ndarray, name: str, *, allow_images: bool) -> None:
    """The error for an ``X`` of the wrong number of dimensions, with the fix for its shape."""
    if allow_images:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features) or 4-D (n_samples, channels, height, "
            f"width), got shape {array.shape}. For one channel of images add its axis, "
            f"{name}[:, None]; for rows, {name}.reshape(len({name}), -1)."
        )
    if array.ndim == 1:
        hint = ("Reshape your data either using X.reshape(-1, 1) if it has a single "
                "feature or X.reshape(1, -1) if it is a single sample.")
    elif array.ndim == 0:
        hint = "Reshape your data: pass a 2-D array (n_samples, n_features)."
    else:
        hint = "Flatten images first, e.g. X.reshape(len(X), -1)."
    raise ValueError(
        f"{name} must be 2-D (n_samples, n_features), got shape {array.shape}. {hint}"
    )


def _is_sparse(X: Any) -> bool:
    # A scipy.sparse object can only exist once scipy.sparse is imported: no import needed.
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and bool(sparse.issparse(X))


def check_n_features(X: np.ndarray, expected: int, *, name: str = "X") -> None:
    """Raise if ``X`` has a different number of columns than the model expects."""
    if X.shape[1] != expected:
        raise ValueError(
            f"{name} has {X.shape[1]} features, but the model expects {expected}. "
            "Use inputs preprocessed the same way as the training data."
        )


def check_sample_weight(
    sample_weight: Any, n_samples: int, *, dtype: Any = np.float64
) -> np.ndarray:
    """Return ``sample_weight`` as a new 1-D array of ``n_samples`` weights, or raise.

    The one check of per-sample weights, used by losses, ``fit``, the classifier and the
    metrics. A scalar stands for that weight on every sample (as in scikit-learn). The result
    is a copy, so the caller's array is never written.

    Raises
    ------
    ValueError
        If the weights are not one number per sample, are not finite, are negative, or are all
        zero.
    """
    try:
        weights = np.array(sample_weight, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise ValueError(f"sample_weight must hold numbers, one per sample: {error}") from None
    if weights.ndim == 0:
        weights = np.full(n_samples, weights, dtype=dtype)
    if weights.shape != (n_samples,):
        raise ValueError(
            f"sample_weight has shape {weights.shape} but there are {n_samples} samples; pass "
            f"one weight per sample, shape ({n_samples},)."
        )
    invalid = weights[~np.isfinite(weights) | (weights < 0)]
    if invalid.size:
        raise ValueError(
            f"sample_weight must hold finite, non-negative numbers, got {invalid[0]}; give "
            "every sample a weight >= 0."
        )
    if n_samples and not np.any(weights > 0):
        raise ValueError(
            "sample_weight is zero for every sample, so there is nothing to learn from; give at "
            "least one sample a positive weight."
        )
    return weights


def check_rng(rng: Any, name: str = "rng") -> np.random.Generator | np.random.RandomState:
    """Return a random generator: ``None`` → a fresh ``default_rng()``, an int → seeded."""
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"{name} must be a numpy Generator, an int seed or None, got {rng!r}.")


class NotFittedError(ValueError, AttributeError):
    """A model was used before ``fit``; the same base classes as scikit-learn's."""
