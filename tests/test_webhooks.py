"""Webhooks: admins configure them; a real local receiver gets signed POSTs; failures are
logged and retried; a growing held queue alerts by webhook and e-mail."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from rq import Queue

from service import notify, webhooks
from service.db import Rule, RuleKind, WebhookDelivery

# The receivers run on this machine.
pytestmark = pytest.mark.usefixtures("loopback_webhooks")

SECRET = "a-shared-secret-of-enough-length"
ALL_EVENTS = ["comment.published", "comment.held", "comment.spam", "comment.rejected",
              "queue.held_growing"]


class Receiver:
    """A real HTTP server on localhost that records every POST and answers ``status``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body,
                                          "path": self.path})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def events(self) -> list[str]:
        """The X-Webhook-Event of each request received."""
        return [r["headers"]["X-Webhook-Event"] for r in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A running receiver, shut down afterwards."""
    server = Receiver()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def admin(make_moderator) -> dict[str, str]:
    """Authorization headers of an admin."""
    return {"Authorization": f"Bearer {make_moderator('ada', role='admin')}"}


def add_webhook(client: Any, admin: dict[str, str], url: str, **fields: Any) -> dict[str, Any]:
    """Create a webhook through the admin API; returns the answer (with the secret)."""
    response = client.post("/api/v1/moderation/webhooks", headers=admin,
                           json={"url": url, "events": ALL_EVENTS, **fields})
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def receiver_accepts(secret: str, body: bytes, header: str, now: float | None = None) -> bool:
    """What a receiver does on its own (docs/deploy.md): HMAC-SHA256 of "<t>.<body>",
    compared in constant time, and the timestamp within five minutes."""
    fields = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    fresh = abs((time.time() if now is None else now) - int(fields["t"])) <= 300
    return hmac.compare_digest(expected, fields["v1"]) and fresh


def test_decided_comment_reaches_receiver_signed(client, admin, receiver, post_comment,
                                                  run_worker, db) -> None:
    hook = add_webhook(client, admin, receiver.url, secret=SECRET)
    assert hook["secret"] == SECRET
    comment_id = post_comment().get_json()["id"]

    run_worker()  # scores the comment, then delivers the event queued after the decision

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    headers, body = request["headers"], request["body"]
    signature = headers["X-Webhook-Signature"]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", signature)
    assert abs(int(signature[2:signature.index(",")]) - time.time()) < 60
    assert receiver_accepts(SECRET, body, signature)
    assert not receiver_accepts(SECRET, body + b" ", signature)
    # A replay of the same delivery an hour later is told apart by its timestamp.
    assert not receiver_accepts(SECRET, body, signature, now=time.time() + 3600)
    assert not webhooks.verify(SECRET, body, signature, now=time.time() + 3600)
    assert headers["Content-Type"] == "application/json"
    payload = json.loads(body)
    status = payload["data"]["status"]
    assert headers["X-Webhook-Event"] == payload["event"] == f"comment.{status}"
    assert payload["data"]["id"] == comment_id
    assert "author_email" not in payload["data"] and "ip" not in payload["data"]

    log = client.get(f"/api/v1/moderation/webhooks/{hook['id']}/deliveries", headers=admin)
    [delivery] = log.get_json()["deliveries"]
    assert headers["X-Webhook-Delivery"] == str(delivery["id"])
    assert delivery["status_code"] == 200 and delivery["attempts"] == 1
    assert delivery["delivered_at"] is not None and delivery["error"] is None


def test_generated_secret_is_shown_once_and_signs(client, admin, receiver, held_comment
                                                  ) -> None:
    hook = add_webhook(client, admin, receiver.url)
    assert len(hook["secret"]) >= 32
    listed = client.get("/api/v1/moderation/webhooks", headers=admin).get_json()["webhooks"]
    assert [h["id"] for h in listed] == [hook["id"]]
    assert "secret" not in listed[0]

    comment_id = held_comment()
    decided = client.post(f"/api/v1/moderation/comments/{comment_id}/decision",
                          headers=admin, json={"action": "spam"})
    assert decided.status_code == 200
    queue = Queue(client.application.config["WEBHOOK_QUEUE_NAME"],  # the delivery queue
                  connection=client.application.extensions["redis"])
    delivery_job = next(job for job in queue.get_jobs() if job.id.startswith("webhook-"))
    from worker.webhooks import deliver

    assert deliver(delivery_job.args[0]) == 200
    [request] = receiver.requests
    assert request["headers"]["X-Webhook-Event"] == "comment.spam"
    assert webhooks.verify(hook["secret"], request["body"],
                           request["headers"]["X-Webhook-Signature"])


def test_rejecting_a_published_comment_tells_receivers(client, admin, receiver, post_comment,
                                                       run_worker) -> None:
    add_webhook(client, admin, receiver.url, secret=SECRET)
    comment_id = post_comment(content="Fine words at first sight.").get_json()["id"]
    run_worker()
    assert receiver.events() == ["comment.published"]
    rejected = client.post(f"/api/v1/moderation/comments/{comment_id}/decision",
                           headers=admin, json={"action": "reject",
                                                "expected_status": "published"})
    assert rejected.status_code == 200
    run_worker()
    assert receiver.events() == ["comment.published", "comment.rejected"]
    last = receiver.requests[-1]
    payload = json.loads(last["body"])
    assert payload["data"]["id"] == comment_id and payload["data"]["status"] == "rejected"
    assert receiver_accepts(SECRET, last["body"], last["headers"]["X-Webhook-Signature"])


def test_failed_delivery_is_logged_and_retried(client, admin, receiver, post_comment,
                                               run_worker, db) -> None:
    receiver.status = 500
    add_webhook(client, admin, receiver.url, secret=SECRET)
    post_comment()
    run_worker()

    assert len(receiver.requests) == 1
    [delivery] = db.query(WebhookDelivery).all()
    assert (delivery.attempts, delivery.status_code, delivery.delivered_at) == (1, 500, None)
    assert "500" in delivery.error
    queue = Queue(client.application.config["WEBHOOK_QUEUE_NAME"],
                  connection=client.application.extensions["redis"])
    assert queue.scheduled_job_registry.get_job_ids() == [f"webhook-{delivery.id}"]


def test_webhooks_are_for_admins_only(client, make_moderator) -> None:
    moderator = {"Authorization": f"Bearer {make_moderator('mo')}"}
    assert client.get("/api/v1/moderation/webhooks").status_code == 401
    assert client.get("/api/v1/moderation/webhooks", headers=moderator).status_code == 403


@pytest.mark.parametrize("fields", [
    {"url": "ftp://example.com/hook", "events": ["comment.held"]},
    {"url": "https://example.com/hook", "events": ["comment.deleted"]},
    {"url": "https://example.com/hook", "events": []},
    {"url": "https://example.com/hook", "events": ["comment.held"], "secret": "short"},
    {"url": "https://example.com/hook", "events": ["comment.held"], "extra": 1},
])
def test_invalid_webhooks_are_refused(client, admin, fields) -> None:
    response = client.post("/api/v1/moderation/webhooks", headers=admin, json=fields)
    assert response.status_code == 422


def test_delete_removes_webhook_and_its_log(client, admin, receiver) -> None:
    hook = add_webhook(client, admin, receiver.url)
    assert client.delete(f"/api/v1/moderation/webhooks/{hook['id']}",
                         headers=admin).status_code == 204
    assert client.get(f"/api/v1/moderation/webhooks/{hook['id']}/deliveries",
                      headers=admin).status_code == 404
    assert client.get("/api/v1/moderation/webhooks", headers=admin).get_json() == {
        "webhooks": []}


def test_growing_held_queue_alerts_once_by_webhook(client, admin, receiver, post_comment,
                                                   run_worker, db, monkeypatch) -> None:
    monkeypatch.setenv("HELD_ALERT_THRESHOLD", "2")
    add_webhook(client, admin, receiver.url, secret=SECRET)
    db.add(Rule(kind=RuleKind.WATCHED_TERM, value="quarantine"))
    db.commit()
    for n in range(3):
        post_comment(content=f"A word about quarantine rules, take {n}.")
        run_worker()

    assert receiver.events().count("comment.held") == 3
    assert receiver.events().count("queue.held_growing") == 1  # not again within the hour
    alert = next(r for r in receiver.requests
                 if r["headers"]["X-Webhook-Event"] == "queue.held_growing")
    assert receiver_accepts(SECRET, alert["body"], alert["headers"]["X-Webhook-Signature"])
    assert json.loads(alert["body"])["data"] == {"held": 2, "threshold": 2}


def test_held_alert_email_reaches_smtp_server(app, held_comment, run_worker, db,
                                              monkeypatch) -> None:
    from aiosmtpd.controller import Controller

    from service.embedded_redis import free_port

    class Inbox:
        def __init__(self) -> None:
            self.messages: list[Any] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            self.messages.append(envelope)
            return "250 OK"

    inbox = Inbox()
    port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        settings = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_STARTTLS": "0",
                    "ALERT_EMAIL_TO": "mods@example.org", "SMTP_FROM": "alerts@example.org",
                    "HELD_ALERT_THRESHOLD": "1"}
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        held_comment()
        from service.config import load_config

        queue = Queue(app.config["QUEUE_NAME"], connection=app.extensions["redis"])
        assert notify.check_held(db, app.extensions["redis"], queue, load_config())
        assert not notify.check_held(db, app.extensions["redis"], queue, load_config())
        run_worker()
    finally:
        smtp.stop()
    [message] = inbox.messages
    assert message.rcpt_tos == ["mods@example.org"]
    assert message.mail_from == "alerts@example.org"
    assert b"Subject: 1 held comment waiting for a moderator" in message.content
    import email
    from email import policy

    text = email.message_from_bytes(message.content, policy=policy.default).get_content()
    assert "http://127.0.0.1:8000/moderate?status=held" in text  # development's PUBLIC_URL


@pytest.mark.parametrize(("settings", "sender", "link"), [
    ({"PUBLIC_URL": "https://comments.blog.example/"}, "comments@comments.blog.example",
     "https://comments.blog.example/moderate?status=held"),
    ({"PUBLIC_URL": "https://comments.blog.example", "SMTP_FROM": "Blog <ops@blog.example>"},
     "Blog <ops@blog.example>", "https://comments.blog.example/moderate?status=held"),
])
def test_alert_email_links_to_the_queue_from_a_real_sender(settings, sender, link) -> None:
    from service.config import load_config

    config = load_config({"APP_ENV": "production", "SECRET_KEY": "k" * 32,
                          "DATABASE_URL": "postgresql://db/comments", "REDIS_URL": "redis://r",
                          "SMTP_HOST": "smtp.blog.example", "ALERT_EMAIL_TO": ["mods@b.example"],
                          **settings})
    message = notify.alert_message(12, config)
    assert message["From"] == sender
    assert message["Subject"] == "12 held comments waiting for a moderator"
    assert link in message.get_content()


def test_production_alert_email_needs_a_public_url_and_a_sender() -> None:
    from service.config import load_config
    from service.errors import ConfigError

    with pytest.raises(ConfigError, match="PUBLIC_URL, SMTP_FROM"):
        load_config({"APP_ENV": "production", "SECRET_KEY": "k" * 32,
                     "DATABASE_URL": "postgresql://db/comments", "REDIS_URL": "redis://r",
                     "SMTP_HOST": "smtp.blog.example", "ALERT_EMAIL_TO": ["mods@b.example"],
                     "PUBLIC_URL": ""})


def test_deliveries_stored_while_redis_was_down_are_queued_later(app, client, db, admin,
                                                                  receiver, run_worker) -> None:
    from datetime import timedelta

    hook = add_webhook(client, admin, receiver.url)
    # As if Redis had been down when the decision was made: stored, never queued.
    delivery = WebhookDelivery(webhook_id=hook["id"], event="comment.held", comment_id=None,
                               payload={"event": "comment.held", "data": {}})
    db.add(delivery)
    db.commit()
    queue = webhooks.queue_for(app.extensions["redis"], dict(app.config))
    assert webhooks.requeue_unsent(db, queue) == 0  # too recent: its job may be on its way
    delivery.created_at = delivery.created_at - timedelta(minutes=1)  # time moved in the data
    db.commit()
    assert webhooks.requeue_unsent(db, queue) == 1
    assert webhooks.requeue_unsent(db, queue) == 0  # its job exists now: never queued twice
    run_worker()
    db.expire_all()
    assert db.get(WebhookDelivery, delivery.id).delivered_at is not None
    assert len(receiver.requests) == 1


def test_bot_trap_decisions_reach_webhooks_too(client, admin, receiver, post_comment,
                                               run_worker) -> None:
    add_webhook(client, admin, receiver.url)
    comment_id = post_comment(hp_website="http://bot.example").get_json()["id"]
    run_worker()  # no scoring job: only the delivery
    assert receiver.events() == ["comment.spam"]
    payload = json.loads(receiver.requests[0]["body"])["data"]
    assert payload["id"] == comment_id and payload["reasons"] == ["honeypot field filled in"]


def test_rescoring_moves_reach_webhooks(app, client, admin, receiver, post_comment, run_worker,
                                        db) -> None:
    from service.db import Comment, CommentStatus

    add_webhook(client, admin, receiver.url)
    spammy = "CHEAP VIAGRA online no prescription!!! order now http://pills-shop.xyz/buy"
    comment_id = post_comment(content=spammy, author_name="Pills").get_json()["id"]
    db.get(Comment, comment_id).status = CommentStatus.HELD  # held before this model
    db.commit()
    result = app.test_cli_runner().invoke(args=["model", "rescore", "--status", "held"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1]) == {"moved": {"spam": 1},
                                                                   "rescored": 1}
    run_worker()  # the comment's own scoring job finds nothing pending; the delivery goes out
    assert receiver.events() == ["comment.spam"]
    assert json.loads(receiver.requests[0]["body"])["data"]["id"] == comment_id
