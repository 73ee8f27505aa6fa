"""The moderator's page in a real Chromium: login, live counts, keyboard decisions, bulk
spam, history, conflicts, the rules page, and hostile comments shown as inert text."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from service.db import Comment, CommentStatus

pytestmark = pytest.mark.browser

XSS = ('<script>window.__pwned = "script"</script>'
       '<img src=x onerror="window.__pwned = \'img\'">script kiddie')


def items(page):
    """The queue's comment rows, once the list has loaded."""
    expect(page.locator("#items")).to_have_attribute("aria-busy", "false")
    return page.locator("#items > li.item")


def status_of(db, comment_id: int) -> CommentStatus:
    db.expire_all()
    return db.get(Comment, comment_id).status


def test_login_shows_the_queue_and_counts_update_without_reload(logged_in, held_comment,
                                                                post_comment) -> None:
    first = held_comment(content="First held comment.")
    page = logged_in()
    expect(items(page)).to_have_count(1)
    expect(page.locator(f"#comment-{first} .content")).to_have_text("First held comment.")
    expect(page.locator("[data-count=held]")).to_have_text("1")
    expect(page.locator(".who-name")).to_have_text("ann")
    page.evaluate("window.__sameDocument = true")

    held_comment(content="Arrived while the page was open.")
    post_comment(content="Still pending.")
    expect(page.locator("[data-count=held]")).to_have_text("2", timeout=12_000)
    expect(page.locator("[data-count=pending]")).to_have_text("1")
    expect(page.locator("#newer")).to_be_visible()
    assert page.evaluate("window.__sameDocument") is True  # no reload happened


def test_login_with_a_wrong_password_stays_on_the_form(page, make_moderator) -> None:
    make_moderator("ann", "moderator", password="a long pass phrase")
    page.goto("/moderate")
    expect(page).to_have_url(re.compile(r"/moderate/login\?next=/moderate$"))
    page.fill("input[name=name]", "ann")
    page.fill("input[name=password]", "nope")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_have_text("Wrong name or password.")


def test_approve_by_keyboard_moves_to_the_next_comment(logged_in, held_comment, db) -> None:
    ids = [held_comment(content=f"Comment number {n}.") for n in range(3)]
    page = logged_in()
    expect(items(page)).to_have_count(3)
    expect(page.locator(f"#comment-{ids[0]}")).to_have_class("item current")

    page.keyboard.press("j")
    expect(page.locator(f"#comment-{ids[1]}")).to_have_class("item current")
    page.keyboard.press("a")
    expect(page.locator(f"#comment-{ids[1]}")).to_have_count(0)
    expect(page.locator(f"#comment-{ids[2]}")).to_have_class("item current")
    expect(page.locator("[data-count=held]")).to_have_text("2")
    expect(page.locator("[data-count=published]")).to_have_text("1")
    assert status_of(db, ids[1]) == CommentStatus.PUBLISHED

    page.keyboard.press("k")
    page.keyboard.press("r")
    expect(page.locator(f"#comment-{ids[0]}")).to_have_count(0)
    assert status_of(db, ids[0]) == CommentStatus.REJECTED
    assert status_of(db, ids[2]) == CommentStatus.HELD

    page.goto(f"/moderate/comments/{ids[1]}")
    history = page.locator(".history li")
    expect(history).to_have_count(1)
    expect(history.first).to_contain_text("approve by ann (was held)")


def test_bulk_mark_spam(logged_in, held_comment, db) -> None:
    ids = [held_comment(content=f"Buy cheap things number {n}.") for n in range(3)]
    page = logged_in()
    expect(items(page)).to_have_count(3)
    page.keyboard.press("x")  # the first, by keyboard
    page.locator(f"#comment-{ids[2]} .pick").check()  # the third, by mouse
    expect(page.locator("#bulk-count")).to_have_text("2 selected")
    page.click("[data-bulk=spam]")

    expect(items(page)).to_have_count(1)
    expect(page.locator(f"#comment-{ids[1]}")).to_be_visible()
    expect(page.locator("[data-count=spam]")).to_have_text("2")
    expect(page.locator("#flash")).to_have_text("Spam: 2 comments.")
    assert [status_of(db, i) for i in ids] == [
        CommentStatus.SPAM, CommentStatus.HELD, CommentStatus.SPAM]

    page.click("#check-all")
    expect(page.locator("#bulk-count")).to_have_text("1 selected")


