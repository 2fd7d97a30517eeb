"""Tests for ``nnscratch tune``: Optuna studies over a recipe's settings.

Everything runs on a tiny learnable MNIST-shaped set (600 training images, see
``_fake_mnist.learnable_arrays``), so a trial takes a fraction of a second. Searches run
in-process through :func:`nnscratch.cli.main`; the tests of several workers start real
``python -m nnscratch tune`` processes on one storage: a SQLite file always, and a PostgreSQL
server when ``NNSCRATCH_TEST_POSTGRES_URL`` names one (``.ci/postgres.sh start`` prints it);
without it the PostgreSQL tests skip and say why.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from _fake_mnist import learnable_arrays, write_fake_mnist
from _numerics import assert_close
from nnscratch import runs
from nnscratch.cli import main
from nnscratch.runs.recipes import get_recipe
from nnscratch.tune import Objective, retried_trial_number
from nnscratch.tune.space import SpaceError, default_space, layers_from_label, parse_space

optuna = pytest.importorskip("optuna")

ONE_THREAD = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                     "MKL_NUM_THREADS")}
#: Three epochs of one small layer; one learning rate (1e-7) learns nothing, so the median
#: pruner has bad trials to stop.
FAST_SPACE = """\
[space]
learning_rate = { choices = [1e-7, 1e-2, 3e-2] }
layers = { choices = [[16], [8]] }
epochs = 3
batch_size = 64
"""
#: Trials of a few seconds, long enough to kill a worker in the middle of one.
SLOW_SPACE = """\
[space]
learning_rate = { choices = [1e-2, 3e-2] }
layers = [64]
epochs = 40
batch_size = 16
"""


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("learnable-mnist")
    write_fake_mnist(directory, learnable_arrays())
    return directory


@pytest.fixture
def data_args(data_dir) -> list[str]:
    return ["--data-dir", str(data_dir), "--no-verify", "--no-download"]


def space_file(tmp_path: Path, text: str, name: str = "space.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load(storage: str, study: str) -> optuna.Study:
    return optuna.load_study(study_name=study, storage=storage)


def states(study: optuna.Study) -> list[str]:
    return [trial.state.name for trial in study.get_trials(deepcopy=False)]


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def start_tune(*args: str | Path, cwd: Path) -> subprocess.Popen[str]:
    """``python -m nnscratch tune ARGS`` as a separate process, as a second user would run it."""
    return subprocess.Popen(
        [sys.executable, "-m", "nnscratch", "tune", *map(str, args)], cwd=cwd, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **ONE_THREAD},
    )


def finish(process: subprocess.Popen[str], timeout: float = 300) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


# ---------------------------------------------------------------------------------------------
# The search space


def test_default_spaces_parse_and_centre_on_the_recipe():
    for name in ("mnist10", "binary-fast", "mnist-cnn"):
        recipe = get_recipe(name)
        table = default_space(recipe)
        space = parse_space(table, recipe)
        rate = recipe.settings["learning_rate"]
        assert table["learning_rate"] == {"low": rate / 10, "high": rate * 10, "log": True}
        assert recipe.settings["layers"] in table["layers"]["choices"]
        assert {d.name for d in space.dimensions} >= {"learning_rate", "layers", "dropout",
                                                      "batch_size", "optimizer", "activation"}
        choices = table["layers"]["choices"]
        assert len(choices) == len({tuple(choice) for choice in choices})  # no repeats


def test_a_space_samples_fixed_settings_ranges_and_layer_choices():
    recipe = get_recipe("mnist10")
    space = parse_space({"learning_rate": {"low": 1e-4, "high": 1e-1, "log": True},
                         "layers": {"choices": [[32, 16], [64]]}, "epochs": 2,
                         "dropout": {"low": 0.0, "high": 0.5, "step": 0.25}}, recipe)
    trial = optuna.trial.FixedTrial({"learning_rate": 3e-3, "layers": "32-16", "dropout": 0.25})
    assert space.sample(trial) == {"epochs": 2, "learning_rate": 3e-3, "layers": [32, 16],
                                   "dropout": 0.25}
    assert layers_from_label("none") == []


def test_an_augment_table_is_a_fixed_setting():
    space = parse_space({"augment": {"shift": 2.0}}, get_recipe("mnist10"))
    assert space.fixed == {"augment": {"shift": 2.0}} and not space.dimensions


def test_layers_as_a_range_draw_each_width():
    space = parse_space({"layers": {"low": 8, "high": 64, "log": True, "depth": 2}},
                        get_recipe("mnist10"))
    trial = optuna.trial.FixedTrial({"layers_1": 40, "layers_2": 9})
    assert space.sample(trial) == {"layers": [40, 9]}


@pytest.mark.parametrize(("table", "message"), [
    ({"learnig_rate": {"low": 1e-3, "high": 1e-1}}, "unknown setting 'learnig_rate'"),
    ({"digits": [1, 2]}, "--dataset and --digits choose the task"),
    ({"dataset": "fashion-mnist"}, "--dataset and --digits choose the task"),
    ({"augment": {"shift": -1.0}}, "augment = {'shift': -1.0}"),
    ({"augment": {"choices": [{}]}}, "augment = {'choices': [{}]}"),
    ({"dropout": {"low": 0.5, "high": 0.1}}, "low 0.5 above high 0.1; swap them"),
    ({"dropout": {"low": 0.2, "high": 0.2}}, "empty range (low = high = 0.2)"),
    ({"activation": {"choices": []}}, "empty list of choices"),
    ({"activation": {"choices": ["relu", "swish"]}}, "choose from"),
    ({"weight_decay": {"low": 0.0, "high": 1e-3, "log": True}}, "low must be above 0"),
    ({"dropout": {"low": 0.0, "high": 1.5}}, "expected a number in [0.0, 1.0)"),
    ({"batch_size": {"choices": [64, 0]}}, "expected at least 1"),
    ({"epochs": 2.5}, "expected a whole number"),
    ({"seed": {"choices": [0, 1]}}, "fixed for a whole study"),
    ({"optimizer": {"low": 1, "high": 2}}, "is not a number"),
    ({"layers": {"choices": [[16, 0]]}}, "hidden layer widths"),
    ({"learning_rate": {"lo": 1e-3, "high": 1e-1}}, "neither a range nor choices"),
    # Bounds that keep a trial finite, and steps that do not collapse a range (issue 22).
    ({"epochs": {"low": 1, "high": 10**9}}, "epochs = 1000000000: expected at most 10,000"),
    ({"epochs": 10**9}, "expected at most 10,000"),
    ({"batch_size": {"choices": [64, 10**7]}}, "expected at most 60,000"),
    ({"layers": {"low": 8, "high": 16, "depth": 100_000}}, "depth must be a whole number from 1 "
                                                            "to 64, got 100000"),
    ({"batch_size": {"low": 64, "high": 128, "step": 100}}, "step 100 is larger than the range "
                                                             "64..128"),
    ({"dropout": {"low": 0.1, "high": 0.2, "step": 0.5}}, "step 0.5 is larger than the range"),
    ({"batch_size": {"low": 64, "high": 128, "step": 2.5}}, "its step must be one too"),
    ({"dropout": {"low": 0.1, "high": 0.2, "step": float("nan")}}, "step must be a positive"),
    ({"weight_decay": {"choices": [0.0, 1e300]}}, "expected a number in [0.0, 1.0]"),
])
def test_bad_spaces_name_the_setting_and_the_fix(table, message):
    with pytest.raises(SpaceError, match=r"the space: .*") as error:
        parse_space(table, get_recipe("mnist10"))
    assert message in str(error.value)


def test_the_space_example_in_the_docs_parses():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    docs = Path(__file__).resolve().parents[1] / "docs" / "tune.md"
    example = re.findall(r"```toml\n(.*?)```", docs.read_text(), re.S)[0]
    space = parse_space(tomllib.loads(example)["space"], get_recipe("mnist10"))
    assert len(space.dimensions) == 7 and space.fixed == {"epochs": 12}


def test_the_grid_sampler_needs_choices():
    space = parse_space({"learning_rate": {"low": 1e-3, "high": 1e-1, "log": True}},
                        get_recipe("mnist10"))
    with pytest.raises(SpaceError, match="grid sampler needs a list of values"):
        space.grid()
    grid = parse_space({"batch_size": {"low": 16, "high": 64, "step": 16},
                        "layers": {"choices": [[8], []]}}, get_recipe("mnist10")).grid()
    assert grid == {"batch_size": [16, 32, 48, 64], "layers": ["8", "none"]}


# ---------------------------------------------------------------------------------------------
# The objective never sees the test set


def test_trials_train_and_validate_on_a_fixed_stratified_split_of_the_training_set():
    arrays = learnable_arrays()
    X = arrays["train_images"].reshape(-1, 784).astype(np.float32) / 255
    y = arrays["train_labels"].astype(np.int64)
    recipe = get_recipe("mnist10")
    space = parse_space({"epochs": 2, "layers": [8]}, recipe)
    objective = Objective(recipe, {"recipe": "mnist10", **recipe.settings}, space, X, y)
    assert len(objective.y_train) + len(objective.y_val) == len(y)
    assert np.bincount(objective.y_val).tolist() == [6] * 10  # 10% of each class
    again = Objective(recipe, {"recipe": "mnist10", **recipe.settings}, space, X, y)
    np.testing.assert_array_equal(objective.X_val, again.X_val)
    study = optuna.create_study(direction="maximize")
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state.name == "COMPLETE" and 0 <= trial.value <= 1
    assert sorted(trial.intermediate_values) == [1, 2]  # one report per epoch


class _TestSet:
    """Stands in for the test images during a search: any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the search read the test set (.{name})")

    def __len__(self):
        raise AssertionError("the search read the test set (len)")


