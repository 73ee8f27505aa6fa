"""`make faults`: break real parts while comments stream in, and count what survives.

Starts a private redis-server, gunicorn (2 workers) and two scoring workers on a fresh SQLite
database (or FAULTS_DATABASE_URL), then POSTs N comments over HTTP while it
  1. stops Redis for a few seconds (the POSTs must still answer 202), then starts it again;
  2. SIGKILLs one scoring worker in the middle of the stream (a new one takes its place).
It waits until every comment is decided and prints one JSON line: posted, accepted, decided,
pending, decided more than once (from the audit trail), and timings.

    python scripts/faults.py [--comments 500] [--redis-down 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.db import Comment, CommentEvent, CommentStatus, make_engine  # noqa: E402
from service.db.migrate import upgrade  # noqa: E402
from service.embedded_redis import RedisServer, free_port  # noqa: E402


def wait_until_decided(engine: Any, seconds: float = 120) -> int:
    """Wait until no comment is pending (or ``seconds`` pass); the count still pending."""
    deadline = time.monotonic() + seconds
    while True:
        with engine.connect() as connection:
            pending = connection.scalar(select(func.count()).select_from(Comment).where(
                Comment.status == CommentStatus.PENDING)) or 0
        if pending == 0 or time.monotonic() >= deadline:
            return int(pending)
        time.sleep(0.5)


def post(base: str, body: dict[str, Any]) -> int:
    """POST one comment; the HTTP status (0 if the connection failed)."""
    request = urllib.request.Request(f"{base}/api/v1/comments", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


def corpus_texts() -> list[str]:
    """Comment texts from the starter corpus."""
    texts = []
    for path in sorted((ROOT / "models" / "corpus").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            texts.append(json.loads(line)["content"])
    return texts


def run(comments: int, redis_down: float, database_url: str | None) -> dict[str, Any]:
    """Run the scenario; returns the counts."""
    workdir = Path(tempfile.mkdtemp(prefix="faults-"))
    procs: list[subprocess.Popen[bytes]] = []
    redis = RedisServer(workdir)
    try:
        redis.start()
        url = database_url or f"sqlite:///{workdir / 'faults.db'}"
        upgrade(url)
        env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis.url,
               "VAR_DIR": str(workdir), "LOG_LEVEL": "WARNING", "QUEUE_NAME": "faults",
               # Small batches: a SIGKILL lands mid-batch, with more batches still to come.
               "SCORE_BATCH_SIZE": "20"}
        env.setdefault("MODEL_DIR", str(ROOT / "var" / "models"))
        subprocess.run([sys.executable, "-m", "flask", "--app", "service", "model", "ensure"],
                       env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "service.wsgi:app", "--bind", f"127.0.0.1:{port}",
             "--workers", "2", "--log-level", "warning"], env=env, cwd=ROOT))

        def start_worker() -> subprocess.Popen[bytes]:
            proc = subprocess.Popen([sys.executable, "-m", "worker"], env=env, cwd=ROOT)
            procs.append(proc)
            return proc

        workers = [start_worker(), start_worker()]
        for _ in range(400):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(3)  # let the workers load the model

        texts = corpus_texts()
        rng = random.Random(7)
        statuses: list[int] = []
        started = time.monotonic()
        stop_at, kill_at = comments // 4, comments // 2
        redis_back = threading.Event()

        def bring_redis_back() -> None:
            time.sleep(redis_down)
            redis.start()
            redis_back.set()

        for i in range(comments):
            if i == stop_at:
                redis.stop()
                threading.Thread(target=bring_redis_back, daemon=True).start()
            if i == kill_at:
                os.kill(workers[0].pid, signal.SIGKILL)
                workers[0].wait()
                workers.append(start_worker())
            body = {"post": f"post-{i % 7}", "author_name": f"Reader {i}",
                    "content": f"{rng.choice(texts)} [{i}]"}
            statuses.append(post(base, body))
        posting_seconds = time.monotonic() - started
        redis_back.wait(redis_down + 30)

        engine = make_engine(url)
        pending = wait_until_decided(engine)
        with engine.connect() as connection:
            stored = connection.scalar(select(func.count()).select_from(Comment)) or 0
            decided = connection.scalar(select(func.count()).select_from(Comment).where(
                Comment.status != CommentStatus.PENDING)) or 0
            twice = connection.scalar(select(func.count()).select_from(
                select(CommentEvent.comment_id).where(CommentEvent.action == "score")
                .group_by(CommentEvent.comment_id).having(func.count() > 1).subquery())) or 0
            by_status = dict(connection.execute(
                select(Comment.status, func.count()).group_by(Comment.status)).all())
        engine.dispose()
        return {
            "posted": comments,
            "accepted_202": statuses.count(202),
            "other_answers": {str(s): statuses.count(s) for s in set(statuses) if s != 202},
            "stored": stored,
            "decided": decided,
            "pending": pending,
            "decided_more_than_once": twice,
            "by_status": {str(getattr(k, "value", k)): v for k, v in by_status.items()},
            "redis_down_seconds": redis_down,
            "workers_sigkilled": 1,
            "posting_seconds": round(posting_seconds, 1),
            "all_decided_after_seconds": round(time.monotonic() - started, 1),
        }
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    """Command line; the last line of stdout is the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--comments", type=int, default=500)
    parser.add_argument("--redis-down", type=float, default=5.0)
    args = parser.parse_args()
    result = run(args.comments, args.redis_down, os.environ.get("FAULTS_DATABASE_URL"))
    print(json.dumps(result))
    ok = (result["decided"] == result["posted"] == result["accepted_202"]
          and result["decided_more_than_once"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
