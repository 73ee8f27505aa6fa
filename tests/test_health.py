"""Liveness and readiness."""

from __future__ import annotations

from service import create_app
from tests.conftest import free_port


def test_healthz_is_always_ok(client) -> None:
    assert client.get("/healthz").status_code == 200


def test_readyz_reports_database_redis_and_model(client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["down"] == []
    assert body["checks"]["model_version"]


def test_readyz_names_what_is_down(app, scratch_dir) -> None:
    broken = create_app({
        **app.config,
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "MODEL_DIR": str(scratch_dir),
    })
    response = broken.test_client().get("/readyz")
    broken.extensions["db_engine"].dispose()
    assert response.status_code == 503
    assert response.get_json()["down"] == ["redis", "model"]
