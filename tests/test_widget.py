"""The widget's assets, the demo page, the comment counters and CORS for blog origins."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service import create_app
from service.db import Comment, CommentStatus
from service.widget import widget

BLOG = "https://blog.example"
SLUG = "china-closing-ai-gap"


@pytest.fixture
def blog_app(app: Flask) -> Iterator[Flask]:
    """The app with BLOG as its one allowed CORS origin, on the same database and Redis."""
    keys = ("TESTING", "DATABASE_URL", "REDIS_URL", "MODEL_DIR", "QUEUE_NAME")
    other = create_app({**{key: app.config[key] for key in keys}, "CORS_ORIGINS": [BLOG]})
    yield other
    other.extensions["db_engine"].dispose()


@pytest.fixture
def blog_client(blog_app: Flask) -> FlaskClient:
    """A test client of the app that allows BLOG."""
    return blog_app.test_client()


@pytest.fixture
def publish(db: Any, post_comment: Any) -> Any:
    """Post a comment and give it ``status`` directly (as a worker or moderator would)."""

    def _make(post: str = SLUG, status: CommentStatus = CommentStatus.PUBLISHED,
              content: str | None = None) -> int:
        body = post_comment(post=post, content=content or f"A comment on {post}, {status}.",
                            author_name=f"Reader {status}")
        assert body.status_code == 202, body.get_json()
        comment_id = int(body.get_json()["id"])
        db.get(Comment, comment_id).status = status
        db.commit()
        return comment_id

    return _make


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text inside <script> and <style>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._open = tag if tag in ("script", "style") else None

    def handle_data(self, data: str) -> None:
        if self._open and data.strip():
            self.inline.append(f"<{self._open}>{data.strip()[:60]}")

    def handle_endtag(self, tag: str) -> None:
        self._open = None


# --- assets ------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "media_types"), [
    ("/embed.js", {"text/javascript", "application/javascript"}),
    ("/embed.css", {"text/css"}),
    ("/widget/demo.css", {"text/css"}),
])
def test_widget_assets_are_served_with_their_media_type(client: FlaskClient, path: str,
                                                        media_types: set[str]) -> None:
    with client.get(path) as response:
        assert response.status_code == 200
        assert response.mimetype in media_types
        if path.startswith("/embed."):  # blogs load these on every page view (the plain
            # URL: the snippet's; tests/test_caching.py has the versioned one)
            assert response.headers["Cache-Control"] == \
                "public, max-age=300, stale-while-revalidate=86400"
        assert response.get_data()


def test_embed_script_finds_its_origin_and_never_parses_comment_html(
        client: FlaskClient) -> None:
    with client.get("/embed.js") as response:
        source = response.get_data(as_text=True)
    assert "document.currentScript" in source
    assert "/embed.css" in source
    for unsafe in (r"\.innerHTML", r"\.outerHTML", r"insertAdjacentHTML", r"document\.write",
                   r"\.style\.", r"setAttribute\(\s*[\"']style", r"\beval\(",
                   r"new Function"):
        assert not re.search(unsafe, source), unsafe


# --- the demo page -----------------------------------------------------------------------


def test_demo_page_has_the_blog_shape_and_no_inline_script_or_style(
        client: FlaskClient) -> None:
    response = client.get(f"/demo/{SLUG}")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    parser = _Tags()
    parser.feed(html)
    script = f"/embed.js?v={widget().version}"  # the immutable URL

    assert parser.inline == []
    assert not [tag for tag, _ in parser.tags if tag == "style"]
    for tag, attrs in parser.tags:
        assert "style" not in attrs, tag
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        if tag == "script":
            assert attrs.get("src") == script
        if tag == "a":
            assert not (attrs.get("href") or "").lower().startswith("javascript:")
    assert ("script", {"src": script, "defer": None}) in parser.tags
    assert ("div", {"data-comments": None, "data-post": SLUG}) in parser.tags
    for text in ("<h1>", "views", "Related Posts", 'data-comment-count data-post="'):
        assert text in html


def test_demo_page_counts_published_comments_only(client: FlaskClient, publish: Any) -> None:
    publish()
    publish(status=CommentStatus.HELD)
    html = client.get(f"/demo/{SLUG}").get_data(as_text=True)
    assert f'data-post="{SLUG}">1 comment</span>' in html


def test_demo_page_of_an_unknown_post_is_a_404_problem(client: FlaskClient) -> None:
    response = client.get("/demo/no-such-post")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


# --- counters ----------------------------------------------------------------------------


@pytest.mark.parametrize("post", [SLUG, "blog/2026/01/nested-slug"])
def test_count_of_a_post_counts_published_comments_only(client: FlaskClient, publish: Any,
                                                        post: str) -> None:
    publish(post=post)
    publish(post=post, content="A second published one.")
    for status in (CommentStatus.PENDING, CommentStatus.HELD, CommentStatus.SPAM,
                   CommentStatus.REJECTED):
        publish(post=post, status=status)
    publish(post="another-post")

    response = client.get(f"/api/v1/posts/{post}/count")
    assert response.status_code == 200
    assert response.get_json() == {"post": post, "count": 2}


def test_count_of_a_post_without_comments_is_zero(client: FlaskClient) -> None:
    assert client.get("/api/v1/posts/nobody-commented/count").get_json() == {
        "post": "nobody-commented", "count": 0}


def test_counts_of_many_posts_at_once(client: FlaskClient, publish: Any) -> None:
    publish(post="a")
    publish(post="a", content="Another one on a.")
    publish(post="b")
    publish(post="b", status=CommentStatus.HELD)

    response = client.get("/api/v1/counts?post=a&post=b&post=empty&post=a")
    assert response.status_code == 200
    assert response.get_json() == {"counts": {"a": 2, "b": 1, "empty": 0}}


@pytest.mark.parametrize("query", [
    "",
    "?" + "&".join(f"post=p{n}" for n in range(101)),
    "?post=",
    "?post=a&colour=blue",
])
def test_counts_refuses_missing_too_many_or_unknown_arguments(client: FlaskClient,
                                                              query: str) -> None:
    response = client.get(f"/api/v1/counts{query}")
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"


def test_counts_accepts_the_maximum_batch(client: FlaskClient) -> None:
    query = "&".join(f"post=p{n}" for n in range(100))
    counts = client.get(f"/api/v1/counts?{query}").get_json()["counts"]
    assert len(counts) == 100 and set(counts.values()) == {0}


# --- CORS --------------------------------------------------------------------------------

WIDGET_ROUTES = [
    ("GET", f"/api/v1/posts/{SLUG}/comments"),
    ("GET", f"/api/v1/posts/{SLUG}/count"),
    ("GET", "/api/v1/counts?post=a"),
    ("GET", "/api/v1/comments/1"),
    ("GET", f"/api/v1/form-token?post={SLUG}"),
    ("POST", "/api/v1/comments"),
]
MODERATION_ROUTES = [
    ("GET", "/api/v1/moderation/queue"),
    ("GET", "/api/v1/moderation/comments/1"),
    ("POST", "/api/v1/moderation/comments/1/decision"),
    ("POST", "/api/v1/moderation/decisions"),
    ("GET", "/api/v1/moderation/rules"),
    ("GET", f"/api/v1/moderation/posts/{SLUG}"),
]


def _preflight(client: FlaskClient, method: str, path: str, origin: str) -> Any:
    return client.options(path, headers={
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type",
    })


@pytest.mark.parametrize(("method", "path"), WIDGET_ROUTES)
def test_widget_routes_allow_a_configured_blog_origin(blog_client: FlaskClient, method: str,
                                                      path: str) -> None:
    response = _preflight(blog_client, method, path, BLOG)
    assert response.headers.get("Access-Control-Allow-Origin") == BLOG
    assert method in response.headers.get("Access-Control-Allow-Methods", "")
    assert "content-type" in response.headers.get("Access-Control-Allow-Headers", "").lower()
    assert "Access-Control-Allow-Credentials" not in response.headers

    if method == "GET":
        response = blog_client.get(path, headers={"Origin": BLOG})
        assert response.headers.get("Access-Control-Allow-Origin") == BLOG


def test_widget_can_read_the_answer_and_errors_of_a_cross_origin_post(
        blog_client: FlaskClient) -> None:
    accepted = blog_client.post("/api/v1/comments", headers={"Origin": BLOG}, json={
        "post": SLUG, "author_name": "Mei", "content": "From the blog's own origin."})
    assert accepted.status_code == 202
    assert accepted.headers["Access-Control-Allow-Origin"] == BLOG
    assert "location" in accepted.headers["Access-Control-Expose-Headers"].lower()

    invalid = blog_client.post("/api/v1/comments", headers={"Origin": BLOG}, json={
        "post": SLUG, "author_name": "Mei", "author_email": "not-an-address",
        "content": "Hello."})
    assert invalid.status_code == 422
    assert invalid.headers["Access-Control-Allow-Origin"] == BLOG
    assert "author_email" in invalid.get_json()["errors"]


@pytest.mark.parametrize(("method", "path"), WIDGET_ROUTES)
def test_widget_routes_refuse_other_origins(blog_client: FlaskClient, method: str,
                                            path: str) -> None:
    for origin in ("https://evil.example", "https://blog.example.evil.example", "null"):
        response = _preflight(blog_client, method, path, origin)
        assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize(("method", "path"), MODERATION_ROUTES)
def test_moderation_routes_never_answer_cors(blog_client: FlaskClient, method: str,
                                             path: str) -> None:
    response = _preflight(blog_client, method, path, BLOG)
    assert "Access-Control-Allow-Origin" not in response.headers
    response = blog_client.open(path, method=method, headers={"Origin": BLOG})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_no_cors_when_no_origin_is_configured(client: FlaskClient) -> None:
    response = _preflight(client, "POST", "/api/v1/comments", BLOG)
    assert "Access-Control-Allow-Origin" not in response.headers
    response = client.get(f"/api/v1/posts/{SLUG}/count", headers={"Origin": BLOG})
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("path", ["/embed.js", f"/demo/{SLUG}"])
def test_pages_and_assets_carry_no_cors_headers(blog_client: FlaskClient, path: str) -> None:
    with blog_client.get(path, headers={"Origin": BLOG}) as response:
        assert "Access-Control-Allow-Origin" not in response.headers
