"""The user's files, in words: only regular files are opened, and OS errors become one line.

Every file nnscratch reads on a user's behalf (model files, pictures, arrays, IDX data, config
files, a run's metrics) is opened with :func:`open_regular_file`, which refuses folders, named
pipes (FIFOs), devices and sockets *before* reading a byte: a pipe with no writer would block
forever and a device like ``/dev/zero`` never ends. :func:`explain_os_error` turns an
``OSError`` — permission denied, a folder where a file is expected, a file where a folder is
expected, a symbolic link loop, a name too long, a full disk, a read-only file system — into a
line that names the path and says what to do; :func:`explain_decode_error` does the same for a
text file that is not UTF-8. :func:`translate_os_error` and :func:`user_file_errors` wrap
those messages in an exception of the same class, so ``except FileNotFoundError`` still
works while the message becomes useful.

What it leaves out: retrying, and Windows-specific error codes beyond those ``errno`` shares.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterator
from typing import BinaryIO

__all__ = [
    "NotRegularFileError",
    "explain_decode_error",
    "explain_os_error",
    "open_regular_file",
    "translate_os_error",
    "user_file_errors",
]

#: What a non-regular file is, by the ``stat`` test that recognises it.
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_MAX_SHOWN = 120  # characters of a very long path shown in a message


class NotRegularFileError(OSError):
    """A path names a named pipe, a device or a socket where a regular file is needed."""


def _show(path: str | os.PathLike[str] | bytes | None) -> str:
    text = os.fsdecode(path) if path is not None else "the file"
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def _from_the_os(error: OSError) -> bool:
    """Whether the error came from the operating system: both an errno and its description."""
    return error.errno is not None and error.strerror is not None


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"  # pragma: no cover - doors, event ports...


def explain_os_error(
    error: OSError, path: str | os.PathLike[str] | None = None, *, action: str = "read"
) -> str:
    """One line that names the path, what the operating system refused and the fix.

    Parameters
    ----------
    error : OSError
        As raised by ``open``, ``os.stat``, ``os.mkdir``, ``os.replace``, a write...
    path : str or PathLike, optional
        The path the user gave; defaults to ``error.filename``.
    action : {"read", "write", "create"}, default="read"
        What was being done, for the messages that depend on it.

    Returns
    -------
    str
        E.g. ``"runs/a: permission denied: cannot write there. Check its permissions
        (ls -ld runs/a) or choose another place."``. An error that is not the operating
        system's own (no ``errno`` and ``strerror``: nnscratch's, or already explained) keeps
        its message.
    """
    if not _from_the_os(error):
        return str(error)
    shown = _show(path if path is not None else error.filename)
    if error.errno == errno.ENOENT:
        return _explain_missing(error, path, shown, action)
    explain = _EXPLANATIONS.get(error.errno)  # type: ignore[arg-type]
    if explain is not None:
        return explain(shown, action)
    reason = error.strerror or str(error)
    return f"{shown}: cannot {action} it: {reason}."


def _explain_missing(
    error: OSError, path: str | os.PathLike[str] | None, shown: str, action: str
) -> str:
    """``ENOENT``: the file (for reading) or the folder it goes in (for writing) is missing."""
    if action != "read":
        parent = os.path.dirname(os.fspath(path if path is not None else error.filename or ""))
        return (f"{shown}: the folder it goes in ({_show(parent or '.')}) does not exist; "
                "create it first or check the path.")
    with contextlib.suppress(OSError):
        if path is not None and os.path.islink(path):
            return (f"{shown} is a symbolic link to {os.readlink(path)}, which does not "
                    "exist; fix the link or give the file itself.")
    return f"{shown} does not exist; check the path."


def _no_space(what: str) -> Callable[[str, str], str]:
    return lambda shown, action: (f"{shown}: {what}, so it cannot be written; free some space "
                                  "or choose a folder on another disk.")


def _permission_denied(shown: str, action: str) -> str:
    return (f"{shown}: permission denied: cannot {action} it. Check its permissions "
            f"(ls -ld {shown}) or choose a place you can {action}.")


#: One line per operating-system error code: (path as shown, action) -> message.
_EXPLANATIONS: dict[int, Callable[[str, str], str]] = {
    errno.EACCES: _permission_denied,
    errno.EPERM: _permission_denied,
    errno.EISDIR: lambda shown, action: (
        f"{shown} is a folder, but a file is needed here; give the path of a file."),
    errno.ENOTDIR: lambda shown, action: (
        f"{shown}: part of this path is a file where a folder is needed (or the path ends in "
        "'/'); check the path."),
    errno.ELOOP: lambda shown, action: (
        f"{shown} is a symbolic link that loops back on itself (or a chain of too many links), "
        "so it leads to no file; fix or remove the link (ls -l shows where it points)."),
    errno.ENAMETOOLONG: lambda shown, action: (
        f"{shown}: the path is too long for the file system (at most 255 bytes per name); "
        "choose a shorter name."),
    errno.ENOSPC: _no_space("no space left on the disk"),
    errno.EROFS: lambda shown, action: (
        f"{shown} is on a read-only file system, so nothing can be written there; choose a "
        "folder on a writable disk."),
    errno.EEXIST: lambda shown, action: (
        f"{shown} already exists; choose another name or remove it first."),
    errno.EIO: lambda shown, action: (
        f"{shown}: input/output error: the disk or network file system failed while reading or "
        "writing it; copy the file to a local disk and try again."),
    errno.EFBIG: lambda shown, action: (
        f"{shown}: the file would be larger than the file system allows; choose another disk."),
}
if hasattr(errno, "EDQUOT"):  # not on Windows
    _EXPLANATIONS[errno.EDQUOT] = _no_space("disk quota exceeded")


def translate_os_error(
    error: OSError, path: str | os.PathLike[str] | None = None, *, action: str = "read"
) -> OSError:
    """The same kind of error (``FileNotFoundError``, ``PermissionError``...) with the message
    of :func:`explain_os_error`; its ``errno`` is kept. Errors that are not the operating
    system's own (nnscratch's, or already translated) pass through unchanged."""
    if not _from_the_os(error):
        return error
    kind = type(OSError(error.errno, ""))  # the built-in subclass for this errno
    translated = kind(explain_os_error(error, path, action=action))
    translated.errno = error.errno
    return translated


def explain_decode_error(error: UnicodeDecodeError, path: str | os.PathLike[str]) -> str:
    """One line for a text file that is not UTF-8: where, and how to fix it."""
    byte = error.object[error.start] if error.start < len(error.object) else None
    where = f"byte 0x{byte:02x} at position {error.start}" if byte is not None else "its end"
    return (f"{_show(path)} is not UTF-8 text ({where} is not valid UTF-8); save it with the "
            "UTF-8 encoding (most editors offer it under 'Save as').")


@contextlib.contextmanager
def user_file_errors(path: str | os.PathLike[str], *, action: str = "read") -> Iterator[None]:
    """Translate the ``OSError`` and ``UnicodeDecodeError`` raised inside the block.

    ``OSError`` becomes :func:`translate_os_error`'s; ``UnicodeDecodeError`` becomes a
    ``ValueError`` with :func:`explain_decode_error`'s message.
    """
    try:
        yield
    except UnicodeDecodeError as error:
        raise ValueError(explain_decode_error(error, path)) from None
    except OSError as error:
        raise translate_os_error(error, path, action=action) from None


def open_regular_file(path: str | os.PathLike[str], *, what: str = "a file") -> BinaryIO:
    """Open a regular file for binary reading; refuse anything else before it can block.

    Parameters
    ----------
    path : str or PathLike
    what : str, default="a file"
        What the file should be ("a model file", "a picture"...), for the messages.

    Returns
    -------
    file object
        Open in ``"rb"`` mode; the caller closes it (``with open_regular_file(...) as f``).

    Raises
    ------
    IsADirectoryError
        If `path` is a folder.
    NotRegularFileError
        If `path` is a named pipe, a device or a socket.
    OSError
        Translated by :func:`translate_os_error` (``FileNotFoundError``, ``PermissionError``,
        a symbolic link loop...).

    Notes
    -----
    The file is opened with ``O_NONBLOCK``, so even a pipe swapped in after the first
    ``stat`` cannot block the ``open``; the type is checked again on the open descriptor.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    with user_file_errors(path):
        mode = os.stat(path).st_mode
    _check_regular(path, mode, what)
    with user_file_errors(path):
        fd = os.open(path, flags)
    try:
        _check_regular(path, os.fstat(fd).st_mode, what)
        if os.name == "posix":  # reads of the regular file need not be non-blocking
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _check_regular(path: str | os.PathLike[str], mode: int, what: str) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        error = IsADirectoryError(
            f"{_show(path)} is a folder, not {what}; give the path of {what} inside it."
        )
        error.errno = errno.EISDIR
        raise error
    raise NotRegularFileError(
        f"{_show(path)} is {_kind(mode)}, not {what}: nnscratch reads only regular files (a "
        f"pipe or a device may never end). Save the data to a file and give that file."
    )
