"""Tests for the ``nnscratch`` command line.

The commands run end to end as a user runs them, ``python -m nnscratch ...`` in a subprocess;
variations and error paths call :func:`nnscratch.cli.main` in-process, which is the same code
without the start-up cost. Tests marked ``slow`` train on the real MNIST (``NNSCRATCH_DATA``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from _numerics import assert_close
from _tamper import rewrite, snapshot
from nnscratch.cli import build_parser, main, resolve_settings
from nnscratch.nn.model import build_mlp
from nnscratch.runs.settings_check import SettingError
from nnscratch.serialization import load_model, save_model

COMMANDS = ["train", "evaluate", "predict", "plot", "info", "gradcheck", "serve", "tune",
            "export"]
PREPROCESSING = {"flatten": [28, 28], "scale": "pixel / 255", "dtype": "float32"}


#: One BLAS thread: these runs are small, and on a busy two-core machine a second thread spends
#: more time waiting for a core than it saves (tenfold, measured). Results are as exact.
ONE_THREAD = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                     "MKL_NUM_THREADS")}


def run_cli(*args: str | Path, cwd: Path | None = None, timeout: float = 600,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m nnscratch ARGS`` in a subprocess, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "nnscratch", *map(str, args)], capture_output=True, text=True,
        cwd=cwd, timeout=timeout, check=False, env={**os.environ, **ONE_THREAD, **(env or {})},
    )


#: Two processes each time their products' layouts afresh (nnscratch.nn._kernels.matmul) and
#: may choose differently where the layouts nearly tie: results then differ by rounding. A
#: repeat is bit for bit when the layout is fixed, as docs/cli.md says.
FIXED_LAYOUT = {"NNSCRATCH_MATMUL_LAYOUT": "direct"}


def one_blas_thread() -> contextlib.AbstractContextManager:
    """Limit BLAS to one thread in this process, when threadpoolctl is there to do it."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - only slower
        return contextlib.nullcontext()
    return threadpool_limits(1)


def assert_one_line_error(stderr: str, message: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("nnscratch: error: ") and message in lines[0], stderr
    assert "Traceback" not in stderr


def assert_usage_error(stderr: str, message: str) -> None:
    """``nnscratch COMMAND: error: ...`` naming `message` (after argparse's usage, if any)."""
    lines = stderr.strip().splitlines()
    assert re.match(r"nnscratch \w+: error: ", lines[-1]) and message in lines[-1], stderr
    assert "Traceback" not in stderr and not any("error" in line for line in lines[:-1])


@pytest.fixture
def digit_model(tmp_path) -> Path:
    """An untrained 784-16-10 model on all ten digits, saved as train saves one."""
    path = tmp_path / "model.npz"
    model = build_mlp(784, [16], 10, rng=0)
    save_model(path, model, list(range(10)), metadata={"preprocessing": PREPROCESSING})
    return path


@pytest.fixture
def inputs(tmp_path, rng) -> dict[str, Path]:
    """A picture, a folder with two pictures, and a .npy file of three MNIST-style images."""
    digit = np.zeros((40, 30), dtype=np.uint8)
    digit[5:35, 12:18] = 255
    Image.fromarray(255 - digit).save(tmp_path / "one.png")
    folder = tmp_path / "scans"
    folder.mkdir()
    Image.fromarray(digit).save(folder / "a.png")
    Image.fromarray(digit).convert("RGB").save(folder / "b.jpg")
    np.save(tmp_path / "batch.npy", rng.integers(0, 256, (3, 28, 28), dtype=np.uint8))
    return {"png": tmp_path / "one.png", "folder": folder, "npy": tmp_path / "batch.npy"}


# ---------------------------------------------------------------------------------------------
# Help, usage and errors


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: nnscratch {command}" in text
    assert "examples:" in text and f"nnscratch {command}" in text.split("examples:")[1]
    for option in ("--quiet", "--json", "--debug"):
        assert option in text


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    text = capsys.readouterr().out
    for command in COMMANDS:
        assert command in text


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("nnscratch ")


def test_errors_are_one_line_without_a_traceback(tmp_path):
    result = run_cli("info", tmp_path / "missing.npz")
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "missing.npz does not exist")
    assert result.stdout == ""
    debug = run_cli("info", tmp_path / "missing.npz", "--debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_usage_errors_exit_with_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "model.npz", "--split", "validation"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'validation'" in capsys.readouterr().err


def test_a_multi_line_message_is_joined_into_one(tmp_path, digit_model, capsys):
    empty = tmp_path / "no-mnist"
    empty.mkdir()
    assert main(["evaluate", str(digit_model), "--data-dir", str(empty), "--quiet"]) == 1
    assert_one_line_error(capsys.readouterr().err, "no-mnist")


def test_warnings_are_one_line_too(tmp_path, digit_model, monkeypatch, capsys):
    incomplete = tmp_path / "half-mnist"
    incomplete.mkdir()
    monkeypatch.setenv("NNSCRATCH_DATA", str(incomplete))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert main(["evaluate", str(digit_model), "--no-download"]) == 1
    warning, error = capsys.readouterr().err.strip().splitlines()
    assert warning.startswith("nnscratch: warning: NNSCRATCH_DATA=") and "half-mnist" in warning
    assert error.startswith("nnscratch: error: MNIST not found and download=False")


# ---------------------------------------------------------------------------------------------
# train settings: recipe, then config, then flags


def _settings(*argv: str):
    return resolve_settings(build_parser().parse_args(["train", *argv]))


def test_settings_come_from_recipe_then_config_then_flags(tmp_path):
    recipe, settings = _settings()
    assert recipe.name == "tutorial" and settings["iterations"] == 1000
    config = tmp_path / "run.toml"
    config.write_text('[train]\nrecipe = "binary-fast"\nepochs = 3\ndigits = [3, 8]\n')
    recipe, settings = _settings("--config", str(config))
    assert recipe.name == "binary-fast"
    assert settings["epochs"] == 3 and settings["digits"] == [3, 8]
    assert settings["batch_size"] == 64  # the recipe's
    _, settings = _settings("--config", str(config), "--epochs", "5")
    assert settings["epochs"] == 5


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epochs", "3"], "--epochs: the setting 'epochs' does not apply to the 'tutorial'"),
        (["--digits", "1", "2", "3"], "the tutorial recipe classifies two digits"),
        (["--digits", "1", "11"], "--digits: digit '11' is out of range"),
        (["--config", "nowhere.toml"], "config file nowhere.toml does not exist"),
    ],
)
def test_settings_errors(argv, message):
    from nnscratch.cli import CLIError
    from nnscratch.runs.settings_check import SettingError

    with pytest.raises((CLIError, SettingError), match=message):
        _settings(*argv)


