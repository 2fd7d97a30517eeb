"""Tests for nnscratch.runs: a run folder is written whole, read back, and records its origins.

The runs here train on small synthetic "digits" in a few seconds; ``tests/test_cli.py`` covers
run folders trained on the real MNIST.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from nnscratch import __version__, runs
from nnscratch.data import DataFile, ImageDataset, get_source
from nnscratch.runs.recipes import RECIPES, train_recipe


def _dataset(tmp_path: Path, rng: np.random.Generator, digits: tuple[int, ...],
             dataset: str = "mnist") -> ImageDataset:
    """784-pixel rows with an easy signal, and four stand-in data files with their SHA-256."""
    n_classes = len(digits)
    y_train, y_test = np.arange(90) % n_classes, np.arange(30) % n_classes
    X_train = rng.random((90, 784)) * 0.3
    X_test = rng.random((30, 784)) * 0.3
    X_train[np.arange(90), y_train] += 1.0
    X_test[np.arange(30), y_test] += 1.0
    files = {}
    for key in ("train_images", "train_labels", "test_images", "test_labels"):
        path = tmp_path / f"{key}.gz"
        path.write_bytes(key.encode())
        files[key] = DataFile(str(path), hashlib.sha256(key.encode()).hexdigest())
    names = tuple(get_source(dataset).class_names[d] for d in digits)
    return ImageDataset(X_train, y_train, X_test, y_test, digits, names, dataset, files)


def _run(tmp_path: Path, rng: np.random.Generator, name: str) -> tuple[runs.Run, Path]:
    recipe = RECIPES[name]
    digits = (1, 2) if recipe.kind == "tutorial" else (0, 1, 2)
    data = _dataset(tmp_path, rng, digits, recipe.settings["dataset"])
    settings = {"recipe": name, **recipe.settings, "digits": list(digits), "dtype": "float64"}
    settings.update({"layers": [8, 1], "iterations": 20, "log_every": 5}
                    if recipe.kind == "tutorial" else {"layers": [8], "epochs": 2})
    predictor = train_recipe(recipe, settings, data.X_train, data.y_train)
    run = runs.record_run(recipe, settings, predictor, data, seconds=1.5)
    return run, tmp_path / "run"


@pytest.mark.system
@pytest.mark.parametrize("name", ["tutorial", "mnist10"])
def test_write_run_writes_every_file_and_read_run_reads_them_back(tmp_path, rng, name):
    run, out = _run(tmp_path, rng, name)
    written = runs.write_run(out, run)
    assert {p.name for p in written} >= set(runs.RUN_FILES) | {"confusion_matrix.png",
                                                               "first_layer_weights.png"}
    assert all(p.is_file() for p in written)
    back = runs.read_run(out)
    assert back.settings == run.settings
    assert back.metrics == run.metrics
    assert back.provenance == json.loads((out / "provenance.json").read_text())
    assert back.recipe.name == name
    assert len(back.history_rows) == len(run.history_rows)
    np.testing.assert_array_equal(back.saved.classes, run.classes)
    for mine, theirs in zip(back.saved.model.parameters(), run.model.parameters(), strict=True):
        np.testing.assert_array_equal(mine.value, theirs.value)
    assert back.cost_history == [(int(i), c) for i, c in run.figures.cost_history]


def test_metrics_count_what_the_model_gets_right(tmp_path, rng):
    run, _ = _run(tmp_path, rng, "mnist10")
    metrics = run.metrics
    assert metrics["train_size"] == 90 and metrics["test_size"] == 30
    assert metrics["test_accuracy"] == metrics["test_correct"] / 30
    assert np.sum(metrics["confusion_matrix"]) == 30
    assert np.trace(metrics["confusion_matrix"]) == metrics["test_correct"]
    assert metrics["seconds"] == 1.5


def test_provenance_records_the_data_files_and_the_software(tmp_path, rng, monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    run, out = _run(tmp_path, rng, "tutorial")
    runs.write_run(out, run, plots=False)
    provenance = json.loads((out / "provenance.json").read_text())
    for key, entry in provenance["data_files"].items():
        assert Path(entry["path"]).name == f"{key}.gz"
        assert entry["sha256"] == hashlib.sha256(key.encode()).hexdigest()
    assert provenance["training_data_sha256"] == run.model_metadata["training_data_sha256"]
    assert provenance["versions"] == {"nnscratch": __version__, "numpy": np.__version__}
    assert provenance["python"].endswith(".".join(map(str, sys.version_info[:3])))
    assert provenance["environment"]["OPENBLAS_CORETYPE"] == "Haswell"
    assert provenance["blas"], "NumPy's BLAS is loaded, so it is listed"
    for library in provenance["blas"]:
        assert set(library) == {"library", "version", "kernel", "threads", "threading_layer",
                                "path"}
        assert isinstance(library["threads"], int) and library["threads"] >= 1


def test_history_csv_has_one_row_per_logged_iteration_or_epoch(tmp_path, rng):
    run, out = _run(tmp_path, rng, "tutorial")
    runs.write_run(out, run, plots=False)
    with open(out / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["iteration"]) for row in rows] == [0, 5, 10, 15, 19]
    assert not list(out.glob("*.png"))  # plots=False draws nothing


def test_new_run_dir_never_reuses_a_name(tmp_path):
    from nnscratch.runs._transaction import reserve_new_folder

    assert runs.new_run_dir("tutorial", tmp_path).name.endswith("-tutorial")
    base = tmp_path / "20261129-120000-tutorial"
    with reserve_new_folder(base) as first:
        # Reserved (locked) but not yet written: a second reservation takes another name.
        with reserve_new_folder(base) as second:
            assert (first.folder, second.folder) == (base, tmp_path / f"{base.name}-2")
    base.mkdir()
    (base / "metrics.json").write_text("{}")  # written: taken
    with reserve_new_folder(base) as third:
        assert third.folder == tmp_path / f"{base.name}-2"


def test_read_run_names_what_is_missing(tmp_path, rng):
    with pytest.raises(runs.RunFolderError, match="is not a folder"):
        runs.read_run(tmp_path / "nowhere")
    run, out = _run(tmp_path, rng, "tutorial")
    runs.write_run(out, run, plots=False)
    (out / "history.csv").unlink()
    with pytest.raises(runs.RunFolderError, match=r"lacks history\.csv"):
        runs.read_run(out)


def test_read_run_accepts_a_folder_written_before_provenance(tmp_path, rng):
    run, out = _run(tmp_path, rng, "tutorial")
    runs.write_run(out, run, plots=False)
    (out / "provenance.json").unlink()
    assert runs.read_run(out).provenance == {}


def test_read_config_errors(tmp_path):
    with pytest.raises(runs.RunFolderError, match=r"config file .*nowhere\.toml does not exist"):
        runs.read_config(tmp_path / "nowhere.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\n")
    with pytest.raises(runs.RunFolderError, match="is not valid TOML"):
        runs.read_config(bad)
    good = tmp_path / "good.toml"
    runs.write_config(good, {"recipe": "mnist10", "epochs": 3})
    assert runs.read_config(good) == {"recipe": "mnist10", "epochs": 3}


@pytest.mark.system
def test_a_fashion_mnist_run_names_its_data_set_classes_and_augmentation(tmp_path, rng):
    run, out = _run(tmp_path, rng, "fashion10")
    assert run.settings["augment"] == RECIPES["fashion10"].settings["augment"]
    assert run.metrics["dataset"] == "fashion-mnist"
    assert run.metrics["class_names"] == ["T-shirt/top", "Trouser", "Pullover"]
    assert run.classes.tolist() == ["T-shirt/top", "Trouser", "Pullover"]
    assert run.model_metadata["dataset"] == "fashion-mnist"
    assert run.model_metadata["preprocessing"]["source"].startswith("Fashion-MNIST")
    written = runs.write_run(out, run)
    assert out / "augmentation.png" in written and (out / "augmentation.png").is_file()
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["dataset"] == "fashion-mnist"
    assert set(provenance["data_files"]) == {"train_images", "train_labels", "test_images",
                                             "test_labels"}
    back = runs.read_run(out)
    assert back.settings["dataset"] == "fashion-mnist"
    assert back.settings["augment"] == run.settings["augment"]
    assert back.saved.metadata["dataset"] == "fashion-mnist"
    assert back.saved.classes.tolist() == ["T-shirt/top", "Trouser", "Pullover"]


@pytest.mark.system
def test_an_mnist_run_without_augmentation_draws_no_augmentation_picture(tmp_path, rng):
    run, out = _run(tmp_path, rng, "mnist10")
    assert run.metrics["dataset"] == "mnist" and run.metrics["class_names"] == ["0", "1", "2"]
    assert run.classes.tolist() == [0, 1, 2]
    assert "augmentation.png" not in {p.name for p in runs.write_run(out, run)}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.system
def test_plot_refuses_a_model_from_another_run_before_writing_anything(tmp_path, capsys):
    from nnscratch.cli import main

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    run, out = _run(tmp_path / "a", np.random.default_rng(1), "mnist10")
    runs.write_run(out, run)
    other, other_out = _run(tmp_path / "b", np.random.default_rng(2), "mnist10")
    runs.write_run(other_out, other)
    (out / "model.npz").write_bytes((other_out / "model.npz").read_bytes())
    before = _snapshot(out)
    assert main(["plot", str(out), "--no-data"]) == 1  # before: redrew cost.png, history.png
    err = capsys.readouterr().err
    assert f"{out / 'model.npz'} does not belong to the run folder {out}" in err
    assert "nothing was written" in err
    assert _snapshot(out) == before


@pytest.mark.system
def test_plot_redraws_as_one_transaction(tmp_path, monkeypatch, capsys):
    from nnscratch import plotting
    from nnscratch.cli import main

    run, out = _run(tmp_path, np.random.default_rng(3), "mnist10")
    runs.write_run(out, run)
    (out / "notes.txt").write_text("mine")  # a user's file stays
    before = _snapshot(out)

    def interrupted(*args, **kwargs):  # after history.png and cost.png are drawn
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(plotting, "plot_confusion_matrix", interrupted)
        assert main(["plot", str(out), "--no-data"]) == 130
    assert _snapshot(out) == before  # not one figure replaced
    assert sorted(p.name for p in out.parent.iterdir()) == ["run", "test_images.gz",
                                                            "test_labels.gz", "train_images.gz",
                                                            "train_labels.gz"]
    assert main(["plot", str(out), "--no-data", "--json"]) == 0
    plots = {Path(p).name for p in json.loads(capsys.readouterr().out)["plots"]}
    after = _snapshot(out)
    assert set(after) == set(before) and plots <= set(after)
    assert all(after[name] == before[name] for name in after if name not in plots)
