"""The moderator's web pages: login and logout, CSRF, access rules, and pages a strict
Content-Security-Policy can serve (no inline scripts, styles or event handlers)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from service.auth import SESSION_KEY

ADMIN_PAGES = ["/moderate/rules", "/moderate/webhooks", "/moderate/sites", "/moderate/models",
               "/moderate/stats", "/moderate/audit"]


def csrf_from(html: str) -> str:
    """The CSRF token a page carries in its <meta> tag."""
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert found, "page has no csrf-token meta tag"
    return found.group(1)


@pytest.fixture
def login(client: FlaskClient) -> Callable[..., Any]:
    """Log in through the form (fetching its CSRF token first); returns the response."""

    def _login(name: str, password: str) -> Any:
        token = csrf_from(client.get("/moderate/login").get_data(as_text=True))
        return client.post("/moderate/login",
                           data={"csrf_token": token, "name": name, "password": password})

    return _login


def test_login_page_renders_a_form_with_a_csrf_token(client) -> None:
    response = client.get("/moderate/login")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert 'name="password"' in html and 'type="password"' in html
    assert re.search(r'name="csrf_token" value="[^"]+"', html)


def test_login_sets_an_httponly_samesite_session_and_opens_the_queue(client, make_moderator,
                                                                      login) -> None:
    make_moderator("ann", "moderator", password="correct horse")
    response = login("ann", "correct horse")
    assert response.status_code == 302
    assert response.headers["Location"] == "/moderate"
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    with client.session_transaction() as session:
        assert SESSION_KEY in session
    page = client.get("/moderate")
    assert page.status_code == 200
    assert "ann" in page.get_data(as_text=True)


@pytest.mark.parametrize(("name", "password"), [
    ("ann", "wrong"), ("nobody", "correct horse"), ("ann", ""),
])
def test_wrong_credentials_show_an_error_and_start_no_session(client, make_moderator, login,
                                                               name, password) -> None:
    make_moderator("ann", "moderator", password="correct horse")
    response = login(name, password)
    assert response.status_code == 401
    assert "Wrong name or password" in response.get_data(as_text=True)
    with client.session_transaction() as session:
        assert SESSION_KEY not in session
    assert client.get("/moderate").status_code == 302


def test_disabled_account_cannot_log_in(client, db, make_moderator, login) -> None:
    from service.db import Moderator

    make_moderator("ann", "moderator", password="a long pass phrase")
    moderator = db.query(Moderator).filter_by(name="ann").one()
    moderator.active = False
    db.commit()
    assert login("ann", "a long pass phrase").status_code == 401


@pytest.mark.parametrize("token", [None, "forged"])
def test_login_without_a_valid_csrf_token_is_refused(client, make_moderator, token) -> None:
    make_moderator("ann", "moderator", password="a long pass phrase")
    client.get("/moderate/login")
    data = {"name": "ann", "password": "a long pass phrase"}
    if token:
        data["csrf_token"] = token
    response = client.post("/moderate/login", data=data)
    assert response.status_code == 400
    with client.session_transaction() as session:
        assert SESSION_KEY not in session


def test_logout_needs_csrf_and_ends_the_session(client, make_moderator, login) -> None:
    make_moderator("ann", "moderator", password="a long pass phrase")
    login("ann", "a long pass phrase")
    page = client.get("/moderate").get_data(as_text=True)
    assert client.post("/moderate/logout").status_code == 400
    assert client.get("/moderate").status_code == 200
    response = client.post("/moderate/logout", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 302
    assert response.headers["Location"] == "/moderate/login"
    assert client.get("/moderate").status_code == 302


@pytest.mark.parametrize("path", ["/moderate", "/moderate/comments/1", *ADMIN_PAGES])
def test_pages_redirect_to_login_when_logged_out(client, path) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/moderate/login?next=")


def test_login_returns_to_the_page_asked_for_but_never_off_site(client, make_moderator) -> None:
    make_moderator("ann", "moderator", password="a long pass phrase")
    for target, expected in [("/moderate/comments/7", "/moderate/comments/7"),
                             ("//evil.example/x", "/moderate"),
                             ("https://evil.example/", "/moderate")]:
        token = csrf_from(client.get("/moderate/login").get_data(as_text=True))
        response = client.post("/moderate/login", data={
            "csrf_token": token, "name": "ann", "password": "a long pass phrase", "next": target})
        assert response.headers["Location"] == expected
        client.post("/moderate/logout", data={"csrf_token": csrf_from(
            client.get("/moderate").get_data(as_text=True))})


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_are_for_admins_only(client, make_moderator, login, path) -> None:
    make_moderator("mia", "moderator", password="a long pass phrase")
    login("mia", "a long pass phrase")
    response = client.get(path)
    assert response.status_code == 403
    assert "Admins only" in response.get_data(as_text=True)
    assert f'href="{path}"' not in client.get("/moderate").get_data(as_text=True)


def test_rules_page_lists_rules_and_settings_for_admins(client, make_moderator, login) -> None:
    make_moderator("ann", "admin", password="a long pass phrase")
    login("ann", "a long pass phrase")
    page = client.get("/moderate").get_data(as_text=True)
    created = client.post("/api/v1/moderation/rules", headers={"X-CSRFToken": csrf_from(page)},
                          json={"kind": "blocked_term", "value": "<b>casino</b>"})
    assert created.status_code == 201
    response = client.get("/moderate/rules")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "&lt;b&gt;casino&lt;/b&gt;" in html and "<b>casino" not in html
    assert 'name="hold_links"' in html and 'value="2"' in html


def test_the_session_works_for_the_api_with_the_pages_csrf_token(client, make_moderator, login,
                                                                  held_comment) -> None:
    make_moderator("ann", "moderator", password="a long pass phrase")
    login("ann", "a long pass phrase")
    comment_id = held_comment()
    token = csrf_from(client.get("/moderate").get_data(as_text=True))
    queue = client.get("/api/v1/moderation/queue?status=held").get_json()
    assert [c["id"] for c in queue["comments"]] == [comment_id]
    path = f"/api/v1/moderation/comments/{comment_id}/decision"
    body = {"action": "approve", "expected_status": "held"}
    assert client.post(path, json=body).status_code == 400  # no CSRF header
    response = client.post(path, json=body, headers={"X-CSRFToken": token})
    assert response.status_code == 200
    assert response.get_json()["status"] == "published"


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<style\b|\sstyle\s*=", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", re.IGNORECASE)


@pytest.mark.parametrize("path", ["/moderate/login", "/moderate", "/moderate/comments/1",
                                  *ADMIN_PAGES, "/moderate/rules?as=moderator"])
def test_pages_need_no_inline_script_style_or_handlers(client, make_moderator, login,
                                                        path) -> None:
    if path != "/moderate/login":
        role = "moderator" if path.endswith("as=moderator") else "admin"
        make_moderator("ann", role, password="a long pass phrase")
        login("ann", "a long pass phrase")
    response = client.get(path)
    html = response.get_data(as_text=True)
    assert response.status_code in (200, 403)
    assert response.mimetype == "text/html"
    assert not INLINE_SCRIPT.search(html)
    assert not INLINE_STYLE.search(html)
    assert not EVENT_HANDLER.search(html)
    assert not EXTERNAL.search(html), "pages must work offline: no external assets"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("name", ["moderate.css", "moderate.js", "admin.js"])
def test_static_assets_are_served_and_never_use_innerhtml(client, name) -> None:
    response = client.get(f"/static/{name}")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    response.close()
    assert "innerHTML" not in body and "insertAdjacentHTML" not in body
    assert "document.write" not in body and "eval(" not in body
