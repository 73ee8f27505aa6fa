"""Break real parts: Redis stopped mid-stream, a worker SIGKILLed mid-batch, the database gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from service import create_app
from service.db.migrate import upgrade
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_redis_outage_and_a_killed_worker_lose_nothing_and_decide_nothing_twice(
    model_dir: Path, database_url: str
) -> None:
    env = {**os.environ, "MODEL_DIR": str(model_dir)}
    if not database_url.startswith("sqlite"):
        env["FAULTS_DATABASE_URL"] = database_url
    result = subprocess.run(
        [sys.executable, "scripts/faults.py", "--comments", "150", "--redis-down", "3"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=400,
    )
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    detail = f"{counts}\n--- stderr (tail) ---\n{result.stderr[-4000:]}"
    assert counts["accepted_202"] == 150, detail
    assert counts["stored"] == counts["decided"] == 150, detail
    assert counts["pending"] == 0 and counts["decided_more_than_once"] == 0, detail
    assert result.returncode == 0


def test_database_down_answers_503_then_recovers_without_restart(
    redis_url: str, model_dir: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "not-yet" / "comments.db"
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{missing}",
                      "REDIS_URL": redis_url, "MODEL_DIR": str(model_dir)})
    client = app.test_client()
    body = {"post": "p", "author_name": "Ann", "content": "Still there?"}
    down = client.post("/api/v1/comments", json=body)
    assert down.status_code == 503
    assert down.mimetype == "application/problem+json"
    assert int(down.headers["Retry-After"]) > 0
    assert client.get("/readyz").get_json()["down"] == ["database", "worker"]
    upgrade(f"sqlite:///{missing}")  # the database comes back
    up = client.post("/api/v1/comments", json=body)
    assert up.status_code == 202
    assert client.get(f"/api/v1/comments/{up.get_json()['id']}",
                      headers={"X-Comment-Secret": up.get_json()["secret"]}).status_code == 200
    app.extensions["db_engine"].dispose()


def test_postgres_refusing_connections_answers_503(redis_url: str, model_dir: Path) -> None:
    from service.embedded_redis import free_port

    app = create_app({"TESTING": True, "REDIS_URL": redis_url, "MODEL_DIR": str(model_dir),
                      "DATABASE_URL": f"postgresql+psycopg://u@127.0.0.1:{free_port()}/x"})
    response = app.test_client().post(
        "/api/v1/comments", json={"post": "p", "author_name": "A", "content": "hello"})
    assert response.status_code == 503
    assert "Retry-After" in response.headers
    app.extensions["db_engine"].dispose()


def test_redis_down_still_accepts_comments(app, database_url, model_dir, db) -> None:
    from service.db import Comment, CommentStatus
    from service.embedded_redis import free_port

    broken = create_app({**app.config, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    response = broken.test_client().post(
        "/api/v1/comments", json={"post": "p", "author_name": "A", "content": "queued later"})
    assert response.status_code == 202
    assert db.get(Comment, response.get_json()["id"]).status == CommentStatus.PENDING
    broken.extensions["db_engine"].dispose()
