"""Tests for nnscratch.serialization: round trips, and every way a model file can be bad."""

from __future__ import annotations

import contextlib
import io
import os
import re
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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _tamper import rewrite
from nnscratch import serialization
from nnscratch.nn.activations import ACTIVATIONS, ELU, LeakyReLU
from nnscratch.nn.layers import Dense, Dropout, Layer
from nnscratch.nn.model import Sequential, build_mlp
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
    assert loaded.metadata["format_version"] == 1  # dense layers only: readable by version 1
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
from nnscratch.nn.layers import Dense
from nnscratch.nn.model import Sequential
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
        (_newer_version, r"version 3, newer than this nnscratch reads .*upgrade nnscratch"),
        (_other_format, "is not an nnscratch model file"),
        (_unknown_layer, "unknown layer type 'Swish'"),
        (_broken_chain, "takes 7 inputs but the layer before gives 4"),
        (_bad_classes, "2 classes need 1 output"),
        (_bad_layer_argument, "the architecture in the metadata is invalid"),
        (_no_parameters, "has no 'parameters' field"),
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


# ---------------------------------------------------------------------------------------------
# Unsound files: non-finite weights, contradictory or ill-typed metadata, sizes beyond limits


def _nan_weight(arrays: dict, document: dict) -> None:
    arrays["param_000"][1, 2] = np.nan


def _inf_bias(arrays: dict, document: dict) -> None:
    arrays["param_003"][:2] = [np.inf, -np.inf]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_nan_weight, r"layer 0 \(Dense\) has 1 NaN and 0 infinite values in its parameter W "
                      r"\(0\.W\).*retrain it"),
        (_inf_bias, r"layer 3 \(Dense\) has 0 NaN and 2 infinite values in its parameter b "
                    r"\(3\.b\).*lower learning rate"),
    ],
)
def test_non_finite_weights_are_refused_naming_the_layer(saved_path, change, message):
    rewrite(saved_path, change, rehash=True)  # checksums match: only the values are wrong
    with pytest.raises(ModelFileError, match=re.escape(str(saved_path)) + ".*" + message):
        load_model(saved_path)


def test_save_model_refuses_non_finite_weights(tmp_path):
    model = small_model()
    model.layers[3].W.value[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"layer 3 \(Dense\) has 1 NaN .* cannot be saved"):
        save_model(tmp_path / "m.npz", model, ["a", "b", "c"])
    assert not (tmp_path / "m.npz").exists()


def _set(field: str, value: Any) -> Callable[[dict, dict], None]:
    def change(arrays: dict, document: dict) -> None:
        document[field] = value
    change.__name__ = f"{field}={value!r}"
    return change


def _set_layer(index: int, field: str, value: Any) -> Callable[[dict, dict], None]:
    def change(arrays: dict, document: dict) -> None:
        document["architecture"]["layers"][index][field] = value
    return change


def _set_entry(field: str, value: Any) -> Callable[[dict, dict], None]:
    def change(arrays: dict, document: dict) -> None:
        document["parameters"][0][field] = value
    return change


