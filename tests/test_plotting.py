"""Tests for nnscratch.plotting: every function returns a Figure and writes a valid PNG."""

from __future__ import annotations

import doctest
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from nnscratch import plotting
from nnscratch.nn.training import History
from nnscratch.plotting import (
    plot_confusion_matrix,
    plot_cost,
    plot_first_layer_weights,
    plot_history,
    plot_misclassified,
    plot_roc,
    plot_time_to_accuracy,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png_of(figure, path):
    """``figure`` is a Figure and ``path`` is a complete PNG of its size, alone in its folder."""
    assert isinstance(figure, Figure)
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    with Image.open(path) as image:
        image.verify()  # checks every chunk's CRC, so a truncated file fails here
    with Image.open(path) as image:
        width, height = image.size
    expected_width, expected_height = figure.get_size_inches() * plotting.DPI
    assert width == pytest.approx(expected_width, abs=2)
    assert height == pytest.approx(expected_height, abs=2)
    # The atomic write leaves no temporary file behind.
    assert [p.name for p in path.parent.iterdir()] == [path.name]


@pytest.fixture
def images(rng):
    """Twelve 28x28 float images in [0, 1], with labels and four mistakes."""
    pictures = rng.random((12, 28, 28))
    y_true = np.arange(12) % 10
    y_pred = y_true.copy()
    y_pred[[1, 4, 7, 9]] = [7, 2, 1, 4]
    return pictures, y_true, y_pred


def test_docstring_examples_run():
    result = doctest.testmod(plotting, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


def test_import_does_not_load_matplotlib():
    code = "import sys, nnscratch.plotting; print('matplotlib' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_no_path_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert isinstance(plot_cost([1.0, 0.5]), Figure)
    assert list(tmp_path.iterdir()) == []


def test_missing_directory_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        plot_cost([1.0, 0.5], path=tmp_path / "no" / "such" / "dir" / "cost.png")


def test_existing_file_is_replaced(tmp_path):
    path = tmp_path / "cost.png"
    path.write_bytes(b"old")
    assert_png_of(plot_cost([1.0, 0.5], path=path), path)


# ---------------------------------------------------------------------------
# One PNG per function
# ---------------------------------------------------------------------------


def test_plot_cost(tmp_path):
    path = tmp_path / "cost.png"
    figure = plot_cost([0.7, 0.5, 0.3, 0.2], [0, 100, 200, 300], path=path, title="Cost")
    assert_png_of(figure, path)
    ax = figure.axes[0]
    assert ax.get_title() == "Cost"
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [0, 100, 200, 300])
    # Without iterations the points are numbered from 0.
    np.testing.assert_array_equal(plot_cost([3, 2, 1]).axes[0].lines[0].get_xdata(), [0, 1, 2])


def test_plot_history(tmp_path):
    path = tmp_path / "history.png"
    history = {
        "loss": [0.9, 0.5, 0.4],
        "accuracy": [0.7, 0.85, 0.9],
        "val_loss": [1.0, 0.7, 0.6],
        "val_accuracy": [0.65, 0.8, 0.84],
        "lr": [0.1, 0.1, 0.05],  # ignored
    }
    figure = plot_history(history, path=path)
    assert_png_of(figure, path)
    loss_ax, accuracy_ax = figure.axes
    assert [line.get_label() for line in loss_ax.lines] == ["train (0.4)", "validation (0.6)"]
    np.testing.assert_array_equal(accuracy_ax.lines[0].get_xdata(), [1, 2, 3])


def test_plot_history_without_validation_or_accuracy():
    figure = plot_history({"loss": [0.5], "accuracy": [0.9], "val_loss": []})
    assert [len(ax.lines) for ax in figure.axes] == [1, 1]
    loss_only = plot_history({"loss": [0.5, 0.3], "accuracy": []})
    assert [ax.get_title() for ax in loss_only.axes] == ["Loss"]


def test_plot_history_accepts_training_history(tmp_path):
    path = tmp_path / "history.png"
    history = History(loss=[0.9, 0.5, 0.6], accuracy=[0.6, 0.8, 0.75], best_epoch=1)
    figure = plot_history(history, path=path)
    assert_png_of(figure, path)
    best = figure.axes[0].lines[-1]
    assert best.get_label() == "best epoch (2)"
    np.testing.assert_array_equal(best.get_xdata(), [2, 2])


@pytest.mark.parametrize("normalize", [False, True])
def test_plot_confusion_matrix(tmp_path, normalize):
    path = tmp_path / "confusion.png"
    matrix = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 0]])
    figure = plot_confusion_matrix(matrix, ["cat", "dog", "bird"], path=path, normalize=normalize)
    assert_png_of(figure, path)
    texts = [text.get_text() for text in figure.axes[0].texts]
    if normalize:
        assert texts[:3] == ["0.83", "0.17", "0.00"]
        assert texts[-1] == "0.00"  # an empty row stays zero instead of dividing by zero
    else:
        assert texts[:3] == ["5", "1", "0"]


