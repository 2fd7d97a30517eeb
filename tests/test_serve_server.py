"""``nnscratch serve`` end to end: run as a user runs it, in a subprocess that is always stopped.

The first line on stdout names the address; Ctrl-C stops the server with status 130 and SIGTERM
with 143, within a few seconds even while a client holds a half-sent request; another
host than the loopback one gets a warning; a taken port or a bad model is a one-line error;
without a model the default one is trained once (here on a tiny fake MNIST) and reused.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from _fake_mnist import fake_arrays, write_fake_mnist
from nnscratch.cli import build_parser, main
from nnscratch.nn.model import build_mlp
from nnscratch.serialization import save_model

FIRST_LINE = re.compile(r"Serving on http://(?P<host>[^\s]+):(?P<port>\d+)\n")

pytestmark = pytest.mark.system  # run once in CI (pyproject.toml)


@contextlib.contextmanager
def serving(*args: str | Path, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen, str]]:
    """Start ``python -m nnscratch serve ARGS``; yield it and its URL; always stop it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "nnscratch", "serve", *map(str, args)], cwd=cwd,
        env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        match = FIRST_LINE.fullmatch(line)
        if match is None:
            process.kill()
            raise AssertionError(f"first line {line!r}; stderr: {process.stderr.read()}")
        yield process, f"http://127.0.0.1:{match['port']}"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(30)
        process.stdout.close()
        process.stderr.close()


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def interrupt(process: subprocess.Popen) -> tuple[int, str]:
    """Ctrl-C, as a terminal sends it; return the exit status and stderr."""
    process.send_signal(signal.SIGINT)
    status = process.wait(30)
    return status, process.stderr.read()


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.npz"
    save_model(path, build_mlp(784, [8], 10, rng=0), list(range(10)),
               metadata={"preprocessing": {"scale": "pixel / 255"}})
    return path


def test_the_options_and_their_defaults():
    args = build_parser().parse_args(["serve"])
    assert (args.model, args.host, args.port) == (None, "127.0.0.1", 8000)


def test_first_line_is_the_address_and_ctrl_c_stops_with_status_130(model):
    with serving(model, "--host", "0.0.0.0", "--port", "0") as (process, url):
        assert int(url.rsplit(":", 1)[1]) > 0
        assert get(url + "/healthz") == {"status": "ok"}
        assert get(url + "/api/model")["file"] == f"{model.parent.name}/model.npz"  # no path
        status, stderr = interrupt(process)
        assert process.stdout.read() == ""  # the address is the only line on stdout
    assert status == 130, stderr
    assert stderr.splitlines()[-1] == "nnscratch: interrupted (Ctrl-C); the server stopped"
    assert "Traceback" not in stderr
    assert '"GET /healthz HTTP/1.1" 200' in stderr  # the request log
    # Any address but the loopback one reaches beyond this computer.
    assert "nnscratch: warning: listening on 0.0.0.0" in stderr
    assert "no authentication" in stderr


def test_a_quiet_server_refuses_a_body_declared_too_large_before_it_is_sent(model):
    with serving(model, "--port", "0", "--quiet") as (process, url):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
            connection.sendall(b"POST /api/predict HTTP/1.1\r\nHost: localhost\r\n"
                               b"Content-Type: image/png\r\nContent-Length: 3000000\r\n\r\n")
            reply = b""  # the body is never sent: the answer must come without it
            while b'"}' not in reply:
                chunk = connection.recv(65536)
                assert chunk, f"connection closed after {reply!r}"
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 413 ")
        assert b'"error":"body_too_large"' in reply
        assert get(url + "/healthz") == {"status": "ok"}  # and it keeps serving
        status, stderr = interrupt(process)
    assert status == 130
    assert stderr == "nnscratch: interrupted (Ctrl-C); the server stopped\n"  # no request log


