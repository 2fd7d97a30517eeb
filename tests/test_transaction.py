"""Run folders as transactions: whole or absent, never mixed, never replaced unasked.

The library side calls :func:`nnscratch.runs.write_run` and :mod:`nnscratch.runs._transaction`
directly; the command-line side runs real ``python -m nnscratch train`` processes on a tiny fake
MNIST (``tests/_fake_mnist.py``), sends them real SIGINT and SIGTERM signals while they train
and while they save, and runs two of them into the same ``--out`` at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _fake_mnist import fake_arrays, write_fake_mnist
from _tamper import snapshot
from nnscratch.cli import main
from nnscratch.runs import folder as runs
from nnscratch.runs._transaction import FolderBusyError, FolderExistsError, reserve_folder

ONE_THREAD = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                     "MKL_NUM_THREADS")}
needs_signals = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")

pytestmark = pytest.mark.system  # run once in CI (pyproject.toml)


@pytest.fixture
def data_args(tmp_path) -> list[str]:
    write_fake_mnist(tmp_path / "mnist", fake_arrays())
    return ["--data-dir", str(tmp_path / "mnist"), "--no-verify", "--no-download"]


def _earlier_run(folder: Path) -> None:
    """A run folder from before, with files the new run would replace or leave stale."""
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text('{"test_accuracy": 0.5}\n')
    (folder / "config.toml").write_text("[train]\nseed = 1\n")
    (folder / "roc.png").write_bytes(b"\x89PNG old figure")


def _leftovers(parent: Path, name: str) -> list[str]:
    """Hidden temporary folders and locks of ``name`` left in ``parent``."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


# ---------------------------------------------------------------------------------------------
# The library: write_run and reserve_folder


def _write(folder: Path, files: dict[str, bytes]) -> list[str]:
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return sorted(files)


def test_a_folder_appears_whole_and_the_temporary_one_is_gone(tmp_path):
    out = tmp_path / "runs" / "a"  # the parent is created
    with reserve_folder(out) as reservation:
        assert _leftovers(out.parent, "a") == [".a.lock"]  # locked, nothing else yet
        names = reservation.build(lambda folder: _write(folder, {"x": b"1", "y": b"2"}))
    assert names == ["x", "y"] and sorted(p.name for p in out.iterdir()) == ["x", "y"]
    assert _leftovers(out.parent, "a") == []


@pytest.mark.parametrize("failure", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_a_failed_build_leaves_the_old_folder_byte_for_byte(tmp_path, failure):
    out = tmp_path / "run"
    _earlier_run(out)
    before = snapshot(tmp_path)

    def half_then_fail(folder: Path) -> None:
        (folder / "metrics.json").write_text("{}")
        raise failure

    with pytest.raises(type(failure)), reserve_folder(out, overwrite=True) as reservation:
        reservation.build(half_then_fail)
    assert snapshot(tmp_path) == before


def test_overwrite_swaps_the_whole_folder_so_no_stale_file_survives(tmp_path):
    out = tmp_path / "run"
    _earlier_run(out)
    with reserve_folder(out, overwrite=True) as reservation:
        reservation.build(lambda folder: _write(folder, {"metrics.json": b"{}"}))
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json"]  # old roc.png gone
    assert _leftovers(tmp_path, "run") == []


@pytest.mark.parametrize(
    ("make", "overwrite", "message"),
    [
        (_earlier_run, False, "already exists and holds files; nothing was changed. Give --out "
                              "a new folder, or add --overwrite"),
        (lambda p: p.write_text("notes"), False, "exists and is not a folder"),
        (lambda p: p.write_text("notes"), True, "exists and is not a folder"),
    ],
)
def test_a_taken_path_is_refused_before_anything_is_created(tmp_path, make, overwrite,
                                                            message):
    out = tmp_path / "run"
    make(out)
    before = snapshot(tmp_path)
    with pytest.raises(FolderExistsError, match=message), reserve_folder(out,
                                                                         overwrite=overwrite):
        pass  # pragma: no cover
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("given", [".", "..", "/"])
def test_the_current_folder_or_one_above_is_never_a_run_folder(tmp_path, monkeypatch, given):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FolderExistsError, match="is not a new folder's name"), \
            reserve_folder(given, overwrite=True):
        pass  # pragma: no cover


