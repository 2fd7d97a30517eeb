"""A run folder as a transaction: it appears whole at its final path, or not at all.

:func:`reserve_folder` claims a folder for one writer and :meth:`Reservation.build` builds it:

- **a lock first.** A sibling lock file ``.NAME.lock`` is locked with ``fcntl.flock`` (without
  waiting). The operating system releases the lock when the process ends, however it ends, so
  a crash or ``kill -9`` never leaves a lock that blocks forever; a second writer of the same
  folder is refused at once, naming the first one's process id. Where ``fcntl`` is missing
  (Windows) the lock file is created with ``O_CREAT | O_EXCL`` and holds its owner's pid; a
  lock whose process is gone is taken over.
- **refused before any work.** An existing folder with anything in it is refused unless the
  caller asked to overwrite it; a file at that path is always refused.
- **built aside.** The new folder is written into a hidden temporary sibling
  ``.NAME.tmp-<pid>-<random>`` (same parent, so the final rename never crosses a file system)
  and renamed into place only once complete. With ``overwrite`` the old folder is renamed
  aside, the new one renamed in, and the old one deleted: a reader sees the old folder or the
  new one, never a mix.
- **nothing left behind.** Any exception, ``KeyboardInterrupt`` (Ctrl-C) and the CLI's
  SIGTERM included, removes the temporary folder and leaves the final path as it was.
  Temporary folders left by a killed process are removed by the next writer of that name
  (which holds the lock, so they cannot be anyone else's); an old run that a kill left
  renamed aside with no run at the final path is renamed back instead.
- **a commit that signals cannot split.** Writing into the temporary folder may be
  interrupted at once (:func:`nnscratch._signals.interruptible`); the commit (the old run
  renamed aside, the new one renamed in, the directory ``fsync``-ed, the old one deleted)
  runs with signals deferred (:func:`nnscratch._signals.deferred`). A signal that came
  before it is raised just before it (the old run stays byte for byte); one that came during
  it is raised just after it, once the new run is in place and the old one deleted whole,
  and the command says that the new run was saved.

Reservations are re-entrant within a process: ``nnscratch train`` reserves its folder before
loading data, and :func:`nnscratch.runs.write_run` reserving the same folder again reuses that
reservation.

What it leaves out: waiting for a busy folder, and locking on network file systems whose
``flock`` is not shared between machines.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from nnscratch import _signals
from nnscratch._atomic import _fsync_directory
from nnscratch._files import user_file_errors

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["FolderBusyError", "FolderExistsError", "Reservation", "check_free", "reserve_folder",
           "reserve_new_folder"]

T = TypeVar("T")


class FolderExistsError(FileExistsError):
    """The folder already holds files and overwriting was not asked for."""


class FolderBusyError(OSError):
    """Another process is writing the same folder."""


def _lock_path(folder: Path) -> Path:
    return folder.with_name(f".{folder.name}.lock")


def check_free(folder: Path, *, overwrite: bool) -> None:
    """Raise unless a run may be written at ``folder``.

    Raises
    ------
    FolderExistsError
        If ``folder`` is a file or a link, or a folder with files in it and ``overwrite`` is
        false.
    OSError
        If the path cannot be looked at (a file where a folder is needed, permission denied,
        a link loop), with a message naming it and the fix.
    """
    if Path(os.path.normpath(folder)).name in ("", ".", ".."):
        raise FolderExistsError(
            f"{folder} is not a new folder's name (a run folder is replaced whole, so it cannot "
            "be the current folder or one above it); give --out a name such as runs/mine."
        )
    try:
        with user_file_errors(folder, action="write"):
            mode = os.lstat(folder).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise FolderExistsError(f"{folder} is a symbolic link; give --out a real folder name.")
    if not stat.S_ISDIR(mode):
        raise FolderExistsError(
            f"{folder} exists and is not a folder; give --out a new folder name."
        )
    if not overwrite and any(folder.iterdir()):
        raise FolderExistsError(
            f"{folder} already exists and holds files; nothing was changed. Give --out a new "
            "folder, or add --overwrite to replace it whole."
        )


class _Lock:
    """An exclusive lock on ``.NAME.lock`` beside a folder, held until :meth:`release`."""

    def __init__(self, folder: Path) -> None:
        self.path = _lock_path(folder)
        self.folder = folder
        self.fd: int | None = None

    def acquire(self) -> None:
        if fcntl is None:  # pragma: no cover - Windows
            self._acquire_exclusive_create()
            return
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _read_pid(fd)
                os.close(fd)
                raise self._busy(owner) from None
            except BaseException:
                os.close(fd)
                raise
            # The previous holder may have unlinked the file between our open and our lock:
            # then we hold a lock nobody else can see; start again on the new file.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def _acquire_exclusive_create(self) -> None:  # pragma: no cover - Windows
        for _ in range(2):
            try:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
                os.write(self.fd, f"{os.getpid()}\n".encode())
                return
            except FileExistsError:
                fd = os.open(self.path, os.O_RDONLY)
                owner = _read_pid(fd)
                os.close(fd)
                if owner is not None and _alive(owner):
                    raise self._busy(owner) from None
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()  # a stale lock: its process is gone
        raise self._busy(None)

    def _busy(self, owner: int | None) -> FolderBusyError:
        who = f" (process {owner})" if owner else ""
        return FolderBusyError(
            f"{self.folder} is being written by another nnscratch{who}; nothing was changed. "
            f"Wait for it to finish or choose another --out (the lock is {self.path})."
        )

    def release(self) -> None:
        if self.fd is None:
            return
        # Unlink while still holding the lock, so no waiting writer can hold a stale one.
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self.fd)
        self.fd = None


def _at_final_path(error: OSError, temporary: Path, final: Path) -> OSError:
    """The same error, its message and file name speaking of ``final`` for ``temporary``."""
    def fix(text: str | None) -> str | None:
        return text.replace(str(temporary), str(final)) if text else text

    try:
        if error.strerror is not None and error.filename is not None:
            renamed = type(error)(error.errno, error.strerror, fix(os.fsdecode(error.filename)))
        else:
            renamed = type(error)(fix(str(error)))
            renamed.errno = error.errno
    except TypeError:  # pragma: no cover - a subclass with another constructor
        return error
    return renamed


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode().strip() or "0") or None
    return None


def _alive(pid: int) -> bool:  # pragma: no cover - Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


class Reservation:
    """A folder claimed for one writer: locked, checked, built aside and renamed in.

    Attributes
    ----------
    folder : Path
        The final path.
    overwrite : bool
        Whether an existing folder is replaced whole.
    """

    def __init__(self, folder: Path, overwrite: bool) -> None:
        self.folder = folder
        self.overwrite = overwrite
        self._lock = _Lock(folder)

    def build(self, write: Callable[[Path], T]) -> T:
        """Call ``write(temporary_folder)``, then move the folder it filled into place.

        Returns
        -------
        The result of ``write``.

        Raises
        ------
        FolderExistsError
            If the folder was filled by someone else since it was reserved.
        BaseException
            Whatever ``write`` raises (``KeyboardInterrupt`` included), after removing the
            temporary folder; the final path is left as it was.
        """
        check_free(self.folder, overwrite=self.overwrite)
        temporary = self._temporary_name("tmp")
        with user_file_errors(self.folder, action="write"):
            temporary.mkdir()
        try:
            with _signals.interruptible():  # only the temporary folder changes
                result = write(temporary)
            with _signals.deferred():
                _signals.check()  # a signal while writing: the old run stays as it was
                with user_file_errors(self.folder, action="write"):
                    self._commit(temporary)
        except OSError as error:  # name the user's path, not the temporary one
            shutil.rmtree(temporary, ignore_errors=True)
            raise _at_final_path(error, temporary, self.folder) from None
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        _signals.saved(f"the new run was saved in {self.folder}")
        _signals.check()  # a signal during the commit: raised now that the new run is whole
        return result

    def _temporary_name(self, kind: str) -> Path:
        token = secrets.token_hex(4)
        return self.folder.with_name(f".{self.folder.name}.{kind}-{os.getpid()}-{token}")

    def _commit(self, temporary: Path) -> None:
        """Rename ``temporary`` to the final path; with ``overwrite``, swap the old one out."""
        old = None
        if self.folder.is_dir() and any(self.folder.iterdir()):
            old = self._temporary_name("old")
            os.rename(self.folder, old)
        try:
            if self.folder.is_dir():  # an empty folder (the user made it): rename replaces it
                self.folder.rmdir()
            os.rename(temporary, self.folder)
        except BaseException:
            if old is not None and not self.folder.exists():
                os.rename(old, self.folder)  # put the old run back
            raise
        _fsync_directory(self.folder.parent)  # the rename itself survives a power cut
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def _remove_leftovers(self) -> None:
        """Delete temporary folders of this name left by killed writers (we hold the lock).

        An old run renamed aside by a writer killed before it renamed its new run in is whole
        (a rename is atomic): with nothing at the final path it is put back, not deleted.
        """
        prefixes = (f".{self.folder.name}.tmp-", f".{self.folder.name}.old-")
        with contextlib.suppress(OSError):
            entries = sorted(e for e in self.folder.parent.iterdir()
                             if e.name.startswith(prefixes) and e.is_dir())
            for entry in entries:
                if entry.name.startswith(prefixes[1]) and not os.path.lexists(self.folder):
                    os.rename(entry, self.folder)
                    continue
                shutil.rmtree(entry, ignore_errors=True)


_HELD: dict[Path, Reservation] = {}


def _key(folder: Path) -> Path:
    return Path(os.path.abspath(folder))


def _acquire(folder: Path, overwrite: bool) -> Reservation:
    """Check, lock, check again (now that no one else can write it), tidy up."""
    check_free(folder, overwrite=overwrite)  # the common refusal, before creating anything
    reservation = Reservation(folder, overwrite)
    with user_file_errors(folder, action="write"):
        folder.parent.mkdir(parents=True, exist_ok=True)
        reservation._lock.acquire()
    try:
        check_free(folder, overwrite=overwrite)
        reservation._remove_leftovers()
    except BaseException:
        reservation._lock.release()
        raise
    _HELD[_key(folder)] = reservation
    return reservation


def _release(reservation: Reservation) -> None:
    _HELD.pop(_key(reservation.folder), None)
    reservation._lock.release()


@contextlib.contextmanager
def reserve_folder(folder: str | os.PathLike[str], *, overwrite: bool = False,
                   ) -> Iterator[Reservation]:
    """Lock ``folder`` for writing and check it may be written, before any work is done.

    Parameters
    ----------
    folder : str or PathLike
        The final path; its parent folders are created if missing.
    overwrite : bool, default=False
        Replace an existing folder whole (else a folder holding files is refused).

    Yields
    ------
    Reservation
        Build the folder with :meth:`Reservation.build`. A folder already reserved by this
        process yields the same reservation.

    Raises
    ------
    FolderBusyError
        If another process holds the folder's lock.
    FolderExistsError
        If the path is a file, or a folder holding files and ``overwrite`` is false.
    """
    folder = Path(folder)
    if _key(folder) in _HELD:
        yield _HELD[_key(folder)]
        return
    reservation = _acquire(folder, overwrite)
    try:
        yield reservation
    finally:
        _release(reservation)


@contextlib.contextmanager
def reserve_new_folder(base: str | os.PathLike[str]) -> Iterator[Reservation]:
    """Reserve ``base`` or, if it is taken or being written, ``base-2``, ``base-3``, ...

    The lock decides, so two processes choosing the same default name in the same second end
    up with different folders.
    """
    base = Path(base)
    suffix = 1
    while True:
        candidate = base if suffix == 1 else base.with_name(f"{base.name}-{suffix}")
        try:
            reservation = _acquire(candidate, False)
        except (FolderBusyError, FolderExistsError):
            suffix += 1
            continue
        break
    try:
        yield reservation
    finally:
        _release(reservation)
