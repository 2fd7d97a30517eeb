r"""The speed tricks, in one place: each is the plain NumPy expression it equals, computed faster.

Layers and optimisers read as their equations. Where a benchmark showed that another way of
computing the same numbers pays clearly, that way lives here, once: its docstring gives the
plain expression it equals (up to rounding), ``tests/test_kernels.py`` asserts the equality,
and the docstring records the gain measured, by interleaved A/B timing in one process, against
the plain expression in place. A trick whose gain is small is not kept; ``docs/performance.md``
lists those measured and dropped.

What is left out: anything that changes the numbers by more than rounding.
"""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Any

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    r"""The logistic function :math:`1 / (1 + e^{-x})`, element-wise, in one new array.

    Equals::

        with np.errstate(over="ignore"):
            return 1 / (1 + np.exp(-x))

    Parameters
    ----------
    x : ndarray
        Any shape, float32 or float64.

    Returns
    -------
    ndarray of the same shape and dtype as ``x``, values in :math:`[0, 1]`.

    Notes
    -----
    The same four operations, in the same order, but each writes into the array the first one
    made, where the expression above allocates three. For :math:`x < -709` (float64;
    :math:`-89` in float32) :math:`e^{-x}` overflows to infinity and :math:`1 / (1 + \infty) = 0`
    is the correct limit, so the overflow warning is silenced rather than avoided.

    Measured: the expression above took 12.9 ms on the tutorial's 12,700 x 196 float32
    activations, this 11.0 ms (26.7 and 23.3 ms in float64): 4 % of a float32 iteration.
    """
    y = np.negative(x)
    with np.errstate(over="ignore"):
        np.exp(y, out=y)
    y += 1
    return np.reciprocal(y, out=y)


def sigmoid_backward(grad_output: np.ndarray, y: np.ndarray) -> np.ndarray:
    r"""The sigmoid's backward pass from its output :math:`y`: :math:`G \odot y (1 - y)`.

    Equals::

        grad_output * y * (1 - y)

    Notes
    -----
    Three passes over one new array instead of three passes and two temporaries. Measured on
    the tutorial's 12,700 x 196 arrays: 5.1 ms against 3.7 ms in float32 (12.0 against 10.1 ms
    in float64), 3 % of a float32 iteration.
    """
    grad_input = np.subtract(1, y)
    grad_input *= y
    grad_input *= grad_output
    return grad_input


def times_transpose(grad_output: np.ndarray, W: np.ndarray, like: np.ndarray | None = None
                    ) -> np.ndarray:
    r"""A dense layer's input gradient :math:`G W^\top`, in the memory order of ``like``.

    Equals, up to rounding::

        grad_output @ W.T

    Parameters
    ----------
    grad_output : ndarray of shape (n_samples, out_features)
    W : ndarray of shape (in_features, out_features)
    like : ndarray of shape (n_samples, in_features), default=None
        The layer's input: the result takes its memory order (C or F), because the layer
        below combines it element by element with arrays of that order (its cached output),
        and mixed orders make NumPy's element-wise loops stride through memory.

    Notes
    -----
    With one output (``W`` of shape ``(in_features, 1)``, the tutorial's last layer) the
    product has inner size 1: each entry is a single multiplication, and a broadcast multiply
    computes the same numbers, exactly, in one pass. BLAS's matrix product with inner size 1
    is slow: measured on the tutorial's (12,700, 1) x (1, 196), 4.2 ms against 1.7 ms in
    float32 (6.7 against 4.5 ms in float64), 5 % of a float32 iteration. Other shapes go to
    :func:`matmul`.
    """
    order = None if like is None else _memory_order(like)
    if W.shape[1] == 1:
        return np.multiply(grad_output, W.T, order=order or "K")
    return matmul(grad_output, W.T, order=order)


