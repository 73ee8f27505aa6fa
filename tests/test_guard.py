"""The submission guard: bot traps, flood control, rate limits, duplicates, idempotency."""

from __future__ import annotations

import secrets
import time

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select

from service.db import Comment, CommentEvent, CommentStatus, DecidedBy
from service.guard import TOKEN_SALT
from tests.readers import as_reader
from worker import jobs

READER_IP = {"REMOTE_ADDR": "198.51.100.20"}


def _token(app, post: str, age_seconds: float) -> str:
    """A form token as if the form had been shown ``age_seconds`` ago."""

    serializer = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=TOKEN_SALT)
    signer = serializer.make_signer(TOKEN_SALT)
    signer.get_timestamp = lambda: int(time.time() - age_seconds)  # type: ignore[method-assign]
    payload = serializer.dump_payload({"p": post, "n": secrets.token_urlsafe(9)})
    return signer.sign(payload).decode()


def _post(client, ip: str | None = None, **fields):
    """POST from ``ip`` (default: a reader address of its own, so flood control passes)."""
    body = {"post": "p", "author_name": "Ann", "content": "A thoughtful remark.", **fields}
    return client.post("/api/v1/comments", json=body, environ_base=as_reader(ip))


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"hp_website": "http://bot.example"}, "honeypot field filled in"),
        ({"form_token": "forged.token.value"}, "forged form token"),
    ],
)
def test_bot_traps_file_spam_quietly(client, db, run_worker, extra, reason) -> None:
    response = _post(client, **extra)
    assert response.status_code == 202
    assert response.get_json()["status"] == "pending"  # bots learn nothing
    row = db.get(Comment, response.get_json()["id"])
    assert (row.status, row.decided_by, row.reasons) == (CommentStatus.SPAM, DecidedBy.RULE,
                                                         [reason])
    assert run_worker() == 0  # never queued for scoring
    event = db.scalar(select(CommentEvent))
    assert (event.action, event.to_status) == ("bot-trap", "spam")


def test_a_form_sent_too_fast_is_scored_then_held_and_a_human_pace_is_fine(
        app, client, db, run_worker) -> None:
    # Autofill or a pasted text is as fast as a bot: a moderator decides, not the trap.
    fast = _post(client, form_token=_token(app, "p", 0.5))
    assert fast.status_code == 202
    fast_row = db.get(Comment, fast.get_json()["id"])
    assert fast_row.status == CommentStatus.PENDING  # signed timestamps have 1 s resolution
    assert fast_row.reasons[0].startswith("form sent ")
    human = _post(client, content="Took my time.", form_token=_token(app, "p", 40))
    assert db.get(Comment, human.get_json()["id"]).status == CommentStatus.PENDING
    other_post = _post(client, content="Wrong page.", form_token=_token(app, "q", 40))
    assert db.get(Comment, other_post.get_json()["id"]).reasons == ["form token from another post"]
    run_worker()
    db.expire_all()
    fast_row = db.get(Comment, fast.get_json()["id"])
    assert (fast_row.status, fast_row.decided_by) == (CommentStatus.HELD, DecidedBy.RULE)
    assert fast_row.reasons[0].startswith("form sent ") and fast_row.spam_score is not None
    assert db.get(Comment, human.get_json()["id"]).status == CommentStatus.PUBLISHED
    # Rescoring the held queue keeps it held: the reason stays with the comment.
    jobs.rescore(jobs.get_scorer(), ("held",))
    db.expire_all()
    assert db.get(Comment, fast.get_json()["id"]).status == CommentStatus.HELD


def test_a_form_token_serves_one_comment_and_a_reused_one_is_held(app, client, db,
                                                                   run_worker) -> None:
    token = _token(app, "p", 40)
    first = _post(client, content="My one comment.", form_token=token)
    again = _post(client, content="A bot's second comment on the same token.", form_token=token)
    assert first.status_code == again.status_code == 202  # a bot learns nothing
    assert db.get(Comment, first.get_json()["id"]).reasons is None
    reused = db.get(Comment, again.get_json()["id"])
    assert reused.reasons == ["form token used before (a form serves one comment)"]
    run_worker()
    db.expire_all()
    assert db.get(Comment, first.get_json()["id"]).status == CommentStatus.PUBLISHED
    assert db.get(Comment, again.get_json()["id"]).status == CommentStatus.HELD
    # A refused comment (an invalid field) does not spend its token: the fixed form posts.
    fresh = _token(app, "p", 40)
    assert _post(client, author_email="broken", form_token=fresh).status_code == 422
    fixed = _post(client, content="Fixed my e-mail.", form_token=fresh)
    assert db.get(Comment, fixed.get_json()["id"]).reasons is None