def test_a_taken_port_is_a_one_line_error(model, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(model), "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"nnscratch: error: cannot listen on 127.0.0.1:{port}" in err
    assert "pick another port with --port" in err


@pytest.mark.parametrize(("argv", "message"), [
    (["--host", "no-such-host.invalid"], "--host 'no-such-host.invalid' cannot be resolved"),
])
def test_bad_options_are_one_line_errors(model, capsys, argv, message):
    assert main(["serve", str(model), *argv]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("port", "message"), [
    ("65536", "a port is between 0 and 65535 (0 picks a free one), got 65536"),
    ("70000", "a port is between 0 and 65535"), ("-1", "a port is between 0 and 65535"),
    ("abc", "expected a port number, got 'abc'")])
def test_a_bad_port_is_a_usage_error(model, capsys, port, message):
    with pytest.raises(SystemExit) as stopped:
        main(["serve", str(model), "--port", port])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def _half_sent_request(port: int) -> socket.socket:
    """A client that sent its headers and 10 bytes of a 1000-byte body, and waits."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=30)
    connection.sendall(b"POST /api/predict HTTP/1.1\r\nHost: localhost:%d\r\n"
                       b"Content-Type: image/png\r\nContent-Length: 1000\r\n\r\n" % port
                       + b"\x89PNG\r\n\x1a\n\0\0")
    return connection


@pytest.mark.parametrize(("signals", "status", "said"), [
    ([signal.SIGTERM], 143, "terminated (SIGTERM)"),
    ([signal.SIGINT], 130, "interrupted (Ctrl-C)"),
    ([signal.SIGINT, signal.SIGINT], 130, "interrupted (Ctrl-C)"),  # impatient: twice
])
def test_a_signal_stops_the_server_soon_even_with_a_half_sent_request(model, signals, status,
                                                                      said):
    with serving(model, "--port", "0") as (process, url):
        port = int(url.rsplit(":", 1)[1])
        client = _half_sent_request(port)
        idle = socket.create_connection(("127.0.0.1", port), timeout=30)  # never says a word
        get(url + "/healthz")  # the request above has surely reached the application
        for number in signals:
            process.send_signal(number)
        code = process.wait(15)  # the graceful shutdown's bound is 3 s; the bug hung for ever
        stderr = process.stderr.read()
        answer = client.recv(65536)
        client.close()
        idle.close()
    assert code == status, stderr
    assert stderr.splitlines()[-1] == f"nnscratch: {said}; the server stopped"
    assert "Traceback" not in stderr and '" 500' not in stderr, stderr
    assert answer.startswith(b"HTTP/1.1 503 ") and b'"error":"stopping"' in answer


def test_another_host_is_refused_unless_allowed(model):
    with serving(model, "--port", "0", "--allow-host", "box.lan") as (process, url):
        port = int(url.rsplit(":", 1)[1])

        def status_for(host: str) -> int:
            request = urllib.request.Request(url + "/healthz", headers={"Host": host})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return response.status
            except urllib.error.HTTPError as error:
                return error.code

        assert status_for(f"localhost:{port}") == 200
        assert status_for(f"box.lan:{port}") == 200
        assert status_for(f"rebinding.example:{port}") == 421
        interrupt(process)


def test_a_bad_model_is_a_one_line_error(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "missing.npz")]) == 1
    assert "missing.npz does not exist" in capsys.readouterr().err
    save_model(tmp_path / "small.npz", build_mlp(64, [4], 3, rng=0), [0, 1, 2])
    assert main(["serve", str(tmp_path / "small.npz")]) == 1
    assert "takes 64 inputs, but MNIST images have 784" in capsys.readouterr().err


def test_without_a_model_the_default_one_is_trained_once_and_reused(tmp_path):
    mnist = tmp_path / "mnist"
    write_fake_mnist(mnist, fake_arrays(n_train=60, n_test=20))
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    options = ["--port", "0", "--data-dir", str(mnist), "--no-verify"]
    cached = tmp_path / "cache" / "nnscratch" / "models" / "mnist10"
    with serving(*options, cwd=tmp_path, env=env) as (process, url):
        facts = get(url + "/api/model")
        _, first = interrupt(process)
    assert "training the default model once (mnist10 recipe" in first
    assert facts["file"] == "mnist10/model.npz"
    assert facts["layer_sizes"] == [784, 512, 256, 10]
    assert facts["test_accuracy_source"] == "metrics.json"
    with serving(*options, cwd=tmp_path, env=env) as (process, url):
        assert get(url + "/api/model")["sha256"] == facts["sha256"]
        _, second = interrupt(process)
    assert "training" not in second and f"serving the default model in {cached}" in second


def test_max_parameters_is_passed_to_the_model_loader(model, capsys):
    assert main(["serve", str(model), "--max-parameters", "100"]) == 1
    err = capsys.readouterr().err
    assert "nnscratch: error:" in err and "--max-parameters" in err


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads /proc (Linux)")
def test_forty_hostile_uploads_at_once_keep_the_memory_bounded(tmp_path):
    """Issue 22's amplification: a 7 KB PNG of 2000x2000 pixels decodes to 4 million; 40 of
    them at once took the server to 5 GB. Decodes are now bounded (4 at a time)."""
    import concurrent.futures
    import http.client
    import io

    import numpy as np
    from PIL import Image

    path = tmp_path / "model.npz"
    save_model(path, build_mlp(784, [512, 256], 10, rng=0), list(range(10)),
               metadata={"preprocessing": {"scale": "pixel / 255"}})
    image = np.full((2000, 2000), 255, np.uint8)
    image[600:1400, 900:1100] = 0  # a "1": a real digit, not a blank picture
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG", optimize=True)
    picture = buffer.getvalue()
    assert len(picture) < 8000
    with serving(path, "--port", "0", "--quiet") as (process, url):
        port = int(url.rsplit(":", 1)[1])

        def upload(_: int) -> int:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            connection.request("POST", "/api/predict", body=picture,
                               headers={"Content-Type": "image/png"})
            response = connection.getresponse()
            response.read()
            connection.close()
            return response.status

        with concurrent.futures.ThreadPoolExecutor(40) as pool:
            statuses = list(pool.map(upload, range(40)))
        status_file = Path(f"/proc/{process.pid}/status").read_text()
        peak = int(re.search(r"VmHWM:\s+(\d+) kB", status_file)[1]) * 1024
        interrupt(process)
    assert set(statuses) <= {200, 503} and 200 in statuses, statuses
    assert peak < 2**30, f"peak resident memory {peak / 2**20:.0f} MiB"
