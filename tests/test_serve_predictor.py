"""Tests for :mod:`nnscratch.serve.predictor`: a model that labels one picture as predict does."""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json

import numpy as np
import pytest
from PIL import Image

from _numerics import assert_close
from nnscratch.cli import main
from nnscratch.images import BlankImageError, InputFormatError, UndecodableImageError
from nnscratch.nn.model import build_mlp
from nnscratch.serialization import save_model
from nnscratch.serve.predictor import PixelsError, Predictor, forward_with_hidden

PREPROCESSING = {"flatten": [28, 28], "scale": "pixel / 255", "dtype": "float32"}


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


def stroke_picture(rng: np.random.Generator, size: int = 120) -> np.ndarray:
    """Black strokes on white paper: a few random thick lines, like a drawn digit."""
    image = np.full((size, size), 255, dtype=np.uint8)
    for _ in range(rng.integers(1, 4)):
        top, left = rng.integers(10, size // 2, 2)
        height, width = rng.integers(8, size // 2, 2)
        image[top:top + height, left:left + max(width // 4, 6)] = 0
    return image


@pytest.fixture
def run_folder(tmp_path):
    """A run folder with an untrained 784-32-10 ReLU model and its metrics.json."""
    folder = tmp_path / "run"
    folder.mkdir()
    save_model(folder / "model.npz", build_mlp(784, [32], 10, rng=1), list(range(10)),
               metadata={"preprocessing": PREPROCESSING,
                         "metrics": {"test_accuracy": 0.25}, "config": {"recipe": "mnist10"}})
    (folder / "metrics.json").write_text(json.dumps({"test_accuracy": 0.5}))
    return folder


def test_forward_with_hidden_is_the_model_forward_and_its_first_hidden_layer(rng):
    model = build_mlp(784, [32, 16], 10, dropout=0.2, rng=0)
    X = rng.random((3, 784)).astype(np.float32)
    logits, hidden = forward_with_hidden(model, X)
    assert np.array_equal(logits, model.forward(X, training=False))  # the same calls
    first = model.layers[0]
    expected = np.maximum(X @ first.W.value + first.b.value, 0)
    assert hidden.shape == (3, 32)
    assert_close(hidden, expected)
    _, none = forward_with_hidden(build_mlp(784, [], 10, rng=0), X)
    assert none is None


def test_a_picture_gets_the_answer_of_nnscratch_predict(run_folder, tmp_path, rng, capsys):
    predictor = Predictor.load(run_folder)
    for index in range(3):
        picture = stroke_picture(rng)
        path = tmp_path / f"digit{index}.png"
        path.write_bytes(png_bytes(picture))
        assert main(["predict", str(run_folder), str(path), "--json"]) == 0
        (expected,) = json.loads(capsys.readouterr().out)
        answer = predictor.predict_picture(path.read_bytes())
        assert answer.label == expected["label"]
        np.testing.assert_allclose(answer.probabilities,
                                   list(expected["probabilities"].values()), rtol=0, atol=1e-6)


def test_pixels_are_used_as_they_are_like_an_npy_file(run_folder, tmp_path, rng, capsys):
    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[4:24, 12:16] = rng.integers(128, 256, (20, 4))
    np.save(tmp_path / "digit.npy", digit)
    assert main(["predict", str(run_folder), str(tmp_path / "digit.npy"), "--json"]) == 0
    (expected,) = json.loads(capsys.readouterr().out)
    answer = Predictor.load(run_folder).predict_pixels((digit / 255).tolist())
    assert answer.label == expected["label"]
    np.testing.assert_allclose(answer.probabilities, list(expected["probabilities"].values()),
                               rtol=0, atol=1e-6)
    np.testing.assert_array_equal(answer.input, digit.astype(np.float32) / np.float32(255))


def test_the_input_sent_back_as_pixels_gives_the_same_answer(run_folder, rng):
    predictor = Predictor.load(run_folder)
    first = predictor.predict_picture(png_bytes(stroke_picture(rng)))
    again = predictor.predict_pixels(first.input.tolist())
    assert again.label == first.label
    np.testing.assert_array_equal(again.probabilities, first.probabilities)
    np.testing.assert_array_equal(again.hidden, first.hidden)


def test_an_answer_has_every_part(run_folder, rng):
    predictor = Predictor.load(run_folder)
    answer = predictor.predict_picture(png_bytes(stroke_picture(rng)))
    assert answer.probabilities.shape == (10,)
    assert answer.probabilities.sum() == pytest.approx(1, abs=1e-6)
    assert answer.label == int(np.argmax(answer.probabilities))
    assert answer.input.shape == (28, 28) and answer.input.dtype == np.float32
    assert 0 <= answer.input.min() and answer.input.max() == 1
    assert answer.hidden.shape == (32,) and answer.hidden.min() >= 0  # after the ReLU
    document = answer.to_json(predictor.classes)
    assert set(document) == {"label", "probabilities", "classes", "input", "hidden"}
    assert json.loads(json.dumps(document)) == document  # plain JSON types throughout


def test_a_binary_model_answers_with_its_two_classes(tmp_path, rng):
    save_model(tmp_path / "model.npz", build_mlp(784, [8], 1, rng=0), [1, 2])
    answer = Predictor.load(tmp_path / "model.npz").predict_picture(
        png_bytes(stroke_picture(rng)))
    assert answer.probabilities.shape == (2,) and answer.label in (1, 2)
    assert answer.probabilities.sum() == pytest.approx(1)


def test_predictions_change_nothing_on_the_model(run_folder, rng):
    """What makes concurrent requests safe: inference writes no layer state."""
    predictor = Predictor.load(run_folder)
    layers = predictor.saved.model.layers
    before = [dict(vars(layer)) for layer in layers]
    weights = [param.value.copy() for param in predictor.saved.model.parameters()]
    for _ in range(2):
        predictor.predict_picture(png_bytes(stroke_picture(rng)))
    for layer, attributes in zip(layers, before, strict=True):
        assert vars(layer).keys() == attributes.keys(), type(layer).__name__
        for name, value in attributes.items():  # no cache or buffer was (re)bound
            assert vars(layer)[name] is value, f"{type(layer).__name__}.{name}"
    for kept, param in zip(weights, predictor.saved.model.parameters(), strict=True):
        np.testing.assert_array_equal(kept, param.value)


def test_threads_get_the_answers_of_one_at_a_time(run_folder, rng):
    predictor = Predictor.load(run_folder)
    pictures = [png_bytes(stroke_picture(rng)) for _ in range(25)]
    expected = [predictor.predict_picture(p) for p in pictures]

    def work(offset: int) -> list:
        order = [(offset + i) % len(pictures) for i in range(len(pictures))]
        return [(i, predictor.predict_picture(pictures[i])) for i in order]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = [pair for batch in pool.map(work, range(8)) for pair in batch]
    assert len(results) == 200
    for i, answer in results:
        assert answer.label == expected[i].label
        assert_close(answer.probabilities, expected[i].probabilities)
        assert_close(answer.hidden, expected[i].hidden)


def test_facts(run_folder):
    facts = Predictor.load(run_folder).facts()
    assert facts["layer_sizes"] == [784, 32, 10]
    assert facts["summary"] == "784 → 32 ReLU → 10"
    assert facts["classes"] == list(range(10)) and facts["dtype"] == "float32"
    assert facts["hidden_units"] == 32 and facts["hidden_activation"] == "ReLU"
    assert facts["n_parameters"] == 784 * 32 + 32 + 32 * 10 + 10
    assert facts["recipe"] == "mnist10" and facts["output"] == "softmax"
    assert facts["sha256"] == hashlib.sha256((run_folder / "model.npz").read_bytes()).hexdigest()
    # The run's metrics.json first, else the metrics recorded in the model file.
    assert (facts["test_accuracy"], facts["test_accuracy_source"]) == (0.5, "metrics.json")
    (run_folder / "metrics.json").unlink()
    facts = Predictor.load(run_folder / "model.npz").facts()
    assert (facts["test_accuracy"], facts["test_accuracy_source"]) == (0.25, "model file")


def test_facts_of_a_model_without_metrics_or_hidden_layer(tmp_path):
    save_model(tmp_path / "model.npz", build_mlp(784, [], 10, rng=0), list(range(10)))
    facts = Predictor.load(tmp_path / "model.npz").facts()
    assert facts["test_accuracy"] is None and facts["test_accuracy_source"] is None
    assert facts["hidden_units"] == 0 and facts["hidden_activation"] is None
    assert facts["summary"] == "784 → 10"


def test_the_tutorial_model_is_described_with_its_sigmoids(tmp_path):
    from nnscratch.nn.activations import Sigmoid
    from nnscratch.nn.layers import Dense
    from nnscratch.nn.model import Sequential

    model = Sequential([Dense(784, 196, rng=0, dtype=np.float64), Sigmoid(),
                        Dense(196, 1, rng=1, dtype=np.float64)])  # as NeuralNet([196, 1])
    save_model(tmp_path / "model.npz", model, [1, 2])
    facts = Predictor.load(tmp_path / "model.npz").facts()
    assert facts["summary"] == "784 → 196 Sigmoid → 1"
    assert facts["hidden_units"] == 196 and facts["hidden_activation"] == "Sigmoid"


@pytest.mark.parametrize(("pixels", "message"), [
    ("zeros", "got str"),
    ([[0.0] * 28] * 27, "got 27 rows"),
    ([[0.0] * 28] * 27 + [[0.0] * 29], r"pixels\[27\] must be a row of 28 numbers, got 29"),
    ([[0.0] * 28] * 27 + [None], r"pixels\[27\] must be a row of 28 numbers, got NoneType"),
    ([[0.0] * 28] * 27 + [[0.0] * 27 + ["1"]], r'pixels\[27\]\[27\] is "1"'),
    ([[0.0] * 28] * 27 + [[0.0] * 27 + [True]], r"pixels\[27\]\[27\] is true"),
    ([[0.0] * 28] * 27 + [[0.0] * 27 + [None]], r"pixels\[27\]\[27\] is null"),
    ([[0.0] * 28] * 3 + [[float("nan")] + [0.0] * 27] + [[0.0] * 28] * 24,
     r"pixels\[3\]\[0\] is nan; pixels must be finite"),
    ([[0.0] * 28] * 27 + [[0.0] * 27 + [float("inf")]], r"pixels\[27\]\[27\] is inf"),
    ([[0.0] * 28] * 27 + [[0.0] * 27 + [255]], r"pixels\[27\]\[27\] is 255, outside \[0, 1\]"),
    ([[-0.5] + [0.0] * 27] + [[0.0] * 28] * 27, r"pixels\[0\]\[0\] is -0.5, outside"),
    ([[10**400] + [0.0] * 27] + [[0.0] * 28] * 27, "too large for a float"),
])
def test_bad_pixels_are_refused_with_where_and_why(run_folder, pixels, message):
    with pytest.raises(PixelsError, match=message):
        Predictor.load(run_folder).predict_pixels(pixels)


@pytest.mark.parametrize("level", [0.0, 0.5, 1.0])
def test_uniform_pixels_are_blank(run_folder, level):
    with pytest.raises(BlankImageError, match="the pixels hold no digit"):
        Predictor.load(run_folder).predict_pixels([[level] * 28] * 28)


def test_bad_pictures_are_refused(run_folder, rng):
    predictor = Predictor.load(run_folder)
    with pytest.raises(BlankImageError, match="the picture: no digit found"):
        predictor.predict_picture(png_bytes(np.full((50, 50), 255, dtype=np.uint8)))
    with pytest.raises(InputFormatError, match="the upload is not a PNG or JPEG picture"):
        predictor.predict_picture(b"hello")
    gif = io.BytesIO()
    Image.fromarray(stroke_picture(rng)).save(gif, "GIF")
    with pytest.raises(InputFormatError, match="not a PNG or JPEG"):
        predictor.predict_picture(gif.getvalue())
    noisy = png_bytes(rng.integers(0, 256, (100, 100), dtype=np.uint8))
    with pytest.raises(UndecodableImageError, match="the upload: the picture cannot be decoded"):
        predictor.predict_picture(noisy[: len(noisy) // 2])


def test_a_model_that_does_not_read_mnist_is_refused(tmp_path):
    save_model(tmp_path / "small.npz", build_mlp(64, [4], 3, rng=0), [0, 1, 2])
    with pytest.raises(ValueError, match="takes 64 inputs, but MNIST images have 784"):
        Predictor.load(tmp_path / "small.npz")
    save_model(tmp_path / "other.npz", build_mlp(784, [4], 3, rng=0), [0, 1, 2],
               metadata={"preprocessing": {"scale": "standardised"}})
    with pytest.raises(ValueError, match="expects inputs scaled as 'standardised'"):
        Predictor.load(tmp_path / "other.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"is a folder without a model\.npz"):
        Predictor.load(tmp_path / "empty")


# ---------------------------------------------------------------------------------------------
# A convolutional network (issue 20): the page shows its first convolution's feature maps


@pytest.fixture
def cnn_folder(tmp_path, rng):
    """A run folder with an untrained CNN (Conv 4 → BatchNorm → ReLU → pool → Conv 6 ...)
    whose running statistics are not their initial ones."""
    from nnscratch.nn.model import build_cnn

    model = build_cnn((1, 28, 28), [4, 6], [8], 10, pool_every=1, rng=0)
    model.forward(rng.random((16, 784)).astype(np.float32), training=True)
    folder = tmp_path / "cnn"
    folder.mkdir()
    save_model(folder / "model.npz", model, list(range(10)),
               metadata={"preprocessing": PREPROCESSING, "config": {"recipe": "mnist-cnn"}})
    return folder


def test_forward_with_features_keeps_the_first_convolutions_maps(cnn_folder, rng):
    from nnscratch.serve.predictor import feature_maps_layer, forward_with_features

    model = Predictor.load(cnn_folder).saved.model
    assert feature_maps_layer(model) == 3  # Reshape, Conv2D, BatchNorm, ReLU: after the ReLU
    X = rng.random((2, 784)).astype(np.float32)
    logits, hidden, maps = forward_with_features(model, X)
    assert np.array_equal(logits, model.forward(X, training=False))  # the same calls
    expected = X.reshape(2, 1, 28, 28)
    for layer in model.layers[1:4]:
        expected = layer.forward(expected, training=False)
    assert maps.shape == (2, 4, 28, 28) and np.array_equal(maps, expected)
    assert maps.min() >= 0  # after the ReLU
    assert hidden.shape == (2, 8)  # the dense hidden layer after the convolutions
    assert feature_maps_layer(build_mlp(784, [8], 10, rng=0)) is None


def test_a_cnn_answer_has_its_feature_maps_as_grey_pictures(cnn_folder, rng):
    predictor = Predictor.load(cnn_folder)
    answer = predictor.predict_picture(png_bytes(stroke_picture(rng)))
    assert answer.probabilities.shape == (10,) and answer.feature_maps.shape == (4, 28, 28)
    pictures = answer.feature_map_pictures()
    assert pictures.dtype == np.uint8 and pictures.shape == (4, 28, 28)
    for picture, values in zip(pictures, answer.feature_maps, strict=True):
        if values.max() > values.min():  # each map stretched over 0..255 on its own
            assert picture.min() == 0 and picture.max() == 255
            stretched = (values - values.min()) / (values.max() - values.min())
            np.testing.assert_allclose(picture / 255, stretched, rtol=0, atol=0.5 / 255 + 1e-6)
    document = answer.to_json(predictor.classes)
    assert set(document) == {"label", "probabilities", "classes", "input", "hidden",
                             "feature_maps"}
    assert np.array_equal(np.array(document["feature_maps"]), pictures)
    assert json.loads(json.dumps(document)) == document
    # A network without convolutions has none, and its answer is as before.
    from nnscratch.serve.predictor import forward_with_features

    X = rng.random((1, 784)).astype(np.float32)
    assert forward_with_features(build_mlp(784, [8], 10, rng=0), X)[2] is None


def test_a_cnn_is_described_with_its_convolutions(cnn_folder):
    facts = Predictor.load(cnn_folder).facts()
    assert facts["summary"] == ("784 → 1×28×28 → conv 4 3×3 BatchNorm ReLU → MaxPool2D 2×2 → "
                                "conv 6 3×3 BatchNorm ReLU → MaxPool2D 2×2 → 8 ReLU → 10")
    assert facts["feature_maps"] == {"channels": 4, "height": 28, "width": 28,
                                     "layers": "Conv2D BatchNorm ReLU"}
    assert facts["recipe"] == "mnist-cnn"


def test_cnn_predictions_change_nothing_on_the_model(cnn_folder, rng):
    predictor = Predictor.load(cnn_folder)
    layers = predictor.saved.model.layers
    before = [dict(vars(layer)) for layer in layers]
    statistics = {name: array.copy() for name, array in predictor.saved.model.buffers().items()}
    for _ in range(2):
        predictor.predict_picture(png_bytes(stroke_picture(rng)))
    for layer, attributes in zip(layers, before, strict=True):
        assert vars(layer).keys() == attributes.keys(), type(layer).__name__
        for name, value in attributes.items():
            assert vars(layer)[name] is value, f"{type(layer).__name__}.{name}"
    for name, array in predictor.saved.model.buffers().items():
        np.testing.assert_array_equal(array, statistics[name])
