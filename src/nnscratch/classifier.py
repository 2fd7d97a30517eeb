"""``NeuralNetClassifier``: a multi-layer perceptron with a scikit-learn-style interface.

It assembles the library's pieces — :func:`~nnscratch.model.build_mlp`, a fused loss, an
optimiser, a schedule and :func:`~nnscratch.training.fit` — behind the familiar ``fit`` /
``predict`` / ``predict_proba`` / ``score``. Two classes train one sigmoid output with
:class:`~nnscratch.losses.BinaryCrossEntropy`; more train a softmax output with
:class:`~nnscratch.losses.SoftmaxCrossEntropy`. Labels may be any integers or strings; they are
mapped to indices in sorted order and back (``classes_``).

Hyper-parameters are stored exactly as given and validated in ``fit``, as scikit-learn's
estimator contract requires (``get_params`` / ``set_params`` work without scikit-learn).

What is left out: regression (use ``Sequential`` with ``MeanSquaredError``), multi-label
targets, sparse inputs.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnscratch._validation import (
    check_dtype,
    check_features,
    check_int,
    check_n_features,
    check_real,
)
from nnscratch.activations import ACTIVATIONS
from nnscratch.losses import BinaryCrossEntropy, Loss, SoftmaxCrossEntropy
from nnscratch.model import Sequential, build_mlp
from nnscratch.optimizers import (
    OPTIMIZERS,
    SGD,
    CosineDecay,
    ExponentialDecay,
    LinearWarmup,
    Optimizer,
    StepDecay,
)
from nnscratch.training import EarlyStopping, History, fit

#: Learning-rate schedules by name; each builder takes the number of epochs.
SCHEDULES = {
    "constant": lambda epochs: None,
    "cosine": lambda epochs: CosineDecay(epochs),
    "step": lambda epochs: StepDecay(max(1, epochs // 3), 0.1),
    "exponential": lambda epochs: ExponentialDecay(0.9),
}


class NeuralNetClassifier:
    """Multi-layer perceptron classifier trained with mini-batch gradient descent.

    Parameters
    ----------
    hidden_layers : sequence of int, default=(256, 128)
        Width of each hidden layer.
    activation : {"relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid", "identity"}, \
