"""atomic_write: the destination is either untouched or completely replaced; no temp files stay."""

from __future__ import annotations

import os
import stat

import pytest

from nnscratch._atomic import atomic_write


def test_creates_file(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_write(target) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_text_mode_is_utf8(tmp_path):
    target = tmp_path / "notes.txt"
    with atomic_write(target, mode="w") as f:
        f.write("α → β\n")
    assert target.read_bytes() == "α → β\n".encode()


def test_nothing_visible_until_the_block_ends(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with atomic_write(target) as f:
        f.write(b"new")
        f.flush()
        assert target.read_bytes() == b"old"
    assert target.read_bytes() == b"new"


@pytest.mark.parametrize("exception", [RuntimeError, KeyboardInterrupt])
def test_exception_mid_write_keeps_old_file_and_leaves_no_temp(tmp_path, exception):
    target = tmp_path / "model.npz"
    target.write_bytes(b"previous contents")
    with pytest.raises(exception), atomic_write(target) as f:
        f.write(b"half of the new con")
        raise exception()
    assert target.read_bytes() == b"previous contents"
    assert os.listdir(tmp_path) == ["model.npz"]


def test_exception_without_previous_file_leaves_nothing(tmp_path):
    with pytest.raises(OSError), atomic_write(tmp_path / "x") as f:
        f.write(b"abc")
        raise OSError("disk full")
    assert os.listdir(tmp_path) == []


def test_failed_replace_removes_temp(tmp_path):
    target = tmp_path / "a_directory"
    target.mkdir()  # os.replace cannot put a file over a directory
    with pytest.raises(OSError), atomic_write(target) as f:
        f.write(b"abc")
    assert os.listdir(tmp_path) == ["a_directory"]


@pytest.mark.skipif(os.name != "posix", reason="umask is POSIX")
def test_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "f") as f:
            f.write(b"")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o644


def test_bad_mode(tmp_path):
    with (
        pytest.raises(ValueError, match="mode must be 'wb' or 'w'"),
        atomic_write(tmp_path / "f", mode="ab"),
    ):
        pass


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_write(tmp_path / "no" / "f"):
        pass
