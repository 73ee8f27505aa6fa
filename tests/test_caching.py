"""Reads a cache can serve: ETags and Cache-Control on the public listing, the counters and
the widget's files; 304s answered from Redis alone; every change readers see changes the tag."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import event, select

from service import caching, create_app, privacy
from service.db import Comment, CommentStatus
from service.embedded_redis import free_port
from tests.test_moderation_api import THREE_LINKS, bearer
from tests.test_scoring import HAM, SPAM

POST = "china-closing-ai-gap"
LISTING = f"/api/v1/posts/{POST}/comments"
COUNT = f"/api/v1/posts/{POST}/count"
COUNTS = f"/api/v1/counts?post={POST}&post=another-post"


def _publish(post_comment: Any, run_worker: Any, db: Any, content: str = HAM) -> int:
    """A comment the worker published (the real path: POST, then a burst worker)."""
    comment_id = int(post_comment(content=content).get_json()["id"])
    run_worker()
    assert db.get(Comment, comment_id).status == CommentStatus.PUBLISHED
    return comment_id


def _revalidate(client: FlaskClient, url: str, tag: str) -> Any:
    return client.get(url, headers={"If-None-Match": tag})


@pytest.fixture
def statements(app: Flask) -> Iterator[list[str]]:
    """Every SQL statement the app's engine runs while the test goes on."""
    seen: list[str] = []

    def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engine = app.extensions["db_engine"]
    event.listen(engine, "before_cursor_execute", _count)
    yield seen
    event.remove(engine, "before_cursor_execute", _count)


