"""The server under load and abuse (issue 22): slots, timeouts, drained bodies, Host, HEAD.

The application's bounds are checked at the ASGI level (what it reads, what it answers, with
the module's limits made small); the connection's (header timeout, unparsable requests, a 413
that must reach a client still sending) on a real uvicorn with nnscratch's protocol, over raw
sockets. ``test_serve_server.py`` has the whole command: signals, shutdown, memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient

from nnscratch.nn.model import build_mlp
from nnscratch.serialization import save_model
from nnscratch.serve import Predictor, _protocol, create_app
from nnscratch.serve import app as app_module
from nnscratch.serve.server import allowed_hosts, bind
from test_serve_app import PREPROCESSING, drawing, encode


@pytest.fixture(scope="module")
def predictor(tmp_path_factory) -> Predictor:
    folder = tmp_path_factory.mktemp("run")
    save_model(folder / "model.npz", build_mlp(784, [8], 10, rng=3), list(range(10)),
               metadata={"preprocessing": PREPROCESSING})
    return Predictor.load(folder)


async def _exchange(app, headers: list[tuple[bytes, bytes]], receive) -> tuple[int, dict, bytes]:
    """One POST /api/predict straight to the ASGI app: (status, headers, body)."""
    answer: dict = {"body": b""}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/api/predict", "raw_path": b"",
             "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    await app(scope, receive, send)
    return answer["status"], answer["headers"], answer["body"]


def _picture_receive(picture: bytes):
    sent = []

    async def receive() -> dict:
        if not sent:
            sent.append(True)
            return {"type": "http.request", "body": picture, "more_body": False}
        await asyncio.sleep(3600)  # pragma: no cover - the app never asks again
        return {"type": "http.disconnect"}

    return receive


PNG_HEADERS = [(b"content-type", b"image/png")]


# ---------------------------------------------------------------------------------------------
# Item 5: a bound on decodes in flight


def test_requests_beyond_the_decoding_slots_wait_then_get_503_with_retry_after(
        predictor, monkeypatch):
    monkeypatch.setattr(app_module, "MAX_DECODES", 1)
    monkeypatch.setattr(app_module, "QUEUE_SECONDS", 0.2)
    release = threading.Event()
    started = threading.Event()
    real = predictor.predict_picture

    def slow(data: bytes):
        started.set()
        release.wait(30)
        return real(data)

    monkeypatch.setattr(predictor, "predict_picture", slow)
    app = create_app(predictor)
    picture = encode(drawing(0))

    async def both() -> list:
        first = asyncio.ensure_future(_exchange(app, PNG_HEADERS, _picture_receive(picture)))
        while not started.is_set():
            await asyncio.sleep(0.01)
        second = await _exchange(app, PNG_HEADERS, _picture_receive(picture))
        release.set()
        return [await first, second]

    (status1, _, _), (status2, headers2, body2) = asyncio.run(both())
    assert status1 == 200
    assert status2 == 503 and headers2["retry-after"] == "1"
    assert json.loads(body2)["error"] == "busy"


# ---------------------------------------------------------------------------------------------
# Item 6: a body that does not arrive; item 4: a body still arriving when the server stops


def _trickle():
    """A body sent one byte, then nothing."""
    calls = []

    async def receive() -> dict:
        calls.append(True)
        if len(calls) == 1:
            return {"type": "http.request", "body": b"\x89", "more_body": True}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}  # pragma: no cover

    return receive


def test_a_body_that_does_not_arrive_in_time_is_408_and_the_connection_closed(
        predictor, monkeypatch):
    monkeypatch.setattr(app_module, "BODY_SECONDS", 0.2)
    status, headers, body = asyncio.run(_exchange(create_app(predictor), PNG_HEADERS,
                                                  _trickle()))
    assert status == 408 and headers["connection"] == "close"
    assert json.loads(body)["error"] == "body_timeout"


def test_a_body_still_arriving_when_the_server_stops_is_answered_at_once(predictor):
    stopping = asyncio.Event()
    app = create_app(predictor, stopping=stopping)

    async def stop_soon() -> tuple:
        asyncio.get_running_loop().call_later(0.1, stopping.set)
        return await _exchange(app, PNG_HEADERS, _trickle())

    status, headers, body = asyncio.run(stop_soon())
    assert status == 503 and headers["connection"] == "close"
    assert json.loads(body)["error"] == "stopping"


# ---------------------------------------------------------------------------------------------
# Item 8: the Host header; the model's file name, not its path


def test_the_hosts_answered_are_the_address_the_loopback_names_and_the_allowed_ones():
    loopback = {"127.0.0.1", "localhost", "[::1]"}
    assert allowed_hosts("127.0.0.1", 8000) == loopback | {f"{n}:8000" for n in loopback}
    assert allowed_hosts("0.0.0.0", 8000, ["Box.lan"]) == (
        loopback | {"box.lan"} | {f"{n}:8000" for n in loopback | {"box.lan"}})
    assert "[fd00::1]:8000" in allowed_hosts("fd00::1", 8000)


@pytest.mark.parametrize(("host", "status"), [("127.0.0.1:8000", 200), ("localhost:8000", 200),
                                              ("LOCALHOST:8000", 200), ("box.lan:8000", 200),
                                              ("evil.example", 421),
                                              ("evil.example:8000", 421),
                                              ("127.0.0.1:9999", 421)])
def test_a_request_for_another_host_is_refused(predictor, host, status):
    app = create_app(predictor, allowed_hosts=allowed_hosts("127.0.0.1", 8000, ["box.lan"]))
    with TestClient(app) as client:
        response = client.get("/api/model", headers={"Host": host})
    assert response.status_code == status
    if status == 421:
        assert response.json()["error"] == "unknown_host"
        assert "--allow-host" in response.json()["message"]
    else:
        assert "/" not in response.json()["file"].removesuffix("/model.npz")  # no path


# ---------------------------------------------------------------------------------------------
# Item 9: HEAD, a repeated key


@pytest.mark.parametrize("path", ["/", "/healthz"])
def test_head_answers_200_without_a_body(predictor, path):
    with TestClient(create_app(predictor)) as client:
        response = client.head(path)
    assert response.status_code == 200 and response.content == b""


def test_a_repeated_pixels_key_is_refused(predictor):
    row = json.dumps([[0.0] * 28] * 28)
    with TestClient(create_app(predictor)) as client:
        response = client.post("/api/predict", content=f'{{"pixels": {row}, "pixels": {row}}}',
                               headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"
    assert "'pixels' appears more than once" in response.json()["message"]


@pytest.mark.parametrize("recorded", ["NaN", '"high"', "7.5", "-0.1", "true", "null"])
def test_an_accuracy_that_is_not_a_share_is_shown_as_unknown(tmp_path, recorded):
    save_model(tmp_path / "model.npz", build_mlp(784, [8], 10, rng=3), list(range(10)),
               metadata={"preprocessing": PREPROCESSING})
    (tmp_path / "metrics.json").write_text(f'{{"test_accuracy": {recorded}}}')
    facts = Predictor.load(tmp_path).facts()
    assert facts["test_accuracy"] is None and facts["test_accuracy_source"] is None


# ---------------------------------------------------------------------------------------------
# The connection, on a real server: uvicorn with nnscratch's protocol


@contextlib.contextmanager
def running(app) -> Iterator[tuple[str, int]]:
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off",
                                           access_log=False, http=_protocol.Protocol))
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


def _read_all(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    connection.settimeout(30)
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def _json_answer(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.mark.system
@pytest.mark.parametrize("length", [b"abc", b"-5", b"1e3"])
def test_a_bad_content_length_gets_the_documented_json_error(predictor, length):
    with running(create_app(predictor)) as address, socket.create_connection(address) as c:
        c.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                  b"Content-Length: " + length + b"\r\n\r\n")
        status, document = _json_answer(_read_all(c))
    assert status == 400 and document["error"] == "bad_content_length"


@pytest.mark.system
def test_headers_that_do_not_arrive_in_time_get_408_and_the_connection_closed(
        predictor, monkeypatch):
    monkeypatch.setattr(_protocol, "HEADER_SECONDS", 0.5)
    with running(create_app(predictor)) as address, socket.create_connection(address) as c:
        c.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-")  # and nothing more
        status, document = _json_answer(_read_all(c))
    assert status == 408 and document["error"] == "header_timeout"


@pytest.mark.system
def test_a_body_sent_a_byte_at_a_time_is_cut_off(predictor, monkeypatch):
    monkeypatch.setattr(app_module, "BODY_SECONDS", 0.5)
    with running(create_app(predictor)) as address, socket.create_connection(address) as c:
        c.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        for _ in range(3):
            c.sendall(b"1\r\nx\r\n")
            time.sleep(0.2)
        status, document = _json_answer(_read_all(c))
    assert status == 408 and document["error"] == "body_timeout"


def _read_response(connection: socket.socket) -> tuple[int, dict]:
    """One response with a Content-Length: its status and JSON body."""
    connection.settimeout(30)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        assert chunk, f"closed after {received!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        chunk = connection.recv(65536)
        assert chunk, f"closed after {received!r}"
        body += chunk
    return int(head.split()[1]), json.loads(body)


@pytest.mark.system
@pytest.mark.parametrize("declared", [True, False])
@pytest.mark.parametrize("close", [True, False])
def test_a_client_sending_a_too_large_body_reads_the_413(predictor, declared, close):
    """2 MiB + 1 byte, sent once the server may already have answered (as urllib does, with
    ``Connection: close``): the client reads the JSON, not a reset."""
    body = b"\0" * (app_module.MAX_BODY_BYTES + 1)
    if declared:
        head = f"Content-Length: {len(body)}\r\n".encode()
        payload = body
    else:
        head = b"Transfer-Encoding: chunked\r\n"
        payload = b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n"
                           for part in (body[i:i + 2**16] for i in range(0, len(body), 2**16)))
        payload += b"0\r\n\r\n"
    if close:
        head += b"Connection: close\r\n"
    with running(create_app(predictor)) as address, socket.create_connection(address) as c:
        c.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                  + head + b"\r\n")
        time.sleep(0.3)  # the server answers a declared length now, and used to close
        for start in range(0, len(payload), 2**16):
            c.sendall(payload[start:start + 2**16])  # a reset here, or below, is the bug
        status, document = _read_response(c)
    assert status == 413 and document["error"] == "body_too_large"


@pytest.mark.system
def test_a_real_picture_is_still_answered_through_the_protocol(predictor):
    picture = encode(drawing(1))
    with running(create_app(predictor)) as address, socket.create_connection(address) as c:
        c.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                  + f"Content-Length: {len(picture)}\r\nConnection: close\r\n\r\n".encode()
                  + picture)
        status, document = _json_answer(_read_all(c))
    assert status == 200 and len(document["probabilities"]) == 10
    assert np.isclose(sum(document["probabilities"]), 1.0, atol=1e-5)

