"""Tests for ONNX export (:mod:`nnscratch.export`, ``nnscratch export``).

Every exported file passes ``onnx.checker.check_model(full_check=True)`` and runs in onnxruntime,
whose probabilities must equal ``SavedModel.predict_proba``'s to 1e-5 (absolute) with the same
most probable class on every row. The graph is float32, so for a float64 model the difference
is float32 rounding (about 1e-7), far inside the bound. Skipped, with the reason, without the
``onnx`` or ``onnxruntime`` package (both in the test extra).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason='onnx is not installed: pip install "nnscratch[onnx]"')
ort = pytest.importorskip("onnxruntime",
                          reason='onnxruntime is not installed: pip install -e ".[test]"')

from nnscratch import export  # noqa: E402
from nnscratch.cli import main  # noqa: E402
from nnscratch.nn import activations  # noqa: E402
from nnscratch.nn.conv import AvgPool2D, Conv2D, GlobalAvgPool2D, MaxPool2D  # noqa: E402
from nnscratch.nn.layers import Dense, Dropout, Flatten, Layer, Reshape  # noqa: E402
from nnscratch.nn.model import Sequential, build_mlp  # noqa: E402
from nnscratch.nn.normalization import BatchNorm, LayerNorm  # noqa: E402
from nnscratch.serialization import SavedModel, load_model, save_model  # noqa: E402

TOLERANCE = 1e-5
FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot"]


def run_onnx(path: Path, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """onnxruntime's ``(probabilities, logits)`` for rows ``X``."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probabilities, logits = session.run(["probabilities", "logits"],
                                        {"pixels": np.asarray(X, dtype=np.float32)})
    return probabilities, logits


def assert_same_answers(path: Path, saved: SavedModel, X: np.ndarray) -> None:
    """onnxruntime agrees with nnscratch: probabilities to 1e-5, every row's class exactly."""
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    probabilities, logits = run_onnx(path, X)
    ours = saved.predict_proba(X)
    assert probabilities.shape == ours.shape and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities, ours, rtol=0, atol=TOLERANCE)
    np.testing.assert_array_equal(probabilities.argmax(axis=1), saved.predict_class_indices(X))
    np.testing.assert_allclose(logits, saved.model.forward(X, training=False), rtol=1e-4,
                               atol=1e-4)


def pixels(rng: np.random.Generator, n: int, n_features: int, dtype: Any) -> np.ndarray:
    """Rows like scaled pictures: values in [0, 1], many of them 0."""
    X = rng.random((n, n_features)) * (rng.random((n, n_features)) < 0.4)
    return X.astype(dtype)


def with_random_biases(model: Sequential, rng: np.random.Generator) -> Sequential:
    """Non-zero biases, so that a bias exported in the wrong place shows."""
    for layer in model.layers:
        if isinstance(layer, Dense):
            layer.b.value[...] = rng.normal(scale=0.5, size=layer.b.value.shape)
    return model


def metadata(path: Path) -> dict[str, str]:
    return {prop.key: prop.value for prop in onnx.load(str(path)).metadata_props}


# ---------------------------------------------------------------------------------------------
# The graph's interface


def test_the_graph_has_the_documented_interface(tmp_path, rng):
    path = tmp_path / "model.onnx"
    saved = SavedModel(build_mlp(12, [8], 3, rng=0), classes=["a", "b", "c"])
    result = export.to_onnx(saved, path)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert result.path == str(path) and result.converted_from is None
    assert model.ir_version == export.IR_VERSION == 8
    assert [(o.domain, o.version) for o in model.opset_import] == [("", export.OPSET)]
    assert export.OPSET == 17
    (given,) = model.graph.input
    assert given.name == "pixels"
    assert given.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    batch, width = given.type.tensor_type.shape.dim
    assert batch.dim_param == "N" and width.dim_value == 12  # a symbolic batch
    assert [o.name for o in model.graph.output] == ["probabilities", "logits"]
    assert all(t.data_type == onnx.TensorProto.FLOAT for t in model.graph.initializer)
    assert model.producer_name == "nnscratch"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_classes", [2, 4])