def test_form_token_endpoint_issues_working_tokens(client, db) -> None:
    token = client.get("/api/v1/form-token?post=p").get_json()["token"]
    # Two forms shown in the same second get different tokens (each serves one comment).
    assert client.get("/api/v1/form-token?post=p").get_json()["token"] != token
    response = _post(client, form_token=token)
    row = db.get(Comment, response.get_json()["id"])
    assert row.status == CommentStatus.PENDING and row.reasons[0].startswith("form sent ")
    assert client.get("/api/v1/form-token").status_code == 422


def test_flood_control_per_ip_and_email(app, client) -> None:
    app.config["TRUSTED_IPS"] = []
    assert _post(client, ip=READER_IP["REMOTE_ADDR"]).status_code == 202
    again = _post(client, ip=READER_IP["REMOTE_ADDR"], content="Second thought.")
    assert again.status_code == 429
    assert again.mimetype == "application/problem+json"
    assert 1 <= int(again.headers["Retry-After"]) <= 15
    wait = int(again.headers["Retry-After"])
    assert again.get_json()["detail"] == (
        f"You're posting too fast; please wait {wait if wait > 1 else 'a'} "
        f"second{'s' if wait > 1 else ''} and send your comment again.")
    other_ip = client.post("/api/v1/comments", environ_base={"REMOTE_ADDR": "198.51.100.21"},
                           json={"post": "p", "author_name": "Bo", "content": "Different."})
    assert other_ip.status_code == 202


def test_moderators_and_trusted_ips_are_exempt(app, client, make_moderator) -> None:
    app.config["TRUSTED_IPS"] = []
    token = make_moderator()
    for i in range(3):
        response = client.post("/api/v1/comments", environ_base=READER_IP,
                               headers={"Authorization": f"Bearer {token}"},
                               json={"post": "p", "author_name": "Mod", "content": f"Note {i}"})
        assert response.status_code == 202
    app.config["TRUSTED_IPS"] = [READER_IP["REMOTE_ADDR"]]
    assert _post(client, ip=READER_IP["REMOTE_ADDR"], content="Trusted one").status_code == 202
    assert _post(client, ip=READER_IP["REMOTE_ADDR"], content="Trusted two").status_code == 202


def test_rate_limit_per_ip_answers_429(app, client) -> None:
    app.config.update(TRUSTED_IPS=[], FLOOD_SECONDS=0, RATE_LIMIT_PER_IP="2/minute")
    ip = READER_IP["REMOTE_ADDR"]
    codes = [_post(client, ip=ip, content=f"Comment {i}").status_code for i in range(3)]
    assert codes == [202, 202, 429]
    limited = _post(client, ip=ip, content="Comment 4")
    assert limited.mimetype == "application/problem+json"
    assert "Retry-After" in limited.headers
    problem = limited.get_json()
    assert problem["detail"] == ("You're posting too fast; please wait a minute and send "
                                 "your comment again.")
    assert problem["limit"] == "2 per 1 minute"  # the rule, for developers


@pytest.mark.parametrize("refused", [
    {"post": "p", "author_name": "", "content": "No name."},  # 422: a field to fix
    {"post": "p", "author_name": "Ann", "content": "Same again."},  # 409 from the 2nd on
])
def test_refused_submissions_count_against_the_rate_limit(app, client, refused) -> None:
    app.config.update(TRUSTED_IPS=[], FLOOD_SECONDS=0, RATE_LIMIT_PER_IP="3/minute")
    ip = READER_IP["REMOTE_ADDR"]
    codes = [client.post("/api/v1/comments", json=refused, environ_base={"REMOTE_ADDR": ip})
             .status_code for _ in range(3)]
    assert 429 not in codes
    limited = _post(client, ip=ip, content="A new one.")
    assert limited.status_code == 429 and limited.get_json()["limit"] == "3 per 1 minute"
    # The limit answers first, before the body is even looked at.
    assert client.post("/api/v1/comments", json=refused,
                       environ_base={"REMOTE_ADDR": ip}).status_code == 429


def test_a_submission_is_one_redis_round_trip_before_its_insert(app, client) -> None:
    """Limits per IP and per post and flood control per IP and e-mail: one script call."""
    app.config["TRUSTED_IPS"] = []
    redis = app.extensions["redis"]
    redis.config_resetstat()
    response = _post(client, ip="198.51.100.77", author_email="ann@example.org")
    assert response.status_code == 202
    calls = {name.removeprefix("cmdstat_"): stats["calls"]
             for name, stats in redis.info("commandstats").items()}
    calls.pop("info", None)
    calls.pop("config|resetstat", None)
    # One script for limits and flood, then the scoring mark and its job after the commit.
    assert calls.get("evalsha", 0) + calls.get("eval", 0) == 1, calls
    assert {"lpush", "set"} <= set(calls)  # the windows and flood marks, inside the script


