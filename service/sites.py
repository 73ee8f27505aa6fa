"""Sites of the Akismet-compatible API: their keys, and the spam/ham they report.

A key is shown once when the site is created; only its SHA-256 is stored. What a site reports
with submit-spam / submit-ham becomes a labelled comment (training data) that is never shown:
status `spam` or `rejected`, so neither the public listing nor the moderators' queue sees it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db import Comment, CommentEvent, CommentStatus, DecidedBy, Label, Site
from service.db.moderators import hash_token
from service.db.types import utcnow

# Posts of reported comments are "akismet:" + the permalink (or the blog), cut to the column.
SUBMISSION_POST_PREFIX = "akismet:"
POST_LENGTH = 200

_STATUS_OF_LABEL = {Label.SPAM: CommentStatus.SPAM, Label.HAM: CommentStatus.REJECTED}


def new_key() -> str:
    """A fresh API key: 128 random bits as hex, which every Akismet client accepts as is."""
    return secrets.token_hex(16)


def check_url(url: str) -> str:
    """``url`` stripped, or ValueError if it is not an absolute http(s) URL."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2048:
        raise ValueError("the blog URL must be an absolute http:// or https:// URL")
    return url


def create_site(session: Session, url: str) -> tuple[Site, str]:
    """Add a site (not committed); returns it and its key, which is not stored in clear."""
    key = new_key()
    site = Site(url=check_url(url), key_hash=hash_token(key), active=True)
    session.add(site)
    session.flush()
    return site, key


def find_site(session: Session, key: str) -> Site | None:
    """The active site whose key is ``key``, if any."""
    if not key:
        return None
    return session.scalar(
        select(Site).where(Site.key_hash == hash_token(key), Site.active.is_(True))
    )


def revoke_site(session: Session, site_id: int) -> Site | None:
    """Deactivate a site's key (not committed); None if there is no such site."""
    site = session.get(Site, site_id)
    if site is not None:
        site.active = False
    return site


def submission_post(permalink: str | None, blog: str) -> str:
    """The post a reported comment is filed under."""
    return (SUBMISSION_POST_PREFIX + (permalink or blog))[:POST_LENGTH]


def record_submission(session: Session, site: Site, fields: Mapping[str, str | None],
                      label: Label) -> Comment:
    """Store a comment a site reported as spam or ham as training data (not committed).

    The same comment reported again (a blog toggling spam / not spam) is relabelled, not
    stored twice. ``fields`` are the Comment columns: post, author_name, author_email,
    author_url, content, ip, user_agent, referer."""
    status = _STATUS_OF_LABEL[label]
    comment = session.scalar(
        select(Comment).where(
            Comment.post == fields["post"],
            Comment.content == fields["content"],
            Comment.author_name == fields["author_name"],
            Comment.author_email.is_(None) if fields.get("author_email") is None
            else Comment.author_email == fields["author_email"],
            Comment.ip.is_(None) if fields.get("ip") is None else Comment.ip == fields["ip"],
        ).order_by(Comment.id).limit(1)
    )
    now = utcnow()
    from_status = comment.status if comment is not None else None
    if comment is None:
        comment = Comment(**fields, created_at=now)
        session.add(comment)
    comment.status, comment.label = status, label
    comment.decided_by, comment.decided_at = DecidedBy.MODERATOR, now
    session.flush()
    session.add(CommentEvent(
        comment_id=comment.id, actor=f"site:{site.id}", action=f"submit-{label.value}",
        from_status=from_status, to_status=status, created_at=now,
    ))
    return comment