def test_an_empty_existing_folder_is_used(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with reserve_folder(out) as reservation:
        reservation.build(lambda folder: _write(folder, {"x": b"1"}))
    assert (out / "x").read_bytes() == b"1"


def test_a_second_writer_in_another_process_is_refused_and_a_dead_ones_lock_is_not(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom nnscratch.runs._transaction import reserve_folder\n"
         f"with reserve_folder({str(out)!r}):\n    print('held', flush=True)\n"
         "    time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusyError, match=rf"being written by another nnscratch "
                                                  rf"\(process {holder.pid}\)"):
            with reserve_folder(out):
                pass  # pragma: no cover
    finally:
        holder.kill()  # no cleanup at all: the lock file stays, but its lock dies with it
        holder.wait()
    assert (tmp_path / ".run.lock").exists()
    with reserve_folder(out) as reservation:  # taken over at once, not blocked forever
        reservation.build(lambda folder: _write(folder, {"x": b"1"}))
    assert not (tmp_path / ".run.lock").exists()


def test_a_killed_writers_temporary_folder_is_removed_by_the_next_writer(tmp_path):
    stale = tmp_path / ".run.tmp-99999-abcd1234"
    stale.mkdir()
    (stale / "metrics.json").write_text("{}")
    with reserve_folder(tmp_path / "run") as reservation:
        reservation.build(lambda folder: _write(folder, {"x": b"1"}))
    assert _leftovers(tmp_path, "run") == []


def test_write_run_refuses_an_existing_run_and_overwrites_only_when_asked(tmp_path, rng):
    from test_runs import _run

    run, out = _run(tmp_path, rng, "tutorial")
    _earlier_run(out)
    before = snapshot(tmp_path)
    with pytest.raises(FolderExistsError, match="--overwrite"):
        runs.write_run(out, run, plots=False)
    assert snapshot(tmp_path) == before
    written = runs.write_run(out, run, plots=False, overwrite=True)
    assert sorted(p.name for p in written) == sorted(runs.RUN_FILES)
    assert sorted(p.name for p in out.iterdir()) == sorted(runs.RUN_FILES)  # no stale roc.png
    config = (out / "config.toml").read_text()
    assert f"--config {out / 'config.toml'}" in config and ".tmp-" not in config
    assert runs.read_run(out).settings == run.settings


# ---------------------------------------------------------------------------------------------
# The command line: refused before work


def test_train_refuses_an_existing_out_before_loading_data(tmp_path, capsys):
    out = tmp_path / "run"
    _earlier_run(out)
    before = snapshot(tmp_path)
    # No data anywhere: had train loaded data first, it would fail on that instead.
    argv = ["train", "--out", str(out), "--data-dir", str(tmp_path / "no-data"),
            "--no-download", "--quiet"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"{out} already exists and holds files" in err and "--overwrite" in err
    assert snapshot(tmp_path) == before


def test_train_overwrite_replaces_the_run_whole(tmp_path, data_args, capsys):
    out = tmp_path / "run"
    _earlier_run(out)
    argv = ["train", "--iterations", "2", "--no-plots", "--quiet", "--out", str(out),
            *data_args]
    assert main([*argv, "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(runs.RUN_FILES)
    assert _leftovers(tmp_path, "run") == []


def test_default_folders_never_collide(tmp_path, data_args, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runs, "datetime", _FrozenClock)  # every run in the same second
    argv = ["train", "--iterations", "1", "--no-plots", "--quiet", *data_args]
    assert main(argv) == 0 and main(argv) == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
        "20261129-120000-tutorial", "20261129-120000-tutorial-2"]


class _FrozenClock:
    @staticmethod
    def now() -> object:
        import datetime

        return datetime.datetime(2026, 11, 29, 12, 0, 0)


# ---------------------------------------------------------------------------------------------
# The command line: real processes, real signals


def _start(tmp_path: Path, data_args: list[str], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nnscratch", "train", *data_args, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, **ONE_THREAD, "MPLBACKEND": "Agg"},
    )


def _wait_for(test, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")  # pragma: no cover
        time.sleep(0.005)


LONG_TRAINING = ("--iterations", "10000000", "--log-every", "1000000", "--no-plots")


@needs_signals
@pytest.mark.parametrize(("signum", "status", "said"),
                         [(signal.SIGINT, 130, "interrupted"),
                          (signal.SIGTERM, 143, "terminated")])
def test_a_signal_during_training_leaves_nothing(tmp_path, data_args, signum, status, said):
    process = _start(tmp_path, data_args, *LONG_TRAINING, "--out", "run")
    try:
        assert process.stdout.readline().startswith("nnscratch train: recipe")  # training now
        time.sleep(0.2)
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == status, err
    assert f"nnscratch: {said}" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists() and _leftovers(tmp_path, "run") == []


@needs_signals
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_saving_over_a_run_leaves_the_old_run_byte_for_byte(
        tmp_path, data_args, signum, status):
    out = tmp_path / "run"
    _earlier_run(out)
    before = snapshot(tmp_path)
    # Plots make saving take a while; the temporary folder's appearance says saving began.
    process = _start(tmp_path, data_args, "--iterations", "1", "--quiet", "--out", "run",
                     "--overwrite")
    try:
        _wait_for(lambda: any(n.startswith(".run.tmp-") for n in os.listdir(tmp_path)))
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == status, err
    assert snapshot(tmp_path) == before


def test_two_trainings_into_one_folder_one_wins_the_other_refuses(tmp_path, data_args):
    """Started together, with different seeds: one exits 0, the other 1 with a clear message,
    and the folder is entirely the winner's (its config, metrics and model agree)."""
    processes = [
        _start(tmp_path, data_args, "--iterations", "1", "--no-plots", "--quiet", "--out",
               "run", "--seed", str(seed))
        for seed in (1, 2)
    ]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in processes]
    for p in processes:
        p.stdout.close()
        p.stderr.close()
    statuses = sorted(status for status, _ in results)
    assert statuses == [0, 1], results
    loser = next(err for status, err in results if status == 1)
    assert ("is being written by another nnscratch" in loser
            or "already exists and holds files" in loser), loser
    folder = runs.read_run(tmp_path / "run")
    winner_seed = folder.settings["seed"]
    assert folder.saved.metadata["config"]["seed"] == winner_seed
    assert folder.saved.metadata["training_data_sha256"] == \
        folder.provenance["training_data_sha256"]
    assert _leftovers(tmp_path, "run") == []


@needs_signals
def test_a_second_training_is_refused_while_the_first_holds_the_folder(tmp_path, data_args):
    first = _start(tmp_path, data_args, *LONG_TRAINING, "--out", "run")
    try:
        assert first.stdout.readline().startswith("nnscratch train: recipe")
        second = subprocess.run(
            [sys.executable, "-m", "nnscratch", "train", *data_args, "--out", "run",
             "--overwrite"],
            capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False,
            env={**os.environ, **ONE_THREAD},
        )
        assert second.returncode == 1
        assert (f"run is being written by another nnscratch (process {first.pid}); nothing "
                "was changed") in second.stderr
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    finally:
        first.kill()
    assert first.returncode == 143
    assert not (tmp_path / "run").exists() and _leftovers(tmp_path, "run") == []


def test_a_diverging_training_saves_nothing_and_names_the_flag(tmp_path, data_args, capsys):
    argv = ["train", "--learning-rate", "1e308", "--iterations", "50", "--no-plots",
            "--quiet", "--out", str(tmp_path / "run"), *data_args]
    with np.errstate(over="ignore", invalid="ignore"):
        assert main(argv) == 1
    err = capsys.readouterr().err
    assert "at iteration" in err and "Try a lower --learning-rate (now 1e+308)" in err
    assert "Nothing was saved" in err and "clip_norm" not in err and "epoch" not in err
    assert not (tmp_path / "run").exists() and _leftovers(tmp_path, "run") == []


def _big_earlier_run(folder: Path, n_files: int = 400) -> None:
    """An earlier run with many files, so that deleting it takes a while."""
    _earlier_run(folder)
    for i in range(n_files):
        (folder / f"figure-{i:03d}.png").write_bytes(bytes([i % 256]) * 2048)


def _outcome(tmp_path: Path, before: dict, status: int, err: str) -> str:
    """``"old"`` or ``"new"``, after checking the folder is exactly one of them, whole, and
    that the command said which."""
    assert "Traceback" not in err, err
    assert _leftovers(tmp_path, "run") == [], err  # no half-deleted .run.old-
    # -15: killed while Python started or shut down, outside nnscratch's handler: the old run
    # or the whole new one, as below, but nothing said.
    killed = status == -signal.SIGTERM
    if (killed and snapshot(tmp_path) == before) or (
            status == 143 and "terminated (SIGTERM); nothing was saved" in err):
        assert snapshot(tmp_path) == before, err
        return "old"
    assert killed or status == 0 or (
        status == 143 and f"the new run was saved in {Path('run')}" in err), (status, err)
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert set(runs.RUN_FILES) <= set(names), names
    assert not any(n.startswith("figure-") for n in names), names  # none of the old run
    runs.read_run(tmp_path / "run")  # readable, its files agree
    return "new"


@needs_signals
def test_sigterm_at_any_moment_of_an_overwrite_keeps_the_old_run_or_saves_the_new_whole(
        tmp_path, data_args):
    """The issue's hostile user: SIGTERM at many moments of ``train --overwrite``, from the
    start to after the end, and once exactly while the old run is being deleted."""
    out = tmp_path / "run"
    argv = ("--iterations", "3", "--quiet", "--out", "run", "--overwrite")

    def fresh() -> dict:
        if out.exists():
            import shutil

            shutil.rmtree(out)
        _big_earlier_run(out)
        return snapshot(tmp_path)

    fresh()
    started = time.monotonic()
    process = _start(tmp_path, data_args, *argv)
    assert process.wait(timeout=120) == 0, process.stderr.read()
    process.stdout.close()
    process.stderr.close()
    duration = time.monotonic() - started
    seen = []
    for fraction in (*np.linspace(0.05, 1.1, 8), "while deleting"):
        before = fresh()
        process = _start(tmp_path, data_args, *argv)
        try:
            if fraction == "while deleting":
                _wait_for(lambda p=process: p.poll() is not None or any(
                    n.startswith(".run.old-") for n in os.listdir(tmp_path)), timeout=120)
            else:
                time.sleep(float(fraction) * duration)
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=120)
        finally:
            process.kill()
        seen.append(_outcome(tmp_path, before, process.returncode, err))
    assert {"old", "new"} <= set(seen), seen
