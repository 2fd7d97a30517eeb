"""The web application of ``nnscratch serve``: a drawing page and a small JSON API (FastAPI).

Routes:

- ``GET /``: the page, ``static/index.html``, with its script and style sheet under
  ``/static/``. Nothing comes from elsewhere: its Content-Security-Policy allows this server only.
- ``POST /api/predict``: the raw bytes of a PNG or JPEG picture (``Content-Type: image/png`` or
  ``image/jpeg``), or JSON ``{"pixels": [[...28 rows of 28 numbers in [0, 1]...]]}``. Answers
  ``{"label", "probabilities", "classes", "input", "hidden"}``, and ``"feature_maps"`` for a
  convolutional network (see
  :class:`~nnscratch.serve.predictor.Prediction`), with a ``Server-Timing`` header giving the
  milliseconds of each step (decode, preprocess, forward, json).
- ``GET /api/model``: the model's facts; ``GET /healthz``: ``{"status": "ok"}``.
- ``GET /docs`` and ``/openapi.json``: FastAPI's API documentation (Swagger UI served from the
  package's own files, so it works offline).

Every error is JSON, ``{"error": CODE, "message": TEXT}``, with a 4xx status for bad input:
400 for a body that cannot be read (not a picture, undecodable, invalid JSON, empty, a repeated
key), 408 for a body that does not arrive within :data:`BODY_SECONDS`, 413 for a body over
:data:`MAX_BODY_BYTES`, 415 for another content type, 421 for a ``Host`` header that is not
the server's (see ``allowed_hosts``), 422 for a readable request that cannot be answered (wrong
JSON shape, pixels out of range or not finite, a blank picture, too many pixels), and 503 with
``Retry-After`` when the server is busy or stopping.

Bounds, so that no client can starve the server or swell its memory:

- **bodies:** at most :data:`MAX_BODIES` are in memory at once (read, or waiting for their
  decoding), each read within :data:`BODY_SECONDS`
  (408 and the connection closed after that: a body sent a byte a second, an endless chunked
  one). A body over the limit gets its 413 at once, and the connection stays open while
  uvicorn discards the rest, so that the client, still sending, reads the answer instead of a
  reset; if the client asked to close the connection, the body is first read and thrown away
  up to :data:`DRAIN_BYTES`. A ``Content-Length`` over :data:`DRAIN_BYTES` is answered at
  once and the connection closed.
- **decoding:** pictures are decoded and answered in a pool of :data:`MAX_DECODES` threads; a
  request that finds them all busy waits up to :data:`QUEUE_SECONDS` for one, then gets 503
  with ``Retry-After``. A picture decodes to at most
  :data:`~nnscratch.serve.predictor.MAX_PICTURE_PIXELS`, so the pixels in flight are bounded
  by ``MAX_DECODES * MAX_PICTURE_PIXELS`` whatever the clients send (``docs/serve.md`` has the
  measured peak).
- **stopping:** a body still arriving when the server stops is answered 503 at once, so that
  uvicorn's graceful shutdown ends within its bound.

What is left out: authentication, TLS and rate limiting (see ``docs/serve.md``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from nnscratch.images import (
    BlankImageError,
    InputFormatError,
    PictureTooLargeError,
    UndecodableImageError,
)
from nnscratch.serve.predictor import (
    MAX_PICTURE_PIXELS,
    PICTURE_FORMATS,
    PixelsError,
    Predictor,
)

__all__ = ["BODY_SECONDS", "DRAIN_BYTES", "MAX_BODIES", "MAX_BODY_BYTES", "MAX_DECODES",
           "QUEUE_SECONDS", "create_app"]

#: The largest request body accepted, in bytes (2 MiB).
MAX_BODY_BYTES = 2 * 2**20
#: A too-large body is read and discarded up to this many bytes before the 413 is sent.
DRAIN_BYTES = 8 * 2**20
#: The whole body must arrive within this many seconds (else 408, connection closed).
BODY_SECONDS = 10.0
#: Bodies read or waiting to be decoded at once; more wait up to QUEUE_SECONDS, then get 503.
MAX_BODIES = 64
#: Pictures decoded (and answered) at once, in their own threads.
MAX_DECODES = 4
#: How long a request waits for a free body or decoding slot before its 503.
QUEUE_SECONDS = 5.0

STATIC_DIR = Path(__file__).parent / "static"

#: Media types of pictures, and the JSON one.
_PICTURE_TYPES = frozenset({"image/png", "image/jpeg"})
_JSON_TYPE = "application/json"
_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean",
               type(None): "null"}

#: The page may load and contact nothing but this server.
_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_log = logging.getLogger("nnscratch.serve")


class APIError(Exception):
    """A request the server refuses: an HTTP status, a short code and a message."""

    def __init__(self, status: int, code: str, message: str, *,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def _closing(error: APIError) -> APIError:
    """The same error, answered with ``Connection: close``."""
    error.headers["Connection"] = "close"
    return error


def _busy(what: str, retry_after: int = 1) -> APIError:
    return APIError(503, "busy", f"the server is busy ({what}); try again in {retry_after} s.",
                    headers={"Retry-After": str(retry_after)})


# ---------------------------------------------------------------------------------------------
# Documents, for the OpenAPI description (responses are built as plain dicts, which is faster)


class PredictionDocument(BaseModel):
    """The answer of ``POST /api/predict``."""

    label: int | float | str = Field(description="the most probable class")
    probabilities: list[float] = Field(description="one per class, in class order; sum to 1")
    classes: list[int | float | str] = Field(description="the label of each class, in order")
    input: list[list[float]] = Field(
        description="the 28x28 picture the network received, gray levels in [0, 1], white on "
                    "black; it can be sent back as pixels")
    hidden: list[float] = Field(
        description="the activations of the first hidden layer (empty without one)")
    feature_maps: list[list[list[int]]] | None = Field(
        default=None,
        description="a convolutional network only: its first convolution's feature maps "
                    "(channels x height x width), gray levels 0..255, each map stretched over "
                    "the range on its own")


class ErrorDocument(BaseModel):
    """Every error answer."""

    error: str = Field(description="a short code, e.g. blank_picture, body_too_large")
    message: str = Field(description="what is wrong and how to fix it")


_PIXELS_SCHEMA = {
    "type": "object",
    "required": ["pixels"],
    "properties": {
        "pixels": {
            "description": "28 rows of 28 gray levels in [0, 1], white digit on black, already "
                           "centred as in MNIST (used as they are)",
            "type": "array", "minItems": 28, "maxItems": 28,
            "items": {"type": "array", "minItems": 28, "maxItems": 28,
                      "items": {"type": "number", "minimum": 0, "maximum": 1}},
        },
    },
}
_PICTURE_SCHEMA = {"type": "string", "format": "binary"}

_PREDICT_DESCRIPTION = f"""\
Label one picture of a digit. Send either the raw bytes of a PNG or JPEG picture (any size up to
{MAX_PICTURE_PIXELS:,} pixels, either colour scheme; it is made to look like an MNIST digit
exactly as `nnscratch predict` does), or JSON `{{"pixels": [...]}}`: 28 rows of 28 numbers in
[0, 1], already MNIST-style, used as they are. The body may hold at most {MAX_BODY_BYTES:,} bytes.
"""


# ---------------------------------------------------------------------------------------------
# Reading requests


def _content_kind(header: str | None) -> str:
    """``"picture"`` or ``"json"`` from a Content-Type header, or a 415 error."""
    media_type = (header or "").split(";")[0].strip().lower()
    if media_type in _PICTURE_TYPES:
        return "picture"
    if media_type == _JSON_TYPE:
        return "json"
    got = f"Content-Type {media_type!r}" if media_type else "no Content-Type"
    raise APIError(
        415, "unsupported_media_type",
        f"got {got}; send a picture as image/png or image/jpeg, or pixels as application/json.",
    )


async def _read_body(request: Request, limit: int, stopping: asyncio.Event) -> bytes:
    """The whole body, within :data:`BODY_SECONDS`, or a 413 that the client gets to read.

    Over `limit` bytes (from ``Content-Length``, or while reading a chunked body) the answer
    is sent at once on a kept-alive connection: uvicorn then reads and discards the rest of
    the body as it comes, and the connection stays open for it. A client that asked to close
    the connection (``Connection: close``, HTTP/1.0) would see it closed while still sending,
    which resets it before it reads the answer: its body is read and thrown away first, up to
    :data:`DRAIN_BYTES`. A ``Content-Length`` over that is answered at once and closed.
    """
    declared = request.headers.get("content-length")
    refused: APIError | None = None
    if declared is not None:
        if not declared.isdigit():
            raise _closing(APIError(
                400, "bad_content_length",
                f"the Content-Length header {declared!r} is not a number of bytes."))
        if int(declared) > DRAIN_BYTES:  # not worth reading: answer and close
            raise _closing(_too_large(int(declared), limit))
        if int(declared) > limit:
            refused = _too_large(int(declared), limit)
    closes = _closes(request)
    if refused is not None and not closes:
        raise refused
    deadline = asyncio.get_running_loop().time() + BODY_SECONDS
    chunks: list[bytes] = []
    size = 0
    stream = request.stream().__aiter__()
    stop = asyncio.ensure_future(stopping.wait())
    try:
        while (chunk := await _next_chunk(stream, stop, deadline)) is not None:
            size += len(chunk)
            if refused is None and size > limit:  # a chunked body, or one longer than it said
                refused = _too_large(size, limit, at_least=True)
                if not closes:
                    raise refused
            if refused is not None:
                chunks.clear()  # read and thrown away, so the client gets to read the 413
                if size > DRAIN_BYTES:
                    raise _closing(refused)
                continue
            chunks.append(chunk)
    finally:
        stop.cancel()
    if refused is not None:
        raise _closing(refused)
    return b"".join(chunks)


def _closes(request: Request) -> bool:
    """Whether the connection closes after this request (HTTP/1.0, ``Connection: close``)."""
    connection = request.headers.get("connection", "").lower()
    if request.scope.get("http_version") == "1.0":
        return "keep-alive" not in connection
    return "close" in connection


async def _next_chunk(stream: Any, stop: asyncio.Future[Any], deadline: float) -> bytes | None:
    """The body's next chunk (``None`` at its end), unless the deadline passes or the server
    stops first (408 or 503, and the connection closed)."""
    get = asyncio.ensure_future(stream.__anext__())
    await asyncio.wait({get, stop}, timeout=max(0.0, deadline - asyncio.get_running_loop().time()),
                       return_when=asyncio.FIRST_COMPLETED)
    if not get.done():
        get.cancel()
        if stop.done():
            raise _closing(APIError(503, "stopping", "the server is stopping; send the request "
                                    "again once it is back.", headers={"Retry-After": "5"}))
        raise _closing(APIError(
            408, "body_timeout",
            f"the body did not arrive within {BODY_SECONDS:g} s; send it at once."))
    try:
        return get.result()
    except StopAsyncIteration:
        return None
    except ClientDisconnect:
        raise _closing(APIError(400, "incomplete_body", "the connection was closed before the "
                                "whole body arrived.")) from None


def _too_large(size: int, limit: int, *, at_least: bool = False) -> APIError:
    amount = f"at least {size:,}" if at_least else f"{size:,}"
    return APIError(
        413, "body_too_large",
        f"the body holds {amount} bytes; at most {limit:,} are accepted. Send a smaller "
        "picture (a digit needs no more than a few hundred pixels a side).",
    )


def _answer(predictor: Predictor, kind: str, body: bytes) -> tuple[bytes, str]:
    """Decode, predict and encode the JSON answer, turning bad input into an :class:`APIError`.

    All of it runs in a worker thread, the JSON encoding included (a third of a millisecond
    for 784 + hidden floats), so the event loop only moves bytes. Returns the answer and its
    ``Server-Timing`` header: the milliseconds spent decoding, preprocessing, in the forward
    pass and encoding the JSON.
    """
    if not body:
        raise APIError(400, "empty_body",
                       "the body is empty; send a PNG or JPEG picture, or JSON pixels.")
    try:
        prediction = (predictor.predict_picture(body) if kind == "picture"
                      else predictor.predict_pixels(_pixels_of(body)))
    except BlankImageError as error:
        raise APIError(422, "blank_picture", str(error)) from None
    except PictureTooLargeError as error:
        raise APIError(422, "picture_too_large", str(error)) from None
    except UndecodableImageError as error:
        raise APIError(400, "undecodable_picture", str(error)) from None
    except InputFormatError as error:
        raise APIError(400, "not_a_picture", str(error)) from None
    except PixelsError as error:
        raise APIError(422, "bad_pixels", str(error)) from None
    start = time.perf_counter()
    answer = json.dumps(prediction.to_json(predictor.classes), allow_nan=False,
                        separators=(",", ":")).encode("utf-8")
    seconds = {**prediction.seconds, "json": time.perf_counter() - start}
    return answer, ", ".join(f"{step};dur={1e3 * value:.3f}" for step, value in seconds.items())


def _pixels_of(body: bytes) -> Any:
    try:
        document = json.loads(body, object_pairs_hook=_unique_keys)
    except _RepeatedKeyError as error:
        raise APIError(400, "invalid_json", f"the body is ambiguous JSON: {error}") from None
    except (ValueError, RecursionError) as error:  # bad UTF-8 or JSON; absurd nesting
        raise APIError(400, "invalid_json", f"the body is not valid JSON ({error}).") from None
    if not isinstance(document, dict) or set(document) != {"pixels"}:
        got = (f"an object with keys {sorted(document)}" if isinstance(document, dict)
               else f"a JSON {_JSON_KINDS.get(type(document), 'value')}")
        raise APIError(422, "wrong_json_shape",
                       f'expected an object {{"pixels": [28 rows of 28 numbers]}}, got {got}.')
    return document["pixels"]


class _RepeatedKeyError(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different (``{"pixels": A, "pixels": B}`` is refused:
    another reader of the same request might take the other one)."""
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise _RepeatedKeyError(f"the key {repeated!r} appears more than once; send it once.")
    return document