#: One row per way the metadata can be wrong: the change, and what the error must say.
METADATA_CASES = [
    (_set("classes", ["a", "b", "a"]), r"must be distinct"),
    (_set("classes", [1, "1", 2]), r"must all be of one type .* int and str: \[1, '1', 2\]"),
    (_set("classes", [1, 2.5, 3]), r"must all be of one type .* float and int"),
    (_set("classes", [2**70, 1, 2]), r"must fit in 64-bit integers"),
    (_set("classes", [True, False, None]), r"must hold integers, finite numbers or strings"),
    (_set("output", "sigmoid"), r"says the output is 'sigmoid', but 3 classes and 3 output\(s\) "
                                r"mean 'softmax'"),
    (_set("output", "relu"), r"'output' must be 'sigmoid' or 'softmax', got 'relu'"),
    (_set("output", 1), r"the field 'output' must be a string, got an integer 1"),
    (_set("format_version", "1"), r"the format version '1' is not valid"),
    (_set("classes", "abc"), r"the field 'classes' must be an array, got a string \"abc\""),
    (_set("dtype", None), r"the field 'dtype' must be a string, got null"),
    (_set("versions", ["0.1"]), r"the field 'versions' must be an object, got an array"),
    (_set("versions", {"numpy": 2}), r"the field 'versions.numpy' must be a string"),
    (_set("metrics", [0.9]), r"the field 'metrics' must be an object, got an array \[0.9\]"),
    (_set("preprocessing", "pixel / 255"), r"the field 'preprocessing' must be an object"),
    (_set("seeds", 42), r"the field 'seeds' must be an object, got an integer 42"),
    (_set("config", True), r"the field 'config' must be an object, got a boolean true"),
    (_set("training_data_sha256", "abc"), r"'training_data_sha256' must be 64 lowercase hex"),
    (_set("architecture", {"layers": [], "extra": 1}), r"must hold exactly 'layers'"),
    (_set("architecture", {"layers": {}}), r"'architecture.layers' must be an array"),
    (_set("parameters", {}), r"the field 'parameters' must be an array, got an object"),
    (_set_layer(0, "in_features", 5.0), r"'architecture.layers\[0\].in_features' must be an "
                                        r"integer, got a number 5.0"),
    (_set_layer(0, "in_features", True), r"'architecture.layers\[0\].in_features' must be an "
                                         r"integer, got a boolean"),
    (_set_layer(0, "init", 3), r"'architecture.layers\[0\].init' must be a string"),
    (_set_layer(0, "bias", True), r"'architecture.layers\[0\]' is a Dense with the arguments "
                                  r"\['bias', 'dtype', 'in_features', 'init', 'out_features'\]"),
    (_set_layer(2, "p", "0.3"), r"'architecture.layers\[2\].p' must be a number, got a string"),
    (_set_layer(2, "p", 10**400), r"the architecture in the metadata is invalid"),
    (_set_layer(1, "type", ["Tanh"]), r"names the unknown layer type \['Tanh'\]"),
    (_set_entry("shape", [5, "4"]), r"'parameters\[0\].shape\[1\]' must be an integer"),
    (_set_entry("sha256", None), r"'parameters\[0\].sha256' must be a string, got null"),
    (_set_entry("note", "x"), r"'parameters\[0\]' must hold exactly"),
]


@pytest.mark.parametrize(("change", "message"), METADATA_CASES,
                         ids=[str(i) for i in range(len(METADATA_CASES))])
def test_unsound_metadata_is_refused(saved_path, change, message):
    rewrite(saved_path, change)
    with pytest.raises(ModelFileError, match=re.escape(str(saved_path)) + ".*" + message):
        load_model(saved_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"format": NaN}', r"the metadata holds NaN, which is not a JSON number"),
        ('{"format": 1e999}', r"the metadata holds the number 1e999"),
        ('{"a": 1, "a": 2}', r"the metadata lists the key 'a' twice"),
        ("[" * 100_000 + "]" * 100_000, r"the metadata nests too deeply"),
    ],
)
def test_metadata_must_be_strict_json(saved_path, text, message):
    from _tamper import rewrite_metadata_text

    rewrite_metadata_text(saved_path, text)
    with pytest.raises(ModelFileError, match=message):
        load_model(saved_path)


@pytest.mark.parametrize(
    ("metadata", "error", "message"),
    [
        ({"metrics": [0.5]}, TypeError, r"metadata: the field 'metrics' must be an object"),
        ({"training_data_sha256": None}, TypeError, r"'training_data_sha256' must be a string"),
        ({"seeds": "42"}, TypeError, r"the field 'seeds' must be an object"),
        ({"metrics": {"loss": np.float32("nan")}}, ValueError,
         r"metadata: metrics\.loss is nan.*replace NaN or infinity by None"),
    ],
)
def test_save_model_refuses_metadata_it_could_not_load(tmp_path, metadata, error, message):
    with pytest.raises(error, match=message):
        save_model(tmp_path / "m.npz", small_model(), [0, 1, 2], metadata=metadata)
    assert list(tmp_path.iterdir()) == []


