"""`make run`: the whole service on one machine, as in production, kept up by a supervisor.

Starts, in order: an embedded Redis (unless REDIS_URL is set), the database migrations, the
web on PORT (waitress, see web_command) and one delivery worker (webhooks and alert e-mails),
then one scoring worker. On a first run the starter model trains meanwhile (a progress line
every few seconds): the web takes comments at once, they wait as pending in the queue, and the
scoring worker starts once the model exists and decides them all.

A child that dies is started again after a back-off (1 s, doubling up to 30 s while it keeps
dying young), with a line naming it; the others keep running meanwhile, so the web keeps
answering while a worker or Redis is down (comments wait as pending, and the reconciler
queues them). Redis missing at any moment of start-up costs one line and a wait, not a
traceback. Ctrl-C or SIGTERM stops every child.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker

from models.artifacts import ArtifactStore
from service.embedded_redis import RedisServer, answers

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("VAR_DIR", ROOT / "var"))

# A child that dies is started again after FIRST_BACKOFF s, then twice as long each time it
# dies again within HEALTHY_AFTER s of its start, up to MAX_BACKOFF s.
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
HEALTHY_AFTER = 30.0
# Web and workers get this long to finish their requests and jobs on Ctrl-C.
STOP_GRACE = 15.0
# Seconds between the progress lines of the starter model's training (it takes 15 to 40 s).
TRAINING_PROGRESS_EVERY = 5.0


@dataclass
class Child:
    """One supervised process: how to start it, and its restart bookkeeping."""

    name: str
    launch: Callable[[], subprocess.Popen[bytes] | None]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    backoff: float = FIRST_BACKOFF
    restart_at: float | None = None
    restarts: int = 0

    def start(self) -> None:
        """Start it now; a start that fails is retried after the back-off."""
        self.restart_at = None
        self.started_at = time.monotonic()
        try:
            self.process = self.launch()
        except (OSError, RuntimeError) as error:
            self.process = None
            self._schedule(f"could not start ({error})")

    def _schedule(self, why: str) -> None:
        if time.monotonic() - self.started_at > HEALTHY_AFTER:
            self.backoff = FIRST_BACKOFF  # it had been running fine: a fresh failure
        delay = self.backoff
        self.backoff = min(self.backoff * 2, MAX_BACKOFF)
        self.restart_at = time.monotonic() + delay
        self.restarts += 1
        print(f"* {self.name} {why}; restarting in {delay:g} s", file=sys.stderr, flush=True)

    def check(self) -> None:
        """Notice a death and schedule the restart; restart when its time has come."""
        if self.restart_at is not None:
            if time.monotonic() >= self.restart_at:
                self.start()
            return
        if self.process is not None and self.process.poll() is not None:
            self._schedule(f"exited with {self.process.returncode}")
            self.process = None

    def alive(self) -> bool:
        """Whether its process runs now."""
        return self.process is not None and self.process.poll() is None


def embedded_redis() -> tuple[str, Child | None]:
    """An embedded redis-server on a unix socket under var/: its URL and its supervised child
    (None when one from an earlier run still answers there: that one is left alone).

    The queue is rebuilt from the database by the reconciler; snapshots keep jobs across a
    restart anyway."""
    server = RedisServer(VAR, unix_socket=True, snapshot="redis.rdb", logfile=VAR / "redis.log",
                         session=True)
    if server.answers():
        print(f"* reusing the embedded Redis already running at {server.url}")
        return server.url, None

    def launch() -> subprocess.Popen[bytes] | None:
        server.start()  # RuntimeError if it does not answer: retried after the back-off
        return server.process

    print(f"* embedded Redis at {server.url}")
    return server.url, Child("embedded Redis", launch)


def worker_listens(env: dict[str, str]) -> bool:
    """Whether a scoring worker has loaded its model and listens on the queue (it registers
    with RQ only then). Redis not answering: not yet."""
    try:
        with Redis.from_url(env["REDIS_URL"], socket_connect_timeout=1,
                            socket_timeout=1) as redis:
            queue = Queue(env.get("QUEUE_NAME", "scoring"), connection=redis)
            return bool(Worker.count(queue=queue))
    except (RedisError, OSError):
        return False


def run(cmd: list[str], env: dict[str, str]) -> None:
    """Run a set-up step; stop everything if it fails."""
    subprocess.run(cmd, env=env, check=True, cwd=ROOT)


# Threads of make run's web per WEB_WORKERS (the production shape's gunicorn processes).
THREADS_PER_WEB_WORKER = 4
# Connections waitress holds open at once (its default, 100, is what one slowloris fills).
WEB_CONNECTION_LIMIT = 1000


def web_command(py: str, env: dict[str, str]) -> list[str]:
    """The web on PORT: waitress, which reads each request whole (headers and body) in its
    event loop before a thread runs it, so a slow client holds a socket, not a thread; with
    WEB_WORKERS x 4 threads. (Production puts nginx in front of gunicorn instead.)"""
    threads = int(env.get("WEB_WORKERS", "2")) * THREADS_PER_WEB_WORKER
    return [py, "-m", "waitress", f"--listen=127.0.0.1:{env.get('PORT', '8000')}",
            f"--threads={threads}", f"--connection-limit={WEB_CONNECTION_LIMIT}",
            "--channel-timeout=30", "--ident=commentguard", "service.wsgi:app"]


def stop_all(groups: list[list[Child]]) -> None:
    """Web and workers first (they finish their requests and jobs), Redis last, each group
    given time to exit before the next is stopped."""
    for group in groups:
        running = [c.process for c in group if c.process is not None and c.alive()]
        for process in running:
            process.terminate()
        deadline = time.monotonic() + STOP_GRACE
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def web_answers(port: str) -> bool:
    """Whether the web answers /healthz on PORT."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def announce(port: str, cors_origins: str = "") -> None:
    """The URLs (the landing page at / links them all), and what embedding needs."""
    base = f"http://127.0.0.1:{port}"
    print(f"* comment service at {base}/  (Ctrl-C stops everything)")
    print(f"*   submit:  POST {base}/api/v1/comments")
    print(f"*   read:    GET  {base}/api/v1/posts/<post>/comments")
    print(f"*   health:  GET  {base}/readyz")
    print(f"*   demo:    {base}/demo/china-closing-ai-gap")
    print(f"*   API:     {base}/api/docs")
    print(f"*   moderate: {base}/moderate  (make moderator NAME=ann ROLE=admin)")
    if cors_origins.strip():
        print(f"*   embedding allowed from: {cors_origins.strip()} (CORS_ORIGINS)", flush=True)
    else:
        print("*   embedding the widget on another site: restart with "
              "CORS_ORIGINS=https://your-blog.example (comma-separated; "
              "none set, so only this origin can load it)", flush=True)