def test_every_layer_type_gives_our_probabilities(tmp_path, rng, dtype, n_classes):
    """One network through every exportable layer, including GELU's tanh formula."""
    layers: list[Layer] = [Dense(6, 8, rng=1, dtype=dtype)]
    for activation in [activations.ReLU(), activations.LeakyReLU(0.1), activations.Sigmoid(),
                       activations.Tanh(), activations.ELU(0.7), activations.GELU(),
                       activations.Identity(), Dropout(0.3), activations.Softmax()]:
        layers += [activation, Dense(8, 8, rng=len(layers), dtype=dtype)]
    layers.append(Dense(8, 1 if n_classes == 2 else n_classes, rng=99, dtype=dtype))
    model = with_random_biases(Sequential(layers), rng)
    saved = SavedModel(model, classes=list(range(n_classes)))
    result = export.to_onnx(saved, tmp_path / "model.onnx")
    assert result.converted_from == (None if dtype == np.float32 else "float64")
    # Inputs of both signs and beyond [0, 1], so that every activation's two sides are used.
    X = (rng.normal(size=(200, 6)) * 3).astype(dtype)
    assert_same_answers(tmp_path / "model.onnx", saved, X)
    exported = {type(layer) for layer in layers} | {type(layer) for layer in cnn_layers(dtype)}
    assert exported == set(export.EXPORTERS)  # this test and the CNN's cover every exporter


def cnn_layers(dtype: Any, n_outputs: int = 10) -> list[Layer]:
    """Every image layer: odd sizes, stride 2 and padding 2, non-square kernels, both norms."""
    return [
        Reshape((1, 28, 28)),
        Conv2D(1, 6, 3, stride=2, padding=2, rng=1, dtype=dtype),   # -> 6 x 15 x 15
        BatchNorm(6, dtype=dtype), activations.ReLU(),
        MaxPool2D(2),                                                # -> 6 x 7 x 7
        Conv2D(6, 8, (3, 2), padding=1, rng=2, dtype=dtype),         # -> 8 x 7 x 8
        LayerNorm((8, 7, 8), dtype=dtype), activations.GELU(),
        AvgPool2D(2, stride=1),                                      # -> 8 x 6 x 7
        Conv2D(8, 4, 1, rng=3, dtype=dtype),                         # -> 4 x 6 x 7
        Flatten(), Dense(168, 12, rng=4, dtype=dtype), BatchNorm(12, dtype=dtype),
        activations.Tanh(), Reshape((3, 2, 2)), GlobalAvgPool2D(),   # -> 3
        Dense(3, n_outputs, rng=5, dtype=dtype),
    ]