def test_the_search_never_reads_the_test_set(tmp_path, data_args, monkeypatch):
    from nnscratch.tune import search as tune

    real = tune._load_data

    def without_test_set(the_plan, *, progress):
        data = real(the_plan, progress=progress)
        return type(data)(data.X_train, data.y_train, _TestSet(), _TestSet(), data.digits,
                          data.files)

    monkeypatch.setattr(tune, "_load_data", without_test_set)
    space = space_file(tmp_path, FAST_SPACE)
    status = main(["tune", *data_args, "--space", str(space), "--trials", "3", "--no-final",
                   "--no-plots", "--out", str(tmp_path / "t"), "--quiet"])
    assert status == 0
    assert states(load(sqlite_url(tmp_path / "t" / "study.db"), "mnist10")).count("COMPLETE") == 3


# ---------------------------------------------------------------------------------------------
# A search on one machine


@pytest.mark.system
def test_a_search_records_trials_prunes_bad_ones_and_writes_a_usable_best_run(
        tmp_path, data_args, capsys):
    out = tmp_path / "tune"
    space = space_file(tmp_path, FAST_SPACE)
    status = main(["tune", *data_args, "--space", str(space), "--trials", "12",
                   "--sampler", "random", "--seed", "1", "--out", str(out), "--json"])
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    study = load(sqlite_url(out / "study.db"), "mnist10")
    assert len(study.trials) == 12 and set(states(study)) <= {"COMPLETE", "PRUNED"}
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    assert pruned, "the median pruner stopped no trial of a range designed to be bad"
    # After the pruner's five start-up trials, every trial of the rate that learns nothing
    # is stopped (good ones may be too, when they start slower than the median).
    hopeless = [t for t in study.trials[5:] if t.params["learning_rate"] == 1e-7]
    assert hopeless and all(t.state.name == "PRUNED" for t in hopeless)
    assert all(max(t.intermediate_values) < 3 for t in pruned)  # stopped before the last epoch
    assert report["counts"]["complete"] + report["counts"]["pruned"] == 12
    assert report["best"]["val_accuracy"] == study.best_value
    for name in ("tune.toml", "trials.csv", "optimization_history.png",
                 "param_importances.png", "accuracy_vs_learning_rate.png", "best.toml"):
        assert (out / name).is_file(), name
    assert len((out / "trials.csv").read_text().splitlines()) == 13
    # The best run is an ordinary run folder: it loads, evaluate scores it, and best.toml
    # repeats it exactly.
    best = runs.read_run(out / "best")
    assert best.settings == study.best_trial.user_attrs["settings"]
    assert best.metrics["tune"]["trial"] == study.best_trial.number
    assert main(["evaluate", str(out / "best"), *data_args, "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["accuracy"] == best.metrics["test_accuracy"]
    assert main(["train", "--config", str(out / "best.toml"), *data_args,
                 "--out", str(tmp_path / "again"), "--no-plots", "--quiet"]) == 0
    again = runs.read_run(tmp_path / "again")
    assert again.settings == best.settings
    for a, b in zip(again.saved.model.parameters(), best.saved.model.parameters(), strict=True):
        assert_close(a.value, b.value)


@pytest.mark.system
def test_the_same_command_again_adds_trials_to_the_same_study(tmp_path, data_args, capsys):
    out = tmp_path / "tune"
    command = ["tune", *data_args, "--space", str(space_file(tmp_path, FAST_SPACE)),
               "--trials", "2", "--out", str(out), "--no-final", "--no-plots"]
    assert main(command) == 0
    first = (out / "trials.csv").read_text()
    assert main(command) == 0
    assert len(load(sqlite_url(out / "study.db"), "mnist10").trials) == 4
    assert (out / "trials.csv").read_text().startswith(first.splitlines()[0])
    text = capsys.readouterr().out
    assert "0 trials so far" in text and "2 trials so far" in text
    assert "top " in text and "tune folder:" in text


@pytest.mark.system
def test_local_worker_processes_share_the_trials(tmp_path, data_args, capsys):
    out = tmp_path / "tune"
    assert main(["tune", *data_args, "--space", str(space_file(tmp_path, FAST_SPACE)),
                 "--trials", "4", "--jobs", "2", "--out", str(out), "--no-final",
                 "--no-plots", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["worker_exit_codes"] == [0, 0]
    assert len(load(sqlite_url(out / "study.db"), "mnist10").trials) == 4


@pytest.mark.system
@pytest.mark.parametrize(("signum", "status", "said"),
                         [(signal.SIGINT, 130, "interrupted (Ctrl-C)"),
                          (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_a_signal_fails_the_running_trial_keeps_the_finished_and_says_so(tmp_path, data_dir,
                                                                          signum, status, said):
    out = tmp_path / "tune"
    process = start_tune("--data-dir", data_dir, "--no-verify", "--no-download", "--space",
                         space_file(tmp_path, SLOW_SPACE), "--trials", "20", "--out", out,
                         "--no-plots", "--quiet", cwd=tmp_path)
    storage = sqlite_url(out / "study.db")
    _wait_for(lambda: (out / "tune.toml").is_file()
              and _states_or_empty(storage, "mnist10")[-2:] == ["COMPLETE", "RUNNING"]
              and _training(storage, "mnist10"), process)
    process.send_signal(signum)  # a moment into the second trial of 40 epochs
    code, _, err = finish(process)
    assert code == status, err
    assert err.strip().splitlines()[-1] == (
        f"nnscratch: {said}; the finished trials are kept in study 'mnist10' ({storage})")
    assert "Traceback" not in err
    assert states(load(storage, "mnist10")) == ["COMPLETE", "FAIL"]


@pytest.mark.system
@pytest.mark.parametrize(("group", "signum", "status"),
                         [(True, signal.SIGINT, 130),  # Ctrl-C in a terminal
                          (False, signal.SIGTERM, 143)])  # kill PID, a service manager
def test_a_signal_stops_every_local_worker_cleanly(tmp_path, data_dir, group, signum, status):
    out = tmp_path / "tune"
    process = subprocess.Popen(  # its own process group, as a terminal's foreground job
        [sys.executable, "-m", "nnscratch", "tune", "--data-dir", str(data_dir), "--no-verify",
         "--no-download", "--space", str(space_file(tmp_path, SLOW_SPACE)), "--trials", "6",
         "--jobs", "2", "--out", str(out), "--no-plots", "--quiet"],
        cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, **ONE_THREAD}, start_new_session=True,
    )
    storage = sqlite_url(out / "study.db")

    def both_training() -> bool:
        if not (out / "tune.toml").is_file():
            return False
        trials = load(storage, "mnist10").trials
        return sum(t.state.name == "RUNNING" and bool(t.params) for t in trials) == 2

    _wait_for(both_training, process)
    if group:
        os.killpg(process.pid, signum)  # what Ctrl-C does: the whole foreground group
    else:
        process.send_signal(signum)  # the command only: it passes it on to its workers
    code, _, err = finish(process)
    assert code == status, err
    assert err.strip().splitlines()[-1].startswith("nnscratch: interrupted" if group else
                                                   "nnscratch: terminated (SIGTERM); the "
                                                   "finished trials are kept"), err
    found = states(load(storage, "mnist10"))
    assert "RUNNING" not in found and found.count("FAIL") == 2


# ---------------------------------------------------------------------------------------------
# Several processes on one storage: SQLite always, PostgreSQL when a server is there


def _postgres_url() -> str:
    url = os.environ.get("NNSCRATCH_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("NNSCRATCH_TEST_POSTGRES_URL is not set: start a server with "
                    "'.ci/postgres.sh start' and export the URL it prints")
    pytest.importorskip("psycopg", reason="the PostgreSQL driver: pip install "
                        "'nnscratch[postgres]'")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request, tmp_path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "shared.db")
    return _postgres_url()


@pytest.mark.system
def test_two_processes_add_trials_to_one_study(tmp_path, data_dir, storage):
    study = f"shared-{uuid.uuid4().hex[:8]}"
    space = space_file(tmp_path, FAST_SPACE)
    common = ["--data-dir", data_dir, "--no-verify", "--no-download", "--space", space,
              "--storage", storage, "--study", study, "--trials", "3", "--no-final", "--no-plots",
              "--json"]
    first = start_tune(*common, "--out", tmp_path / "a", cwd=tmp_path)
    second = start_tune(*common, "--out", tmp_path / "b", cwd=tmp_path)
    results = [finish(first), finish(second)]
    for code, _, err in results:
        assert code == 0, err
    trials = load(storage, study).trials
    assert len(trials) == 6 and {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}
    # Each saw the other's trials: the one that finished last counted all six.
    assert max(sum(json.loads(out)["counts"].values()) for _, out, _ in results) == 6


@pytest.mark.system
def test_a_killed_worker_does_not_stop_the_study_and_its_trial_is_retried(
        tmp_path, data_dir, storage):
    study = f"killed-{uuid.uuid4().hex[:8]}"
    common = ["--data-dir", data_dir, "--no-verify", "--no-download", "--space",
              space_file(tmp_path, SLOW_SPACE), "--storage", storage, "--study", study,
              "--heartbeat", "1", "--pruner", "none", "--no-final", "--no-plots", "--quiet"]
    victim = start_tune(*common, "--trials", "20", "--out", tmp_path / "a", cwd=tmp_path)
    _wait_for(lambda: _training(storage, study), victim)
    victim.kill()  # SIGKILL, a moment into a trial of 40 epochs: no chance to mark anything
    victim.communicate()
    running = [t.number for t in load(storage, study).trials if t.state.name == "RUNNING"]
    assert running == [0], states(load(storage, study))
    time.sleep(2.5)  # the heartbeat's grace period (2 x 1 s) runs out
    code, _, err = finish(start_tune(*common, "--trials", "2", "--out", tmp_path / "b",
                                     cwd=tmp_path))
    assert code == 0, err
    trials = load(storage, study).trials
    found = [(t.number, t.state.name, retried_trial_number(t)) for t in trials]
    assert trials[running[0]].state.name == "FAIL", found
    retries = [t for t in trials if retried_trial_number(t) == running[0]]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE", found
    assert retries[0].params == trials[running[0]].params


def _states_or_empty(storage: str, study: str) -> list[str]:
    """The states of the study's trials; none before the tune process has created it (its
    SQLite file is never created here first: the process would find a folder not its own)."""
    if storage.startswith("sqlite:///") and not Path(storage[len("sqlite:///"):]).is_file():
        return []
    import sqlalchemy.exc

    try:
        return states(load(storage, study))
    except KeyError:  # the study is not created yet
        return []
    except sqlalchemy.exc.SQLAlchemyError:  # its tables are being created as we look
        return []


def _training(storage: str, study: str) -> bool:
    """Whether a trial is running with its settings drawn (it is training, not starting)."""
    if "RUNNING" not in _states_or_empty(storage, study):
        return False
    return any(t.state.name == "RUNNING" and t.params for t in load(storage, study).trials)


def _wait_for(condition, process: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"nnscratch tune ended early: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("timed out waiting for the study")
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# Bad input: one line that names the fix, exit 1, and no tune folder left behind


@pytest.mark.parametrize(("space", "message"), [
    ("[space]\nlearnig_rate = { low = 1e-3, high = 1e-1 }\n", "unknown setting 'learnig_rate'"),
    ("[space]\ndropout = { low = 0.3, high = 0.3 }\n", "empty range"),
    ("[space]\nactivation = { choices = [] }\n", "empty list of choices"),
    ("[space]\ndropout = { low = 0.5, high = 0.1 }\n", "above high 0.1; swap them"),
    ("[nothing]\n", "has no [space] table"),
    ("[space]\n", "has an empty [space] table; name at least one setting"),
    ("[space]\nlayers = " + "[" * 100_000 + "]" * 100_000 + "\n", "nests arrays or tables too "
                                                              "deeply"),
    ("[space\n", "is not valid TOML"),
])
def test_a_bad_space_is_one_line_exit_1_and_no_folder(tmp_path, data_args, capsys, space,
                                                      message):
    out = tmp_path / "tune"
    status = main(["tune", *data_args, "--space", str(space_file(tmp_path, space)),
                   "--trials", "1", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1 and err[0].startswith("nnscratch: error: --space ")
    assert message in err[0]
    assert not out.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--storage", "postgresql+psycopg://nobody@127.0.0.1:9/none"], "cannot connect"),
    (["--storage", "not a url"], "is not a database URL"),
    (["--storage", "mysql+nosuchdriver://u@h/db"], "is not a database URL"),
    (["--sampler", "grid", "--space", "SPACE"], "grid sampler needs a list of values"),
    ([], "give --trials N or --timeout SECONDS"),
    (["--digits", "3", "3"], "--digits"),
    # The study would vanish at exit (a 78-line traceback and exit 0 before, issue 22).
    (["--storage", "sqlite://"], "--storage sqlite:// is an in-memory SQLite database"),
    (["--storage", "sqlite:///:memory:"], "--storage sqlite:///:memory: is an in-memory SQLite"),
    (["--storage", "sqlite:///file::memory:?cache=shared&uri=true"], "in-memory SQLite"),
])
def test_bad_options_are_one_line_exit_1_and_no_folder(tmp_path, data_args, capsys, args,
                                                       message):
    out = tmp_path / "tune"
    space = space_file(tmp_path, "[space]\nlearning_rate = { low = 1e-3, high = 1e-1 }\n")
    args = [str(space) if a == "SPACE" else a for a in args]
    if "--storage" in args or "--sampler" in args:
        args += ["--trials", "1"]
    status = main(["tune", *data_args, "--out", str(out), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1, err
    assert err[0].startswith("nnscratch: error: ") and message in err[0], err
    assert not out.exists()


def test_a_read_only_sqlite_file_is_named_with_read_only(tmp_path, data_args, capsys,
                                                          monkeypatch):
    db = tmp_path / "study.db"
    optuna.create_study(storage=sqlite_url(db), study_name="other")  # a real study database
    read_only = f"sqlite:///file:{db}?mode=ro&uri=true"
    out = tmp_path / "tune"
    status = main(["tune", *data_args, "--out", str(out), "--trials", "1", "--storage",
                   read_only])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1, err
    assert f"the SQLite file {db} is read-only" in err[0] and not out.exists()
    # A database found read-only only when written (a read-only mount): the same one line.
    monkeypatch.setattr("nnscratch.tune.search.check_sqlite_storage", lambda url: None)
    status = main(["tune", *data_args, "--out", str(out), "--trials", "1", "--storage",
                   read_only])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1, err
    assert "is read-only" in err[0] and "readonly database" in err[0] and not out.exists()


def test_a_trial_too_large_for_the_memory_fails_and_the_search_goes_on(tmp_path, data_args,
                                                                         capsys, monkeypatch):
    # Before: "Unable to allocate 584 GiB", the whole tune dead and its folder left (issue 22).
    monkeypatch.setenv("NNSCRATCH_MEMORY_AVAILABLE", "4G")
    space = space_file(tmp_path, "[space]\nlayers = { choices = [[8], [100000000]] }\n"
                                 "epochs = 1\nbatch_size = 64\n")
    out = tmp_path / "tune"
    assert main(["tune", *data_args, "--space", str(space), "--sampler", "grid", "--out",
                 str(out), "--no-final", "--no-plots", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "layers [100000000] need about" in err and "the search goes on" in err
    trials = {t.params["layers"]: t for t in load(sqlite_url(out / "study.db"), "mnist10").trials}
    assert trials["100000000"].state.name == "FAIL"
    assert "but 4.0 GiB is available" in trials["100000000"].user_attrs["fail_reason"]
    assert trials["8"].state.name == "COMPLETE"


def test_workers_are_capped_by_cores_and_memory(tmp_path, data_args, capsys, monkeypatch):
    from nnscratch.tune import TuneOptions, plan
    from nnscratch.tune.search import trial_memory, worker_count

    the_plan = plan(TuneOptions(jobs=100, trials=1, out=str(tmp_path / "t")))
    per_worker = trial_memory(the_plan.settings).total
    monkeypatch.setenv("NNSCRATCH_MEMORY_AVAILABLE", str(3 * per_worker + 1))
    jobs, why = worker_count(the_plan)
    assert jobs == min(3, os.cpu_count() or 1)
    assert why.startswith(f"--jobs 100: starting {jobs} worker(s), as many as ")
    monkeypatch.setenv("NNSCRATCH_MEMORY_AVAILABLE", str(per_worker // 2))
    assert worker_count(the_plan)[0] == 1  # one always runs; its trials check their own size
    # The command says it in one line, and runs what fits (here one worker, in-process).
    space = space_file(tmp_path, FAST_SPACE)
    assert main(["tune", *data_args, "--space", str(space), "--jobs", "12", "--trials", "1",
                 "--out", str(tmp_path / "tune"), "--no-final", "--no-plots", "--quiet"]) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if "--jobs 12" in line]
    assert len(warning) == 1 and "starting 1 worker(s)" in warning[0]


def test_a_password_never_reaches_the_messages(tmp_path, data_args, capsys):
    out = tmp_path / "tune"
    status = main(["tune", *data_args, "--out", str(out), "--trials", "1", "--storage",
                   "postgresql+psycopg://me:s3cret@127.0.0.1:9/none"])
    err = capsys.readouterr().err
    assert status == 1 and "s3cret" not in err and "***" in err


@pytest.mark.system
def test_resuming_with_another_space_is_refused(tmp_path, data_args, capsys):
    out = tmp_path / "tune"
    assert main(["tune", *data_args, "--space", str(space_file(tmp_path, FAST_SPACE)),
                 "--trials", "1", "--out", str(out), "--no-final", "--quiet"]) == 0
    other = space_file(tmp_path, "[space]\nepochs = 2\n", "other.toml")
    status = main(["tune", *data_args, "--space", str(other), "--trials", "1", "--out",
                   str(out), "--quiet"])
    err = capsys.readouterr().err
    assert status == 1 and "was created with space" in err and "new --study" in err
    assert len(load(sqlite_url(out / "study.db"), "mnist10").trials) == 1


def test_a_folder_that_is_not_a_tune_folder_is_refused(tmp_path, data_args, capsys):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    status = main(["tune", *data_args, "--trials", "1", "--out", str(tmp_path / "busy")])
    assert status == 1 and "not a tune folder" in capsys.readouterr().err
    assert os.listdir(tmp_path / "busy") == ["notes.txt"]


@pytest.mark.parametrize(("args", "message"), [
    (["--study", "../../../x"], "argument --study: '../../../x' is not a study name"),
    (["--study", "/tmp/elsewhere"], "argument --study: '/tmp/elsewhere' is not a study name"),
    (["--study", ""], "argument --study: '' is not a study name"),
    (["--study", ".."], "is not a study name"),
    (["--seed", "-1"], "argument --seed: must be a whole number in 0..4294967295, got -1"),
    (["--seed", str(2**32)], "argument --seed: must be a whole number in 0..4294967295"),
    (["--timeout", "inf"], "argument --timeout: must be a positive number of seconds up to "
                           "31,536,000 (a year), got inf"),
    (["--timeout", "nan"], "argument --timeout: must be a positive number"),
    (["--timeout", "-5"], "argument --timeout: must be a positive number"),
])
def test_bad_study_seed_and_timeout_are_usage_errors_before_any_work(tmp_path, data_args,
                                                                     capsys, args, message):
    # Before: --study ../../../x wrote outside runs/tune, --seed -1 failed after loading the
    # data without naming the flag, --timeout inf was accepted.
    with pytest.raises(SystemExit) as exit_info:
        main(["tune", *data_args, "--trials", "1", *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "x").exists() and list(tmp_path.iterdir()) == []


def test_the_library_checks_study_seed_and_timeout_too(tmp_path):
    from nnscratch.tune import TuneError, TuneOptions, plan

    for options, message in ((TuneOptions(study="a/b", trials=1), "is not a study name"),
                             (TuneOptions(seed=-1, trials=1), "--seed must be"),
                             (TuneOptions(timeout=float("inf")), "--timeout must be")):
        with pytest.raises(TuneError, match=message):
            plan(options)
    assert plan(TuneOptions(study="wide.v2_1-b", trials=1, out=str(tmp_path / "t"))).study \
        == "wide.v2_1-b"


def test_the_tutorial_recipe_and_zero_trials_are_usage_errors(capsys):
    for args in (["--recipe", "tutorial", "--trials", "1"], ["--trials", "0"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["tune", *args])
        assert exit_info.value.code == 2
    assert "invalid choice: 'tutorial'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# The pruning and parallel measurement (benchmarks/tune_pruning.py), in its quick mode


@pytest.mark.system
def test_the_pruning_benchmark_runs_every_setup_in_quick_mode(tmp_path, data_dir):
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "tune_pruning.py"
    completed = subprocess.run(
        [sys.executable, str(script), "--quick", "--data-dir", str(data_dir), "--no-verify",
         "--out", str(tmp_path)], capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, **ONE_THREAD},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads((tmp_path / "results.json").read_text())
    assert [s["label"] for s in report["setups"]] == [
        "1 worker, no pruning", "1 worker, median pruning", "2 workers, median pruning"]
    for setup in report["setups"]:
        assert setup["complete"] + setup["pruned"] == 2 and setup["failed"] == 0
        assert 0 < setup["best"] <= 1 and setup["curve"][-1][1] == setup["best"]
    assert report["parallel_efficiency"] > 0
    assert "| 2 workers, median pruning |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "best_vs_time.png").stat().st_size > 0


def test_a_cnn_recipe_can_be_tuned(tmp_path, data_args, capsys):
    space = space_file(tmp_path, """\
[space]
learning_rate = { choices = [1e-3, 3e-3] }
conv_layers = [2]
layers = [8]
epochs = 1
batch_size = 64
""")
    out = tmp_path / "t"
    status = main(["tune", "--recipe", "mnist-cnn", *data_args, "--space", str(space),
                   "--trials", "2", "--no-plots", "--out", str(out), "--quiet"])
    assert status == 0, capsys.readouterr().err
    assert states(load(sqlite_url(out / "study.db"), "mnist-cnn")).count("COMPLETE") == 2
    from nnscratch.serialization import load_model

    best = load_model(out / "best" / "model.npz")
    assert [type(layer).__name__ for layer in best.model.layers][:2] == ["Reshape", "Conv2D"]
    assert best.metadata["config"]["conv_layers"] == [2]
