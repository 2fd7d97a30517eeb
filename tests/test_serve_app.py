"""Tests for :mod:`nnscratch.serve.app`: every route, every kind of bad input, concurrency.

Most tests use the framework's in-process test client. The body-size limit is checked at the
ASGI level, where the test sees exactly how much of the body the application read; the
concurrency test runs the application in a real uvicorn server on a background thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import http.client
import io
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from _numerics import assert_close
from nnscratch.cli import main
from nnscratch.nn.model import build_mlp
from nnscratch.serialization import save_model
from nnscratch.serve import MAX_BODY_BYTES, Predictor, create_app
from nnscratch.serve.app import DRAIN_BYTES
from nnscratch.serve.server import bind

PREPROCESSING = {"flatten": [28, 28], "scale": "pixel / 255", "dtype": "float32"}


def encode(image: np.ndarray, kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, kind)
    return buffer.getvalue()


def drawing(seed: int) -> np.ndarray:
    """A 200x200 pad, black ink on white, with one to three random thick strokes."""
    rng = np.random.default_rng(seed)
    pad = np.full((200, 200), 255, dtype=np.uint8)
    for _ in range(rng.integers(1, 4)):
        top, left = rng.integers(20, 120, 2)
        height, width = rng.integers(15, 80, 2)
        pad[top:top + height, left:left + max(width // 3, 12)] = 0
    return pad


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("run")
    save_model(folder / "model.npz", build_mlp(784, [24], 10, rng=3), list(range(10)),
               metadata={"preprocessing": PREPROCESSING, "metrics": {"test_accuracy": 0.75}})
    return folder


@pytest.fixture(scope="module")
def predictor(model_dir) -> Predictor:
    return Predictor.load(model_dir)


@pytest.fixture(scope="module")
def client(predictor) -> Iterator[TestClient]:
    # A server error would surface as an exception; here it must come back as a 500 answer,
    # which the tests check never happens.
    with TestClient(create_app(predictor), raise_server_exceptions=False) as test_client:
        yield test_client


def post(client: TestClient, body: bytes | str, content_type: str | None) -> object:
    headers = {"Content-Type": content_type} if content_type else {}
    return client.post("/api/predict", content=body, headers=headers)


# ---------------------------------------------------------------------------------------------
# The page and the small routes


def test_the_page_is_served_with_nothing_from_elsewhere(client):
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "text/html")
    page = response.text
    for element in ('<canvas id="pad"', 'id="prediction"', 'id="bars"', 'id="seen"',
                    'id="hidden"', 'id="clear"', 'id="undo"', 'href="docs"', "draw a digit"):
        assert element in page, element
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert links and not [link for link in links if "//" in link or link.startswith("http")]
    for asset in ("static/pad.js", "static/style.css"):
        assert asset in links
        served = client.get("/" + asset)
        assert served.status_code == 200 and len(served.text) > 500
        assert "http://" not in served.text and "https://" not in served.text


def test_the_page_script_draws_with_pointer_events_and_sequence_numbers(client):
    script = client.get("/static/pad.js").text
    style = client.get("/static/style.css").text
    for needle in ("pointerdown", "pointermove", "pointerup", "pointercancel",
                   "setPointerCapture", "seq <= shown", '"Content-Type": "image/png"'):
        assert needle in script, needle
    assert "touch-action: none" in style


def test_the_page_files_are_package_data():
    """A wheel must carry every file of the page: pyproject's package-data globs cover them."""
    import fnmatch

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: tomli, a dependency there
        import tomli as tomllib

    from nnscratch.serve.app import STATIC_DIR

    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["nnscratch.serve"]
    files = sorted(path.name for path in STATIC_DIR.iterdir())
    assert files == ["index.html", "pad.js", "style.css"]
    for name in files:
        assert any(fnmatch.fnmatch(f"static/{name}", glob) for glob in globs), name


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_model_facts(client, predictor, model_dir):
    facts = client.get("/api/model").json()
    assert facts["layer_sizes"] == [784, 24, 10] and facts["classes"] == list(range(10))
    assert facts["dtype"] == "float32" and facts["test_accuracy"] == 0.75
    assert facts["file"] == f"{model_dir.name}/model.npz"  # the name: the path is nobody's business
    assert re.fullmatch("[0-9a-f]{64}", facts["sha256"])
    assert facts["limits"] == {"max_body_bytes": MAX_BODY_BYTES,
                               "max_picture_pixels": 4_000_000,
                               "picture_formats": ["PNG", "JPEG"],
                               "body_seconds": 10.0, "max_decodes": 4}


