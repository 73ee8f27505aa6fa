"""Moderation API: auth, the queue, decisions and their audit rows, conflicts, bulk work."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from service.db import Comment, CommentEvent, CommentStatus, DecidedBy, Label
from worker import jobs

THREE_LINKS = ("Sources: https://arxiv.org/abs/2412.19437 and https://hai.stanford.edu/ai-index "
               "and https://www.reuters.com/technology/ for the chip numbers.")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/moderation/queue"),
        ("get", "/api/v1/moderation/comments/1"),
        ("post", "/api/v1/moderation/comments/1/decision"),
        ("post", "/api/v1/moderation/decisions"),
        ("get", "/api/v1/moderation/rules"),
        ("post", "/api/v1/moderation/rules"),
        ("delete", "/api/v1/moderation/rules/1"),
        ("put", "/api/v1/moderation/settings"),
        ("put", "/api/v1/moderation/posts/p"),
    ],
)
@pytest.mark.parametrize("headers", [{}, bearer("mod_wrong"), {"Authorization": "Basic eDp5"}])
def test_protected_routes_refuse_missing_or_wrong_credentials(client, method, path,
                                                              headers) -> None:
    response = getattr(client, method)(path, headers=headers, json={"action": "approve"})
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/v1/moderation/rules", None),
        ("post", "/api/v1/moderation/rules", {"kind": "blocked_term", "value": "casino"}),
        ("delete", "/api/v1/moderation/rules/1", None),
        ("put", "/api/v1/moderation/settings", {"hold_links": 5}),
        ("put", "/api/v1/moderation/posts/p", {"closed": True}),
    ],
)
def test_admin_routes_refuse_moderators_and_change_nothing(client, db, make_moderator, method,
                                                           path, body) -> None:
    token = make_moderator(role="moderator")
    response = getattr(client, method)(path, headers=bearer(token), json=body)
    assert response.status_code == 403
    from service.db import PostSettings, Rule, Setting
    assert db.scalar(select(func.count()).select_from(Rule)) == 0
    assert db.scalar(select(func.count()).select_from(Setting)) == 0
    assert db.scalar(select(func.count()).select_from(PostSettings)) == 0


def test_a_disabled_account_is_refused(client, db, make_moderator) -> None:
    from service.db import Moderator
    token = make_moderator(name="gone")
    db.scalar(select(Moderator).where(Moderator.name == "gone")).active = False
    db.commit()
    assert client.get("/api/v1/moderation/queue", headers=bearer(token)).status_code == 401


def test_decision_without_token_changes_nothing(client, db, held_comment) -> None:
    comment_id = held_comment()
    response = client.post(f"/api/v1/moderation/comments/{comment_id}/decision",
                           json={"action": "approve"})
    assert response.status_code == 401
    assert db.get(Comment, comment_id).status == CommentStatus.HELD
    assert db.scalar(select(func.count()).select_from(CommentEvent)) == 0


def test_comment_with_three_links_is_held_and_approving_publishes_it(
    client, db, make_moderator, post_comment, run_worker
) -> None:
    token = make_moderator(name="mia")
    comment_id = post_comment(content=THREE_LINKS).get_json()["id"]
    run_worker()
    queue = client.get("/api/v1/moderation/queue", headers=bearer(token)).get_json()
    assert [c["id"] for c in queue["comments"]] == [comment_id]
    held = queue["comments"][0]
    assert held["status"] == "held" and held["decided_by"] == "rule"
    assert held["reasons"][0] == "3 links (hold at 2)"
    assert queue["counts"]["held"] == 1 and queue["counts"]["published"] == 0

    response = client.post(f"/api/v1/moderation/comments/{comment_id}/decision",
                           headers=bearer(token),
                           json={"action": "approve", "note": "real sources",
                                 "expected_status": "held"})
    assert response.status_code == 200
    detail = response.get_json()
    assert detail["status"] == "published" and detail["label"] == "ham"
    assert [(h["actor"], h["action"], h["from_status"], h["to_status"])
            for h in detail["history"]] == [
        ("rule", "score", "pending", "held"), ("mia", "approve", "held", "published")]
    assert detail["history"][1]["note"] == "real sources"
    listing = client.get("/api/v1/posts/china-closing-ai-gap/comments").get_json()
    assert [c["id"] for c in listing["comments"]] == [comment_id]


@pytest.mark.parametrize(
    ("action", "status", "label"),
    [("approve", "published", "ham"), ("reject", "rejected", "ham"),
     ("spam", "spam", "spam"), ("not_spam", "published", "ham")],
)
@pytest.mark.parametrize("start", ["held", "pending", "spam", "published"])
def test_every_action_from_every_status_sets_status_label_and_audit(
    client, db, make_moderator, post_comment, action, status, label, start
) -> None:
    token = make_moderator(name="mia")
    comment_id = post_comment().get_json()["id"]
    db.get(Comment, comment_id).status = CommentStatus(start)
    db.commit()
    response = client.post(f"/api/v1/moderation/comments/{comment_id}/decision",
                           headers=bearer(token), json={"action": action})
    assert response.status_code == 200
    db.expire_all()
    row = db.get(Comment, comment_id)
    assert (row.status, row.label, row.decided_by) == (status, label, DecidedBy.MODERATOR)
    event = db.scalar(select(CommentEvent).where(CommentEvent.comment_id == comment_id))
    assert (event.actor, event.action, event.from_status, event.to_status) == (
        "mia", action, start, status)
    assert event.moderator_id is not None


def test_stale_expected_status_gets_409_and_changes_nothing(client, db, make_moderator,
                                                            held_comment) -> None:
    token = make_moderator()
    comment_id = held_comment()
    first = client.post(f"/api/v1/moderation/comments/{comment_id}/decision",
                        headers=bearer(token), json={"action": "spam", "expected_status": "held"})
    assert first.status_code == 200
    second = client.post(f"/api/v1/moderation/comments/{comment_id}/decision",
                         headers=bearer(token),
                         json={"action": "approve", "expected_status": "held"})
    assert second.status_code == 409
    assert second.mimetype == "application/problem+json"
    assert "spam" in second.get_json()["detail"]
    db.expire_all()
    assert db.get(Comment, comment_id).status == CommentStatus.SPAM
    assert db.scalar(select(func.count()).select_from(CommentEvent)) == 1


def test_the_scorer_never_overrides_a_moderator(client, db, make_moderator,
                                                post_comment) -> None:
    token = make_moderator()
    comment_id = post_comment(content="Buy cheap viagra http://pills.example").get_json()["id"]
    client.post(f"/api/v1/moderation/comments/{comment_id}/decision", headers=bearer(token),
                json={"action": "not_spam", "expected_status": "pending"})
    assert jobs.score_comment(comment_id) is None
    db.expire_all()
    row = db.get(Comment, comment_id)
    assert row.status == CommentStatus.PUBLISHED and row.label == Label.HAM


@pytest.mark.parametrize(
    ("body", "field"),
    [({"action": "delete"}, "action"), ({}, "action"),
     ({"action": "approve", "expected_status": "gone"}, "expected_status"),
     ({"action": "approve", "extra": 1}, "extra")],
)
def test_invalid_decisions_get_422(client, make_moderator, held_comment, body, field) -> None:
    token = make_moderator()
    comment_id = held_comment()
    response = client.post(f"/api/v1/moderation/comments/{comment_id}/decision",
                           headers=bearer(token), json=body)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_decision_on_unknown_comment_is_404(client, make_moderator) -> None:
    response = client.post("/api/v1/moderation/comments/999999/decision",
                           headers=bearer(make_moderator()), json={"action": "approve"})
    assert response.status_code == 404


def test_bulk_decision_audits_each_comment_and_reports_failures(
    client, db, make_moderator, held_comment
) -> None:
    token = make_moderator(name="mia")
    ids = [held_comment(content=f"Held comment {i}") for i in range(3)]
    db.get(Comment, ids[1]).status = CommentStatus.PUBLISHED  # someone else got there
    db.commit()
    response = client.post("/api/v1/moderation/decisions", headers=bearer(token),
                           json={"ids": [*ids, 424242], "action": "spam",
                                 "expected_status": "held"})
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [(r["id"], r["ok"]) for r in results] == [
        (ids[0], True), (ids[1], False), (ids[2], True), (424242, False)]
    db.expire_all()
    assert [db.get(Comment, i).status for i in ids] == ["spam", "published", "spam"]
    events = db.scalars(select(CommentEvent).order_by(CommentEvent.id)).all()
    assert [(e.comment_id, e.action) for e in events] == [(ids[0], "spam"), (ids[2], "spam")]


def test_queue_filters_sorts_and_pages(client, db, make_moderator, held_comment) -> None:
    token = make_moderator()
    ids = [held_comment(content=f"About chips, take {i}") for i in range(4)]
    other = held_comment(post="gardening-tips", content="Tomatoes need sun")
    for score, comment_id in zip([0.4, 0.9, 0.2, 0.6], ids, strict=True):
        db.get(Comment, comment_id).spam_score = score
    db.commit()

    def queue(query: str) -> dict:
        response = client.get(f"/api/v1/moderation/queue?{query}", headers=bearer(token))
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    assert [c["id"] for c in queue("")["comments"]] == [*ids, other]
    assert [c["id"] for c in queue("sort=-created")["comments"]] == [other, *ids[::-1]]
    assert [c["id"] for c in queue("post=gardening-tips")["comments"]] == [other]
    assert [c["id"] for c in queue("q=tomatoes")["comments"]] == [other]
    assert queue("q=100%25")["comments"] == []
    by_score = queue("sort=-score&limit=2")
    assert [c["id"] for c in by_score["comments"]] == [ids[1], ids[3]]
    rest = queue(f"sort=-score&limit=2&cursor={by_score['next']}")
    assert [c["id"] for c in rest["comments"]] == [ids[0], ids[2]]
    assert queue("status=published")["comments"] == []
    assert queue("")["counts"]["held"] == 5
    assert queue("post=gardening-tips")["counts"]["held"] == 1


@pytest.mark.parametrize("query", ["status=deleted", "sort=name", "limit=0", "cursor=x",
                                   "sort=score&cursor=abc", "bogus=1"])
def test_queue_rejects_bad_parameters(client, make_moderator, query) -> None:
    response = client.get(f"/api/v1/moderation/queue?{query}",
                          headers=bearer(make_moderator()))
    assert response.status_code == 422


def test_comment_record_shows_everything(client, make_moderator, post_comment) -> None:
    token = make_moderator()
    comment_id = client.post(
        "/api/v1/comments",
        json={"post": "p", "author_name": "Eve", "author_email": "eve@example.org",
              "content": "Hello"},
        headers={"User-Agent": "UA/1.0"}, environ_base={"REMOTE_ADDR": "198.51.100.4"},
    ).get_json()["id"]
    record = client.get(f"/api/v1/moderation/comments/{comment_id}",
                        headers=bearer(token)).get_json()
    assert (record["author_email"], record["ip"], record["user_agent"]) == (
        "eve@example.org", "198.51.100.4", "UA/1.0")
    assert record["history"] == []


def test_openapi_documents_bearer_auth(client) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "/api/v1/moderation/comments/{comment_id}/decision" in spec["paths"]


def test_stats_count_automatic_decisions_and_overturns(client, db, make_moderator,
                                                       post_comment, run_worker) -> None:
    token = make_moderator()
    spam = post_comment(content="CHEAP VIAGRA!!! order now http://pills.xyz/a "
                                "http://pills.xyz/b no prescription").get_json()["id"]
    ham = post_comment(content="I think the seven-month lag estimate is optimistic.").get_json()
    run_worker()
    assert db.get(Comment, spam).status == CommentStatus.SPAM
    client.post(f"/api/v1/moderation/comments/{spam}/decision", headers=bearer(token),
                json={"action": "not_spam"})
    client.post(f"/api/v1/moderation/comments/{ham['id']}/decision", headers=bearer(token),
                json={"action": "spam"})
    days = client.get("/api/v1/moderation/stats?days=7", headers=bearer(token)).get_json()["days"]
    assert len(days) == 1
    day = days[0]
    assert (day["spam"], day["published"], day["false_positives"], day["missed_spam"]) == (
        1, 1, 1, 1)
    assert day["model_version"]


RECOVERY = ("I lost $87,000 to a fake crypto investment platform and thought it was gone "
            "forever. Then a friend referred me to Mr. Kevin Adams, a recovery expert, and he "
            "got all my money back in 3 days.")
# The same template spun by other authors on other posts: 4 to 6 bits of SimHash from it.
SPUN = [RECOVERY.replace("$87,000", "$54,000").replace("crypto", "bitcoin")
        .replace("money", "funds").replace("3 days", "2 days"),
        RECOVERY.replace("$87,000", "$41,000").replace("Then", "Luckily"),
        RECOVERY.replace("$87,000", "$66,500").replace("crypto", "forex")]
UNRELATED = ("The export controls section ignores how much older hardware can still be "
             "rented from cloud providers abroad.")


def _campaign(db, post_comment, run_worker) -> tuple[int, list[int], list[int]]:
    """RECOVERY, its spun copies (other authors, other posts), an unrelated comment and a
    short one, scored by a real worker, then all held (whatever the model said). Returns
    (RECOVERY's id, the spun ones' ids, the others' ids)."""
    first = post_comment(content=RECOVERY, author_name="Margaret").get_json()["id"]
    spun = [post_comment(content=text, author_name=name, post=post).get_json()["id"]
            for text, name, post in zip(SPUN, ["Henry", "Olu", "Grace"],
                                        ["interest-rates", "gardening-tips", "ev-batteries"],
                                        strict=True)]
    others = [post_comment(content=UNRELATED).get_json()["id"],
              post_comment(content="Mr. Kevin Adams got my money back!").get_json()["id"]]
    run_worker()
    for comment_id in (first, *spun, *others):
        db.get(Comment, comment_id).status = CommentStatus.HELD
    db.commit()
    return first, spun, others


def test_a_comments_record_lists_its_campaign_across_posts_and_authors(
        client, db, make_moderator, post_comment, run_worker) -> None:
    from datetime import timedelta

    from service.campaigns import simhash

    token = make_moderator()
    first, spun, (unrelated, short) = _campaign(db, post_comment, run_worker)
    assert db.get(Comment, first).simhash == simhash(RECOVERY)  # stored by the worker
    assert db.get(Comment, short).simhash is None  # under 10 words: no campaign
    db.get(Comment, spun[0]).created_at -= timedelta(days=31)  # too old to count
    db.commit()
    record = client.get(f"/api/v1/moderation/comments/{first}", headers=bearer(token)
                        ).get_json()
    group = record["campaign"]
    assert [m["id"] for m in group["comments"]] == spun[:0:-1]  # newest first
    assert group["total"] == 2 and group["counts"]["held"] == 2
    assert group["counts"]["published"] == group["counts"]["pending"] == 0
    member = group["comments"][0]
    assert (member["post"], member["author_name"], member["status"]) == (
        "ev-batteries", "Grace", "held")
    assert member["excerpt"] == SPUN[2][:160].rstrip() + "…" and member["created_at"]
    nothing = client.get(f"/api/v1/moderation/comments/{unrelated}", headers=bearer(token)
                         ).get_json()["campaign"]
    assert (nothing["total"], nothing["comments"]) == (0, [])


def test_a_simhash_is_stored_signed_and_read_back_unsigned(db) -> None:
    from sqlalchemy import text

    row = Comment(post="p", author_name="A", content="x", simhash=2**64 - 1)
    db.add(row)
    db.commit()
    assert db.execute(text("SELECT simhash FROM comments")).scalar() == -1  # a BIGINT
    db.expire_all()
    assert db.get(Comment, row.id).simhash == 2**64 - 1


def test_a_decision_on_a_campaign_files_its_held_members_and_then_its_new_ones_as_spam(
        client, db, make_moderator, post_comment, run_worker) -> None:
    mia, bob = make_moderator(name="mia"), make_moderator(name="bob")
    first, spun, (unrelated, short) = _campaign(db, post_comment, run_worker)
    group = client.get(f"/api/v1/moderation/comments/{first}", headers=bearer(mia)
                       ).get_json()["campaign"]
    ids = [first, *(m["id"] for m in group["comments"] if m["status"] == "held")]
    assert sorted(ids) == sorted([first, *spun])
    # Meanwhile another moderator decides one of them on its own page.
    assert client.post(f"/api/v1/moderation/comments/{spun[1]}/decision", headers=bearer(bob),
                       json={"action": "spam", "expected_status": "held"}).status_code == 200
    response = client.post("/api/v1/moderation/decisions", headers=bearer(mia),
                           json={"ids": ids, "action": "spam", "expected_status": "held",
                                 "note": "recovery scam campaign"})
    assert response.status_code == 200
    results = {r["id"]: r for r in response.get_json()["results"]}
    assert not results[spun[1]]["ok"] and "held" in results[spun[1]]["error"]
    assert all(results[i]["ok"] and results[i]["status"] == "spam" for i in ids
               if i != spun[1])
    db.expire_all()
    for comment_id in ids:
        row = db.get(Comment, comment_id)
        assert (row.status, row.label, row.decided_by) == (
            CommentStatus.SPAM, Label.SPAM, DecidedBy.MODERATOR)
        events = db.scalars(select(CommentEvent).where(CommentEvent.comment_id == comment_id)
                            .order_by(CommentEvent.id)).all()
        decider = "bob" if comment_id == spun[1] else "mia"  # bob's decision stands alone
        assert [(e.actor, e.action, e.from_status, e.to_status) for e in events[1:]] == [
            (decider, "spam", "held", "spam")]
        assert events[1].moderator_id is not None
        assert events[1].note == (None if decider == "bob" else "recovery scam campaign")
    assert {db.get(Comment, i).status for i in (unrelated, short)} == {CommentStatus.HELD}

    # The next member of the campaign, from yet another author and post, is spam on arrival.
    late = post_comment(content=RECOVERY.replace("$87,000", "$19,900"), author_name="Ivy",
                        post="mortgage-rates").get_json()["id"]
    run_worker()
    db.expire_all()
    row = db.get(Comment, late)
    assert (row.status, row.decided_by) == (CommentStatus.SPAM, DecidedBy.RULE)
    assert any(r.startswith("near-duplicate of a comment filed as spam by a moderator")
               for r in row.reasons)
    group = client.get(f"/api/v1/moderation/comments/{first}", headers=bearer(mia)
                       ).get_json()["campaign"]
    assert group["comments"][0]["id"] == late and group["counts"]["spam"] == 4
