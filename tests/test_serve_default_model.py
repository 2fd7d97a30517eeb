"""Tests for :mod:`nnscratch.serve.default_model`: which model is served when none is named.

Training the real ``mnist10`` recipe takes a minute, so the logic is tested with a stand-in
trainer, and :func:`train_default_model` itself with a tiny fake MNIST.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from _fake_mnist import fake_arrays, write_fake_mnist
from nnscratch.nn.model import build_mlp
from nnscratch.serialization import load_model, save_model
from nnscratch.serve.default_model import (
    default_model_dir,
    newest_ten_digit_run,
    resolve_model,
    train_default_model,
)


def make_run(folder: Path, classes: list, age_seconds: float) -> Path:
    """A run folder whose model.npz was written `age_seconds` ago."""
    folder.mkdir(parents=True)
    out = 1 if len(classes) == 2 else len(classes)
    save_model(folder / "model.npz", build_mlp(784, [4], out, rng=0), classes)
    when = 1_700_000_000 - age_seconds
    os.utime(folder / "model.npz", (when, when))
    return folder


class FakeTrainer:
    """Stands in for train_default_model: writes a small 10-class model, counts its calls."""

    def __init__(self) -> None:
        self.calls: list[Path] = []

    def __call__(self, folder: Path) -> None:
        self.calls.append(folder)
        folder.mkdir(parents=True)
        save_model(folder / "model.npz", build_mlp(784, [4], 10, rng=0), list(range(10)))


def test_the_newest_ten_digit_run_is_chosen(tmp_path):
    runs = tmp_path / "runs"
    make_run(runs / "old-ten", list(range(10)), age_seconds=300)
    wanted = make_run(runs / "new-ten", list(range(10)), age_seconds=200)
    make_run(runs / "newest-binary", [1, 2], age_seconds=100)
    make_run(runs / "newest-three", [0, 1, 2], age_seconds=90)
    (runs / "broken").mkdir()
    (runs / "broken" / "model.npz").write_bytes(b"PK\x03\x04 not really")
    (runs / "no-model").mkdir()
    assert newest_ten_digit_run(runs) == wanted
    assert newest_ten_digit_run(tmp_path / "nowhere") is None


def test_a_given_model_is_used_as_it_is(tmp_path):
    trainer = FakeTrainer()
    assert resolve_model("some/model.npz", runs=tmp_path, train=trainer) == Path(
        "some/model.npz")
    assert trainer.calls == []


def test_a_ten_digit_run_comes_before_the_cache(tmp_path):
    trainer = FakeTrainer()
    run = make_run(tmp_path / "runs" / "ten", list(range(10)), age_seconds=0)
    trainer(tmp_path / "cache")
    lines: list[str] = []
    assert resolve_model(None, runs=tmp_path / "runs", cache=tmp_path / "cache", train=trainer,
                         say=lines.append) == run
    assert len(trainer.calls) == 1  # only the call above
    assert "serving the newest 10-digit run" in lines[0]


def test_the_default_model_is_trained_once_then_reused(tmp_path):
    trainer = FakeTrainer()
    cache = tmp_path / "cache" / "models" / "mnist10"
    make_run(tmp_path / "runs" / "binary", [1, 2], age_seconds=0)  # not a candidate
    lines: list[str] = []
    first = resolve_model(None, runs=tmp_path / "runs", cache=cache, train=trainer,
                          say=lines.append)
    assert first == cache and trainer.calls == [cache]
    assert "training the default model once (mnist10 recipe" in lines[-2]
    assert f"the default model is ready in {cache}" in lines[-1]
    again = resolve_model(None, runs=tmp_path / "runs", cache=cache, train=trainer,
                          say=lines.append)
    assert again == cache and trainer.calls == [cache]
    assert "serving the default model in" in lines[-1]


def test_the_cache_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_model_dir() == tmp_path / "xdg" / "nnscratch" / "models" / "mnist10"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # not absolute: ignored, as XDG says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_model_dir() == tmp_path / "home" / ".cache" / "nnscratch" / "models" / "mnist10"


@pytest.fixture
def fake_mnist(tmp_path) -> Path:
    folder = tmp_path / "mnist"
    write_fake_mnist(folder, fake_arrays(n_train=60, n_test=20))
    return folder


def test_training_writes_a_complete_run_folder_atomically(tmp_path, fake_mnist, capsys):
    folder = tmp_path / "cache" / "models" / "mnist10"
    train_default_model(folder, data_dir=fake_mnist, verify=False)
    saved = load_model(folder / "model.npz")
    assert saved.classes.tolist() == list(range(10))
    assert [layer.out_features for layer in saved.model.layers if hasattr(layer, "W")] == [
        512, 256, 10]  # the mnist10 recipe
    assert (folder / "metrics.json").is_file() and (folder / "config.toml").is_file()
    assert sorted(p.name for p in folder.parent.iterdir()) == ["mnist10"]  # no scratch left
    out, err = capsys.readouterr()
    assert out == ""  # the report and the progress bars go to stderr: stdout is the server's
    assert "default model: test accuracy" in err


def test_the_default_model_is_the_one_nnscratch_train_makes(tmp_path, fake_mnist):
    """Trained through the library, the same recipe, settings and weights as the command."""
    from nnscratch.cli import main

    train_default_model(tmp_path / "served", data_dir=fake_mnist, verify=False, quiet=True)
    assert main(["train", "--recipe", "mnist10", "--data-dir", str(fake_mnist), "--no-verify",
                 "--no-plots", "--quiet", "--out", str(tmp_path / "trained")]) == 0
    served, trained = (load_model(tmp_path / name / "model.npz") for name in ("served", "trained"))
    assert (tmp_path / "served" / "config.toml").read_text().replace("served", "trained") == (
        tmp_path / "trained" / "config.toml").read_text()
    for a, b in zip(served.model.parameters(), trained.model.parameters(), strict=True):
        np.testing.assert_array_equal(a.value, b.value)  # one process, one code path


def _interrupted_training(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("where", ["training", "writing"])
def test_an_interrupted_training_leaves_nothing(tmp_path, fake_mnist, monkeypatch, where):
    from nnscratch.runs import folder as runs_folder

    if where == "training":
        monkeypatch.setattr("nnscratch.runs.recipes.train_recipe", _interrupted_training)
    else:
        monkeypatch.setattr(runs_folder, "_write_history", _interrupted_training)
    folder = tmp_path / "models" / "mnist10"
    with pytest.raises(KeyboardInterrupt):
        train_default_model(folder, data_dir=fake_mnist, verify=False, quiet=True)
    assert list(folder.parent.iterdir()) == []


def test_a_failed_training_says_what_to_do(tmp_path, capsys):
    folder = tmp_path / "models" / "mnist10"
    with pytest.raises(RuntimeError, match=r"could not be trained: .*Give a MODEL, or train one "
                                           r"with: nnscratch train"):
        train_default_model(folder, data_dir=tmp_path / "no-mnist-here")
    assert list(folder.parent.iterdir()) == []


@pytest.mark.parametrize("damage", ["weights", "inputs", "truncated"])
def test_a_newest_run_that_cannot_be_served_is_passed_over_for_an_older_one(tmp_path, damage):
    """Its metadata lists digits 0..9, but the file does not load whole (a checksum that does
    not match, a truncated archive) or reads other pixels: serving it would fail."""
    from _tamper import rewrite

    older = make_run(tmp_path / "runs" / "older", list(range(10)), age_seconds=100)
    newest = make_run(tmp_path / "runs" / "newest", list(range(10)), age_seconds=1)
    path = newest / "model.npz"
    when = path.stat().st_mtime
    if damage == "weights":
        rewrite(path, lambda arrays, document: arrays.update(
            {key: value + 1 for key, value in arrays.items() if value.dtype.kind == "f"}))
    elif damage == "inputs":
        save_model(path, build_mlp(100, [4], 10, rng=0), list(range(10)))
    else:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] + data[-2000:])  # the directory survives
    os.utime(path, (when, when))
    assert newest_ten_digit_run(tmp_path / "runs") == older