def test_numpy_values_in_metadata_are_written_as_plain_json(tmp_path):
    path = tmp_path / "m.npz"
    save_model(path, small_model(), [0, 1, 2],
               metadata={"seeds": {"seed": np.int64(3)}, "metrics": {"acc": np.float32(0.5)}})
    assert load_model(path).metadata["seeds"] == {"seed": 3}


@pytest.mark.parametrize(
    ("model", "classes", "error", "message"),
    [
        (small_model(), ["a", "b", "a"], ValueError, "must be distinct"),
        (small_model(), [1, "1", 2], ValueError, "must all be of one type"),
        (small_model(), [0, 1], ValueError, r"2 classes need 1 output\(s\), but the model has 3"),
        (Dense(2, 2), [0, 1, 2], TypeError, "model must be a Sequential"),
    ],
)
def test_saved_model_checks_what_prediction_relies_on(model, classes, error, message):
    with pytest.raises(error, match=message):
        SavedModel(model, np.array(classes, dtype=object))


def test_saved_model_refuses_non_finite_weights():
    model = small_model()
    model.layers[0].b.value[1] = np.inf
    with pytest.raises(ValueError, match=r"layer 0 \(Dense\) has 0 NaN and 1 infinite .*"
                                         r"cannot predict"):
        SavedModel(model, np.array([0, 1, 2]))


def test_outputs_that_overflow_are_an_error_not_nan(X):
    model = small_model(dtype=np.float32)
    model.layers[0].b.value[...] = 100.0  # every hidden tanh output is 1
    model.layers[3].W.value[...] = 3e38  # finite, but 4 × 3e38 overflows float32
    saved = SavedModel(model, np.array([0, 1, 2]))
    for method in (saved.predict, saved.predict_proba, saved.predict_class_indices):
        with pytest.raises(ValueError, match=r"outputs are NaN or infinite for 10 of 10 rows .*"
                                             r"overflow float32"):
            method(X)


# --- sizes: the limit and the file's own size, checked before anything is allocated ---------


def _declare_a_huge_hidden_layer(arrays: dict, document: dict) -> None:
    """The 784×1,000,000 case, at this model's scale: 5×1,000,000 and 1,000,000×3."""
    layers = document["architecture"]["layers"]
    layers[0]["out_features"] = layers[3]["in_features"] = 1_000_000


