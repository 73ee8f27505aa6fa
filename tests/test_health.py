"""Liveness and readiness."""

from __future__ import annotations

from sqlalchemy import delete

from service import create_app
from service.db import ActiveModel, ModelArtifact
from service.db.model_store import ModelStore
from service.embedded_redis import free_port


def test_healthz_is_always_ok(client) -> None:
    assert client.get("/healthz").status_code == 200


def test_readyz_reports_database_redis_and_model(client) -> None:
    response = client.get("/readyz")
    body = response.get_json()
    assert body["checks"]["database"] == body["checks"]["redis"] == body["checks"]["model"] == "ok"
    assert body["checks"]["model_version"]
    # No scoring worker runs in this test: not ready, and it says why.
    assert response.status_code == 503
    assert body["down"] == ["worker"]
    assert body["checks"]["worker"] == "down: no scoring worker has started"


def test_readyz_names_what_is_down(app, db) -> None:
    db.execute(delete(ActiveModel))
    db.commit()
    broken = create_app({
        **app.config,
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
    })
    response = broken.test_client().get("/readyz")
    broken.extensions["db_engine"].dispose()
    assert response.status_code == 503
    assert response.get_json()["down"] == ["redis", "model"]
    assert response.get_json()["checks"]["model"] == "down: no active model in the database"


def test_readyz_refuses_a_damaged_active_model(client, db) -> None:
    artifact = db.get(ModelArtifact, ModelStore().active_version(db))
    artifact.data = artifact.data[:-1]
    db.commit()
    body = client.get("/readyz").get_json()
    assert "model" in body["down"] and "SHA-256 mismatch" in body["checks"]["model"]


def test_security_headers_on_every_response(client) -> None:
    for response in (client.get("/healthz"), client.get("/api/v1/nothing"),
                     client.post("/api/v1/comments", json={})):
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_production_mode_refuses_to_start_without_real_settings(monkeypatch) -> None:
    import pytest

    from service.config import load_config
    from service.errors import ConfigError

    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(ConfigError, match=r"SECRET_KEY.*DATABASE_URL.*REDIS_URL"):
        load_config()
