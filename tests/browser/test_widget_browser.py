"""The comments widget in a real Chromium: the demo page under a strict CSP, posting through
the widget, a real worker deciding, "awaiting moderation", field errors from problem+json,
hostile comments shown as inert text, and the widget embedded on another origin."""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import func, select
from werkzeug.serving import make_server

from service import create_app
from service.db import Comment, CommentStatus, PostSettings
from service.guard import MIN_FILL_SECONDS
from service.widget import widget

pytestmark = pytest.mark.browser

SLUG = "china-closing-ai-gap"
CSP = "default-src 'self'; script-src 'self'; style-src 'self'"
AWAITING = "Your comment is awaiting moderation."
XSS = ('<script>window.__pwned = "script"</script>'
       '<img src=x onerror="window.__pwned = \'img\'">script kiddie')


class Blog:
    """Somebody's blog on its own origin, embedding the widget from the service, with a
    strict CSP that allows the service only where the widget needs it."""

    PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Another blog</title>
<script src="{service}/embed.js" defer></script></head>
<body><h1>A post on another blog</h1>
<p>💬 <span data-comment-count data-post="{post}">…</span></p>
<div data-comments data-post="{post}"></div></body></html>"""

    def __init__(self) -> None:
        self.service = ""
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"

    # A theme without JavaScript: the form posts straight to the service.
    PLAIN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A plain blog</title></head>
<body><h1>A post with a plain form</h1>
<form method="post" action="{service}/api/v1/comments">
<input type="hidden" name="post" value="{post}">
<input type="hidden" name="return_to" value="{origin}/plain/a-post/">
<label>Name <input name="author_name"></label>
<textarea name="content"></textarea>
<button type="submit">Post Comment</button></form></body></html>"""

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        """/plain/... answers the plain form; every other path the blog post with the widget."""
        service = html.escape(self.service)
        if environ["PATH_INFO"].startswith("/plain/"):
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [self.PLAIN.format(service=service, post=SLUG, origin=self.origin).encode()]
        csp = (f"default-src 'self'; script-src 'self' {service}; "
               f"style-src 'self' {service}; connect-src 'self' {service}")
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                  ("Content-Security-Policy", csp)])
        return [self.PAGE.format(service=service, post=SLUG).encode()]


@pytest.fixture
def blog() -> Iterator[Blog]:
    """The other blog, served from a thread on its own port (so its own origin)."""
    site = Blog()
    thread = threading.Thread(target=site.server.serve_forever, name="blog", daemon=True)
    thread.start()
    yield site
    site.server.shutdown()
    thread.join(timeout=10)
    site.server.server_close()


@pytest.fixture
def app(app: Flask, blog: Blog) -> Iterator[Flask]:
    """The conftest app's settings (emptied database, flushed Redis) with the blog's origin
    allowed by CORS; the live server and the worker fixtures use this one."""
    keys = ("TESTING", "DATABASE_URL", "REDIS_URL", "MODEL_DIR", "QUEUE_NAME")
    widget_app = create_app({**{key: app.config[key] for key in keys},
                             "CORS_ORIGINS": [blog.origin]})
    yield widget_app
    widget_app.extensions["db_engine"].dispose()


@pytest.fixture
def csp_violations(page: Any) -> list[str]:
    """Serve the demo pages with the strict CSP the service will send; collect violations."""
    violations: list[str] = []

    def with_csp(route: Any) -> None:
        response = route.fetch()
        route.fulfill(response=response,
                      headers={**response.headers, "content-security-policy": CSP})

    page.route("**/demo/**", with_csp)
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    return violations


@pytest.fixture
def published(db: Any, post_comment: Callable[..., Any]) -> Callable[..., int]:
    """A comment put straight into `published` (as the worker would), returning its id."""

    def _make(**fields: Any) -> int:
        response = post_comment(**fields)
        assert response.status_code == 202, response.get_json()
        comment_id = int(response.get_json()["id"])
        db.get(Comment, comment_id).status = CommentStatus.PUBLISHED
        db.commit()
        return comment_id

    return _make


def open_demo(page: Any) -> Any:
    """The demo post, once the widget has its form token and has listed the comments."""
    with page.expect_response(lambda response: "/api/v1/form-token" in response.url):
        page.goto(f"/demo/{SLUG}")
    expect(page.locator(".cw-title")).to_have_text(re.compile(r"^\d+ Comments?$"))
    return page


