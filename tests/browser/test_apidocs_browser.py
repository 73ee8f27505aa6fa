"""The API reference page (/api/docs) in a real Chromium: every operation of the OpenAPI
document is rendered with its summary, parameters and responses, nothing as
"[object HTMLElement]"."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

METHODS = ("get", "post", "put", "patch", "delete")


def test_the_docs_page_renders_every_operation_of_the_spec(
        page: Any, client: FlaskClient, screenshot: Callable[..., Any]) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    expected = {(method.upper(), path): operation
                for path, item in spec["paths"].items()
                for method, operation in item.items() if method in METHODS}
    assert len(expected) > 20  # the whole API, not a stub

    page.goto("/api/docs")
    expect(page.locator("#doc-title")).to_have_text(spec["info"]["title"])
    sections = page.locator("#doc-main section.operation")
    expect(sections).to_have_count(len(expected))
    rendered = page.evaluate("""() => [...document.querySelectorAll('#doc-main section.operation')]
        .map((section) => ({
          method: section.querySelector('h3 .method').textContent,
          path: section.querySelector('h3 code').textContent,
          summary: (section.querySelector('.summary') || {}).textContent || '',
          parameters: [...section.querySelectorAll('table.fields td:first-child code')]
            .map((code) => code.textContent),
          responses: [...section.querySelectorAll('.response strong')]
            .map((code) => code.textContent),
          text: section.textContent,
        }))""")
    seen = {(op["method"], op["path"]): op for op in rendered}
    assert set(seen) == set(expected)
    for key, operation in expected.items():
        shown = seen[key]
        assert "[object" not in shown["text"], (key, shown["text"][:200])
        assert shown["summary"] == re.sub(r"``?", "", operation.get("summary", "")), key
        assert sorted(shown["responses"]) == sorted(operation["responses"]), key
        for parameter in operation.get("parameters", []):
            assert parameter["name"] in shown["parameters"], (key, parameter["name"])
    # The submission's body fields are listed, from its schema.
    submit = seen[("POST", "/api/v1/comments")]
    for field in ("post", "author_name", "author_email", "author_url", "content"):
        assert field in submit["text"]
    # The navigation links every operation.
    expect(page.locator("#doc-nav li a")).to_have_count(len(expected))
    assert "[object" not in page.locator("body").inner_text()
    assert "null" not in page.locator("#doc-main > h2, #doc-main > p").all_inner_texts()
    assert "`" not in submit["summary"]  # code spans rendered, not shown as backticks
    default = page.locator("section.operation").first.locator(".response", has_text="default")
    # A $ref'd response, resolved.
    expect(default).to_contain_text("An error (RFC 9457 problem details).")
    screenshot(page, "api-docs", full_page=False)
    screenshot(sections.filter(has_text="/api/v1/comments").first, "api-docs-submit-comment")


def test_the_landing_page_leads_to_the_demo_and_the_docs(
        page: Any, screenshot: Callable[..., Any]) -> None:
    page.goto("/")
    expect(page.locator("h1")).to_have_text("Comment moderation service")
    screenshot(page, "landing-page")
    page.get_by_role("link", name="API reference").click()
    expect(page.locator("#doc-main section.operation").first).to_be_visible()
    page.go_back()
    page.get_by_role("link", name="Demo blog post").click()
    expect(page.locator(".cw-form-title")).to_have_text("💬 Leave a Comment")
