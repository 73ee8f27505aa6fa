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
    CommentEvent,
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
    site, key = create_site(db, "https://blog.example/")
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
