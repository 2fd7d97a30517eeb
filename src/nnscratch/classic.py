r"""``NeuralNet``: the tutorial's network, with its exact numbers, built on the library.

The tutorial this package grew from trains MNIST digit 1 against digit 2 with a NumPy class:
layer sizes ``[196, 1]`` after the 784 inputs, a sigmoid on every layer, weights
``randn(out, in) / sqrt(in)`` drawn in order after ``np.random.seed(42)``, zero biases, and
full-batch gradient descent on the mean binary cross-entropy (learning rate 0.1, 1000
iterations). This class keeps that interface and reproduces its costs to rounding and its
accuracy counts exactly, but it is now a thin face on :class:`~nnscratch.nn.model.Sequential`,
:class:`~nnscratch.nn.losses.BinaryCrossEntropy`, :class:`~nnscratch.nn.optimizers.SGD` and
:func:`~nnscratch.nn.training.fit`.

What changed from the tutorial (none of it changes a number): it no longer mutates the
caller's list of sizes, the cost is computed from logits with ``logaddexp`` (finite for any
weights, where ``log(a)`` could give ``-inf``), the output sigmoid is fused into the loss, the
random draws come from a private ``RandomState(seed)`` instead of the global state, and it
returns values instead of printing them. Its matrix products run in whichever BLAS layout is
fastest on the machine (:func:`nnscratch.nn._kernels.matmul`; the tutorial's own code is
feature-major, this one sample-major): the costs agree to rounding and the counts exactly in
either layout.

What is left out: anything beyond the tutorial's recipe; use ``NeuralNetClassifier`` for
other activations, optimisers and more than two classes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nnscratch._validation import (
    check_dtype,
    check_features,
    check_int,
    check_n_features,
    check_real,
)
from nnscratch.nn.activations import Sigmoid
from nnscratch.nn.layers import Dense, Layer
from nnscratch.nn.losses import BinaryCrossEntropy
from nnscratch.nn.model import Sequential
from nnscratch.nn.optimizers import SGD
from nnscratch.nn.training import fit


class NeuralNet:
    r"""The tutorial's fully connected sigmoid network for binary classification.

    Parameters
    ----------
    layer_sizes : sequence of int
        Sizes of the layers after the input, the last one being the output; the tutorial's is
        ``[196, 1]``. The list is copied, never modified. The output size must be 1.
    seed : int, default=42
        Seed of the ``RandomState`` that draws the weights, layer by layer, in the tutorial's
        order.
    dtype : {np.float64, np.float32}, default=np.float64
        float64 reproduces the tutorial; float32 is about twice as fast.

    Attributes
    ----------
    model_ : Sequential
        ``Dense → Sigmoid → ... → Dense``; the last sigmoid is fused into the loss.
    cost_history_ : list of tuple (int, float)
        ``(iteration, cost)`` for every logged iteration of the last :meth:`fit`. The cost of
        iteration ``i`` is computed with the weights before that iteration's update.
    costs_ : list of float
        The logged costs alone (the tutorial's ``costs`` list).
    n_features_in_ : int
        Input width, known after :meth:`fit` (784 for MNIST).

    Notes
    -----
    For layer :math:`l` with weights :math:`W^{[l]}` of shape ``(in, out)``:

    .. math::
        A^{[0]} = X, \quad Z^{[l]} = A^{[l-1]} W^{[l]} + b^{[l]}, \quad
        A^{[l]} = \sigma(Z^{[l]})

    The cost is the mean binary cross-entropy of :math:`A^{[L]}`, and its gradient with respect
    to the last pre-activation is :math:`(A^{[L]} - y)/m`; backpropagation then applies
    :math:`\partial L/\partial Z^{[l]} = (\partial L / \partial A^{[l]}) \odot A^{[l]}(1 - A^{[l]})`
    and :math:`W \leftarrow W - \eta\, \partial L/\partial W` for every layer.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((40, 4)); y = (X[:, 0] > 0.5).astype(int)
    >>> net = NeuralNet([3, 1]).fit(X, y, learning_rate=1.0, n_iterations=200)
    >>> net.score(X, y) > 0.8
    True
    """

    def __init__(self, layer_sizes: Sequence[int], *, seed: int = 42, dtype: Any = np.float64):
        sizes = [check_int(size, "layer_sizes", low=1) for size in layer_sizes]
        if not sizes:
            raise ValueError("layer_sizes must name at least the output layer, e.g. [196, 1].")
        if sizes[-1] != 1:
            raise ValueError(
                f"the last layer size must be 1 (one sigmoid output for two classes), got "
                f"{sizes[-1]}; use NeuralNetClassifier for more classes."
            )
        self.layer_sizes = tuple(sizes)
        self.seed = check_int(seed, "seed", low=0)
        self.dtype = check_dtype(dtype)
        self.model_: Sequential | None = None
        self.cost_history_: list[tuple[int, float]] = []

    def _build(self, n_features: int) -> Sequential:
        # The tutorial seeds the legacy generator and draws W for each layer in order; a private
        # RandomState(seed) gives the same numbers without touching the global state.
        rng = np.random.RandomState(self.seed)
        sizes = (n_features, *self.layer_sizes)
        layers: list[Layer] = []
        for fan_in, fan_out in itertools.pairwise(sizes):
            layers.append(Dense(fan_in, fan_out, init="tutorial", rng=rng, dtype=self.dtype))
            layers.append(Sigmoid())
        layers.pop()  # the output sigmoid lives inside BinaryCrossEntropy
        return Sequential(layers)

    @property
    def costs_(self) -> list[float]:
        return [cost for _, cost in self.cost_history_]

    @property
    def n_features_in_(self) -> int:
        return self._fitted_model().in_features  # type: ignore[return-value]

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        learning_rate: float = 0.1,
        n_iterations: int = 1000,
        log_every: int = 100,
        verbose: int = 0,
        callback: Callable[[int, float], None] | None = None,
    ) -> NeuralNet:
        """Train with full-batch gradient descent, starting from the seeded initial weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Pixels scaled to [0, 1] for MNIST; cast once to ``dtype``.
        y : array-like of shape (n_samples,)
            Labels 0 or 1.
        learning_rate : float, default=0.1
        n_iterations : int, default=1000
        log_every : int, default=100
            Keep the cost of every iteration ``i`` with ``i % log_every == 0`` (and the last).
        verbose : int, default=0
            1 shows a progress bar over iterations with the current cost.
        callback : callable (iteration, cost) -> None, default=None
            Called after every iteration with that iteration's cost.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            If ``y`` is not 0/1, lengths differ, or a parameter is out of range.
        TrainingDivergedError
            If the cost or a weight becomes NaN or infinite; the message names the iteration
            (try a lower ``learning_rate``).
        """
        X = check_features(X, self.dtype)
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(
                f"y must have shape ({X.shape[0]},) to match X, got {y.shape}."
            )
        if not np.all((y == 0) | (y == 1)):
            raise ValueError(
                f"y must hold 0/1 labels, got values {np.unique(y)[:5].tolist()}; relabel the "
                "two classes as 0 and 1 (load_digits does this)."
            )
        learning_rate = check_real(learning_rate, "learning_rate", low=0.0)
        n_iterations = check_int(n_iterations, "n_iterations", low=0)
        log_every = check_int(log_every, "log_every", low=1)
        self.model_ = self._build(X.shape[1])
        self.cost_history_ = []
        last = n_iterations - 1

        def record(iteration: int, logs: dict[str, float]) -> None:
            cost = logs["loss"]
            if iteration % log_every == 0 or iteration == last:
                self.cost_history_.append((iteration, cost))
            if callback is not None:
                callback(iteration, cost)

        fit(
            self.model_,
            X,
            y.astype(self.dtype),
            loss=BinaryCrossEntropy(),
            optimizer=SGD(self.model_.parameters(), learning_rate=learning_rate),
            epochs=n_iterations,
            batch_size=None,
            callbacks=(record,),
            verbose=verbose,
        )
        return self

    def _fitted_model(self) -> Sequential:
        if self.model_ is None:
            raise RuntimeError("This NeuralNet is not fitted yet; call fit(X, y) first.")
        return self.model_

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probability of class 1 for each row, shape ``(n_samples,)``."""
        model = self._fitted_model()
        X = check_features(X, self.dtype)
        check_n_features(X, model.in_features)  # type: ignore[arg-type]
        return BinaryCrossEntropy().probabilities(model.forward(X, training=False))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Labels 0/1 by the tutorial's 0.5 threshold (:math:`p > 0.5`), shape ``(n_samples,)``."""
        return (self.predict_proba(X) > 0.5).astype(np.int64)

    def score(self, X: np.ndarray, y: np.ndarray) -> float:
        """Accuracy: the fraction of rows whose predicted label equals ``y``."""
        y = np.asarray(y).reshape(-1)
        predicted = self.predict(X)
        if predicted.shape[0] != y.shape[0]:
            raise ValueError(f"X has {predicted.shape[0]} rows but y has {y.shape[0]} labels.")
        return float(np.mean(predicted == y))

    def plot_cost(self, path: str | None = None, *, title: str | None = None) -> Any:
        """Draw the logged cost against the iteration; save a PNG when ``path`` is given.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from nnscratch.plotting import plot_cost

        if not self.cost_history_:
            raise RuntimeError("No cost was logged yet; call fit(X, y) first.")
        iterations, costs = zip(*self.cost_history_, strict=False)
        return plot_cost(list(costs), list(iterations), path=path,
                         title=title or f"Training cost, layers {list(self.layer_sizes)}")
