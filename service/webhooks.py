"""Outbound webhooks: which events exist, how a body is signed, and queuing deliveries.

Each delivery is a `WebhookDelivery` row first, then an RQ job ``worker.webhooks.deliver``
(by name: the web never imports the worker) that POSTs it and retries on failure. No Flask
here: the worker queues deliveries after its decisions, the API after moderators'.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from redis.exceptions import RedisError
from rq import Queue, Retry
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db import Comment, CommentStatus, Webhook, WebhookDelivery
from service.db.types import utcnow

log = logging.getLogger(__name__)

DELIVER_JOB = "worker.webhooks.deliver"
# A receiver that is down for a deploy or a short outage still gets the event: retried after
# 10 s, 30 s, 1 min, 5 min and 15 min, then left failed in RQ (and in the delivery log).
DELIVERY_RETRY = Retry(max=5, interval=[10, 30, 60, 300, 900])
# A delivery not started within a day is stale news.
DELIVERY_TTL = 24 * 3600
SIGNATURE_HEADER = "X-Webhook-Signature"
# A receiver refuses a signature older than this (a replayed delivery); each attempt of a
# delivery is signed anew, so a retry is never refused for its age.
SIGNATURE_TOLERANCE_SECONDS = 300

# The event a comment's new status sends. comment.rejected tells a receiver that caches
# published comments to drop one a moderator took down (as comment.spam does).
STATUS_EVENTS: dict[str, str] = {
    CommentStatus.PUBLISHED: "comment.published",
    CommentStatus.HELD: "comment.held",
    CommentStatus.SPAM: "comment.spam",
    CommentStatus.REJECTED: "comment.rejected",
}
HELD_GROWING = "queue.held_growing"
EVENTS = (*STATUS_EVENTS.values(), HELD_GROWING)


def new_secret() -> str:
    """A random signing secret (shown to the admin once, when the webhook is created)."""
    return secrets.token_urlsafe(32)


def body_of(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed: compact, key-sorted JSON."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``X-Webhook-Signature`` value, ``t=<unix seconds>,v1=<hex>``: HMAC-SHA256 with the
    secret of the timestamp, a dot and the raw body (Stripe's scheme), so the time cannot
    be changed without breaking the signature."""
    when = int(time.time()) if timestamp is None else timestamp
    return f"t={when},v1={_mac(secret, when, body)}"


def verify(secret: str, body: bytes, signature: str,
           tolerance: float = SIGNATURE_TOLERANCE_SECONDS, now: float | None = None) -> bool:
    """True if ``signature`` is ours for ``body`` and was made within ``tolerance`` seconds
    (what a receiver should check; docs/deploy.md shows it without this module)."""
    parts: dict[str, list[str]] = {}
    for item in signature.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        when = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - when) > tolerance:
        return False
    expected = _mac(secret, when, body)
    return any(hmac.compare_digest(expected, given) for given in parts.get("v1", []))


def comment_payload(comment: Comment) -> dict[str, Any]:
    """What a receiver learns about a comment: the public fields and the verdict, no e-mail
    and no IP address."""
    return {
        "id": comment.id,
        "post": comment.post,
        "parent_id": comment.parent_id,
        "author_name": comment.author_name,
        "author_url": comment.author_url,
        "content": comment.content,
        "status": str(comment.status),
        "spam_score": comment.spam_score,
        "reasons": comment.reasons or [],
        "model_version": comment.model_version,
        "decided_by": str(comment.decided_by) if comment.decided_by else None,
        "created_at": comment.created_at.isoformat(),
        "decided_at": comment.decided_at.isoformat() if comment.decided_at else None,
    }


def subscribers(session: Session, event: str) -> list[Webhook]:
    """Active webhooks that asked for ``event``."""
    hooks = session.scalars(select(Webhook).where(Webhook.active.is_(True)).order_by(Webhook.id))
    return [hook for hook in hooks if event in (hook.events or [])]


def enqueue_delivery(queue: Queue, delivery_id: int) -> None:
    """Queue the job that POSTs one stored delivery."""
    queue.enqueue(
        DELIVER_JOB, delivery_id,
        job_id=f"webhook-{delivery_id}",
        retry=DELIVERY_RETRY,
        ttl=DELIVERY_TTL,
        job_timeout=30,  # the POST itself times out after 5 s
        result_ttl=0,  # the outcome is on the delivery row
        failure_ttl=7 * 24 * 3600,
        description=f"webhook delivery {delivery_id}",
    )


def dispatch(session: Session, queue: Queue,
             events: Iterable[tuple[str, dict[str, Any], int | None]]) -> list[int]:
    """Store one delivery per (event, subscribed webhook), commit, then queue them.

    ``events`` holds (event, data, comment id or None). Returns the delivery ids. A Redis
    outage leaves the rows unqueued (attempts 0) and is logged, not raised: the comment's
    decision is already committed and must stand."""
    hooks_by_event: dict[str, list[Webhook]] = {}
    deliveries: list[WebhookDelivery] = []
    for event, data, comment_id in events:
        if event not in hooks_by_event:
            hooks_by_event[event] = subscribers(session, event)
        for hook in hooks_by_event[event]:
            payload = {"event": event, "created_at": utcnow().isoformat(), "data": data}
            deliveries.append(WebhookDelivery(webhook_id=hook.id, event=event,
                                              comment_id=comment_id, payload=payload))
    if not deliveries:
        return []
    session.add_all(deliveries)
    session.commit()
    ids = [d.id for d in deliveries]
    try:
        for delivery_id in ids:
            enqueue_delivery(queue, delivery_id)
    except RedisError as error:
        log.warning("could not queue webhook deliveries %s: %s", ids,
                    error.__class__.__name__)
    return ids


# A delivery stored this long ago and never attempted lost its job (Redis was down).
UNSENT_AFTER_SECONDS = 30


def requeue_unsent(session: Session, queue: Queue,
                   older_than: float = UNSENT_AFTER_SECONDS) -> int:
    """Queue again the deliveries that were stored but never queued or attempted (Redis was
    down when they were written). A delivery whose job still exists is left alone."""
    cutoff = utcnow() - timedelta(seconds=older_than)
    ids = session.scalars(
        select(WebhookDelivery.id).where(
            WebhookDelivery.attempts == 0, WebhookDelivery.delivered_at.is_(None),
            WebhookDelivery.error.is_(None), WebhookDelivery.created_at <= cutoff,
        ).order_by(WebhookDelivery.id).limit(1000)
    ).all()
    queued = 0
    for delivery_id in ids:
        if queue.fetch_job(f"webhook-{delivery_id}") is None:
            enqueue_delivery(queue, delivery_id)
            queued += 1
    if queued:
        log.warning("queued %d webhook deliveries again", queued)
    return queued


def comments_decided(session: Session, queue: Queue, comments: Sequence[Comment]) -> list[int]:
    """Queue the webhook events of comments that just reached a new status (after commit)."""
    return dispatch(session, queue, [
        (STATUS_EVENTS[comment.status], comment_payload(comment), comment.id)
        for comment in comments if comment.status in STATUS_EVENTS
    ])


def queue_for(connection: Any, config: dict[str, Any]) -> Queue:
    """The queue deliveries go to (WEBHOOK_QUEUE_NAME, by default the scoring queue)."""
    return Queue(config.get("WEBHOOK_QUEUE_NAME") or config["QUEUE_NAME"],
                 connection=connection)