class _HostCheck:
    """Refuse (421) a request whose ``Host`` header is not one of the server's names: a page
    of another site that a DNS-rebinding attack points at this server cannot use it."""

    def __init__(self, app: Any, allowed: frozenset[str]) -> None:
        self.app, self.allowed = app, allowed

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            host = next((value.decode("latin-1") for name, value in scope["headers"]
                         if name == b"host"), "")
            if host.lower() not in self.allowed:
                shown = repr(host) if host else "no Host header"
                response = JSONResponse(
                    {"error": "unknown_host",
                     "message": f"this server does not answer to {shown}; open it as "
                                f"{sorted(self.allowed)[0]}, or start it with --allow-host "
                                "NAME for another name."},
                    status_code=421, headers={"Connection": "close"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


# ---------------------------------------------------------------------------------------------
# The application


def create_app(predictor: Predictor, *, allowed_hosts: Iterable[str] | None = None,
               stopping: asyncio.Event | None = None) -> FastAPI:
    """The ASGI application serving `predictor`: the page, the JSON API and its docs.

    Parameters
    ----------
    predictor : Predictor
        Loaded once; shared by all requests (predictions only read it).
    allowed_hosts : iterable of str or None, default=None
        The ``Host`` headers answered (``127.0.0.1:8000``, ``localhost:8000``), lower case;
        any other gets 421. ``None`` answers every host (for tests and embedding).
    stopping : asyncio.Event or None, default=None
        Set when the server begins to stop: bodies still arriving are answered 503 at once.

    Returns
    -------
    FastAPI
    """
    from nnscratch._version import __version__

    # FastAPIOffline is FastAPI whose /docs page loads Swagger UI from files in the installed
    # package (fastapi-offline), not from a CDN: the docs work offline like the page.
    app = FastAPIOffline(
        title="nnscratch serve",
        version=__version__,
        description="Draw a digit and watch the network answer. The page is at `/`; this is its "
                    "JSON API. Errors are `{\"error\": CODE, \"message\": TEXT}` with a 4xx "
                    "status.",
    )
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    stopping = stopping if stopping is not None else asyncio.Event()
    bodies = asyncio.Semaphore(MAX_BODIES)
    decodes = asyncio.Semaphore(MAX_DECODES)
    # Its own few threads: at most MAX_DECODES pictures are ever decoded at once, and only
    # these threads hold their memory (the allocator keeps per-thread arenas).
    pool = concurrent.futures.ThreadPoolExecutor(MAX_DECODES, thread_name_prefix="decode")
    error_responses: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorDocument, "description": text} for status, text in (
            (400, "the body is not a picture, cannot be decoded, or is not JSON"),
            (408, f"the body did not arrive within {BODY_SECONDS:g} s"),
            (413, f"the body is over {MAX_BODY_BYTES:,} bytes"),
            (415, "the Content-Type is not image/png, image/jpeg or application/json"),
            (422, "wrong JSON shape, pixels not finite or outside [0, 1], a blank picture, or "
                  "too many pixels"),
            (503, "busy (every decoding slot taken) or stopping; see Retry-After"),
        )
    }

    @app.exception_handler(APIError)
    async def _api_error(request: Request, error: APIError) -> JSONResponse:
        return JSONResponse({"error": error.code, "message": error.message},
                            status_code=error.status, headers=error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        message = {404: f"there is nothing at {request.url.path}; see /docs for the API.",
                   405: f"{request.method} is not allowed on {request.url.path}; see /docs."}
        return JSONResponse({"error": code,
                             "message": message.get(error.status_code, str(error.detail))},
                            status_code=error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": "invalid_request", "message": str(error.errors())},
                            status_code=422)

    @app.exception_handler(Exception)
    async def _server_error(request: Request, error: Exception) -> JSONResponse:
        _log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal_error",
                             "message": f"the server failed ({type(error).__name__}); see its "
                                        "log."}, status_code=500)

    @app.head("/", response_class=HTMLResponse, include_in_schema=False)
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": _PAGE_POLICY,
                                           "Cache-Control": "no-cache"})

    @app.head("/healthz", include_in_schema=False)
    @app.get("/healthz", summary="Liveness check", tags=["service"])
    async def healthz() -> dict[str, str]:
        """`{"status": "ok"}` while the server runs."""
        return {"status": "ok"}

    @app.get("/api/model", summary="The model being served", tags=["model"])
    async def model_facts() -> dict[str, Any]:
        """The architecture (`layer_sizes`, `layers`, `summary`), `classes`, `dtype`,
        `n_parameters`, the first hidden layer (`hidden_units`, `hidden_activation`), a
        convolutional network's first feature maps (`feature_maps`: `channels`, `height`,
        `width` and the `layers` they come out of; null without convolutions), the
        `test_accuracy` of its run (from the run's metrics.json, else the model file; null
        when unknown or not a number in [0, 1]), the model `file`'s name (not its path) and
        its `sha256`, and the request `limits`."""
        return {**predictor.facts(),
                "limits": {"max_body_bytes": MAX_BODY_BYTES,
                           "max_picture_pixels": MAX_PICTURE_PIXELS,
                           "picture_formats": list(PICTURE_FORMATS),
                           "body_seconds": BODY_SECONDS, "max_decodes": MAX_DECODES}}

    @app.post(
        "/api/predict",
        summary="Label a picture of a digit",
        description=_PREDICT_DESCRIPTION,
        tags=["model"],
        response_model=PredictionDocument,
        responses=error_responses,
        openapi_extra={"requestBody": {"required": True, "content": {
            "image/png": {"schema": _PICTURE_SCHEMA},
            "image/jpeg": {"schema": _PICTURE_SCHEMA},
            _JSON_TYPE: {"schema": _PIXELS_SCHEMA},
        }}},
    )
    async def predict(request: Request) -> Response:
        kind = _content_kind(request.headers.get("content-type"))
        # A body slot is held from reading the body to the end of its decoding, so that at
        # most MAX_BODIES bodies are in memory; both are released when the work is done, even
        # if this request is cancelled meanwhile.
        await _acquire(bodies, "every body slot is taken")
        try:
            body = await _read_body(request, MAX_BODY_BYTES, stopping)
            await _acquire(decodes, "every decoding slot is taken")
        except BaseException:
            bodies.release()
            raise
        work = asyncio.get_running_loop().run_in_executor(pool, _answer, predictor, kind, body)

        def release(_: object) -> None:
            decodes.release()
            bodies.release()

        work.add_done_callback(release)
        answer, timing = await work
        return Response(answer, media_type="application/json",
                        headers={"Server-Timing": timing})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    if allowed_hosts is not None:
        app.add_middleware(_HostCheck, allowed=frozenset(h.lower() for h in allowed_hosts))
    return app


async def _acquire(slots: asyncio.Semaphore, what: str) -> None:
    """Take a slot, waiting up to :data:`QUEUE_SECONDS`; else 503 with ``Retry-After``."""
    try:
        await asyncio.wait_for(slots.acquire(), QUEUE_SECONDS)
    except TimeoutError:
        raise _busy(what) from None