def fill_form(page: Any, *, name: str = "Mei", email: str = "mei@example.org",
              content: str = "Is the lag measured from release dates or from benchmark "
                             "results? The two can differ by months.") -> None:
    """Type a comment like a person: the form token only counts after a human's pause."""
    page.fill("input[name=name]", name)
    page.fill("input[name=email]", email)
    page.fill("textarea[name=comment]", content)
    page.wait_for_timeout((MIN_FILL_SECONDS + 0.5) * 1000)


def submit(page: Any) -> None:
    """Send the form and wait until the service has accepted it."""
    page.click(".cw-submit")
    expect(page.locator(".cw-notice")).to_contain_text("being checked")


def test_demo_page_lists_threaded_comments_with_counts_under_a_strict_csp(
        page: Any, csp_violations: list[str], published: Callable[..., int]) -> None:
    parent = published(author_name="Ada", content="First!\n\nSecond paragraph.",
                       author_url="https://ada.example/")
    reply = published(author_name="Bo", content="A reply to Ada.", parent_id=parent)
    published(author_name="Cy", content="A comment on another post.",
              post="open-weights-explained")

    open_demo(page)
    expect(page.locator("h1")).to_contain_text("AI")
    expect(page.locator(".meta")).to_contain_text("views")
    expect(page.locator(".cw-title")).to_have_text("2 Comments")
    expect(page.locator(f".meta [data-comment-count][data-post='{SLUG}']")).to_have_text(
        "2 comments")
    expect(page.locator(".related [data-post='open-weights-explained']")).to_have_text(
        "1 comment")
    thread = page.locator(f"[data-comment-id='{parent}']")
    expect(thread.locator(f".cw-replies [data-comment-id='{reply}']")).to_contain_text(
        "A reply to Ada.")
    expect(thread.locator(".cw-reply-count").first).to_have_text("1 reply")
    expect(thread.locator(".cw-body").first.locator("p")).to_have_count(2)
    author = thread.locator("a.cw-author").first
    expect(author).to_have_attribute("href", "https://ada.example/")
    expect(author).to_have_attribute("rel", "nofollow ugc noopener")
    expect(page.locator(".cw-form-title")).to_have_text("💬 Leave a Comment")
    # The styles from their immutable URL, the one the served script names.
    expect(page.locator(f"link[rel=stylesheet][href$='/embed.css?v={widget().version}']")
           ).to_have_count(1)
    expect(page.locator(".cw-hp")).not_to_be_in_viewport()
    assert csp_violations == []


def test_a_reader_posts_a_comment_and_sees_it_once_a_worker_publishes_it(
        page: Any, csp_violations: list[str], run_worker: Callable[[], int]) -> None:
    open_demo(page)
    expect(page.locator(".cw-list-status")).to_have_text("No comments yet. Be the first!")
    fill_form(page)
    submit(page)
    expect(page.locator("textarea[name=comment]")).to_have_value("")

    run_worker()
    expect(page.locator(".cw-notice")).to_have_text("Your comment is published.")
    mine = page.locator(".cw-list .cw-comment.cw-mine")
    expect(mine).to_contain_text("Is the lag measured from release dates")
    expect(mine.locator(".cw-author")).to_have_text("Mei")
    expect(page.locator(".cw-title")).to_have_text("1 Comment")
    expect(page.locator(f".meta [data-post='{SLUG}']")).to_have_text("1 comment")
    # A reload at once: the browser holds the listing it got before the comment (fresh for
    # 10 s); the widget asks again for its reader who just posted, and the list has it.
    page.reload()
    expect(page.locator(".cw-list .cw-comment")).to_contain_text(
        "Is the lag measured from release dates")
    expect(page.locator(".cw-title")).to_have_text("1 Comment")
    assert csp_violations == []


