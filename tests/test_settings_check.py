"""``nnscratch train`` checks every flag, config value and the memory before any work.

Each refusal is a usage error (exit status 2, except the memory refusal: 1) that names the flag
as written (``--learning-rate``) or the config key with the file's name, and touches nothing:
the data directory given does not exist, so a check that came after loading data would fail
differently, and the folder is compared byte for byte before and after.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _tamper import snapshot
from nnscratch import _memory
from nnscratch._validation import check_real
from nnscratch.cli import CLIError, build_parser, main, resolve_settings
from nnscratch.runs.recipes import RECIPES, SETTING_KEYS, allowed_keys
from nnscratch.runs.settings_check import SettingError, expected_kind


def _refused(tmp_path: Path, capsys, argv: list[str], status: int = 2) -> str:
    """Run train with ``argv``; assert ``status``, one line, nothing written; return it."""
    before = snapshot(tmp_path)
    out = tmp_path / "run"
    full = ["train", *argv, "--out", str(out), "--data-dir", str(tmp_path / "no-data"),
            "--no-download"]
    assert main(full) == status
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert captured.out == ""
    assert snapshot(tmp_path) == before
    return lines[0]


FLAG_CASES = {
    "negative learning rate": (["--learning-rate", "-0.1"],
                               "--learning-rate must be >= 0.0, got -0.1"),
    "NaN learning rate": (["--learning-rate", "nan"], "--learning-rate must be a finite number"),
    "infinite learning rate": (["--learning-rate", "1e400"],
                               "--learning-rate must be a finite number, got inf"),
    "negative iterations": (["--iterations", "-3"], "--iterations must be >= 0, got -3"),
    "huge iterations": (["--iterations", "1" + "0" * 400],
                        "--iterations must be a finite number, got an integer of about 401"),
    "zero log interval": (["--log-every", "0"], "--log-every must be >= 1, got 0"),
    "a zero layer": (["--layers", "0"], "--layers: every layer size must be >= 1, got 0"),
    "tutorial output of 2": (["--layers", "196", "2"],
                             "--layers: the tutorial's last layer is its one sigmoid output"),
    "negative seed": (["--seed", "-1"], "--seed must be >= 0 and <= 4294967295, got -1"),
    "seed too large": (["--seed", str(2**32)], "--seed must be >= 0 and <= 4294967295"),
    "mlp flag on tutorial": (["--epochs", "3"],
                             "--epochs: the setting 'epochs' does not apply to the 'tutorial'"),
    "digit out of range": (["--digits", "1", "11"], "--digits: digit '11' is out of range"),
    "three digits for the tutorial": (["--digits", "1", "2", "3"],
                                      "--digits: the tutorial recipe classifies two digits"),
    "mlp zero epochs": (["--recipe", "binary-fast", "--epochs", "0"],
                        "--epochs must be >= 1, got 0"),
    "mlp zero learning rate": (["--recipe", "binary-fast", "--learning-rate", "0"],
                               "--learning-rate must be > 0.0, got 0.0"),
    "mlp zero batch": (["--recipe", "binary-fast", "--batch-size", "0"],
                       "--batch-size must be >= 1, got 0"),
    "mlp dropout 1": (["--recipe", "mnist10", "--dropout", "1"],
                      "--dropout must be >= 0.0 and < 1.0, got 1.0"),
    "mlp momentum": (["--recipe", "mnist10", "--momentum", "1.5"],
                     "--momentum must be >= 0.0 and < 1.0, got 1.5"),
    "mlp validation fraction": (["--recipe", "mnist10", "--validation-fraction", "1"],
                                "--validation-fraction must be > 0.0 and < 1.0, got 1.0"),
    "mlp negative weight decay": (["--recipe", "mnist10", "--weight-decay", "-1"],
                                  "--weight-decay must be >= 0.0 and <= 1.0, got -1.0"),
    "mlp negative patience": (["--recipe", "mnist10", "--patience", "-1"],
                              "--patience must be >= 0, got -1"),
    "mlp negative warm-up": (["--recipe", "mnist10", "--warmup-epochs", "-2"],
                             "--warmup-epochs must be >= 0, got -2"),
    "unknown augmentation": (["--recipe", "mnist10", "--augment", "rotate=3"],
                             "--augment: augment has unknown setting(s) rotate"),
}


@pytest.mark.parametrize("case", FLAG_CASES)
def test_a_bad_flag_is_a_usage_error_naming_the_flag_before_any_work(tmp_path, capsys, case):
    argv, message = FLAG_CASES[case]
    line = _refused(tmp_path, capsys, argv)
    assert line.startswith("nnscratch train: error: ") and message in line, line
    assert "n_iterations" not in line and "layer_sizes" not in line


CONFIG_CASES = {
    "misspelt table": ("[training]\nlearning_rate = 0.5\n",
                       "unknown table [training] (did you mean [train]?)"),
    "key outside a table": ("learning_rate = 0.5\n",
                            "'learning_rate' is outside any table; put it under the [train]"),
    "train not a table": ("train = 3\n", "train must be a table ([train]), got the integer 3"),
    "misspelt key": ('[train]\nrecipe = "binary-fast"\nearly_stoping = true\n',
                     "unknown setting 'early_stoping' in [train] (did you mean "
                     "'early_stopping'?)"),
    "string for a boolean": ('[train]\nrecipe = "binary-fast"\nearly_stopping = "false"\n',
                             "early_stopping in [train] of {config} must be a boolean (true or "
                             "false), got the string 'false'"),
    "float for an integer": ("[train]\niterations = 2.0\n",
                             "iterations in [train] of {config} must be an integer, got the "
                             "number 2.0"),
    "string for an integer": ('[train]\nseed = "3"\n',
                              "seed in [train] of {config} must be an integer, got the string"),
    "boolean for a number": ("[train]\nlearning_rate = true\n",
                             "learning_rate in [train] of {config} must be a number, got the "
                             "boolean True"),
    "infinite number": ("[train]\nlearning_rate = inf\n",
                        "learning_rate in [train] of {config} must be a finite number"),
    "huge integer": ("[train]\nlearning_rate = 1" + "0" * 400 + "\n",
                     "learning_rate in [train] of {config} must be a finite number, got an "
                     "integer of about 401 digits"),
    "layers not a list": ("[train]\nlayers = 196\n",
                          "layers in [train] of {config} must be a list, got the integer 196"),
    "a string layer": ('[train]\nlayers = [196, "1"]\n',
                       "layers in [train] of {config} must hold whole numbers, got the string"),
    "unknown choice": ('[train]\nrecipe = "mnist10"\noptimizer = "rmsprop"\n',
                       "optimizer in [train] of {config} must be one of sgd, adam, adamw"),
    "recipe not a string": ("[train]\nrecipe = 5\n",
                            "recipe in [train] of {config} must be a string, got 5"),
    "augment not a table": ('[train]\nrecipe = "mnist10"\naugment = "yes"\n',
                            "augment in [train] of {config} must be a table, got the string"),
    "unknown data set": ('[train]\ndataset = "kmnist"\n',
                         "dataset in [train] of {config}: "),
    "data set not a string": ("[train]\ndataset = 3\n",
                              "dataset in [train] of {config} must be a string, got the integer"),
    "unknown recipe": ('[train]\nrecipe = "tutorail"\n',
                       "recipe in [train] of {config}: unknown recipe 'tutorail'"),
    "key of another recipe": ('[train]\nrecipe = "mnist10"\niterations = 5\n',
                              "iterations in [train] of {config}: the setting 'iterations' "
                              "does not apply to the 'mnist10' recipe"),
}


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_a_bad_config_is_a_usage_error_naming_the_key_and_file(tmp_path, capsys, case):
    text, message = CONFIG_CASES[case]
    config = tmp_path / "run.toml"
    config.write_text(text)
    line = _refused(tmp_path, capsys, ["--config", str(config)])
    assert message.format(config=config) in line and str(config) in line, line


def test_a_flag_overrides_a_valid_config_value_and_both_are_checked(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text('[train]\nrecipe = "binary-fast"\nepochs = 3\n')
    _, resolved = resolve_settings(build_parser().parse_args(
        ["train", "--config", str(config), "--epochs", "4"]))
    assert resolved["epochs"] == 4
    line = _refused(tmp_path, capsys, ["--config", str(config), "--epochs", "-4"])
    assert "--epochs must be >= 1, got -4" in line


# ---------------------------------------------------------------------------------------------
# Property: any config file is either accepted or refused naming the file and what is wrong

_VALUES = st.one_of(st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=False), st.text(max_size=8),
                    st.lists(st.integers(-3, 600), max_size=3))
_KEYS = st.one_of(st.sampled_from(("recipe", *SETTING_KEYS)),
                  st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))
_TABLES = st.one_of(st.just("train"), st.sampled_from(("training", "Train", "model")))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=st.dictionaries(_TABLES, st.dictionaries(_KEYS, _VALUES, max_size=4),
                                max_size=2),
       recipe=st.sampled_from(sorted(RECIPES)))
def test_any_config_is_accepted_or_refused_by_name(tmp_path, document, recipe):
    if "train" in document:
        document["train"] = {**document["train"], "recipe": recipe}
    config = tmp_path / "run.toml"
    config.write_text(tomli_w.dumps(document))
    args = build_parser().parse_args(["train", "--config", str(config)])
    try:
        chosen, resolved = resolve_settings(args)
    except (SettingError, CLIError) as error:
        message = str(error)
        assert str(config) in message, message
        named = [*document, *(key for table in document.values() for key in table)]
        assert any(name in message for name in named), message
        return
    table = document.get("train", {})
    assert chosen.name == table.get("recipe", "tutorial")
    assert set(table) <= set(allowed_keys(chosen))
    for key, value in table.items():
        kind = expected_kind(key)
        if key != "digits" and kind is not None:
            assert resolved[key] == value and (kind is float or type(value) is kind)


# ---------------------------------------------------------------------------------------------
# Memory, estimated up front


def test_a_model_too_big_for_memory_is_refused_at_once(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(_memory.MEMORY_ENVIRONMENT, "16G")
    start = time.perf_counter()
    line = _refused(tmp_path, capsys, ["--layers", "100000", "1"], status=1)
    assert time.perf_counter() - start < 5  # no allocation, no data: at once
    assert "training layers [100000, 1] needs about 32.6 GiB of memory" in line, line
    assert "but 16.0 GiB is available" in line and "--layers" in line


def test_the_memory_limit_is_the_one_available(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(_memory.MEMORY_ENVIRONMENT, "50M")
    line = _refused(tmp_path, capsys, [], status=1)  # the tutorial needs ~175 MiB
    assert "but 50.0 MiB is available" in line and "--dtype float32" in line


def test_a_cnn_too_big_for_memory_is_refused_at_once(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(_memory.MEMORY_ENVIRONMENT, "4G")
    start = time.perf_counter()
    line = _refused(tmp_path, capsys, ["--recipe", "mnist-cnn", "--conv-layers", "512", "512",
                                       "--batch-size", "256"], status=1)
    assert time.perf_counter() - start < 10  # no data loaded, no training
    assert "training conv layers [512, 512] with layers [128] needs about" in line, line
    assert "but 4.0 GiB is available" in line and "--conv-layers" in line
    monkeypatch.setenv(_memory.MEMORY_ENVIRONMENT, "64G")
    from nnscratch.cli import _check_memory, build_parser, resolve_settings

    recipe, settings = resolve_settings(build_parser().parse_args(["train", "--recipe",
                                                                   "mnist-cnn"]))
    _check_memory(recipe, settings)  # the recipe itself fits


def test_the_cnn_estimate_counts_every_value_of_a_batch():
    estimate = _memory.image_model_training_bytes(1000, 50_000, n_classes=10, batch_size=128,
                                                  optimizer="adam", itemsize=4)
    assert estimate.parameters == estimate.optimizer == 2 * 1000 * 4
    assert estimate.activations == 3 * 256 * 50_000 * 4  # scoring's 256 rows exceed 128
    assert estimate.data == (70_000 + 12_000) * 784 * 4


def test_the_estimate_counts_parameters_optimiser_state_and_activations():
    tutorial = _memory.training_bytes([196, 1], n_classes=2, batch_size=None, optimizer=None)
    n_parameters = 785 * 196 + 197
    assert tutorial.parameters == 2 * n_parameters * 8 and tutorial.optimizer == 0
    assert tutorial.batch_rows == 14_000 and tutorial.activations == 3 * 14_000 * 197 * 8
    adam = _memory.training_bytes([16, 10], n_classes=10, batch_size=32, optimizer="adam",
                                  itemsize=4)
    assert adam.optimizer == 2 * (785 * 16 + 17 * 10) * 4 and adam.batch_rows == 32
    sgd = _memory.training_bytes([16, 10], n_classes=10, batch_size=32, optimizer="sgd",
                                 momentum=0.9, itemsize=4)
    assert sgd.optimizer == adam.optimizer // 2


@pytest.mark.parametrize(("text", "size"), [("512M", 512 * 2**20), ("16G", 16 * 2**30),
                                            ("1.5KiB", 1536), ("1000", 1000)])
def test_memory_sizes_parse(text, size):
    assert _memory.parse_size(text) == size


def test_a_bad_memory_override_is_named(monkeypatch):
    monkeypatch.setenv(_memory.MEMORY_ENVIRONMENT, "lots")
    with pytest.raises(ValueError, match="NNSCRATCH_MEMORY_AVAILABLE='LOTS' is not a size"):
        _memory.available_memory()


def test_available_memory_is_measured_where_the_system_says():
    available = _memory.available_memory()
    assert available is None or available > 0


# ---------------------------------------------------------------------------------------------
# Numbers too large for a float


@pytest.mark.parametrize("value", [10**400, -(10**5000)], ids=["1e400", "-1e5000"])
def test_check_real_refuses_an_integer_too_large_for_a_float(value):
    with pytest.raises(ValueError, match=r"learning_rate must be finite, got an integer of "
                                         r"about \d+ digits, too large for a float"):
        check_real(value, "learning_rate")
    assert math.isfinite(check_real(10**300, "learning_rate"))