def test_plot_confusion_matrix_skips_numbers_for_many_classes():
    figure = plot_confusion_matrix(np.eye(plotting.MAX_ANNOTATED_CLASSES + 1))
    assert len(figure.axes[0].texts) == 0


@pytest.mark.parametrize("flat", [False, True])
def test_plot_misclassified(tmp_path, images, flat):
    pictures, y_true, y_pred = images
    if flat:
        pictures = pictures.reshape(len(pictures), -1)
    path = tmp_path / "misclassified.png"
    figure = plot_misclassified(pictures, y_true, y_pred, path=path)
    assert_png_of(figure, path)
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert titles == ["true 1 / pred 7", "true 4 / pred 2", "true 7 / pred 1", "true 9 / pred 4"]
    assert "4 of 12" in figure.get_suptitle()


def test_plot_misclassified_names_and_limit(images):
    pictures, y_true, y_pred = images
    names = [f"class {k}" for k in range(10)]
    figure = plot_misclassified(
        (pictures * 255).astype(np.uint8), y_true, y_pred, class_names=names, max_images=2
    )
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert titles == ["true class 1\npred class 7", "true class 4\npred class 2"]
    assert "first 2 shown" in figure.get_suptitle()


def test_plot_misclassified_none_wrong(tmp_path, images):
    pictures, y_true, _ = images
    path = tmp_path / "none.png"
    figure = plot_misclassified(pictures, y_true, y_true, path=path)
    assert_png_of(figure, path)
    assert "No misclassified images" in figure.texts[0].get_text()


@pytest.mark.parametrize("in_features", [784, 100])
def test_plot_first_layer_weights(tmp_path, rng, in_features):
    path = tmp_path / "weights.png"
    figure = plot_first_layer_weights(rng.normal(size=(in_features, 12)), max_units=9, path=path)
    assert_png_of(figure, path)
    images = [ax.images[0] for ax in figure.axes if ax.images]
    side = int(np.sqrt(in_features))
    assert len(images) == 9
    assert images[0].get_array().shape == (side, side)
    low, high = images[0].get_clim()
    assert low == -high  # symmetric colour scale: white is zero


def test_plot_roc(tmp_path, rng):
    path = tmp_path / "roc.png"
    y = rng.integers(0, 2, 100)
    figure = plot_roc(y, y + rng.normal(size=100), path=path)
    assert_png_of(figure, path)
    legend = figure.axes[0].get_legend().get_texts()[0].get_text()
    assert legend.startswith("ROC (AUC = 0.")


def test_plot_time_to_accuracy(tmp_path):
    path = tmp_path / "time.png"
    curves = {"fast": ([1, 2, 4], [0.9, 0.97, 0.98]), "slow": ([2, 4], [0.8, 0.9])}
    figure = plot_time_to_accuracy(curves, target=0.95, path=path)
    assert_png_of(figure, path)
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert labels == ["fast (reaches 0.95 at 2 s)", "slow (never reaches 0.95)", "target 0.95"]
    without_target = plot_time_to_accuracy(curves)
    assert [t.get_text() for t in without_target.axes[0].get_legend().get_texts()] == [
        "fast",
        "slow",
    ]


# ---------------------------------------------------------------------------
# Documented errors
# ---------------------------------------------------------------------------


def test_plot_cost_rejects_bad_input():
    with pytest.raises(ValueError, match=r"costs must be 1-D, got shape \(2, 2\)"):
        plot_cost(np.ones((2, 2)))
    with pytest.raises(ValueError, match="costs is empty"):
        plot_cost([])
    with pytest.raises(ValueError, match="costs has 3 values but iterations has 2"):
        plot_cost([3, 2, 1], [0, 1])
    with pytest.raises(TypeError, match="costs must hold numbers"):
        plot_cost(["a", "b"])


