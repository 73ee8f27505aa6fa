"""Writing imported records: in batches (each committed, so a long import never holds the
database for long and the web keeps answering), each comment once (its external id is
unique per source and origin), with an audit row, parents linked at the end.

Nothing here asks for scoring or sends webhooks: an imported comment already has its
status, decided by the blog's moderators (or still held for ours), and its label is final.

A comment the service already saw through the Akismet API (a check of the same site with the
same content, author, e-mail and IP) is not stored twice: the import links it to that row,
and the blog's moderators' decision (approved, spam) becomes the check's label when nobody
labelled it yet and it differs from ours, so approving a held comment in WordPress teaches
like a "Not Spam" (a comment the blog published because we did is no lesson)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from service import caching
from service.db import AkismetCheck, Comment, CommentEvent, CommentImport, DecidedBy
from service.db.types import utcnow
from service.importers.records import Record, Skipped
from service.sites import fingerprint, status_of_label

# Comments per transaction: big enough to be quick, small enough that SQLite's single writer
# (the web's submissions) waits a few milliseconds at most.
BATCH_SIZE = 500
ACTOR = "import"

T = TypeVar("T")


@dataclass
class ImportCounts:
    """What an import read, stored, found already stored and left out."""

    read: int = 0
    imported: int = 0
    already: int = 0
    # Seen before through the Akismet API: linked to that check, not stored again ...
    checked: int = 0
    # ... and of those, how many the blog's decision labelled.
    relabelled: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    labels: Counter[str] = field(default_factory=Counter)
    linked: int = 0
    orphans: int = 0


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size``; if reading fails, the items read before the failure
    come out first, then the error."""
    batch: list[T] = []
    try:
        for item in items:
            batch.append(item)
            if len(batch) == size:
                yield batch
                batch = []
    except Exception:
        if batch:
            yield batch
        raise
    if batch:
        yield batch


def _store_batch(session: Session, source: str, site_id: int | None,
                 batch: list[Record | Skipped], counts: ImportCounts) -> None:
    records: list[Record] = []
    for item in batch:
        counts.read += 1
        if isinstance(item, Skipped):
            counts.skipped[item.reason] += 1
        else:
            records.append(item)
    if not records:
        return
    stored: set[tuple[str, str]] = {
        (origin, ident) for origin, ident in session.execute(
            select(CommentImport.origin, CommentImport.external_id).where(
                CommentImport.source == source,
                CommentImport.external_id.in_({r.external_id for r in records})))
    }
    fresh: list[Record] = []
    for record in records:
        key = (record.origin, record.external_id)
        if key in stored:
            counts.already += 1
        else:
            stored.add(key)  # the same id twice in one file is stored once
            fresh.append(record)
    if site_id is not None:
        fresh = _link_checks(session, source, site_id, fresh, counts)
    if not fresh:
        return
    comments = [
        Comment(post=r.post, author_name=r.author_name, author_email=r.author_email,
                author_url=r.author_url, content=r.content, ip=r.ip, user_agent=r.user_agent,
                status=r.status, label=r.label, decided_by=DecidedBy.IMPORT,
                created_at=r.created_at, decided_at=r.created_at, site_id=site_id)
        for r in fresh
    ]
    session.add_all(comments)
    session.flush()
    now = utcnow()
    session.execute(insert(CommentImport), [
        {"comment_id": c.id, "source": source, "origin": r.origin, "external_id": r.external_id,
         "external_parent": r.external_parent, "imported_at": now}
        for c, r in zip(comments, fresh, strict=True)
    ])
    session.execute(insert(CommentEvent), [
        {"comment_id": c.id, "actor": ACTOR, "action": f"import-{source}", "from_status": None,
         "to_status": c.status, "note": f"{source} id {r.external_id}", "created_at": now}
        for c, r in zip(comments, fresh, strict=True)
    ])
    counts.imported += len(fresh)
    caching.changed_every_post(session)
    counts.statuses.update(str(r.status) for r in fresh)
    counts.labels.update(str(r.label) for r in fresh if r.label is not None)


def _columns(record: Record) -> dict[str, str | None]:
    return {"content": record.content, "author_name": record.author_name,
            "author_email": record.author_email, "ip": record.ip}


