"""What every importer yields: one `Record` per comment of the old system (or a `Skipped`
saying why one was left out), in this service's terms, plus the helpers they share."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import urlsplit
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException

from service.db.comments import CommentStatus, Label
from service.errors import ImportFileError
from service.schemas import normalise

# The columns' sizes (service/db/comments.py): longer values are cut, not refused.
POST_CHARS = 200
NAME_CHARS = 100
EMAIL_CHARS = 254
URL_CHARS = 2048
EXTERNAL_ID_CHARS = 255
# A comment whose author left no name (Isso and Remark42 allow it).
ANONYMOUS = "Anonymous"


@dataclass(frozen=True, slots=True)
class Record:
    """One comment as the old system kept it, mapped to our status and training label."""

    external_id: str
    post: str
    author_name: str
    content: str
    created_at: datetime
    status: CommentStatus
    # Only a human decision gives one: approved → ham, spam → spam; held and deleted: None.
    label: Label | None
    origin: str = ""
    external_parent: str | None = None
    author_email: str | None = None
    author_url: str | None = None
    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A comment of the file that is not imported, and why (a pingback, a broken date...)."""

    external_id: str
    reason: str


def text_or_none(value: str | None, limit: int) -> str | None:
    """``value`` normalised and cut to ``limit`` characters; None if empty."""
    if value is None:
        return None
    value = normalise(value)
    return value[:limit] or None


def author(value: str | None) -> str:
    """The author's name for the column (never empty)."""
    return text_or_none(value, NAME_CHARS) or ANONYMOUS


def email(value: str | None) -> str | None:
    """A plausible e-mail address, lowercased (as the API stores them), else None."""
    value = text_or_none(value, EMAIL_CHARS + 1)
    if value is None or len(value) > EMAIL_CHARS or "@" not in value or " " in value:
        return None
    return value.lower()


def web_url(value: str | None) -> str | None:
    """An absolute http(s) URL (the only kind the API accepts), else None."""
    value = text_or_none(value, URL_CHARS + 1)
    if value is None or len(value) > URL_CHARS:
        return None
    parts = urlsplit(value)
    return value if parts.scheme in ("http", "https") and parts.netloc else None


def ip_address(value: str | None) -> str | None:
    """A valid IPv4 or IPv6 address as text, else None (Remark42 keeps only a hash)."""
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def post_of_url(url: str) -> str:
    """The post a comment of the page at ``url`` belongs to: its path without the surrounding
    slashes (what the widget sends as ``data-post``), or the host for a site's front page."""
    parts = urlsplit(url.strip())
    path = parts.path.strip("/")
    return (path or parts.netloc or url.strip() or "index")[:POST_CHARS]


def post_of(value: str) -> str:
    """A slug or path as the column holds it (surrounding slashes dropped, cut to size)."""
    return normalise(value).strip("/")[:POST_CHARS]


def external_id(value: str) -> str:
    """An id of the old system, cut to the column (ids are short in every known format)."""
    return value.strip()[:EXTERNAL_ID_CHARS]


# Go writes up to nine fractional digits; Python reads at most six.
_FRACTION = re.compile(r"(\.\d{6})\d+")


def iso_datetime(value: str) -> datetime:
    """An ISO 8601 / RFC 3339 time as UTC (no zone means UTC); ValueError if it is not one."""
    value = _FRACTION.sub(r"\1", value.strip())
    when = datetime.fromisoformat(value.replace(" ", "T", 1) if "T" not in value else value)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def epoch_datetime(value: float) -> datetime:
    """Seconds since 1970 as a UTC time."""
    return datetime.fromtimestamp(float(value), UTC)


class _TextOf(HTMLParser):
    """The text of an HTML fragment, a link's address kept beside its text (a spam signal)."""

    BREAKS = frozenset({"p", "br", "div", "li", "blockquote", "pre", "tr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BREAKS:
            self.parts.append("\n")
        if tag == "a":
            self.links.append(dict(attrs).get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.links:
            href = self.links.pop()
            if href and href not in "".join(self.parts[-3:]):
                self.parts.append(f" ({href})")
        elif tag in self.BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML comment (Disqus and Remark42 keep rendered HTML)."""
    parser = _TextOf()
    parser.feed(fragment)
    parser.close()
    text = "".join(parser.parts)
    lines = "\n".join(line.strip() for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", lines).strip()


def content(value: str | None) -> str:
    """The comment's text as stored (normalised; may be empty for a deleted comment)."""
    return normalise(value or "")


def file_error(path: object, what: str) -> ImportFileError:
    """The one-line error for a file that cannot be imported."""
    return ImportFileError(f"{path}: {what}")


@contextmanager
def xml_file_errors(path: object) -> Iterator[None]:
    """An XML export that cannot be read, as one line: broken XML, a refused construct (an
    entity bomb), or the file system's error."""
    try:
        yield
    except ParseError as error:
        raise file_error(path, f"not well-formed XML ({error})") from None
    except DefusedXmlException as error:
        raise file_error(path, f"refused: {error}") from None
    except OSError as error:
        raise file_error(path, error.strerror or str(error)) from None
