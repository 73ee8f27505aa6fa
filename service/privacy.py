"""Readers' data: IP addresses anonymised (as Isso does, to the /24 network) and User-Agent
and Referer dropped after a retention period, and a commenter's data exported or erased on
request: by e-mail, by comment id, or by the secret each comment's 202 gave its author (the
only handle of a comment sent without an e-mail). No Flask here: the worker
runs the anonymiser, the CLI runs export and erase."""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from service import caching
from service.db import AdminEvent, Comment, CommentEvent, WebhookDelivery
from service.db.comments import hash_secret
from service.db.types import utcnow

# What a webhook delivery body said about the commenter (no e-mail or IP is ever sent).
ERASED_PAYLOAD_FIELDS = ("author_name", "author_url", "content")

# Long enough to trace an abuse wave, short enough not to keep a reading history.
IP_RETENTION_DAYS = 30


def anonymise_ip(ip: str) -> str:
    """The address with its host part zeroed: IPv4 to its /24, IPv6 to its /48."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def anonymise_old_ips(session: Session, days: int = IP_RETENTION_DAYS) -> int:
    """Anonymise the IPs of comments older than ``days`` and forget their User-Agent and
    Referer (as identifying as an address); returns how many comments changed."""
    cutoff = utcnow() - timedelta(days=days)
    changed = 0
    rows = session.scalars(
        select(Comment).where(Comment.created_at < cutoff, or_(
            Comment.ip.is_not(None), Comment.user_agent.is_not(None),
            Comment.referer.is_not(None)))
    )
    for comment in rows:
        anonymous = anonymise_ip(comment.ip) if comment.ip else None
        if (anonymous, None, None) != (comment.ip, comment.user_agent, comment.referer):
            comment.ip, comment.user_agent, comment.referer = anonymous, None, None
            changed += 1
    session.commit()
    return changed


def _email_digest(email: str) -> str:
    # The audit trail records that a request was served, not whose address it was.
    return hashlib.sha256(email.encode()).hexdigest()[:16]


def _requested(session: Session, email: str | None, ids: Iterable[int],
               secrets: Iterable[str]) -> list[Comment]:
    """The comments a data request names: by e-mail, by id (the operator checked who asks),
    or by the per-comment secret the 202 gave their author (proof enough by itself)."""
    conditions = []
    if email:
        conditions.append(Comment.author_email == email.strip().lower())
    if ids := list(ids):
        conditions.append(Comment.id.in_(ids))
    if hashes := [hash_secret(secret.strip()) for secret in secrets]:
        conditions.append(Comment.secret_hash.in_(hashes))
    if not conditions:
        raise ValueError("name the commenter: an e-mail, comment ids or comment secrets")
    return list(session.scalars(select(Comment).where(or_(*conditions)).order_by(Comment.id)))


def _audit_details(email: str | None, comments: list[Comment]) -> dict[str, Any]:
    details: dict[str, Any] = {"comments": len(comments)}
    if email:
        details["email_sha256"] = _email_digest(email.strip().lower())
    return details


def _history(session: Session, comment_id: int) -> list[dict[str, Any]]:
    events = session.scalars(select(CommentEvent).where(CommentEvent.comment_id == comment_id)
                             .order_by(CommentEvent.id))
    return [{"actor": e.actor, "action": e.action, "from_status": e.from_status,
             "to_status": e.to_status, "note": e.note, "created_at": e.created_at.isoformat()}
            for e in events]


def export(session: Session, email: str | None = None, *, ids: Iterable[int] = (),
           secrets: Iterable[str] = ()) -> dict[str, Any]:
    """Everything stored about a commenter (a data access request): their comments, with the
    verdicts on them (score, reasons, label, model) and each one's decision history."""
    comments = _requested(session, email, ids, secrets)
    exported = [
        {"id": c.id, "post": c.post, "author_name": c.author_name,
         "author_email": c.author_email, "author_url": c.author_url, "content": c.content,
         "ip": c.ip, "user_agent": c.user_agent, "referer": c.referer,
         "status": c.status.value, "spam_score": c.spam_score, "reasons": c.reasons or [],
         "model_version": c.model_version,
         "decided_by": c.decided_by.value if c.decided_by else None,
         "label": c.label.value if c.label else None,
         "created_at": c.created_at.isoformat(),
         "decided_at": c.decided_at.isoformat() if c.decided_at else None,
         "history": _history(session, c.id)}
        for c in comments
    ]
    session.add(AdminEvent(actor="cli", action="commenter.export",
                           details=_audit_details(email, comments)))
    session.commit()
    return {"email": email.strip().lower() if email else None, "comments": exported}


def erase(session: Session, email: str | None = None, *, ids: Iterable[int] = (),
          secrets: Iterable[str] = ()) -> int:
    """Delete a commenter's comments and their history, and blank their name, URL and text
    in the webhook deliveries that carried them; returns how many comments."""
    comments = _requested(session, email, ids, secrets)
    found = [c.id for c in comments]
    if found:
        for delivery in session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.comment_id.in_(found))):
            data = dict(delivery.payload.get("data") or {})
            data.update({key: None for key in ERASED_PAYLOAD_FIELDS if key in data})
            delivery.payload = {**delivery.payload, "data": data, "erased": True}
        session.execute(delete(CommentEvent).where(CommentEvent.comment_id.in_(found)))
        session.execute(
            update(Comment).where(Comment.parent_id.in_(found)).values(parent_id=None)
            .execution_options(synchronize_session=False)
        )
        session.execute(delete(Comment).where(Comment.id.in_(found))
                        .execution_options(synchronize_session=False))
        caching.changed(session, {c.post for c in comments})
    session.add(AdminEvent(actor="cli", action="commenter.erase",
                           details=_audit_details(email, comments)))
    session.commit()
    return len(found)
