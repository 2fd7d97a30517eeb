"""Tests for nnscratch._files: regular files only, and OS errors in one line with the fix.

Each errno is produced for real where an unprivileged test can make it (a missing file, a
symbolic link loop, a file where a folder is expected, a folder where a file is expected, a
name too long, /dev/full for a full disk); the others (permission denied as root, a
read-only file system, a quota) are raised as the operating system raises them, with their
errno, from a patched call or as a constructed ``OSError``.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from _tamper import error_in_child, snapshot
from nnscratch import _atomic
from nnscratch._atomic import atomic_write
from nnscratch._files import (
    NotRegularFileError,
    explain_decode_error,
    explain_os_error,
    open_regular_file,
    translate_os_error,
    user_file_errors,
)


def raised(action) -> OSError:
    try:
        action()
    except OSError as error:
        return error
    raise AssertionError("no OSError was raised")


def _missing(tmp: Path) -> tuple[Path, OSError]:
    path = tmp / "missing.npz"
    return path, raised(lambda: open(path, "rb"))


def _dangling_link(tmp: Path) -> tuple[Path, OSError]:
    path = tmp / "link.npz"
    path.symlink_to(tmp / "gone.npz")
    return path, raised(lambda: open(path, "rb"))


def _symlink_loop(tmp: Path) -> tuple[Path, OSError]:
    path = tmp / "loop.npz"
    path.symlink_to(path)
    return path, raised(lambda: open(path, "rb"))


def _file_as_folder(tmp: Path) -> tuple[Path, OSError]:
    (tmp / "file").write_text("x")
    path = tmp / "file" / "model.npz"
    return path, raised(lambda: open(path, "rb"))


def _folder_as_file(tmp: Path) -> tuple[Path, OSError]:
    return tmp, raised(lambda: open(tmp, "rb"))


def _name_too_long(tmp: Path) -> tuple[Path, OSError]:
    path = tmp / ("x" * 300)
    return path, raised(lambda: open(path, "rb"))


def _already_exists(tmp: Path) -> tuple[Path, OSError]:
    return tmp, raised(lambda: os.mkdir(tmp))


def _full_disk(tmp: Path) -> tuple[Path, OSError]:
    if not os.path.exists("/dev/full"):
        pytest.skip("/dev/full is Linux's; the synthetic ENOSPC case below covers the message")

    def write() -> None:
        with open("/dev/full", "wb") as handle:
            handle.write(b"x")

    return Path("/dev/full"), raised(write)


def _synthetic(code: int):
    def make(tmp: Path) -> tuple[Path, OSError]:
        path = tmp / "runs" / "model.npz"
        return path, OSError(code, os.strerror(code), str(path))
    return make


#: errno case -> (how to make it, action, what the message must say besides the path).
CASES = {
    "ENOENT": (_missing, "read", ["does not exist; check the path"]),
    "ENOENT dangling link": (_dangling_link, "read",
                             ["is a symbolic link to", "gone.npz, which does not exist",
                              "fix the link"]),
    "ELOOP": (_symlink_loop, "read", ["symbolic link that loops", "fix or remove the link"]),
    "ENOTDIR": (_file_as_folder, "read", ["part of this path is a file where a folder is needed",
                                          "check the path"]),
    "EISDIR": (_folder_as_file, "read", ["is a folder, but a file is needed",
                                         "give the path of a file"]),
    "ENAMETOOLONG": (_name_too_long, "write", ["too long for the file system",
                                               "choose a shorter name"]),
    "EEXIST": (_already_exists, "create", ["already exists", "choose another name"]),
    "ENOSPC /dev/full": (_full_disk, "write", ["no space left on the disk", "free some space"]),
    "EACCES": (_synthetic(errno.EACCES), "write",
               ["permission denied: cannot write it", "Check its permissions (ls -ld"]),
    "EPERM": (_synthetic(errno.EPERM), "read", ["permission denied: cannot read it"]),
    "ENOSPC": (_synthetic(errno.ENOSPC), "write", ["no space left on the disk",
                                                   "choose a folder on another disk"]),
    "EDQUOT": (_synthetic(errno.EDQUOT), "write", ["disk quota exceeded", "free some space"]),
    "EROFS": (_synthetic(errno.EROFS), "write", ["is on a read-only file system",
                                                 "choose a folder on a writable disk"]),
    "EIO": (_synthetic(errno.EIO), "read", ["input/output error", "copy the file"]),
    "EFBIG": (_synthetic(errno.EFBIG), "write", ["larger than the file system allows"]),
    "ENOENT parent": (_synthetic(errno.ENOENT), "write",
                      ["the folder it goes in", "runs) does not exist", "create it first"]),
    "EBUSY (any other)": (_synthetic(errno.EBUSY), "read",
                          ["cannot read it: Device or resource busy."]),
}


@pytest.mark.parametrize("case", CASES)
def test_every_os_error_becomes_one_line_naming_the_path_and_the_fix(tmp_path, case):
    make, action, phrases = CASES[case]
    path, error = make(tmp_path)
    message = explain_os_error(error, path, action=action)
    shown = str(path) if len(str(path)) <= 120 else str(path)[:119] + "…"
    assert message.startswith(shown), message
    for phrase in phrases:
        assert phrase in message, message
    assert "\n" not in message and "[Errno" not in message
    if case == "ELOOP":
        assert "does not exist" not in message


@pytest.mark.parametrize("case", CASES)
def test_translated_errors_keep_their_class_and_errno(tmp_path, case):
    make, action, _ = CASES[case]
    path, error = make(tmp_path)
    translated = translate_os_error(error, path, action=action)
    assert type(translated) is type(OSError(error.errno, ""))  # FileNotFoundError stays one
    assert translated.errno == error.errno
    assert str(translated) == explain_os_error(error, path, action=action)
    # Translating twice changes nothing: the message is no longer the system's.
    assert translate_os_error(translated, "elsewhere") is translated


def test_our_own_errors_pass_through():
    mine = FileNotFoundError("Model file x does not exist; check the path.")
    assert translate_os_error(mine) is mine
    assert explain_os_error(mine) == str(mine)


def test_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes("[train]\nnote = 'caf\u00e9'\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"config\.toml is not UTF-8 text \(byte 0xe9 at "
                                         r"position 19 is not valid UTF-8\); save it with the "
                                         r"UTF-8 encoding"), user_file_errors(path):
        path.read_text(encoding="utf-8")
    error = raised_decode(path)
    assert explain_decode_error(error, path).startswith(str(path))


def raised_decode(path: Path) -> UnicodeDecodeError:
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        return error
    raise AssertionError("decoded")


def test_user_file_errors_translates_inside_the_block(tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(OSError, match="symbolic link that loops") as caught, \
            user_file_errors(loop):
        loop.read_text()
    assert caught.value.errno == errno.ELOOP


# --- only regular files are opened ----------------------------------------------------------


def test_open_regular_file_reads_a_file(tmp_path):
    (tmp_path / "a").write_bytes(b"abc")
    with open_regular_file(tmp_path / "a") as handle:
        assert handle.read() == b"abc"


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError, match=r"is a folder, not a picture; give the path of "
                                                 r"a picture inside it"):
        open_regular_file(tmp_path, what="a picture")


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
@pytest.mark.parametrize("device", ["/dev/null", "/dev/zero", "/dev/urandom"])
def test_a_device_is_refused(device):
    with pytest.raises(NotRegularFileError, match=f"{device} is a character device, not a "
                                                  "model file.*Save the data to a file"):
        open_regular_file(device, what="a model file")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")
def test_a_named_pipe_without_a_writer_is_refused_at_once(tmp_path):
    """Run in a child with a timeout: opening the pipe for reading would block forever."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    refusal = error_in_child("__import__('nnscratch._files')._files.open_regular_file(path)",
                             fifo)
    assert refusal.startswith(f"NotRegularFileError: {fifo} is a named pipe (FIFO), not a "
                              "file"), refusal


