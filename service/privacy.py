"""Readers' data: IP addresses anonymised after a retention period (as Isso does, to the
/24 network), and a commenter's data exported or erased on request. No Flask here: the worker
runs the anonymiser, the CLI runs export and erase."""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from service.db import AdminEvent, Comment, CommentEvent
from service.db.types import utcnow

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
    """Anonymise the IPs of comments older than ``days``; returns how many changed."""
    cutoff = utcnow() - timedelta(days=days)
    changed = 0
    rows = session.scalars(
        select(Comment).where(Comment.created_at < cutoff, Comment.ip.is_not(None))
    )
    for comment in rows:
        anonymous = anonymise_ip(comment.ip or "")
        if anonymous != comment.ip:
            comment.ip = anonymous
            changed += 1
    session.commit()
    return changed


def _email_digest(email: str) -> str:
    # The audit trail records that a request was served, not whose address it was.
    return hashlib.sha256(email.encode()).hexdigest()[:16]


def export(session: Session, email: str) -> dict[str, Any]:
    """Everything stored about the commenter with this e-mail (a data access request)."""
    email = email.strip().lower()
    comments = session.scalars(
        select(Comment).where(Comment.author_email == email).order_by(Comment.id)
    ).all()
    session.add(AdminEvent(actor="cli", action="commenter.export",
                           details={"email_sha256": _email_digest(email),
                                    "comments": len(comments)}))
    session.commit()
    return {
        "email": email,
        "comments": [
            {"id": c.id, "post": c.post, "author_name": c.author_name,
             "author_url": c.author_url, "content": c.content, "ip": c.ip,
             "user_agent": c.user_agent, "referer": c.referer, "status": c.status.value,
             "created_at": c.created_at.isoformat(),
             "decided_at": c.decided_at.isoformat() if c.decided_at else None}
            for c in comments
        ],
    }


def erase(session: Session, email: str) -> int:
    """Delete every comment by this e-mail and their history; returns how many."""
    email = email.strip().lower()
    ids = list(session.scalars(select(Comment.id).where(Comment.author_email == email)))
    if ids:
        session.execute(delete(CommentEvent).where(CommentEvent.comment_id.in_(ids)))
        session.execute(
            update(Comment).where(Comment.parent_id.in_(ids)).values(parent_id=None)
            .execution_options(synchronize_session=False)
        )
        session.execute(delete(Comment).where(Comment.id.in_(ids)))
    session.add(AdminEvent(actor="cli", action="commenter.erase",
                           details={"email_sha256": _email_digest(email), "comments": len(ids)}))
    session.commit()
    return len(ids)
