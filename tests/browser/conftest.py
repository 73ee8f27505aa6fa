"""Browser fixtures: the app served over real HTTP from a thread, and Debian's Chromium driven
by Playwright (never `playwright install`; `make test` installs the chromium package)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect
from werkzeug.serving import make_server

# Screenshots a test run leaves for people to look at (git-ignored).
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
# Generous enough for a loaded CI machine, short enough that a broken page fails fast.
TIMEOUT_MS = 10_000


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The app on a free local port, threaded, over real HTTP; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


@pytest.fixture
def page(browser: Any, live_server: str) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page; JS errors fail the test."""
    context = browser.new_context(base_url=live_server)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def screenshot() -> Callable[[Any, str], Path]:
    """Save a screenshot of a page (whole) or of a locator's element as
    test-output/screenshots/<name>.png; returns the path."""

    def _take(target: Any, name: str, full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        if hasattr(target, "goto"):  # a Page
            target.screenshot(path=str(path), full_page=full_page)
        else:
            target.screenshot(path=str(path))
        return path

    return _take


@pytest.fixture
def logged_in(page: Any, make_moderator: Callable[..., str]) -> Callable[..., Any]:
    """Create an account and log in through the form; returns the page on the queue."""

    def _login(name: str = "ann", role: str = "moderator",
               password: str = "a long pass phrase") -> Any:
        make_moderator(name, role, password=password)
        page.goto("/moderate/login")
        page.fill("input[name=name]", name)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        # Polls the URL (the queue's script then adds its filters as a query string):
        # wait_for_url once missed the redirect under load, the queue loaded, the wait
        # timed out.
        expect(page).to_have_url(re.compile(r"/moderate(\?.*)?$"), timeout=10_000)
        return page

    return _login


