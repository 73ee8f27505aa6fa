"""Sites of the Akismet-compatible API: their keys, their checks and the spam/ham they report.

A key is shown once when the site is created; only its SHA-256 is stored. Every comment-check
is stored as a comment (``akismet_checks`` links it to its site and its guid) and scored by the
same pipeline as the widget's comments. submit-spam / submit-ham relabel the comment of that
check, found by the guid or else by the comment's fingerprint, within the same site only; a
report nobody checked becomes a labelled comment (training data) that is never shown: status
``spam`` or ``rejected``, so neither the public listing nor the moderators' queue sees it.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from service import caching
from service.db import AkismetCheck, Comment, CommentEvent, CommentStatus, DecidedBy, Label, Site
from service.db.moderators import hash_token
from service.db.types import utcnow

# Posts of reported comments are "akismet:" + the permalink (or the blog), cut to the column.
SUBMISSION_POST_PREFIX = "akismet:"
POST_LENGTH = 200

# A report nobody checked is training data only: never shown (see the module docstring).
_STATUS_OF_LABEL = {Label.SPAM: CommentStatus.SPAM, Label.HAM: CommentStatus.REJECTED}
# A report on a comment we checked is the blog's moderator deciding it: shown as they decided.
_STATUS_OF_CHECKED = {Label.SPAM: CommentStatus.SPAM, Label.HAM: CommentStatus.PUBLISHED}
# Akismet's WordPress plugin calls any key that is not 12 characters "invalid" without asking,
# and its settings form strips everything but [a-f0-9]: 12 lowercase hex digits, 48 bits.
# Guessing is slowed by the API's limit on failed key checks per IP.
KEY_BYTES = 6


def new_key() -> str:
    """A fresh API key: 48 random bits as 12 lowercase hex digits (what WordPress accepts)."""
    return secrets.token_hex(KEY_BYTES)


def _host(url: str) -> str:
    host = (urlsplit(url.strip()).hostname or "").lower().rstrip(".")
    return host.removeprefix("www.")


def blog_matches(site: Site, blog: str) -> bool:
    """Whether ``blog`` (the URL a client sends) is the site's: same host name, "www." aside;
    the scheme, port and path may differ (http/https, a blog in a sub-folder)."""
    return bool(_host(blog)) and _host(blog) == _host(site.url)


def fingerprint(fields: Mapping[str, Any]) -> str:
    """A hash of what a blog knows of a comment (content, author, e-mail, IP): a recheck or a
    submission without our guid finds its check by it, and so does an import of the blog's
    export (which may differ in surrounding white space and the e-mail's case)."""
    parts = [(fields.get(name) or "").strip() for name in ("content", "author_name", "ip")]
    parts.insert(2, (fields.get("author_email") or "").strip().lower())
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def status_of_label(label: Label) -> CommentStatus:
    """The status of a checked comment once its blog's moderators decided it (a report, or
    their decision brought by an import): shown as they decided."""
    return _STATUS_OF_CHECKED[label]


def record_check(session: Session, site: Site, fields: Mapping[str, Any],
                 signals: Mapping[str, Any], verdict: Mapping[str, Any] | None = None,
                 ) -> tuple[Comment, AkismetCheck]:
    """Store a checked comment (pending, or decided by ``verdict``: status, decided_by,
    reasons) and its check (not committed)."""
    now = utcnow()
    comment = Comment(**fields, status=CommentStatus.PENDING, created_at=now, site_id=site.id)
    if verdict is not None:
        comment.status, comment.decided_by = verdict["status"], verdict["decided_by"]
        comment.reasons, comment.decided_at = verdict["reasons"], now
    session.add(comment)
    session.flush()
    if verdict is not None:
        session.add(CommentEvent(
            comment_id=comment.id, actor=str(verdict["decided_by"]), action="bot-trap",
            from_status=CommentStatus.PENDING, to_status=comment.status,
            note="; ".join(verdict["reasons"]), created_at=now))
    check = AkismetCheck(site_id=site.id, comment_id=comment.id, guid=str(uuid.uuid4()),
                         fingerprint=fingerprint(fields), signals=dict(signals),
                         created_at=now)
    session.add(check)
    session.flush()
    return comment, check


def find_check(session: Session, site: Site, guid: str | None,
               fields: Mapping[str, Any]) -> AkismetCheck | None:
    """The site's check with this guid, else its latest check of the same comment; never
    another site's."""
    if guid:
        check = session.scalar(select(AkismetCheck).where(
            AkismetCheck.guid == guid, AkismetCheck.site_id == site.id))
        if check is not None:
            return check
    return session.scalar(
        select(AkismetCheck).where(AkismetCheck.site_id == site.id,
                                   AkismetCheck.fingerprint == fingerprint(fields))
        .order_by(AkismetCheck.id.desc()).limit(1))


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


def record_submission(session: Session, site: Site, fields: Mapping[str, Any],
                      label: Label, guid: str | None = None,
                      reporter: str | None = None) -> Comment:
    """Label what a site reported as spam or ham (not committed).

    The comment of the site's check (by ``guid``, else by fingerprint) is relabelled; a
    report nobody checked is stored once as training data, and reported again (a blog
    toggling spam / not spam) relabelled, not stored twice. Another site's rows are never
    touched. ``fields`` are the Comment columns: post, author_name, author_email,
    author_url, content, ip, user_agent, referer."""
    check = find_check(session, site, guid, fields)
    now = utcnow()
    comment = session.get(Comment, check.comment_id) if check is not None else None
    from_status = comment.status if comment is not None else None
    if comment is None:
        comment = Comment(**fields, created_at=now, site_id=site.id)
        session.add(comment)
        session.flush()
        session.add(AkismetCheck(site_id=site.id, comment_id=comment.id,
                                 guid=str(uuid.uuid4()), fingerprint=fingerprint(fields),
                                 signals={"reported_unchecked": True}, created_at=now))
        status = _STATUS_OF_LABEL[label]
    elif check is not None and check.signals.get("reported_unchecked"):
        status = _STATUS_OF_LABEL[label]
    else:
        status = _STATUS_OF_CHECKED[label]
    comment.status, comment.label = status, label
    comment.decided_by, comment.decided_at = DecidedBy.MODERATOR, now
    if CommentStatus.PUBLISHED in (from_status, status):
        caching.changed(session, [comment.post])
    session.flush()
    session.add(CommentEvent(
        comment_id=comment.id, actor=f"site:{site.id}", action=f"submit-{label.value}",
        from_status=from_status, to_status=status, created_at=now,
        note=f"reported by {reporter}"[:2000] if reporter else None,
    ))
    return comment