def test_a_file_declaring_too_many_parameters_is_refused_before_allocating(saved_path):
    import tracemalloc

    rewrite(saved_path, _declare_a_huge_hidden_layer)
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=r"declares 9,000,003 parameters \(72,000,024 "
                                                 r"bytes of float64\), more than the limit of "
                                                 r"1,000,000.*max_parameters=N.*--max-parameters"):
            load_model(saved_path, max_parameters=1_000_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000  # bytes: the metadata and the zip directory, not 72 MB


def test_the_default_limit_refuses_the_784_by_a_million_matrix(saved_path):
    def declare(arrays: dict, document: dict) -> None:
        layers = document["architecture"]["layers"]
        layers[0]["in_features"], layers[0]["out_features"] = 784, 1_000_000
        layers[3]["in_features"] = 1_000_000

    rewrite(saved_path, declare)
    assert serialization.MAX_PARAMETERS == 100_000_000
    with pytest.raises(ModelFileError, match=r"declares 788,000,003 parameters \(6,304,000,024 "
                                             r"bytes of float64\), more than the limit of "
                                             r"100,000,000"):
        load_model(saved_path)


def test_max_parameters_can_be_raised_and_lowered(saved_path):
    n_parameters = load_model(saved_path).n_parameters
    assert load_model(saved_path, max_parameters=n_parameters).n_parameters == n_parameters
    with pytest.raises(ModelFileError, match=f"more than the limit of {n_parameters - 1}"):
        load_model(saved_path, max_parameters=n_parameters - 1)
    with pytest.raises(ValueError, match="max_parameters must be >= 1"):
        load_model(saved_path, max_parameters=0)
    with pytest.raises(TypeError, match="max_parameters must be an integer"):
        load_model(saved_path, max_parameters=1e9)


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_a_member_claiming_more_bytes_than_it_stores_is_refused_undecompressed(
        tmp_path, compression):
    from _tamper import claim_size

    path = tmp_path / "model.npz"
    save_model(path, small_model(), [0, 1, 2])
    with np.load(path) as archive:  # re-pack, compressed or not, with the same arrays
        arrays = {name: archive[name] for name in archive.files}
    with zipfile.ZipFile(path, "w", compression=compression) as packed:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, array)
            packed.writestr(f"{name}.npy", buffer.getvalue())
    load_model(path)  # sound as packed
    claim_size(path, "param_000.npy", 3_000_000_000)
    limit = "stored bytes can hold at most" if compression == zipfile.ZIP_STORED else \
        "compressed bytes can hold at most"
    with pytest.raises(ModelFileError, match=r"the member param_000\.npy claims 3,000,000,000 "
                                             f"bytes, but its .* {limit}.*decompression bomb"):
        load_model(path)


def test_a_member_past_the_end_of_the_file_is_refused(saved_path):
    data = bytearray(saved_path.read_bytes())
    with zipfile.ZipFile(saved_path) as archive:
        info = archive.getinfo("param_000.npy")
    start = data.rfind(b"PK\x01\x02", 0, data.rfind(b"param_000.npy"))
    data[start + 20:start + 24] = (10**9).to_bytes(4, "little")  # compressed size
    data[start + 24:start + 28] = (10**9).to_bytes(4, "little")  # uncompressed size
    saved_path.write_bytes(bytes(data))
    del info
    with pytest.raises(ModelFileError, match=r"param_000\.npy claims 1,000,000,000 bytes from "
                                             r"offset .*past the end of the file"):
        load_model(saved_path)


def test_an_npy_header_declaring_more_than_its_member_holds_is_refused(saved_path):
    with np.load(saved_path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (5, 4)})
    fake = header.getvalue() + b"\x00" * 16  # 16 of the 160 bytes the header declares
    with zipfile.ZipFile(saved_path, "w") as packed:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, array)
            packed.writestr(f"{name}.npy", fake if name == "param_000" else buffer.getvalue())
    with pytest.raises(ModelFileError, match=r"'param_000' declares shape \(5, 4\) of float64 "
                                             r"\(160 bytes\), but its archive member holds 16"):
        load_model(saved_path)


# --- only regular files ---------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")
def test_a_named_pipe_is_refused_at_once(tmp_path):
    """In a child process with a timeout: a reader that waited for a writer would hang."""
    from _tamper import error_in_child

    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    refusal = error_in_child("__import__('nnscratch').load_model(path)", fifo)
    assert refusal.startswith(f"ModelFileError: {fifo} is a named pipe (FIFO), not a model "
                              "file: nnscratch reads only regular files"), refusal
    assert "Save the data to a file" in refusal


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_device_is_refused_at_once():
    with pytest.raises(ModelFileError, match=r"/dev/zero is a character device, not a model file"):
        load_model("/dev/zero")


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_a_symlink_loop_is_not_reported_as_missing(tmp_path):
    loop = tmp_path / "model.npz"
    loop.symlink_to(loop)
    with pytest.raises(OSError, match=r"model\.npz is a symbolic link that loops") as caught:
        load_model(loop)
    assert not isinstance(caught.value, FileNotFoundError)