def test_the_api_is_documented(client):
    schema = client.get("/openapi.json").json()
    predict = schema["paths"]["/api/predict"]["post"]
    assert set(predict["requestBody"]["content"]) == {"image/png", "image/jpeg",
                                                      "application/json"}
    assert {"200", "400", "413", "415", "422"} <= set(predict["responses"])
    assert {"/api/model", "/healthz"} <= set(schema["paths"])
    docs = client.get("/docs")
    assert docs.status_code == 200
    # Swagger UI comes from the package itself, never from a CDN: the docs work offline.
    sources = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert sources and all(source.startswith("/") for source in sources), sources
    for source in sources:
        assert client.get(source).status_code == 200, source


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("GET", "/nowhere", 404, "not_found"),
    ("GET", "/api/predict", 405, "method_not_allowed"),
    ("POST", "/healthz", 405, "method_not_allowed"),
])
def test_unknown_routes_are_json_errors(client, method, path, status, code):
    response = client.request(method, path)
    assert response.status_code == status
    assert response.json()["error"] == code and path in response.json()["message"]


# ---------------------------------------------------------------------------------------------
# Predictions


def test_a_png_gets_the_answer_of_nnscratch_predict(client, model_dir, tmp_path, capsys):
    for seed in range(3):
        path = tmp_path / f"pad{seed}.png"
        path.write_bytes(encode(drawing(seed)))
        assert main(["predict", str(model_dir), str(path), "--json"]) == 0
        (expected,) = json.loads(capsys.readouterr().out)
        response = post(client, path.read_bytes(), "image/png")
        assert response.status_code == 200
        answer = response.json()
        assert answer["label"] == expected["label"]
        np.testing.assert_allclose(answer["probabilities"],
                                   list(expected["probabilities"].values()), rtol=0, atol=1e-6)


def test_a_jpeg_gets_the_answer_of_nnscratch_predict(client, model_dir, tmp_path, capsys):
    path = tmp_path / "pad.jpg"
    path.write_bytes(encode(drawing(7), "JPEG"))
    assert main(["predict", str(model_dir), str(path), "--json"]) == 0
    (expected,) = json.loads(capsys.readouterr().out)
    answer = post(client, path.read_bytes(), "image/jpeg").json()
    assert answer["label"] == expected["label"]
    np.testing.assert_allclose(answer["probabilities"],
                               list(expected["probabilities"].values()), rtol=0, atol=1e-6)


def test_an_answer_is_the_documented_json(client, predictor):
    response = post(client, encode(drawing(1)), "image/png; charset=binary")
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"label", "probabilities", "classes", "input", "hidden"}
    assert answer["classes"] == list(range(10))
    assert sum(answer["probabilities"]) == pytest.approx(1, abs=1e-6)
    assert answer["label"] == int(np.argmax(answer["probabilities"]))
    assert np.shape(answer["input"]) == (28, 28)
    assert len(answer["hidden"]) == 24
    # How long each step took, in milliseconds, as browsers' developer tools show it.
    steps = re.fullmatch(r"decode;dur=([\d.]+), preprocess;dur=([\d.]+), forward;dur=([\d.]+), "
                         r"json;dur=([\d.]+)", response.headers["server-timing"])
    assert steps and all(float(ms) > 0 for ms in steps.groups())
    pixels = client.post("/api/predict", json={"pixels": answer["input"]})
    assert re.fullmatch(r"preprocess;dur=[\d.]+, forward;dur=[\d.]+, json;dur=[\d.]+",
                        pixels.headers["server-timing"])


def test_pixels_as_json_and_the_input_sent_back(client, tmp_path, model_dir, capsys):
    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[5:23, 11:17] = 255
    np.save(tmp_path / "digit.npy", digit)
    assert main(["predict", str(model_dir), str(tmp_path / "digit.npy"), "--json"]) == 0
    (expected,) = json.loads(capsys.readouterr().out)
    answer = client.post("/api/predict", json={"pixels": (digit / 255).tolist()}).json()
    assert answer["label"] == expected["label"]
    np.testing.assert_allclose(answer["probabilities"],
                               list(expected["probabilities"].values()), rtol=0, atol=1e-6)
    # What the network received, sent back as pixels, is answered the same.
    first = post(client, encode(drawing(2)), "image/png").json()
    again = client.post("/api/predict", json={"pixels": first["input"]}).json()
    assert again == first


def test_a_binary_model_answers_with_its_two_classes(tmp_path):
    save_model(tmp_path / "model.npz", build_mlp(784, [8], 1, rng=0), [1, 2],
               metadata={"preprocessing": PREPROCESSING})
    with TestClient(create_app(Predictor.load(tmp_path / "model.npz"))) as binary:
        assert binary.get("/api/model").json()["classes"] == [1, 2]
        answer = post(binary, encode(drawing(4)), "image/png").json()
    assert answer["classes"] == [1, 2] and answer["label"] in (1, 2)
    assert len(answer["probabilities"]) == 2


# ---------------------------------------------------------------------------------------------
# Bad input: a 4xx JSON error naming the problem, never a 500, and the server keeps serving