def model_is_active(env: dict[str, str]) -> bool:
    """Whether MODEL_DIR (service/config.py's default) has an active model."""
    root = env.get("MODEL_DIR") or str(Path(env.get("VAR_DIR", ROOT / "var")) / "models")
    return ArtifactStore(root).active_version() is not None


class Training:
    """``flask model ensure`` in the background: an active model in the database, imported
    from MODEL_DIR, or the starter model trained there first on a first run (then with a
    progress line while it trains, the web taking comments meanwhile)."""

    def __init__(self, py: str, env: dict[str, str]) -> None:
        self.started = time.monotonic()
        self.told_at = self.started
        self.trains = not model_is_active(env)
        if self.trains:
            print("* no model yet: training the starter model in the background (first run "
                  "only, about 30 s)", flush=True)
        self.process: subprocess.Popen[bytes] | None = subprocess.Popen(
            [py, "-m", "flask", "--app", "service", "model", "ensure"], env=env, cwd=ROOT,
            start_new_session=True, stdout=None if self.trains else subprocess.DEVNULL)

    def running(self) -> bool:
        """True while it trains; prints the progress line; raises if training failed."""
        if self.process is None:
            return False
        code = self.process.poll()
        now = time.monotonic()
        if code is None:
            if self.trains and now - self.told_at >= TRAINING_PROGRESS_EVERY:
                self.told_at = now
                print(f"* training the starter model (first run only): {now - self.started:.0f} s"
                      " so far; comments are accepted and wait for it", flush=True)
            return True
        self.process = None
        if code != 0:
            raise subprocess.CalledProcessError(code, "flask model ensure")
        if self.trains and now - self.started > TRAINING_PROGRESS_EVERY:
            print(f"* starter model trained in {now - self.started:.0f} s; starting the "
                  "scoring worker", flush=True)
        return False

    def stop(self) -> None:
        """Stop it (Ctrl-C during a first run)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait()


def main() -> int:
    """Start every part and keep them up until a signal."""
    VAR.mkdir(parents=True, exist_ok=True)
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    env = dict(os.environ)
    py = sys.executable
    redis_children: list[Child] = []
    children: list[Child] = []
    training: Training | None = None
    try:
        if not env.get("REDIS_URL"):
            env["REDIS_URL"], redis_child = embedded_redis()
            if redis_child is not None:
                redis_children.append(redis_child)
                redis_child.start()
        run([py, "-m", "flask", "--app", "service", "db", "upgrade"], env)
        training = Training(py, env)

        def spawn(cmd: list[str]) -> Callable[[], subprocess.Popen[bytes]]:
            return lambda: subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True)

        children += [
            Child("web", spawn(web_command(py, env))),
            Child("delivery worker", spawn([py, "-m", "worker", "--deliveries"])),
        ]
        for child in children:
            child.start()
        scoring = Child("scoring worker", spawn([py, "-m", "worker"]))
        port = env.get("PORT", "8000")
        announced = ready = False
        waiting_since = time.monotonic()
        told_redis = False
        while not stopping:
            for child in redis_children + children:
                child.check()
            trains = training.running() and training.trains
            if not training.running() and scoring not in children:
                children.append(scoring)
                scoring.start()
            if not ready and scoring in children and worker_listens(env):
                ready = True
                if announced:
                    print("* scoring worker ready: comments are decided at once", flush=True)
            if not announced and (ready or (trains and web_answers(port))):
                announce(port, env.get("CORS_ORIGINS", ""))
                announced = True
                if not ready:
                    print("* the starter model is still training: comments are stored now and "
                          "decided once it is ready", flush=True)
            if not ready and not told_redis and time.monotonic() - waiting_since > 5:
                told_redis = _tell_if_redis_is_missing(env["REDIS_URL"])
            time.sleep(0.2)
    except subprocess.CalledProcessError as exc:
        print(f"* set-up step failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if training is not None:
            training.stop()
        stop_all([children, redis_children])
        print("* stopped")
    return 0


def _tell_if_redis_is_missing(url: str) -> bool:
    """One readable line when Redis does not answer during start-up; True once said."""
    if answers(url):
        return False
    print(f"* Redis at {url} does not answer; waiting for it (comments are stored meanwhile)",
          file=sys.stderr, flush=True)
    return True


if __name__ == "__main__":
    sys.exit(main())
