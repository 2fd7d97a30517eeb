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

import numpy as np


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

    Measured: the plain expression made a batch-128 epoch of 784-256-128-10 about 20 % slower
    (and 784-512-256-10 likewise), see ``docs/performance.md``.
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
