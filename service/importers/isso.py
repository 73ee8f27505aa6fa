"""Isso's SQLite database (the file its ``[general] dbpath`` names), read as is, read-only.

``threads`` (id, uri, title) are the pages; ``comments`` (tid, id, parent, created as epoch
seconds, mode, remote_addr, text, author, email, website...) their comments. ``mode``: 1
accepted, 2 waiting for moderation, 4 deleted (kept, blanked, because it has replies).
Isso flattens threads to one level: a reply's ``parent`` is a top-level comment."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

from service.db.comments import CommentStatus, Label
from service.importers.records import (
    Record,
    Skipped,
    author,
    content,
    email,
    epoch_datetime,
    file_error,
    ip_address,
    post_of_url,
    web_url,
)

SOURCE = "isso"
STATUSES: dict[int, tuple[CommentStatus, Label | None]] = {
    1: (CommentStatus.PUBLISHED, Label.HAM),
    2: (CommentStatus.HELD, None),
    4: (CommentStatus.REJECTED, None),
}
_QUERY = """
SELECT c.id, c.parent, c.created, c.mode, c.remote_addr, c.text, c.author, c.email,
       c.website, t.uri, p.created
FROM comments AS c JOIN threads AS t ON t.id = c.tid
LEFT JOIN comments AS p ON p.id = c.parent
ORDER BY c.id
"""


def _key(ident: object, created: object) -> str:
    """Isso's ids are per database: with the creation time to the microsecond, two blogs'
    databases cannot give the same key."""
    return f"{int(str(ident))}@{float(str(created)):.6f}"


def read(path: Path) -> Iterator[Record | Skipped]:
    """Every comment of the Isso database at ``path``, oldest id first."""
    if not path.is_file():
        raise file_error(path, "no such file")
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as error:
        raise file_error(path, f"cannot open it as SQLite ({error})") from None
    try:
        try:
            rows = connection.execute(_QUERY)
        except sqlite3.DatabaseError as error:
            raise file_error(path, f"not an Isso database ({error})") from None
        while True:
            try:
                row = rows.fetchone()
            except sqlite3.DatabaseError as error:
                raise file_error(path, f"unreadable ({error})") from None
            if row is None:
                return
            (ident, parent, created, mode, remote_addr, text, name, mail, website, uri,
             parent_created) = row
            try:
                key = _key(ident, created)
                created_at = epoch_datetime(created)
            except (TypeError, ValueError, OverflowError, OSError):
                yield Skipped(str(ident), f"created {created!r}")
                continue
            if mode not in STATUSES:
                yield Skipped(key, f"mode {mode!r}")
                continue
            status, label = STATUSES[mode]
            yield Record(
                external_id=key, post=post_of_url(uri or ""),
                external_parent=(_key(parent, parent_created)
                                 if parent is not None and parent_created is not None
                                 else None),
                author_name=author(name), author_email=email(mail),
                author_url=web_url(website), ip=ip_address(remote_addr),
                content=content(text), created_at=created_at, status=status, label=label,
            )
    finally:
        connection.close()
