"""Readers' privacy: IPs anonymised after the retention period, export and erase on request."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from service import privacy
from service.db import AdminEvent, Comment, CommentEvent
from tests.readers import READER_IP, as_reader


@pytest.mark.parametrize(
    ("ip", "anonymous"),
    [("203.0.113.77", "203.0.113.0"), ("2001:db8:abcd:12::1", "2001:db8:abcd::"),
     ("not-an-ip", "not-an-ip")],
)
def test_anonymise_ip(ip: str, anonymous: str) -> None:
    assert privacy.anonymise_ip(ip) == anonymous


def test_only_ips_past_retention_are_anonymised(app, client, db) -> None:
    app.config["FLOOD_SECONDS"] = 0
    ids = [client.post("/api/v1/comments", environ_base={"REMOTE_ADDR": "198.51.100.77"},
                       json={"post": "p", "author_name": "A", "content": f"c{i}"}
                       ).get_json()["id"] for i in range(2)]
    old = db.get(Comment, ids[0])
    old.created_at = old.created_at - timedelta(days=31)  # time moved in the data
    db.commit()
    assert privacy.anonymise_old_ips(db, days=30) == 1
    db.expire_all()
    assert [db.get(Comment, i).ip for i in ids] == ["198.51.100.0", "198.51.100.77"]


def test_export_and_erase_a_commenter(app, client, db, run_worker) -> None:
    app.config["FLOOD_SECONDS"] = 0  # Ann's two comments in a row; flood control is not tested
    mine = [client.post("/api/v1/comments", json={
        "post": "p", "author_name": "Ann", "author_email": "Ann@Example.org",
        "content": f"My comment {i}"}).get_json()["id"] for i in range(2)]
    other = client.post("/api/v1/comments", environ_base=as_reader(), json={
        "post": "p", "author_name": "Bo", "content": "Not mine"}).get_json()["id"]
    run_worker()
    runner = app.test_cli_runner()
    exported = runner.invoke(args=["commenter", "export", "ann@example.org"])
    assert exported.exit_code == 0
    data = json.loads(exported.output)
    assert [c["id"] for c in data["comments"]] == mine
    assert data["comments"][0]["ip"] == READER_IP
    erased = runner.invoke(args=["commenter", "erase", "ann@example.org", "--yes"])
    assert erased.exit_code == 0 and "erased 2" in erased.output
    db.expire_all()
    assert [db.get(Comment, i) for i in mine] == [None, None]
    assert db.get(Comment, other) is not None
    assert db.scalars(select(CommentEvent).where(CommentEvent.comment_id.in_(mine))).all() == []
    events = db.scalars(select(AdminEvent).order_by(AdminEvent.id)).all()
    assert [e.action for e in events] == ["commenter.export", "commenter.erase"]
    assert "ann@example.org" not in json.dumps([e.details for e in events])
