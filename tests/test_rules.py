"""Rules: matching as a table of cases, the worker applying them, the admin API auditing them."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from service.blog_signals import foreign_script
from service.db import AdminEvent, Comment, CommentStatus, DecidedBy, Label, Rule, RuleKind
from service.rules import Hit, RuleSet, outcome, validate_rule
from tests.test_moderation_api import bearer

GENUINE = "I think the seven-month lag estimate is too optimistic; Qwen benchmarks disagree."


def _comment(content: str = GENUINE, **fields: object) -> Comment:
    return Comment(post=str(fields.pop("post", "p")), author_name=str(fields.pop("author_name",
                   "Reader")), content=content, **fields)


@pytest.mark.parametrize(
    ("kind", "value", "comment", "effect"),
    [
        # Terms: word-boundary safe, Unicode-aware, multi-word, case-insensitive.
        ("blocked_term", "press", {"content": "I moved my blog to WordPress last year."}, None),
        ("blocked_term", "press", {"content": "Stop the press!"}, "spam"),
        ("blocked_term", "press", {"content": "press-release spam"}, "spam"),
        ("blocked_term", "casino", {"content": "Best CASINO bonus"}, "spam"),
        ("blocked_term", "casino", {"content": "casinos nearby"}, None),
        ("blocked_term", "cheap pills", {"content": "get cheap\n  pills here"}, "spam"),
        ("blocked_term", "cheap pills", {"content": "cheap vitamins and pills"}, None),
        ("blocked_term", "viagra", {"content": "ＶＩＡＧＲＡ cheap"}, "spam"),
        ("blocked_term", "straße", {"content": "Die STRASSE ist lang"}, "spam"),
        ("blocked_term", "café", {"content": "Meet at the CAFÉ"}, "spam"),
        ("blocked_term", "café", {"content": "cafés are nice"}, None),
        ("blocked_term", "博彩", {"content": "最好的博彩网站"}, "spam"),
        ("blocked_term", "казино", {"content": "Лучшее КАЗИНО онлайн"}, "spam"),
        ("blocked_term", "seo", {"author_name": "Best SEO Services"}, "spam"),
        ("watched_term", "bitcoin", {"content": "Is Bitcoin mining affected?"}, "held"),
        ("watched_term", "bitcoin", {"content": "bitcoins are not mentioned"}, None),
        # E-mails and their domains.
        ("blocked_email", "spam@bad.example", {"author_email": "SPAM@bad.example"}, "spam"),
        ("blocked_email", "spam@bad.example", {"author_email": "ham@bad.example"}, None),
        ("blocked_email_domain", "bad.example", {"author_email": "x@bad.example"}, "spam"),
        ("blocked_email_domain", "bad.example", {"author_email": "x@mail.bad.example"}, "spam"),
        ("blocked_email_domain", "bad.example", {"author_email": "x@notbad.example"}, None),
        # URL domains, in text or in the author's URL, subdomains included.
        ("blocked_url_domain", "cheap-pills.example",
         {"content": "see https://www.cheap-pills.example/buy"}, "spam"),
        ("blocked_url_domain", "cheap-pills.example",
         {"author_url": "http://shop.cheap-pills.example"}, "spam"),
        ("blocked_url_domain", "cheap-pills.example",
         {"content": "see https://not-cheap-pills.example/"}, None),
        # IPs and ranges, v4 and v6.
        ("blocked_ip", "203.0.113.0/24", {"ip": "203.0.113.77"}, "spam"),
        ("blocked_ip", "203.0.113.0/24", {"ip": "203.0.114.1"}, None),
        ("blocked_ip", "2001:db8::/32", {"ip": "2001:db8::1"}, "spam"),
        ("blocked_ip", "198.51.100.7", {"ip": "198.51.100.7"}, "spam"),
        ("blocked_ip", "198.51.100.7", {"ip": "not-an-ip"}, None),
    ],
)
def test_rule_matching(kind: str, value: str, comment: dict, effect: str | None) -> None:
    rule = Rule(kind=RuleKind(kind), value=validate_rule(RuleKind(kind), value))
    hits = RuleSet.from_rules([rule], {"hold_links": 0}).check(_comment(**comment))
    assert (hits[0].effect if hits else None) == effect
    if effect:
        assert value.split("/")[0].lower() in hits[0].reason.lower() or kind == "blocked_ip"


@pytest.mark.parametrize(
    ("content", "hold_links", "held"),
    [("one link https://a.org/x", 2, False),
     ("two https://a.org/x and www.b.org/y", 2, True),
     ("three http://a.org http://b.org http://c.org", 3, True),
     ("three http://a.org http://b.org http://c.org", 0, False)],
)
def test_link_count_holds(content: str, hold_links: int, held: bool) -> None:
    hits = RuleSet.from_rules([], {"hold_links": hold_links}).check(_comment(content))
    assert bool(hits) == held


@pytest.mark.parametrize(
    ("kind", "value"),
    [("blocked_ip", "999.1.1.1"), ("blocked_email", "no-at-sign"),
     ("blocked_url_domain", "not a domain"), ("blocked_term", "   ")],
)
def test_unusable_rules_are_refused(client, make_moderator, kind, value) -> None:
    token = make_moderator(role="admin")
    response = client.post("/api/v1/moderation/rules", headers=bearer(token),
                           json={"kind": kind, "value": value})
    assert response.status_code == 422
    assert "value" in response.get_json()["errors"]


def _add_rule(client, token: str, kind: str, value: str) -> dict:
    response = client.post("/api/v1/moderation/rules", headers=bearer(token),
                           json={"kind": kind, "value": value})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_worker_files_blocked_comments_as_spam_with_the_rule_as_reason(
    client, db, make_moderator, post_comment, run_worker
) -> None:
    token = make_moderator(role="admin")
    _add_rule(client, token, "blocked_url_domain", "cheap-pills.example")
    comment_id = post_comment(content=GENUINE,
                              author_url="https://www.cheap-pills.example").get_json()["id"]
    run_worker()
    row = db.get(Comment, comment_id)
    assert (row.status, row.decided_by) == (CommentStatus.SPAM, DecidedBy.RULE)
    assert row.reasons[0] == "blocked domain cheap-pills.example"
    assert row.spam_score is not None  # the model's opinion is kept for the record


def test_watched_terms_and_premoderated_posts_hold(client, db, make_moderator, post_comment,
                                                   run_worker) -> None:
    token = make_moderator(role="admin")
    _add_rule(client, token, "watched_term", "export controls")
    watched = post_comment(content="What about EXPORT   controls on HBM?").get_json()["id"]
    assert client.put("/api/v1/moderation/posts/quiet-post", headers=bearer(token),
                      json={"premoderated": True}).status_code == 200
    premoderated = post_comment(post="quiet-post", content=GENUINE).get_json()["id"]
    run_worker()
    assert db.get(Comment, watched).status == CommentStatus.HELD
    assert db.get(Comment, watched).reasons[0] == "watched term 'export controls'"
    assert db.get(Comment, premoderated).reasons[0] == "post is pre-moderated"


def test_closed_posts_refuse_new_comments(client, db, make_moderator, post_comment) -> None:
    token = make_moderator(role="admin")
    client.put("/api/v1/moderation/posts/old-news", headers=bearer(token), json={"closed": True})
    response = post_comment(post="old-news")
    assert response.status_code == 403
    assert response.get_json()["detail"] == "Comments are closed on this post."
    assert db.scalar(select(Comment).limit(1)) is None
    assert post_comment(post="new-news").status_code == 202
    # The listing says so, for a widget to show no form before the reader types.
    assert client.get("/api/v1/posts/old-news/comments").get_json()["closed"] is True
    assert client.get("/api/v1/posts/new-news/comments").get_json()["closed"] is False


def test_trusted_commenters_skip_the_hold_band(app, client, db, make_moderator, post_comment,
                                               run_worker) -> None:
    from worker import jobs
    # Every model score falls in the hold band.
    jobs.configure({**app.config, "SPAM_THRESHOLD_LOW": 0.0, "SPAM_THRESHOLD_HIGH": 1.0})
    app.config["FLOOD_SECONDS"] = 0  # anna's follow-up comes at once; flood control: test_guard
    token = make_moderator()
    accepted = post_comment(author_email="anna@example.org", content=GENUINE).get_json()
    first, anna = accepted["id"], accepted["reader_token"]  # the token anna's widget keeps
    stranger = post_comment(author_email="bob@example.org", content=GENUINE + " Yes.")
    run_worker()
    assert db.get(Comment, first).status == CommentStatus.HELD
    client.post(f"/api/v1/moderation/comments/{first}/decision", headers=bearer(token),
                json={"action": "approve"})
    second = post_comment(author_email="anna@example.org", reader_token=anna,
                          content="Following up on my earlier point.").get_json()["id"]
    third = post_comment(author_email="bob@example.org", content="Me again.").get_json()["id"]
    run_worker()
    db.expire_all()
    assert db.get(Comment, second).status == CommentStatus.PUBLISHED
    assert db.get(Comment, second).reasons[0] == "trusted commenter (approved before)"
    assert db.get(Comment, third).status == CommentStatus.HELD
    assert db.get(Comment, stranger.get_json()["id"]).label is None
    assert db.get(Comment, first).label == Label.HAM


def test_rule_changes_are_audited_and_listed(client, db, make_moderator) -> None:
    token = make_moderator(name="root", role="admin")
    rule = _add_rule(client, token, "blocked_term", "  Cheap   Pills ")
    assert rule["value"] == "Cheap Pills" and rule["created_by"] == "root"
    duplicate = client.post("/api/v1/moderation/rules", headers=bearer(token),
                            json={"kind": "blocked_term", "value": "Cheap Pills"})
    assert duplicate.status_code == 409
    listing = client.get("/api/v1/moderation/rules", headers=bearer(token)).get_json()
    assert [r["value"] for r in listing["rules"]] == ["Cheap Pills"]
    assert listing["settings"] == {"hold_links": 2, "trusted_after": 1,
                                   "trusted_spam_ceiling": 0.99, "hold_foreign_script": False}
    settings = client.put("/api/v1/moderation/settings", headers=bearer(token),
                          json={"hold_links": 4})
    assert settings.get_json()["hold_links"] == 4
    switched = client.put("/api/v1/moderation/settings", headers=bearer(token),
                          json={"hold_foreign_script": True})
    assert switched.get_json()["hold_foreign_script"] is True
    assert RuleSet.load(db).hold_foreign_script is True
    assert client.delete(f"/api/v1/moderation/rules/{rule['id']}",
                         headers=bearer(token)).status_code == 204
    assert client.delete(f"/api/v1/moderation/rules/{rule['id']}",
                         headers=bearer(token)).status_code == 404
    events = db.scalars(select(AdminEvent).order_by(AdminEvent.id)).all()
    assert [(e.actor, e.action) for e in events] == [
        ("root", "rule.add"), ("root", "settings.update"), ("root", "settings.update"),
        ("root", "rule.delete")]
    assert events[1].details == {"before": {"hold_links": 2}, "after": {"hold_links": 4}}


@pytest.mark.parametrize(("band", "score", "effects", "expected"), [
    ("published", 0.1, ["doubt"], ("held", "rule")),
    ("held", 0.5, ["doubt"], ("held", "model")),
    ("spam", 0.95, ["doubt"], ("spam", "model")),   # a doubt never saves spam from its band
    ("spam", 0.95, ["held"], ("held", "rule")),     # a hold does: a human asked to look
    ("published", 0.1, [], ("published", "model")),
])
def test_a_doubt_holds_only_what_would_be_published(band, score, effects, expected) -> None:
    hits = [Hit(effect, "a reason") for effect in effects]
    assert outcome(band, score, hits, 0.99)[:2] == expected


@pytest.mark.parametrize(("content", "blog_lang", "script"), [
    ("这篇文章写得很好，谢谢作者的分享。", "en_US", "Chinese characters"),
    ("这篇文章写得很好，谢谢作者的分享。", "zh_CN", None),
    ("この記事はとても参考になりました。ありがとう。", "ja", None),
    ("この記事はとても参考になりました。ありがとう。", "de_DE", "Japanese kana"),
    ("Отличная статья, спасибо автору за подробный разбор.", "en_US", "Cyrillic script"),
    ("Отличная статья, спасибо автору за подробный разбор.", "ru_RU", None),
    ("Отличная статья, спасибо автору за подробный разбор.", "en, ru", None),
    # Cyrillic look-alikes inside English words are a disguise, not a language.
    ("Вest сrурtо signals, join our group for daily profits now", "en_US", None),
    ("Great article! Спасибо", "en_US", None),         # mostly Latin
    ("谢谢", "en_US", None),                            # too short to tell
    ("这篇文章写得很好，谢谢作者的分享。", "xx_YY", None),  # a language we do not know
    ("这篇文章写得很好，谢谢作者的分享。", "", None),       # no language sent
    ("Ein sehr guter Artikel, vielen Dank für die Mühe.", "en_US", None),  # Latin script
])
def test_the_script_a_comment_is_written_in(content, blog_lang, script) -> None:
    assert foreign_script(content, blog_lang) == script
