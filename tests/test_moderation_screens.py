"""What the moderators' screens read from the API: the active model and each version's bands,
readable reasons, the author's other comments, notes, and undoing one's own decision."""

from __future__ import annotations

from models.artifacts import ArtifactStore
from service.db import Comment, CommentEvent, CommentStatus, DecidedBy, Label
from service.moderation import UNDO_KEY, UNDO_SECONDS


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_queue_names_the_active_model_and_the_bands_of_each_version_on_the_page(
        client, db, make_moderator, held_comment, model_dir) -> None:
    token = make_moderator()
    store = ArtifactStore(model_dir)
    active = store.active_version()
    thresholds = store.metadata(active)["thresholds"]
    scored, old = held_comment(), held_comment()
    db.get(Comment, scored).model_version = active
    db.get(Comment, old).model_version = "19990101-000000-gone00"  # deleted from the store
    db.commit()
    page = client.get("/api/v1/moderation/queue", headers=bearer(token)).get_json()
    assert page["active_model"] == {"version": active, "low": thresholds["low"],
                                    "high": thresholds["high"]}
    assert page["bands"] == {active: {"low": thresholds["low"], "high": thresholds["high"]}}
    # The detail of a comment whose model is gone is drawn with the active model's bands.
    detail = client.get(f"/api/v1/moderation/comments/{old}", headers=bearer(token))
    assert detail.get_json()["bands"] == {"low": thresholds["low"], "high": thresholds["high"]}


def test_operator_threshold_overrides_are_the_bands_shown(app, client, make_moderator,
                                                          held_comment) -> None:
    app.config.update(SPAM_THRESHOLD_LOW=0.2, SPAM_THRESHOLD_HIGH=0.7)
    token = make_moderator()
    comment_id = held_comment()
    detail = client.get(f"/api/v1/moderation/comments/{comment_id}", headers=bearer(token))
    assert detail.get_json()["bands"] == {"low": 0.2, "high": 0.7}


def test_queue_items_carry_readable_reasons(client, db, make_moderator, held_comment) -> None:
    token = make_moderator()
    comment_id = held_comment(content="Buy cheap pills, the best.")
    db.get(Comment, comment_id).reasons = [
        "spam score 0.50 between 0.16 and 0.90", "'the' -0.4", "'buy cheap' +1.6"]
    db.commit()
    [item] = client.get("/api/v1/moderation/queue", headers=bearer(token)).get_json()["comments"]
    assert [c["text"] for c in item["explanation"]["chips"]] == [
        "spam score 0.50 between 0.16 and 0.90", "“buy cheap”"]
    assert item["explanation"]["highlight"] == ["buy cheap"]
    assert item["reasons"][1] == "'the' -0.4"  # the stored record is untouched


def test_detail_lists_the_authors_other_comments_newest_first(client, db, make_moderator,
                                                             held_comment) -> None:
    token = make_moderator()

    def by(email, **fields):
        comment_id = held_comment(**fields)
        db.get(Comment, comment_id).author_email = email  # flood control spaces real ones
        db.commit()
        return comment_id

    first = by("Mei@Example.org", content="First one.")
    second = by("mei@example.org", content="Second one.")
    by("someone@else.example")
    by(None, author_name="Mei", content="Same name, no e-mail: someone else.")
    third = by("mei@example.org", content="Third one.")
    detail = client.get(f"/api/v1/moderation/comments/{second}", headers=bearer(token))
    others = detail.get_json()["author_comments"]
    assert [o["id"] for o in others] == [third, first]
    assert others[1]["content"] == "First one." and others[1]["status"] == "held"
    assert "author_email" not in others[0]


def decide(client, token, comment_id, **body):
    return client.post(f"/api/v1/moderation/comments/{comment_id}/decision",
                       headers=bearer(token), json=body)


