"""Tests for nnscratch.serialization: round trips, and every way a model file can be bad."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nnscratch import serialization
from nnscratch.activations import ACTIVATIONS, ELU, LeakyReLU
from nnscratch.layers import Dense, Dropout, Layer
from nnscratch.model import Sequential, build_mlp
from nnscratch.serialization import (
    FORMAT_VERSION,
    ModelFileError,
    SavedModel,
    load_model,
    save_model,
)

#: One activation layer of every kind, with non-default parameters where it has them.
ACTIVATION_LAYERS = [cls() for cls in ACTIVATIONS.values() if cls not in (LeakyReLU, ELU)]
ACTIVATION_LAYERS += [LeakyReLU(negative_slope=0.2), ELU(alpha=0.7)]


def small_model(activation: Layer | None = None, *, n_out: int = 3,
                dtype: Any = np.float64) -> Sequential:
    activation = activation if activation is not None else ACTIVATIONS["tanh"]()
    return Sequential([Dense(5, 4, rng=1, dtype=dtype), activation, Dropout(0.3, rng=2),
                       Dense(4, n_out, rng=3, dtype=dtype)])


@pytest.fixture
def X(rng) -> np.ndarray:
    return rng.standard_normal((10, 5))


@pytest.fixture
def saved_path(tmp_path) -> Path:
    path = tmp_path / "model.npz"
    save_model(path, small_model(), ["a", "b", "c"], metadata={"seeds": {"seed": 1}})
    return path


def rewrite(path: Path, change: Callable[[dict[str, np.ndarray], dict[str, Any]], None]) -> None:
    """Re-save a model file after ``change`` edits its arrays and metadata document (a
    careful tamperer: the zip itself stays well formed)."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    document = json.loads(arrays.pop("metadata").tobytes())
    change(arrays, document)
    arrays["metadata"] = np.frombuffer(json.dumps(document).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


def outputs(model: Sequential, X: np.ndarray) -> np.ndarray:
    return model.forward(X.astype(model.dtype), training=False)


# ---------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("activation", ACTIVATION_LAYERS, ids=lambda a: type(a).__name__)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_of_every_layer_type(tmp_path, X, activation, dtype):
    model = small_model(activation, dtype=dtype)
    path = tmp_path / "model.npz"
    save_model(path, model, [0, 1, 2])
    loaded = load_model(path)
    assert loaded.model.get_config() == model.get_config()
    assert [type(layer) for layer in loaded.model.layers] == [type(layer) for layer in
                                                               model.layers]
    for before, after in zip(model.parameters(), loaded.model.parameters(), strict=True):
        assert after.dtype == before.dtype and np.array_equal(after.value, before.value)
    assert np.array_equal(outputs(loaded.model, X), outputs(model, X))  # bit for bit


def test_activation_parameters_survive(tmp_path):
    path = tmp_path / "model.npz"
    model = Sequential([Dense(2, 3, rng=0), LeakyReLU(0.25), Dense(3, 3, rng=1), ELU(0.5),
                        Dense(3, 1, rng=2)])
    save_model(path, model, [0, 1])
    layers = load_model(path).model.layers
    assert layers[1].negative_slope == 0.25 and layers[3].alpha == 0.5


@pytest.mark.parametrize(("classes", "n_out"), [([3, 8], 1), (["cat", "dog", "emu"], 3),
                                                ([0.5, 1.5], 1)])
def test_classes_and_metadata_round_trip(tmp_path, X, classes, n_out):
    path = tmp_path / "model.npz"
    model = small_model(n_out=n_out)
    metadata = {"metrics": {"accuracy": 0.5}, "seeds": {"seed": 3}, "note": "ünïcode"}
    save_model(path, model, np.array(classes), metadata=metadata)
    loaded = load_model(path)
    assert loaded.classes.tolist() == classes
    for key, value in metadata.items():
        assert loaded.metadata[key] == value
    assert loaded.metadata["format_version"] == FORMAT_VERSION
    assert loaded.metadata["output"] == ("sigmoid" if n_out == 1 else "softmax")
    assert set(loaded.metadata["versions"]) == {"nnscratch", "numpy"}
    assert loaded.predict(X).tolist() == SavedModel(model, np.array(classes)).predict(X).tolist()


def test_a_trained_classifier_predicts_identically_after_reloading(tmp_path, rng):
    from nnscratch.classifier import NeuralNetClassifier

    X = rng.standard_normal((120, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    classifier = NeuralNetClassifier(hidden_layers=(8,), epochs=3, dropout=0.2).fit(X, y)
    path = tmp_path / "model.npz"
    save_model(path, classifier.model_, classifier.classes_)
    loaded = load_model(path)
    assert np.array_equal(loaded.predict_proba(X), classifier.predict_proba(X))
    assert np.array_equal(loaded.predict(X), classifier.predict(X))


def test_saved_model_predictions(X):
    binary = SavedModel(small_model(n_out=1), np.array([4, 9]))
    probabilities = binary.predict_proba(X)
    assert probabilities.shape == (10, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert set(binary.predict(X).tolist()) <= {4, 9}
    assert binary.n_parameters == 5 * 4 + 4 + 4 + 1
    with pytest.raises(ValueError, match="X has 3 features, but the model expects 5"):
        binary.predict(X[:, :3])


def test_saving_replaces_a_file_atomically(tmp_path, X):
    path = tmp_path / "model.npz"
    save_model(path, small_model(), [0, 1, 2])
    other = small_model(ACTIVATIONS["relu"]())
    for param in other.parameters():
        param.value += 1
    save_model(path, other, [0, 1, 2])
    assert np.array_equal(outputs(load_model(path).model, X), outputs(other, X))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]  # no temporary left


# ---------------------------------------------------------------------------------------------
# save_model refuses what it could not load back


class Doubler(Layer):
    def forward(self, x: np.ndarray, *, training: bool = True) -> np.ndarray:
        return 2 * x


def test_save_model_errors(tmp_path):
    path = tmp_path / "m.npz"
    with pytest.raises(TypeError, match="model must be a Sequential, got Dense"):
        save_model(path, Dense(2, 2), [0, 1])
    with pytest.raises(ValueError, match="layer 1 is a Doubler, which model files cannot hold"):
        save_model(path, Sequential([Dense(2, 3), Doubler(), Dense(3, 3)]), [0, 1, 2])
    with pytest.raises(ValueError, match="3 classes need 3 output"):
        save_model(path, small_model(n_out=1), [0, 1, 2])
    with pytest.raises(ValueError, match="must be distinct"):
        save_model(path, small_model(), [0, 1, 1])
    with pytest.raises(ValueError, match="at least 2 classes"):
        save_model(path, small_model(n_out=1), [0])
    with pytest.raises(ValueError, match="must hold integers, finite numbers or strings"):
        save_model(path, small_model(), [[0], [1], [2]])
    with pytest.raises(ValueError, match=r"metadata may not set \['classes'\]"):
        save_model(path, small_model(), [0, 1, 2], metadata={"classes": [5]})
    with pytest.raises(ValueError, match="replace NaN or infinity by None"):
        save_model(path, small_model(), [0, 1, 2], metadata={"loss": float("nan")})
    with pytest.raises(TypeError, match="metadata must be JSON-serialisable"):
        save_model(path, small_model(), [0, 1, 2], metadata={"when": object()})
    with pytest.raises(FileNotFoundError):
        save_model(tmp_path / "missing" / "m.npz", small_model(), [0, 1, 2])
    assert not path.exists()


# ---------------------------------------------------------------------------------------------
# Interrupted saves


class _HalfWriter:
    """A file whose write stores half the bytes, then is interrupted (Ctrl-C mid-save)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def write(self, data: Any) -> None:
        data = bytes(data)
        self.handle.write(data[: len(data) // 2])
        raise KeyboardInterrupt


def test_an_interrupted_save_leaves_the_previous_file_intact(tmp_path, X, monkeypatch):
    path = tmp_path / "model.npz"
    original = small_model()
    save_model(path, original, [0, 1, 2])
    before = path.read_bytes()
    real_atomic_write = serialization.atomic_write

    @contextlib.contextmanager
    def interrupted(target: Any, mode: str = "wb") -> Iterator[_HalfWriter]:
        with real_atomic_write(target, mode) as handle:
            yield _HalfWriter(handle)

    monkeypatch.setattr(serialization, "atomic_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_model(path, small_model(ACTIVATIONS["relu"]()), [0, 1, 2])
    assert path.read_bytes() == before
    assert np.array_equal(outputs(load_model(path).model, X), outputs(original, X))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


_SAVER = """
import sys, numpy as np
from nnscratch.layers import Dense
from nnscratch.model import Sequential
from nnscratch.serialization import save_model
path = sys.argv[1]
model = Sequential([Dense(1000, 1000, rng=0, dtype=np.float64)])
print("saving", flush=True)
step = 0
while True:
    step += 1
    model.layers[0].b.value[:] = step
    save_model(path, model, list(range(1000)))
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_save_leaves_a_complete_file(tmp_path):
    path = tmp_path / "model.npz"
    child = subprocess.Popen([sys.executable, "-c", _SAVER, str(path)], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"saving\n"
        while not path.exists() and child.poll() is None:  # until the first save completes
            time.sleep(0.005)
        time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)  # mid-way through some later save
    finally:
        child.kill()
        child.wait()
    loaded = load_model(path)  # whichever save completed last, complete and valid
    bias = loaded.model.layers[0].b.value
    assert bias[0] >= 1 and np.all(bias == bias[0])


# ---------------------------------------------------------------------------------------------
# load_model rejects bad files with one clear error


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist; check the path"):
        load_model(tmp_path / "nothing.npz")
    with pytest.raises(ModelFileError, match="is a folder; give the model file"):
        load_model(tmp_path)


@pytest.mark.parametrize("content", [b"", b"hello", b"\x80\x04\x95pickle", b"\x93NUMPY\x01\x00"])
def test_a_file_that_is_not_an_archive(tmp_path, content):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=r"it is not an \.npz archive"):
        load_model(path)


def test_every_truncation_is_rejected(saved_path):
    data = saved_path.read_bytes()
    for length in [4, 30, 100, len(data) // 3, len(data) // 2, len(data) - 22, len(data) - 1]:
        saved_path.write_bytes(data[:length])
        with pytest.raises(ModelFileError, match=r"(not a|truncated)"):
            load_model(saved_path)


def test_any_changed_byte_is_rejected_or_harmless(saved_path, X):
    """Flip bytes all over the file: each copy is refused with ModelFileError, or (a byte the
    zip format ignores, like a timestamp) loads to exactly the same model."""
    data = saved_path.read_bytes()
    reference = load_model(saved_path)
    rejected = 0
    for position in range(0, len(data), 7):
        changed = bytearray(data)
        changed[position] ^= 0x5A
        saved_path.write_bytes(bytes(changed))
        try:
            loaded = load_model(saved_path)
        except ModelFileError:
            rejected += 1
            continue
        assert loaded.metadata == reference.metadata
        assert np.array_equal(outputs(loaded.model, X), outputs(reference.model, X))
    assert rejected > 0.8 * len(range(0, len(data), 7))


def test_a_pickled_object_array_is_refused(saved_path):
    with np.load(saved_path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["param_000"] = np.array([{"exploit": 1}], dtype=object)
    np.savez(saved_path, **arrays)
    with pytest.raises(ModelFileError, match="holds Python objects"):
        load_model(saved_path)


def test_pickled_metadata_is_refused(saved_path):
    with np.load(saved_path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["metadata"] = np.array(["{}"], dtype=object)
    np.savez(saved_path, **arrays)
    with pytest.raises(ModelFileError, match="pickle"):
        load_model(saved_path)


def _reshape_first(arrays: dict, document: dict) -> None:
    arrays["param_000"] = np.zeros((4, 5))


def _resize_first_everywhere(arrays: dict, document: dict) -> None:
    arrays["param_000"] = np.zeros((6, 4))
    document["parameters"][0]["shape"] = [6, 4]


def _swap_weights(arrays: dict, document: dict) -> None:
    arrays["param_000"] = arrays["param_000"][::-1].copy()


def _drop_array(arrays: dict, document: dict) -> None:
    del arrays["param_003"]


def _add_array(arrays: dict, document: dict) -> None:
    arrays["extra"] = np.zeros(3)


def _change_dtype(arrays: dict, document: dict) -> None:
    arrays["param_001"] = arrays["param_001"].astype(np.float32)


def _newer_version(arrays: dict, document: dict) -> None:
    document["format_version"] = FORMAT_VERSION + 1


def _other_format(arrays: dict, document: dict) -> None:
    document["format"] = "keras"


def _unknown_layer(arrays: dict, document: dict) -> None:
    document["architecture"]["layers"][1]["type"] = "Swish"


def _broken_chain(arrays: dict, document: dict) -> None:
    document["architecture"]["layers"][3]["in_features"] = 7


def _bad_classes(arrays: dict, document: dict) -> None:
    document["classes"] = ["a", "b"]


def _bad_layer_argument(arrays: dict, document: dict) -> None:
    document["architecture"]["layers"][2]["p"] = 1.5


def _no_parameters(arrays: dict, document: dict) -> None:
    del document["parameters"]


def _bad_checksum(arrays: dict, document: dict) -> None:
    document["parameters"][0]["sha256"] = "not a checksum"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_reshape_first, r"0\.W \(param_000\) is float64 of shape \(4, 5\), but the architecture"),
        (_resize_first_everywhere, r"lists 0\.W as float64 of shape \[6, 4\]"),
        (_swap_weights, "do not match their recorded SHA-256"),
        (_drop_array, "the archive holds"),
        (_add_array, "the archive holds"),
        (_change_dtype, "is float32 of shape"),
        (_newer_version, r"version 2, newer than this nnscratch reads .*upgrade nnscratch"),
        (_other_format, "is not an nnscratch model file"),
        (_unknown_layer, "unknown type 'Swish'"),
        (_broken_chain, "takes 7 inputs but the layer before gives 4"),
        (_bad_classes, "2 classes need 1 output"),
        (_bad_layer_argument, "the architecture in the metadata is invalid"),
        (_no_parameters, "parameter list is malformed"),
        (_bad_checksum, "entry for 0.W is malformed"),
    ],
)
def test_tampered_files_are_rejected(saved_path, change, message):
    rewrite(saved_path, change)
    with pytest.raises(ModelFileError, match=message):
        load_model(saved_path)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [(b"\xff\xfe", "not valid JSON"), (b"[1, 2]", "must be a JSON object")],
)
def test_unreadable_metadata(saved_path, metadata, message):
    with np.load(saved_path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["metadata"] = np.frombuffer(metadata, dtype=np.uint8)
    np.savez(saved_path, **arrays)
    with pytest.raises(ModelFileError, match=message):
        load_model(saved_path)


def test_metadata_of_the_wrong_kind(saved_path):
    with np.load(saved_path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["metadata"] = np.zeros((2, 2))
    np.savez(saved_path, **arrays)
    with pytest.raises(ModelFileError, match="the metadata must be a 1-D uint8 array"):
        load_model(saved_path)


def test_a_duplicated_member_is_rejected(saved_path):
    buffer = io.BytesIO(saved_path.read_bytes())
    with zipfile.ZipFile(buffer, "a") as archive, pytest.warns(UserWarning, match="Duplicate"):
        archive.writestr("param_000.npy", b"evil")
    saved_path.write_bytes(buffer.getvalue())
    with pytest.raises(ModelFileError, match="lists an array twice"):
        load_model(saved_path)


def test_missing_metadata(saved_path):
    with np.load(saved_path) as archive:
        arrays = {name: archive[name] for name in archive.files if name != "metadata"}
    np.savez(saved_path, **arrays)
    with pytest.raises(ModelFileError, match="has no 'metadata' array"):
        load_model(saved_path)


def test_build_mlp_models_round_trip(tmp_path, X):
    model = build_mlp(5, [7, 6], 4, activation="gelu", dropout=0.1, rng=0, dtype=np.float64)
    path = tmp_path / "mlp.npz"
    save_model(path, model, list("abcd"))
    assert np.array_equal(outputs(load_model(path).model, X), outputs(model, X))
