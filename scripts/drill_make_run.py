"""`make faults`, part 2: break real parts of `make run` itself while comments stream in.

Starts `scripts/run.py` (make run's supervisor: embedded Redis, gunicorn, a scoring worker and a
delivery worker) on a fresh SQLite database, with a webhook subscribed to every event on a
local receiver. Comments stream in at a fixed rate over HTTP through these phases, each begun
once every comment before it is decided and delivered (a phase is measured on its own fault,
not on the backlog of the one before):

  baseline     nothing broken
  worker       the scoring worker SIGKILLed (the supervisor starts it again)
  redis-kill   the embedded Redis SIGKILLed (the supervisor starts it again)
  redis-pause  Redis paused (SIGSTOP) for most of the phase: accepts nothing, answers nothing
  slow-hook    the webhook receiver sleeps 10 s before answering each delivery

For each phase it prints comments accepted (202), refused (anything else, or no answer),
POST p99 and verdict latency (submission to decision, p50 / p99); then waits until every
comment is decided and prints decided, lost (still pending) and decided twice (audit trail).
The last line of stdout is the JSON result; the exit status is 0 only with 0 refused, 0 lost
and 0 decided twice.

    python scripts/drill_make_run.py [--rate 10] [--phase-seconds 8] [--port N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from redis import Redis
from rq import Queue, Worker
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.faults import wait_until_decided  # noqa: E402
from service.db import Comment, CommentEvent, CommentStatus, make_engine  # noqa: E402
from service.db.webhooks import Webhook  # noqa: E402
from service.embedded_redis import free_port  # noqa: E402

PHASES = ("baseline", "worker", "redis-kill", "redis-pause", "slow-hook")
SLOW_RECEIVER_SECONDS = 10.0


class Receiver:
    """A local webhook receiver that answers at once, or after ``delay`` seconds."""

    def __init__(self, port: int) -> None:
        self.delay = 0.0
        self.received = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received += 1
                time.sleep(receiver.delay)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


def post(base: str, i: int) -> tuple[int, int | None, float]:
    """POST comment ``i``: (status or 0 without an answer, id, seconds)."""
    body = json.dumps({"post": f"drill-{i % 5}", "author_name": f"Reader {i}",
                       "content": f"Comment number {i} on the drill, thanks for the post."})
    request = urllib.request.Request(f"{base}/api/v1/comments", body.encode(),
                                     {"Content-Type": "application/json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return int(response.status), int(json.load(response)["id"]), \
                time.monotonic() - started
    except urllib.error.HTTPError as error:
        return int(error.code), None, time.monotonic() - started
    except OSError:
        return 0, None, time.monotonic() - started


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def redis_pid(url: str) -> int:
    """The pid of the redis-server at ``url``."""
    with Redis.from_url(url, socket_timeout=2) as client:
        return int(client.info("server")["process_id"])


def scoring_worker_pids(url: str, queue: str) -> list[int]:
    """The pids of the scoring workers registered on ``queue``."""
    with Redis.from_url(url, socket_timeout=2) as client:
        return [w.pid for w in Worker.all(queue=Queue(queue, connection=client)) if w.pid]


def run(rate: float, phase_seconds: float, port: int, receiver_port: int,
        phases: list[str]) -> dict[str, Any]:
    """Run the drill; returns the counts per phase and overall."""
    workdir = Path(tempfile.mkdtemp(prefix="drill-"))
    database_url = f"sqlite:///{workdir / 'drill.db'}"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(VAR_DIR=str(workdir), PORT=str(port), DATABASE_URL=database_url,
               LOG_LEVEL="WARNING", FLOOD_SECONDS="0", PYTHONUNBUFFERED="1",
               # The drill measures isolation between the parts, not CPU priority (the bench
               # does): on a busy machine a niced worker would lag behind for other reasons.
               SCORING_NICE=os.environ.get("SCORING_NICE", "0"),
               # The receiver is on loopback, which webhooks may not reach unless allowed.
               WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8")
    env.setdefault("MODEL_DIR", str(ROOT / "var" / "models"))
    base = f"http://127.0.0.1:{port}"
    log_path = workdir / "run.log"
    receiver = Receiver(receiver_port)
    with log_path.open("wb") as log:
        supervisor = subprocess.Popen([sys.executable, "scripts/run.py"], env=env, cwd=ROOT,
                                      stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
    redis_url = f"unix://{workdir / 'redis.sock'}"
    engine = make_engine(database_url)
    samples: list[tuple[str, int, int | None, float]] = []
    try:
        deadline = time.monotonic() + 180
        while b"* comment service at" not in log_path.read_bytes():
            if supervisor.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"make run did not start:\n{log_path.read_text()}")
            time.sleep(0.2)
        with engine.begin() as connection:
            connection.execute(Webhook.__table__.insert().values(
                url=receiver.url, secret="drill-secret", active=True,
                events=["comment.published", "comment.held", "comment.spam"]))
        phase = "baseline"
        stop = threading.Event()

        def stream() -> None:
            i = 0
            next_at = time.monotonic()
            while not stop.is_set():
                status, ident, seconds = post(base, i)
                samples.append((phase, status, ident, seconds))
                i += 1
                next_at += 1 / rate
                time.sleep(max(0.0, next_at - time.monotonic()))

        streamer = threading.Thread(target=stream, daemon=True)
        streamer.start()
        paused: int | None = None
        window: dict[str, tuple[int, int]] = {}  # deliveries received at a phase's start, end
        unsettled: list[str] = []
        for number, name in enumerate(phases):
            if number:  # each phase starts from a quiet system, not from the last one's backlog
                phase = "settling"
                if not settle(engine, samples, receiver):
                    unsettled.append(name)
            phase = name
            start_count = receiver.received
            print(f"[drill] {phase}", file=sys.stderr, flush=True)
            started = time.monotonic()
            if phase == "worker":
                for pid in scoring_worker_pids(redis_url, "scoring"):
                    os.kill(pid, signal.SIGKILL)
            elif phase == "redis-kill":
                os.kill(redis_pid(redis_url), signal.SIGKILL)
            elif phase == "redis-pause":
                paused = redis_pid(redis_url)
                os.kill(paused, signal.SIGSTOP)
            elif phase == "slow-hook":
                receiver.delay = SLOW_RECEIVER_SECONDS
            if phase == "redis-pause":
                time.sleep(max(0.0, phase_seconds - 2))
                assert paused is not None
                os.kill(paused, signal.SIGCONT)
                paused = None
            time.sleep(max(0.0, phase_seconds - (time.monotonic() - started)))
            receiver.delay = 0.0
            window[name] = (start_count, receiver.received)
        stop.set()
        streamer.join(30)

        ids = [ident for _, _, ident, _ in samples if ident is not None]
        wait_until_decided(engine)
        with engine.connect() as connection:
            rows = {row.id: row for row in connection.execute(
                select(Comment.id, Comment.created_at, Comment.decided_at, Comment.status))}
            twice = connection.scalar(select(func.count()).select_from(
                select(CommentEvent.comment_id).where(CommentEvent.action == "score")
                .group_by(CommentEvent.comment_id).having(func.count() > 1).subquery())) or 0
        result: dict[str, Any] = {"rate_per_s": rate, "phase_seconds": phase_seconds,
                                  "phases": {}}
        for name in phases:
            mine = [s for s in samples if s[0] == name]
            latencies = [(rows[i].decided_at - rows[i].created_at).total_seconds()
                         for _, _, i, _ in mine if i in rows and rows[i].decided_at]
            posts = [seconds for _, status, _, seconds in mine if status == 202]
            result["phases"][name] = {
                "accepted": sum(1 for s in mine if s[1] == 202),
                "refused": sum(1 for s in mine if s[1] != 202),
                "refused_statuses": sorted({s[1] for s in mine if s[1] != 202}),
                "post_p99_ms": round(1000 * (pct(posts, 99) or 0), 1),
                "verdict_p50_s": round(statistics.median(latencies), 2) if latencies else None,
                "verdict_p99_s": round(pct(latencies, 99) or 0, 2) if latencies else None,
                "deliveries_received": window[name][1] - window[name][0],
            }
        result.update(
            accepted=len(ids), refused=len(samples) - len(ids),
            decided=sum(1 for i in ids if i in rows and rows[i].status != CommentStatus.PENDING),
            lost=sum(1 for i in ids if i not in rows or rows[i].status == CommentStatus.PENDING),
            decided_twice=twice, deliveries_received=receiver.received, unsettled=unsettled,
            restarts=[line for line in log_path.read_text().splitlines()
                      if "restarting in" in line],
        )
        return result
    finally:
        if supervisor.poll() is None:
            os.killpg(supervisor.pid, signal.SIGINT)  # Ctrl-C
            try:
                supervisor.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(supervisor.pid, signal.SIGKILL)
        receiver.close()
        engine.dispose()
        shutil.rmtree(workdir, ignore_errors=True)


def settle(engine: Any, samples: list[tuple[str, int, int | None, float]],
           receiver: Receiver, timeout: float = 90.0) -> bool:
    """Wait until every comment accepted so far is decided and its webhook delivered (one
    delivery per decision: the hook takes every event); False if that took over ``timeout``."""
    ids = [ident for _, _, ident, _ in list(samples) if ident is not None]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            pending = connection.scalar(select(func.count()).select_from(Comment).where(
                Comment.id.in_(ids), Comment.status == CommentStatus.PENDING)) if ids else 0
        if not pending and receiver.received >= len(ids):
            return True
        time.sleep(0.2)
    return False


def table(result: dict[str, Any]) -> str:
    """The per-phase numbers, for people."""
    lines = [f"{'phase':<12} {'accepted':>8} {'refused':>7} {'POST p99':>9} "
             f"{'verdict p50':>11} {'verdict p99':>11} {'webhooks':>8}"]
    for name, p in result["phases"].items():
        lines.append(f"{name:<12} {p['accepted']:>8} {p['refused']:>7} "
                     f"{p['post_p99_ms']:>7.0f}ms {p['verdict_p50_s'] or 0:>10.2f}s "
                     f"{p['verdict_p99_s'] or 0:>10.2f}s {p['deliveries_received']:>8}")
    lines.append(f"accepted {result['accepted']}, decided {result['decided']}, refused "
                 f"{result['refused']}, lost {result['lost']}, decided twice "
                 f"{result['decided_twice']}")
    lines += [f"  {line}" for line in result["restarts"]]
    if result["unsettled"]:
        lines.append(f"  not settled in 90 s before: {', '.join(result['unsettled'])}")
    return "\n".join(lines)


def main() -> int:
    """Command line; the last line of stdout is the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=10.0, help="comments per second")
    parser.add_argument("--phase-seconds", type=float, default=8.0)
    parser.add_argument("--port", type=int, default=0, help="make run's PORT (default: free)")
    parser.add_argument("--receiver-port", type=int, default=0)
    parser.add_argument("--phases", default=",".join(PHASES))
    args = parser.parse_args()
    result = run(args.rate, args.phase_seconds, args.port or free_port(),
                 args.receiver_port or free_port(), args.phases.split(","))
    print(table(result))
    print(json.dumps(result))
    ok = result["refused"] == result["lost"] == result["decided_twice"] == 0
    slow = result["phases"].get("slow-hook")
    if slow is not None and slow["deliveries_received"] == 0:
        print("the slow receiver got no delivery: the slow-hook phase proved nothing",
              file=sys.stderr)
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
