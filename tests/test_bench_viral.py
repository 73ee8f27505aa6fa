"""The viral-post phase's load generator (bench/viral.py) against a real HTTP server: the
arrival rate it promises, the answers it records, the refusals it tells apart."""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bench import viral


def _generate(tmp_path: Path, port: int, requests: list[dict[str, Any]], rate: float,
              duration: float, timeout: float) -> list[Any]:
    """Run the generator as `make bench` does, in its own process; its samples."""
    file, out = tmp_path / "requests.json", tmp_path / "samples.json"
    file.write_text(json.dumps(requests))
    subprocess.run([sys.executable, "-m", "bench.viral", "gen", "--port", str(port),
                    "--requests", str(file), "--out", str(out), "--rate", str(rate),
                    "--duration", str(duration), "--timeout", str(timeout)],
                   check=True, timeout=60)
    return list(json.loads(out.read_text()))


class _Handler(BaseHTTPRequestHandler):
    """202 with an id, or the 429s of our limits and flood control, by path."""

    seen_forwarded: list[str | None] = []  # noqa: RUF012 (one list per test run is enough)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.seen_forwarded.append(self.headers.get("X-Forwarded-For"))
        answers = {
            "/ok": (202, {"id": 7, "status": "pending"}),
            "/post-limit": (429, {"detail": "This post is getting a lot of comments right now",
                                  "limit": "120 per 1 minute"}),
            "/ip-limit": (429, {"detail": "Please wait a minute", "limit": "20 per 1 minute"}),
            "/flood": (429, {"detail": "Please wait 12 seconds"}),
        }
        status, body = answers[self.path]
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_botnet_addresses_are_distinct_networks_of_the_shared_space() -> None:
    addresses = [viral.address(i) for i in range(viral.BOT_ADDRESSES + 200)]
    networks = {ipaddress.ip_network(f"{a}/24", strict=False) for a in addresses}
    assert len(networks) == len(addresses)  # Isso's guard counts by /24
    shared = ipaddress.ip_network("100.64.0.0/10")
    assert all(ipaddress.ip_address(a) in shared for a in addresses)


def test_open_loop_sends_at_its_rate_and_tells_refusals_apart(server: int,
                                                              tmp_path: Path) -> None:
    requests = [{"kind": path, "method": "POST", "path": f"/{path}", "xff": viral.address(i),
                 "body": "{}"} for i, path in enumerate(["ok", "post-limit", "ip-limit", "flood"])]
    samples = _generate(tmp_path, server, requests, rate=40, duration=1.0, timeout=5)
    assert len(samples) == 40
    by_kind: dict[str, set[tuple[int, object, object]]] = {}
    for kind, _sent, _late, _latency, status, ident, reason in samples:
        by_kind.setdefault(kind, set()).add((status, ident, reason))
    assert by_kind == {"ok": {(202, 7, None)}, "post-limit": {(429, None, "post-limit")},
                       "ip-limit": {(429, None, "ip-limit")}, "flood": {(429, None, "flood")}}
    sent = sorted(s[1] for s in samples)
    assert 0.9 <= sent[-1] - sent[0] <= 1.5  # 40 requests spread over the second, not a burst
    assert set(_Handler.seen_forwarded) >= {viral.address(i) for i in range(4)}


def test_a_server_that_never_answers_is_a_timeout(tmp_path: Path) -> None:
    # A listening socket nobody accepts from: the connection opens, no answer ever comes.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        port = silent.getsockname()[1]
        samples = _generate(tmp_path, port, [{"kind": "listing", "method": "GET", "path": "/"}],
                            rate=5, duration=0.4, timeout=0.3)
    finally:
        silent.close()
    assert [s[4] for s in samples] == [-1, -1]
    assert viral._latencies(samples)["p99_ms"] == float("inf")