def test_rate_limit_per_post(app, client) -> None:
    app.config.update(TRUSTED_IPS=[], FLOOD_SECONDS=0, RATE_LIMIT_PER_POST="2/minute")
    for i in range(2):
        assert client.post("/api/v1/comments", environ_base={"REMOTE_ADDR": f"198.51.100.{i}"},
                           json={"post": "hot", "author_name": "A", "content": f"c{i}"}
                           ).status_code == 202
    third = client.post("/api/v1/comments", environ_base={"REMOTE_ADDR": "198.51.100.9"},
                        json={"post": "hot", "author_name": "A", "content": "c9"})
    assert third.status_code == 429
    assert third.get_json()["detail"] == ("This post is getting a lot of comments right now; "
                                          "please wait a minute and send yours again.")
    elsewhere = client.post("/api/v1/comments", environ_base={"REMOTE_ADDR": "198.51.100.9"},
                            json={"post": "calm", "author_name": "A", "content": "c10"})
    assert elsewhere.status_code == 202


def test_a_reader_who_filled_in_the_form_passes_a_busy_posts_limit_once(app, client, db
                                                                       ) -> None:
    # The day a post goes viral, bots posting straight to the API fill the per-post limit;
    # a reader whose form (the widget's token) was shown 3 s or more before still gets in.
    app.config.update(TRUSTED_IPS=[], FLOOD_SECONDS=0, RATE_LIMIT_PER_POST="2/minute")
    for i in range(2):
        assert _post(client, post="hot", content=f"bot {i}").status_code == 202
    assert _post(client, post="hot", content="bot 2").status_code == 429
    token = _token(app, "hot", 20)
    reader = _post(client, post="hot", content="A reader's comment.", form_token=token)
    assert reader.status_code == 202
    assert db.get(Comment, reader.get_json()["id"]).reasons is None  # spent, not "used before"
    # Once only: the same token again counts like any comment (and would be held as reused).
    assert _post(client, post="hot", content="The bot copied it.", form_token=token
                 ).status_code == 429
    # Neither a token shown a second ago, nor one of another post, nor a forged one.
    for other in (_token(app, "hot", 1), _token(app, "calm", 20), "forged.token.value"):
        assert _post(client, post="hot", content=f"With {other[:8]}", form_token=other
                     ).status_code == 429, other
    # A comment refused after its token was spent (a reply to a comment not shown) gives
    # the token back: the corrected form still passes.
    kept = _token(app, "hot", 20)
    assert _post(client, post="hot", content="A reply.", parent_id=999_999,
                 form_token=kept).status_code == 422
    assert _post(client, post="hot", content="A reply.", form_token=kept).status_code == 202
    # A reader refused by flood control keeps the token for the retry.
    app.config["FLOOD_SECONDS"] = 60
    patient = _token(app, "hot", 20)
    assert _post(client, ip="198.51.100.61", post="calm", content="first").status_code == 202
    assert _post(client, ip="198.51.100.61", post="hot", content="second",
                 form_token=patient).status_code == 429
    app.extensions["redis"].delete("flood:ip:198.51.100.61")
    assert _post(client, ip="198.51.100.61", post="hot", content="second",
                 form_token=patient).status_code == 202


def test_idempotency_key_returns_the_same_comment(client, db) -> None:
    headers = {"Idempotency-Key": "form-123"}
    body = {"post": "p", "author_name": "Ann", "content": "Once only"}
    first = client.post("/api/v1/comments", json=body, headers=headers)
    second = client.post("/api/v1/comments", json=body, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.get_json()["id"] == second.get_json()["id"]
    assert second.headers["Location"] == first.headers["Location"]
    assert db.scalar(select(func.count()).select_from(Comment)) == 1
    bad = client.post("/api/v1/comments", json=body, headers={"Idempotency-Key": "x" * 300})
    assert bad.status_code == 400


def test_same_author_same_text_same_post_is_a_duplicate(app, client, db) -> None:
    app.config["FLOOD_SECONDS"] = 0  # Ann posts again at once; flood control is tested above
    body = {"post": "p", "author_name": "Ann", "author_email": "ann@example.org",
            "content": "Great point about HBM."}
    first = client.post("/api/v1/comments", json=body)
    again = client.post("/api/v1/comments", json={**body, "content": " Great point about HBM. "})
    assert again.status_code == 409
    problem = again.get_json()
    assert problem["id"] == first.get_json()["id"]
    assert again.headers["Location"] == f"/api/v1/comments/{problem['id']}"
    assert client.post("/api/v1/comments", json={**body, "post": "q"}).status_code == 202
    # Time moved in the data: the first comment is now an hour old.
    from datetime import timedelta
    row = db.get(Comment, first.get_json()["id"])
    row.created_at = row.created_at - timedelta(hours=1)
    db.commit()
    assert client.post("/api/v1/comments", json=body).status_code == 202