def test_config_errors(tmp_path):
    from nnscratch.runs.settings_check import SettingError

    bad = tmp_path / "bad.toml"
    bad.write_text("[train\n")
    with pytest.raises(SettingError, match=f"{bad}.* is not valid TOML"):
        _settings("--config", str(bad))
    assert main(["train", "--config", str(bad)]) == 2  # a usage error, like a bad flag
    other = tmp_path / "other.toml"
    other.write_text('[train]\nrecipe = "mnist10"\niterations = 5\n')
    with pytest.raises(SettingError,
                       match="the setting 'iterations' does not apply to the 'mnist10'"):
        _settings("--config", str(other))


def test_a_deeply_nested_config_is_a_usage_error_naming_the_file(tmp_path, capsys):
    config = tmp_path / "deep.toml"
    config.write_text("[train]\nlayers = " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert_usage_error(capsys.readouterr().err, f"config file {config} nests arrays or tables "
                                                "too deeply")


def test_a_huge_layers_list_gives_a_short_error_line(tmp_path, capsys):
    config = tmp_path / "big.toml"
    config.write_text('[train]\nrecipe = "mnist10"\nlayers = [' + ", ".join(["10"] * 200_000)
                      + "]\n")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert len(err) < 2100 and "[10, 10, 10, 10, 10, 10, 10, 10, ... (200,000 elements)]" in err


def test_every_error_line_is_cut_to_a_bound():
    from nnscratch.cli import MAX_MESSAGE, _one_line

    line = _one_line("start " + "x" * 10**6 + " the fix")
    assert len(line) <= MAX_MESSAGE and line.startswith("start ") and line.endswith("the fix")
    assert "characters cut" in line


def test_a_huge_weight_decay_is_a_usage_error(capsys):
    from nnscratch.runs.settings_check import SettingError

    with pytest.raises(SettingError, match=r"--weight-decay must be >= 0\.0 and <= 1\.0, got "
                                           r"1e\+300"):
        _settings("--recipe", "binary-fast", "--weight-decay", "1e300")
    assert main(["train", "--recipe", "binary-fast", "--weight-decay", "1e300"]) == 2
    assert "warning" not in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# predict and info, on a synthetic model


def test_predict_end_to_end(digit_model, inputs):
    result = run_cli("predict", digit_model, inputs["png"], inputs["folder"], inputs["npy"],
                     "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["input"] for row in rows] == [
        str(inputs["png"]), str(inputs["folder"] / "a.png"), str(inputs["folder"] / "b.jpg"),
        *(f"{inputs['npy']}[{i}]" for i in range(3)),
    ]
    saved = load_model(digit_model)
    batch = np.load(inputs["npy"]).reshape(3, -1).astype(np.float32) / np.float32(255)
    expected = saved.predict_proba(batch)
    # The CLI predicts all six inputs in one batch, predict_proba these three alone: in float32
    # a row's matrix product depends on the batch it is in and on the BLAS kernel, so the two
    # agree to float32 rounding, not bit for bit.
    for row, probabilities in zip(rows[3:], expected, strict=True):
        assert set(row) == {"input", "label", "probabilities"}
        assert list(row["probabilities"]) == [str(d) for d in range(10)]
        printed = np.array(list(row["probabilities"].values()), np.float32)
        assert_close(printed, probabilities)
        assert row["label"] == int(np.argmax(printed))
    # The dark-on-light picture and the light-on-dark ones are the same digit to the model
    # (the same 28 x 28 input, in two rows of one batch: equal to rounding).
    assert_close(np.array(list(rows[0]["probabilities"].values()), np.float32),
                 np.array(list(rows[1]["probabilities"].values()), np.float32))


def test_predict_prints_a_table(digit_model, inputs, capsys):
    assert main(["predict", str(digit_model), str(inputs["npy"])]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["input", "label", *(f"p({d})" for d in range(10))]
    assert len(lines) == 4 and lines[1].startswith(f"{inputs['npy']}[0]")
    assert main(["predict", str(digit_model), str(inputs["npy"]), "--quiet"]) == 0
    assert capsys.readouterr().out == ""


def test_predict_accepts_a_run_folder_and_a_binary_model(tmp_path, inputs, capsys):
    run = tmp_path / "run"
    run.mkdir()
    save_model(run / "model.npz", build_mlp(784, [4], 1, rng=0), [3, 8])
    assert main(["predict", str(run), str(inputs["png"]), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert list(row["probabilities"]) == ["3", "8"] and row["label"] in (3, 8)
    assert sum(row["probabilities"].values()) == pytest.approx(1.0)


def test_predict_errors(tmp_path, digit_model, inputs, capsys):
    blank = tmp_path / "blank.png"
    Image.new("L", (28, 28), 255).save(blank)
    result = run_cli("predict", digit_model, inputs["png"], blank)
    assert result.returncode == 1 and result.stdout == ""
    assert_one_line_error(result.stderr, f"{blank}: no digit found: the image is blank")
    small = tmp_path / "small.npz"
    save_model(small, build_mlp(64, [4], 3, rng=0), [0, 1, 2])
    assert main(["predict", str(small), str(inputs["png"])]) == 1
    assert_one_line_error(capsys.readouterr().err, "takes 64 inputs, but MNIST images have 784")
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(tmp_path / "empty"), str(inputs["png"])]) == 1
    assert_one_line_error(capsys.readouterr().err, "is a folder without a model.npz")


@pytest.mark.parametrize(("array", "message"), [
    # One rule with serve, which answers 422 for pixels that span less than 0.1 (issue 22).
    (np.zeros((28, 28), dtype=np.uint8), "x.npy holds no digit: its gray levels span 0.000"),
    (np.full((3, 784), 200, dtype=np.uint8), "x.npy[0] holds no digit: its gray levels span "
                                             "0.000 of the range (at least 0.1 is needed) "
                                             "(3 of its 3 images are)"),
    (np.ones((28, 28), dtype=bool), "x.npy holds booleans; expected integer gray levels"),
])
def test_predict_refuses_blank_and_boolean_arrays_as_serve_does(tmp_path, digit_model, capsys,
                                                                 array, message):
    np.save(tmp_path / "x.npy", array)
    assert main(["predict", str(digit_model), str(tmp_path / "x.npy")]) == 1
    assert_one_line_error(capsys.readouterr().err, message)


def test_the_blank_rule_is_the_one_of_serve():
    from nnscratch.images import MIN_INK_RANGE
    from nnscratch.serve.predictor import _MIN_PIXEL_RANGE

    assert _MIN_PIXEL_RANGE == MIN_INK_RANGE == 0.1


def test_predict_refuses_bytes_after_a_npy_array(tmp_path, digit_model, capsys, rng):
    path = tmp_path / "digits.npy"
    np.save(path, rng.integers(0, 256, (2, 28, 28), dtype=np.uint8))
    with open(path, "ab") as handle:
        handle.write(b"\0" * 100)
    assert main(["predict", str(digit_model), str(path)]) == 1
    assert_one_line_error(capsys.readouterr().err, "100 bytes follow the array's data of shape "
                                                   "(2, 28, 28) (1,568 bytes)")


def test_predict_refuses_an_animated_picture(tmp_path, digit_model, capsys):
    frames = []
    for column in (5, 15):
        digit = np.zeros((28, 28), dtype=np.uint8)
        digit[4:24, column:column + 4] = 255
        frames.append(Image.fromarray(digit))
    frames[0].save(tmp_path / "two.gif", save_all=True, append_images=frames[1:])
    assert main(["predict", str(digit_model), str(tmp_path / "two.gif")]) == 1
    assert_one_line_error(capsys.readouterr().err, "two.gif is an animated picture of 2 frames")
    frames[0].save(tmp_path / "one.gif")  # one frame: read as before
    assert main(["predict", str(digit_model), str(tmp_path / "one.gif")]) == 0


def test_predict_escapes_a_newline_in_a_file_name(tmp_path, digit_model, inputs, capsys):
    odd = tmp_path / "two\nlines\t.png"
    shutil.copy(inputs["png"], odd)
    assert main(["predict", str(digit_model), str(odd), str(inputs["png"])]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 3 and "two\\nlines\\t.png" in table[1]
    assert main(["predict", str(digit_model), str(odd), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["input"] == str(odd)  # JSON escapes itself


def test_predict_and_evaluate_refuse_a_model_of_an_unknown_data_set(tmp_path, inputs, capsys):
    path = tmp_path / "model.npz"
    save_model(path, build_mlp(784, [16], 10, rng=0), list(range(10)),
               metadata={"preprocessing": PREPROCESSING, "dataset": "kmnist"})
    assert main(["predict", str(path), str(inputs["png"])]) == 1
    predict_error = capsys.readouterr().err
    assert main(["evaluate", str(path), "--no-download"]) == 1
    evaluate_error = capsys.readouterr().err
    assert predict_error == evaluate_error and "kmnist" in predict_error, (predict_error,
                                                                          evaluate_error)


def test_info_describes_a_model(digit_model, capsys):
    assert main(["info", str(digit_model), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["layer_sizes"] == [784, 16, 10]
    assert report["n_parameters"] == 784 * 16 + 16 + 16 * 10 + 10
    assert report["classes"] == list(range(10)) and report["dtype"] == "float32"
    assert report["format_version"] == 1 and set(report["versions"]) == {"nnscratch", "numpy"}
    assert report["preprocessing"] == PREPROCESSING
    assert report["file_size"] == digit_model.stat().st_size and len(report["file_sha256"]) == 64
    assert main(["info", str(digit_model)]) == 0
    text = capsys.readouterr().out
    assert "architecture:" in text and "784 -> 16 -> 10" in text and "12,730" in text


def test_info_rejects_a_tampered_file(digit_model):
    data = bytearray(digit_model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    digit_model.write_bytes(bytes(data))
    result = run_cli("info", digit_model)
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "truncated or corrupted")


def test_evaluate_needs_a_digit_model(tmp_path, capsys):
    path = tmp_path / "words.npz"
    save_model(path, build_mlp(784, [4], 3, rng=0), ["cat", "dog", "emu"])
    assert main(["evaluate", str(path), "--no-download"]) == 1
    assert_one_line_error(capsys.readouterr().err, "not MNIST digits 0..9")


# ---------------------------------------------------------------------------------------------
# Fashion-MNIST and augmentation, on synthetic files


FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot"]


def test_settings_dataset_classes_and_augment(tmp_path):
    _, settings = _settings("--recipe", "binary-fast", "--dataset", "fashion-mnist",
                            "--classes", "Shirt", "T-shirt/top")
    assert settings["dataset"] == "fashion-mnist" and settings["digits"] == [6, 0]
    assert settings["augment"] == {}  # binary-fast's
    _, settings = _settings("--recipe", "mnist10", "--augment", "shift=2", "flip=true",
                            "elastic_alpha=34")
    assert settings["augment"] == {"shift": 2.0, "flip": True, "elastic_alpha": 34.0}
    _, settings = _settings("--recipe", "mnist10-best", "--augment", "none")
    assert settings["augment"] == {}
    _, settings = _settings("--recipe", "fashion10")
    assert settings["dataset"] == "fashion-mnist" and settings["augment"]["flip"] is True
    config = tmp_path / "run.toml"
    config.write_text('[train]\nrecipe = "mnist10"\ndataset = "fashion-mnist"\n'
                      'digits = ["Bag", "Sneaker"]\n[train.augment]\nshift = 1.5\n')
    _, settings = _settings("--config", str(config))
    assert settings["digits"] == [8, 7] and settings["augment"] == {"shift": 1.5}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dataset", "fashion-mnist", "--recipe", "mnist10", "--classes", "Sock", "Bag"],
         "--classes: class 'Sock' is neither a number 0..9 nor a class name of Fashion-MNIST"),
        (["--recipe", "mnist10", "--augment", "rotate=3"],
         "--augment: augment has unknown setting(s) rotate"),
        (["--recipe", "mnist10", "--augment", "scale=2"], "--augment: scale must be < 1.0"),
        (["--augment", "shift=2"], "the setting 'augment' does not apply to the 'tutorial'"),
    ],
)
def test_dataset_and_augment_errors(argv, message):
    from nnscratch.runs.settings_check import SettingError  # usage errors: exit status 2

    with pytest.raises(SettingError, match=re.escape(message)):
        _settings(*argv)


@pytest.mark.parametrize("digits", [["-1", "3"], ["3", "-8"], ["+3", "4"], ["3.", "4"],
                                    ["(3)", "4"]])
def test_digits_are_plain_numbers(tmp_path, digits, capsys):
    # "-1" used to be read as 1 (class names are matched without punctuation): exit 2 naming it.
    assert main(["train", "--recipe", "binary-fast", "--digits", *digits,
                 "--out", str(tmp_path / "run")]) == 2
    bad = next(d for d in digits if not d.isdigit())
    assert_usage_error(capsys.readouterr().err, f"--digits: digit {bad!r} is not a plain number")
    config = tmp_path / "run.toml"
    config.write_text(f'[train]\nrecipe = "binary-fast"\ndigits = {json.dumps(digits)}\n')
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert f"digit {bad!r} is not a plain number" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_augment_flag_usage_errors(capsys):
    for value in ("shift", "shift=two"):
        with pytest.raises(SystemExit) as exit_info:
            _settings("--recipe", "mnist10", "--augment", value)
        assert exit_info.value.code == 2
        assert "--augment" in capsys.readouterr().err
    for values, message in ((["shift=1", "shift=2"], "--augment: shift is given twice"),
                            (["none", "shift=2"], "--augment: 'none' must stand alone"),
                            (["shift=2", "none"], "--augment: 'none' must stand alone")):
        with pytest.raises(SystemExit) as exit_info:
            _settings("--recipe", "mnist10", "--augment", *values)
        assert exit_info.value.code == 2
        assert_usage_error(capsys.readouterr().err, message)


@pytest.mark.parametrize(("augment", "message"),
                         [("shift=1e9", "shift must be <= 14.0"),
                          ("elastic_alpha=1e9", "elastic_alpha must be <= 280.0"),
                          ("elastic_sigma=1e9", "elastic_sigma must be <= 28.0")])
def test_augment_bounds_are_checked_before_any_work(tmp_path, augment, message, capsys):
    # Before: trained on blank images (exit 0), or "Unable to allocate 59.6 GiB".
    assert main(["train", "--recipe", "mnist10", "--augment", augment,
                 "--data-dir", str(tmp_path / "no-data"), "--no-download",
                 "--out", str(tmp_path / "run")]) == 2
    assert_usage_error(capsys.readouterr().err, f"--augment: {message}")
    config = tmp_path / "run.toml"
    key, _, value = augment.partition("=")
    config.write_text(f'[train]\nrecipe = "mnist10"\n[train.augment]\n{key} = {value}\n')
    assert main(["train", "--config", str(config), "--data-dir", str(tmp_path / "no-data"),
                 "--no-download", "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.fixture
def fashion_dir(tmp_path, monkeypatch) -> Path:
    """Synthetic Fashion-MNIST files (60 train, 10 test), found through NNSCRATCH_DATA_FASHION."""
    from _fake_mnist import fake_arrays, use_hashes_of, write_fake_mnist

    arrays = fake_arrays(seed=3)
    write_fake_mnist(tmp_path / "fashion", arrays)
    use_hashes_of(monkeypatch, arrays, "fashion-mnist")  # so that verification passes
    monkeypatch.setenv("NNSCRATCH_DATA_FASHION", str(tmp_path / "fashion"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "fashion"


@pytest.mark.system
def test_train_evaluate_predict_and_plot_a_fashion_model(tmp_path, fashion_dir, capsys):
    out = tmp_path / "run"
    with one_blas_thread():
        assert main(["train", "--dataset", "fashion-mnist", "--recipe", "mnist10", "--epochs",
                     "2", "--layers", "8", "--augment", "shift=1", "flip=true", "--out",
                     str(out), "--no-download", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["dataset"] == "fashion-mnist" and metrics["class_names"] == FASHION_NAMES
    assert metrics["train_size"] == 60 and metrics["test_size"] == 10
    saved = load_model(out / "model.npz")
    assert saved.classes.tolist() == FASHION_NAMES  # the model names its classes
    assert saved.metadata["dataset"] == "fashion-mnist"
    assert saved.metadata["config"]["augment"] == {"shift": 1.0, "flip": True}
    assert "Fashion-MNIST" in saved.metadata["preprocessing"]["source"]
    for name in ("confusion_matrix.png", "misclassified.png", "augmentation.png"):
        assert (out / name).is_file(), name

    assert main(["evaluate", str(out), "--no-download", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dataset"] == "fashion-mnist" and report["classes"] == FASHION_NAMES
    assert [entry["label"] for entry in report["per_class"]] == FASHION_NAMES
    assert report["accuracy"] == metrics["test_accuracy"]
    assert report["confusion_matrix"] == metrics["confusion_matrix"]
    assert main(["evaluate", str(out), "--no-download"]) == 0
    text = capsys.readouterr().out
    assert "fashion-mnist classes" in text and "Ankle boot" in text
    assert text.split("\n\n")[1].splitlines()[0].split()[0] == "class"

    images = tmp_path / "some.npy"
    np.save(images, np.random.default_rng(0).integers(0, 256, (2, 28, 28), dtype=np.uint8))
    photo = np.full((90, 60), 255, dtype=np.uint8)  # a dark product on white, not a digit
    photo[10:80, 15:45] = 40
    Image.fromarray(photo).save(tmp_path / "photo.png")
    assert main(["predict", str(out), str(images), str(tmp_path / "photo.png"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(row["label"] in FASHION_NAMES for row in rows)
    assert list(rows[0]["probabilities"]) == FASHION_NAMES
    # Pictures are made the way Fashion-MNIST was made, not like MNIST digits.
    from nnscratch.data import preprocess_images
    from nnscratch.images import preprocess_product

    expected = saved.predict_proba(preprocess_images(preprocess_product(photo)[None]))[0]
    assert_close(list(rows[2]["probabilities"].values()), expected)

    assert main(["plot", str(out), "--no-download", "--json"]) == 0
    plots = {Path(p).name for p in json.loads(capsys.readouterr().out)["plots"]}
    assert {"confusion_matrix.png", "misclassified.png", "history.png",
            "augmentation.png"} <= plots


def test_a_fashion_subset_keeps_the_names_of_its_classes(tmp_path, fashion_dir, capsys):
    out = tmp_path / "run"
    with one_blas_thread():
        assert main(["train", "--dataset", "fashion-mnist", "--recipe", "binary-fast",
                     "--classes", "Shirt", "T-shirt/top", "--epochs", "1", "--layers", "4",
                     "--out", str(out), "--no-download", "--no-plots", "--quiet"]) == 0
    assert load_model(out / "model.npz").classes.tolist() == ["Shirt", "T-shirt/top"]
    assert main(["evaluate", str(out), "--no-download", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["digits"] == [6, 0] and report["classes"] == ["Shirt", "T-shirt/top"]
    assert sum(entry["support"] for entry in report["per_class"]) == 2  # 1 of each in the test


def test_evaluate_needs_a_model_of_a_known_data_set(tmp_path, capsys):
    path = tmp_path / "model.npz"
    save_model(path, build_mlp(784, [4], 3, rng=0), ["Shirt", "Bag", "Sock"],
               metadata={"dataset": "fashion-mnist"})
    assert main(["evaluate", str(path), "--no-download"]) == 1
    assert_one_line_error(capsys.readouterr().err, "not Fashion-MNIST classes (T-shirt/top")
    save_model(path, build_mlp(784, [4], 3, rng=0), [0, 1, 2], metadata={"dataset": "emnist"})
    assert main(["evaluate", str(path), "--no-download"]) == 1
    assert_one_line_error(capsys.readouterr().err, "unknown dataset 'emnist'")


# ---------------------------------------------------------------------------------------------
# gradcheck


def test_gradcheck_end_to_end():
    result = run_cli("gradcheck", "--layers", "5", "4", "--activation", "tanh", "--loss",
                     "softmax")
    assert result.returncode == 0, result.stderr
    assert "6-5-4-3 tanh" in result.stdout and result.stdout.rstrip().endswith("passed")
    for name in ("input", "layers[0].W", "layers[0].b", "layers[2].W", "layers[4].b"):
        assert name in result.stdout


@pytest.mark.parametrize(
    "argv",
    [["--activation", "sigmoid", "--loss", "binary", "--layers", "8"],
     ["--activation", "leaky_relu", "--loss", "mse", "--classes", "2"],
     ["--activation", "elu", "--layers"],
     ["--activation", "gelu", "--inputs", "3", "--samples", "4", "--seed", "7"]],
)
def test_gradcheck_passes_for_correct_gradients(argv, capsys):
    assert main(["gradcheck", *argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["max_error"] < 1e-7
    assert max(report["errors"].values()) == report["max_error"]


def test_gradcheck_fails_above_the_tolerance(capsys):
    assert main(["gradcheck", "--tolerance", "1e-15"]) == 1
    assert "FAILED" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--loss", "binary", "--classes", "3"], "the binary loss has 2 classes"),
     (["--inputs", "0"], "--inputs must be at least 1"),
     (["--samples", "0"], "--samples must be at least 1"),
     (["--step", "2"], "--step must be between 0 and 1"),
     (["--step", "0"], "--step must be between 0 and 1"),
     (["--step", "nan"], "--step must be between 0 and 1 (e.g. 1e-6), got nan"),
     (["--tolerance", "-1"], "--tolerance must be a positive number (e.g. 1e-7), got -1.0"),
     (["--tolerance", "inf"], "--tolerance must be a positive number"),
     # Estimated before any work (issue 22): this one used to run unbounded.
     (["--layers", "100000", "--inputs", "1000"], "a gradient check of 1000-100000-3 with "
                                                  "--samples 8 takes 200,816,006 loss "
                                                  "evaluations"),
     (["--layers", "100", "--inputs", "784"], "the limits are 1,000,000 and 1e+11")],
)
def test_gradcheck_errors(argv, message, capsys):
    assert main(["gradcheck", *argv]) == 2  # usage errors
    assert_usage_error(capsys.readouterr().err, message)


def test_gradcheck_estimates_memory_first(monkeypatch, capsys):
    monkeypatch.setenv("NNSCRATCH_MEMORY_AVAILABLE", "1G")
    assert main(["gradcheck", "--samples", "1000000000"]) == 2
    assert_usage_error(capsys.readouterr().err, "with --samples 1000000000 needs about 357.6 "
                                                "GiB of memory, but 1.0 GiB is available")


# ---------------------------------------------------------------------------------------------
# On the real MNIST: train, reproduce, evaluate, plot, info


def _weights(run: Path) -> list[np.ndarray]:
    return [param.value for param in load_model(run / "model.npz").model.parameters()]


def _train_twice(tmp_path: Path, mnist_dir: Path, *flags: str) -> tuple[Path, Path]:
    """Train once with flags, then again from the first run's config.toml (without plots)."""
    first, second = tmp_path / "first", tmp_path / "second"
    result = run_cli("train", *flags, "--data-dir", mnist_dir, "--out", first, "--json",
                     env=FIXED_LAYOUT)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["run_dir"] == str(first)
    result = run_cli("train", "--config", first / "config.toml", "--data-dir", mnist_dir,
                     "--out", second, "--quiet", "--no-plots", env=FIXED_LAYOUT)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    return first, second


def _assert_same_run(first: Path, second: Path) -> None:
    assert (first / "config.toml").read_text().split("\n", 2)[2] == \
        (second / "config.toml").read_text().split("\n", 2)[2]  # after the comment header
    for a, b in zip(_weights(first), _weights(second), strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)  # bit-identical weights
    metrics = [json.loads((run / "metrics.json").read_text()) for run in (first, second)]
    for m in metrics:
        del m["seconds"]
    assert metrics[0] == metrics[1]


@pytest.fixture(scope="module")
def tutorial_runs(tmp_path_factory, mnist_dir) -> tuple[Path, Path]:
    return _train_twice(tmp_path_factory.mktemp("tutorial"), mnist_dir, "--iterations", "5",
                        "--log-every", "1", "--no-plots")


@pytest.mark.slow
def test_tutorial_run_folder(tutorial_runs):
    run = tutorial_runs[0]
    assert {p.name for p in run.iterdir()} == {"metrics.json", "history.csv", "config.toml",
                                               "provenance.json", "model.npz"}  # no plots
    metrics = json.loads((run / "metrics.json").read_text())
    assert [p["iteration"] for p in metrics["cost_history"]] == [0, 1, 2, 3, 4]
    assert metrics["train_size"] == 12700 and metrics["test_size"] == 2167
    assert (run / "history.csv").read_text().splitlines()[0] == "iteration,cost"
    meta = load_model(run / "model.npz").metadata
    assert meta["config"]["iterations"] == 5 and meta["seeds"] == {"seed": 42}
    assert len(meta["training_data_sha256"]) == 64


@pytest.mark.slow
def test_config_toml_reproduces_the_tutorial_run_exactly(tutorial_runs):
    _assert_same_run(*tutorial_runs)


@pytest.mark.slow
def test_config_toml_reproduces_a_binary_fast_run_exactly(tmp_path, mnist_dir):
    first, second = _train_twice(tmp_path, mnist_dir, "--recipe", "binary-fast", "--epochs",
                                 "1", "--layers", "32")
    _assert_same_run(first, second)
    for name in ("cost.png", "history.png", "confusion_matrix.png", "misclassified.png",
                 "first_layer_weights.png", "roc.png"):
        assert (first / name).is_file(), name
    assert (first / "history.csv").read_text().startswith("epoch,loss,accuracy,")


@pytest.mark.slow
def test_evaluate_agrees_with_the_run(tutorial_runs, mnist_dir, capsys):
    run = tutorial_runs[0]
    metrics = json.loads((run / "metrics.json").read_text())
    result = run_cli("evaluate", run, "--data-dir", mnist_dir, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["accuracy"] == metrics["test_accuracy"]
    assert report["confusion_matrix"] == metrics["confusion_matrix"]
    assert report["digits"] == [1, 2] and report["n_samples"] == 2167
    assert [c["support"] for c in report["per_class"]] == [1135, 1032]
    for entry in report["per_class"]:
        assert 0 <= entry["precision"] <= 1 and 0 <= entry["recall"] <= 1
    assert main(["evaluate", str(run), "--split", "train", "--data-dir", str(mnist_dir),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == metrics["train_accuracy"]
    assert main(["evaluate", str(run / "model.npz"), "--data-dir", str(mnist_dir)]) == 0
    text = capsys.readouterr().out
    assert f"accuracy: {metrics['test_accuracy']:.2%}" in text
    assert "precision" in text and "confusion matrix" in text


@pytest.mark.slow
def test_plot_redraws_the_figures(tutorial_runs, mnist_dir, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tutorial_runs[1], run)
    result = run_cli("plot", run, "--data-dir", mnist_dir)
    assert result.returncode == 0, result.stderr
    names = {"cost.png", "confusion_matrix.png", "misclassified.png",
             "first_layer_weights.png", "roc.png"}
    assert {p.name for p in run.glob("*.png")} == names
    assert main(["plot", str(run), "--no-data", "--json"]) == 0
    plots = json.loads(capsys.readouterr().out)["plots"]
    assert {Path(p).name for p in plots} == names - {"misclassified.png", "roc.png"}
    (run / "history.csv").unlink()
    assert main(["plot", str(run), "--no-data"]) == 1
    assert_one_line_error(capsys.readouterr().err, "lacks history.csv")


@pytest.mark.slow
def test_info_reports_the_training_data(tutorial_runs):
    result = run_cli("info", tutorial_runs[0], "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["layer_sizes"] == [784, 196, 1]
    assert report["n_parameters"] == 784 * 196 + 196 + 196 + 1
    assert report["classes"] == [1, 2] and report["output"] == "sigmoid"
    assert report["dtype"] == "float64" and report["seeds"] == {"seed": 42}
    assert set(report["metrics"]) >= {"train_accuracy", "test_accuracy"}
    assert report["training_data_sha256"] == load_model(
        tutorial_runs[1] / "model.npz").metadata["training_data_sha256"]


# ---------------------------------------------------------------------------------------------
# predict on pictures agrees with predict on the arrays they were made from


def _write_pictures(folder: Path, images: np.ndarray, rng: np.random.Generator) -> None:
    """Plain, inverted, shifted and 3x-scaled PNG copies of MNIST digits, one folder each."""
    for variant in ("plain", "inverted", "shifted", "scaled"):
        (folder / variant).mkdir()
    for i, digit in enumerate(images):
        name = f"{i:03d}.png"
        Image.fromarray(digit).save(folder / "plain" / name)
        Image.fromarray(255 - digit).save(folder / "inverted" / name)  # black on white
        page = np.zeros((64, 48), dtype=np.uint8)
        row, col = rng.integers(0, 64 - 28 + 1), rng.integers(0, 48 - 28 + 1)
        page[row:row + 28, col:col + 28] = digit
        Image.fromarray(page).save(folder / "shifted" / name)
        big = Image.fromarray(digit).resize((84, 84), Image.Resampling.LANCZOS)
        big.save(folder / "scaled" / name)


@pytest.mark.slow
def test_predict_on_pictures_agrees_with_the_arrays(tmp_path, mnist_dir):
    from nnscratch.classifier import NeuralNetClassifier
    from nnscratch.data import load_mnist, preprocess_images

    mnist = load_mnist(mnist_dir, progress=False)
    # A small model trained in seconds; agreement grows with the model's quality (a borderline
    # digit can flip under any resampling), and this one is about 95 % accurate.
    classifier = NeuralNetClassifier(hidden_layers=(256,), epochs=2, random_state=0)
    with one_blas_thread():
        classifier.fit(preprocess_images(mnist.train_images), mnist.train_labels)
    model = tmp_path / "model.npz"
    save_model(model, classifier.model_, classifier.classes_,
               metadata={"preprocessing": PREPROCESSING})
    digits = mnist.test_images[:200]
    np.save(tmp_path / "digits.npy", digits)
    _write_pictures(tmp_path, digits, np.random.default_rng(0))
    result = run_cli("predict", model, "digits.npy", "plain", "inverted", "shifted", "scaled",
                     "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    labels: dict[str, list[int]] = {}
    for row in json.loads(result.stdout):
        source = row["input"].split("[")[0].split("/")[0]
        labels.setdefault(source, []).append(row["label"])
    reference = np.array(labels.pop("digits.npy"))
    assert np.mean(reference == mnist.test_labels[:200]) > 0.93  # a model worth comparing
    for variant, found in labels.items():
        agreement = np.mean(np.array(found) == reference)
        assert agreement >= 0.98, f"{variant}: {agreement:.1%}"
    assert sorted(labels) == ["inverted", "plain", "scaled", "shifted"]


# ---------------------------------------------------------------------------------------------
# Refusals: unsound model files, bounded inputs, OS errors — one line, the fix, nothing touched


def _model_with(change: Any) -> Any:
    """A setup that saves the 784-16-10 digit model, then tampers with it."""
    def setup(tmp: Path) -> list[str]:
        path = tmp / "model.npz"
        save_model(path, build_mlp(784, [16], 10, rng=0), list(range(10)),
                   metadata={"preprocessing": PREPROCESSING, "metrics": {"test_accuracy": 0.9}})
        rewrite(path, change, rehash=True)
        return [str(path)]
    return setup


def _nan_weight(arrays: dict, document: dict) -> None:
    arrays["param_002"][3, 4] = np.nan


def _mixed_classes(arrays: dict, document: dict) -> None:
    document["classes"] = [0, "0", 1, 2, 3, 4, 5, 6, 7, 8]


def _wrong_output(arrays: dict, document: dict) -> None:
    document["output"] = "sigmoid"


def _metrics_list(arrays: dict, document: dict) -> None:
    document["metrics"] = [0.9]


def _huge_hidden_layer(arrays: dict, document: dict) -> None:  # the 784×1,000,000 bomb
    layers = document["architecture"]["layers"]
    layers[0]["out_features"] = layers[2]["in_features"] = 1_000_000


def _good_model(tmp: Path) -> list[str]:
    return _model_with(lambda arrays, document: None)(tmp)


def _npy_input(tmp: Path) -> str:
    np.save(tmp / "digits.npy", np.zeros((2, 28, 28), dtype=np.uint8))
    return str(tmp / "digits.npy")


def _loop(tmp: Path, name: str) -> str:
    (tmp / name).symlink_to(tmp / name)
    return str(tmp / name)


def _fake_data(tmp: Path) -> list[str]:
    from _fake_mnist import fake_arrays, write_fake_mnist

    write_fake_mnist(tmp / "mnist", fake_arrays())
    return ["--data-dir", str(tmp / "mnist"), "--no-verify", "--no-download", "--quiet"]


def _train_into(out: str, *extra: str) -> Any:
    def argv(tmp: Path) -> list[str]:
        return ["train", "--iterations", "1", "--no-plots", "--out", str(tmp / out),
                *_fake_data(tmp), *extra]
    return argv


def _config(content: bytes | None) -> Any:
    def argv(tmp: Path) -> list[str]:
        path = tmp / "run.toml"
        if content is None:
            path.mkdir()
        else:
            path.write_bytes(content)
        return ["train", "--config", str(path), *_fake_data(tmp)]
    return argv


def _bomb_png(tmp: Path) -> str:
    from _tamper import png_header_only

    png_header_only(tmp / "scan.png", 100_000, 100_000)
    return str(tmp / "scan.png")


def _lying_npy(tmp: Path) -> str:
    from _tamper import npy_with_header

    npy_with_header(tmp / "digits.npy", (100_000, 28, 28), "uint8", bytes(100))
    return str(tmp / "digits.npy")


def _small_png(tmp: Path) -> str:
    digit = np.zeros((40, 30), dtype=np.uint8)
    digit[5:35, 12:18] = 255
    Image.fromarray(digit).save(tmp / "one.png")
    return str(tmp / "one.png")


def _file_as_folder(tmp: Path) -> str:
    (tmp / "notes").write_text("a file, not a folder")
    return str(tmp / "notes" / "one.png")


#: id -> (argv built in a fresh folder, exit status, phrases the one-line error must hold).
#: ``{tmp}`` in a phrase is the folder; every case also checks that no file there changed.
REFUSALS: dict[str, tuple[Any, int, list[str]]] = {
    "info: NaN weight": (
        lambda t: ["info", *_model_with(_nan_weight)(t)], 1,
        ["{tmp}/model.npz: layer 2 (Dense) has 1 NaN and 0 infinite values in its parameter W "
         "(2.W)", "retrain it, e.g. with a lower learning rate"]),
    "predict --json: NaN weight": (
        lambda t: ["predict", *_model_with(_nan_weight)(t), _npy_input(t), "--json"], 1,
        ["{tmp}/model.npz: layer 2 (Dense) has 1 NaN", "retrain it"]),
    "evaluate: NaN weight": (
        lambda t: ["evaluate", *_model_with(_nan_weight)(t), "--no-download"], 1,
        ["{tmp}/model.npz: layer 2 (Dense) has 1 NaN"]),
    "predict: classes 0 and '0'": (
        lambda t: ["predict", *_model_with(_mixed_classes)(t), _npy_input(t), "--json"], 1,
        ["{tmp}/model.npz: the classes in the metadata must all be of one type", "int and str"]),
    "info: output contradicts the architecture": (
        lambda t: ["info", *_model_with(_wrong_output)(t)], 1,
        ["{tmp}/model.npz: the metadata says the output is 'sigmoid', but 10 classes and 10 "
         "output(s) mean 'softmax'", "Re-save the model"]),
    "info: metrics of the wrong type": (
        lambda t: ["info", *_model_with(_metrics_list)(t)], 1,
        ["{tmp}/model.npz: in the metadata, the field 'metrics' must be an object, got an "
         "array [0.9]"]),
    "info: 784×1,000,000 declared": (
        lambda t: ["info", *_model_with(_huge_hidden_layer)(t)], 1,
        ["{tmp}/model.npz declares 795,000,010 parameters", "more than the limit of "
         "100,000,000", "--max-parameters N"]),
    "info: symlink loop": (
        lambda t: ["info", _loop(t, "model.npz")], 1,
        ["{tmp}/model.npz is a symbolic link that loops", "fix or remove the link"]),
    "info: a device": (
        lambda t: ["info", "/dev/zero"], 1,
        ["/dev/zero is a character device, not a model file", "reads only regular files"]),
    "predict: decompression bomb PNG": (
        lambda t: ["predict", *_good_model(t), _bomb_png(t)], 1,
        ["{tmp}/scan.png holds", "10,000,000,000 pixels, more than the limit of 200,000,000",
         "nnscratch predict --max-pixels N"]),
    "predict --max-pixels below a picture": (
        lambda t: ["predict", *_good_model(t), _small_png(t), "--max-pixels", "1000"], 1,
        ["{tmp}/one.png holds", "1,200 pixels, more than the limit of 1,000"]),
    "predict: .npy header larger than the file": (
        lambda t: ["predict", *_good_model(t), _lying_npy(t)], 1,
        ["{tmp}/digits.npy: its header declares an array of shape (100000, 28, 28) of uint8 "
         "(78,400,000 bytes), but the file holds only 100 bytes", "truncated or damaged"]),
    "predict: input symlink loop": (
        lambda t: ["predict", *_good_model(t), _loop(t, "seven.png")], 1,
        ["{tmp}/seven.png is a symbolic link that loops"]),
    "predict: a file where a folder is expected": (
        lambda t: ["predict", *_good_model(t), _file_as_folder(t)], 1,
        ["{tmp}/notes/one.png: part of this path is a file where a folder is needed",
         "check the path"]),
    "info --max-parameters below the model": (
        lambda t: ["info", *_good_model(t), "--max-parameters", "100"], 1,
        ["{tmp}/model.npz declares", "more than the limit of 100", "--max-parameters N"]),
    "predict --max-parameters below the model": (
        lambda t: ["predict", *_good_model(t), _npy_input(t), "--max-parameters", "100"], 1,
        ["more than the limit of 100", "--max-parameters N"]),
    "evaluate --max-parameters 0": (
        lambda t: ["evaluate", *_good_model(t), "--max-parameters", "0"], 2,
        ["argument --max-parameters: expected a number of at least 1, got 0"]),
    "predict --max-pixels 0": (
        lambda t: ["predict", *_good_model(t), _small_png(t), "--max-pixels", "0"], 2,
        ["argument --max-pixels: expected a number of at least 1, got 0"]),
    "train --config FOLDER": (
        _config(None), 1, ["{tmp}/run.toml is a folder, not a config file"]),
    "train --config not UTF-8": (
        _config("[train]\nnote = 'caf\u00e9'\n".encode("latin-1")), 1,
        ["config file {tmp}/run.toml is not UTF-8 text (byte 0xe9 at position 19",
         "save it with the UTF-8 encoding"]),
    "train --config symlink loop": (
        lambda t: ["train", "--config", _loop(t, "run.toml"), *_fake_data(t)], 1,
        ["{tmp}/run.toml is a symbolic link that loops"]),
    "train --out under a file": (
        lambda t: (_file_as_folder(t), _train_into("notes/run")(t))[1], 1,
        ["{tmp}/notes/run: part of this path is a file where a folder is needed"]),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_refusals_are_one_line_with_the_fix_and_touch_nothing(tmp_path, case, capsys):
    make_argv, status, phrases = REFUSALS[case]
    argv = make_argv(tmp_path)
    before = snapshot(tmp_path)
    if status == 2:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        for phrase in phrases:
            assert phrase in err, err
    else:
        assert main(argv) == status
        captured = capsys.readouterr()
        assert captured.out == ""
        for phrase in phrases:
            assert_one_line_error(captured.err, phrase.format(tmp=tmp_path))
    assert snapshot(tmp_path) == before  # byte for byte: nothing written, nothing removed


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC, errno.EACCES])
def test_an_unwritable_out_folder_is_named_with_the_fix(tmp_path, capsys, monkeypatch, code):
    """The operating system's refusal, raised where train writes its files (mkdir, the
    atomic writes' fsync): one line naming the file at its final path (not the temporary
    folder it was being written in), and the earlier run replaced by --overwrite left as it
    was, with no temporary folder left behind."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text('{"test_accuracy": 0.99}\n')  # an earlier run's
    argv = _train_into("run", "--overwrite")(tmp_path)
    before = snapshot(tmp_path)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError(code, os.strerror(code))

    from nnscratch import _atomic

    monkeypatch.setattr(_atomic.os, "fsync", refuse)
    assert main(argv) == 1
    fix = {errno.EROFS: " is on a read-only file system, so nothing can be written there; choose "
                        "a folder on a writable disk",
           errno.ENOSPC: ": no space left on the disk, so it cannot be written; free some space",
           errno.EACCES: ": permission denied: cannot write it. Check its permissions"}[code]
    assert_one_line_error(capsys.readouterr().err, f"{out / 'metrics.json'}{fix}")
    assert snapshot(tmp_path) == before


def test_strict_json_never_prints_nan(digit_model, inputs, capsys, monkeypatch):
    from nnscratch.serialization import SavedModel

    def broken(self: Any, X: Any) -> np.ndarray:  # a future bug that lets NaN through
        return np.full((len(X), len(self.classes)), np.nan)

    monkeypatch.setattr(SavedModel, "predict_proba", broken)
    assert main(["predict", str(digit_model), str(inputs["npy"]), "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_one_line_error(captured.err, "--json output: [0].probabilities.0 is nan, which JSON "
                                        "cannot represent, so nothing was written")


@pytest.mark.parametrize("command", ["info", "predict"])
def test_json_output_is_strict(digit_model, inputs, command):
    def refuse(name: str) -> float:
        raise AssertionError(f"{name} in the output")

    extra = [inputs["npy"]] if command == "predict" else []
    result = run_cli(command, digit_model, *extra, "--json")
    assert result.returncode == 0, result.stderr
    json.loads(result.stdout, parse_constant=refuse)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")
@pytest.mark.parametrize("where", ["model", "input", "config"])
def test_a_named_pipe_never_hangs_the_cli(tmp_path, digit_model, inputs, where):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    argv = {"model": ["info", fifo], "input": ["predict", digit_model, fifo],
            "config": ["train", "--config", fifo]}[where]
    result = run_cli(*argv, timeout=60)
    assert result.returncode == 1
    assert_one_line_error(result.stderr, f"{fifo} is a named pipe (FIFO), not ")


_ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=8,
)


@pytest.mark.system
@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["metrics", "preprocessing", "seeds", "config", "versions",
                              "output", "classes", "training_data_sha256", "note"]),
       value=_ANY_JSON)
def test_info_on_any_metadata_describes_the_model_or_names_the_file(tmp_path, capsys, field,
                                                                    value):
    path = tmp_path / "model.npz"
    save_model(path, build_mlp(784, [4], 3, rng=0), [0, 1, 2],
               metadata={"preprocessing": PREPROCESSING})
    rewrite(path, lambda arrays, document: document.__setitem__(field, value))
    for argv in (["info", str(path)], ["info", str(path), "--json"]):
        status = main(argv)
        captured = capsys.readouterr()
        if status == 0:
            assert captured.err == ""
        else:
            assert status == 1 and captured.out == ""
            assert_one_line_error(captured.err, f"nnscratch: error: {path}")


# ---------------------------------------------------------------------------------------------
# Convolutional networks (issue 20): the whole tool takes them


@pytest.fixture
def fake_mnist_dir(tmp_path, monkeypatch) -> Path:
    """Synthetic MNIST files (60 train, 10 test), found through NNSCRATCH_DATA."""
    from _fake_mnist import fake_arrays, use_hashes_of, write_fake_mnist

    arrays = fake_arrays(seed=5)
    write_fake_mnist(tmp_path / "mnist", arrays)
    use_hashes_of(monkeypatch, arrays, "mnist")
    monkeypatch.setenv("NNSCRATCH_DATA", str(tmp_path / "mnist"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "mnist"


#: A CNN recipe made tiny: two convolutions of 2 and 3 channels, one epoch of 60 images.
TINY_CNN = ["--recipe", "mnist-cnn", "--conv-layers", "2", "3", "--layers", "8", "--epochs",
            "1", "--batch-size", "32"]


@pytest.mark.system
def test_train_evaluate_predict_plot_and_info_of_a_cnn(tmp_path, fake_mnist_dir, inputs,
                                                       capsys):
    out = tmp_path / "run"
    with one_blas_thread():
        assert main(["train", *TINY_CNN, "--out", str(out), "--no-download", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["train_size"] == 60 and metrics["test_size"] == 10
    saved = load_model(out / "model.npz")
    kinds = [type(layer).__name__ for layer in saved.model.layers]
    assert kinds == ["Reshape", "Conv2D", "BatchNorm", "ReLU", "MaxPool2D", "Conv2D",
                     "BatchNorm", "ReLU", "MaxPool2D", "Flatten", "Dense", "ReLU", "Dropout",
                     "Dense"]
    assert saved.metadata["config"]["conv_layers"] == [2, 3]
    # Training moved the running statistics away from their start (0 and 1), and the file
    # kept them.
    assert not np.all(saved.model.layers[2].running_mean == 0)

    assert main(["evaluate", str(out), "--no-download", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] == metrics["test_accuracy"]
    assert main(["predict", str(out), str(inputs["npy"]), str(inputs["png"]), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4 and all(row["label"] in range(10) for row in rows)
    expected = saved.predict_proba(np.load(inputs["npy"]).reshape(3, 784) / 255)
    assert_close([list(row["probabilities"].values()) for row in rows[:3]], expected)
    assert main(["plot", str(out), "--no-download", "--json"]) == 0
    plots = {Path(p).name for p in json.loads(capsys.readouterr().out)["plots"]}
    assert {"confusion_matrix.png", "history.png", "first_layer_weights.png"} <= plots

    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["sample_shapes"][:3] == [[784], [1, 28, 28], [2, 28, 28]]
    assert info["sample_shapes"][-1] == [10]
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "784 -> 1×28×28 -> 2×28×28 -> 2×14×14 -> 3×14×14 -> 3×7×7 -> 147 -> 8 -> 10" in text
    assert re.search(r"Conv2D\s+1→2 3×3 pad 1, init he_normal\s+20 parameters", text), text
    assert re.search(r"MaxPool2D\s+2×2\s", text) and re.search(r"BatchNorm\s+2, momentum", text)


def test_cnn_settings_are_checked_before_any_work(tmp_path, capsys):
    recipe, settings = _settings("--recipe", "fashion-cnn", "--conv-layers", "8", "16",
                                 "--no-batch-norm", "--pool-every", "2")
    assert recipe.kind == "cnn" and settings["dataset"] == "fashion-mnist"
    assert settings["conv_layers"] == [8, 16] and settings["batch_norm"] is False
    assert settings["pool_every"] == 2
    for argv, message in [
        (["--conv-layers", "0"], "--conv-layers: every convolution's channel count must be >= 1"),
        (["--pool-every", "0"], "--pool-every must be >= 1"),
        (["--conv-layers", *["4"] * 5, "--pool-every", "1"], "more than the 4 it can take"),
    ]:
        with pytest.raises(SettingError, match=re.escape(message)):
            _settings("--recipe", "mnist-cnn", *argv)
    with pytest.raises(SettingError, match="does not apply to the 'mnist10' recipe"):
        _settings("--recipe", "mnist10", "--conv-layers", "8")
    config = tmp_path / "run.toml"
    config.write_text('[train]\nrecipe = "mnist-cnn"\nbatch_norm = "yes"\n')
    with pytest.raises(SettingError, match=r"batch_norm in \[train\] of .* must be a boolean"):
        _settings("--config", str(config))