@pytest.mark.parametrize("url", [LISTING, f"{LISTING}?limit=5", COUNT, COUNTS])
def test_public_reads_carry_a_weak_etag_and_a_shared_short_cache_life(
        client: FlaskClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["ETag"].startswith('W/"')
    assert response.headers["Cache-Control"] == caching.LISTING_CACHE_CONTROL
    assert "public" in response.headers["Cache-Control"]
    assert "stale-while-revalidate=60" in response.headers["Cache-Control"]
    assert "Set-Cookie" not in response.headers  # nothing of the reader's in a shared answer


@pytest.mark.parametrize("url", [LISTING, COUNT, COUNTS])
def test_if_none_match_with_the_current_tag_is_a_304_without_a_body(
        client: FlaskClient, post_comment: Any, run_worker: Any, db: Any, url: str) -> None:
    _publish(post_comment, run_worker, db)
    first = client.get(url)
    again = _revalidate(client, url, first.headers["ETag"])
    assert again.status_code == 304
    assert again.get_data() == b""
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Cache-Control"] == first.headers["Cache-Control"]
    # A list of tags, the strong form of the same tag, and * match too (weak comparison).
    assert _revalidate(client, url, f'W/"other", {first.headers["ETag"]}').status_code == 304
    assert _revalidate(client, url, first.headers["ETag"][2:]).status_code == 304
    assert _revalidate(client, url, "*").status_code == 304
    assert _revalidate(client, url, 'W/"something-else"').status_code == 200


def test_head_answers_the_same_headers_and_304(client: FlaskClient) -> None:
    get = client.get(LISTING)
    head = client.head(LISTING)
    assert head.status_code == 200 and head.get_data() == b""
    assert head.headers["ETag"] == get.headers["ETag"]
    assert head.headers["Cache-Control"] == get.headers["Cache-Control"]
    assert client.head(LISTING, headers={"If-None-Match": get.headers["ETag"]}
                       ).status_code == 304


def test_each_page_and_post_has_its_own_tag(client: FlaskClient) -> None:
    tags = {client.get(url).headers["ETag"] for url in (
        LISTING, f"{LISTING}?limit=5", f"{LISTING}?cursor=3",
        "/api/v1/posts/another-post/comments", COUNT)}
    assert len(tags) == 5


def test_the_304_runs_no_sql(client: FlaskClient, post_comment: Any, run_worker: Any, db: Any,
                             statements: list[str]) -> None:
    _publish(post_comment, run_worker, db)
    for url in (LISTING, COUNT, COUNTS):
        tag = client.get(url).headers["ETag"]
        statements.clear()
        assert _revalidate(client, url, tag).status_code == 304
        assert statements == [], url
    statements.clear()
    client.get(LISTING)
    assert statements  # the listener does see the 200's queries


def test_a_newly_published_comment_changes_the_tag_and_shows(
        client: FlaskClient, post_comment: Any, run_worker: Any, db: Any) -> None:
    first = _publish(post_comment, run_worker, db)
    before = {url: client.get(url).headers["ETag"] for url in (LISTING, COUNT, COUNTS)}
    second = _publish(post_comment, run_worker, db,
                      content="The chip numbers match what I read in the annual report.")
    for url, tag in before.items():
        answer = _revalidate(client, url, tag)
        assert answer.status_code == 200, url
        assert answer.headers["ETag"] != tag
    listing = client.get(LISTING).get_json()
    assert [c["id"] for c in listing["comments"]] == [first, second]
    assert client.get(COUNT).get_json()["count"] == 2


@pytest.mark.parametrize("kind", ["spam", "held"])
def test_a_comment_not_published_neither_changes_the_tag_nor_shows(
        app: Flask, client: FlaskClient, post_comment: Any, run_worker: Any, db: Any,
        kind: str) -> None:
    published = _publish(post_comment, run_worker, db)
    tag = client.get(LISTING).headers["ETag"]
    hidden = int(post_comment(content=SPAM if kind == "spam" else THREE_LINKS)
                 .get_json()["id"])
    run_worker()
    assert db.get(Comment, hidden).status == CommentStatus(kind)
    assert _revalidate(client, LISTING, tag).status_code == 304  # nothing readers see changed
    listing = client.get(LISTING, headers={"If-None-Match": 'W/"x"'}).get_json()
    assert [c["id"] for c in listing["comments"]] == [published]
    assert listing["total"] == 1


def test_the_authors_own_unpublished_comment_is_never_for_a_shared_cache(
        client: FlaskClient, post_comment: Any, run_worker: Any, db: Any) -> None:
    answer = post_comment(content=THREE_LINKS).get_json()
    run_worker()
    own = client.get(f"/api/v1/comments/{answer['id']}",
                     headers={"X-Comment-Secret": answer["secret"]})
    assert own.status_code == 200 and own.get_json()["status"] == "held"
    assert own.headers["Cache-Control"] == "private, no-store"
    assert "X-Comment-Secret" in own.headers["Vary"]
    public = client.get(f"/api/v1/comments/{_publish(post_comment, run_worker, db)}")
    assert public.headers["Cache-Control"] == "no-cache"
    assert "X-Comment-Secret" in public.headers["Vary"]


@pytest.mark.parametrize(("action", "start"), [("approve", "held"), ("reject", "published")])
def test_a_moderators_decision_changes_the_tag(
        client: FlaskClient, post_comment: Any, run_worker: Any, db: Any,
        make_moderator: Any, action: str, start: str) -> None:
    token = make_moderator()
    content = THREE_LINKS if start == "held" else HAM
    comment_id = int(post_comment(content=content).get_json()["id"])
    run_worker()
    assert db.get(Comment, comment_id).status == CommentStatus(start)
    tag = client.get(LISTING).headers["ETag"]
    decided = client.post(f"/api/v1/moderation/comments/{comment_id}/decision",
                          headers=bearer(token), json={"action": action})
    assert decided.status_code == 200
    answer = _revalidate(client, LISTING, tag)
    assert answer.status_code == 200
    shown = [c["id"] for c in answer.get_json()["comments"]]
    assert shown == ([comment_id] if action == "approve" else [])


def test_closing_a_post_changes_the_tag(client: FlaskClient, make_moderator: Any) -> None:
    token = make_moderator(role="admin")
    tag = client.get(LISTING).headers["ETag"]
    closed = client.put(f"/api/v1/moderation/posts/{POST}", headers=bearer(token),
                        json={"closed": True, "premoderated": False})
    assert closed.status_code == 200, closed.get_json()
    answer = _revalidate(client, LISTING, tag)
    assert answer.status_code == 200 and answer.get_json()["closed"] is True


def test_erasing_a_commenters_comments_changes_the_tag(
        client: FlaskClient, post_comment: Any, run_worker: Any, db: Any) -> None:
    comment_id = _publish(post_comment, run_worker, db)
    tag = client.get(LISTING).headers["ETag"]
    assert privacy.erase(db, ids=[comment_id]) == 1
    answer = _revalidate(client, LISTING, tag)
    assert answer.status_code == 200 and answer.get_json()["comments"] == []


def test_a_change_that_rolls_back_keeps_the_tag(client: FlaskClient, db: Any) -> None:
    tag = client.get(LISTING).headers["ETag"]
    db.scalars(select(Comment)).all()  # a transaction, as any change has
    caching.changed(db, [POST])
    db.rollback()
    db.commit()
    assert _revalidate(client, LISTING, tag).status_code == 304


def test_tokens_lost_with_redis_data_never_answer_a_stale_304(
        app: Flask, client: FlaskClient, post_comment: Any, run_worker: Any, db: Any) -> None:
    _publish(post_comment, run_worker, db)
    tag = client.get(LISTING).headers["ETag"]
    Redis.from_url(app.config["REDIS_URL"]).flushdb()  # a restart without persistence
    answer = _revalidate(client, LISTING, tag)
    assert answer.status_code == 200 and answer.headers["ETag"] != tag
    assert _revalidate(client, LISTING, answer.headers["ETag"]).status_code == 304


@pytest.fixture
def no_redis_app(app: Flask) -> Iterator[Flask]:
    """The app on the same database with Redis at an address nobody listens on."""
    keys = ("TESTING", "DATABASE_URL", "MODEL_DIR", "QUEUE_NAME", "SECRET_KEY", "APP_ENV")
    other = create_app({**{key: app.config[key] for key in keys},
                        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    yield other
    other.extensions["db_engine"].dispose()


def test_without_redis_the_tag_comes_from_the_database_and_stays_right(
        no_redis_app: Flask, post_comment: Any, run_worker: Any, db: Any) -> None:
    _publish(post_comment, run_worker, db)
    client = no_redis_app.test_client()
    for url in (LISTING, COUNT):
        first = client.get(url)
        assert first.status_code == 200 and first.headers["ETag"].startswith('W/"b')
        assert _revalidate(client, url, first.headers["ETag"]).status_code == 304
    tag = client.get(LISTING).headers["ETag"]
    row = db.scalars(select(Comment)).one()
    row.status = CommentStatus.REJECTED  # even a change no token heard of
    db.commit()
    answer = _revalidate(client, LISTING, tag)
    assert answer.status_code == 200 and answer.get_json()["comments"] == []


# --- the widget's files --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["embed.js", "embed.css"])
def test_widget_files_at_the_versioned_url_are_immutable_and_revalidate(
        client: FlaskClient, name: str) -> None:
    from service.widget import widget

    version = widget().version
    versioned = client.get(f"/{name}?v={version}")
    assert versioned.status_code == 200
    control = versioned.headers["Cache-Control"]
    assert "immutable" in control and "max-age=31536000" in control and "public" in control
    tag = versioned.headers["ETag"]
    assert tag.startswith('"')  # strong: the bytes' own hash
    assert client.get(f"/{name}?v={version}", headers={"If-None-Match": tag}
                      ).status_code == 304
    plain = client.get(f"/{name}")  # the old unversioned URL still works, briefly cached
    assert plain.status_code == 200 and plain.get_data() == versioned.get_data()
    assert "immutable" not in plain.headers["Cache-Control"]
    assert "max-age=300" in plain.headers["Cache-Control"]
    assert client.get(f"/{name}", headers={"If-None-Match": tag}).status_code == 304
    stale = client.get(f"/{name}?v=0123456789abcdef")  # a version that is not current
    assert "immutable" not in stale.headers["Cache-Control"]


def test_pages_and_the_script_link_the_versioned_files(client: FlaskClient) -> None:
    from service.widget import widget

    version = widget().version
    assert f'src="/embed.js?v={version}"' in client.get(f"/demo/{POST}").get_data(as_text=True)
    script = client.get("/embed.js").get_data(as_text=True)
    assert f'var VERSION = "{version}";' in script  # so it links /embed.css?v=<version>


# --- the production front's shared cache (deploy/nginx/) -------------------------------------


def _through(port: int, path: str) -> tuple[str, Any]:
    """GET ``path`` from nginx; returns its X-Cache status and the JSON body (or the text)."""
    import httpx

    answer = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)
    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    body = answer.json() if answer.headers["Content-Type"].startswith("application/json") \
        else answer.text
    return answer.headers.get("X-Cache", ""), body


@pytest.mark.slow
def test_the_front_serves_the_public_reads_from_its_cache_and_refreshes_them(
        nginx_port: int, post_comment: Any, run_worker: Any, db: Any) -> None:
    import time

    _publish(post_comment, run_worker, db)
    first, listing = _through(nginx_port, LISTING)
    again, cached = _through(nginx_port, LISTING)
    assert (first, again) == ("MISS", "HIT") and cached == listing and listing["total"] == 1
    assert _through(nginx_port, COUNT)[0] == "MISS" and _through(nginx_port, COUNT)[0] == "HIT"
    # The widget's versioned file: kept a year.
    script = _through(nginx_port, "/embed.js")[1]
    versioned = script.split("?v=", 1)[1].split('"', 1)[0].split("'", 1)[0]
    asset = f"/embed.css?v={versioned}"
    assert [_through(nginx_port, asset)[0] for _ in range(2)] == ["MISS", "HIT"]
    # What must stay fresh is never kept: each form gets its own fill-time token.
    tokens = {_through(nginx_port, f"/api/v1/form-token?post={POST}")[1]["token"]
              for _ in range(2)}
    assert len(tokens) == 2

    # A comment published meanwhile: the cached copy serves readers for its max-age (10 s;
    # nginx counts whole seconds, so up to 11), then one request revalidates it while the
    # others get the old copy, and the new comment shows.
    _publish(post_comment, run_worker, db)
    assert _through(nginx_port, LISTING) == ("HIT", listing)
    time.sleep(10)
    seen = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, body = _through(nginx_port, LISTING)
        seen.append(status)
        if body["total"] == 2:
            break
        time.sleep(0.2)
    assert body["total"] == 2, seen
    assert {"STALE", "UPDATING", "EXPIRED"} & set(seen), seen
