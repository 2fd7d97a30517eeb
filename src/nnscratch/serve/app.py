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
400 for a body that cannot be read (not a picture, undecodable, invalid JSON, empty), 413 for a
body over :data:`MAX_BODY_BYTES` (refused from its ``Content-Length`` before anything is read,
and while reading when it is sent in chunks), 415 for another content type, 422 for a readable
request that cannot be answered (wrong JSON shape, pixels out of range or not finite, a blank
picture, too many pixels). The body is read on the event loop; decoding and the forward pass run
in Starlette's thread pool, so requests are answered concurrently.

What is left out: authentication, TLS and rate limiting (see ``docs/serve.md``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

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

__all__ = ["MAX_BODY_BYTES", "create_app"]

#: The largest request body accepted, in bytes (2 MiB).
MAX_BODY_BYTES = 2 * 2**20

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

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


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


async def _read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise APIError(400, "bad_content_length",
                           f"the Content-Length header {declared!r} is not a number of bytes.")
        if int(declared) > limit:
            raise _too_large(int(declared), limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # a chunked body, or one longer than it said
            raise _too_large(size, limit, at_least=True)
        chunks.append(chunk)
    return b"".join(chunks)


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
        document = json.loads(body)
    except (ValueError, RecursionError) as error:  # bad UTF-8 or JSON; absurd nesting
        raise APIError(400, "invalid_json", f"the body is not valid JSON ({error}).") from None
    if not isinstance(document, dict) or set(document) != {"pixels"}:
        got = (f"an object with keys {sorted(document)}" if isinstance(document, dict)
               else f"a JSON {_JSON_KINDS.get(type(document), 'value')}")
        raise APIError(422, "wrong_json_shape",
                       f'expected an object {{"pixels": [28 rows of 28 numbers]}}, got {got}.')
    return document["pixels"]


# ---------------------------------------------------------------------------------------------
# The application


def create_app(predictor: Predictor) -> FastAPI:
    """The ASGI application serving `predictor`: the page, the JSON API and its docs.

    Parameters
    ----------
    predictor : Predictor
        Loaded once; shared by all requests (predictions only read it).

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
    error_responses: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorDocument, "description": text} for status, text in (
            (400, "the body is not a picture, cannot be decoded, or is not JSON"),
            (413, f"the body is over {MAX_BODY_BYTES:,} bytes"),
            (415, "the Content-Type is not image/png, image/jpeg or application/json"),
            (422, "wrong JSON shape, pixels not finite or outside [0, 1], a blank picture, or "
                  "too many pixels"),
        )
    }

    @app.exception_handler(APIError)
    async def _api_error(request: Request, error: APIError) -> JSONResponse:
        return JSONResponse({"error": error.code, "message": error.message},
                            status_code=error.status)

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

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": _PAGE_POLICY,
                                           "Cache-Control": "no-cache"})

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
        when unknown), the model `file` and its `sha256`, and the request `limits`."""
        return {**predictor.facts(),
                "limits": {"max_body_bytes": MAX_BODY_BYTES,
                           "max_picture_pixels": MAX_PICTURE_PIXELS,
                           "picture_formats": list(PICTURE_FORMATS)}}

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
        body = await _read_body(request, MAX_BODY_BYTES)
        answer, timing = await run_in_threadpool(_answer, predictor, kind, body)
        return Response(answer, media_type="application/json",
                        headers={"Server-Timing": timing})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
