"""The public comments API: submission, validation, reading, listing, errors."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from rq import Queue
from sqlalchemy import select

from service.db import Comment, CommentStatus
from service.queue import SCORE_JOB, requested_key
from tests.conftest import ROOT

VALID = {
    "post": "china-closing-ai-gap",
    "author_name": "Mei",
    "author_email": "mei@example.org",
    "author_url": "https://mei.example.org/blog",
    "content": "Does the 7-month lag account for the distillation claims?",
}


def test_submit_answers_202_pending_with_location_and_stores_the_row(client, db) -> None:
    response = client.post(
        "/api/v1/comments",
        json=VALID,
        headers={"User-Agent": "Mozilla/5.0 test", "Referer": "https://blog.example/post"},
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "pending"
    assert response.headers["Location"] == f"/api/v1/comments/{body['id']}"
    row = db.get(Comment, body["id"])
    assert row.status == CommentStatus.PENDING
    assert row.author_email == "mei@example.org"
    assert (row.ip, row.user_agent, row.referer) == (
        "203.0.113.7", "Mozilla/5.0 test", "https://blog.example/post"
    )
    assert row.created_at.tzinfo is not None


def test_submissions_queue_one_scoring_job_until_it_starts(app, post_comment) -> None:
    queue = Queue(app.config["QUEUE_NAME"], connection=app.extensions["redis"])
    for n in range(3):
        assert post_comment(content=f"{VALID['content']} ({n})").status_code == 202
    [job_id] = queue.job_ids  # the first submission queued it; the others found it waiting
    job = queue.fetch_job(job_id)
    assert job.func_name == SCORE_JOB and job.args == ()
    assert app.extensions["redis"].get(requested_key(queue)) == job_id.encode()


def test_a_plain_html_form_post_is_accepted_and_blank_optionals_ignored(client, db) -> None:
    form = {**VALID, "author_email": "", "author_url": "", "parent_id": ""}
    response = client.post("/api/v1/comments", data=form)
    assert response.status_code == 202
    row = db.get(Comment, response.get_json()["id"])
    assert row.author_email is None and row.author_url is None and row.parent_id is None


def test_content_is_trimmed_and_normalised(client, db) -> None:
    response = client.post("/api/v1/comments", json={**VALID, "content": "  Cafe\u0301\r\nok  "})
    row = db.get(Comment, response.get_json()["id"])
    assert row.content == "Caf\u00e9\nok"


def _long(n: int) -> str:
    return "x" * n


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"post": None}, "post", "Please say which post this comment is for."),
        ({"post": ""}, "post", "Please say which post this comment is for."),
        ({"post": _long(201)}, "post", "The post's name is too long (at most 200 characters)."),
        ({"author_name": None}, "author_name", "Please write your name."),
        ({"author_name": "   "}, "author_name", "Please write your name."),
        ({"author_name": _long(101)}, "author_name",
         "Your name is too long (at most 100 characters)."),
        ({"author_name": "bad\x07name"}, "author_name",
         "Please remove the control characters from your name."),
        ({"author_name": 7}, "author_name", "Please write your name as text."),
        ({"author_email": "not-an-email"}, "author_email",
         "Please enter an e-mail address like name@example.org, or leave it empty."),
        ({"author_email": "a" * 250 + "@example.org"}, "author_email",
         "Your e-mail address is too long (at most 254 characters)."),
        ({"author_url": "javascript:alert(1)"}, "author_url",
         "Please enter a web address starting with http:// or https://, or leave it empty."),
        ({"author_url": "ftp://files.example.org/"}, "author_url",
         "Please enter a web address starting with http:// or https://, or leave it empty."),
        ({"author_url": "not a url"}, "author_url",
         "Please enter a web address starting with http:// or https://, or leave it empty."),
        ({"author_url": "https://example.org/" + "a" * 2040}, "author_url",
         "Your website's address is too long (at most 2,048 characters)."),
        ({"content": None}, "content", "Please write a comment."),
        ({"content": "   \n\t "}, "content", "Please write a comment."),
        ({"content": _long(10_001)}, "content",
         "Your comment is too long (at most 10,000 characters)."),
        ({"content": "null\x00byte"}, "content", "NUL characters are not allowed."),
        ({"content": "bell\x07"}, "content",
         "Please remove the control characters from your comment."),
        ({"content": 42}, "content", "Please write your comment as text."),
        ({"parent_id": "abc"}, "parent_id",
         "The comment you replied to is not a comment of this post."),
        ({"parent_id": 0}, "parent_id",
         "The comment you replied to is not a comment of this post."),
        ({"parent_id": 999_999}, "parent_id",
         "The comment you replied to is no longer shown on this post."),
        ({"admin": True}, "admin", "Unknown field."),
    ],
)
def test_invalid_fields_get_422_problem_naming_the_field_in_words_for_readers(
    client, db, change: dict[str, Any], field: str, message: str
) -> None:
    body = {k: v for k, v in {**VALID, **change}.items() if v is not None}
    response = client.post("/api/v1/comments", json=body)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == 422 and problem["title"]
    assert problem["errors"][field] == [message]
    assert db.scalar(select(Comment).limit(1)) is None  # nothing stored


def test_content_of_exactly_ten_thousand_characters_is_accepted(client) -> None:
    assert client.post(
        "/api/v1/comments", json={**VALID, "content": _long(10_000)}
    ).status_code == 202


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b'{"post": "x", ', "application/json", 400),
        (b'["a", "list"]', "application/json", 400),
        (b"\xff\xfe\x00garbage", "application/json", 400),
        (b"post=p&author_name=A&content=%FF%FE", "application/x-www-form-urlencoded", 400),
        (b"post=p&author_name=A&content=caf\xe9", "application/x-www-form-urlencoded", 400),
        (b"post=x", "text/plain", 415),
        (b"<comment/>", "application/xml", 415),
        (b'{"content": "' + b"x" * 70_000 + b'"}', "application/json", 413),
    ],
)
def test_malformed_bodies_get_clear_problems(client, body, content_type, status) -> None:
    response = client.post("/api/v1/comments", data=body, content_type=content_type)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == status


def test_unknown_route_is_404_and_wrong_method_405_as_problems(client) -> None:
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    wrong = client.delete("/api/v1/comments")
    assert wrong.status_code == 405 and wrong.mimetype == "application/problem+json"
    assert "POST" in wrong.headers["Allow"]


def test_unknown_comment_is_404(client) -> None:
    response = client.get("/api/v1/comments/123456")
    assert response.status_code == 404
    assert response.get_json()["detail"] == "No comment 123456."


def test_public_view_hides_email_and_ip(client, post_comment) -> None:
    accepted = post_comment(**{k: VALID[k] for k in ("author_email", "content")}).get_json()
    comment_id = accepted["id"]
    # Unpublished: only its author (the 202's secret) sees it.
    body = client.get(f"/api/v1/comments/{comment_id}",
                      headers={"X-Comment-Secret": accepted["secret"]}).get_json()
    assert body["status"] == "pending" and body["decided_at"] is None
    assert set(body) >= {"id", "post", "parent_id", "author_name", "content", "status",
                         "created_at", "decided_at"}
    assert "author_email" not in body and "ip" not in body
    assert "mei@example.org" not in str(body)


def _publish(db, comment_id: int) -> None:
    row = db.get(Comment, comment_id)
    row.status = CommentStatus.PUBLISHED
    db.commit()


def test_reply_must_target_a_published_comment_of_the_same_post(db, post_comment) -> None:
    parent_id = post_comment().get_json()["id"]
    pending = post_comment(parent_id=parent_id)
    assert pending.status_code == 422 and "parent_id" in pending.get_json()["errors"]
    _publish(db, parent_id)
    other_post = post_comment(post="another-post", parent_id=parent_id)
    assert other_post.status_code == 422
    reply = post_comment(parent_id=parent_id)
    assert reply.status_code == 202
    assert db.get(Comment, reply.get_json()["id"]).parent_id == parent_id


def test_listing_shows_only_published_oldest_first_with_paging(client, db, post_comment) -> None:
    ids = [post_comment(content=f"Comment number {i}").get_json()["id"] for i in range(5)]
    for comment_id in ids[:4]:
        _publish(db, comment_id)
    post_comment(post="another-post")
    first = client.get("/api/v1/posts/china-closing-ai-gap/comments?limit=3").get_json()
    assert [c["id"] for c in first["comments"]] == ids[:3]
    assert first["total"] == 4 and first["next"] == str(ids[2])
    second = client.get(
        f"/api/v1/posts/china-closing-ai-gap/comments?limit=3&cursor={first['next']}"
    ).get_json()
    assert [c["id"] for c in second["comments"]] == [ids[3]]
    assert second["next"] is None
    assert all("author_email" not in c for c in first["comments"])


def test_listing_accepts_paths_as_posts(client, db, post_comment) -> None:
    comment_id = post_comment(post="/2026/01/china-ai/").get_json()["id"]
    _publish(db, comment_id)
    body = client.get("/api/v1/posts/2026/01/china-ai/comments").get_json()
    assert [c["id"] for c in body["comments"]] == [comment_id]
    assert body["comments"][0]["post"] == "2026/01/china-ai"


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=x", "cursor=abc", "page=2"])
def test_listing_rejects_bad_paging(client, query: str) -> None:
    response = client.get(f"/api/v1/posts/p/comments?{query}")
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["errors"]


def test_openapi_document_describes_the_api(client) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    assert {"/api/v1/comments", "/api/v1/comments/{comment_id}",
            "/api/v1/posts/{post}/comments"} <= set(spec["paths"])
    body = spec["paths"]["/api/v1/comments"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-www-form-urlencoded"} <= set(body)
    assert "CommentIn" in spec["components"]["schemas"]


def test_a_web_worker_takes_comments_without_the_workers_libraries(app) -> None:
    # What a web worker never needs on its public paths, or to show a moderator a comment's
    # campaign, stays out of its memory (the 80 MB budget of docs/PERFORMANCE.md):
    # scikit-learn, numpy, and disarm's 3.6 MB confusables table (matching folds text in the
    # scoring worker).
    code = (
        "import sys\n"
        "from service import create_app\n"
        f"app = create_app({{'DATABASE_URL': {app.config['DATABASE_URL']!r},"
        f" 'REDIS_URL': {app.config['REDIS_URL']!r}, 'QUEUE_NAME': 'import-check'}})\n"
        "reader = app.test_client()\n"
        "sent = reader.post('/api/v1/comments', environ_base={'REMOTE_ADDR': '198.51.100.7'},"
        " json={'post': 'imports', 'author_name': 'Ann', 'content': 'A plain comment.'})\n"
        "assert sent.status_code == 202, sent.get_data()\n"
        "assert reader.get('/api/v1/posts/imports/comments').status_code == 200\n"
        # A moderator's look at a comment and its campaign (two stored SimHashes 1 bit apart).
        "from service.db import Comment, Moderator, Role\n"
        "from service.db.moderators import hash_token, new_token\n"
        "token = new_token()\n"
        "with app.extensions['db_sessions']() as session:\n"
        "    comment = session.get(Comment, sent.get_json()['id'])\n"
        "    comment.simhash = 2 ** 63 + 5\n"
        "    session.add(Comment(post='imports', author_name='Bo', content='A plain comment.',"
        " status=comment.status, simhash=2 ** 63 + 4))\n"
        "    session.add(Moderator(name='m', role=Role.ADMIN, token_hash=hash_token(token)))\n"
        "    session.commit()\n"
        "record = reader.get(f\"/api/v1/moderation/comments/{sent.get_json()['id']}\","
        " headers={'Authorization': f'Bearer {token}'})\n"
        "assert record.status_code == 200 and record.get_json()['campaign']['total'] == 1,"
        " record.get_data()\n"
        "print(sorted(m for m in ('sklearn', 'disarm', 'numpy') if m in sys.modules))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60,
                            capture_output=True, text=True).stdout.strip().splitlines()[-1]
    assert loaded == "[]"