def test_a_decision_keeps_its_note_and_undo_puts_everything_back(app, client, db,
                                                                 make_moderator,
                                                                 held_comment) -> None:
    token = make_moderator()
    comment_id = held_comment()
    answer = decide(client, token, comment_id, action="spam", expected_status="held",
                    note="Same link as yesterday's batch.")
    assert answer.status_code == 200
    event = answer.get_json()["history"][-1]
    assert event["note"] == "Same link as yesterday's batch."
    assert app.extensions["redis"].ttl(UNDO_KEY.format(event["id"])) <= UNDO_SECONDS

    undone = client.post(f"/api/v1/moderation/comments/{comment_id}/undo",
                         headers=bearer(token), json={"event_id": event["id"]})
    assert undone.status_code == 200
    body = undone.get_json()
    assert body["status"] == "held" and body["label"] is None and body["decided_by"] is None
    assert [(e["action"], e["from_status"], e["to_status"]) for e in body["history"]] == [
        ("spam", "held", "spam"), ("undo", "spam", "held")]
    db.expire_all()
    row = db.get(Comment, comment_id)
    assert (row.status, row.label) == (CommentStatus.HELD, None)
    # Once only: the same undo again is a conflict, not a second change.
    again = client.post(f"/api/v1/moderation/comments/{comment_id}/undo",
                        headers=bearer(token), json={"event_id": event["id"]})
    assert again.status_code == 409


def test_undo_restores_an_earlier_moderators_decision(client, db, make_moderator,
                                                      held_comment) -> None:
    token = make_moderator()
    comment_id = held_comment()
    decide(client, token, comment_id, action="spam", expected_status="held")
    decided_at = db.get(Comment, comment_id).decided_at
    answer = decide(client, token, comment_id, action="not_spam", expected_status="spam")
    event_id = answer.get_json()["history"][-1]["id"]
    undone = client.post(f"/api/v1/moderation/comments/{comment_id}/undo",
                         headers=bearer(token), json={"event_id": event_id})
    assert undone.status_code == 200
    db.expire_all()
    row = db.get(Comment, comment_id)
    assert (row.status, row.label, row.decided_by) == (CommentStatus.SPAM, Label.SPAM,
                                                       DecidedBy.MODERATOR)
    assert row.decided_at == decided_at


def test_undo_is_refused_too_late_for_others_and_after_a_later_change(
        app, client, db, make_moderator, held_comment) -> None:
    ann, bob = make_moderator("ann"), make_moderator("bob")
    late, theirs, changed = held_comment(), held_comment(), held_comment()

    def undo(token, comment_id, event_id):
        return client.post(f"/api/v1/moderation/comments/{comment_id}/undo",
                           headers=bearer(token), json={"event_id": event_id})

    event = decide(client, ann, late, action="approve").get_json()["history"][-1]["id"]
    app.extensions["redis"].delete(UNDO_KEY.format(event))  # what its expiry does
    response = undo(ann, late, event)
    assert response.status_code == 409 and "Too late" in response.get_json()["detail"]

    event = decide(client, ann, theirs, action="approve").get_json()["history"][-1]["id"]
    assert undo(bob, theirs, event).status_code == 403

    event = decide(client, ann, changed, action="approve").get_json()["history"][-1]["id"]
    decide(client, bob, changed, action="reject", expected_status="published")
    assert undo(ann, changed, event).status_code == 409
    assert undo(ann, changed, 10**12).status_code == 404
    bad = client.post(f"/api/v1/moderation/comments/{changed}/undo", headers=bearer(ann),
                      json={"event_id": "last"})
    assert bad.status_code == 422 and "event_id" in bad.get_json()["errors"]
    db.expire_all()
    assert db.get(Comment, late).status == CommentStatus.PUBLISHED
    assert db.get(Comment, theirs).status == CommentStatus.PUBLISHED
    assert db.get(Comment, changed).status == CommentStatus.REJECTED
    assert db.query(CommentEvent).filter_by(action="undo").count() == 0
