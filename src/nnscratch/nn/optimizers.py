r"""Optimisers that update parameters in place, and learning-rate schedules.

An optimiser takes ``model.parameters()`` once and keeps its state (velocities, moments) in lists
aligned with it, as scikit-learn's ``_stochastic_optimizers.py`` does. Each ``step()`` reads
every ``Parameter.grad`` and updates ``Parameter.value`` in place; ``zero_grad()`` clears the
gradients. Ordered from the simplest to the most involved: SGD (with momentum and Nesterov),
Adam, AdamW. The update rules follow PyTorch's ``torch.optim``, so the two can be compared step
by step; each ``_update`` is the equation of its class docstring, one parameter at a time.

Schedules multiply the base learning rate as a function of the epoch; :func:`nnscratch.fit`
applies them at the start of each epoch. :data:`SCHEDULES` names the ones the classifier and
the command line offer.

What is left out: RMSprop, Adagrad, AMSGrad, LBFGS, per-parameter-group settings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from nnscratch._validation import check_int, check_real
from nnscratch.nn._kernels import adam_update
from nnscratch.nn.parameter import Parameter


class Optimizer:
    """Base class: holds the parameters, the learning rate and gradient clipping.

    Parameters
    ----------
    params : iterable of Parameter
        Usually ``model.parameters()``.
    learning_rate : float
        Step size :math:`\\eta`, non-negative.
    weight_decay : float, default=0.0
        Coefficient :math:`\\lambda` of the decay (how it enters depends on the optimiser).
    clip_norm : float or None, default=None
        If set, rescale all gradients together before each step so that their global L2 norm is
        at most ``clip_norm`` (as ``torch.nn.utils.clip_grad_norm_``).

    Attributes
    ----------
    params : list of Parameter
    iterations : int
        The number of steps taken, :math:`t` in the update rules.
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

    def _zeros(self) -> list[np.ndarray]:
        """One zeroed state array per parameter, shaped and typed like it."""
        return [np.zeros_like(param.value) for param in self.params]

    def zero_grad(self) -> None:
        """Set every gradient to zero."""
        for param in self.params:
            param.zero_grad()

    def step(self) -> None:
        """Apply one update to every parameter, in place."""
        self.iterations += 1
        if self.clip_norm is not None:
            clip_grad_norm(self.params, self.clip_norm)
        for index, param in enumerate(self.params):
            self._update(index, param)

    def _update(self, index: int, param: Parameter) -> None:
        """Update ``param.value`` in place from ``param.grad`` and state entry ``index``."""
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

    Attributes
    ----------
    velocities : list of ndarray
        :math:`v` of each parameter (empty without momentum).

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
        self.velocities = self._zeros() if self.momentum else []

    def _update(self, index: int, param: Parameter) -> None:
        g = param.grad
        if self.weight_decay:
            g = g + self.weight_decay * param.value
        if self.momentum:
            self.velocities[index] = v = self.momentum * self.velocities[index] + g
            g = g + self.momentum * v if self.nesterov else v
        param.value -= self.learning_rate * g


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

    Attributes
    ----------
    m, v : list of ndarray
        The first and second moment estimates :math:`m` and :math:`v` of each parameter.

    Notes
    -----
    At step :math:`t`, with :math:`g = \nabla L + \lambda \theta`:

    .. math::
        m \leftarrow \beta_1 m + (1 - \beta_1) g, \qquad
        v \leftarrow \beta_2 v + (1 - \beta_2) g^2, \\
        \hat m = \frac{m}{1 - \beta_1^t}, \qquad \hat v = \frac{v}{1 - \beta_2^t}, \qquad
        \theta \leftarrow \theta - \eta \frac{\hat m}{\sqrt{\hat v} + \epsilon}

    :math:`m` and :math:`v` start at 0, so early on they underestimate the running means by the
    factors :math:`1 - \beta^t`; :math:`\hat m` and :math:`\hat v` correct that.

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
        self.m = self._zeros()
        self.v = self._zeros()
        self._scratch = self._zeros()  # adam_update's workspace

    def _gradient(self, param: Parameter) -> np.ndarray:
        """The gradient Adam sees: :math:`g = \\nabla L + \\lambda \\theta` (L2 decay)."""
        if self.weight_decay:
            return param.grad + self.weight_decay * param.value
        return param.grad

    def _update(self, index: int, param: Parameter) -> None:
        # m <- beta1 m + (1 - beta1) g,  v <- beta2 v + (1 - beta2) g^2,
        # value <- value - lr m_hat / (sqrt(v_hat) + eps) with m_hat = m / (1 - beta1^t) and
        # v_hat = v / (1 - beta2^t): one in-place kernel (its docstring has the plain NumPy).
        adam_update(param.value, self._gradient(param), self.m[index], self.v[index],
                    self._scratch[index], learning_rate=self.learning_rate, beta1=self.beta1,
                    beta2=self.beta2, eps=self.eps, t=self.iterations)


class AdamW(Adam):
    r"""Adam with decoupled weight decay.

    Parameters are those of :class:`Adam`, except that ``weight_decay`` (default 0.01, as in
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
        weight_decay: float = 0.01,
        **adam_options: Any,
    ) -> None:
        super().__init__(params, learning_rate, weight_decay=weight_decay, **adam_options)

    def _gradient(self, param: Parameter) -> np.ndarray:
        """The bare gradient: the decay does not enter it."""
        return param.grad

    def _update(self, index: int, param: Parameter) -> None:
        param.value *= 1 - self.learning_rate * self.weight_decay
        super()._update(index, param)


def clip_grad_norm(params: Iterable[Parameter], max_norm: float) -> float:
    r"""Scale all gradients together so their global L2 norm is at most ``max_norm``.

    .. math:: g \leftarrow g \cdot \min\Big(1, \frac{c}{\lVert g \rVert_2 + 10^{-6}}\Big)

    Returns
    -------
    float
        The global norm before clipping.
    """
    params = list(params)
    total = math.sqrt(sum(float(np.vdot(p.grad, p.grad)) for p in params))
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for param in params:
            param.grad *= scale
    return total


# ---------------------------------------------------------------------------------------------
# Learning-rate schedules: callables epoch -> factor of the base learning rate.

#: A schedule: the factor of the base learning rate at an epoch (counted from 0).
Schedule = Callable[[int], float]


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

    def __init__(self, warmup_epochs: int, after: Schedule | None = None) -> None:
        self.warmup_epochs = check_int(warmup_epochs, "warmup_epochs", low=0)
        self.after = after if after is not None else ConstantSchedule()

    def __call__(self, epoch: int) -> float:
        if epoch < self.warmup_epochs:
            return (epoch + 1) / (self.warmup_epochs + 1)
        return self.after(epoch - self.warmup_epochs)


#: Optimisers by name, for string options such as ``optimizer="adam"``.
OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "adamw": AdamW}

#: Learning-rate schedules by name, for string options such as ``schedule="cosine"``: each
#: builds a schedule for a run of ``epochs`` epochs (``None`` keeps the rate constant).
SCHEDULES: dict[str, Callable[[int], Schedule | None]] = {
    "constant": lambda epochs: None,
    "cosine": lambda epochs: CosineDecay(epochs),
    "step": lambda epochs: StepDecay(max(1, epochs // 3), 0.1),
    "exponential": lambda epochs: ExponentialDecay(0.9),
}
