"""The production shape: gunicorn and a scoring worker as real processes, comments over HTTP.

The comments come from tests/fixtures/acceptance_comments.jsonl, written apart from the
starter corpus (nobody who wrote the training data saw them)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from redis import exceptions as redis_errors
from rq import Queue, Worker

from service.embedded_redis import free_port
from tests.conftest import ROOT

FIXTURE = Path(__file__).parent / "fixtures" / "acceptance_comments.jsonl"

pytestmark = pytest.mark.slow


def _request(url: str, body: bytes | None = None, content_type: str | None = None
             ) -> tuple[int, Any]:
    headers = {"Content-Type": content_type} if content_type else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


@pytest.fixture
def service(app, database_url: str, redis_url: str, model_dir: Path) -> Iterator[str]:
    """gunicorn (2 workers) and one `python -m worker` on the test database and Redis."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MODEL_DIR": str(model_dir),
        "QUEUE_NAME": app.config["QUEUE_NAME"],
        "LOG_LEVEL": "WARNING",
    }
    procs = [
        subprocess.Popen([sys.executable, "-m", "gunicorn", "service.wsgi:app", "--bind",
                          f"127.0.0.1:{port}", "--workers", "2", "--log-level", "warning"],
                         env=env, cwd=ROOT),
        subprocess.Popen([sys.executable, "-m", "worker"], env=env, cwd=ROOT),
    ]
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if _request(f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        yield base
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)


def test_forty_unseen_comments_are_decided_within_a_minute(app, service: str) -> None:
    rows = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
    chosen = [r for r in rows if r["label"] == "ham"][:20] + [
        r for r in rows if r["label"] == "spam"][:20]
    labels: dict[int, str] = {}
    secrets: dict[int, str] = {}
    started = time.monotonic()
    for index, row in enumerate(chosen):
        fields = {k: row[k] for k in ("post", "author_name", "author_email", "author_url",
                                      "content") if row.get(k)}
        if index % 4 == 0:  # a quarter as a plain HTML form would send them
            status, body = _request(f"{service}/api/v1/comments",
                                    urllib.parse.urlencode(fields).encode(),
                                    "application/x-www-form-urlencoded")
        else:
            status, body = _request(f"{service}/api/v1/comments", json.dumps(fields).encode(),
                                    "application/json")
        assert status == 202 and body["status"] == "pending"
        labels[body["id"]] = row["label"]
        secrets[body["id"]] = body["secret"]  # shows us each comment before it is published

    statuses: dict[int, str] = {}
    while time.monotonic() - started < 60:
        statuses = {i: _request(f"{service}/api/v1/comments/{i}?secret={secrets[i]}")[1]["status"]
                    for i in labels}
        if "pending" not in statuses.values():
            break
        time.sleep(0.25)
    assert "pending" not in statuses.values(), "not every comment was decided within 60 s"
    # Their authors see held, spam and rejected alike ("held"): the verdicts from the rows.
    from service.db import Comment

    with app.extensions["db_sessions"]() as session:
        statuses = {i: session.get_one(Comment, i).status.value for i in labels}

    ham = Counter(statuses[i] for i, label in labels.items() if label == "ham")
    spam = Counter(statuses[i] for i, label in labels.items() if label == "spam")
    assert ham["spam"] == 0, ham
    assert ham["published"] >= 16, ham
    assert spam["held"] + spam["spam"] >= 18, spam

    status, listing = _request(
        f"{service}/api/v1/posts/china-closing-ai-gap/comments?limit=200")
    assert status == 200
    published = sorted(i for i, s in statuses.items() if s == "published")
    assert [c["id"] for c in listing["comments"]] == published
    assert listing["total"] == len(published)

    status, problem = _request(f"{service}/api/v1/comments", b'{"post": "x"}',
                               "application/json")
    assert status == 422 and {"author_name", "content"} <= set(problem["errors"])


def test_make_run_starts_every_part_and_stops_them_all(tmp_path: Path, model_dir: Path) -> None:
    """`make run` (scripts/run.py) with no REDIS_URL: its own Redis, migrations, gunicorn and a
    worker; it announces the service once the worker listens, and Ctrl-C stops every part."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(VAR_DIR=str(tmp_path), PORT=str(port), MODEL_DIR=str(model_dir),
               DATABASE_URL=f"sqlite:///{tmp_path / 'run.db'}", LOG_LEVEL="WARNING")
    with (tmp_path / "run.log").open("wb") as log:
        run = subprocess.Popen([sys.executable, "scripts/run.py"], env=env, cwd=ROOT, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while b"* comment service at" not in (tmp_path / "run.log").read_bytes():
            assert run.poll() is None and time.monotonic() < deadline, (
                tmp_path / "run.log").read_text()
            time.sleep(0.1)
        redis = Redis.from_url(f"unix://{tmp_path / 'redis.sock'}")
        assert Worker.count(queue=Queue("scoring", connection=redis)) == 1  # announced when ready

        status, body = _request(f"{base}/api/v1/comments", json.dumps({
            "post": "china-closing-ai-gap", "author_name": "Ann", "author_email": "ann@example.org",
            "content": "A clear article; the part on export rules taught me something."}).encode(),
            "application/json")
        assert status == 202
        while _request(f"{base}/api/v1/comments/{body['id']}?secret={body['secret']}"
                       )[1]["status"] == "pending":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert run.wait(timeout=60) == 0
    output = (tmp_path / "run.log").read_text()
    assert output.rstrip().endswith("* stopped"), output
    with pytest.raises(OSError):  # the web is gone
        urllib.request.urlopen(f"{base}/healthz", timeout=2)
    with pytest.raises(redis_errors.ConnectionError):  # and so is its Redis
        redis.ping()


def test_conditional_reads_over_http_304_until_the_worker_publishes(service: str) -> None:
    listing = f"{service}/api/v1/posts/an-http-post/comments"

    def get(tag: str | None = None) -> tuple[int, str, str]:
        request = urllib.request.Request(listing, headers={"If-None-Match": tag} if tag else {})
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status, r.headers["ETag"], r.headers["Cache-Control"]
        except urllib.error.HTTPError as error:
            return error.code, error.headers["ETag"], error.headers["Cache-Control"]

    status, tag, control = get()
    assert status == 200 and tag.startswith('W/"') and "stale-while-revalidate" in control
    assert get(tag)[:2] == (304, tag)  # either gunicorn worker: the tag lives in Redis
    assert get(tag)[0] == 304
    status, body = _request(f"{service}/api/v1/comments", json.dumps({
        "post": "an-http-post", "author_name": "Ida",
        "content": "The seven-month estimate matches the release dates I tracked."}).encode(),
        "application/json")
    assert status == 202
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and get(tag)[0] == 304:
        time.sleep(0.2)  # the worker process decides it, then replaces the token
    status, fresh, _ = get(tag)
    assert status == 200 and fresh != tag
    assert [c["id"] for c in _request(listing)[1]["comments"]] == [body["id"]]
