"""Slow-client drill: hold many slow sockets against the service and measure who still gets in.

Starts a private Redis, a fresh SQLite database, one scoring worker and gunicorn (2 sync workers,
APP_ENV=production) and, in the production shape, nginx in front of it (deploy/nginx/, as
docs/deploy.md requires). Then, for ``--seconds``, it keeps ``--sockets`` slow connections open:
half send their request headers one line every 4 s, half declare a 60 KB comment body and send
it one byte every 4 s (a socket the server drops is opened again). Meanwhile it probes
GET /healthz every 0.2 s and POSTs a comment every 0.5 s. It prints /healthz p50/p99 and POST
success before and during the attack; the last line of stdout is the JSON result.

    python scripts/drill_slow_clients.py [--shape production|gunicorn] [--sockets 100]
                                         [--seconds 60] [--port N]

``--shape gunicorn`` publishes gunicorn's sync workers directly (how the Dockerfile and compose
did before nginx was put in front): the comparison. ``--shape make-run`` runs the web exactly
as `make run` starts it (no front). Exit status 0 when /healthz p99 < 250 ms and every
POST got 202 during the attack.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import nginx, procs  # noqa: E402
from scripts.run import web_command  # noqa: E402
from service.db.migrate import upgrade  # noqa: E402
from service.embedded_redis import RedisServer, free_port  # noqa: E402

DRIP_SECONDS = 4.0
BODY_BYTES = 60_000
PROBE_TIMEOUT = 5.0
HEALTHZ_TARGET_MS = 250.0


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


class SlowSocket(threading.Thread):
    """One slow client: headers a line at a time, or a body a byte at a time."""

    def __init__(self, port: int, body: bool, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.body, self.stop = port, body, stop
        self.connects = 0
        self.open = False

    def _session(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            self.connects += 1
            self.open = True
            if self.body:
                sock.sendall(b"POST /api/v1/comments HTTP/1.1\r\nHost: drill\r\n"
                             b"Content-Type: application/json\r\n"
                             b"Content-Length: " + str(BODY_BYTES).encode() + b"\r\n\r\n{")
            else:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: drill\r\n")
            i = 0
            while not self.stop.wait(DRIP_SECONDS):
                sock.sendall(b" " if self.body else f"X-Drip-{i}: {i}\r\n".encode())
                i += 1

    def run(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(OSError):  # dropped by the server: open another one
                self._session()
            self.open = False
            self.stop.wait(0.1)


def probe(url: str, data: bytes | None = None) -> tuple[int, float]:
    """One request: (status or 0 on failure/timeout, milliseconds; a timeout counts fully)."""
    headers = {"Content-Type": "application/json"} if data else {}
    started = time.monotonic()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers),
                                    timeout=PROBE_TIMEOUT) as response:
            response.read()
            status = int(response.status)
    except urllib.error.HTTPError as error:
        status = int(error.code)
    except OSError:
        return 0, PROBE_TIMEOUT * 1000
    return status, (time.monotonic() - started) * 1000


def measure(base: str, seconds: float, tag: str, counter: list[int]) -> dict[str, Any]:
    """Probe /healthz every 0.2 s and POST a comment every 0.5 s for ``seconds``."""
    health: list[tuple[int, float]] = []
    posts: list[tuple[int, float]] = []
    stop = time.monotonic() + seconds

    def poster() -> None:
        while time.monotonic() < stop:
            counter[0] += 1
            n = counter[0]
            body = json.dumps({"post": "slow-clients", "author_name": f"Reader {n}",
                               "content": f"A comment sent during the {tag} phase ({n})."})
            posts.append(probe(f"{base}/api/v1/comments", body.encode()))
            time.sleep(0.5)

    thread = threading.Thread(target=poster, daemon=True)
    thread.start()
    while time.monotonic() < stop:
        health.append(probe(f"{base}/healthz"))
        time.sleep(0.2)
    thread.join(PROBE_TIMEOUT + 1)
    ms = [m for _, m in health]
    return {
        "healthz_probes": len(health),
        "healthz_ok": sum(1 for s, _ in health if s == 200),
        "healthz_p50_ms": round(statistics.median(ms), 1) if ms else None,
        "healthz_p99_ms": round(pct(ms, 99) or 0, 1),
        "posts": len(posts),
        "posts_202": sum(1 for s, _ in posts if s == 202),
        "post_p99_ms": round(pct([m for _, m in posts], 99) or 0, 1),
    }


def run(shape: str, sockets: int, seconds: float, port: int) -> dict[str, Any]:
    """Start the shape, measure before and during the attack."""
    workdir = Path(tempfile.mkdtemp(prefix="slow-clients-"))
    redis = RedisServer(workdir)
    started: list[subprocess.Popen[bytes]] = []
    try:
        redis.start()
        url = f"sqlite:///{workdir / 'drill.db'}"
        upgrade(url)
        env = {**os.environ, "APP_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(32),
               "DATABASE_URL": url, "REDIS_URL": redis.url, "VAR_DIR": str(workdir),
               "LOG_LEVEL": "WARNING", "QUEUE_NAME": "slow-clients",
               # The drill's own probes come from this machine: not rate-limited.
               "TRUSTED_IPS": "127.0.0.1"}
        env.setdefault("MODEL_DIR", str(ROOT / "var" / "models"))
        subprocess.run([sys.executable, "-m", "flask", "--app", "service", "model", "ensure"],
                       env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        web_port = free_port() if shape == "production" else port
        if shape == "production":
            env["PROXY_COUNT"] = "1"
            started.append(nginx.start(workdir / "nginx", port, f"127.0.0.1:{web_port}"))
        gunicorn = [sys.executable, "-m", "gunicorn", "service.wsgi:app", "--bind",
                    f"127.0.0.1:{web_port}", "--workers", "2", "--timeout", "30",
                    "--log-level", "warning"]
        if shape == "make-run":
            gunicorn = web_command(sys.executable, {"PORT": str(web_port)})
        started.append(subprocess.Popen(gunicorn, env=env, cwd=ROOT))
        started.append(subprocess.Popen([sys.executable, "-m", "worker"], env=env, cwd=ROOT))
        base = f"http://127.0.0.1:{port}"
        procs.wait_http(f"{base}/readyz", timeout=90)
        counter = [0]
        result: dict[str, Any] = {"shape": shape, "sockets": sockets, "seconds": seconds,
                                  "before": measure(base, 5, "quiet", counter)}
        stop = threading.Event()
        attackers = [SlowSocket(port, body=i % 2 == 1, stop=stop) for i in range(sockets)]
        for attacker in attackers:
            attacker.start()
        time.sleep(1)  # every socket open before the measurement starts
        result["during"] = measure(base, seconds, "attack", counter)
        result["during"]["slow_sockets_open_at_end"] = sum(a.open for a in attackers)
        result["during"]["slow_connects"] = sum(a.connects for a in attackers)
        stop.set()
        return result
    finally:
        procs.stop(started)
        redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    """Command line; the last line of stdout is the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=["production", "gunicorn", "make-run"],
                        default="production")
    parser.add_argument("--sockets", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    result = run(args.shape, args.sockets, args.seconds, args.port or free_port())
    for phase in ("before", "during"):
        p = result[phase]
        print(f"{phase:<7} /healthz p50 {p['healthz_p50_ms']} ms, p99 {p['healthz_p99_ms']} ms "
              f"({p['healthz_ok']}/{p['healthz_probes']} answered 200); POST "
              f"{p['posts_202']}/{p['posts']} got 202, p99 {p['post_p99_ms']} ms")
    print(json.dumps(result))
    during = result["during"]
    ok = during["healthz_p99_ms"] < HEALTHZ_TARGET_MS and during["posts_202"] == during["posts"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
