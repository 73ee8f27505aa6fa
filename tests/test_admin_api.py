"""Admin API behind the admin pages: Akismet sites, models (list, promote, roll back,
rescore), the audit log. Admins only, audited, bad input answered 4xx with the field named."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from service import learning
from service.db import AdminEvent, Comment, CommentStatus, Site
from service.db.model_store import ModelStore


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(make_moderator) -> dict[str, str]:
    return bearer(make_moderator("ann", "admin"))


@pytest.fixture
def store(app, db, tmp_path: Path) -> ModelStore:
    """The database's models (this test's own database) with a cache of this test's own."""
    store = ModelStore(tmp_path / "store")
    app.config["MODEL_DIR"] = str(tmp_path / "store")
    learning.sync_registry(db, store)
    db.commit()
    return store


def second_version(db, store: ModelStore, state: str = "candidate") -> str:
    pipeline, metadata = store.load(db)
    version = store.save(db, pipeline, {k: v for k, v in metadata.items()
                                    if k not in ("version", "sha256", "created_at")})
    learning.register(db, store, version, state=state,
                      gate="MCC 0.41 vs active 0.62 (tolerance 0.01): worse" if state == "refused"
                      else None)
    db.commit()
    return version


def actions(db) -> list[str]:
    db.expire_all()
    return [e.action for e in db.scalars(select(AdminEvent).order_by(AdminEvent.id))]


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/api/v1/moderation/sites"), ("post", "/api/v1/moderation/sites"),
    ("post", "/api/v1/moderation/sites/1/revoke"), ("get", "/api/v1/moderation/models"),
    ("post", "/api/v1/moderation/models/v1/promote"),
    ("post", "/api/v1/moderation/models/rollback"),
    ("post", "/api/v1/moderation/models/rescore"), ("get", "/api/v1/moderation/audit"),
])
def test_admin_routes_refuse_moderators(client, db, make_moderator, method, path) -> None:
    token = make_moderator("mia", "moderator")
    response = getattr(client, method)(path, headers=bearer(token),
                                       json={"url": "https://blog.example"})
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert db.scalar(select(Site)) is None and actions(db) == []


def test_sites_are_added_with_a_key_shown_once_listed_and_revoked(client, db, admin) -> None:
    created = client.post("/api/v1/moderation/sites", headers=admin,
                          json={"url": "https://blog.example/"})
    assert created.status_code == 201
    site = created.get_json()
    assert len(site["key"]) == 12 and site["active"] is True
    listed = client.get("/api/v1/moderation/sites", headers=admin).get_json()["sites"]
    assert [s["id"] for s in listed] == [site["id"]] and "key" not in listed[0]
    revoked = client.post(f"/api/v1/moderation/sites/{site['id']}/revoke", headers=admin)
    assert revoked.status_code == 204
    assert client.get("/api/v1/moderation/sites", headers=admin).get_json()["sites"][0][
        "active"] is False
    assert client.post("/api/v1/moderation/sites/999/revoke", headers=admin).status_code == 404
    bad = client.post("/api/v1/moderation/sites", headers=admin, json={"url": "ftp://x"})
    assert bad.status_code == 422 and "url" in bad.get_json()["errors"]
    assert actions(db) == ["site.add", "site.revoke"]


def test_models_list_and_promotion_of_a_refused_version_needs_force(client, db, admin,
                                                                     store) -> None:
    active = store.active_version(db)
    refused = second_version(db, store, state="refused")
    models = client.get("/api/v1/moderation/models", headers=admin).get_json()["models"]
    by_version = {m["version"]: m for m in models}
    assert by_version[active]["active"] and by_version[refused]["state"] == "refused"
    assert set(by_version[active]["thresholds"]) >= {"low", "high"}

    path = f"/api/v1/moderation/models/{refused}/promote"
    plain = client.post(path, headers=admin, json={})
    assert plain.status_code == 409 and "refused" in plain.get_json()["detail"]
    assert store.active_version(db) == active
    forced = client.post(path, headers=admin, json={"force": True})
    assert forced.status_code == 200 and store.active_version(db) == refused
    assert client.post("/api/v1/moderation/models/no-such/promote", headers=admin,
                       json={}).status_code == 404
    bad = client.post(path, headers=admin, json={"force": "maybe"})
    assert bad.status_code == 422 and "force" in bad.get_json()["errors"]

    back = client.post("/api/v1/moderation/models/rollback", headers=admin)
    assert back.status_code == 200 and back.get_json()["version"] == active
    assert store.active_version(db) == active
    assert actions(db) == ["model.promote", "model.rollback"]
    db.expire_all()
    promote = db.scalars(select(AdminEvent).where(AdminEvent.action == "model.promote")).one()
    assert promote.details == {"version": refused, "forced": True} and promote.actor == "ann"


def test_rollback_with_nothing_to_go_back_to_is_a_conflict(client, admin, store) -> None:
    response = client.post("/api/v1/moderation/models/rollback", headers=admin)
    assert response.status_code == 409
    assert "no earlier promoted model" in response.get_json()["detail"].lower()


def test_rescore_is_a_job_a_worker_runs_with_the_active_model(client, db, admin, post_comment,
                                                              run_worker, store) -> None:
    comment_id = post_comment(content="Thanks, this was a clear explanation.").get_json()["id"]
    run_worker()
    row = db.get(Comment, comment_id)
    row.status, row.model_version, row.spam_score = CommentStatus.HELD, "old-model", 0.5
    db.commit()
    queued = client.post("/api/v1/moderation/models/rescore", headers=admin,
                         json={"statuses": ["held"]})
    assert queued.status_code == 202 and queued.get_json()["statuses"] == ["held"]
    assert run_worker() >= 1
    db.expire_all()
    row = db.get(Comment, comment_id)
    assert row.model_version == store.active_version(db) and row.spam_score != 0.5
    bad = client.post("/api/v1/moderation/models/rescore", headers=admin,
                      json={"statuses": ["published"]})
    assert bad.status_code == 422 and "statuses" in bad.get_json()["errors"]
    assert actions(db) == ["model.rescore"]


def test_audit_log_pages_newest_first(client, db, admin) -> None:
    for n in range(5):
        db.add(AdminEvent(actor="cli", action=f"test.{n}", details={"n": n}))
    db.commit()
    first = client.get("/api/v1/moderation/audit?limit=3", headers=admin).get_json()
    assert [e["action"] for e in first["events"]] == ["test.4", "test.3", "test.2"]
    rest = client.get(f"/api/v1/moderation/audit?limit=3&before={first['next']}",
                      headers=admin).get_json()
    assert [e["action"] for e in rest["events"]] == ["test.1", "test.0"]
    assert rest["next"] is None
    bad = client.get("/api/v1/moderation/audit?limit=0", headers=admin)
    assert bad.status_code == 422 and "limit" in bad.get_json()["errors"]
