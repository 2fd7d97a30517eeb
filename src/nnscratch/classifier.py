"""``NeuralNetClassifier``: a multi-layer perceptron (or a convolutional network) with a
scikit-learn-style interface.

It assembles the library's pieces — :func:`~nnscratch.nn.model.build_mlp` (or, with
``conv_layers``, :func:`~nnscratch.nn.model.build_cnn`), a fused loss, an
optimiser, a schedule and :func:`~nnscratch.nn.training.fit` — behind the familiar ``fit`` /
``partial_fit`` / ``predict`` / ``predict_proba`` / ``score``. Two classes train one sigmoid
output with :class:`~nnscratch.nn.losses.BinaryCrossEntropy`; more train a softmax output with
:class:`~nnscratch.nn.losses.SoftmaxCrossEntropy`. Labels may be any integers or strings; they are
mapped to indices in sorted order and back (``classes_``).

scikit-learn is optional. The class does not inherit from ``sklearn.base.BaseEstimator``; it
implements the estimator contract itself — hyper-parameters stored exactly as given and
validated in ``fit``, ``get_params`` / ``set_params`` (so ``clone``, ``Pipeline`` and
``GridSearchCV`` work), ``classes_``, ``n_features_in_``, ``__sklearn_is_fitted__`` and
``__sklearn_tags__`` (which imports scikit-learn only when scikit-learn asks for the tags).
Inputs are checked here with the messages scikit-learn's ``check_array`` gives, so that its
``parametrize_with_checks`` suite passes (``tests/reference/test_sklearn_compat.py``).

What is left out: regression (use ``Sequential`` with ``MeanSquaredError``), multi-label and
multi-output targets, sparse inputs, ``feature_names_in_``.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnscratch._validation import (
    NotFittedError,
    check_dtype,
    check_features,
    check_int,
    check_real,
    check_sample_weight,
)
from nnscratch.data.augment import Augmentation
from nnscratch.metrics import accuracy_score
from nnscratch.nn.activations import ACTIVATIONS
from nnscratch.nn.initializers import INITIALIZERS
from nnscratch.nn.losses import BinaryCrossEntropy, Loss, SoftmaxCrossEntropy
from nnscratch.nn.model import Sequential, build_cnn, build_mlp, forward_in_chunks
from nnscratch.nn.optimizers import OPTIMIZERS, SCHEDULES, SGD, LinearWarmup, Optimizer
from nnscratch.nn.training import Callback, EarlyStopping, History, fit


class DataConversionWarning(UserWarning):
    """The input was converted to the expected shape (a column vector ``y`` was raveled).

    Named like scikit-learn's warning of the same meaning, without importing scikit-learn.
    """


class NeuralNetClassifier:
    r"""Multi-layer perceptron classifier trained with mini-batch gradient descent.

    Parameters
    ----------
    hidden_layers : sequence of int, default=(256, 128)
        Width of each hidden layer; ``()`` gives a linear (logistic-regression) model.
    activation : str, default="relu"
        Non-linearity after each hidden layer, one of ``"relu"``, ``"leaky_relu"``, ``"elu"``,
        ``"gelu"``, ``"tanh"``, ``"sigmoid"``, ``"identity"``.
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
    learning_rate : float, default=1e-3
        Initial step size, positive.
    batch_size : int or None, default=128
        Samples per gradient step; ``None`` (or a size >= n_samples) trains full-batch.
    epochs : int, default=20
        Passes over the training data in :meth:`fit`.
    momentum : float, default=0.9
        In ``[0, 1)``; for ``optimizer="sgd"`` only.
    nesterov : bool, default=False
        For ``optimizer="sgd"`` only.
    weight_decay : float, default=0.0
        L2 penalty (``sgd``, ``adam``) or decoupled decay (``adamw``), non-negative.
    dropout : float, default=0.0
        Dropout probability after each hidden activation, in ``[0, 1)``.
    clip_norm : float or None, default=None
        Clip the global gradient norm to this positive value.
    schedule : {"constant", "cosine", "step", "exponential"}, default="constant"
        Learning-rate schedule over the epochs.
    warmup_epochs : int, default=0
        Linear warm-up before the schedule.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` and stop when the validation loss has not improved
        for ``patience`` epochs, keeping the weights of the best epoch.
    validation_fraction : float, default=0.1
        Stratified hold-out used by early stopping (ignored otherwise), in ``(0, 1)``.
    patience : int, default=5
        Epochs without improvement before early stopping ends training.
    init : str or None, default=None
        Weight initialiser, a name from :data:`nnscratch.nn.initializers.INITIALIZERS`; ``None``
        picks He for the ReLU family, Glorot otherwise.
    dtype : {"float32", "float64"} or None, default=None
        The dtype of the weights, the computation and the probabilities; inputs are cast to
        it once. ``None`` follows scikit-learn's convention: a float32 ``X`` trains a float32
        network (about twice as fast), any other ``X`` a float64 one.
    random_state : int, numpy.random.Generator or None, default=0
        Seeds the weights, dropout, shuffling, validation split and augmentation. ``None``
        draws fresh entropy on every ``fit``.
    verbose : int, default=0
        1 shows a progress bar per epoch.
    augment : Augmentation or None, default=None
        Random shifts, rotations, ... of each training batch
        (:class:`nnscratch.data.augment.Augmentation`; rows of ``X`` must be its images); never
        applied to validation data or in ``predict``.
    conv_layers : sequence of int, default=()
        The output channels of each 3×3 convolution (padding 1) before the hidden layers;
        ``()`` builds a multi-layer perceptron. The rows of ``X`` are then images of
        ``image_shape`` (:func:`nnscratch.nn.model.build_cnn`).
    pool_every : int, default=2
        With ``conv_layers``: a 2×2 max-pool after every ``pool_every``-th convolution.
    batch_norm : bool, default=True
        With ``conv_layers``: batch normalisation between each convolution and its activation.
    image_shape : tuple (channels, height, width) or None, default=None
        With ``conv_layers``: the shape of one row of ``X``; ``None`` takes a square one-channel
        image (``(1, 28, 28)`` for 784 columns).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The sorted class labels seen in ``fit`` (or given to the first ``partial_fit``).
    n_features_in_ : int
        Number of input features seen in ``fit``.
    model_ : Sequential
        The trained network; it outputs logits.
    loss_ : Loss
        :class:`~nnscratch.nn.losses.BinaryCrossEntropy` for two classes, else
        :class:`~nnscratch.nn.losses.SoftmaxCrossEntropy`.
    optimizer_ : Optimizer
        The optimiser, with its state (``partial_fit`` continues from it).
    history_ : History
        Per-epoch figures of the last ``fit`` (or of the last ``partial_fit`` epoch).

    See Also
    --------
    nnscratch.classic.NeuralNet : the tutorial's sigmoid network and full-batch recipe.

    Notes
    -----
    With weights :math:`w_i` (``sample_weight``, all 1 by default), each mini-batch minimises
    the weighted mean cross-entropy :math:`\sum_i w_i \ell_i / \sum_i w_i`. With full batches
    (``batch_size=None``), an integer weight is therefore the same as repeating the sample; with
    mini-batches it is so in expectation only, because repeating samples changes the batches.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2)); y = np.where(X[:, 0] > 0, "right", "left")
    >>> clf = NeuralNetClassifier(hidden_layers=(16,), learning_rate=0.01, epochs=20,
    ...                           batch_size=32).fit(X, y)
    >>> clf.classes_.tolist()
    ['left', 'right']
    >>> clf.score(X, y) > 0.9
    True
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
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
        dtype: str | None = None,
        random_state: int | np.random.Generator | None = 0,
        verbose: int = 0,
        augment: Augmentation | None = None,
        conv_layers: Sequence[int] = (),
        pool_every: int = 2,
        batch_norm: bool = True,
        image_shape: Sequence[int] | None = None,
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
        self.augment = augment
        self.conv_layers = conv_layers
        self.pool_every = pool_every
        self.batch_norm = batch_norm
        self.image_shape = image_shape

    # -- the scikit-learn estimator protocol ----------------------------------------------
    @classmethod
    def _get_param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [name for name in signature.parameters if name != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments by name, as scikit-learn's ``get_params``.

        Parameters
        ----------
        deep : bool, default=True
            Accepted for scikit-learn compatibility; there are no nested estimators.

        Returns
        -------
        dict of str to object
        """
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> NeuralNetClassifier:
        """Set constructor arguments by name; they are validated by the next ``fit``.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            If a name is not a constructor argument.
        """
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {type(self).__name__}. "
                    f"Valid parameters are: {valid}."
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
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_is_fitted__(self) -> bool:
        """Whether ``fit`` (or ``partial_fit``) has run; used by scikit-learn's
        ``check_is_fitted``."""
        return hasattr(self, "model_")

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's estimator tags (scikit-learn >= 1.6); imports scikit-learn lazily."""
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags

        return Tags(
            estimator_type="classifier",
            target_tags=TargetTags(required=True, single_output=True, multi_output=False),
            classifier_tags=ClassifierTags(multi_class=True, multi_label=False),
            input_tags=InputTags(two_d_array=True, sparse=False, allow_nan=False),
        )

    # -- checks of hyper-parameters and inputs ------------------------------------------
    def _validate_params(self, X: Any) -> np.dtype:
        """Check every hyper-parameter; return the dtype of the network to train on ``X``."""
        _check_hidden_layers(self.hidden_layers)
        if isinstance(self.conv_layers, str) or not isinstance(self.conv_layers,
                                                                Sequence | np.ndarray):
            raise ValueError(
                f"conv_layers must be a sequence of channel counts, got {self.conv_layers!r}; "
                "for two convolutions of 32 and 64 channels write conv_layers=(32, 64)."
            )
        for channels in self.conv_layers:
            check_int(channels, "each entry of conv_layers", low=1)
        check_int(self.pool_every, "pool_every", low=1)
        for name, registry in (("activation", ACTIVATIONS), ("optimizer", OPTIMIZERS),
                               ("schedule", SCHEDULES)):
            value = getattr(self, name)
            if not isinstance(value, str) or value not in registry:
                raise ValueError(f"{name} must be one of {sorted(registry)}, got {value!r}.")
        if self.init is not None and self.init not in INITIALIZERS:
            raise ValueError(
                f"init must be None or one of {sorted(INITIALIZERS)}, got {self.init!r}."
            )
        check_real(self.learning_rate, "learning_rate", low=0.0, low_inclusive=False)
        check_int(self.epochs, "epochs", low=1)
        if self.batch_size is not None:
            check_int(self.batch_size, "batch_size", low=1)
        check_real(self.momentum, "momentum", low=0.0, high=1.0, high_inclusive=False)
        check_real(self.weight_decay, "weight_decay", low=0.0)
        check_real(self.dropout, "dropout", low=0.0, high=1.0, high_inclusive=False)
        if self.clip_norm is not None:
            check_real(self.clip_norm, "clip_norm", low=0.0, low_inclusive=False)
        check_int(self.warmup_epochs, "warmup_epochs", low=0)
        check_real(self.validation_fraction, "validation_fraction", low=0.0, high=1.0,
                   low_inclusive=False, high_inclusive=False)
        check_int(self.patience, "patience", low=0)
        _check_random_state(self.random_state)
        if self.augment is not None and not isinstance(self.augment, Augmentation):
            raise TypeError(
                f"augment must be an nnscratch.data.augment.Augmentation or None, got "
                f"{self.augment!r}."
            )
        return check_dtype(self.dtype) if self.dtype is not None else _default_dtype(X)

    def _check_X(self, X: Any, dtype: np.dtype, *, reset: bool) -> np.ndarray:
        """``X`` as a finite 2-D array of ``dtype``; after fitting, with ``n_features_in_``
        columns. Messages follow scikit-learn's ``check_array``."""
        X = check_features(X, dtype)
        if not reset and X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input. Use inputs preprocessed the same "
                "way as the training data."
            )
        return X

    def _check_y(self, y: Any, n_samples: int) -> np.ndarray:
        """``y`` as a 1-D array of discrete labels, one per row of ``X``."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None; "
                "pass one class label per row of X."
            )
        y = np.asarray(y)
        if y.dtype.kind == "c":
            raise ValueError(
                f"Complex data not supported: y has dtype {y.dtype}; class labels must be "
                "integers or strings."
            )
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn(
                DataConversionWarning(
                    "A column-vector y was passed when a 1d array was expected. Please change "
                    "the shape of y to (n_samples,), for example using ravel()."
                ),
                stacklevel=3,
            )
            y = y.ravel()
        if y.ndim != 1:
            raise ValueError(
                f"y should be a 1d array, got an array of shape {y.shape} instead; "
                f"{type(self).__name__} takes one class label per sample (multi-output and "
                "multi-label targets are not supported)."
            )
        if y.shape[0] != n_samples:
            raise ValueError(
                f"X has {n_samples} samples but y has {y.shape[0]} labels; pass one label per "
                "row of X."
            )
        if y.dtype.kind == "f":
            if not np.all(np.isfinite(y)):
                raise ValueError("y contains NaN or infinity; drop or relabel those samples.")
            fractional = y[y != np.round(y)]
            if fractional.size:
                raise ValueError(
                    f"Unknown label type: continuous. y holds non-integer values such as "
                    f"{fractional[0]!r}; a classifier needs discrete labels — bin the target, "
                    "or use a regression model."
                )
        elif y.dtype.kind not in "biuUSO":
            raise ValueError(
                f"Unknown label type: y has dtype {y.dtype}; use integer or string labels."
            )
        return y

    @staticmethod
    def _check_sample_weight(sample_weight: Any, n_samples: int) -> np.ndarray | None:
        """``sample_weight`` as a new float64 array (``None`` stays ``None``)."""
        if sample_weight is None:
            return None
        return check_sample_weight(sample_weight, n_samples)

    def _encode(self, y: np.ndarray) -> np.ndarray:
        """Map labels to indices into ``classes_``; unknown labels raise ``ValueError``."""
        n_classes = self.classes_.shape[0]
        try:
            index = np.clip(np.searchsorted(self.classes_, y), 0, n_classes - 1)
            known = self.classes_[index] == y
        except TypeError:  # labels that cannot be compared with the classes at all
            index, known = np.zeros(y.shape[0], dtype=np.intp), np.zeros(y.shape[0], bool)
        if not np.all(known):
            unknown = y[~np.asarray(known, dtype=bool)]
            raise ValueError(
                f"y contains labels that are not in classes_: {unknown[:5].tolist()!r}; "
                f"the known classes are {self.classes_.tolist()!r}."
            )
        return index

    # -- training ------------------------------------------------------------------------
    def _set_classes(self, labels: np.ndarray, *, source: str) -> None:
        try:
            classes = np.unique(labels)
        except TypeError:
            raise ValueError(
                f"Unknown label type: {source} mixes labels that cannot be sorted together "
                f"(e.g. {labels[:3].tolist()!r}); use labels of one type, all strings or all "
                "numbers."
            ) from None
        if classes.shape[0] < 2:
            raise ValueError(
                f"{source} has only one class ({classes.tolist()!r}); a classifier needs at "
                "least two classes in the training data."
            )
        self.classes_ = classes

    def _make_optimizer(self, model: Sequential) -> Optimizer:
        common = {"weight_decay": self.weight_decay, "clip_norm": self.clip_norm}
        if self.optimizer == "sgd":
            return SGD(model.parameters(), self.learning_rate, momentum=self.momentum,
                       nesterov=self.nesterov, **common)
        return OPTIMIZERS[self.optimizer](model.parameters(), self.learning_rate, **common)

    def _loss(self) -> Loss:
        return BinaryCrossEntropy() if self.classes_.shape[0] == 2 else SoftmaxCrossEntropy()

    def _initialise(self, n_features: int, dtype: np.dtype) -> None:
        rng = _make_rng(self.random_state)
        n_outputs = 1 if self.classes_.shape[0] == 2 else self.classes_.shape[0]
        if len(self.conv_layers):
            self.model_ = build_cnn(
                self._image_shape(n_features), list(self.conv_layers),
                list(self.hidden_layers), n_outputs, pool_every=self.pool_every,
                batch_norm=bool(self.batch_norm), activation=self.activation, init=self.init,
                dropout=self.dropout, rng=rng, dtype=dtype,
            )
        else:
            self.model_ = build_mlp(
                n_features, list(self.hidden_layers), n_outputs, activation=self.activation,
                init=self.init, dropout=self.dropout, rng=rng, dtype=dtype,
            )
        self.loss_ = self._loss()
        self.optimizer_ = self._make_optimizer(self.model_)
        self.n_features_in_ = n_features
        self._shuffle_seed = int(rng.integers(2**31))
        self._partial_epochs = 0

    def _image_shape(self, n_features: int) -> tuple[int, int, int]:
        """The ``(channels, height, width)`` of one row of ``n_features`` values."""
        if self.image_shape is None:
            side = math.isqrt(n_features)
            if side * side != n_features:
                raise ValueError(
                    f"X has {n_features} features, which is not a square image; with "
                    "conv_layers pass image_shape=(channels, height, width)."
                )
            return (1, side, side)
        shape = tuple(int(size) for size in self.image_shape)
        if len(shape) != 3 or int(np.prod(shape)) != n_features:
            raise ValueError(
                f"image_shape {tuple(self.image_shape)} must be (channels, height, width) with "
                f"as many values as X has features ({n_features})."
            )
        return shape  # type: ignore[return-value]

    def _targets(self, index: np.ndarray, dtype: np.dtype) -> np.ndarray:
        return index.astype(dtype) if self.classes_.shape[0] == 2 else index

    def fit(
        self, X: Any, y: Any, sample_weight: Any = None, *,
        validation_data: tuple[Any, Any] | None = None, callbacks: Sequence[Callback] = (),
    ) -> NeuralNetClassifier:
        """Train from freshly initialised weights on ``(X, y)`` for ``epochs`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Real numbers; cast once to ``dtype``.
        y : array-like of shape (n_samples,)
            Any integer or string labels, at least two distinct ones.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample; ``None`` weighs all equally.
        validation_data : tuple (X_val, y_val), default=None
            Held-out data scored after every epoch (``val_loss`` and ``val_accuracy`` in
            ``history_`` and the callbacks' logs); labels as in ``y``. With
            ``early_stopping`` it replaces the ``validation_fraction`` hold-out.
        callbacks : sequence of callable (epoch, logs) -> bool or None, default=()
            Called after each epoch (:func:`nnscratch.nn.training.fit`); returning True stops
            training. ``nnscratch tune`` reports to Optuna's pruner this way.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For an invalid hyper-parameter; ``X`` that is not 2-D, empty, complex or holds
            NaN/inf; ``y`` that is None, not 1-D, continuous or has a single class; lengths
            that differ; or invalid ``sample_weight``.
        TypeError
            For a hyper-parameter of the wrong type, sparse or non-numeric ``X``.
        TrainingDivergedError
            If the loss or a weight becomes non-finite; the message names the epoch (try a
            lower ``learning_rate``). The classifier is then unfitted: ``predict`` raises
            ``NotFittedError``.
        """
        dtype = self._validate_params(X)
        X = self._check_X(X, dtype, reset=True)
        y = self._check_y(y, X.shape[0])
        weights = self._check_sample_weight(sample_weight, X.shape[0])
        self._set_classes(y, source="y")
        index = self._encode(y)
        if self.early_stopping and np.max(np.bincount(index)) < 2:
            raise ValueError(
                "early_stopping holds out a validation set from each class, but no class has "
                "2 samples; pass more data or set early_stopping=False."
            )
        self._initialise(X.shape[1], dtype)
        schedule = SCHEDULES[self.schedule](self.epochs)
        if self.warmup_epochs:
            schedule = LinearWarmup(self.warmup_epochs, schedule)
        stopper = EarlyStopping("val_loss", patience=self.patience) if self.early_stopping else None
        if validation_data is not None:
            X_val = self._check_X(validation_data[0], dtype, reset=False)
            y_val = self._encode(self._check_y(validation_data[1], X_val.shape[0]))
            validation_data = (X_val, self._targets(y_val, dtype))
        try:
            self.history_: History = fit(
                self.model_, X, self._targets(index, dtype), loss=self.loss_,
                optimizer=self.optimizer_, epochs=self.epochs, batch_size=self.batch_size,
                validation_data=validation_data,
                validation_split=self.validation_fraction if self.early_stopping else 0.0,
                early_stopping=stopper, schedule=schedule, seed=self._shuffle_seed,
                sample_weight=weights, callbacks=callbacks, verbose=self.verbose,
                augment=self.augment,
            )
        except BaseException:  # diverged or interrupted: no half-trained model to predict with
            self._forget_fit()
            raise
        return self

    def _forget_fit(self) -> None:
        """Make the classifier unfitted again (after a fit that failed)."""
        for name in ("model_", "loss_", "optimizer_", "history_", "n_features_in_", "classes_",
                     "_shuffle_seed", "_partial_epochs"):
            self.__dict__.pop(name, None)

    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> NeuralNetClassifier:
        """Train for one epoch on ``(X, y)``, continuing from the current weights.

        The first call (on an unfitted classifier) builds the network from the current
        hyper-parameters; later calls keep it, its dtype and the optimiser's state. There is no
        schedule and no early stopping. After :meth:`fit`, ``partial_fit`` continues from the
        fitted weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Labels, each one of ``classes``.
        classes : array-like of shape (n_classes,), default=None
            All the classes that will ever appear; required on the first call. Later calls
            may omit it or must repeat the same classes.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self

        Raises
        ------
        ValueError
            If ``classes`` is missing on the first call, lists fewer than two classes or
            differs from ``classes_``; if ``y`` has a label outside ``classes``; if ``X`` has
            a different number of features than before; and as for :meth:`fit`.
        """
        first_call = not self.__sklearn_is_fitted__()
        if first_call:
            dtype = self._validate_params(X)
            if classes is None:
                raise ValueError(
                    "classes must be given on the first call to partial_fit: pass every class "
                    "that will ever appear, e.g. classes=np.unique(y_all)."
                )
        else:
            dtype = self.model_.dtype
        X = self._check_X(X, dtype, reset=first_call)
        y = self._check_y(y, X.shape[0])
        weights = self._check_sample_weight(sample_weight, X.shape[0])
        if first_call:
            self._set_classes(np.asarray(classes), source="classes")
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(
                f"classes={np.unique(classes).tolist()!r} is not the same as classes_ "
                f"{self.classes_.tolist()!r} from the first call; pass the same classes or "
                "omit them."
            )
        index = self._encode(y)
        if first_call:
            self._initialise(X.shape[1], dtype)
        self.history_ = fit(
            self.model_, X, self._targets(index, dtype), loss=self.loss_,
            optimizer=self.optimizer_, epochs=1, batch_size=self.batch_size,
            seed=self._shuffle_seed + self._partial_epochs, sample_weight=weights,
            verbose=self.verbose, augment=self.augment,
        )
        self._partial_epochs += 1
        return self

    # -- prediction ----------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise _not_fitted_error(
                f"This {type(self).__name__} instance is not fitted yet; call fit(X, y) (or "
                "partial_fit) before using it."
            )

    def decision_function(self, X: Any) -> np.ndarray:
        """The logits of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) for two classes (the logit of ``classes_[1]``), else
        (n_samples, n_classes); of the model's dtype.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        ValueError
            If ``X`` is not 2-D, holds NaN/inf or has a different number of features than in
            ``fit``.
        """
        self._check_fitted()
        X = self._check_X(X, self.model_.dtype, reset=False)
        logits = forward_in_chunks(self.model_, X)
        return logits.reshape(-1) if self.classes_.shape[0] == 2 else logits

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order; each row sums to 1.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes), of the model's dtype

        Raises
        ------
        NotFittedError, ValueError
            As for :meth:`decision_function`.
        """
        logits = self.decision_function(X)  # checks fitted and X before the loss is touched
        return self.loss_.class_probabilities(logits)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Logarithm of :meth:`predict_proba` (``-inf`` where a probability underflows to 0).

        Raises
        ------
        NotFittedError, ValueError
            As for :meth:`decision_function`.
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row, as labels from ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,), of the dtype of ``classes_``

        Raises
        ------
        NotFittedError, ValueError
            As for :meth:`decision_function`.
        """
        logits = self.decision_function(X)
        return self.classes_[self.loss_.predict(logits)]

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy of :meth:`predict` on ``(X, y)``, weighted by ``sample_weight``.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        ValueError
            As for :meth:`decision_function`, or if ``y`` or ``sample_weight`` does not have
            one entry per row of ``X``.
        """
        predicted = self.predict(X)
        y = self._check_y(y, predicted.shape[0])
        return accuracy_score(y, predicted, sample_weight=sample_weight)


