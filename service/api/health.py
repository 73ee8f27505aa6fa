"""Liveness and readiness probes."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, jsonify
from werkzeug.wrappers import Response

from models.artifacts import ArtifactError
from service import database, queue
from service.db.model_store import ModelStore

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is alive."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Database (writable), Redis, a scoring worker seen lately and an intact active model
    (stored in the database): 200, or 503 naming what is down."""
    checks: dict[str, Any] = {}
    try:
        database.write_probe()
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"down: {exc.__class__.__name__}: {str(exc)[:200]}"
    parts = ["database", "redis"]
    try:
        redis = queue.redis()
        redis.ping()
        checks["redis"] = "ok"
        patience = int(current_app.config["WORKER_SEEN_SECONDS"])
        if patience > 0:
            parts.append("worker")
            ago = queue.worker_seen_ago(redis, current_app.config["QUEUE_NAME"])
            if ago is None:
                checks["worker"] = "down: no scoring worker has started"
            elif ago > patience:
                checks["worker"] = f"down: no scoring worker seen for {ago:.0f} s"
            else:
                checks["worker"] = "ok"
    except Exception as exc:  # the worker check needs Redis: with Redis down, only Redis is
        checks["redis"] = f"down: {exc.__class__.__name__}"
        parts = ["database", "redis"]
        checks.pop("worker", None)
    if checks["database"] == "ok":  # the model lives there: with it down, only it is
        parts.append("model")
        try:
            # The active row; its bytes hashed at most once a minute by this process.
            checks["model_version"] = ModelStore().check_active(database.session())
            checks["model"] = "ok"
        except ArtifactError as exc:
            checks["model"] = f"down: {exc}"
        except Exception as exc:
            checks["model"] = f"down: {exc.__class__.__name__}"
    down = [name for name in parts if checks[name] != "ok"]
    status = 503 if down else 200
    return jsonify(status="unavailable" if down else "ready", down=down, checks=checks), status