def adam_update(
    value: np.ndarray,
    grad: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    scratch: np.ndarray,
    *,
    learning_rate: float,
    beta1: float,
    beta2: float,
    eps: float,
    t: int,
) -> None:
    r"""One Adam step on one array, in place: 12 passes over memory and no allocation.

    Equals, up to rounding::

        m[...] = beta1 * m + (1 - beta1) * grad
        v[...] = beta2 * v + (1 - beta2) * grad**2
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        value -= learning_rate * m_hat / (np.sqrt(v_hat) + eps)

    Parameters
    ----------
    value, grad, m, v : ndarray, all of one shape and dtype
        ``value``, ``m`` and ``v`` are updated in place.
    scratch : ndarray of the same shape and dtype
        Workspace, overwritten.
    learning_rate, beta1, beta2, eps : float
    t : int
        The step number, from 1.

    Notes
    -----
    The moments are updated through ``scratch`` instead of temporaries, and the four scalars of
    the last line fold into two, with :math:`c_1 = 1 - \beta_1^t`, :math:`c_2 = 1 - \beta_2^t`:

    .. math:: \eta \frac{m / c_1}{\sqrt{v / c_2} + \epsilon}
              = \frac{m}{a \sqrt{v} + b}, \qquad
              a = \frac{c_1}{\eta \sqrt{c_2}}, \quad b = \frac{\epsilon\, c_1}{\eta}

    Measured: with the plain expression a batch-128 Adam epoch took 1.41 times as long on
    784-256-128-10 and 1.28 times on 784-512-256-10 (see ``docs/performance.md``).
    """
    m *= beta1
    np.multiply(grad, 1 - beta1, out=scratch)
    m += scratch
    v *= beta2
    np.multiply(grad, grad, out=scratch)
    scratch *= 1 - beta2
    v += scratch
    if learning_rate == 0:  # no step (and a and b would divide by zero)
        return
    c1, c2 = 1 - beta1**t, 1 - beta2**t
    np.sqrt(v, out=scratch)
    scratch *= c1 / (learning_rate * math.sqrt(c2))
    scratch += eps * c1 / learning_rate
    np.divide(m, scratch, out=scratch)
    value -= scratch


# =============================================================================================
# Matrix products in the layout this machine runs fastest (issue 23).
#
# Everything from here to the end of the section is one trick: a dense layer's three products
# (x @ W, x.T @ G, G @ W.T) are asked of BLAS in whichever of two equivalent layouts is faster
# for their shapes, dtype and operand layouts on the machine the code runs on, chosen by timing
# both the first time a shape is met (the way cuDNN's benchmark mode picks convolution
# algorithms). ``matmul_layouts()`` reports the choices, ``set_matmul_layout()`` and the
# environment variable NNSCRATCH_MATMUL_LAYOUT force one.
# =============================================================================================

#: The two ways of asking BLAS for :math:`C = A B`: ``"direct"`` writes :math:`C` row by row
#: (``a @ b``, a C-ordered result), ``"transposed"`` computes :math:`C^\top = B^\top A^\top` and
#: returns its transpose (``(b.T @ a.T).T``, the same numbers stored column by column).
MATMUL_LAYOUTS = ("direct", "transposed")
#: The environment variable read at import: ``auto`` (the default), ``direct`` or ``transposed``.
MATMUL_LAYOUT_ENV = "NNSCRATCH_MATMUL_LAYOUT"
#: Products of fewer multiply-adds (:math:`m k n`) than this are computed ``direct`` and never
#: timed: they take microseconds, where timing is noise and a look-up would cost more than any
#: gain (a single-row prediction is 200,704 multiply-adds per layer at most).
MATMUL_TUNE_MIN = 1 << 18
#: ``"transposed"`` is chosen only when it is faster than ``"direct"`` by 5 % or more: where
#: the two tie, results keep the plain expression's layout.
MATMUL_MARGIN = 0.95


def _layout_from_environment() -> str | None:
    value = os.environ.get(MATMUL_LAYOUT_ENV, "auto").strip().lower() or "auto"
    if value not in ("auto", *MATMUL_LAYOUTS):
        raise ValueError(
            f"{MATMUL_LAYOUT_ENV}={os.environ[MATMUL_LAYOUT_ENV]!r} is not a matrix-product "
            f"layout; set it to one of {['auto', *MATMUL_LAYOUTS]} or unset it."
        )
    return None if value == "auto" else value


