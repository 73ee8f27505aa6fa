"""The admins' pages in a real Chromium: webhooks, sites, models, accuracy and the audit log,
each driven through its forms (session + CSRF, audited by the API)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from service import learning
from service.db import AdminEvent, Comment, CommentStatus, Site, Webhook, WebhookDelivery
from service.db.model_store import ModelStore
from worker import jobs

pytestmark = pytest.mark.browser


def audited(db) -> list[str]:
    db.expire_all()
    return [e.action for e in db.scalars(select(AdminEvent).order_by(AdminEvent.id))]


def test_webhooks_page_adds_shows_the_secret_once_lists_deliveries_and_deletes(
        logged_in, db, held_comment, loopback_webhooks, screenshot) -> None:
    page = logged_in(role="admin")
    page.click("nav.topnav >> text=Webhooks")
    expect(page).to_have_url(re.compile(r"/moderate/webhooks$"))
    expect(page.locator("main")).to_contain_text("No webhooks yet.")
    page.fill("#webhook-form input[name=url]", "http://127.0.0.1:9/hooks/comments")
    page.uncheck("#webhook-form input[value='comment.held']")
    page.click("#webhook-form button[type=submit]")
    expect(page.locator("#reveal")).to_be_visible()
    secret = page.locator("#reveal .reveal-value").inner_text()
    hook = db.scalars(select(Webhook)).one()
    assert secret == hook.secret and len(secret) >= 32
    assert "comment.held" not in hook.events and "comment.published" in hook.events
    page.click("#reveal-done")
    card = page.locator(f"[data-webhook-id='{hook.id}']")
    expect(card).to_contain_text("http://127.0.0.1:9/hooks/comments")
    expect(page.locator("main")).not_to_contain_text(secret)

    comment_id = held_comment()
    db.add(WebhookDelivery(webhook_id=hook.id, event="comment.published",
                           comment_id=comment_id, payload={}, attempts=2, status_code=500,
                           error="HTTPError: 500 Internal Server Error"))
    db.commit()
    page.reload()
    expect(card.locator(".deliveries tbody tr")).to_have_count(1)
    expect(card.locator(".deliveries")).to_contain_text("500")
    screenshot(page, "admin-webhooks")

    page.on("dialog", lambda dialog: dialog.accept())
    card.locator("button", has_text="Delete").click()
    expect(page.locator("main")).to_contain_text("No webhooks yet.")
    assert audited(db) == ["webhook.create", "webhook.delete"]


def test_sites_page_adds_a_site_with_its_key_once_and_revokes_it(logged_in, db,
                                                                 screenshot) -> None:
    page = logged_in(role="admin")
    page.goto("/moderate/sites")
    page.fill("#site-form input[name=url]", "not a url")
    page.click("#site-form button[type=submit]")  # the browser's own check stops this one
    assert db.scalar(select(Site)) is None
    page.fill("#site-form input[name=url]", "https://blog.example")
    page.click("#site-form button[type=submit]")
    expect(page.locator("#reveal")).to_be_visible()
    key = page.locator("#reveal .reveal-value").inner_text()
    assert re.fullmatch(r"[0-9a-f]{12}", key)
    page.click("#reveal-done")
    row = page.locator("#sites-table tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("blog.example")
    expect(row).to_contain_text("active")
    screenshot(page, "admin-sites")
    page.on("dialog", lambda dialog: dialog.accept())
    row.locator("button", has_text="Revoke").click()
    expect(row).to_contain_text("revoked")
    db.expire_all()
    assert db.scalars(select(Site)).one().active is False
    assert audited(db) == ["site.add", "site.revoke"]

    page.click("nav.topnav >> text=Audit log")
    rows = page.locator("#audit-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("site.revoke")
    expect(rows.first).to_contain_text("ann")
    expect(rows.nth(1)).to_contain_text("blog.example")
    screenshot(page, "admin-audit")


def test_models_page_promotes_compares_rescores_and_rolls_back(app, logged_in, db, model_dir,
                                                               tmp_path, held_comment,
                                                               run_worker, screenshot) -> None:
    store = ModelStore(tmp_path / "store")  # the database's models, a cache of the test's own
    app.config["MODEL_DIR"] = str(tmp_path / "store")
    jobs.configure(dict(app.config))  # the worker in this process reads the same store
    first = store.active_version(db)
    pipeline, metadata = store.load(db)
    second = store.save(db, pipeline, {k: v for k, v in metadata.items()
                                   if k not in ("version", "sha256", "created_at")})
    learning.sync_registry(db, store)
    learning.register(db, store, second, state="refused",
                      gate="MCC 0.412 vs active 0.620 (tolerance 0.01): worse")
    db.commit()
    page = logged_in(role="admin")
    page.goto("/moderate/models")
    table = page.locator("#models-table tbody tr")
    expect(table).to_have_count(2)
    expect(page.locator(f"tr[data-version='{first}']")).to_contain_text("active")
    expect(page.locator(f"tr[data-version='{second}']")).to_contain_text("refused")

    page.check(f"input[name=compare][value='{first}']")
    page.check(f"input[name=compare][value='{second}']")
    page.click("#compare-form button[type=submit]:has-text('Compare')")
    expect(page.locator("#comparison")).to_contain_text("genuine comments filed as spam")
    expect(page.locator("#comparison thead th")).to_have_count(3)
    screenshot(page, "admin-models")

    messages: list[str] = []

    def accept(dialog) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.locator(f"tr[data-version='{second}'] button", has_text="Promote").click()
    expect(page.locator(f"tr[data-version='{second}']")).to_contain_text("active")
    assert "The retrain gate refused" in messages[-1] and "Promote it anyway?" in messages[-1]
    assert store.active_version(db) == second

    comment_id = held_comment()
    db.get(Comment, comment_id).model_version = "old-model"
    db.commit()
    page.click("#rescore-form button[type=submit]")
    expect(page.locator("#flash")).to_contain_text("Rescore queued")
    run_worker()
    db.expire_all()
    assert db.get(Comment, comment_id).model_version == second

    page.click("#rollback-form button[type=submit]")
    expect(page.locator(f"tr[data-version='{first}']")).to_contain_text("active")
    assert store.active_version(db) == first
    assert audited(db) == ["model.promote", "model.rescore", "model.rollback"]


def test_accuracy_page_shows_false_positives_and_missed_spam(logged_in, db, post_comment,
                                                             run_worker, make_moderator,
                                                             client, screenshot) -> None:
    spam = post_comment(content="CHEAP VIAGRA online no prescription!!! order now "
                                "http://pills-shop.xyz/buy").get_json()["id"]
    fine = post_comment(content="Thanks for the write-up on HBM supply.").get_json()["id"]
    run_worker()
    db.expire_all()
    assert db.get(Comment, spam).status == CommentStatus.SPAM
    assert db.get(Comment, fine).status == CommentStatus.PUBLISHED
    token = make_moderator("bob", "moderator")
    for comment_id, action in ((spam, "not_spam"), (fine, "spam")):
        answer = client.post(f"/api/v1/moderation/comments/{comment_id}/decision",
                             headers={"Authorization": f"Bearer {token}"},
                             json={"action": action})
        assert answer.status_code == 200
    page = logged_in(role="admin")
    page.click("nav.topnav >> text=Accuracy")
    summary = page.locator("#summary .figure")
    expect(summary.nth(0).locator("strong")).to_have_text("1")
    expect(summary.nth(0)).to_contain_text("false positives")
    expect(summary.nth(1).locator("strong")).to_have_text("1")
    expect(summary.nth(1)).to_contain_text("missed spam")
    expect(page.locator("#stats-table tbody tr")).to_have_count(1)
    screenshot(page, "admin-stats")


def test_rules_page_screenshot(logged_in, db, screenshot) -> None:
    from service.db import Rule, RuleKind

    db.add_all([Rule(kind=RuleKind.BLOCKED_TERM, value="casino", created_by="ann"),
                Rule(kind=RuleKind.WATCHED_TERM, value="crypto", note="often spam here")])
    db.commit()
    page = logged_in(role="admin")
    page.goto("/moderate/rules")
    expect(page.locator("#rules-table tbody tr")).to_have_count(2)
    screenshot(page, "admin-rules")