default="relu"
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
    learning_rate : float, default=1e-3
    batch_size : int or None, default=128
        ``None`` trains full-batch.
    epochs : int, default=20
    momentum : float, default=0.9
        For ``optimizer="sgd"`` only.
    nesterov : bool, default=False
        For ``optimizer="sgd"`` only.
    weight_decay : float, default=0.0
        L2 penalty (``sgd``, ``adam``) or decoupled decay (``adamw``).
    dropout : float, default=0.0
        Dropout probability after each hidden activation.
    clip_norm : float or None, default=None
        Clip the global gradient norm.
    schedule : {"constant", "cosine", "step", "exponential"}, default="constant"
        Learning-rate schedule over the epochs.
    warmup_epochs : int, default=0
        Linear warm-up before the schedule.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` and stop when the validation loss stops improving,
        keeping the best weights.
    validation_fraction : float, default=0.1
        Stratified hold-out used by early stopping (ignored otherwise).
    patience : int, default=5
    init : str or None, default=None
        Weight initialiser; ``None`` picks He for the ReLU family, Glorot otherwise.
    dtype : {"float32", "float64"}, default="float32"
    random_state : int or None, default=0
        Seeds the weights, dropout, shuffling and validation split.
    verbose : int, default=0
        1 shows a progress bar per epoch.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    model_ : Sequential
    loss_ : Loss
    history_ : History
        Per-epoch figures of the last ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2)); y = np.where(X[:, 0] > 0, "right", "left")
    >>> clf = NeuralNetClassifier(hidden_layers=(16,), epochs=20, batch_size=32).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    """

    def __init__(
        self,
        hidden_layers: Sequence[int] = (256, 128),
        *,
        activation: str = "relu",
        optimizer: str = "adam",
        learning_rate: float = 1e-3,
        batch_size: int | None = 128,
        epochs: int = 20,
        momentum: float = 0.9,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        dropout: float = 0.0,
        clip_norm: float | None = None,
        schedule: str = "constant",
        warmup_epochs: int = 0,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        patience: int = 5,
        init: str | None = None,
        dtype: str = "float32",
        random_state: int | None = 0,
        verbose: int = 0,
    ) -> None:
        self.hidden_layers = hidden_layers
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.clip_norm = clip_norm
        self.schedule = schedule
        self.warmup_epochs = warmup_epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.init = init
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    # -- the scikit-learn parameter protocol ----------------------------------------------
    @classmethod
    def _get_param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [name for name in signature.parameters if name != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments, as scikit-learn's ``get_params``."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> NeuralNetClassifier:
        """Set constructor arguments by name; unknown names raise ``ValueError``."""
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for NeuralNetClassifier; valid: {valid}."
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {
            name: parameter.default
            for name, parameter in inspect.signature(type(self).__init__).parameters.items()
        }
        changed = [
            f"{name}={value!r}" for name, value in self.get_params().items()
            if not _same(value, defaults.get(name))
        ]
        return f"NeuralNetClassifier({', '.join(changed)})"

    def __sklearn_tags__(self) -> Any:  # pragma: no cover - only with scikit-learn installed
        from sklearn.utils import ClassifierTags, Tags, TargetTags

        return Tags(
            estimator_type="classifier",
            target_tags=TargetTags(required=True),
            classifier_tags=ClassifierTags(),
        )

    # -- training ------------------------------------------------------------------------
    def _validate_params(self) -> np.dtype:
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}."
            )
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {sorted(OPTIMIZERS)}, got {self.optimizer!r}."
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {sorted(SCHEDULES)}, got {self.schedule!r}.")
        check_real(self.learning_rate, "learning_rate", low=0.0, low_inclusive=False)
        check_int(self.epochs, "epochs", low=1)
        if self.batch_size is not None:
            check_int(self.batch_size, "batch_size", low=1)
        check_int(self.warmup_epochs, "warmup_epochs", low=0)
        check_real(self.validation_fraction, "validation_fraction", low=0.0, high=1.0,
                   low_inclusive=False, high_inclusive=False)
        return check_dtype(self.dtype)

    def _make_optimizer(self, model: Sequential) -> Optimizer:
        common = {"weight_decay": self.weight_decay, "clip_norm": self.clip_norm}
        if self.optimizer == "sgd":
            return SGD(model.parameters(), self.learning_rate, momentum=self.momentum,
                       nesterov=self.nesterov, **common)
        return OPTIMIZERS[self.optimizer](model.parameters(), self.learning_rate, **common)

    def _encode(self, y: Any, *, fitting: bool) -> np.ndarray:
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D (one label per sample), got shape {y.shape}.")
        if fitting:
            self.classes_ = np.unique(y)
            if self.classes_.shape[0] < 2:
                raise ValueError(
                    f"y has only one class ({self.classes_[0]!r}); a classifier needs at least "
                    "two classes in the training data."
                )
        index = np.searchsorted(self.classes_, y)
        index = np.clip(index, 0, self.classes_.shape[0] - 1)
        unknown = self.classes_[index] != y
        if np.any(unknown):
            raise ValueError(
                f"y contains labels not seen in the first fit: {np.unique(y[unknown])[:5]!r}; "
                f"known classes are {self.classes_.tolist()}."
            )
        return index

    def _loss(self) -> Loss:
        return BinaryCrossEntropy() if self.classes_.shape[0] == 2 else SoftmaxCrossEntropy()

    def _initialise(self, n_features: int, dtype: np.dtype) -> None:
        rng = np.random.default_rng(self.random_state)
        n_outputs = 1 if self.classes_.shape[0] == 2 else self.classes_.shape[0]
        self.model_ = build_mlp(
            n_features, list(self.hidden_layers), n_outputs, activation=self.activation,
            init=self.init, dropout=self.dropout, rng=rng, dtype=dtype,
        )
        self.loss_ = self._loss()
        self.optimizer_ = self._make_optimizer(self.model_)
        self.n_features_in_ = n_features
        self._shuffle_seed = int(rng.integers(2**31))

    def _targets(self, index: np.ndarray, dtype: np.dtype) -> np.ndarray:
        return index.astype(dtype) if self.classes_.shape[0] == 2 else index

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> NeuralNetClassifier:
        """Train from scratch on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Any integer or string labels (at least two distinct).
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For invalid hyper-parameters, shapes, a single class, or NaN/inf in ``X``.
        TrainingDivergedError
            If the loss becomes non-finite.
        """
        dtype = self._validate_params()
        X = check_features(X, dtype)
        index = self._encode(y, fitting=True)
        if index.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} samples but y has {index.shape[0]}.")
        self._initialise(X.shape[1], dtype)
        schedule = SCHEDULES[self.schedule](self.epochs)
        if self.warmup_epochs:
            schedule = LinearWarmup(self.warmup_epochs, schedule)
        stopper = EarlyStopping("val_loss", patience=self.patience) if self.early_stopping else None
        self.history_: History = fit(
            self.model_, X, self._targets(index, dtype), loss=self.loss_,
            optimizer=self.optimizer_, epochs=self.epochs, batch_size=self.batch_size,
            validation_split=self.validation_fraction if self.early_stopping else 0.0,
            early_stopping=stopper, schedule=schedule, seed=self._shuffle_seed,
            sample_weight=sample_weight, verbose=self.verbose,
        )
        return self

    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> NeuralNetClassifier:
        """Train for one epoch on ``(X, y)``, continuing from the current weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like, default=None
            All the classes that will ever appear; required on the first call.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        dtype = self._validate_params()
        X = check_features(X, dtype)
        first_call = not hasattr(self, "model_")
        if first_call:
            if classes is None:
                raise ValueError("classes must be given on the first call to partial_fit.")
            self.classes_ = np.unique(np.asarray(classes))
            if self.classes_.shape[0] < 2:
                raise ValueError("classes must list at least two classes.")
        index = self._encode(y, fitting=False)
        if index.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} samples but y has {index.shape[0]}.")
        if first_call:
            self._initialise(X.shape[1], dtype)
            self._partial_epochs = 0
        else:
            check_n_features(X, self.n_features_in_)
        self.history_ = fit(
            self.model_, X, self._targets(index, dtype), loss=self.loss_,
            optimizer=self.optimizer_, epochs=1, batch_size=self.batch_size,
            seed=self._shuffle_seed + self._partial_epochs, sample_weight=sample_weight,
            verbose=self.verbose,
        )
        self._partial_epochs += 1
        return self

    # -- prediction ----------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            from nnscratch._validation import NotFittedError

            raise NotFittedError(
                "This NeuralNetClassifier is not fitted yet; call fit(X, y) first."
            )

    def decision_function(self, X: Any) -> np.ndarray:
        """The logits: shape ``(n_samples,)`` for two classes, else ``(n_samples, n_classes)``."""
        self._check_fitted()
        X = check_features(X, self.model_.dtype)
        check_n_features(X, self.n_features_in_)
        logits = self.model_.forward(X, training=False)
        return logits.reshape(-1) if self.classes_.shape[0] == 2 else logits

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape ``(n_samples, n_classes)``, columns in ``classes_`` order."""
        logits = self.decision_function(X)
        probabilities = self.loss_.probabilities(logits)
        if self.classes_.shape[0] == 2:
            return np.column_stack([1 - probabilities, probabilities])
        return probabilities

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class for each row, as labels from ``classes_``."""
        logits = self.decision_function(X)
        return self.classes_[self.loss_.predict(logits)]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy on ``(X, y)``."""
        correct = (self.predict(X) == np.asarray(y)).astype(np.float64)
        if sample_weight is None:
            return float(np.mean(correct))
        return float(np.average(correct, weights=np.asarray(sample_weight, dtype=np.float64)))


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except (TypeError, ValueError):
        return False
