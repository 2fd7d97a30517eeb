"""Atomic file writes: a file is either the old one or the complete new one, never half of each.

Everything nnscratch saves (IDX files, downloaded MNIST, model files, caches) goes through
:func:`atomic_write`. It writes into a temporary file in the destination's own directory (so the
final rename never crosses a file system), flushes and ``fsync``s it, then ``os.replace``s it over
the destination, which POSIX and Windows both perform as a single step. If anything goes wrong
before that, including ``KeyboardInterrupt``, the temporary file is deleted and the destination is
left as it was; an ``OSError`` (a full disk, say) is re-raised with a message naming the
destination rather than the temporary file.

What it leaves out: locking. Two processes writing the same path at once each produce a complete
file and the last rename wins, which is all a cache needs. It also does not create missing parent
directories; callers decide where files may go.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from nnscratch._files import translate_os_error, user_file_errors

__all__ = ["atomic_write"]

_MODES = {"wb": "xb", "w": "x"}


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file that replaces `path` only if the ``with`` block succeeds.

    Parameters
    ----------
    path : str or os.PathLike
        The file to create or replace. Its directory must exist.
    mode : {"wb", "w"}, default="wb"
        Binary or text (UTF-8) writing.

    Yields
    ------
    file : file object
        Open on a temporary file named ``.<name>.<random>.tmp`` next to `path`.

    Raises
    ------
    ValueError
        If `mode` is not ``"wb"`` or ``"w"``.
    FileNotFoundError
        If the directory of `path` does not exist.
    OSError
        Any other error of the operating system (permission denied, a full disk, a read-only
        file system, a folder at `path`...), of the same class, with a message that names
        `path` and the fix (see :mod:`nnscratch._files`).

    Notes
    -----
    On success the file is flushed, ``fsync``-ed and renamed over `path` with ``os.replace``;
    on POSIX the directory is ``fsync``-ed too, so the rename itself survives a power cut. On
    any exception (``BaseException``, so ``KeyboardInterrupt`` included) the temporary file is
    removed and the exception propagates. The temporary file is created with the process umask
    applied, like a plain ``open``, so the final file gets ordinary permissions.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "weights.bin"
    >>> with atomic_write(target) as f:
    ...     _ = f.write(b"\\x00\\x01")
    >>> target.read_bytes()
    b'\\x00\\x01'
    """
    if mode not in _MODES:
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', got {mode!r}.")
    path = Path(path)
    with user_file_errors(path, action="write"):
        tmp, file = _open_temporary(path, _MODES[mode])
    try:
        with file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(error, OSError):  # a full disk, a folder in the way...: name `path`
            raise translate_os_error(error, path, action="write") from None
        raise
    _fsync_directory(path.parent)


def _open_temporary(path: Path, mode: str) -> tuple[Path, IO[Any]]:
    """Create a new, uniquely named file beside `path` (exclusive create, so never clobbers)."""
    encoding = None if "b" in mode else "utf-8"
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return tmp, open(tmp, mode, encoding=encoding)  # the caller closes it
        except FileExistsError:  # pragma: no cover - 48 random bits make this vanishingly rare
            continue


def _fsync_directory(directory: Path) -> None:
    """Persist a rename on POSIX; other systems (and some file systems) do not support it."""
    if os.name != "posix":  # pragma: no cover
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
