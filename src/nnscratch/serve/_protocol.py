"""uvicorn's httptools protocol with the limits ``nnscratch serve`` needs before its app runs.

- **a header timeout.** uvicorn closes an idle kept-alive connection, but waits forever for the
  headers of a request that has begun (a client sending a byte a second). Here the request line
  and headers must arrive within :data:`HEADER_SECONDS` of the connection or of the previous
  answer; else the client gets a 408 JSON error and the connection is closed.
- **JSON for unparsable requests.** httptools refuses a request it cannot parse (a
  ``Content-Length`` of ``abc`` or ``-5``, a bad header) before the application sees it, and
  uvicorn answers with plain text. Here the answer is the API's JSON, ``bad_content_length``
  for a bad ``Content-Length`` (httptools says "Invalid character in Content-Length"), else
  ``bad_request`` with httptools' words.

What is left out: the h11 protocol (httptools is a dependency of the serve extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["HEADER_SECONDS", "Protocol"]

#: The request line and headers must arrive within this many seconds.
HEADER_SECONDS = 10.0


def _json_error(status: int, reason: bytes, code: str, message: str) -> bytes:
    body = json.dumps({"error": code, "message": message}).encode()
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n" % (status, reason, len(body))) + body


class Parser(httptools.HttpRequestParser):
    """httptools' parser, keeping its error's words (uvicorn drops them)."""

    error = ""

    def feed_data(self, data: bytes) -> None:
        try:
            super().feed_data(data)
        except httptools.HttpParserError as error:
            self.error = str(error)
            raise


class Protocol(HttpToolsProtocol):
    """uvicorn's protocol with a header timeout and the API's JSON for unparsable requests."""

    _header_timer: asyncio.TimerHandle | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parser = Parser(self)
        with contextlib.suppress(AttributeError):  # what uvicorn sets, httptools >= 0.6.3
            self.parser.set_dangerous_leniencies(lenient_data_after_close=True)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(HEADER_SECONDS, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(_json_error(
                408, b"Request Timeout", "header_timeout",
                f"the request line and headers did not arrive within {HEADER_SECONDS:g} "
                "s; the connection is closed."))
            self.transport.close()

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's headers: within HEADER_SECONDS too

    def send_400_response(self, msg: str) -> None:
        # uvicorn's plain text, for a request httptools refused; say which, in JSON.
        error = getattr(self.parser, "error", "")
        if "content-length" in error.lower():
            answer = _json_error(400, b"Bad Request", "bad_content_length",
                                 "the Content-Length header is not a number of bytes.")
        else:
            answer = _json_error(400, b"Bad Request", "bad_request",
                                 f"the request could not be parsed ({error or msg}).")
        self.transport.write(answer)
        self.transport.close()