def test_missing_files_and_loops_are_translated(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing does not exist; check the path"):
        open_regular_file(tmp_path / "missing")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(OSError, match="symbolic link that loops") as caught:
        open_regular_file(tmp_path / "loop")
    assert caught.value.errno == errno.ELOOP


# --- atomic writes: a failed write names the destination and leaves everything as it was ---


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT])
def test_a_failed_atomic_write_names_the_destination_and_keeps_the_old_file(
        tmp_path, monkeypatch, code):
    target = tmp_path / "model.npz"
    target.write_bytes(b"the previous model")
    before = snapshot(tmp_path)

    def fail(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(_atomic.os, "fsync", fail)
    with pytest.raises(OSError, match=r"model\.npz") as caught, atomic_write(target) as handle:
        handle.write(b"the new model")
    assert caught.value.errno == code
    assert ".tmp" not in str(caught.value) and "[Errno" not in str(caught.value)
    assert snapshot(tmp_path) == before  # byte for byte, and no temporary file left


def test_an_atomic_write_over_a_folder_names_it(tmp_path):
    (tmp_path / "model.npz").mkdir()
    before = snapshot(tmp_path)
    with pytest.raises(IsADirectoryError, match=r"model\.npz is a folder, but a file is needed"), \
            atomic_write(tmp_path / "model.npz") as handle:
        handle.write(b"x")
    assert snapshot(tmp_path) == before


def test_an_atomic_write_into_a_missing_folder_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"the folder it goes in \(.*nowhere\) does not "
                                                r"exist; create it first"):
        with atomic_write(tmp_path / "nowhere" / "model.npz") as handle:
            handle.write(b"x")