def _default_dtype(X: Any) -> np.dtype:
    """scikit-learn's convention: float32 input trains a float32 network, anything else float64.

    A pandas DataFrame counts as float32 when every column is.
    """
    columns = getattr(X, "dtypes", None)
    dtypes = set(np.atleast_1d(columns)) if columns is not None else {getattr(X, "dtype", None)}
    return np.dtype(np.float32 if dtypes == {np.dtype(np.float32)} else np.float64)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except (TypeError, ValueError):
        return False


def _check_hidden_layers(hidden_layers: Any) -> None:
    if isinstance(hidden_layers, np.ndarray) and hidden_layers.ndim == 1:
        hidden_layers = hidden_layers.tolist()
    if isinstance(hidden_layers, str) or not isinstance(hidden_layers, Sequence):
        raise TypeError(
            f"hidden_layers must be a sequence of layer widths, got {hidden_layers!r}; for one "
            "hidden layer of 64 units write hidden_layers=(64,)."
        )
    for width in hidden_layers:
        check_int(width, "each entry of hidden_layers", low=1)


def _check_random_state(random_state: Any) -> None:
    if random_state is None or isinstance(random_state, np.random.Generator):
        return
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative int, got {random_state}.")
        return
    raise TypeError(
        f"random_state must be an int, a numpy Generator or None, got {random_state!r}."
    )


