"""Disqus's XML export (Moderation → Export): ``<disqus>`` holding ``<category>``, then
``<thread dsq:id>`` (the page: ``<link>``, ``<forum>``), then ``<post dsq:id>`` (a comment:
``<message>`` in HTML, ``<createdAt>``, ``<author>`` with ``<name>`` / ``<email>``,
``<ipAddress>``, ``<thread dsq:id>``, ``<parent dsq:id>`` for a reply, ``<isDeleted>``,
``<isSpam>`` and, in some exports, ``<isApproved>``). Read as a stream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import Element

from defusedxml.ElementTree import iterparse

from service.db.comments import CommentStatus, Label
from service.importers.records import (
    Record,
    Skipped,
    author,
    email,
    external_id,
    file_error,
    html_to_text,
    ip_address,
    iso_datetime,
    post_of_url,
    text_or_none,
    xml_file_errors,
)

SOURCE = "disqus"
NAMESPACE = "{http://disqus.com}"
DSQ_ID = "{http://disqus.com/disqus-internals}id"


def _child(element: Element, *path: str) -> str:
    found = element.find("/".join(NAMESPACE + p for p in path))
    return (found.text or "").strip() if found is not None else ""


def _flag(element: Element, name: str) -> bool | None:
    value = _child(element, name).lower()
    return None if not value else value == "true"


def _ref(element: Element, name: str) -> str | None:
    found = element.find(NAMESPACE + name)
    return found.get(DSQ_ID) if found is not None else None


def _record(post: Element, threads: dict[str, str], origin: str) -> Record | Skipped:
    ident = external_id(post.get(DSQ_ID) or _child(post, "id"))
    if not ident:
        return Skipped("?", "no dsq:id")
    thread = _ref(post, "thread")
    if thread not in threads:
        return Skipped(ident, "its thread is not in the file")
    try:
        created_at = iso_datetime(_child(post, "createdAt"))
    except ValueError:
        return Skipped(ident, f"date {_child(post, 'createdAt')!r}")
    if _flag(post, "isSpam"):
        status, label = CommentStatus.SPAM, Label.SPAM
    elif _flag(post, "isDeleted"):
        status, label = CommentStatus.REJECTED, None
    elif _flag(post, "isApproved") is False:
        status, label = CommentStatus.HELD, None
    else:
        status, label = CommentStatus.PUBLISHED, Label.HAM
    return Record(
        external_id=ident, origin=origin, post=threads[thread],
        external_parent=_ref(post, "parent") or None,
        author_name=author(_child(post, "author", "name")),
        author_email=email(_child(post, "author", "email")),
        ip=ip_address(_child(post, "ipAddress")),
        content=html_to_text(_child(post, "message")),
        created_at=created_at, status=status, label=label,
    )


def read(path: Path) -> Iterator[Record | Skipped]:
    """Every comment (``<post>``) of the Disqus export at ``path``, in file order."""
    threads: dict[str, str] = {}
    origin = ""
    root: Element | None = None
    depth = 0
    with xml_file_errors(path):
        for event, element in iterparse(str(path), events=("start", "end")):
            if event == "start":
                if root is None:
                    if element.tag != NAMESPACE + "disqus":
                        raise file_error(path, "not a Disqus export (root "
                                         f"<{element.tag.rsplit('}', 1)[-1]}>, not <disqus>)")
                    root = element
                depth += 1
                continue
            depth -= 1
            if depth != 1 or root is None:
                continue
            if element.tag == NAMESPACE + "thread":
                ident = element.get(DSQ_ID)
                if ident:
                    threads[ident] = post_of_url(_child(element, "link") or _child(element, "id"))
                origin = origin or text_or_none(_child(element, "forum"), 255) or ""
            elif element.tag == NAMESPACE + "post":
                origin = origin or text_or_none(_child(element, "forum"), 255) or ""
                yield _record(element, threads, origin)
            root.remove(element)  # what was read is forgotten: memory stays flat
    if root is None:
        raise file_error(path, "not a Disqus export (empty)")
