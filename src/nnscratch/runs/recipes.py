"""Named training recipes for ``nnscratch train --recipe NAME``.

A recipe is a complete, tested set of settings: which data set and classes, which network, how
to train it (and how to augment the training images). ``tutorial`` is the tutorial's experiment,
reproduced exactly; the others are the fastest settings we found that reach their stated
accuracy on this machine (``examples/train_recipes.py`` measures them; ``docs/recipes.md`` has
the figures). Every setting can be
overridden from the command line or a TOML config, and a run folder records the resolved
settings so that ``nnscratch train --config RUN/config.toml`` repeats the run exactly.

Hyper-parameter search over these settings is :mod:`nnscratch.tune` (``nnscratch tune``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    from nnscratch.classic import NeuralNet
    from nnscratch.classifier import NeuralNetClassifier
    from nnscratch.nn.training import Callback


@dataclass(frozen=True)
class Recipe:
    """A named set of training settings.

    Attributes
    ----------
    name : str
    kind : {"tutorial", "mlp", "cnn"}
        ``tutorial`` trains :class:`~nnscratch.classic.NeuralNet` (full-batch gradient descent,
        sigmoid layers, two digits); ``mlp`` trains
        :class:`~nnscratch.classifier.NeuralNetClassifier`; ``cnn`` trains it with
        convolutions first (``conv_layers``, :func:`~nnscratch.nn.model.build_cnn`).
    description : str
    settings : dict
        The defaults; keys are the CLI option names with ``_`` for ``-``.
    """

    name: str
    kind: str
    description: str
    settings: dict[str, Any] = field(default_factory=dict)


#: Settings every recipe has. ``digits`` are the class numbers of ``dataset`` (for MNIST the
#: digits; the CLI also calls them ``--classes``).
COMMON_KEYS = ("recipe", "dataset", "digits", "layers", "learning_rate", "seed", "dtype")
#: Settings of the tutorial kind only.
TUTORIAL_KEYS = ("iterations", "log_every")
#: Settings of the mlp kind only.
MLP_KEYS = (
    "activation", "optimizer", "batch_size", "epochs", "momentum", "weight_decay", "dropout",
    "schedule", "warmup_epochs", "early_stopping", "validation_fraction", "patience",
    "augment",
)
#: Settings of the cnn kind only (it also has every mlp setting; ``layers`` are then the dense
#: hidden layers after the convolutions).
CNN_KEYS = ("conv_layers", "pool_every", "batch_norm")
#: Every setting a user can change (each is a ``nnscratch train`` flag of the same name, with
#: ``-`` for ``_``); ``recipe`` itself is chosen, not changed.
SETTING_KEYS = tuple(key for key in COMMON_KEYS + TUTORIAL_KEYS + MLP_KEYS + CNN_KEYS
                     if key != "recipe")

#: What the two convolutional recipes share: the network and how it is trained (they differ
#: in their data set and its augmentation).
_CNN_TRAINING: dict[str, Any] = {
    "digits": list(range(10)), "conv_layers": [32, 64],
    "pool_every": 1, "batch_norm": True, "layers": [128], "activation": "relu",
    "optimizer": "adam", "learning_rate": 2e-3, "batch_size": 128, "epochs": 10,
    "momentum": 0.9, "weight_decay": 0.0, "dropout": 0.1, "schedule": "cosine",
    "warmup_epochs": 0, "early_stopping": False, "validation_fraction": 0.1,
    "patience": 5, "seed": 0, "dtype": "float32",
}

RECIPES: dict[str, Recipe] = {
    "tutorial": Recipe(
        name="tutorial",
        kind="tutorial",
        description=(
            "The tutorial's experiment, reproduced exactly: digit 1 vs 2, layers [196, 1], "
            "sigmoid, full-batch gradient descent, learning rate 0.1, 1000 iterations, float64."
        ),
        settings={
            "dataset": "mnist", "digits": [1, 2], "layers": [196, 1], "learning_rate": 0.1,
            "iterations": 1000, "log_every": 100, "seed": 42, "dtype": "float64",
        },
    ),
    "binary-fast": Recipe(
        name="binary-fast",
        kind="mlp",
        description=(
            "Any digit pair in seconds: ReLU layers of 256 and 128 with dropout 0.1, Adam, "
            "mini-batches of 64, cosine schedule, float32 (>= 99.6% test on 1 vs 2)."
        ),
        settings={
            "dataset": "mnist", "digits": [1, 2], "layers": [256, 128], "activation": "relu",
            "optimizer": "adam",
            "learning_rate": 1e-3, "batch_size": 64, "epochs": 10, "momentum": 0.9,
            "weight_decay": 0.0, "dropout": 0.1, "schedule": "cosine", "warmup_epochs": 0,
            "early_stopping": False, "validation_fraction": 0.1, "patience": 5,
            "seed": 0, "dtype": "float32", "augment": {},
        },
    ),
    "mnist10": Recipe(
        name="mnist10",
        kind="mlp",
        description=(
            "All ten digits: 784-512-256-10 ReLU with dropout 0.2, Adam, batch 128, cosine "
            "schedule over 12 epochs, float32 (>= 98.3% test within a minute of training)."
        ),
        settings={
            "dataset": "mnist", "digits": list(range(10)), "layers": [512, 256],
            "activation": "relu", "optimizer": "adam", "learning_rate": 1e-3, "batch_size": 128,
            "epochs": 12, "momentum": 0.9, "weight_decay": 0.0, "dropout": 0.2,
            "schedule": "cosine", "warmup_epochs": 0, "early_stopping": False,
            "validation_fraction": 0.1, "patience": 5, "seed": 0, "dtype": "float32",
            "augment": {},
        },
    ),
    "mnist10-best": Recipe(
        name="mnist10-best",
        kind="mlp",
        description=(
            "All ten digits past 99%, with no convolution: 784-1024-1024-10 ReLU with dropout "
            "0.1, trained on digits shifted, rotated, scaled and elastically distorted afresh "
            "every epoch; Adam, batch 128, cosine schedule over 40 epochs, float32."
        ),
        settings={
            "dataset": "mnist", "digits": list(range(10)), "layers": [1024, 1024],
            "activation": "relu", "optimizer": "adam", "learning_rate": 1e-3, "batch_size": 128,
            "epochs": 40, "momentum": 0.9, "weight_decay": 0.0, "dropout": 0.1,
            "schedule": "cosine", "warmup_epochs": 0, "early_stopping": False,
            "validation_fraction": 0.1, "patience": 5, "seed": 0, "dtype": "float32",
            "augment": {"shift": 2.0, "rotation": 10.0, "scale": 0.1, "elastic_alpha": 34.0,
                        "elastic_sigma": 4.0},
        },
    ),
    "fashion10": Recipe(
        name="fashion10",
        kind="mlp",
        description=(
            "The ten Fashion-MNIST classes: 784-1024-1024-10 ReLU with dropout 0.3, trained on "
            "pictures mirrored left-right at random every epoch (no shifts); Adam, batch 128, "
            "cosine schedule over 36 epochs, float32 (>= 90% test in under 9 minutes of "
            "training on 2 cores)."
        ),
        settings={
            "dataset": "fashion-mnist", "digits": list(range(10)), "layers": [1024, 1024],
            "activation": "relu", "optimizer": "adam", "learning_rate": 1e-3, "batch_size": 128,
            "epochs": 36, "momentum": 0.9, "weight_decay": 0.0, "dropout": 0.3,
            "schedule": "cosine", "warmup_epochs": 0, "early_stopping": False,
            "validation_fraction": 0.1, "patience": 5, "seed": 0, "dtype": "float32",
            "augment": {"flip": True},
        },
    ),
    "mnist-cnn": Recipe(
        name="mnist-cnn",
        kind="cnn",
        description=(
            "All ten digits with convolutions: 3x3 convolutions of 32 and 64 channels, each "
            "with batch norm, ReLU and a 2x2 max-pool, then Dense 128 with dropout 0.1; "
            "trained on digits shifted by up to 2 whole pixels afresh every epoch; Adam, batch "
            "128, cosine schedule over 10 epochs, float32 (99.24% test accuracy, median of 3 "
            "seeds; about 19 minutes of training on 2 cores)."
        ),
        settings={
            "dataset": "mnist", **_CNN_TRAINING,
            "augment": {"shift": 2.0, "whole_pixel_shift": True},
        },
    ),
    "fashion-cnn": Recipe(
        name="fashion-cnn",
        kind="cnn",
        description=(
            "The ten Fashion-MNIST classes with convolutions: the mnist-cnn network (3x3 "
            "convolutions of 32 and 64 channels with batch norm, each followed by a 2x2 "
            "max-pool, Dense 128 with dropout 0.1), trained on pictures mirrored left-right at "
            "random every epoch (no shifts); Adam, batch 128, cosine schedule over 10 epochs, "
            "float32 (92.51% test accuracy, median of 3 seeds; about 19 minutes of training on "
            "2 cores)."
        ),
        settings={
            "dataset": "fashion-mnist", **_CNN_TRAINING,
            "augment": {"flip": True},
        },
    ),
}


def get_recipe(name: str) -> Recipe:
    """Look a recipe up by name, or raise ``ValueError`` listing the known ones."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}.") from None