def test_hostile_comment_shows_as_inert_text_with_matched_words_marked(logged_in, held_comment,
                                                                        db) -> None:
    comment_id = held_comment(content=XSS, author_name='<img src=x onerror="alert(1)">',
                              author_url="https://example.org/?q=<b>x</b>")
    comment = db.get(Comment, comment_id)
    comment.reasons = ["watched term 'script'", "'kiddie' +1.2", "<i>reason</i>"]
    comment.spam_score = 0.5
    db.commit()
    page = logged_in()
    page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
    row = page.locator(f"#comment-{comment_id}")
    expect(row).to_be_visible()

    expect(row.locator(".content")).to_have_text(XSS)
    expect(row.locator(".author")).to_have_text('<img src=x onerror="alert(1)">')
    expect(row.locator(".reasons li").nth(2)).to_have_text("<i>reason</i>")
    assert row.locator("img, script, b, i").count() == 0
    marks = row.locator(".content mark")
    expect(marks).to_have_text(["script"] * 4 + ["kiddie"])  # <script>, "script", </script>, text
    page.keyboard.press("o")  # the side panel renders the same data
    expect(page.locator("#detail .content")).to_have_text(XSS)
    assert page.locator("#detail img, #detail script").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_a_conflict_shows_a_message_and_refreshes(logged_in, held_comment, db) -> None:
    first, second = held_comment(), held_comment()
    page = logged_in()
    expect(items(page)).to_have_count(2)
    db.get(Comment, first).status = CommentStatus.SPAM  # another moderator was faster
    db.commit()
    page.keyboard.press("a")
    expect(page.locator("#flash")).to_contain_text("is spam, not held")
    expect(items(page)).to_have_count(1)
    expect(page.locator(f"#comment-{second}")).to_be_visible()
    assert status_of(db, first) == CommentStatus.SPAM


def test_help_overlay_and_filters(logged_in, held_comment) -> None:
    held_comment(content="About the chip export rules.")
    held_comment(content="Nothing to see.")
    page = logged_in()
    expect(items(page)).to_have_count(2)
    page.keyboard.press("?")
    expect(page.locator("#help")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#help")).to_be_hidden()

    page.keyboard.press("/")
    page.keyboard.type("chip")
    page.keyboard.press("Enter")
    expect(items(page)).to_have_count(1)
    expect(page.locator("#items mark")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/moderate\?status=held&q=chip$"))


def test_admin_adds_and_deletes_a_rule(logged_in, db) -> None:
    from service.db import Rule

    page = logged_in(role="admin")
    page.click("nav.topnav >> text=Rules")
    page.select_option("select[name=kind]", "watched_term")
    page.fill("#rule-form input[name=value]", "bitcoin")
    page.click("#rule-form button[type=submit]")
    expect(page.locator("#rules-table tbody tr")).to_have_count(1)
    expect(page.locator("#rules-table")).to_contain_text("bitcoin")

    page.fill("#rule-form input[name=value]", "not a domain")
    page.select_option("select[name=kind]", "blocked_url_domain")
    page.click("#rule-form button[type=submit]")
    expect(page.locator("#flash")).to_contain_text("value: Not a domain name.")

    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#rules-table button[type=submit]")
    expect(page.locator("#rules-table")).to_have_count(0)
    db.expire_all()
    assert db.query(Rule).count() == 0


def test_logout_ends_the_session(logged_in) -> None:
    page = logged_in()
    page.click("form.logout button")
    expect(page).to_have_url(re.compile(r"/moderate/login$"))
    page.goto("/moderate")
    expect(page).to_have_url(re.compile(r"/moderate/login\?next=/moderate$"))
