"""WordPress's export (WXR: RSS 2.0 with ``wp:`` elements, Tools → Export or ``wp export``).

Each ``<item>`` (post, page...) carries its slug (``wp:post_name``) and then its
``<wp:comment>`` elements: ``wp:comment_id``, ``wp:comment_parent`` (0: none),
``wp:comment_author`` / ``_email`` / ``_url`` / ``_IP``, ``wp:comment_date_gmt`` (and the
blog's local ``wp:comment_date``), ``wp:comment_content``, ``wp:comment_approved`` and
``wp:comment_type``. Read as a stream: memory stays flat however large the blog.

WordPress's own exporter leaves spam out (it selects ``comment_approved <> 'spam'``); files
from other exporters may have it, and it is read when present.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element

from defusedxml.ElementTree import iterparse

from service.db.comments import CommentStatus, Label
from service.importers.records import (
    Record,
    Skipped,
    author,
    content,
    email,
    external_id,
    file_error,
    ip_address,
    iso_datetime,
    post_of,
    text_or_none,
    web_url,
    xml_file_errors,
)

SOURCE = "wxr"
# wp:comment_approved → (status, label). Trash (and the comments of a trashed post) was
# removed by someone for a reason the file does not give: kept, so its replies keep their
# parent, but never shown and never a training label.
STATUSES: dict[str, tuple[CommentStatus, Label | None]] = {
    "1": (CommentStatus.PUBLISHED, Label.HAM),
    "0": (CommentStatus.HELD, None),
    "spam": (CommentStatus.SPAM, Label.SPAM),
    "trash": (CommentStatus.REJECTED, None),
    "post-trashed": (CommentStatus.REJECTED, None),
}
# Readers' comments (WooCommerce's product reviews are readers' comments too); pingbacks and
# trackbacks are machine-made notices, not what the model scores.
COMMENT_TYPES = frozenset({"", "comment", "review"})
_WP_NAMESPACE = re.compile(r"^\{http://wordpress\.org/export/\d+\.\d+/\}")
_NO_DATE = "0000-00-00 00:00:00"


def _local(tag: str) -> tuple[bool, str]:
    """(is it a wp: element, its local name)."""
    if _WP_NAMESPACE.match(tag):
        return True, tag.split("}", 1)[1]
    return False, tag.rsplit("}", 1)[-1]


def _record(fields: dict[str, str], post: str, origin: str) -> Record | Skipped:
    ident = external_id(fields.get("comment_id", ""))
    if not ident:
        return Skipped("?", "no wp:comment_id")
    kind = fields.get("comment_type", "").strip()
    if kind not in COMMENT_TYPES:
        return Skipped(ident, kind)
    approved = fields.get("comment_approved", "").strip()
    if approved not in STATUSES:
        return Skipped(ident, f"comment_approved {approved!r}")
    status, label = STATUSES[approved]
    date = fields.get("comment_date_gmt", "").strip()
    if not date or date == _NO_DATE:
        date = fields.get("comment_date", "").strip()  # the blog's local time: read as UTC
    try:
        created_at = iso_datetime(date)
    except ValueError:
        return Skipped(ident, f"date {date!r}")
    parent = fields.get("comment_parent", "").strip()
    return Record(
        external_id=ident, origin=origin, post=post,
        external_parent=parent if parent not in ("", "0") else None,
        author_name=author(fields.get("comment_author")),
        author_email=email(fields.get("comment_author_email")),
        author_url=web_url(fields.get("comment_author_url")),
        ip=ip_address(fields.get("comment_author_IP")),
        content=content(fields.get("comment_content")),
        created_at=created_at, status=status, label=label,
    )


def read(path: Path) -> Iterator[Record | Skipped]:
    """Every comment of the WXR file at ``path``, in file order."""
    origin = ""
    post = ""
    item: dict[str, str] = {}
    comment: dict[str, str] | None = None
    parents: list[Element] = []
    wordpress = False
    with xml_file_errors(path):
        for event, element in iterparse(str(path), events=("start", "end")):
            is_wp, name = _local(element.tag)
            if event == "start":
                if not parents and name != "rss":
                    raise file_error(path, f"not a WordPress export (root <{name}>, not <rss>)")
                parents.append(element)
                if is_wp and name == "comment":
                    comment = {}
                elif name == "item" and not is_wp:
                    item, post = {}, ""
                continue
            parents.pop()
            wordpress = wordpress or is_wp
            if comment is not None:
                if is_wp and name == "comment":
                    if not post:  # the slug; a draft has none: its permalink's path, its id
                        post = (post_of(item.get("post_name", ""))
                                or post_of(urlsplit(item.get("link", "")).path)
                                or f"?p={item.get('post_id', '').strip()}")
                    yield _record(comment, post, origin)
                    comment = None
                    element.clear()
                elif is_wp and name.startswith("comment_"):
                    comment[name] = element.text or ""
                continue
            if parents and _local(parents[-1].tag)[1] == "item":
                if (is_wp and name in ("post_name", "post_id")) or (name == "link" and not is_wp):
                    item[name] = element.text or ""
            elif name == "item" and not is_wp:
                parents[-1].remove(element)  # the channel forgets the posts already read
            elif (not origin and parents and _local(parents[-1].tag)[1] == "channel"
                  and ((is_wp and name == "base_blog_url") or (name == "link" and not is_wp))):
                origin = text_or_none(element.text, 255) or ""
    if not wordpress:
        raise file_error(path, "not a WordPress export (no wp: elements)")