_forced_layout: str | None = _layout_from_environment()
#: (a.shape, b.shape, a.dtype, b.dtype, a's order, b's order, order asked) -> the choice.
_layout_choices: dict[tuple[Any, ...], dict[str, Any]] = {}
_tuning_lock = threading.Lock()


def _memory_order(a: np.ndarray) -> str | None:
    """``"C"`` or ``"F"`` for a contiguous 2-D array, else None."""
    if a.flags.c_contiguous:
        return "C"
    if a.flags.f_contiguous:
        return "F"
    return None


def _direct(a: np.ndarray, b: np.ndarray, order: str | None) -> np.ndarray:
    c = a @ b
    return np.asfortranarray(c) if order == "F" else c


def _transposed(a: np.ndarray, b: np.ndarray, order: str | None) -> np.ndarray:
    c = (b.T @ a.T).T
    return np.ascontiguousarray(c) if order == "C" else c


_PRODUCTS = {"direct": _direct, "transposed": _transposed}


def matmul(a: np.ndarray, b: np.ndarray, *, order: str | None = None) -> np.ndarray:
    r"""The matrix product :math:`A B`, in the BLAS layout that is fastest here for its shapes.

    Equals, up to rounding::

        a @ b                              # order=None
        np.asarray(a @ b, order=order)     # order="C" or "F"

    Parameters
    ----------
    a : ndarray of shape (m, k)
    b : ndarray of shape (k, n)
        Either may be a transposed view (``x.T``, ``W.T``): BLAS reads those without a copy.
    order : {None, "C", "F"}, default=None
        The memory order the caller needs the result in; None takes whichever is fastest.

    Returns
    -------
    ndarray of shape (m, n)
        C-ordered, F-ordered (a transposed view of a C-ordered array) or as ``order`` asks.

    Notes
    -----
    BLAS computes :math:`C = A B` into row-major memory as the column-major product
    :math:`C^\top = B^\top A^\top`, so the two layouts of :data:`MATMUL_LAYOUTS` give its
    kernels the two dimensions :math:`m` and :math:`n` in swapped roles; which is faster
    depends on the CPU, the kernel set OpenBLAS picks and the dtype. Measured on a 2-core
    Intel Xeon with OpenBLAS 0.3.31's SkylakeX kernels, float64, the tutorial's
    :math:`12{,}700 \times 784` times :math:`784 \times 196`: 43 ms direct, 30 ms transposed
    (issue 23); on the AMD EPYC of ``docs/performance.md`` (Haswell kernels) the two tie.

    The first call with a given key (the shapes, dtypes and memory orders of ``a`` and ``b``,
    and ``order``) times both layouts on the caller's operands, twice each in the order
    direct, transposed, transposed, direct, keeps the faster (``"transposed"`` only if it is
    :data:`MATMUL_MARGIN` faster) and returns its result; later calls look the choice up in a
    dict. Products under :data:`MATMUL_TUNE_MIN` multiply-adds, and operands that are not 2-D,
    always go direct. The choice is made under a lock, so threads that predict at once share
    it.

    Reproducibility: the two layouts round differently (the same sums, added in another
    grouping), by far less than the tests' dtype-aware tolerances. Within a process a key's
    layout never changes once chosen, and the first call already returns the chosen layout's
    result, so seeded training is deterministic in a process; two processes, or two machines,
    may choose differently. To fix the layout, set ``NNSCRATCH_MATMUL_LAYOUT`` or call
    :func:`set_matmul_layout`.
    """
    layout = _forced_layout
    if a.ndim != 2 or b.ndim != 2:
        layout = "direct"
    elif layout is None:
        if a.shape[0] * a.shape[1] * b.shape[1] < MATMUL_TUNE_MIN:
            layout = "direct"
        else:
            key = (a.shape, b.shape, a.dtype, b.dtype, _memory_order(a), _memory_order(b), order)
            choice = _layout_choices.get(key)
            if choice is None:
                return _tune(key, a, b, order)
            layout = choice["layout"]
    return _PRODUCTS[layout](a, b, order)