def allowed_keys(recipe: Recipe) -> tuple[str, ...]:
    """The setting names that apply to ``recipe``."""
    if recipe.kind == "tutorial":
        return COMMON_KEYS + TUTORIAL_KEYS
    return COMMON_KEYS + MLP_KEYS + (CNN_KEYS if recipe.kind == "cnn" else ())


def train_recipe(
    recipe: Recipe, settings: dict[str, Any], X: np.ndarray, y: np.ndarray, *, verbose: int = 0,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    callbacks: Sequence[Callback] = (),
) -> NeuralNet | NeuralNetClassifier:
    """Build the model that ``recipe`` and its resolved ``settings`` describe, and fit it.

    Parameters
    ----------
    recipe : Recipe
    settings : dict
        The recipe's settings, possibly overridden (every key of :func:`allowed_keys`); an
        ``augment`` table builds an :class:`~nnscratch.data.augment.Augmentation` (empty: none).
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        Labels 0 .. n_classes - 1.
    verbose : int, default=0
        1 shows the training progress bar.
    validation_data : tuple (X_val, y_val), default=None
        ``mlp`` kind only: scored after every epoch, for the callbacks.
    callbacks : sequence of callable (epoch, logs) -> bool or None, default=()
        ``mlp`` kind only: called after every epoch (:func:`nnscratch.nn.training.fit`);
        ``nnscratch tune`` reports the validation accuracy to Optuna's pruner this way.

    Returns
    -------
    NeuralNet (the ``tutorial`` kind) or NeuralNetClassifier (the ``mlp`` and ``cnn`` kinds),
    fitted.
    """
    if recipe.kind == "tutorial":
        from nnscratch.classic import NeuralNet

        if validation_data is not None or callbacks:
            raise ValueError(
                "the tutorial recipe trains full-batch for a fixed number of iterations, "
                "without epochs to validate after; use a mini-batch recipe (mnist10, "
                "binary-fast)."
            )

        net = NeuralNet(settings["layers"], seed=settings["seed"], dtype=settings["dtype"])
        return net.fit(X, y, learning_rate=settings["learning_rate"],
                       n_iterations=settings["iterations"], log_every=settings["log_every"],
                       verbose=verbose)
    from nnscratch.classifier import NeuralNetClassifier
    from nnscratch.data.augment import Augmentation

    augment = settings.get("augment") or {}
    convolutions = {}
    if recipe.kind == "cnn":
        convolutions = {"conv_layers": tuple(settings["conv_layers"]),
                        "pool_every": settings["pool_every"],
                        "batch_norm": settings["batch_norm"]}
    classifier = NeuralNetClassifier(
        hidden_layers=tuple(settings["layers"]), activation=settings["activation"],
        optimizer=settings["optimizer"], learning_rate=settings["learning_rate"],
        batch_size=settings["batch_size"], epochs=settings["epochs"],
        momentum=settings["momentum"], weight_decay=settings["weight_decay"],
        dropout=settings["dropout"], schedule=settings["schedule"],
        warmup_epochs=settings["warmup_epochs"], early_stopping=settings["early_stopping"],
        validation_fraction=settings["validation_fraction"], patience=settings["patience"],
        dtype=settings["dtype"], random_state=settings["seed"], verbose=verbose,
        augment=Augmentation.from_settings(augment) if augment else None, **convolutions,
    )
    return classifier.fit(X, y, validation_data=validation_data, callbacks=callbacks)
