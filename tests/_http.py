"""A throwaway HTTP server on 127.0.0.1 for download tests; nothing leaves the machine.

``serve(routes)`` runs a ``ThreadingHTTPServer`` on an ephemeral port in a daemon thread and
yields its base URL. Each route maps a path to the body to send with status 200, or to a callable
that writes the whole response itself (for truncated bodies and other misbehaviour). Unknown
paths get 404. ``refused_url()`` gives a URL where nothing listens, for "connection refused".
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Route = bytes | Callable[[BaseHTTPRequestHandler], None]


class Server:
    """Base URL and the paths requested so far."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.requests: list[str] = []


@contextlib.contextmanager
def serve(routes: Mapping[str, Route]) -> Iterator[Server]:
    """Serve `routes` on 127.0.0.1 for the duration of the ``with`` block."""
    log: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            log.append(self.path)
            route = routes.get(self.path)
            if route is None:
                self.send_error(404, "Not Found")
            elif callable(route):
                route(self)
            else:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(route)))
                self.end_headers()
                self.wfile.write(route)

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    server = Server(f"http://127.0.0.1:{httpd.server_address[1]}")
    server.requests = log
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def truncated(body: bytes, keep: int) -> Callable[[BaseHTTPRequestHandler], None]:
    """A route that announces the full length but closes the connection after `keep` bytes."""

    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body[:keep])
        handler.wfile.flush()
        handler.close_connection = True

    return respond


def refused_url() -> str:
    """A URL on a port that was free a moment ago, so connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