_NOISE = np.random.default_rng(0).integers(0, 256, (80, 80), dtype=np.uint8)
_ROW = [0.0] * 28


def _pixels(**cells: float) -> dict:
    rows = [list(_ROW) for _ in range(28)]
    rows[5][5] = 1.0  # some ink, so only the cell under test is wrong
    for key, value in cells.items():
        r, c = map(int, key[1:].split("_"))
        rows[r][c] = value
    return {"pixels": rows}


BAD_INPUTS = [
    # (name, content type, body, status, error code, a phrase of the message)
    ("text", "text/plain", b"7", 415, "unsupported_media_type", "got Content-Type 'text/plain'"),
    ("no type", None, b"7", 415, "unsupported_media_type", "got no Content-Type"),
    ("gif type", "image/gif", encode(drawing(0), "GIF"), 415, "unsupported_media_type",
     "image/png or image/jpeg"),
    ("empty", "image/png", b"", 400, "empty_body", "the body is empty"),
    ("not a picture", "image/png", b"this is not a picture", 400, "not_a_picture",
     "not a PNG or JPEG picture"),
    ("gif bytes", "image/png", encode(drawing(0), "GIF"), 400, "not_a_picture",
     "not a PNG or JPEG picture"),
    ("truncated png", "image/png", encode(_NOISE)[:3000], 400, "undecodable_picture",
     "cannot be decoded"),
    ("truncated jpeg", "image/jpeg", encode(_NOISE, "JPEG")[:1500], 400, "undecodable_picture",
     "cannot be decoded"),
    ("blank png", "image/png", encode(np.full((64, 64), 255, np.uint8)), 422, "blank_picture",
     "no digit found"),
    ("huge png", "image/png", encode(np.full((2100, 2100), 255, np.uint8)), 422,
     "picture_too_large", "2100×2100 = 4,410,000 pixels, more than the limit of 4,000,000"),
    ("bad json", "application/json", b'{"pixels": [[0.1,', 400, "invalid_json",
     "not valid JSON"),
    ("bad utf-8", "application/json", b'{"pixels": "\xff"}', 400, "invalid_json",
     "not valid JSON"),
    ("deep json", "application/json", b"[" * 200_000 + b"]" * 200_000, 400, "invalid_json",
     "not valid JSON"),
    ("json list", "application/json", b"[[0.5]]", 422, "wrong_json_shape", "got a JSON array"),
    ("json null", "application/json", b"null", 422, "wrong_json_shape", "got a JSON null"),
    ("json keys", "application/json", json.dumps({"pixel": []}).encode(), 422,
     "wrong_json_shape", "got an object with keys ['pixel']"),
    ("rows", "application/json", json.dumps({"pixels": [_ROW] * 27}).encode(), 422,
     "bad_pixels", "got 27 rows"),
    ("columns", "application/json", json.dumps({"pixels": [_ROW] * 27 + [[*_ROW, 0.0]]}).encode(),
     422, "bad_pixels", "pixels[27] must be a row of 28 numbers, got 29 values"),
    ("string", "application/json", json.dumps(_pixels(p3_4="0.5")).encode(), 422, "bad_pixels",
     'pixels[3][4] is "0.5"'),
    ("nan", "application/json", json.dumps(_pixels(p3_4=float("nan"))).encode(), 422,
     "bad_pixels", "pixels[3][4] is nan"),
    ("infinity", "application/json", json.dumps(_pixels(p0_0=float("-inf"))).encode(), 422,
     "bad_pixels", "pixels[0][0] is -inf"),
    ("overflow", "application/json",
     json.dumps(_pixels(p0_1=0.25)).replace("0.25", "1e999").encode(), 422, "bad_pixels",
     "pixels[0][1] is inf"),
    ("gray levels", "application/json", json.dumps(_pixels(p9_9=200)).encode(), 422,
     "bad_pixels", "pixels[9][9] is 200, outside [0, 1]"),
    ("blank pixels", "application/json", json.dumps({"pixels": [_ROW] * 28}).encode(), 422,
     "blank_picture", "the pixels hold no digit"),
]


@pytest.mark.parametrize(("content_type", "body", "status", "code", "phrase"),
                         [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_is_a_clear_4xx_json_error(client, content_type, body, status, code, phrase):
    response = post(client, body, content_type)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == code
    assert phrase in response.json()["message"]


def test_a_body_over_the_limit_is_refused(client):
    response = post(client, b"\x89PNG" + b"\0" * MAX_BODY_BYTES, "image/png")
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert f"at most {MAX_BODY_BYTES:,}" in response.json()["message"]


def test_the_server_keeps_serving_after_bad_input(client):
    good = encode(drawing(5))
    expected = post(client, good, "image/png").json()
    for _, content_type, body, *_ in BAD_INPUTS:
        assert 400 <= post(client, body, content_type).status_code < 500
    assert post(client, good, "image/png").json() == expected


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=300),
       content_type=st.sampled_from(["image/png", "image/jpeg", "application/json"]))
