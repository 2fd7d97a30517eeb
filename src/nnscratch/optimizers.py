r"""Optimisers that update parameters in place, and learning-rate schedules.

An optimiser takes ``model.parameters()`` once and keeps its state (velocities, moments) in lists
aligned with it, as scikit-learn's ``_stochastic_optimizers.py`` does. Each ``step()`` reads
every ``Parameter.grad`` and updates ``Parameter.value`` in place; ``zero_grad()`` clears the
gradients. Ordered from the simplest to the most involved: SGD (with momentum and Nesterov),
Adam, AdamW. The update rules follow PyTorch's ``torch.optim`` exactly, so the two can be
compared step by step.

For speed, when the parameters live in one contiguous block
(:class:`~nnscratch.parameter.ParameterBlock`; a ``Sequential`` puts them there), a step is one
sweep of whole-array NumPy operations over all the weights instead of one per parameter.
(Splitting that sweep across threads was measured slower: BLAS's worker threads spin on the
other cores between matrix products.) If someone later re-assigns a ``param.value``, the
optimiser notices and updates parameter by parameter; the numbers are the same either way.

Schedules multiply the base learning rate as a function of the epoch; :func:`nnscratch.fit`
applies them at the start of each epoch.

What is left out: RMSprop, Adagrad, AMSGrad, LBFGS, per-parameter-group settings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from nnscratch._validation import check_int, check_real
from nnscratch.parameter import Parameter, ParameterBlock


class Optimizer:
    """Base class: holds the parameters, the learning rate and gradient clipping.

    Parameters
    ----------
    params : iterable of Parameter
        Usually ``model.parameters()``.
    learning_rate : float
        Step size :math:`\\eta`, positive.
    weight_decay : float, default=0.0
        Coefficient :math:`\\lambda` of the decay (how it enters depends on the optimiser).
    clip_norm : float or None, default=None
        If set, rescale all gradients together before each step so that their global L2 norm is
        at most ``clip_norm`` (as ``torch.nn.utils.clip_grad_norm_``).
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        learning_rate: float,
        *,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
    ) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("The optimizer got no parameters; pass model.parameters().")
        self.learning_rate = check_real(learning_rate, "learning_rate", low=0.0)
        self.weight_decay = check_real(weight_decay, "weight_decay", low=0.0)
        self.clip_norm = (
            None if clip_norm is None
            else check_real(clip_norm, "clip_norm", low=0.0, low_inclusive=False)
        )
        self.iterations = 0
        self._block = ParameterBlock.find(self.params)
        self._state_blocks: list[np.ndarray] = []
        self._state_lists: list[list[np.ndarray]] = []

    def _new_state(self) -> list[np.ndarray]:
        """Zeroed per-parameter state arrays (views into one block when consolidated)."""
        if self._block is None:
            views = [np.zeros_like(p.value) for p in self.params]
        else:
            block, flat_views = self._block.zeros()
            views = [view.reshape(p.shape) for view, p in zip(flat_views, self.params,
                                                              strict=True)]
            self._state_blocks.append(block)
        self._state_lists.append(views)
        return views

    def zero_grad(self) -> None:
        """Set every gradient to zero."""
        if self._block is not None and self._block.intact(self.params):
            self._block.grad.fill(0)
            return
        for param in self.params:
            param.zero_grad()

    def step(self) -> None:
        """Apply one update to every parameter, in place."""
        self.iterations += 1
        if self._block is not None and self._block.intact(self.params):
            if self.clip_norm is not None:
                _clip(self._block.grad, float(np.vdot(self._block.grad, self._block.grad)),
                      self.clip_norm)
            self._update(self._block.value, self._block.grad, *self._state_blocks)
            return
        if self.clip_norm is not None:
            clip_grad_norm(self.params, self.clip_norm)
        for index, param in enumerate(self.params):
            self._update(param.value, param.grad, *(state[index] for state in self._state_lists))

    def _update(self, value: np.ndarray, grad: np.ndarray, *state: np.ndarray) -> None:
        """Update ``value`` in place from ``grad``, with this optimiser's state arrays."""
        raise NotImplementedError


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with (Nesterov) momentum.

    Parameters
    ----------
    params : iterable of Parameter
    learning_rate : float, default=0.01
    momentum : float, default=0.0
        Momentum :math:`\mu` in ``[0, 1)``; 0 is plain gradient descent (the tutorial's rule).
    nesterov : bool, default=False
        Use Nesterov's look-ahead form (needs ``momentum > 0``).
    weight_decay : float, default=0.0
        L2 penalty :math:`\lambda`, added to the gradient.
    clip_norm : float or None, default=None

    Notes
    -----
    With :math:`g = \nabla L + \lambda \theta` and velocity :math:`v` (starting at 0):

    .. math::
        v \leftarrow \mu v + g, \qquad
        \theta \leftarrow \theta - \eta \begin{cases} v & \text{classical} \\
        g + \mu v & \text{Nesterov} \end{cases}

    With :math:`\mu = 0` this is :math:`\theta \leftarrow \theta - \eta g`.

    References
    ----------
    Sutskever et al. (2013), "On the importance of initialization and momentum in deep learning".
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        learning_rate: float = 0.01,
        *,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(params, learning_rate, weight_decay=weight_decay, clip_norm=clip_norm)
        self.momentum = check_real(momentum, "momentum", low=0.0, high=1.0, high_inclusive=False)
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0; set momentum, e.g. 0.9.")
        self.nesterov = bool(nesterov)
        self.velocities = self._new_state() if self.momentum else []

    def _update(self, value: np.ndarray, grad: np.ndarray, *state: np.ndarray) -> None:
        dtype = value.dtype.type
        if self.weight_decay:
            grad = grad + dtype(self.weight_decay) * value
        if self.momentum:
            (velocity,) = state
            velocity *= dtype(self.momentum)
            velocity += grad
            grad = grad + dtype(self.momentum) * velocity if self.nesterov else velocity
        value -= dtype(self.learning_rate) * grad


class Adam(Optimizer):
    r"""Adam: adaptive moment estimation, with L2 ``weight_decay`` added to the gradient.

    Parameters
    ----------
    params : iterable of Parameter
    learning_rate : float, default=0.001
    beta1 : float, default=0.9
        Decay of the first-moment (mean) estimate.
    beta2 : float, default=0.999
        Decay of the second-moment (uncentred variance) estimate.
    eps : float, default=1e-8
        Added to the denominator for stability.
    weight_decay : float, default=0.0
        L2 penalty added to the gradient (PyTorch ``Adam``); see :class:`AdamW` for decoupled
        decay.
    clip_norm : float or None, default=None

    Notes
    -----
    At step :math:`t`, with :math:`g = \nabla L + \lambda \theta`:

    .. math::
        m \leftarrow \beta_1 m + (1 - \beta_1) g, \qquad
        v \leftarrow \beta_2 v + (1 - \beta_2) g^2, \\
        \theta \leftarrow \theta - \eta \frac{m / (1 - \beta_1^t)}
            {\sqrt{v / (1 - \beta_2^t)} + \epsilon}

    ``first_moments`` and ``second_moments`` hold :math:`m / (1 - \beta_1)` and
    :math:`v / (1 - \beta_2)`: the same update with two passes fewer (see ``_update``).

    References
    ----------
    Kingma & Ba (2015), "Adam: A Method for Stochastic Optimization".
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        learning_rate: float = 0.001,
        *,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(params, learning_rate, weight_decay=weight_decay, clip_norm=clip_norm)
        self.beta1 = check_real(beta1, "beta1", low=0.0, high=1.0, high_inclusive=False)
        self.beta2 = check_real(beta2, "beta2", low=0.0, high=1.0, high_inclusive=False)
        self.eps = check_real(eps, "eps", low=0.0)
        self.first_moments = self._new_state()
        self.second_moments = self._new_state()
        self._scratch = self._new_state()  # reused workspace, so a step allocates nothing

    def _decay(self, value: np.ndarray, grad: np.ndarray, scratch: np.ndarray) -> np.ndarray:
        """The gradient Adam sees: L2 decay is part of it."""
        if self.weight_decay:
            np.multiply(value, value.dtype.type(self.weight_decay), out=scratch)
            scratch += grad
            return scratch
        return grad

    def _update(self, value: np.ndarray, grad: np.ndarray, *state: np.ndarray) -> None:
        # The moments are stored divided by (1 - beta): M = m / (1 - beta1), V = v / (1 - beta2).
        # Then the running averages need no multiply of the gradient (M <- beta1 M + g), and
        # the constants move into the per-step scalars below: 10 passes over the weights per
        # step instead of 12. This sweep is about a fifth of a batch-128 epoch.
        M, V, scratch = state
        dtype = value.dtype.type
        grad = self._decay(value, grad, scratch)
        M *= dtype(self.beta1)
        M += grad
        # grad may be scratch itself (with weight decay); it is not needed after this line.
        np.multiply(grad, grad, out=scratch)
        V *= dtype(self.beta2)
        V += scratch
        t = self.iterations
        # With m_hat = (1 - beta1) M / bc1 and sqrt(v_hat) = root * sqrt(V):
        #   value -= lr m_hat / (sqrt(v_hat) + eps) = M / (sqrt(V) / step + eps / (root step)),
        # where step = lr (1 - beta1) / (bc1 root).
        bias_correction1 = 1 - self.beta1**t
        bias_correction2 = 1 - self.beta2**t
        root = math.sqrt((1 - self.beta2) / bias_correction2)
        step = self.learning_rate * (1 - self.beta1) / (bias_correction1 * root)
        if step == 0:  # a zero learning rate moves nothing (and must not divide by zero)
            return
        np.sqrt(V, out=scratch)
        scratch *= dtype(1 / step)
        scratch += dtype(self.eps / (root * step))
        np.divide(M, scratch, out=scratch)
        value -= scratch


class AdamW(Adam):
    r"""Adam with decoupled weight decay.

    Parameters are as for :class:`Adam`, except that ``weight_decay`` (default 0.01, as in
    PyTorch) shrinks the weights directly instead of entering the gradient.

    Notes
    -----
    Before the Adam update (with :math:`g = \nabla L`, no L2 term):

    .. math:: \theta \leftarrow \theta (1 - \eta \lambda)

    References
    ----------
    Loshchilov & Hutter (2019), "Decoupled Weight Decay Regularization".
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        learning_rate: float = 0.001,
        *,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(params, learning_rate, beta1=beta1, beta2=beta2, eps=eps,
                         weight_decay=weight_decay, clip_norm=clip_norm)

    def _decay(self, value: np.ndarray, grad: np.ndarray, scratch: np.ndarray) -> np.ndarray:
        if self.weight_decay:
            value *= value.dtype.type(1 - self.learning_rate * self.weight_decay)
        return grad


def clip_grad_norm(params: Iterable[Parameter], max_norm: float) -> float:
    r"""Scale all gradients together so their global L2 norm is at most ``max_norm``.

    .. math:: g \leftarrow g \cdot \min\Big(1, \frac{c}{\lVert g \rVert_2 + 10^{-6}}\Big)

    Returns
    -------
    float
        The global norm before clipping.
    """
    params = list(params)
    squared = sum(float(np.vdot(p.grad, p.grad)) for p in params)
    return _clip([p.grad for p in params], squared, max_norm)


def _clip(grads: np.ndarray | list[np.ndarray], squared_norm: float, max_norm: float) -> float:
    total = math.sqrt(squared_norm)
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for grad in grads if isinstance(grads, list) else [grads]:
            grad *= grad.dtype.type(scale)
    return total


# ---------------------------------------------------------------------------------------------
# Learning-rate schedules: callables epoch -> factor of the base learning rate.


class ConstantSchedule:
    """The factor 1 at every epoch."""

    def __call__(self, epoch: int) -> float:
        return 1.0


class StepDecay:
    r"""Multiply the rate by ``gamma`` every ``step_size`` epochs:
    :math:`\gamma^{\lfloor e / s \rfloor}`."""

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = check_int(step_size, "step_size", low=1)
        self.gamma = check_real(gamma, "gamma", low=0.0)

    def __call__(self, epoch: int) -> float:
        return self.gamma ** (epoch // self.step_size)


class ExponentialDecay:
    r"""Multiply the rate by ``gamma`` each epoch: :math:`\gamma^{e}`."""

    def __init__(self, gamma: float) -> None:
        self.gamma = check_real(gamma, "gamma", low=0.0)

    def __call__(self, epoch: int) -> float:
        return self.gamma**epoch


class CosineDecay:
    r"""Cosine annealing from 1 to ``min_factor`` over ``total_epochs``:
    :math:`f_\min + \tfrac{1}{2}(1 - f_\min)(1 + \cos(\pi e / E))`."""

    def __init__(self, total_epochs: int, min_factor: float = 0.0) -> None:
        self.total_epochs = check_int(total_epochs, "total_epochs", low=1)
        self.min_factor = check_real(min_factor, "min_factor", low=0.0, high=1.0)

    def __call__(self, epoch: int) -> float:
        progress = min(epoch, self.total_epochs) / self.total_epochs
        return self.min_factor + 0.5 * (1 - self.min_factor) * (1 + math.cos(math.pi * progress))


class LinearWarmup:
    r"""Ramp linearly from ``1 / (warmup_epochs + 1)`` up to 1 over ``warmup_epochs``, then
    follow ``after`` (counted from the end of the warm-up)."""

    def __init__(self, warmup_epochs: int, after: object | None = None) -> None:
        self.warmup_epochs = check_int(warmup_epochs, "warmup_epochs", low=0)
        self.after = after if after is not None else ConstantSchedule()

    def __call__(self, epoch: int) -> float:
        if epoch < self.warmup_epochs:
            return (epoch + 1) / (self.warmup_epochs + 1)
        return self.after(epoch - self.warmup_epochs)  # type: ignore[operator]


#: Optimisers by name, for string options such as ``optimizer="adam"``.
OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "adamw": AdamW}
