"""A plain HTML comment form (no JavaScript) through the untrusted reader on production
settings: a 303 back to the page it came from, never to another site; refusals answer a page
in words; JSON clients keep their 202."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from service.db import Comment, PostSettings

BLOG = "https://blog.example"
PAGE = f"{BLOG}/2026/01/china-closing-ai-gap/?ref=home"
# What a browser sends with a form's navigation.
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
FORM = {"post": "china-closing-ai-gap", "author_name": "Mei",
        "content": "Posted from a page without JavaScript."}


@pytest.fixture
def blog_allowed(app: Flask) -> None:
    """The operator serves BLOG (CORS_ORIGINS), as for the widget."""
    app.config["CORS_ORIGINS"] = [BLOG]


def _send(client: FlaskClient, form: dict[str, str], referer: str | None = None,
          accept: str = BROWSER_ACCEPT) -> Any:
    headers = {"Accept": accept}
    if referer:
        headers["Referer"] = referer
    return client.post("/api/v1/comments", data=form, headers=headers)


def test_a_plain_form_gets_a_303_back_to_its_page_with_a_status(
        reader: FlaskClient, db: Any, blog_allowed: None) -> None:
    response = _send(reader, FORM, referer=PAGE)
    assert response.status_code == 303
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == \
        f"{BLOG}/2026/01/china-closing-ai-gap/"
    query = parse_qs(location.query)
    comment = db.scalars(select(Comment)).one()
    assert query == {"ref": ["home"], "comment": [str(comment.id)], "comment_status": ["pending"]}
    assert comment.status == "pending" and comment.content == FORM["content"]


def test_the_return_to_field_wins_over_the_referer(reader: FlaskClient,
                                                   blog_allowed: None) -> None:
    # A cross-origin Referer is often the origin alone (strict-origin-when-cross-origin).
    response = _send(reader, {**FORM, "return_to": f"{BLOG}/a-post/#comments"},
                     referer=f"{BLOG}/")
    assert response.status_code == 303
    assert response.headers["Location"].startswith(f"{BLOG}/a-post/?comment=")
    assert response.headers["Location"].endswith("&comment_status=pending#comments")


@pytest.mark.parametrize("target", [
    "https://evil.example/phish",
    "https://blog.example.evil.example/",
    "https://blog.example@evil.example/",
    "//evil.example/",
    "/\\evil.example/",
    "javascript:alert(1)",
    "http://blog.example/",  # not the scheme the operator allowed
    "https://blog.example:8443/",
])
def test_no_redirect_to_a_page_the_operator_did_not_allow(
        reader: FlaskClient, db: Any, blog_allowed: None, target: str) -> None:
    response = _send(reader, {**FORM, "return_to": target}, referer=target)
    assert response.status_code == 202 and "Location" not in response.headers
    assert response.mimetype == "text/html"
    assert "is being checked" in response.get_data(as_text=True)
    assert "evil" not in response.get_data(as_text=True)
    assert db.scalars(select(Comment)).one().status == "pending"  # stored all the same


def test_a_path_of_the_services_own_pages_is_allowed(reader: FlaskClient) -> None:
    response = _send(reader, {**FORM, "return_to": "/demo/china-closing-ai-gap"})
    assert response.status_code == 303
    assert response.headers["Location"].startswith(
        "http://localhost/demo/china-closing-ai-gap?comment=")


def test_a_refused_form_gets_a_page_naming_each_field_in_words(
        reader: FlaskClient, db: Any, blog_allowed: None) -> None:
    response = _send(reader, {"post": "china-closing-ai-gap", "author_name": "",
                              "author_email": "broken", "content": " "}, referer=PAGE)
    assert response.status_code == 422 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "<strong>Name:</strong> Please write your name." in page
    assert "<strong>Comment:</strong> Please write a comment." in page
    assert "<strong>E-mail:</strong> Please enter an e-mail address like" in page
    assert f'href="{PAGE.replace("&", "&amp;")}"' in page  # back to the post
    assert db.scalar(select(Comment).limit(1)) is None


def test_a_closed_post_and_a_rate_limit_answer_pages_too(
        reader: FlaskClient, db: Any, blog_allowed: None) -> None:
    db.add(PostSettings(post="old-news", closed=True))
    db.commit()
    closed = _send(reader, {**FORM, "post": "old-news"}, referer=PAGE)
    assert closed.status_code == 403 and closed.mimetype == "text/html"
    assert "Comments are closed on this post." in closed.get_data(as_text=True)
    assert _send(reader, FORM, referer=PAGE).status_code == 303
    again = _send(reader, {**FORM, "content": "And once more, at once."}, referer=PAGE)
    assert again.status_code == 429 and again.headers["Retry-After"]
    assert "You&#39;re posting too fast" in again.get_data(as_text=True)


def test_a_double_submit_goes_back_to_the_page_too(reader: FlaskClient, db: Any,
                                                   blog_allowed: None, app: Flask) -> None:
    app.config["FLOOD_SECONDS"] = 0
    first = _send(reader, FORM, referer=PAGE)
    second = _send(reader, FORM, referer=PAGE)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert len(db.scalars(select(Comment)).all()) == 1


@pytest.mark.parametrize("accept", ["*/*", "application/json", "application/json, text/html"])
def test_json_clients_keep_their_202(reader: FlaskClient, accept: str) -> None:
    response = _send(reader, FORM, referer=PAGE, accept=accept)
    assert response.status_code == 202 and response.get_json()["status"] == "pending"


def test_a_json_body_asking_for_html_keeps_its_json_answers(reader: FlaskClient) -> None:
    response = reader.post("/api/v1/comments", json=FORM, headers={"Accept": BROWSER_ACCEPT,
                                                                    "Referer": PAGE})
    assert response.status_code == 202 and response.get_json()["id"]