@pytest.mark.parametrize("how", ["held by the worker", "honeypot filled", "sent too fast"])
def test_a_comment_not_published_stays_visible_to_its_author_marked_awaiting_moderation(
        page: Any, db: Any, browser: Any, live_server: str, run_worker: Callable[[], int],
        screenshot: Callable[..., Any], how: str) -> None:
    open_demo(page)
    text = f"A comment that ends up {how}."
    if how == "sent too fast":  # autofill or a pasted text: held for a person, not spam
        page.fill("input[name=name]", "Quick")
        page.fill("textarea[name=comment]", text)
    else:
        fill_form(page, content=text)
    if how == "honeypot filled":
        page.fill("input[name=hp_website]", "https://bot.example/", force=True)
    submit(page)
    comment = db.scalars(select(Comment)).one()
    if how == "held by the worker":
        comment.status = CommentStatus.HELD
        db.commit()
    elif how == "sent too fast":
        assert comment.status == CommentStatus.PENDING
        run_worker()
        db.refresh(comment)
        assert comment.status == CommentStatus.HELD
        assert comment.reasons[0].startswith("form sent ")
    else:  # a bot trap filed it as spam at once; the reader is told the same thing
        assert comment.status == CommentStatus.SPAM

    expect(page.locator(".cw-notice")).to_have_text(AWAITING)
    mine = page.locator(".cw-list .cw-comment.cw-mine.cw-awaiting")
    expect(mine).to_have_count(1)
    expect(mine.locator(".cw-body")).to_have_text(text)
    expect(mine.locator(".cw-awaiting-badge")).to_have_text("Awaiting moderation")
    expect(mine.locator(".cw-reply")).to_be_hidden()
    expect(page.locator(".cw-title")).to_have_text("0 Comments")  # counts published only
    if how == "held by the worker":
        screenshot(page.locator("#comments"), "widget-awaiting-moderation")

    # After a reload the widget finds it again from the secret it kept.
    page.reload()
    mine = page.locator(".cw-list .cw-comment.cw-awaiting")
    expect(mine.locator(".cw-body")).to_have_text(text)
    expect(mine.locator(".cw-awaiting-badge")).to_have_text("Awaiting moderation")
    expect(page.locator(".cw-list-status")).to_be_hidden()
    # Nobody else sees it.
    other = browser.new_context(base_url=live_server)
    try:
        stranger = other.new_page()
        open_demo(stranger)
        expect(stranger.locator(".cw-list-status")).to_have_text("No comments yet. Be the first!")
        expect(stranger.locator(".cw-comment")).to_have_count(0)
    finally:
        other.close()


def test_an_awaiting_comment_turns_into_a_published_one_for_its_author(
        page: Any, db: Any, run_worker: Callable[[], int]) -> None:
    open_demo(page)
    fill_form(page, content="Held first, then approved by a moderator.")
    submit(page)
    comment = db.scalars(select(Comment)).one()
    comment.status = CommentStatus.HELD
    db.commit()
    expect(page.locator(".cw-awaiting .cw-body")).to_have_text(
        "Held first, then approved by a moderator.")
    comment.status = CommentStatus.PUBLISHED
    db.commit()
    page.reload()
    expect(page.locator(".cw-title")).to_have_text("1 Comment")
    expect(page.locator(".cw-comment")).to_have_count(1)
    expect(page.locator(".cw-awaiting")).to_have_count(0)
    # Published: no longer kept in the browser.
    assert page.evaluate("() => Object.keys(localStorage).filter("
                         "(key) => key.startsWith('cw-mine:')).length") == 0


def test_the_widget_remembers_name_email_and_website_only_when_the_reader_asks(
        page: Any) -> None:
    open_demo(page)
    remember = page.get_by_label("Save my name, e-mail and website in this browser")
    expect(remember).not_to_be_checked()
    page.fill("input[name=website]", "https://mei.example/")
    fill_form(page, content="Please remember me.")
    remember.check()
    submit(page)
    page.reload()
    expect(page.locator("input[name=name]")).to_have_value("Mei")
    expect(page.locator("input[name=email]")).to_have_value("mei@example.org")
    expect(page.locator("input[name=website]")).to_have_value("https://mei.example/")
    expect(remember).to_be_checked()
    expect(page.locator("textarea[name=comment]")).to_have_value("")

    # Unticked: forgotten after the next comment.
    remember.uncheck()
    page.fill("textarea[name=comment]", "And now forget me, please.")
    page.wait_for_timeout((MIN_FILL_SECONDS + 0.5) * 1000)
    submit(page)
    page.reload()
    expect(page.locator(".cw-title")).to_have_text(re.compile(r"^\d+ Comments?$"))
    expect(page.locator("input[name=name]")).to_have_value("")
    expect(page.locator("input[name=website]")).to_have_value("")
    expect(remember).not_to_be_checked()


def test_a_closed_post_shows_no_form(page: Any, db: Any, published: Callable[..., int],
                                    screenshot: Callable[..., Any]) -> None:
    published(author_name="Ada", content="Said before the post was closed.")
    db.add(PostSettings(post=SLUG, closed=True))
    db.commit()
    open_demo(page)
    expect(page.locator(".cw-body")).to_have_text("Said before the post was closed.")
    expect(page.locator(".cw-closed")).to_have_text("Comments are closed.")
    expect(page.locator(".cw-form")).to_be_hidden()
    expect(page.locator("textarea[name=comment]")).to_be_hidden()
    expect(page.locator(".cw-reply")).to_be_hidden()  # no replies either
    screenshot(page.locator("#comments"), "widget-closed-post")


