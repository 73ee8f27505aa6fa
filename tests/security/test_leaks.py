"""Leaks (issue 13), against production settings from an untrusted reader: only published
comments are public, their authors see their own through the 202's secret, Akismet-reported
rows never; readers' data requests cover everything we keep about them."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from service import privacy
from service.db import (
    Comment,
    CommentStatus,
    Webhook,
    WebhookDelivery,
)
from service.sites import create_site

_addresses = (f"198.51.100.{n}" for n in itertools.count(1))


def submit(client: FlaskClient, **fields: Any) -> Any:
    """POST a comment from a fresh untrusted address (flood control is per address)."""
    body = {"post": "china-closing-ai-gap", "author_name": "Reader",
            "content": f"A reader's remark number {next(_counter)}.", **fields}
    return client.post("/api/v1/comments", json=body,
                       environ_base={"REMOTE_ADDR": next(_addresses)})


_counter = itertools.count(1)


def _set_status(db, comment_id: int, status: CommentStatus) -> None:
    db.get(Comment, comment_id).status = status
    db.commit()


# --- GET /api/v1/comments/<id> ---------------------------------------------------------------


@pytest.mark.parametrize("status", [CommentStatus.PENDING, CommentStatus.HELD,
                                    CommentStatus.SPAM, CommentStatus.REJECTED])
def test_an_unpublished_comment_is_not_public_and_answers_like_a_missing_one(
        db, reader, status) -> None:
    # Before: 200 with the comment and its status, for anyone who counted ids.
    accepted = submit(reader)
    assert accepted.status_code == 202
    ident = accepted.get_json()["id"]
    _set_status(db, ident, status)
    unpublished = reader.get(f"/api/v1/comments/{ident}")
    missing = reader.get(f"/api/v1/comments/{ident + 1000}")
    assert (unpublished.status_code, missing.status_code) == (404, 404)
    assert unpublished.get_json()["detail"] == f"No comment {ident}."
    assert {k: v for k, v in unpublished.get_json().items() if k != "detail"} == \
        {k: v for k, v in missing.get_json().items() if k != "detail"}
    wrong = reader.get(f"/api/v1/comments/{ident}", headers={"X-Comment-Secret": "guess"})
    assert wrong.status_code == 404


def test_the_author_sees_their_comment_through_the_secret_of_the_202(db, reader) -> None:
    accepted = submit(reader).get_json()
    ident, secret = accepted["id"], accepted["secret"]
    assert len(secret) >= 32
    stored = db.get(Comment, ident).secret_hash
    assert stored and secret not in stored  # only the hash is kept
    by_header = reader.get(f"/api/v1/comments/{ident}", headers={"X-Comment-Secret": secret})
    by_query = reader.get(f"/api/v1/comments/{ident}?secret={secret}")
    assert by_header.status_code == by_query.status_code == 200
    assert by_header.get_json()["status"] == "pending"
    assert "author_email" not in by_header.get_json() and "ip" not in by_header.get_json()
    other = submit(reader).get_json()
    assert reader.get(f"/api/v1/comments/{other['id']}",
                      headers={"X-Comment-Secret": secret}).status_code == 404
    # Held, spam and rejected all read "held" to the author: a bot learns nothing.
    for status in (CommentStatus.HELD, CommentStatus.SPAM, CommentStatus.REJECTED):
        _set_status(db, ident, status)
        answer = reader.get(f"/api/v1/comments/{ident}", headers={"X-Comment-Secret": secret})
        assert (answer.status_code, answer.get_json()["status"],
                answer.get_json()["decided_at"]) == (200, "held", None)


def test_a_published_comment_is_public(run_worker, reader) -> None:
    ident = submit(reader, content="Is the seven-month lag measured from release dates?"
                   ).get_json()["id"]
    run_worker()
    answer = reader.get(f"/api/v1/comments/{ident}")
    assert (answer.status_code, answer.get_json()["status"]) == (200, "published")


def test_a_bot_trapped_comment_reads_like_any_held_one_to_its_author(reader) -> None:
    accepted = submit(reader, hp_website="https://spam.example/").get_json()
    assert accepted["status"] == "pending"
    answer = reader.get(f"/api/v1/comments/{accepted['id']}",
                        headers={"X-Comment-Secret": accepted["secret"]})
    assert answer.get_json()["status"] == "held"
    assert reader.get(f"/api/v1/comments/{accepted['id']}").status_code == 404


def test_an_idempotent_retry_gets_a_working_secret(reader) -> None:
    headers = {"Idempotency-Key": "draft-7f3c"}
    body = {"post": "p", "author_name": "Ann", "content": "Retried after a timeout."}
    first = reader.post("/api/v1/comments", json=body, headers=headers).get_json()
    again = reader.post("/api/v1/comments", json=body, headers=headers).get_json()
    assert again["id"] == first["id"] and again["secret"] != first["secret"]
    assert reader.get(f"/api/v1/comments/{first['id']}",
                      headers={"X-Comment-Secret": again["secret"]}).status_code == 200


def test_akismet_reported_rows_are_never_public(db, production_app, reader) -> None:
    # Before: 200 for the spam and ham a site reported (other blogs' readers), even with a
    # javascript: author_url.
    _site, key = create_site(db, "https://blog.example/")
    db.commit()
    ids = []
    for endpoint in ("submit-spam", "submit-ham"):
        answer = reader.post(f"/1.1/{endpoint}", data={
            "api_key": key, "blog": "https://blog.example/", "user_ip": "192.0.2.1",
            "comment_author": "Someone", "comment_author_url": "javascript:alert(1)",
            "comment_content": f"Reported through {endpoint}."})
        assert answer.status_code == 200, answer.text
        ids.append(db.scalars(select(Comment.id).order_by(Comment.id.desc())).first())
    # Even a row a moderator later approved stays private.
    _set_status(db, ids[1], CommentStatus.PUBLISHED)
    for ident in ids:
        assert reader.get(f"/api/v1/comments/{ident}").status_code == 404
    post = db.get(Comment, ids[1]).post
    assert reader.get(f"/api/v1/posts/{post}/comments").get_json()["total"] == 0

# `db` and `run_worker` come first in every signature: their `app` empties the tables when
# it starts, which must happen before `production_app` and its data.


# --- readers' data requests ------------------------------------------------------------------


def _webhook(db) -> int:
    hook = Webhook(url="https://hooks.example/in", secret="s" * 32,
                   events=["comment.published", "comment.held", "comment.spam"])
    db.add(hook)
    db.commit()
    return hook.id


def test_erase_blanks_the_comment_in_stored_webhook_deliveries(db, run_worker, production_app,
                                                               reader) -> None:
    # Before: the name and text stayed in every delivery body after `commenter erase`.
    _webhook(db)
    ident = submit(reader, author_name="Erin Example", author_email="erin@example.org",
                   author_url="https://erin-writes.example/",
                   content="Erin's remark about the seven-month lag.").get_json()["id"]
    ran = run_worker()
    db.expire_all()
    sent = db.scalars(select(WebhookDelivery).where(WebhookDelivery.comment_id == ident)).all()
    assert sent, (ran, db.get(Comment, ident))
    assert "erin-writes" in json.dumps([d.payload for d in sent])  # it was there to blank
    runner = production_app.test_cli_runner()
    assert "erased 1" in runner.invoke(args=["commenter", "erase", "erin@example.org",
                                             "--yes"]).output
    db.expire_all()
    bodies = json.dumps([d.payload for d in db.scalars(select(WebhookDelivery))])
    assert "Erin" not in bodies and "seven-month" not in bodies
    assert "erin-writes" not in bodies and "erin@example.org" not in bodies
    assert db.get(Comment, ident) is None


def test_export_has_the_verdicts_labels_and_history(db, run_worker, production_app,
                                                     reader) -> None:
    # Before: no spam_score, reasons, label, model_version, decided_by or history.
    ident = submit(reader, author_email="fay@example.org").get_json()["id"]
    run_worker()
    token = "Bearer " + _admin(production_app)
    assert reader.post(f"/api/v1/moderation/comments/{ident}/decision",
                       headers={"Authorization": token},
                       json={"action": "spam", "note": "link farm"}).status_code == 200
    result = production_app.test_cli_runner().invoke(args=["commenter", "export",
                                                           "fay@example.org"])
    exported = json.loads(result.output)["comments"][0]
    assert exported["id"] == ident and exported["label"] == "spam"
    assert isinstance(exported["spam_score"], float) and exported["model_version"]
    assert exported["decided_by"] == "moderator" and isinstance(exported["reasons"], list)
    assert [(e["actor"], e["to_status"], e["note"]) for e in exported["history"]][-1][1:] == \
        ("spam", "link farm")
    assert exported["history"][0]["actor"] in ("model", "rule")


def _admin(app: Flask) -> str:
    from service.db import Moderator, Role
    from service.db.moderators import hash_token, new_token

    token = new_token()
    with app.extensions["db_sessions"]() as session:
        session.add(Moderator(name="root", role=Role.ADMIN, token_hash=hash_token(token)))
        session.commit()
    return token


@pytest.mark.parametrize("handle", ["id", "secret"])
def test_a_comment_without_an_email_can_be_exported_and_erased(db, production_app, reader,
                                                               handle) -> None:
    # Before: impossible (the commands took only an e-mail).
    mine = submit(reader, author_name="Gil").get_json()
    other = submit(reader, author_name="Hal").get_json()
    args = ["--id", str(mine["id"])] if handle == "id" else ["--secret", mine["secret"]]
    runner = production_app.test_cli_runner()
    exported = json.loads(runner.invoke(args=["commenter", "export", *args]).output)
    assert [c["id"] for c in exported["comments"]] == [mine["id"]]
    assert "erased 1" in runner.invoke(args=["commenter", "erase", *args, "--yes"]).output
    db.expire_all()
    assert db.get(Comment, mine["id"]) is None and db.get(Comment, other["id"]) is not None
    assert runner.invoke(args=["commenter", "export"]).exit_code == 2  # a handle is needed


def test_an_erased_comments_id_is_never_reused(db, production_app, reader) -> None:
    # Before, on SQLite: the next comment got the erased comment's id (and its URL).
    first = submit(reader).get_json()["id"]
    last = submit(reader, author_email="ivy@example.org").get_json()["id"]
    production_app.test_cli_runner().invoke(args=["commenter", "erase", "ivy@example.org",
                                                  "--yes"])
    after = submit(reader).get_json()["id"]
    assert first < last < after


def test_user_agent_and_referer_are_kept_only_as_long_as_ips(db, production_app,
                                                             reader) -> None:
    # Before: kept forever (only the IP was cut after IP_RETENTION_DAYS).
    old, new = (reader.post("/api/v1/comments", json={
        "post": "p", "author_name": "Jo", "content": f"Remark {n}"},
        headers={"User-Agent": "Mozilla/5.0 (X11; Linux) Reader/1", "Referer":
                 "https://blog.example/p?utm=mail"},
        environ_base={"REMOTE_ADDR": f"198.51.100.{200 + n}"}).get_json()["id"]
        for n in range(2))
    row = db.get(Comment, old)
    row.created_at = row.created_at - timedelta(days=31)  # time moved in the data
    db.commit()
    assert privacy.anonymise_old_ips(db, days=production_app.config["IP_RETENTION_DAYS"]) == 1
    db.expire_all()
    aged, fresh = db.get(Comment, old), db.get(Comment, new)
    assert (aged.ip, aged.user_agent, aged.referer) == ("198.51.100.0", None, None)
    assert fresh.user_agent.startswith("Mozilla") and fresh.referer.startswith("https://")
