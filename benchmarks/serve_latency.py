"""How fast ``nnscratch serve`` answers: latency and throughput of ``POST /api/predict``.

    python benchmarks/serve_latency.py [MODEL] [--requests N] [--seconds S] [--clients N]
                                       [--quick] [--json]

Starts ``nnscratch serve MODEL --port 0 --quiet`` in a subprocess and drives it from this one,
over keep-alive HTTP connections on 127.0.0.1, with one PNG: a "7" drawn on a 280x280 pad the
way the page draws it (black strokes 22 pixels wide on white) and scaled down to 140x140, the
body the page sends.

- **Latency**: one client, one request at a time; p50, p99 and mean of the round trip (send,
  wait, read the whole answer), after a warm-up.
- **Throughput**: ``--clients`` threads, each with its own connection, sending requests back
  to back for ``--seconds``; completed requests per second.
- **The bare work**, in this process: the same picture through the same code the server runs
  (:meth:`Predictor.predict_picture`: decode, MNIST preprocessing, forward pass, probabilities),
  with its parts timed on their own: decode and preprocess, forward and probabilities, and the
  JSON document. **Server overhead** = latency p50 - the bare work's median: what HTTP, the
  framework, the thread hand-off and the client add.
- **The work inside the server**: the medians of the steps the server times itself and reports
  in its ``Server-Timing`` header. Between requests the server's caches go cold (the client
  and other processes run in between), so the same steps take longer there than in the
  tight in-process loop above; latency p50 minus this is what HTTP and the framework cost.

MODEL defaults to what ``nnscratch serve`` picks (the newest 10-digit run under ``runs/``, else
the cached ``mnist10`` model, trained on first use). Client and server share the machine's
cores, so on two cores the figures include the client's own time. ``--quick`` (a few requests,
one second) only proves that the script works.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

SEVEN = [[(0.3, 0.25), (0.7, 0.25)], [(0.7, 0.25), (0.45, 0.8)]]
PAD = 280
BRUSH = round(PAD * 2.2 / 28)  # the page's brush: static/pad.js, BRUSH_FRACTION
SENT = 140  # the size of the picture the page sends: static/pad.js, SENT_SIZE


def drawn_png(strokes: list[list[tuple[float, float]]] = SEVEN) -> bytes:
    """The PNG the page sends for `strokes`: round black strokes on a white 280x280 pad,
    scaled down to 140x140."""
    from PIL import Image, ImageDraw

    pad = Image.new("L", (PAD, PAD), 255)
    pen = ImageDraw.Draw(pad)
    for stroke in strokes:
        points = [(x * PAD, y * PAD) for x, y in stroke]
        pen.line(points, fill=0, width=BRUSH)
        for x, y in points:  # round caps and joins, as the canvas draws them
            pen.ellipse((x - BRUSH / 2, y - BRUSH / 2, x + BRUSH / 2, y + BRUSH / 2), fill=0)
    buffer = io.BytesIO()
    pad.resize((SENT, SENT), Image.Resampling.BOX).save(buffer, "PNG")
    return buffer.getvalue()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python benchmarks/serve_latency.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", help="model file or run folder (default: as serve)")
    parser.add_argument("--requests", type=int, default=2000,
                        help="sequential requests timed for the latency (default: 2000)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="length of the throughput run (default: 10)")
    parser.add_argument("--clients", type=int, default=8,
                        help="concurrent clients in the throughput run (default: 8)")
    parser.add_argument("--quick", action="store_true",
                        help="30 requests and one second: proves the script works")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.seconds = 30, 1.0
    return args


class Server:
    """``nnscratch serve MODEL --port 0 --quiet`` in a subprocess, stopped on exit."""

    def __init__(self, model: str | None) -> None:
        command = [sys.executable, "-m", "nnscratch", "serve", "--port", "0", "--quiet"]
        self.process = subprocess.Popen(command + ([model] if model else []),
                                        stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line.startswith("Serving on http://"):
            self.process.kill()
            raise SystemExit(f"nnscratch serve did not start: {line!r}")
        host_port = line.split("//", 1)[1].strip()
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=60)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def ask(connection: http.client.HTTPConnection, png: bytes) -> dict[str, float]:
    """One prediction; returns the server's own timing of its steps, in milliseconds."""
    connection.request("POST", "/api/predict", body=png, headers={"Content-Type": "image/png"})
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise SystemExit(f"the server answered {response.status}: {body[:200]!r}")
    timing = response.getheader("Server-Timing", "")
    return {step: float(duration) for step, duration in
            (item.strip().split(";dur=") for item in timing.split(",") if ";dur=" in item)}


