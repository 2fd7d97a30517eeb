"""Run ``nnscratch serve``: pick and load the model, bind the socket, run uvicorn until Ctrl-C.

The socket is bound here, before uvicorn starts, so the real port is known (``--port 0`` asks
the system for a free one) and the first line on stdout can be exactly
``Serving on http://HOST:PORT`` — what scripts and the browser tests read to find the server.
uvicorn's own messages and the request log go to stderr.

Limits on the connection, before the application sees a request (the application's own are
in :mod:`nnscratch.serve.app`): the request line and headers must arrive within 10 s
(:mod:`nnscratch.serve._protocol`; else 408 and the connection closed), an idle kept-alive
connection is closed after :data:`KEEP_ALIVE_SECONDS`, and a request that httptools cannot
parse (a ``Content-Length`` of ``abc`` or ``-5``, say) gets the JSON error
``bad_content_length`` or ``bad_request`` rather than uvicorn's plain text. Only requests whose
``Host`` is the address served, ``localhost``, ``127.0.0.1`` or ``[::1]``, or a name given with
``--allow-host`` (with or without the port), are answered. Ctrl-C or SIGTERM stops the server
gracefully: bodies still arriving are answered 503, and running requests get
:data:`GRACEFUL_SECONDS` to finish; then the command exits 130 or 143.

What is left out: TLS, several worker processes and auto-reload (run uvicorn directly on
:func:`nnscratch.serve.create_app` for those).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import ipaddress
import os
import socket
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nnscratch import _signals

__all__ = ["GRACEFUL_SECONDS", "KEEP_ALIVE_SECONDS", "allowed_hosts", "bind", "serve"]

#: An idle kept-alive connection is closed after this many seconds (uvicorn's default).
KEEP_ALIVE_SECONDS = 5
#: On Ctrl-C or SIGTERM, running requests get this many seconds to finish.
GRACEFUL_SECONDS = 3

_LOOPBACK_NAMES = frozenset({"localhost"})
_BACKLOG = 2048  # uvicorn's default


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host` and `port` (0: a free port) and listening, for uvicorn.

    Raises
    ------
    ValueError
        If `port` is not in 0..65535.
    OSError
        If the host cannot be resolved or the address is taken, with a message that says so.
    """
    if not 0 <= port <= 65535:
        raise ValueError(f"--port must be between 0 and 65535 (0 picks a free port), got {port}.")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as error:
        raise OSError(f"--host {host!r} cannot be resolved ({error.strerror}); give an "
                      "address such as 127.0.0.1.") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        # Listening now, not when uvicorn's loop starts: a client that connects as soon as the
        # address is printed waits in the backlog instead of being refused.
        sock.listen(_BACKLOG)
    except OSError as error:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port} ({error.strerror}); pick another port "
                      "with --port (0 picks a free one).") from None
    return sock


def allowed_hosts(host: str, port: int, extra: Iterable[str] = ()) -> set[str]:
    """The ``Host`` headers answered: the address served, the loopback names and each name of
    `extra` (``--allow-host``), each with or without the port. A DNS-rebinding page sends its
    own domain's name, which is none of these."""
    names = {"localhost", "127.0.0.1", "[::1]", *(name.lower() for name in extra)}
    if host not in ("0.0.0.0", "::", ""):
        names.add(f"[{host}]" if ":" in host else host)
    return {form.lower() for name in names for form in (name, f"{name}:{port}")}


def _log_config(quiet: bool) -> dict[str, Any]:
    """uvicorn's logging, all on stderr: warnings and errors, and the request log unless quiet."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    config["loggers"]["uvicorn.error"]["level"] = "WARNING"
    config["loggers"]["uvicorn.access"]["level"] = "WARNING" if quiet else "INFO"
    config["loggers"]["nnscratch.serve"] = {"handlers": ["default"], "level": "INFO",
                                            "propagate": False}
    return config


def serve(
    model: str | None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    quiet: bool = False,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    verify: bool = True,
    runs: Path = Path("runs"),
    max_parameters: int | None = None,
    allow_hosts: Iterable[str] = (),
) -> int:
    """Serve the page and the JSON API until interrupted.

    Parameters
    ----------
    model : str or None
        A model file or run folder; ``None`` picks one (see
        :func:`nnscratch.serve.default_model.resolve_model`).
    host : str, default="127.0.0.1"
        The address to listen on; any address but the loopback one gets a warning, since the
        page has no authentication.
    port : int, default=8000
        0 picks a free port.
    quiet : bool, default=False
        No request log, no progress bar while training the default model.
    data_dir, download, verify : optional
        Where MNIST is, and whether it may be downloaded and must be verified, if the default
        model must be trained.
    runs : Path, default=Path("runs")
        Where to look for a 10-digit run when no model is given.
    max_parameters : int or None, default=None
        Refuse a model file declaring more parameters; ``None`` is
        :data:`nnscratch.serialization.MAX_PARAMETERS`.
    allow_hosts : iterable of str, default=()
        More ``Host`` names to answer (``--allow-host``; see :func:`allowed_hosts`).

    Returns
    -------
    int
        0 once stopped, after uvicorn's graceful shutdown (at most :data:`GRACEFUL_SECONDS`
        for running requests). The signal that stopped it is left pending for ``nnscratch``'s
        handler (:mod:`nnscratch._signals`), which exits 130 or 143.
    """
    import uvicorn

    from nnscratch.serve._protocol import Protocol
    from nnscratch.serve.app import create_app
    from nnscratch.serve.default_model import resolve_model, train_default_model
    from nnscratch.serve.predictor import Predictor

    def say(line: str) -> None:
        if not quiet:
            print(line, file=sys.stderr, flush=True)

    train = functools.partial(train_default_model, data_dir=data_dir, download=download,
                              verify=verify, quiet=quiet, say=say)
    with _signals.interruptible():  # loading, or training the default model: stop at once
        path = resolve_model(model, runs=runs, say=say, train=train)
        predictor = Predictor.load(path, max_parameters=max_parameters)
    sock = bind(host, port)
    stopping = asyncio.Event()
    app = create_app(predictor, stopping=stopping,
                     allowed_hosts=allowed_hosts(host, sock.getsockname()[1], allow_hosts))
    try:
        if not _is_loopback(host):
            warnings.warn(
                f"listening on {host}, not only on this computer: anyone who can reach it may "
                "use the page and the API, which have no authentication. Use --host 127.0.0.1 "
                "unless that is what you want.", stacklevel=2)
        shown = f"[{host}]" if ":" in host else host
        print(f"Serving on http://{shown}:{sock.getsockname()[1]}", flush=True)
        facts = predictor.facts()
        say(f"model {predictor.path}: {facts['summary']}, classes "
            f"{' '.join(map(str, facts['classes']))}; open the address in a browser, API docs "
            "at /docs; Ctrl-C stops")
        config = uvicorn.Config(app, log_config=_log_config(quiet), log_level=None,
                                access_log=not quiet, lifespan="off", use_colors=False,
                                http=Protocol, timeout_keep_alive=KEEP_ALIVE_SECONDS,
                                timeout_graceful_shutdown=GRACEFUL_SECONDS)

        class Server(uvicorn.Server):
            async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
                stopping.set()  # bodies still arriving are answered 503 at once
                await super().shutdown(sockets)

        _signals.saved("the server stopped")  # what a signal's message says
        try:
            Server(config).run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn shut down cleanly, then re-raised the Ctrl-C
            pass
    finally:
        sock.close()
    return 0
