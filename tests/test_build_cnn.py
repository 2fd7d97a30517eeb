"""Tests for :func:`nnscratch.nn.model.build_cnn` and the classifier's convolutional networks."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch.classifier import NeuralNetClassifier
from nnscratch.nn.model import IMAGE_MODEL_ROWS, build_cnn, build_mlp, forward_in_chunks


def kinds(model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


def test_build_cnn_lays_out_blocks_pools_and_the_dense_part():
    model = build_cnn((1, 28, 28), [4, 8, 16], [12], 10, pool_every=2, dropout=0.5, rng=0,
                      dtype=np.float64)
    assert kinds(model) == ["Reshape", "Conv2D", "BatchNorm", "ReLU", "Conv2D", "BatchNorm",
                            "ReLU", "MaxPool2D", "Conv2D", "BatchNorm", "ReLU", "Flatten",
                            "Dense", "ReLU", "Dropout", "Dense"]
    assert model.layers[12].in_features == 16 * 14 * 14 and model.in_features == 784
    assert model.forward(np.zeros((3, 784)), training=False).shape == (3, 10)
    plain = build_cnn((3, 8, 8), [2], [], 1, pool_every=1, batch_norm=False, rng=0)
    assert kinds(plain) == ["Reshape", "Conv2D", "ReLU", "MaxPool2D", "Flatten", "Dense"]
    assert plain.layers[-1].in_features == 2 * 4 * 4 and plain.in_features == 192


def test_build_cnn_is_seeded():
    a, b = (build_cnn((1, 8, 8), [3], [4], 2, rng=7) for _ in range(2))
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert np.array_equal(p.value, q.value)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (((28, 28), [4], [], 10), {}, r"image_shape must be \(channels, height, width\)"),
        (((1, 28, 28), [], [], 10), {}, "conv_layers must list at least one"),
        (((1, 28, 28), [0], [], 10), {}, "conv_layers must be >= 1"),
        (((1, 4, 4), [2, 2, 2], [], 10), {"pool_every": 1}, "pool a 1x1 image"),
        (((1, 28, 28), [2], [], 10), {"activation": "swish"}, "activation must be one of"),
    ],
)
def test_build_cnn_errors(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_cnn(*args, **kwargs)


def test_forward_in_chunks_equals_one_pass(rng):
    model = build_cnn((1, 6, 6), [2], [3], 4, rng=0, dtype=np.float64)
    X = rng.random((IMAGE_MODEL_ROWS * 2 + 5, 36))
    np.testing.assert_allclose(forward_in_chunks(model, X), model.forward(X, training=False),
                               rtol=1e-12, atol=1e-12)
    mlp = build_mlp(36, [3], 4, rng=0, dtype=np.float64)
    assert np.array_equal(forward_in_chunks(mlp, X), mlp.forward(X, training=False))


def test_the_classifier_trains_a_cnn_on_rows_of_pixels(rng):
    X = rng.random((60, 64))
    y = np.arange(60) % 3
    clf = NeuralNetClassifier(hidden_layers=(5,), conv_layers=(2,), pool_every=1, epochs=2,
                              batch_size=16, dtype="float64").fit(X, y)
    assert kinds(clf.model_)[:4] == ["Reshape", "Conv2D", "BatchNorm", "ReLU"]
    assert clf.model_.layers[0].shape == (1, 8, 8)
    assert clf.predict_proba(X).shape == (60, 3)
    wide = NeuralNetClassifier(hidden_layers=(), conv_layers=(2,), image_shape=(2, 4, 8),
                               epochs=1, dtype="float64").fit(X, y)
    assert wide.model_.layers[0].shape == (2, 4, 8)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"conv_layers": (2,)}, "X has 60 features, which is not a square image"),
        ({"conv_layers": (2,), "image_shape": (1, 6, 6)}, r"image_shape \(1, 6, 6\) must be"),
        ({"conv_layers": "32"}, "conv_layers must be a sequence of channel counts"),
        ({"conv_layers": (2, 0)}, "each entry of conv_layers must be >= 1"),
        ({"conv_layers": (2,), "pool_every": 0}, "pool_every must be >= 1"),
    ],
)
def test_the_classifier_checks_its_cnn_settings(rng, params, message):
    X = rng.random((20, 60))
    with pytest.raises(ValueError, match=message):
        NeuralNetClassifier(epochs=1, **params).fit(X, np.arange(20) % 2)