def trained_statistics(model: Sequential, rng: np.random.Generator, X: np.ndarray) -> None:
    """Running statistics away from (0, 1) and random affine parameters in every norm, so that
    an export that used batch statistics, or dropped a parameter, would show."""
    for _ in range(3):
        model.forward(X * rng.uniform(0.5, 2.0) + rng.normal(), training=True)
    for layer in model.layers:
        if isinstance(layer, (BatchNorm, LayerNorm)):
            layer.gamma.value[...] = rng.uniform(0.5, 1.5, size=layer.gamma.value.shape)
            layer.beta.value[...] = rng.normal(scale=0.3, size=layer.beta.value.shape)
        if isinstance(layer, Conv2D):
            layer.b.value[...] = rng.normal(scale=0.3, size=layer.b.value.shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_classes", [2, 10])
def test_a_cnn_with_batch_norm_gives_our_probabilities(tmp_path, rng, dtype, n_classes):
    """Written to a model file and loaded back first, as ``nnscratch export`` reads it."""
    model = with_random_biases(Sequential(cnn_layers(dtype, 1 if n_classes == 2 else n_classes)),
                               rng)
    X = pixels(rng, 64, 784, dtype)
    trained_statistics(model, rng, X)
    save_model(tmp_path / "cnn.npz", model, list(range(n_classes)))
    saved = load_model(tmp_path / "cnn.npz")
    running = [layer.running_var for layer in saved.model.layers if isinstance(layer, BatchNorm)]
    assert running and not np.allclose(running[0], 1)  # the statistics came through the file
    export.to_onnx(saved, tmp_path / "cnn.onnx")
    assert_same_answers(tmp_path / "cnn.onnx", saved, pixels(rng, 50, 784, dtype))
    assert_same_answers(tmp_path / "cnn.onnx", saved, pixels(rng, 1, 784, dtype))  # batch of 1


def test_a_cnn_that_takes_any_image_size_is_refused(tmp_path):
    saved = SavedModel(Sequential([Conv2D(1, 2, 3, rng=0), GlobalAvgPool2D(), Dense(2, 1, rng=0)]),
                       classes=[0, 1])
    with pytest.raises(export.ExportError, match=r"takes images of any size .* begin the model "
                                                 r"with Reshape"):
        export.to_onnx(saved, tmp_path / "any.onnx")
    assert not (tmp_path / "any.onnx").exists()


@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS))
def test_an_mlp_with_each_activation(tmp_path, rng, name):
    model = with_random_biases(build_mlp(30, [16, 16], 10, activation=name, rng=0), rng)
    saved = SavedModel(model, classes=list(range(10)))
    export.to_onnx(saved, tmp_path / "model.onnx")
    assert_same_answers(tmp_path / "model.onnx", saved, pixels(rng, 300, 30, np.float32))


def test_gelu_is_our_tanh_formula_not_the_exact_one(tmp_path):
    """The tanh form and erf's differ by up to 5e-4 (at |x| = 2.7): ONNX must give ours."""
    import math

    def ones(shape: tuple[int, ...], rng: Any) -> np.ndarray:
        return np.ones(shape)

    saved = SavedModel(Sequential([Dense(1, 1, init=ones, dtype=np.float64), activations.GELU(),
                                   Dense(1, 1, init=ones, dtype=np.float64)]), classes=[0, 1])
    export.to_onnx(saved, tmp_path / "gelu.onnx")
    x = np.array([[-3.0], [-2.7], [-1.0], [0.5], [2.7]])
    _, logits = run_onnx(tmp_path / "gelu.onnx", x)
    ours = activations.GELU().forward(x, training=False)
    exact = np.array([[v * 0.5 * (1 + math.erf(v / math.sqrt(2)))] for v in x[:, 0]])
    np.testing.assert_allclose(logits, ours, rtol=0, atol=1e-6)
    assert np.abs(exact - ours).max() > 100 * 1e-6  # so the test tells the two apart


def test_a_batch_of_one(tmp_path, rng):
    saved = SavedModel(build_mlp(20, [8], 1, rng=0), classes=["no", "yes"])
    export.to_onnx(saved, tmp_path / "model.onnx")
    X = pixels(rng, 1, 20, np.float32)
    probabilities, logits = run_onnx(tmp_path / "model.onnx", X)
    assert probabilities.shape == (1, 2) and logits.shape == (1, 1)
    assert_same_answers(tmp_path / "model.onnx", saved, X)