# --- property: any JSON in any field loads or raises ModelFileError, nothing else ----------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=4),
    max_leaves=12,
)
_FIELD_NAMES = [*sorted(serialization._FIELDS), "extra_key"]


def _place(document: dict, where: str, value: Any) -> None:
    """Put ``value`` at ``where``: a top-level field, a layer argument or a parameter entry."""
    kind, _, name = where.partition(":")
    if kind == "field":
        document[name] = value
    elif kind == "layer":
        index, _, argument = name.partition(".")
        document["architecture"]["layers"][int(index)][argument] = value
    elif kind == "entry":
        document["parameters"][0][name] = value
    else:
        document.pop(name, None)


_PLACES = (
    [f"field:{name}" for name in _FIELD_NAMES] + [f"drop:{name}" for name in _FIELD_NAMES]
    + [f"layer:0.{a}" for a in ("in_features", "out_features", "init", "dtype", "type")]
    + ["layer:1.type", "layer:2.p", "layer:2.type", "layer:3.out_features"]
    + [f"entry:{e}" for e in ("key", "name", "shape", "dtype", "sha256")]
)


@pytest.mark.system
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.sampled_from(_PLACES), value=_JSON)
def test_any_metadata_value_loads_or_is_refused_cleanly(saved_path, X, where, value):
    original = saved_path.with_suffix(".original")
    if not original.exists():  # the fixture is shared by every example: start each afresh
        original.write_bytes(saved_path.read_bytes())
    saved_path.write_bytes(original.read_bytes())
    rewrite(saved_path, lambda arrays, document: _place(document, where, value))
    try:
        loaded = load_model(saved_path)
    except ModelFileError as error:
        assert str(error).startswith(str(saved_path)), error
        return
    probabilities = loaded.predict_proba(X)  # a model that loads predicts soundly
    assert np.all(np.isfinite(probabilities))
    assert len({str(label) for label in loaded.classes.tolist()}) == len(loaded.classes)


# ---------------------------------------------------------------------------------------------
# Convolutional networks (issue 20): every new layer, batch norm's running statistics, and the
# sample's shape followed through the layers before anything is allocated


def cnn_model(dtype: Any = np.float64) -> Sequential:
    """Every new layer type once: 36 values reshaped to 1x6x6, a strided and padded
    convolution, batch norm, both pools, layer norm, a global pool and two dense layers."""
    from nnscratch.nn.conv import AvgPool2D, Conv2D, GlobalAvgPool2D, MaxPool2D
    from nnscratch.nn.layers import Flatten, Reshape
    from nnscratch.nn.normalization import BatchNorm, LayerNorm

    return Sequential([
        Reshape((1, 6, 6)), Conv2D(1, 3, (3, 2), stride=(1, 2), padding=(2, 1), rng=1,
                                   dtype=dtype),
        BatchNorm(3, momentum=0.2, eps=1e-4, dtype=dtype), ACTIVATIONS["relu"](),
        MaxPool2D(2, stride=1), Conv2D(3, 4, 2, rng=2, dtype=dtype), AvgPool2D((2, 1)),
        LayerNorm((4, 3, 2), dtype=dtype), GlobalAvgPool2D(),
        BatchNorm(4, dtype=dtype), Dense(4, 5, rng=3, dtype=dtype), Flatten(),
        Dense(5, 3, rng=4, dtype=dtype),
    ])


