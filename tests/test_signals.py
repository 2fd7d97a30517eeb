"""Signals as a flag checked at safe points (``nnscratch._signals``), in this process.

Each test sends itself a real SIGTERM or SIGINT (``os.kill``) at the moment that once went
wrong: inside a weakref callback, where a raised exception is dropped; in the middle of a run
folder's commit, where it left a half-deleted old run. The whole-program versions (``python
-m nnscratch train`` signalled at many moments) are in ``test_transaction.py``.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import time
import weakref
from pathlib import Path

import pytest

from _tamper import snapshot
from nnscratch import _signals
from nnscratch.runs import _transaction
from nnscratch.runs._transaction import reserve_folder

pytestmark = [pytest.mark.system,
              pytest.mark.skipif(os.name != "posix", reason="POSIX signals")]


def _signal_inside_a_weakref_callback(signum: int) -> None:
    """Deliver ``signum`` while a weakref callback runs, as a garbage collection may."""
    class Key:
        pass

    def callback(_reference: object) -> None:
        os.kill(os.getpid(), signum)
        for _ in range(1000):  # bytecodes: the handler runs here, inside the callback
            pass

    key = Key()
    reference = weakref.ref(key, callback)
    del key
    gc.collect()
    assert reference() is None


def test_a_signal_raised_inside_a_weakref_callback_is_not_lost(monkeypatch):
    dropped: list[type[BaseException]] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda what: dropped.append(what.exc_type))
    swallowed = []
    with _signals.handling():
        with pytest.raises(_signals.Interrupted) as caught:
            with _signals.interruptible():
                _signal_inside_a_weakref_callback(signal.SIGTERM)
                swallowed.append(True)
                # Python printed "Exception ignored" and ran on; the retry timer raises again.
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    time.sleep(0.01)
    assert caught.value.exit_status == 143
    assert swallowed == [True]  # the first raise was dropped by Python...
    assert dropped == []  # ...and not reported as "Exception ignored": it was raised again


def test_outside_an_interruptible_block_a_signal_only_sets_the_flag(monkeypatch):
    dropped: list[type[BaseException]] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda what: dropped.append(what.exc_type))
    with _signals.handling():
        _signal_inside_a_weakref_callback(signal.SIGINT)
        assert _signals.pending() == signal.SIGINT  # remembered, nothing raised
        with pytest.raises(_signals.Interrupted) as caught:
            _signals.check()
    assert caught.value.exit_status == 130
    assert dropped == []


def test_a_signal_before_an_interruptible_block_is_raised_when_it_begins():
    with _signals.handling():
        os.kill(os.getpid(), signal.SIGTERM)
        assert _signals.pending() == signal.SIGTERM
        with pytest.raises(_signals.Interrupted), _signals.interruptible():
            pytest.fail("the block must not run")  # pragma: no cover


def test_a_second_signal_is_only_remembered_and_the_first_one_decides():
    with _signals.handling(), _signals.deferred():
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        assert _signals.pending() == signal.SIGINT
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handlers are given back


def _old_run(folder: Path, n_files: int = 300) -> None:
    folder.mkdir()
    for i in range(n_files):
        (folder / f"old-{i:03d}.bin").write_bytes(bytes([i % 256]) * 512)


@pytest.mark.parametrize("moment", ["rename", "fsync", "delete"])
def test_a_signal_during_the_commit_saves_the_new_run_whole_and_says_so(tmp_path, monkeypatch,
                                                                        moment):
    out = tmp_path / "run"
    _old_run(out)
    real_rename, real_fsync, real_rmtree = os.rename, _transaction._fsync_directory, \
        _transaction.shutil.rmtree

    def rename(source, target):
        if moment == "rename" and ".tmp-" in str(source):
            os.kill(os.getpid(), signal.SIGTERM)  # between the two renames
        real_rename(source, target)

    def fsync(path):
        if moment == "fsync":
            os.kill(os.getpid(), signal.SIGTERM)
        real_fsync(path)

    def rmtree(path, *args, **kwargs):
        if moment == "delete" and ".old-" in str(path):
            os.kill(os.getpid(), signal.SIGTERM)
        real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(_transaction.os, "rename", rename)
    monkeypatch.setattr(_transaction, "_fsync_directory", fsync)
    monkeypatch.setattr(_transaction.shutil, "rmtree", rmtree)
    with _signals.handling():
        with pytest.raises(_signals.Interrupted) as caught, \
                reserve_folder(out, overwrite=True) as reservation:
            reservation.build(lambda folder: (folder / "new.txt").write_text("new"))
        said = caught.value.describe()
    assert said == f"terminated (SIGTERM); the new run was saved in {out}"
    assert snapshot(tmp_path) == {"run": "<dir>", "run/new.txt": b"new"}  # old deleted whole


def test_a_signal_while_writing_leaves_the_old_run_byte_for_byte(tmp_path):
    out = tmp_path / "run"
    _old_run(out)
    before = snapshot(tmp_path)

    def write(folder: Path) -> None:
        (folder / "new.txt").write_text("new")
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):
            pass
        pytest.fail("writing goes on after the signal")  # pragma: no cover

    with _signals.handling():
        with pytest.raises(_signals.Interrupted) as caught, \
                reserve_folder(out, overwrite=True) as reservation:
            reservation.build(write)
        assert caught.value.describe() == "terminated (SIGTERM); nothing was saved"
    assert snapshot(tmp_path) == before


def test_an_old_run_a_kill_left_aside_is_put_back_not_deleted(tmp_path):
    """Killed (SIGKILL) between renaming the old run aside and the new one in."""
    out = tmp_path / "run"
    _old_run(out, n_files=3)
    before = snapshot(tmp_path)
    os.rename(out, tmp_path / ".run.old-123-abcd")
    (tmp_path / ".run.tmp-123-ef01").mkdir()
    with reserve_folder(out, overwrite=False):
        pass
    assert snapshot(tmp_path) == before