def test_plot_history_rejects_bad_input():
    with pytest.raises(TypeError, match="history must be a mapping"):
        plot_history([0.5, 0.4])
    with pytest.raises(ValueError, match=r"non-empty 'loss' series.*got keys \['accuracy'\]"):
        plot_history({"accuracy": [0.5]})
    with pytest.raises(ValueError, match="non-empty 'loss' series"):
        plot_history({"loss": [], "accuracy": []})
    with pytest.raises(
        ValueError, match=r"history\['loss'\] has 2 values but history\['val_loss'\]"
    ):
        plot_history({"loss": [0.5, 0.4], "accuracy": [0.8, 0.9], "val_loss": [0.6]})
    with pytest.raises(ValueError, match=r"history\['accuracy'\] must be 1-D"):
        plot_history({"loss": [0.5], "accuracy": [[0.5]]})
    with pytest.raises(TypeError, match=r"history\['loss'\] must hold numbers"):
        plot_history({"loss": ["x"], "accuracy": [0.5]})


def test_plot_confusion_matrix_rejects_bad_input():
    with pytest.raises(
        ValueError, match=r"matrix must be a non-empty square .* got shape \(2, 3\)"
    ):
        plot_confusion_matrix(np.ones((2, 3)))
    with pytest.raises(ValueError, match="matrix must hold finite, non-negative counts"):
        plot_confusion_matrix([[1, -1], [0, 1]])
    with pytest.raises(ValueError, match="class_names has 1 names but matrix has 2 classes"):
        plot_confusion_matrix(np.eye(2), ["a"])
    with pytest.raises(TypeError, match="matrix must hold numbers"):
        plot_confusion_matrix([["a", "b"], ["c", "d"]])


def test_plot_misclassified_rejects_bad_input(images):
    pictures, y_true, y_pred = images
    with pytest.raises(ValueError, match="50 pixels each, which is not a square number"):
        plot_misclassified(np.zeros((12, 50)), y_true, y_pred)
    with pytest.raises(ValueError, match=r"images must have shape .* got shape \(12,\)"):
        plot_misclassified(np.zeros(12), y_true, y_pred)
    with pytest.raises(ValueError, match=r"y_pred must be 1-D with one label per image \(12\)"):
        plot_misclassified(pictures, y_true, y_pred[:5])
    with pytest.raises(ValueError, match="max_images must be >= 1"):
        plot_misclassified(pictures, y_true, y_pred, max_images=0)
    with pytest.raises(TypeError, match="max_images must be an integer"):
        plot_misclassified(pictures, y_true, y_pred, max_images=2.5)
    with pytest.raises(ValueError, match="label 4 has no entry in class_names"):
        plot_misclassified(pictures, y_true, y_pred, class_names=["zero", "one"])
    with pytest.raises(TypeError, match="images must hold numbers"):
        plot_misclassified(np.full((12, 4), "x"), y_true, y_pred)


def test_plot_first_layer_weights_rejects_bad_input(rng):
    with pytest.raises(ValueError, match=r"W has 50 rows .* not a square number"):
        plot_first_layer_weights(rng.normal(size=(50, 10)))
    with pytest.raises(ValueError, match=r"It looks transposed: pass W\.T"):
        plot_first_layer_weights(rng.normal(size=(10, 784)))
    with pytest.raises(ValueError, match=r"W must be a non-empty 2-D array .* got shape \(784,\)"):
        plot_first_layer_weights(rng.normal(size=784))
    with pytest.raises(ValueError, match="max_units must be >= 1"):
        plot_first_layer_weights(rng.normal(size=(4, 2)), max_units=0)
    with pytest.raises(TypeError, match="max_units must be an integer"):
        plot_first_layer_weights(rng.normal(size=(4, 2)), max_units="all")
    with pytest.raises(TypeError, match="W must hold numbers"):
        plot_first_layer_weights(np.full((4, 2), "w"))


def test_plot_roc_rejects_bad_input():
    with pytest.raises(ValueError, match="exactly two classes"):
        plot_roc([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="y_true has 2 samples but scores has 1"):
        plot_roc([0, 1], [0.1])


def test_plot_time_to_accuracy_rejects_bad_input():
    with pytest.raises(TypeError, match="curves must be a mapping"):
        plot_time_to_accuracy([([1], [0.5])])
    with pytest.raises(ValueError, match="curves is empty"):
        plot_time_to_accuracy({})
    with pytest.raises(ValueError, match=r"curves\['a'\] must be a pair \(seconds, accuracy\)"):
        plot_time_to_accuracy({"a": ([1], [0.5], [3])})
    with pytest.raises(ValueError, match=r"curves\['a'\] seconds has 2 values but its accuracy"):
        plot_time_to_accuracy({"a": ([1, 2], [0.5])})
    with pytest.raises(ValueError, match="target must be finite"):
        plot_time_to_accuracy({"a": ([1], [0.5])}, target=float("nan"))
    with pytest.raises(TypeError, match="target must be a real number"):
        plot_time_to_accuracy({"a": ([1], [0.5])}, target="97%")