LINKED = ("Sources: https://example.org/a_(b)?q=1&r=2. And (see http://example.net/x), "
          "not javascript:alert(1) nor data:text/html,hi; "
          '<a href="https://evil.example/" onclick="x()">x</a> '
          'or https://"onmouseover="window.__pwned=1 ok')


def test_addresses_in_comments_become_safe_links(page: Any, published: Callable[..., int],
                                                 screenshot: Callable[..., Any]) -> None:
    published(author_name="Lin", content=LINKED)
    open_demo(page)
    body = page.locator(".cw-body")
    expect(body).to_have_text(LINKED)  # every character still there, as text
    links = body.locator("a")
    expect(links).to_have_count(3)
    hrefs = [links.nth(i).get_attribute("href") for i in range(3)]
    assert hrefs == ["https://example.org/a_(b)?q=1&r=2", "http://example.net/x",
                     "https://evil.example/"]
    assert [links.nth(i).text_content() for i in range(3)] == hrefs
    for i in range(3):
        expect(links.nth(i)).to_have_attribute("rel", "nofollow ugc noopener")
        assert links.nth(i).get_attribute("onclick") is None
        assert links.nth(i).get_attribute("onmouseover") is None
    expect(page.locator(".cw-list [onclick], .cw-list [onmouseover]")).to_have_count(0)
    body.locator("a").nth(1).hover()
    assert page.evaluate("window.__pwned") is None
    screenshot(page.locator("#comments"), "widget-linked-urls")


def test_an_invalid_email_shows_the_services_error_next_to_the_field(page: Any, db: Any) -> None:
    open_demo(page)
    page.fill("input[name=name]", "Mei")
    page.fill("input[name=email]", "not-an-address")
    page.fill("textarea[name=comment]", "My e-mail is mistyped.")
    page.click(".cw-submit")

    email = page.locator("input[name=email]")
    error = page.locator(".cw-field-email .cw-error")
    expect(error).to_be_visible()
    expect(error).to_have_text(re.compile(r"e-?mail", re.IGNORECASE))
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_be_focused()
    expect(page.locator(".cw-field-name .cw-error")).to_be_hidden()
    expect(page.locator(".cw-notice")).to_contain_text("correct the marked fields")
    assert db.scalar(select(func.count()).select_from(Comment)) == 0

    email.fill("")
    page.fill("input[name=name]", "")
    page.click(".cw-submit")
    expect(page.locator(".cw-field-name .cw-error")).to_be_visible()
    expect(error).to_be_hidden()


def test_a_reply_is_posted_under_its_parent(page: Any, db: Any,
                                            published: Callable[..., int],
                                            run_worker: Callable[[], int]) -> None:
    parent = published(author_name="Ada", content="What about domestic chips?")
    open_demo(page)
    page.locator(f"[data-comment-id='{parent}'] .cw-reply").click()
    expect(page.locator(".cw-replying")).to_have_text(re.compile("Replying to Ada"))
    fill_form(page, content="Domestic accelerators are improving, but slowly.")
    submit(page)
    assert db.scalars(select(Comment).where(Comment.id != parent)).one().parent_id == parent
    run_worker()
    expect(page.locator(f"[data-comment-id='{parent}'] .cw-replies .cw-mine")).to_contain_text(
        "Domestic accelerators")


def test_hostile_comments_are_shown_as_inert_text(page: Any,
                                                  published: Callable[..., int]) -> None:
    published(author_name='<b onmouseover="x()">Eve</b>', content=XSS,
              author_url="https://eve.example/")
    published(author_name="Mallory", content="A link that is not a web address.")
    open_demo(page)
    expect(page.locator(".cw-body").first).to_have_text(XSS)
    expect(page.locator(".cw-author").first).to_have_text('<b onmouseover="x()">Eve</b>')
    expect(page.locator(".cw-list img")).to_have_count(0)
    expect(page.locator(".cw-list script")).to_have_count(0)
    expect(page.locator(".cw-list strong.cw-author")).to_have_text("Mallory")
    assert page.evaluate("window.__pwned") is None


