"""Liveness and readiness probes."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, jsonify
from werkzeug.wrappers import Response

from models.artifacts import ArtifactError, ArtifactStore
from service import database, queue

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is alive."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Database, Redis and an intact active model: 200, or 503 naming what is down."""
    checks: dict[str, Any] = {}
    try:
        database.ping()
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"down: {exc.__class__.__name__}"
    try:
        queue.redis().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"down: {exc.__class__.__name__}"
    store = ArtifactStore(current_app.config["MODEL_DIR"])
    version = store.active_version()
    try:
        if version is None:
            raise ArtifactError("no active model")
        store.verify(version)
        checks["model"] = "ok"
        checks["model_version"] = version
    except ArtifactError as exc:
        checks["model"] = f"down: {exc}"
    down = [name for name in ("database", "redis", "model") if checks[name] != "ok"]
    status = 503 if down else 200
    return jsonify(status="unavailable" if down else "ready", down=down, checks=checks), status