def _link_checks(session: Session, source: str, site_id: int, records: list[Record],
                 counts: ImportCounts) -> list[Record]:
    """Link the records the site's Akismet checks already hold to those rows (labelling
    them with the blog's decision if unlabelled); returns the others, to be stored."""
    prints = {fingerprint(_columns(r)): r for r in records}
    checks = dict(session.execute(
        select(AkismetCheck.fingerprint, AkismetCheck.comment_id).where(
            AkismetCheck.site_id == site_id, AkismetCheck.fingerprint.in_(prints))).all())
    if not checks:
        return records
    now = utcnow()
    seen: set[int] = set()
    for print_, record in prints.items():
        comment_id = checks.get(print_)
        if comment_id is None or comment_id in seen:
            continue
        seen.add(comment_id)
        counts.checked += 1
        session.add(CommentImport(comment_id=comment_id, source=source, origin=record.origin,
                                  external_id=record.external_id,
                                  external_parent=record.external_parent, imported_at=now))
        comment = session.get(Comment, comment_id)
        if comment is None or comment.label is not None or record.label is None:
            continue
        if status_of_label(record.label) == comment.status:
            # The blog did as we said (it publishes what the check answered): our own
            # decision, not a human's; training on it would teach the model itself.
            continue
        from_status = comment.status
        comment.label, comment.status = record.label, status_of_label(record.label)
        comment.decided_by, comment.decided_at = DecidedBy.IMPORT, now
        session.add(CommentEvent(comment_id=comment_id, actor=ACTOR, action=f"import-{source}",
                                 from_status=from_status, to_status=comment.status,
                                 note=f"decided on the blog ({source} id {record.external_id})",
                                 created_at=now))
        counts.relabelled += 1
        caching.changed(session, [comment.post])
        counts.labels[str(record.label)] += 1
    linked = {id(prints[p]) for p, c in checks.items() if c in seen}
    return [r for r in records if id(r) not in linked]


def link_parents(session: Session, source: str) -> tuple[int, int]:
    """Point every imported reply of ``source`` still without a parent at its parent's new
    id, when the parent was imported too (in this run or an earlier one). Returns (replies
    linked now, replies whose parent is not there: shown as top-level comments)."""
    child, parent = CommentImport.__table__.alias("child"), CommentImport.__table__.alias("parent")
    parent_id = (
        select(parent.c.comment_id)
        .select_from(child.join(parent, and_(
            parent.c.source == child.c.source, parent.c.origin == child.c.origin,
            parent.c.external_id == child.c.external_parent)))
        .where(child.c.comment_id == Comment.id)
        .scalar_subquery()
    )
    replies = select(CommentImport.comment_id).where(
        CommentImport.source == source, CommentImport.external_parent.is_not(None))
    caching.changed_every_post(session)
    result = session.execute(
        update(Comment)
        .where(Comment.parent_id.is_(None), Comment.id.in_(replies), parent_id.is_not(None))
        .values(parent_id=parent_id)
        .execution_options(synchronize_session=False)
    )
    orphans = session.scalar(
        select(func.count()).select_from(Comment)
        .where(Comment.parent_id.is_(None), Comment.id.in_(replies))
    )
    return result.rowcount, orphans or 0  # type: ignore[attr-defined]


def store(sessions: sessionmaker, source: str, records: Iterable[Record | Skipped], *,
          site_id: int | None = None, batch_size: int = BATCH_SIZE,
          progress: Callable[[ImportCounts], None] | None = None,
          counts: ImportCounts | None = None) -> ImportCounts:
    """Store ``records`` of ``source`` (a format name) for ``site_id``, counting into
    ``counts``; ``progress`` is called after each batch. A reader's error (a malformed file)
    propagates once the batches before it are committed and their replies linked:
    importing again resumes."""
    counts = counts if counts is not None else ImportCounts()
    try:
        for batch in _batches(records, batch_size):
            with sessions() as session:
                _store_batch(session, source, site_id, batch, counts)
                session.commit()
            if progress is not None:
                progress(counts)
    finally:
        with sessions() as session:
            counts.linked, counts.orphans = link_parents(session, source)
            session.commit()
    return counts