@pytest.fixture
def cnn_path(tmp_path, rng) -> Path:
    """A saved CNN whose running statistics and normalisation parameters were moved by two
    training steps (so they are not their initial 0 and 1)."""
    model = cnn_model()
    for _ in range(2):
        model.forward(rng.standard_normal((8, 36)), training=True)
    for param in model.parameters():
        param.value += 0.1 * rng.standard_normal(param.shape)
    path = tmp_path / "cnn.npz"
    save_model(path, model, ["a", "b", "c"])
    return path


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_of_a_cnn_with_every_new_layer(tmp_path, rng, dtype):
    model = cnn_model(dtype)
    model.forward(rng.standard_normal((8, 36)).astype(dtype), training=True)
    path = tmp_path / "cnn.npz"
    save_model(path, model, [0, 1, 2])
    loaded = load_model(path)
    assert loaded.model.get_config() == model.get_config()
    for before, after in zip(model.parameters(), loaded.model.parameters(), strict=True):
        assert after.dtype == before.dtype and np.array_equal(after.value, before.value)
    assert loaded.model.buffers().keys() == model.buffers().keys() == {
        "2.running_mean", "2.running_var", "9.running_mean", "9.running_var"}
    for name, before in model.buffers().items():
        after = loaded.model.buffers()[name]
        assert after.dtype == before.dtype and np.array_equal(after, before), name
    assert not np.array_equal(model.layers[2].running_var, np.ones(3))  # training moved them
    X = rng.standard_normal((5, 36)).astype(dtype)
    assert np.array_equal(outputs(loaded.model, X), outputs(model, X))  # bit for bit
    assert loaded.n_parameters == sum(p.value.size for p in model.parameters())
    assert [entry["name"] for entry in loaded.metadata["buffers"]] == list(model.buffers())
    assert serialization.sample_shapes(loaded.model) == [
        (36,), (1, 6, 6), (3, 8, 4), (3, 8, 4), (3, 8, 4), (3, 7, 3), (4, 6, 2), (4, 3, 2),
        (4, 3, 2), (4,), (4,), (5,), (5,), (3,)]


def test_a_model_without_batch_norm_is_written_as_before(tmp_path):
    path = tmp_path / "model.npz"
    save_model(path, small_model(), [0, 1, 2])
    assert "buffers" not in load_model(path).metadata
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["metadata.npy"] + [
            f"param_{i:03d}.npy" for i in range(4)]


def test_a_trained_cnn_classifier_predicts_identically_after_reloading(tmp_path, rng):
    from nnscratch.classifier import NeuralNetClassifier

    X = rng.random((40, 64))
    y = np.arange(40) % 2
    clf = NeuralNetClassifier(hidden_layers=(6,), conv_layers=(2, 3), epochs=2, batch_size=8,
                              dtype="float64").fit(X, y)
    path = tmp_path / "cnn.npz"
    save_model(path, clf.model_, clf.classes_)
    loaded = load_model(path)
    assert [type(layer).__name__ for layer in loaded.model.layers][:3] == [
        "Reshape", "Conv2D", "BatchNorm"]
    assert np.array_equal(loaded.predict_proba(X)[:, 1], clf.predict_proba(X)[:, 1])


def _huge_kernel(arrays: dict, document: dict) -> None:
    """A 1-channel 30,000 x 30,000 kernel: 900 million weights, on a 6x6 image."""
    document["architecture"]["layers"][1]["kernel_size"] = [30_000, 30_000]
    document["parameters"][0]["shape"] = [3, 1, 30_000, 30_000]


def _kernel_larger_than_the_image(arrays: dict, document: dict) -> None:
    document["architecture"]["layers"][1]["kernel_size"] = [11, 2]
    document["parameters"][0]["shape"] = [3, 1, 11, 2]


