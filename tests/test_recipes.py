"""Tests for nnscratch.runs.recipes: complete, valid settings the CLI and the library accept."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from nnscratch import NeuralNet, NeuralNetClassifier
from nnscratch.cli import build_parser
from nnscratch.runs.recipes import (
    CNN_KEYS,
    COMMON_KEYS,
    MLP_KEYS,
    RECIPES,
    TUTORIAL_KEYS,
    allowed_keys,
    get_recipe,
    train_recipe,
)


def test_get_recipe():
    assert get_recipe("tutorial") is RECIPES["tutorial"]
    with pytest.raises(ValueError, match=r"unknown recipe 'fast'; choose one of \["):
        get_recipe("fast")


def test_allowed_keys_by_kind():
    assert allowed_keys(RECIPES["tutorial"]) == COMMON_KEYS + TUTORIAL_KEYS
    assert allowed_keys(RECIPES["mnist10"]) == COMMON_KEYS + MLP_KEYS
    assert not set(TUTORIAL_KEYS) & set(MLP_KEYS)
    assert allowed_keys(RECIPES["mnist-cnn"]) == COMMON_KEYS + MLP_KEYS + CNN_KEYS
    assert not set(CNN_KEYS) & (set(MLP_KEYS) | set(TUTORIAL_KEYS) | set(COMMON_KEYS))


@pytest.mark.parametrize("recipe", RECIPES.values(), ids=lambda r: r.name)
def test_every_recipe_sets_every_key_it_allows(recipe):
    # A run's config.toml is the recipe's settings after overrides: a missing default would
    # leave the run depending on a library default that may change.
    assert recipe.kind in ("tutorial", "mlp", "cnn")
    assert set(recipe.settings) | {"recipe"} == set(allowed_keys(recipe))
    assert recipe.name in RECIPES and recipe.description


def test_the_tutorial_recipe_is_the_tutorials_experiment():
    assert RECIPES["tutorial"].settings == {
        "dataset": "mnist", "digits": [1, 2], "layers": [196, 1], "learning_rate": 0.1,
        "iterations": 1000, "log_every": 100, "seed": 42, "dtype": "float64",
    }


def _choices(parser: argparse.ArgumentParser, command: str) -> dict[str, list]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    train = sub.choices[command]
    return {action.dest: list(action.choices) for action in train._actions if action.choices}


@pytest.mark.parametrize("recipe", RECIPES.values(), ids=lambda r: r.name)
def test_every_setting_is_a_choice_the_cli_offers(recipe):
    choices = _choices(build_parser(), "train")
    assert recipe.name in choices["recipe"]
    for key, value in recipe.settings.items():
        if key in choices:
            assert value in choices[key], key


@pytest.mark.parametrize("name", [n for n, r in RECIPES.items() if r.kind == "mlp"])
def test_mlp_recipes_train_a_classifier(name, rng):
    from nnscratch.classifier import NeuralNetClassifier

    s = RECIPES[name].settings
    classifier = NeuralNetClassifier(
        hidden_layers=(8,), activation=s["activation"], optimizer=s["optimizer"],
        learning_rate=s["learning_rate"], batch_size=s["batch_size"], epochs=1,
        momentum=s["momentum"], weight_decay=s["weight_decay"], dropout=s["dropout"],
        schedule=s["schedule"], warmup_epochs=s["warmup_epochs"],
        early_stopping=s["early_stopping"], validation_fraction=s["validation_fraction"],
        patience=s["patience"], dtype=s["dtype"], random_state=s["seed"],
    )
    X = rng.random((40, 784)).astype(s["dtype"])
    y = np.arange(40) % len(s["digits"])
    classifier.fit(X, y)
    assert classifier.model_.dtype == np.dtype(s["dtype"])
    assert [layer.out_features for layer in classifier.model_.layers
            if hasattr(layer, "out_features")][-1] == (1 if len(s["digits"]) == 2 else 10)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_train_recipe_fits_the_model_the_recipe_describes(name, rng):
    recipe = RECIPES[name]
    settings = {**recipe.settings, "layers": [4, 1] if recipe.kind == "tutorial" else [4]}
    settings.update({"iterations": 30} if recipe.kind == "tutorial" else {"epochs": 3,
                                                                           "augment": {}})
    if recipe.kind == "cnn":  # images of 784 pixels, through two small convolutions
        settings["conv_layers"] = [2, 3]
    X = rng.random((60, 784 if recipe.kind == "cnn" else 5))
    y = (X[:, 0] > 0.5).astype(np.int64)
    model = train_recipe(recipe, settings, X, y)
    kind = NeuralNet if recipe.kind == "tutorial" else NeuralNetClassifier
    assert isinstance(model, kind)
    assert model.predict(X).shape == (60,)
    assert model.model_.dtype == np.dtype(settings["dtype"])


@pytest.mark.parametrize("name", [n for n, r in RECIPES.items() if r.settings.get("augment")])
def test_train_recipe_builds_the_recipes_augmentation(name, rng):
    from nnscratch.data.augment import Augmentation

    recipe = RECIPES[name]
    settings = {**recipe.settings, "layers": [4], "epochs": 1, "digits": [0, 1]}
    if recipe.kind == "cnn":
        settings["conv_layers"] = [2]
    X = rng.random((40, 784)).astype(np.float32)
    model = train_recipe(recipe, settings, X, np.arange(40) % 2)
    assert model.augment == Augmentation.from_settings(recipe.settings["augment"])
    assert not model.augment.is_identity


def test_the_new_recipes_data_sets():
    assert RECIPES["mnist10-best"].settings["dataset"] == "mnist"
    assert RECIPES["fashion10"].settings["dataset"] == "fashion-mnist"
    # Clothes mirror (a shoe pointing left is still a shoe); the recipe shifts nothing.
    assert RECIPES["fashion10"].settings["augment"] == {"flip": True}
    assert not RECIPES["mnist10-best"].settings["augment"].get("flip", False)  # digits do not


@pytest.mark.parametrize("name", ["mnist-cnn", "fashion-cnn"])
def test_the_cnn_recipes_build_the_network_they_describe(name, rng):
    recipe = RECIPES[name]
    settings = {**recipe.settings, "epochs": 1, "augment": {}}
    X = rng.random((20, 784)).astype(np.float32)
    model = train_recipe(recipe, settings, X, np.arange(20) % 10).model_
    assert [type(layer).__name__ for layer in model.layers] == [
        "Reshape", "Conv2D", "BatchNorm", "ReLU", "MaxPool2D", "Conv2D", "BatchNorm", "ReLU",
        "MaxPool2D", "Flatten", "Dense", "ReLU", "Dropout", "Dense"]
    conv1, conv2 = model.layers[1], model.layers[5]
    assert (conv1.in_channels, conv1.out_channels, conv1.kernel_size, conv1.padding) == (
        1, 32, (3, 3), (1, 1))
    assert (conv2.in_channels, conv2.out_channels) == (32, 64)
    assert (model.layers[10].in_features, model.layers[10].out_features) == (64 * 7 * 7, 128)
    assert model.layers[12].p == 0.1 and model.layers[13].out_features == 10
    # Digits move by whole pixels (sharp, as the test digits are); clothes only mirror (a shoe
    # pointing left is a shoe): in 8 epochs shifts cost fashion-cnn 1.4 points (docs/recipes.md).
    expected = ({"shift": 2.0, "whole_pixel_shift": True} if name == "mnist-cnn"
                else {"flip": True})
    assert recipe.settings["augment"] == expected
    assert recipe.settings["dataset"] == ("mnist" if name == "mnist-cnn" else "fashion-mnist")


def test_cnn_settings_reach_the_classifier(rng):
    settings = {**RECIPES["mnist-cnn"].settings, "conv_layers": [3, 4, 5], "pool_every": 3,
                "batch_norm": False, "layers": [6], "epochs": 1, "augment": {}}
    model = train_recipe(RECIPES["mnist-cnn"], settings, rng.random((20, 784)),
                         np.arange(20) % 10).model_
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Conv2D") == 3 and kinds.count("MaxPool2D") == 1
    assert "BatchNorm" not in kinds and model.layers[-4].in_features == 5 * 14 * 14


@pytest.mark.slow
@pytest.mark.parametrize(("name", "at_least"), [("mnist-cnn", 0.90), ("fashion-cnn", 0.70)])
def test_the_cnn_recipes_learn_in_a_hundred_steps(name, at_least, request):
    # The whole path on real data, cut to 100 steps (12,800 images, one epoch); the thresholds
    # say only that it learns (the full recipes reach 99.2 % and 92.5 %).
    from nnscratch.data import load_dataset

    recipe = RECIPES[name]
    folder = request.getfixturevalue(
        "fashion_dir" if recipe.settings["dataset"] == "fashion-mnist" else "mnist_dir")
    data = load_dataset(recipe.settings["dataset"], data_dir=folder, dtype=np.float32,
                        shuffle_seed=0, progress=False)
    model = train_recipe(recipe, {**recipe.settings, "epochs": 1}, data.X_train[:12_800],
                         data.y_train[:12_800])
    assert model.history_.loss[0] < 2.3  # below chance's log(10)
    assert model.score(data.X_test[:2000], data.y_test[:2000]) > at_least


@pytest.mark.slow
@pytest.mark.parametrize(("name", "at_least"), [("fashion10", 0.80), ("mnist10-best", 0.95)])
def test_the_augmented_recipes_learn_in_one_epoch(name, at_least, request):
    # The whole path on the real data: loader, augmentation in the background, training.
    from nnscratch.data import load_dataset

    recipe = RECIPES[name]
    folder = request.getfixturevalue(
        "fashion_dir" if recipe.settings["dataset"] == "fashion-mnist" else "mnist_dir")
    data = load_dataset(recipe.settings["dataset"], data_dir=folder, dtype=np.float32,
                        progress=False)
    model = train_recipe(recipe, {**recipe.settings, "epochs": 1}, data.X_train, data.y_train)
    assert model.augment is not None and model.history_.epochs == 1
    assert model.score(data.X_test, data.y_test) > at_least


@pytest.mark.slow
def test_the_recipes_script_prints_every_seed_and_writes_the_report(tmp_path, mnist_dir):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "examples" / "train_recipes.py"
    completed = subprocess.run(
        [sys.executable, str(script), "--recipes", "binary-fast", "--seeds", "0", "1", "2",
         "--data-dir", str(mnist_dir), "--report", str(tmp_path), "--blas-threads", "1"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = [line.split() for line in completed.stdout.splitlines()[1:]]
    assert [row[:2] for row in rows] == [["binary-fast", seed] for seed in ("0", "1", "2", "med")]
    assert all(float(row[2].rstrip("%")) > 99 for row in rows)
    report = (tmp_path / "binary-fast-classes.md").read_text()
    assert "| 1 | 1135 |" in report and "| 2 | 1032 |" in report  # per-class, test counts
    assert (tmp_path / "binary-fast-confusion.png").is_file()
    results = (tmp_path / "binary-fast-results.md").read_text()
    assert results.count("| `binary-fast` |") == 3 and "**median**" in results
    assert (tmp_path / "binary-fast-row.md").read_text().startswith("| `binary-fast` | 1 vs 2, ")
    assert len(json.loads((tmp_path / "binary-fast-runs.json").read_text())["runs"]) == 3


def test_train_recipe_passes_validation_data_and_callbacks_to_fit(rng):
    recipe = RECIPES["mnist10"]
    settings = {**recipe.settings, "layers": [4], "epochs": 2}
    X = rng.random((60, 5)).astype(np.float32)
    y = (X[:, 0] > 0.5).astype(np.int64)
    epochs = []
    model = train_recipe(recipe, settings, X, y, validation_data=(X[:10], y[:10]),
                         callbacks=[lambda epoch, logs: epochs.append(logs["val_accuracy"])])
    assert len(epochs) == 2 and epochs == model.history_.val_accuracy


def test_the_tutorial_recipe_has_no_epochs_to_report():
    recipe = RECIPES["tutorial"]
    with pytest.raises(ValueError, match="without epochs to validate after"):
        train_recipe(recipe, dict(recipe.settings), np.zeros((4, 3)), np.array([0, 1, 0, 1]),
                     callbacks=[lambda epoch, logs: None])