def latency(server: Server, png: bytes, n: int) -> tuple[list[float], list[dict[str, float]]]:
    """Round-trip seconds of `n` sequential requests, and the server's timing of each."""
    connection = server.connect()
    for _ in range(max(n // 10, 20)):  # warm-up: connection, thread pool, caches
        ask(connection, png)
    times, steps = [], []
    for _ in range(n):
        start = time.perf_counter()
        steps.append(ask(connection, png))
        times.append(time.perf_counter() - start)
    connection.close()
    return times, steps


def throughput(server: Server, png: bytes, clients: int, seconds: float) -> float:
    counts = [0] * clients
    start_line = threading.Barrier(clients + 1)
    stop = threading.Event()

    def client(index: int) -> None:
        connection = server.connect()
        ask(connection, png)  # connected and warm before the clock starts
        start_line.wait()
        while not stop.is_set():
            ask(connection, png)
            counts[index] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    start_line.wait()
    start = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    # Requests still in flight when the clock stopped finish after it and are counted: the
    # window is short by at most one request per client.
    return sum(counts) / (time.perf_counter() - start)


def median_seconds(function: Any, repeats: int) -> float:
    for _ in range(max(repeats // 10, 5)):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bare_work(model_path: Path, png: bytes, repeats: int) -> dict[str, float]:
    """Median seconds of the server's work on one picture, done here without HTTP."""
    from nnscratch.data import preprocess_images
    from nnscratch.images import decode_picture, preprocess_digit
    from nnscratch.serve.predictor import Predictor, forward_with_hidden

    predictor = Predictor.load(model_path)
    gray = decode_picture(png)
    digit = preprocess_digit(gray)
    X = preprocess_images(digit[np.newaxis], predictor.dtype)
    model, loss = predictor.saved.model, predictor.saved.loss
    answer = predictor.predict_picture(png)
    return {
        "total": median_seconds(lambda: predictor.predict_picture(png), repeats),
        "decode": median_seconds(lambda: decode_picture(png), repeats),
        "preprocess": median_seconds(lambda: preprocess_digit(gray), repeats),
        "forward": median_seconds(
            lambda: loss.class_probabilities(forward_with_hidden(model, X)[0]), repeats),
        "json": median_seconds(
            lambda: json.dumps(answer.to_json(predictor.classes)).encode(), repeats),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from nnscratch.serve.default_model import resolve_model

    model = resolve_model(args.model)
    path = model / "model.npz" if model.is_dir() else model
    png = drawn_png()
    with Server(str(model)) as server:
        facts = json.loads(_get(server, "/api/model"))
        times, steps = latency(server, png, args.requests)
        rate = throughput(server, png, args.clients, args.seconds)
    bare = bare_work(path, png, max(args.requests // 2, 20))
    p50, p99 = np.percentile(times, [50, 99])
    figures = {
        "model": str(path),
        "architecture": facts["summary"],
        "dtype": facts["dtype"],
        "picture_bytes": len(png),
        "requests": args.requests,
        "latency_ms": {"p50": 1e3 * p50, "p99": 1e3 * p99, "mean": 1e3 * float(np.mean(times))},
        "clients": args.clients,
        "seconds": args.seconds,
        "requests_per_second": rate,
        "bare_ms": {key: 1e3 * value for key, value in bare.items()},
        "server_overhead_ms": 1e3 * (p50 - bare["total"]),
        "in_server_ms": {step: statistics.median(s[step] for s in steps) for step in steps[0]},
    }
    figures["in_server_ms"]["total"] = statistics.median(sum(s.values()) for s in steps)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    bare_ms = figures["bare_ms"]
    print(f"model {path}: {facts['summary']}, {facts['dtype']}; one {len(png):,}-byte "
          f"{SENT}x{SENT} PNG, as the page sends")
    print(f"POST /api/predict, 1 client, {args.requests} requests: "
          f"p50 {1e3 * p50:.2f} ms, p99 {1e3 * p99:.2f} ms, mean {1e3 * np.mean(times):.2f} ms")
    print(f"POST /api/predict, {args.clients} clients, {args.seconds:g} s: {rate:,.0f} requests/s")
    print(f"bare work in-process, median: {bare_ms['total']:.2f} ms = decode "
          f"{bare_ms['decode']:.2f} + MNIST preprocessing {bare_ms['preprocess']:.2f} + forward "
          f"and probabilities {bare_ms['forward']:.3f} (+ the answer's JSON "
          f"{bare_ms['json']:.2f}, made in the server)")
    print(f"server overhead (p50 - bare work): {figures['server_overhead_ms']:.2f} ms")
    inside = figures["in_server_ms"]
    print(f"the same work timed inside the server (its Server-Timing header), median: "
          f"{inside['total']:.2f} ms = " + " + ".join(
              f"{step} {value:.2f}" for step, value in inside.items() if step != "total")
          + f"; the rest of the p50, {1e3 * p50 - inside['total']:.2f} ms, is HTTP, the "
          "framework, the thread hand-offs and the client")
    return 0


def _get(server: Server, path: str) -> bytes:
    connection = server.connect()
    connection.request("GET", path)
    body = connection.getresponse().read()
    connection.close()
    return body


if __name__ == "__main__":
    sys.exit(main())
