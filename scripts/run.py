"""`make run`: the whole service on one machine, as in production.

Starts, in order: an embedded Redis (unless REDIS_URL is set), the database migrations, the
starter model if none is active, gunicorn with WEB_WORKERS workers on PORT, and one scoring
worker. Ctrl-C or SIGTERM stops every child; a child that dies stops the rest.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from redis import Redis
from rq import Queue, Worker

from service.embedded_redis import RedisServer

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("VAR_DIR", ROOT / "var"))


def start_redis(children: list[subprocess.Popen[bytes]]) -> str:
    """Start an embedded redis-server on a unix socket under var/; return its URL.

    The process is appended to ``children`` (unless one from an earlier run still answers).
    The queue is rebuilt from the database by the reconciler; snapshots keep jobs across a
    restart anyway."""
    server = RedisServer(VAR, unix_socket=True, snapshot="redis.rdb", logfile=VAR / "redis.log",
                         session=True)
    if server.answers():
        print(f"* reusing the embedded Redis already running at {server.url}")
        return server.url
    try:
        server.start()
    except RuntimeError as error:
        raise SystemExit(f"embedded {error}") from None
    assert server.process is not None
    children.append(server.process)
    print(f"* embedded Redis at {server.url}")
    return server.url


def wait_for_worker(worker: subprocess.Popen[bytes], env: dict[str, str],
                    stopping: Callable[[], bool]) -> None:
    """Wait until a scoring worker has loaded its model and listens on the queue (it registers
    with RQ only then), so that the service is announced when comments are decided at once.
    Comments submitted earlier are not lost: they wait as pending."""
    queue = Queue(env.get("QUEUE_NAME", "scoring"), connection=Redis.from_url(env["REDIS_URL"]))
    deadline = time.monotonic() + 120
    while worker.poll() is None and not stopping() and time.monotonic() < deadline:
        if Worker.count(queue=queue):
            return
        time.sleep(0.1)


def run(cmd: list[str], env: dict[str, str]) -> None:
    """Run a set-up step; stop everything if it fails."""
    subprocess.run(cmd, env=env, check=True, cwd=ROOT)


def main() -> int:
    """Start every part and wait; stop them all on a signal or when one exits."""
    VAR.mkdir(parents=True, exist_ok=True)
    children: list[subprocess.Popen[bytes]] = []
    redis_children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    env = dict(os.environ)
    py = sys.executable
    try:
        if not env.get("REDIS_URL"):
            env["REDIS_URL"] = start_redis(redis_children)
        run([py, "-m", "flask", "--app", "service", "db", "upgrade"], env)
        run([py, "-m", "models.train", "--if-missing"], env)
        port = env.get("PORT", "8000")
        workers = env.get("WEB_WORKERS", "2")
        children.append(subprocess.Popen(
            [py, "-m", "gunicorn", "service.wsgi:app", "--bind", f"127.0.0.1:{port}",
             "--workers", workers, "--access-logfile", "-", "--graceful-timeout", "10"],
            env=env, cwd=ROOT, start_new_session=True,
        ))
        worker = subprocess.Popen([py, "-m", "worker"], env=env, cwd=ROOT, start_new_session=True)
        children.append(worker)
        wait_for_worker(worker, env, lambda: stopping)
        print(f"* comment service at http://127.0.0.1:{port}  (Ctrl-C stops everything)")
        print(f"*   submit:  POST http://127.0.0.1:{port}/api/v1/comments")
        print(f"*   read:    GET  http://127.0.0.1:{port}/api/v1/posts/<post>/comments")
        print(f"*   health:  GET  http://127.0.0.1:{port}/readyz")
        print(f"*   demo:    http://127.0.0.1:{port}/demo/china-closing-ai-gap")
        while not stopping:
            for child in children + redis_children:
                if child.poll() is not None:
                    print(f"* {child.args[0] if isinstance(child.args, list) else child.args}"
                          f" exited with {child.returncode}; stopping", file=sys.stderr)
                    stopping = True
            time.sleep(0.2)
    except subprocess.CalledProcessError as exc:
        print(f"* set-up step failed: {exc}", file=sys.stderr)
        return 1
    finally:
        # Web and worker first (they finish their requests and jobs), Redis last, each
        # group given time to exit before the next is stopped.
        for group in (children, redis_children):
            for child in group:
                if child.poll() is None:
                    child.terminate()
            deadline = time.monotonic() + 15
            for child in group:
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
        print("* stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
