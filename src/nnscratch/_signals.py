"""Ctrl-C (SIGINT) and SIGTERM for the command line: a flag checked at safe points.

Why not simply raise from the signal handler, as Python does for Ctrl-C? Two reasons, both seen:

- **a half-done commit.** An exception raised between renaming a new run folder in and deleting
  the old one left the new run in place, the old one half-deleted, and a command that said
  "nothing was saved".
- **a lost signal.** Python runs a handler between any two bytecodes, also inside a weakref
  callback or a ``__del__``; an exception raised there is printed ("Exception ignored in ...
  WeakKeyDictionary") and dropped, and the command ran on and exited 0.

So :func:`handling` (``nnscratch``'s ``main`` holds it for the whole command; ``tune``'s
workers hold it too) installs one handler for both signals that

1. **records** the first signal: it stays pending until the command ends, so it cannot be lost;
2. runs the **hooks** (:func:`on_signal`): ``tune`` stops its study and passes the signal on
   to its worker processes;
3. **raises** :class:`Interrupted` at once only inside an :func:`interruptible` block (loading
   data, training, scoring, writing files into a temporary folder: code whose only effects are
   memory and temporary files that the ``except BaseException`` paths remove), so that a long
   training stops promptly. A raise that is swallowed there is raised again every
   :data:`RETRY_SECONDS` (a ``SIGALRM`` timer) while the block lasts, and once more when it
   ends; Python's "Exception ignored" report of it is left out (``sys.unraisablehook``).

Anywhere else the signal waits for a **safe point**, :func:`check`: the end of an interruptible
block, just before a run folder is committed, the end of a commit, the end of the command. A
commit point is a :func:`deferred` block: no raise inside it, however many signals come. A
second signal is only remembered: the cleanup of the first runs to its end.

What is saved is said: a commit that completed calls :func:`saved`, and the command's last line
names it ("terminated (SIGTERM); the new run was saved in runs/x"), else "nothing was saved".
The exit status is 128 + the signal's number: 130 for Ctrl-C, 143 for SIGTERM.

What is left out: signals other than SIGINT and SIGTERM, and other threads than the main one
(Python delivers signals to the main thread only; elsewhere these blocks do nothing).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["RETRY_SECONDS", "Interrupted", "check", "deferred", "handling", "interruptible",
           "on_signal", "pending", "saved"]

#: How often a raise swallowed inside an interruptible block is tried again.
RETRY_SECONDS = 0.25

_SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None))
                 if s is not None)
_NAMES = {getattr(signal, "SIGINT", -1): "interrupted (Ctrl-C)",
          getattr(signal, "SIGTERM", -2): "terminated (SIGTERM)"}


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised like Ctrl-C so that every ``finally`` and cleanup runs.

    Attributes
    ----------
    signum : int
        The signal that came first.
    saved : list of str
        What was saved before it was raised (:func:`saved`).
    """

    def __init__(self, signum: int, saved: list[str] | None = None) -> None:
        super().__init__(signum)
        self.signum = signum
        self.saved = list(saved or [])

    @property
    def exit_status(self) -> int:
        """128 + the signal's number: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum

    def describe(self) -> str:
        """``terminated (SIGTERM); nothing was saved``, or what was."""
        kept = "; ".join(self.saved) if self.saved else "nothing was saved"
        return f"{_NAMES.get(self.signum, f'signal {self.signum}')}; {kept}"


class _State:
    def __init__(self) -> None:
        self.installed = 0  # depth of handling() blocks
        self.signum: int | None = None
        self.immediate = 0  # depth of interruptible() blocks
        self.held = 0  # depth of deferred() blocks
        self.hooks: list[Callable[[int], None]] = []
        self.saved: list[str] = []
        self.timer = False


_state = _State()


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _may_raise() -> bool:
    return _state.immediate > 0 and _state.held == 0


def _handle(signum: int, frame: Any) -> None:
    first = _state.signum is None
    if first:
        _state.signum = signum
    for hook in list(_state.hooks):
        with contextlib.suppress(Exception):  # a hook must not turn the signal into an error
            hook(signum)
    if first and _may_raise():
        _raise_now()


def _raise_now() -> None:
    assert _state.signum is not None
    if hasattr(signal, "setitimer"):  # tried again if this raise is swallowed
        signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)
        _state.timer = True
    raise Interrupted(_state.signum, _state.saved)


def _retry(signum: int, frame: Any) -> None:
    _state.timer = False
    if _state.signum is not None and _may_raise():
        _raise_now()


def _stop_timer() -> None:
    if _state.timer:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _state.timer = False


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """Take over SIGINT and SIGTERM for the block (main thread only; nested blocks share one).

    On leaving the outermost block the previous handlers are back and the state is cleared;
    a signal still pending is *not* raised by this block: call :func:`check` before leaving.
    """
    if not _main_thread():
        yield
        return
    if _state.installed:
        _state.installed += 1
        try:
            yield
        finally:
            _state.installed -= 1
        return
    previous = {s: signal.signal(s, _handle) for s in _SIGNALS}
    alarm = signal.signal(signal.SIGALRM, _retry) if hasattr(signal, "SIGALRM") else None
    unraisable = sys.unraisablehook

    def quiet_when_retried(what: Any) -> None:
        if not isinstance(what.exc_value, Interrupted):  # a dropped Interrupted is retried
            unraisable(what)

    sys.unraisablehook = quiet_when_retried
    _state.__init__()  # type: ignore[misc]
    _state.installed = 1
    try:
        yield
    finally:
        _stop_timer()
        sys.unraisablehook = unraisable
        for number, handler in previous.items():
            signal.signal(number, handler)
        if alarm is not None:
            signal.signal(signal.SIGALRM, alarm)
        _state.__init__()  # type: ignore[misc]


def pending() -> int | None:
    """The signal received during the :func:`handling` block, or ``None``."""
    return _state.signum


def check() -> None:
    """A safe point: raise :class:`Interrupted` if a signal came (and was not raised yet, or
    was swallowed)."""
    if _state.signum is not None:
        _stop_timer()
        raise Interrupted(_state.signum, _state.saved)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """A block where a signal is raised at once: only memory and temporary files change.

    A signal that came before the block, or whose raise was swallowed inside it, is raised on
    entering or on leaving it.
    """
    check()
    _state.immediate += 1
    try:
        yield
    finally:
        _state.immediate -= 1
        if not _may_raise():
            _stop_timer()
    check()


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A commit point: no signal is raised inside the block; call :func:`check` after it.

    Outside :func:`handling` (a program calling the library) the block takes over SIGINT and
    SIGTERM itself, and raises a signal that came once the block is done.
    """
    if not _state.installed and _main_thread():
        with handling():
            with deferred():
                yield
            check()
        return
    _state.held += 1
    try:
        yield
    finally:
        _state.held -= 1


@contextlib.contextmanager
def on_signal(hook: Callable[[int], None]) -> Iterator[None]:
    """Call ``hook(signum)`` from the handler while the block runs (it must not raise)."""
    _state.hooks.append(hook)
    try:
        yield
    finally:
        _state.hooks.remove(hook)


def saved(what: str) -> None:
    """Record that ``what`` was saved, for the message of a signal ("the new run was saved
    in runs/x")."""
    if _state.installed:
        _state.saved.append(what)