def test_random_bytes_never_get_a_500(client, body, content_type):
    status = post(client, body, content_type).status_code
    assert 400 <= status < 500


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=30) | st.dictionaries(st.text(max_size=8),
                                                                        children, max_size=3),
    max_leaves=60))
def test_random_json_never_gets_a_500(client, document):
    status = post(client, json.dumps({"pixels": document}), "application/json").status_code
    assert status in (200, 400, 422)


# ---------------------------------------------------------------------------------------------
# The body limit, seen from inside: how much of the body the application reads


def _call(app, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, int]:
    """Send one POST /api/predict straight to the ASGI app; return (status, chunks read)."""
    read = 0
    status = 0

    async def receive() -> dict:
        nonlocal read
        read += 1
        if read > len(chunks):
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunks[read - 1],
                "more_body": read < len(chunks)}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/api/predict", "raw_path": b"",
             "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    asyncio.run(app(scope, receive, send))
    return status, read


CLOSE = [(b"connection", b"close")]


@pytest.mark.parametrize("connection", [[], CLOSE])
def test_a_declared_length_over_the_limit_is_refused_before_reading_or_drained(predictor,
                                                                             connection):
    """Kept alive, the 413 comes at once (uvicorn discards the body); closing, the body is
    read and thrown away first, so that the client still sending gets to read the 413."""
    app = create_app(predictor)
    chunks = [b"\0" * 2**16] * 64  # 4 MiB
    status, read = _call(app, [(b"content-type", b"image/png"), *connection,
                               (b"content-length", str(4 * 2**20).encode())], chunks)
    assert status == 413 and read == (64 if connection else 0)


def test_a_declared_length_over_the_drain_bound_is_refused_before_reading(predictor):
    app = create_app(predictor)
    chunks = [b"\0" * 2**16] * 4
    status, read = _call(app, [(b"content-type", b"image/png"), *CLOSE,
                               (b"content-length", str(DRAIN_BYTES + 1).encode())], chunks)
    assert status == 413 and read == 0


@pytest.mark.parametrize("connection", [[], CLOSE])
def test_a_chunked_body_is_cut_off_at_the_limit_or_drained_up_to_the_bound(predictor,
                                                                         connection):
    app = create_app(predictor)
    chunk = 2**16
    chunks = [b"\0" * chunk] * (2 * DRAIN_BYTES // chunk)  # no Content-Length
    status, read = _call(app, [(b"content-type", b"image/png"), *connection], chunks)
    assert status == 413
    # One chunk past the limit (or past the drain bound), and no more.
    assert read == (DRAIN_BYTES if connection else MAX_BODY_BYTES) // chunk + 1


def test_a_malformed_content_length_is_refused(predictor):
    app = create_app(predictor)
    status, read = _call(app, [(b"content-type", b"image/png"), (b"content-length", b"-5")],
                         [b""])
    assert status == 400 and read == 0


# ---------------------------------------------------------------------------------------------
# Concurrency, on a real server


@contextlib.contextmanager
def running(app) -> Iterator[tuple[str, int]]:
    """Run `app` with uvicorn on a free port in a background thread."""
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off",
                                           access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield sock.getsockname()[:2]
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def test_eight_threads_get_the_answers_of_one_at_a_time(predictor):
    pictures = [encode(drawing(seed)) for seed in range(25)]

    def ask(connection: http.client.HTTPConnection, picture: bytes) -> dict:
        connection.request("POST", "/api/predict", body=picture,
                           headers={"Content-Type": "image/png"})
        response = connection.getresponse()
        assert response.status == 200
        return json.loads(response.read())

    with running(create_app(predictor)) as (host, port):
        sequential = http.client.HTTPConnection(host, port, timeout=30)
        expected = [ask(sequential, picture) for picture in pictures]
        sequential.close()

        def client(offset: int) -> list[tuple[int, dict]]:
            connection = http.client.HTTPConnection(host, port, timeout=30)
            order = [(offset * 3 + i) % len(pictures) for i in range(len(pictures))]
            answers = [(i, ask(connection, pictures[i])) for i in order]
            connection.close()
            return answers

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = [pair for answers in pool.map(client, range(8)) for pair in answers]
    assert len(results) == 8 * 25
    for i, answer in results:
        assert answer["label"] == expected[i]["label"]
        assert answer["input"] == expected[i]["input"]  # preprocessing is exact
        assert_close(np.float32(answer["probabilities"]), np.float32(expected[i]["probabilities"]))
        assert_close(np.float32(answer["hidden"]), np.float32(expected[i]["hidden"]))
