"""Remark42's backup / export (``backup-SITE-DATE.gz`` or ``/api/v1/admin/export``): JSON
lines, gzipped or not. The first line is the header ``{"version": 1, "users": [...],
"posts": [...]}``; each further line one comment: ``id``, ``pid`` (parent, "" for none),
``text`` (rendered HTML), ``orig`` (what the author typed), ``user`` (``name``, ``id``,
``ip`` — a hash, not an address), ``locator`` (``site``, ``url``), ``time`` (RFC 3339) and
``delete`` for a deleted one. Remark42 has no spam folder and no pre-moderation: a comment is
published or deleted."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from service.db.comments import CommentStatus, Label
from service.importers.records import (
    Record,
    Skipped,
    author,
    content,
    email,
    external_id,
    file_error,
    html_to_text,
    ip_address,
    iso_datetime,
    post_of_url,
    text_or_none,
)

SOURCE = "remark42"
# The versions of the header Remark42 writes and reads (0 is the older, header-less form).
VERSIONS = (0, 1)
_GZIP_MAGIC = b"\x1f\x8b"


def _open(path: Path) -> IO[str]:
    with path.open("rb") as probe:
        gzipped = probe.read(2) == _GZIP_MAGIC
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _record(data: dict[str, Any]) -> Record | Skipped:
    ident = external_id(str(data.get("id") or ""))
    if not ident:
        return Skipped("?", "no id")
    user: dict[str, Any] = data["user"] if isinstance(data.get("user"), dict) else {}
    locator: dict[str, Any] = data["locator"] if isinstance(data.get("locator"), dict) else {}
    try:
        created_at = iso_datetime(str(data.get("time") or ""))
    except ValueError:
        return Skipped(ident, f"time {data.get('time')!r}")
    if data.get("delete"):
        status, label = CommentStatus.REJECTED, None
    else:
        status, label = CommentStatus.PUBLISHED, Label.HAM
    original = data.get("orig")
    text = original if isinstance(original, str) and original.strip() else html_to_text(
        str(data.get("text") or ""))
    return Record(
        external_id=ident, origin=text_or_none(str(locator.get("site") or ""), 255) or "",
        post=post_of_url(str(locator.get("url") or "")),
        external_parent=external_id(str(data.get("pid") or "")) or None,
        author_name=author(str(user.get("name") or "")),
        author_email=email(str(user.get("email") or "")),
        ip=ip_address(str(user.get("ip") or "")),
        content=content(text), created_at=created_at, status=status, label=label,
    )


def read(path: Path) -> Iterator[Record | Skipped]:
    """Every comment of the Remark42 backup at ``path``, in file order."""
    try:
        stream = _open(path)
    except OSError as error:
        raise file_error(path, error.strerror or str(error)) from None
    number = 0
    try:
        with stream:
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                except json.JSONDecodeError as error:
                    raise file_error(path, f"line {number} is not JSON ({error.msg})") from None
                if not isinstance(data, dict):
                    raise file_error(path, f"line {number} is not a JSON object")
                if number == 1 and "id" not in data:
                    if data.get("version") not in VERSIONS:
                        raise file_error(path, "not a Remark42 backup (its header has version "
                                         f"{data.get('version')!r}; {VERSIONS} are read)")
                    continue
                if number == 1 and "locator" not in data:
                    raise file_error(path, "not a Remark42 backup (no version header)")
                yield _record(data)
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise file_error(path, f"unreadable after line {number} ({error})") from None
    if number == 0:
        raise file_error(path, "empty")