def _tune(key: tuple[Any, ...], a: np.ndarray, b: np.ndarray, order: str | None) -> np.ndarray:
    """Time both layouts on these operands, record the faster, return its result."""
    with _tuning_lock:
        choice = _layout_choices.get(key)  # another thread may have chosen meanwhile
        if choice is not None:
            return _PRODUCTS[choice["layout"]](a, b, order)
        seconds = dict.fromkeys(MATMUL_LAYOUTS, math.inf)
        results = {}
        # ABBA: the first call of a process (cold caches, sleeping BLAS threads) is only one
        # of direct's two timings, and each layout keeps its faster.
        for layout in ("direct", "transposed", "transposed", "direct"):
            results.pop(layout, None)  # at most two results alive at once
            start = time.perf_counter()
            results[layout] = _PRODUCTS[layout](a, b, order)
            seconds[layout] = min(seconds[layout], time.perf_counter() - start)
        faster = seconds["transposed"] < MATMUL_MARGIN * seconds["direct"]
        layout = "transposed" if faster else "direct"
        _layout_choices[key] = {"layout": layout, "seconds": seconds}
        return results[layout]


def set_matmul_layout(layout: str) -> str:
    """Force the layout of every :func:`matmul` (``"direct"``, ``"transposed"``), or let each
    shape's timing choose again (``"auto"``); return the setting it replaces.

    For tests and benchmarks; the environment variable ``NNSCRATCH_MATMUL_LAYOUT`` sets the
    same at import. Forcing applies to every size (even the products too small to be timed);
    choices already timed are kept for when ``"auto"`` returns.

    Raises
    ------
    ValueError
        If ``layout`` is not one of ``"auto"``, ``"direct"``, ``"transposed"``.
    """
    global _forced_layout
    if layout not in ("auto", *MATMUL_LAYOUTS):
        raise ValueError(
            f"layout must be one of {['auto', *MATMUL_LAYOUTS]}, got {layout!r}."
        )
    previous = _forced_layout or "auto"
    _forced_layout = None if layout == "auto" else layout
    return previous


def matmul_layouts() -> list[dict[str, Any]]:
    """Which layout :func:`matmul` chose for each key it timed in this process, and the times.

    Returns
    -------
    list of dict
        One per key: ``a`` and ``b`` (shapes), ``dtype``, ``a_order`` and ``b_order`` (``"C"``,
        ``"F"`` or None), ``order`` (asked for), ``layout`` (chosen) and ``seconds`` (the
        faster of the two timings of each layout), in the order they were chosen.
    """
    with _tuning_lock:
        items = list(_layout_choices.items())
    return [
        {"a": list(a_shape), "b": list(b_shape), "dtype": np.result_type(a_dtype, b_dtype).name,
         "a_order": a_order, "b_order": b_order, "order": order, "layout": choice["layout"],
         "seconds": dict(choice["seconds"])}
        for (a_shape, b_shape, a_dtype, b_dtype, a_order, b_order, order), choice in items
    ]


def clear_matmul_layouts() -> None:
    """Forget every timed choice, so that each key is timed again at its next product."""
    with _tuning_lock:
        _layout_choices.clear()


def affine(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    r"""A dense layer's forward pass :math:`x W + b`.

    Equals, up to rounding::

        x @ W + b

    Notes
    -----
    The product goes through :func:`matmul` (its layout, and so the memory order of the
    result, is whichever is faster here); the bias is then added in place, into the array the
    product made, where the expression above allocates a second ``(n_samples, out_features)``
    array.
    """
    y = matmul(x, W)
    y += b
    return y


def transpose_times(x: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
    r"""A dense layer's weight gradient :math:`x^\top G`, C-ordered like the weights.

    Equals, up to rounding::

        x.T @ grad_output

    Notes
    -----
    Through :func:`matmul` with ``order="C"``: the optimiser updates the C-ordered weights
    with it element by element, which runs at full speed only when both have one order. The
    result is ``(in_features, out_features)``, small next to the product, so copying a
    transposed result into that order costs little.
    """
    return matmul(x.T, grad_output, order="C")
# ============================= end of the matrix-product section =============================