def _huge_image(arrays: dict, document: dict) -> None:
    """A Reshape to 3 x 10,000 x 10,000 values per sample: no weights, but absurd."""
    document["architecture"]["layers"][0]["shape"] = [3, 10_000, 10_000]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_huge_kernel, r"layer 1 \(Conv2D\) has a 30000x30000 kernel, larger than its 6x6 input"),
        (_kernel_larger_than_the_image,
         r"layer 1 \(Conv2D\) has a 11x2 kernel, larger than its 6x6 input padded by \[2, 1\]"),
        (_huge_image, r"layer 0 \(Reshape\) makes 300,000,000 values per sample"),
    ],
)
def test_a_cnn_declaring_huge_or_impossible_sizes_is_refused_before_allocating(
        cnn_path, change, message):
    import tracemalloc

    rewrite(cnn_path, change)
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=re.escape(str(cnn_path)) + ".*" + message):
            load_model(cnn_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000  # bytes: the metadata and the zip directory only


def test_a_huge_kernel_that_fits_its_image_is_refused_by_the_parameter_limit(tmp_path):
    from nnscratch.nn.conv import Conv2D
    from nnscratch.nn.layers import Flatten, Reshape

    path = tmp_path / "cnn.npz"
    model = Sequential([Reshape((1, 5, 5)), Conv2D(1, 2, 4, rng=0), Flatten(),
                        Dense(8, 3, rng=1)])
    save_model(path, model, [0, 1, 2])

    def declare(arrays: dict, document: dict) -> None:  # 3001x3001 images, 3000x3000 kernels
        layers = document["architecture"]["layers"]
        layers[0]["shape"] = [1, 3001, 3001]
        layers[1]["kernel_size"] = [3000, 3000]
        document["parameters"][0]["shape"] = [2, 1, 3000, 3000]

    rewrite(path, declare)
    with pytest.raises(ModelFileError, match=r"declares 18,000,029 parameters \(72,000,116 bytes "
                                             r"of float32\), more than the limit of 1,000,000"):
        load_model(path, max_parameters=1_000_000)


def _set_cnn_layer(index: int, field: str, value: Any) -> Callable[[dict, dict], None]:
    def change(arrays: dict, document: dict) -> None:
        document["architecture"]["layers"][index][field] = value
    return change


def _tamper_running_var(arrays: dict, document: dict) -> None:
    arrays["buffer_001"][0] += 1.0


def _nan_running_mean(arrays: dict, document: dict) -> None:
    arrays["buffer_000"][1] = np.nan


def _drop_buffer(arrays: dict, document: dict) -> None:
    del arrays["buffer_003"]
    del document["buffers"][3]


def _no_buffers_field(arrays: dict, document: dict) -> None:
    for key in ("buffer_000", "buffer_001", "buffer_002", "buffer_003"):
        del arrays[key]
    del document["buffers"]


def _reshape_buffer(arrays: dict, document: dict) -> None:
    arrays["buffer_002"] = arrays["buffer_002"][:2]
    document["buffers"][2]["shape"] = [2]


def _swap_buffer_key(arrays: dict, document: dict) -> None:
    document["buffers"][0]["key"] = "param_000"


@pytest.mark.parametrize(
    ("change", "rehash", "message"),
    [
        (_tamper_running_var, False, r"the values of 2\.running_var do not match their recorded "
                                     r"SHA-256"),
        (_nan_running_mean, True, r"layer 2 \(BatchNorm\) has 1 NaN and 0 infinite values in its "
                                  r"array running_mean \(2\.running_mean\)"),
        (_drop_buffer, False, r"the architecture has 4 running-statistics arrays but the "
                              r"metadata's 'buffers' lists 3"),
        (_no_buffers_field, False, r"4 running-statistics arrays but the metadata's 'buffers' "
                                   r"lists 0"),
        (_reshape_buffer, False, r"the metadata lists 9\.running_mean as float64 of shape \[2\], "
                                 r"but the architecture needs float64 of shape \[4\]"),
        (_swap_buffer_key, False, r"the metadata entry for 2\.running_mean is malformed"),
        (_set_cnn_layer(1, "in_channels", 2), False,
         r"layer 1 \(Conv2D\) takes 2 channel\(s\) but the layer before gives 1"),
        (_set_cnn_layer(2, "num_features", 4), False,
         r"layer 2 \(BatchNorm\) normalises 4 features \(or channels\) but the layer before "
         r"gives shape \[3, 8, 4\]"),
        (_set_cnn_layer(7, "normalized_shape", [4, 2, 3]), False,
         r"layer 7 \(LayerNorm\) normalises over \[4, 2, 3\] but the layer before gives shape "
         r"\[4, 3, 2\]"),
        (_set_cnn_layer(0, "shape", [2, 3, 6]), False,
         r"layer 1 \(Conv2D\) takes 1 channel\(s\) but the layer before gives 2"),
        (_set_cnn_layer(10, "in_features", 5), False,
         r"layer 10 \(Dense\) takes 5 inputs but the layer before gives 4 values"),
        (_set_cnn_layer(1, "stride", [0, 1]), False,
         r"layer 1 \(Conv2D\) has invalid sizes \(each stride must be >= 1\)"),
        (_set_cnn_layer(1, "padding", [-1, 1]), False,
         r"layer 1 \(Conv2D\) has invalid sizes \(each padding must be >= 0\)"),
        (_set_cnn_layer(1, "kernel_size", 3), False,
         r"architecture\.layers\[1\]\.kernel_size' must be a pair of integers \[height, width\], "
         r"got an integer 3"),
        (_set_cnn_layer(4, "stride", [1, 1, 1]), False,
         r"architecture\.layers\[4\]\.stride' must be a pair of integers"),
        (_set_cnn_layer(0, "shape", []), False,
         r"architecture\.layers\[0\]\.shape' must be a non-empty array of at most 8 integers"),
        (_set_cnn_layer(2, "dtype", "float32"), False,
         r"layer 2 \(BatchNorm\) is 'float32' but the model is float64"),
    ],
)
def test_tampered_cnn_files_are_refused(cnn_path, change, rehash, message):
    rewrite(cnn_path, change, rehash=rehash)
    with pytest.raises(ModelFileError, match=re.escape(str(cnn_path)) + ".*" + message):
        load_model(cnn_path)


def test_buffers_is_a_reserved_metadata_key(tmp_path):
    with pytest.raises(ValueError, match=r"metadata may not set \['buffers'\]"):
        save_model(tmp_path / "m.npz", small_model(), [0, 1, 2], metadata={"buffers": []})


def test_non_finite_running_statistics_cannot_be_saved(tmp_path):
    model = cnn_model()
    model.layers[9].running_var[2] = np.inf
    with pytest.raises(ValueError, match=r"layer 9 \(BatchNorm\) has 0 NaN and 1 infinite values "
                                         r"in its array running_var \(9\.running_var\)"):
        save_model(tmp_path / "m.npz", model, [0, 1, 2])


def test_a_cnn_is_format_version_2_and_version_1_cannot_claim_one(cnn_path, tmp_path):
    assert FORMAT_VERSION == 2
    assert load_model(cnn_path).metadata["format_version"] == 2

    def claim_version_1(arrays: dict, document: dict) -> None:
        document["format_version"] = 1

    rewrite(cnn_path, claim_version_1)
    with pytest.raises(ModelFileError, match=r"says it is format version 1, but layer 0 is a "
                                             r"Reshape, which version 1 does not have"):
        load_model(cnn_path)
    # An MLP with the running statistics of a batch norm it does not have.
    path = tmp_path / "mlp.npz"
    save_model(path, small_model(), [0, 1, 2])

    def add_buffers(arrays: dict, document: dict) -> None:
        document["buffers"] = []

    rewrite(path, add_buffers)
    with pytest.raises(ModelFileError, match=r"it lists running statistics \('buffers'\), "
                                             r"which version 1 does not have"):
        load_model(path)


def test_save_model_refuses_a_model_whose_shapes_do_not_chain(tmp_path):
    from nnscratch.nn.conv import MaxPool2D

    model = Sequential([MaxPool2D(2), Dense(196, 3, rng=0)])  # no image shape to start from
    with pytest.raises(ValueError, match=r"layer 0 \(MaxPool2D\) needs images \(channels, "
                                         r"height, width\).*a model file could not hold it"):
        save_model(tmp_path / "m.npz", model, [0, 1, 2])
    assert not (tmp_path / "m.npz").exists()