def test_the_widget_works_embedded_on_another_origin(page: Any, blog: Blog, live_server: str,
                                                     published: Callable[..., int]) -> None:
    blog.service = live_server
    published(content="Seen from the other blog.")
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if re.search("CORS|Access-Control|Content Security Policy", message.text) else None)

    page.goto(f"{blog.origin}/2026/01/a-post")
    expect(page.locator(".cw-title")).to_have_text("1 Comment")
    expect(page.locator(".cw-body")).to_have_text("Seen from the other blog.")
    expect(page.locator(f"[data-comment-count][data-post='{SLUG}']")).to_have_text("1 comment")
    expect(page.locator(f"link[href='{live_server}/embed.css?v={widget().version}']")
           ).to_have_count(1)
    fill_form(page, content="Posted from another origin through CORS.")
    submit(page)
    page.fill("input[name=email]", "broken")
    page.fill("textarea[name=comment]", "Errors are readable across origins too.")
    page.click(".cw-submit")
    expect(page.locator(".cw-field-email .cw-error")).to_be_visible()
    assert violations == []


def test_the_widget_keeps_the_reader_token_and_sends_it_with_the_next_comment(
        page: Any, db: Any) -> None:
    open_demo(page)
    fill_form(page, content="My first comment on this blog.")
    submit(page)
    first = db.scalars(select(Comment)).one()
    kept = page.evaluate("() => Object.entries(localStorage).find("
                         "([key]) => key.startsWith('cw-reader-token:'))")
    assert kept and kept[1]
    page.reload()
    expect(page.locator(".cw-title")).to_have_text(re.compile(r"^\d+ Comments?$"))
    fill_form(page, content="And a second one, a week later.")
    with page.expect_request(lambda r: r.method == "POST" and "/api/v1/comments" in r.url
                             ) as sent:
        page.click(".cw-submit")
    assert sent.value.post_data_json["reader_token"] == kept[1]
    expect(page.locator(".cw-notice")).to_contain_text("being checked")
    db.expire_all()
    second = db.scalars(select(Comment).where(Comment.id != first.id)).one()
    assert second.reader_id == first.reader_id is not None


@pytest.fixture
def service_without_cors(app: Flask) -> Iterator[str]:
    """The same service on another port with CORS_ORIGINS unset (the default)."""
    keys = ("TESTING", "DATABASE_URL", "REDIS_URL", "MODEL_DIR", "QUEUE_NAME")
    bare = create_app({key: app.config[key] for key in keys})
    assert not bare.config["CORS_ORIGINS"]
    server = make_server("127.0.0.1", 0, bare, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="no-cors", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()
    bare.extensions["db_engine"].dispose()


def test_embedding_without_cors_origins_tells_the_site_owner_what_to_set(
        page: Any, blog: Blog, service_without_cors: str,
        screenshot: Callable[..., Any]) -> None:
    blog.service = service_without_cors
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text)
            if message.type == "error" else None)
    page.goto(f"{blog.origin}/2026/01/a-post")
    status = page.locator(".cw-list-status")
    expect(status).to_contain_text("The comments cannot be shown on this site yet.")
    hint = status.locator(".cw-owner-hint")
    expect(hint).to_contain_text(f"CORS_ORIGINS={blog.origin}")
    expect(hint).to_contain_text(service_without_cors)
    expect(page.locator(".cw-form")).to_be_hidden()  # it could not post either
    assert any(f"CORS_ORIGINS={blog.origin}" in line for line in console), console
    screenshot(page.locator(".cw"), "widget-embedded-without-cors")


def test_a_plain_form_without_javascript_comes_back_to_its_page(
        page: Any, blog: Blog, live_server: str, db: Any,
        screenshot: Callable[..., Any]) -> None:
    blog.service = live_server
    page.goto(f"{blog.origin}/plain/a-post/")
    page.fill("input[name=author_name]", "Noscript Nora")
    page.fill("textarea[name=content]", "Sent by a theme without any JavaScript.")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(f"{blog.origin}/plain/a-post/") +
                                 r"\?comment=\d+&comment_status=pending$"))
    comment = db.scalars(select(Comment)).one()
    assert page.url.endswith(f"?comment={comment.id}&comment_status=pending")
    assert comment.author_name == "Noscript Nora" and comment.status == CommentStatus.PENDING

    # A refusal answers a page in words, not JSON.
    page.goto(f"{blog.origin}/plain/a-post/")
    page.fill("textarea[name=content]", "Forgot my name.")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Your comment could not be posted")
    expect(page.locator("li")).to_have_text("Name: Please write your name.")
    expect(page.get_by_role("link", name="« Back to the post")).to_have_attribute(
        "href", f"{blog.origin}/plain/a-post/")
    screenshot(page, "plain-form-refused", full_page=False)