def _make_rng(random_state: int | np.random.Generator | None) -> np.random.Generator:
    # default_rng returns a Generator unchanged, so a shared generator advances across fits,
    # as scikit-learn's random_state instances do.
    return np.random.default_rng(random_state)


def _not_fitted_error(message: str) -> NotFittedError:
    """nnscratch's ``NotFittedError``; once scikit-learn is imported, one that is also
    scikit-learn's, so ``except sklearn.exceptions.NotFittedError`` catches it too.

    Code that names scikit-learn's class must have imported it, so checking ``sys.modules``
    is exact and never imports scikit-learn.
    """
    exceptions = sys.modules.get("sklearn.exceptions")
    if exceptions is None:
        return NotFittedError(message)
    return _with_sklearn_base(exceptions.NotFittedError)(message)


@functools.cache
def _with_sklearn_base(sklearn_error: type[Exception]) -> type[NotFittedError]:
    def reduce(error: Exception) -> tuple[Any, tuple[str]]:
        # Pickle (e.g. back from a joblib worker) through the module-level factory.
        return _not_fitted_error, (str(error),)

    return type(
        "NotFittedError",
        (NotFittedError, sklearn_error),
        {"__module__": __name__, "__doc__": NotFittedError.__doc__, "__reduce__": reduce},
    )
