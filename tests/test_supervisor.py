"""`make run`'s supervisor (scripts/run.py) with real parts broken under it: the scoring worker
and the embedded Redis SIGKILLed, Redis paused, a webhook receiver that sleeps 10 s, Redis
missing at start-up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service.embedded_redis import RedisServer, free_port
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_make_run_restarts_what_dies_and_loses_nothing(model_dir: Path) -> None:
    env = {**os.environ, "MODEL_DIR": str(model_dir)}
    result = subprocess.run(
        [sys.executable, "scripts/drill_make_run.py", "--rate", "5", "--phase-seconds", "6",
         "--phases", "baseline,worker,redis-kill,redis-pause,slow-hook"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    detail = f"{result.stdout}\n--- stderr (tail) ---\n{result.stderr[-3000:]}"
    assert counts["refused"] == 0, detail  # the web answered all along
    assert counts["accepted"] == counts["decided"] > 0, detail
    assert counts["lost"] == counts["decided_twice"] == 0, detail
    assert counts["unsettled"] == [], detail  # each phase began on a quiet system
    assert "* scoring worker exited with -9; restarting in 1 s" in counts["restarts"], detail
    assert "* embedded Redis exited with -9; restarting in 1 s" in counts["restarts"], detail
    assert counts["phases"]["redis-pause"]["post_p99_ms"] < 1000, detail
    # A receiver that sleeps 10 s got deliveries, and verdicts did not wait for it (they
    # would take 10 s and more if deliveries ran on the scoring worker).
    slow = counts["phases"]["slow-hook"]
    assert slow["deliveries_received"] > 0, detail
    assert slow["verdict_p99_s"] < 5, detail
    assert result.returncode == 0, detail


def test_make_run_waits_for_a_missing_redis_and_starts_when_it_comes(
        tmp_path: Path, model_dir: Path) -> None:
    redis = RedisServer(tmp_path)  # configured, not started: Redis is down at start-up
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(VAR_DIR=str(tmp_path), PORT=str(port), MODEL_DIR=str(model_dir),
               REDIS_URL=redis.url, DATABASE_URL=f"sqlite:///{tmp_path / 'run.db'}",
               LOG_LEVEL="WARNING")
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        run = subprocess.Popen([sys.executable, "scripts/run.py"], env=env, cwd=ROOT,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while b"does not answer; waiting" not in log_path.read_bytes():
            assert run.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        redis.start()
        while b"* comment service at" not in log_path.read_bytes():
            assert run.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
    finally:
        os.killpg(run.pid, signal.SIGINT)
        code = run.wait(timeout=60)
        redis.stop()
    output = log_path.read_text()
    assert code == 0, output
    assert "Traceback" not in output, output
    assert output.count("does not answer; waiting") == 1, output


def _post_comment(base: str) -> dict | None:
    import urllib.error
    import urllib.request

    body = json.dumps({"post": "china-closing-ai-gap", "author_name": "Mei",
                       "content": "Is the 7-month lag measured from release dates?"}).encode()
    request = urllib.request.Request(f"{base}/api/v1/comments", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError):
        return None


def _status(base: str, ident: int, secret: str) -> str | None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{base}/api/v1/comments/{ident}",
                                     headers={"X-Comment-Secret": secret})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return str(json.loads(response.read())["status"])
    except (urllib.error.URLError, OSError):
        return None


def test_a_first_run_takes_comments_while_the_starter_model_trains(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(VAR_DIR=str(tmp_path), PORT=str(port), MODEL_DIR=str(tmp_path / "models"),
               DATABASE_URL=f"sqlite:///{tmp_path / 'run.db'}", LOG_LEVEL="WARNING",
               PYTHONUNBUFFERED="1")
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        run = subprocess.Popen([sys.executable, "scripts/run.py"], env=env, cwd=ROOT,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        accepted = None
        while accepted is None:
            assert run.poll() is None and time.monotonic() < deadline, log_path.read_text()
            accepted = _post_comment(base)
            time.sleep(0.2)
        # Accepted before any model existed: the supervisor had not said it was trained.
        assert "starter model trained" not in log_path.read_text(), log_path.read_text()
        assert not (tmp_path / "models" / "ACTIVE").exists()
        status = None
        while status in (None, "pending"):
            assert run.poll() is None and time.monotonic() < deadline, log_path.read_text()
            status = _status(base, accepted["id"], accepted["secret"])
            time.sleep(0.5)
    finally:
        os.killpg(run.pid, signal.SIGINT)
        code = run.wait(timeout=60)
    output = log_path.read_text()
    assert code == 0 and "Traceback" not in output, output
    assert status == "published", output  # decided by the model once it was trained
    lines = output.splitlines()
    announced = next(i for i, line in enumerate(lines) if "* comment service at" in line)
    trained = next(i for i, line in enumerate(lines) if "* starter model trained in" in line)
    assert announced < trained, output
    assert any("* training the starter model (first run only):" in line
               for line in lines[announced:trained]), output  # a progress line meanwhile
    assert "CORS_ORIGINS=https://your-blog.example" in output  # what embedding needs