def test_a_one_logit_model_gives_two_columns(tmp_path, rng):
    saved = SavedModel(with_random_biases(build_mlp(5, [4], 1, rng=0), rng), classes=[3, 8])
    export.to_onnx(saved, tmp_path / "model.onnx")
    probabilities, logits = run_onnx(tmp_path / "model.onnx", pixels(rng, 50, 5, np.float32))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(probabilities[:, 1], 1 / (1 + np.exp(-logits[:, 0])), atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Refusals and the file


class Doubler(Layer):
    """A layer nnscratch does not know: y = 2x."""

    def forward(self, x: np.ndarray, *, training: bool = True) -> np.ndarray:
        return 2 * x


class BentReLU(activations.ReLU):
    """A subclass computes something else: its parent's exporter must not stand in for it."""


@pytest.mark.parametrize("odd", [Doubler, BentReLU])
def test_a_layer_without_an_exporter_is_refused_by_name_and_nothing_is_written(tmp_path, odd):
    model = Sequential([Dense(4, 3, rng=0), odd(), Dense(3, 3, rng=1)])
    path = tmp_path / "model.onnx"
    with pytest.raises(export.ExportError, match=rf"layer 1 is a {odd.__name__}, which has no "
                                                 r"ONNX export; .*Dense.*Nothing was written"):
        export.to_onnx(SavedModel(model, classes=[0, 1, 2]), path)
    assert list(tmp_path.iterdir()) == []


def test_to_onnx_needs_a_saved_model(tmp_path):
    with pytest.raises(TypeError, match=r"saved_model must be a SavedModel .*got Sequential"):
        export.to_onnx(build_mlp(4, [3], 3, rng=0), tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


class _HalfWriter:
    """A file whose write stores half the bytes, then is interrupted (Ctrl-C mid-export)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def write(self, data: Any) -> None:
        data = bytes(data)
        self.handle.write(data[: len(data) // 2])
        raise KeyboardInterrupt


def test_an_interrupted_export_leaves_no_partial_file(tmp_path, rng, monkeypatch):
    path = tmp_path / "model.onnx"
    first = SavedModel(build_mlp(6, [4], 3, rng=0), classes=[0, 1, 2])
    export.to_onnx(first, path)
    before = path.read_bytes()
    real_atomic_write = export.atomic_write

    @contextlib.contextmanager
    def interrupted(target: Any, mode: str = "wb") -> Iterator[_HalfWriter]:
        with real_atomic_write(target, mode) as handle:
            yield _HalfWriter(handle)

    monkeypatch.setattr(export, "atomic_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export.to_onnx(SavedModel(build_mlp(6, [9], 3, rng=1), classes=[0, 1, 2]), path)
    assert path.read_bytes() == before  # the previous file, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no temporary left
    with pytest.raises(KeyboardInterrupt):
        export.to_onnx(first, tmp_path / "new.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no half new file


def test_a_missing_folder_is_named(tmp_path):
    saved = SavedModel(build_mlp(6, [4], 3, rng=0), classes=[0, 1, 2])
    with pytest.raises(FileNotFoundError, match="nowhere"):
        export.to_onnx(saved, tmp_path / "nowhere" / "model.onnx")


# ---------------------------------------------------------------------------------------------
# The command, on run folders that nnscratch train wrote (synthetic data)


@pytest.fixture
def fake_data(tmp_path, monkeypatch) -> dict[str, Path]:
    """Synthetic MNIST and Fashion-MNIST files (60 train, 10 test), found through the usual
    variables and verified against their own SHA-256."""
    from _fake_mnist import fake_arrays, use_hashes_of, write_fake_mnist

    folders = {}
    for dataset, variable, seed in [("mnist", "NNSCRATCH_DATA", 1),
                                    ("fashion-mnist", "NNSCRATCH_DATA_FASHION", 2)]:
        arrays = fake_arrays(seed=seed)
        folders[dataset] = tmp_path / dataset
        write_fake_mnist(folders[dataset], arrays)
        use_hashes_of(monkeypatch, arrays, dataset)
        monkeypatch.setenv(variable, str(folders[dataset]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return folders


def _train(out: Path, *flags: str) -> SavedModel:
    assert main(["train", *flags, "--out", str(out), "--no-download", "--no-plots",
                 "--quiet"]) == 0
    return load_model(out / "model.npz")


def _export(model: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    assert main(["export", str(model), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    return captured.out, captured.err


@pytest.mark.system
def test_the_tutorials_sigmoid_net_exports_with_its_provenance(tmp_path, fake_data, rng, capsys):
    run = tmp_path / "run"
    saved = _train(run, "--iterations", "20")  # the tutorial recipe: float64, sigmoid, [196, 1]
    assert saved.model.dtype == np.float64
    out, err = _export(run, tmp_path / "tutorial.onnx", capsys)
    assert out.startswith(f"Wrote {tmp_path / 'tutorial.onnx'} (ONNX opset 17, IR version 8)")
    assert "input pixels float32 (N, 784), outputs probabilities (N, 2) and logits" in out
    assert err.strip() == (f"nnscratch: warning: {run / 'model.npz'} is a float64 model; ONNX "
                           "gets its weights in float32 (probabilities agree to about 1e-6).")
    X = pixels(rng, 400, 784, np.float64)
    assert_same_answers(tmp_path / "tutorial.onnx", saved, X)

    properties = metadata(tmp_path / "tutorial.onnx")
    provenance = json.loads((run / "provenance.json").read_text())
    assert json.loads(properties["classes"]) == [1, 2]
    assert properties["output"] == "sigmoid" and properties["recipe"] == "tutorial"
    assert json.loads(properties["config"]) == saved.metadata["config"]
    assert properties["dataset"] == "mnist" and properties["model_dtype"] == "float64"
    assert properties["training_data_sha256"] == saved.metadata["training_data_sha256"]
    assert json.loads(properties["data_files_sha256"]) == {
        role: entry["sha256"] for role, entry in provenance["data_files"].items()}
    assert len(json.loads(properties["data_files_sha256"])) == 4
    assert json.loads(properties["preprocessing"])["scale"] == "pixel / 255"
    from nnscratch import __version__

    assert properties["nnscratch_version"] == __version__
    session = ort.InferenceSession(str(tmp_path / "tutorial.onnx"),
                                   providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().custom_metadata_map == properties  # what a user reads


@pytest.mark.system
def test_a_fashion_model_names_its_classes(tmp_path, fake_data, rng, capsys):
    run = tmp_path / "run"
    saved = _train(run, "--dataset", "fashion-mnist", "--recipe", "mnist10", "--epochs", "1",
                   "--layers", "16")
    out, err = _export(run / "model.npz", tmp_path / "fashion.onnx", capsys)  # a model file
    assert err == "" and "probabilities (N, 10)" in out  # float32: nothing to say
    assert json.loads(metadata(tmp_path / "fashion.onnx")["classes"]) == FASHION_NAMES
    assert "data_files_sha256" in metadata(tmp_path / "fashion.onnx")  # provenance beside it
    X = pixels(rng, 300, 784, np.float32)
    assert_same_answers(tmp_path / "fashion.onnx", saved, X)
    labels = np.asarray(FASHION_NAMES)[run_onnx(tmp_path / "fashion.onnx", X)[0].argmax(axis=1)]
    np.testing.assert_array_equal(labels, saved.predict(X))


def test_export_json_and_a_model_file_alone(tmp_path, rng, capsys):
    from nnscratch.serialization import save_model

    model = tmp_path / "alone.npz"
    save_model(model, build_mlp(784, [8], 10, rng=0), list(range(10)))
    assert main(["export", str(model), "--out", str(tmp_path / "m.onnx"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["opset"] == 17 and report["ir_version"] == 8
    assert report["converted_from"] is None
    assert report["inputs"] == {"pixels": ["N", 784]}
    assert report["outputs"] == {"probabilities": ["N", 10], "logits": ["N", 10]}
    assert "data_files_sha256" not in report["metadata"]  # no run folder, no data files
    assert json.loads(report["metadata"]["classes"]) == list(range(10))


@pytest.mark.parametrize("same_data", [True, False])
def test_the_data_files_come_from_the_models_own_provenance(tmp_path, capsys, same_data):
    from nnscratch.serialization import save_model

    save_model(tmp_path / "model.npz", build_mlp(4, [3], 3, rng=0), [0, 1, 2],
               metadata={"training_data_sha256": "a" * 64})
    (tmp_path / "provenance.json").write_text(json.dumps({
        "training_data_sha256": "a" * 64 if same_data else "b" * 64,
        "data_files": {"train_images": {"path": "x", "sha256": "c" * 64}}}))
    assert main(["export", str(tmp_path / "model.npz"), "--out", str(tmp_path / "m.onnx"),
                 "--quiet"]) == 0
    properties = metadata(tmp_path / "m.onnx")
    assert properties["training_data_sha256"] == "a" * 64
    if same_data:
        assert json.loads(properties["data_files_sha256"]) == {"train_images": "c" * 64}
    else:  # another model's provenance: not this one's data files
        assert "data_files_sha256" not in properties


def test_export_errors_are_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "x.onnx")]) \
        == 1
    err = capsys.readouterr().err
    assert err.startswith("nnscratch: error: ") and "does not exist" in err
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(tmp_path)])  # --out is required
    assert exit_info.value.code == 2
    assert "--out" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


# ---------------------------------------------------------------------------------------------
# The real MNIST


@pytest.mark.slow
def test_an_exported_mnist_model_classifies_all_10000_test_pictures_as_nnscratch_does(
        tmp_path, mnist_dir, capsys):
    from nnscratch.data import load_dataset

    run = tmp_path / "run"
    assert main(["train", "--recipe", "mnist10", "--epochs", "1", "--layers", "128",
                 "--data-dir", str(mnist_dir), "--out", str(run), "--no-download",
                 "--no-plots", "--quiet"]) == 0
    saved = load_model(run / "model.npz")
    _export(run, tmp_path / "mnist.onnx", capsys)
    data = load_dataset("mnist", list(range(10)), data_dir=mnist_dir, dtype=np.float32,
                        progress=False)
    assert data.X_test.shape == (10_000, 784)
    probabilities, _ = run_onnx(tmp_path / "mnist.onnx", data.X_test)
    ours = saved.predict_class_indices(data.X_test)
    np.testing.assert_array_equal(probabilities.argmax(axis=1), ours)  # all 10,000
    np.testing.assert_allclose(probabilities, saved.predict_proba(data.X_test), rtol=0,
                               atol=TOLERANCE)
    assert np.mean(ours == data.y_test) > 0.9  # a model that learnt, not a constant answer


# ---------------------------------------------------------------------------------------------
# docs/export.md


def test_the_docs_example_classifies_a_png_as_predict_does(tmp_path, monkeypatch, capsys):
    """The onnxruntime example of ``docs/export.md`` prints what ``nnscratch predict`` prints."""
    import re

    from PIL import Image

    from nnscratch.serialization import save_model

    text = (Path(__file__).resolve().parents[1] / "docs" / "export.md").read_text()
    (example,) = [block for block in re.findall(r"```python\n(.*?)```", text, re.S)
                  if "InferenceSession" in block]
    assert len([line for line in example.splitlines() if line.strip()]) <= 10
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(5)
    model = with_random_biases(build_mlp(784, [32], 10, rng=3), rng)
    save_model(tmp_path / "model.npz", model, list(range(10)),
               metadata={"preprocessing": {"flatten": [28, 28], "scale": "pixel / 255",
                                           "dtype": "float32"}})
    assert main(["export", "model.npz", "--out", "digits.onnx", "--quiet"]) == 0
    picture = np.full((120, 90), 235, dtype=np.uint8)  # a dark 7 on light paper, off-centre
    picture[20:28, 15:70] = 30
    for row in range(28, 100):
        picture[row, 62 - (row - 28) // 3: 70 - (row - 28) // 3] = 30
    Image.fromarray(picture).save(tmp_path / "seven.png")
    capsys.readouterr()
    exec(compile(example, "docs/export.md", "exec"), {"__name__": "__docs__"})
    printed = capsys.readouterr().out.split()
    assert main(["predict", "model.npz", "seven.png", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert printed == [str(row["label"]), f"{max(row['probabilities'].values()):.3f}"]
