"""What this site has learned from its moderators: a local reputation of domains, e-mail
domains and text fingerprints (like Antispam Bee's local spam database).

Every labelled comment (a moderator's decision, or an imported blog's moderation state) counts
for the keys it carries: the host of the author's website, the hosts linked in its text, its
e-mail domain (not the big free-mail providers: everyone has one) and a fingerprint of its
folded text. A key moderators filed as spam and never approved makes the next comment that
carries it spam, with a reason naming it ("author website cheap-vps.example filed as spam by a
moderator before (2x)"). Hosts readers cite in approved comments and never in spam (arxiv.org,
a university) are the site's trusted hosts: a link to one does not count towards the
link-count hold.

Worker side only: it needs the database. The worker reloads it when a label changed (one
cheap query per batch), not on every comment.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.features import REFERENCE, host_of
from models.text import fold_for_matching, unmask_links
from service.db import Comment, Label
from service.rules import LINK_RE, Hit, hosts_in

# Free-mail providers: an e-mail domain every reader may share says nothing about a comment.
FREE_MAIL = frozenset({
    "gmail.com", "googlemail.com", "yahoo.com", "outlook.com", "hotmail.com", "live.com",
    "icloud.com", "me.com", "aol.com", "proton.me", "protonmail.com", "gmx.net", "gmx.de",
    "web.de", "mail.ru", "yandex.ru", "qq.com", "163.com", "126.com", "fastmail.com",
    "hey.com", "posteo.de", "tuta.io", "zoho.com", "msn.com",
})
# A fingerprint only for texts at least this long: "Thanks!" is no campaign.
MIN_FINGERPRINT_CHARS = 24
# How many of the newest labelled comments are read.
HISTORY_LIMIT = 50_000


def fingerprint(content: str) -> str:
    """A short digest of a comment's folded words (case, spacing, homoglyphs and invisible
    characters do not change it)."""
    words = " ".join(fold_for_matching(content).split())
    return hashlib.sha1(words.encode("utf-8")).hexdigest()[:16]


def keys_of(content: str, author_url: str | None, author_email: str | None
            ) -> list[tuple[str, str]]:
    """The (kind, value) keys a comment carries, each once."""
    keys: list[tuple[str, str]] = []
    site = host_of(fold_for_matching(author_url or ""))
    if site:
        keys.append(("author website", site))
    text = unmask_links(fold_for_matching(content))
    for host in sorted({h.removeprefix("www.") for h in hosts_in(text, None)}):
        if host != site:
            keys.append(("linked site", host))
    domain = (author_email or "").rpartition("@")[2].strip().lower()
    if domain and domain not in FREE_MAIL:
        keys.append(("e-mail domain", domain))
    if len(content.strip()) >= MIN_FINGERPRINT_CHARS:
        keys.append(("text", fingerprint(content)))
    return keys


@dataclass
class Reputation:
    """Counts of spam and ham labels per key."""

    spam: Counter[tuple[str, str]] = field(default_factory=Counter)
    ham: Counter[tuple[str, str]] = field(default_factory=Counter)

    @classmethod
    def from_labels(cls, rows: Iterable[tuple[str, str, str | None, str | None]]
                    ) -> Reputation:
        """From (label, content, author_url, author_email) rows."""
        reputation = cls()
        for label, content, author_url, author_email in rows:
            counter = reputation.spam if label == Label.SPAM else reputation.ham
            counter.update(keys_of(content, author_url, author_email))
        return reputation

    @classmethod
    def load(cls, session: Session) -> Reputation:
        """From the newest labelled comments of the database."""
        rows = session.execute(
            select(Comment.label, Comment.content, Comment.author_url, Comment.author_email)
            .where(Comment.label.is_not(None)).order_by(Comment.id.desc())
            .limit(HISTORY_LIMIT)).all()
        return cls.from_labels((str(r[0]), r[1], r[2], r[3]) for r in rows)

    def hits(self, content: str, author_url: str | None, author_email: str | None
             ) -> list[Hit]:
        """A spam hit for each key moderators filed as spam and never approved. Hosts of
        papers and references (`models.features.REFERENCE`) never count: one spammer's
        citation of arxiv.org must not make every reader's spam."""
        found = []
        for kind, value in keys_of(content, author_url, author_email):
            spam = self.spam[(kind, value)]
            if not spam or self.ham[(kind, value)]:
                continue
            if kind != "text" and REFERENCE.search(value):
                continue
            what = "the same text" if kind == "text" else f"{kind} {value}"
            times = f" ({spam}x)" if spam > 1 else ""
            found.append(Hit("spam", f"{what} filed as spam by a moderator before{times}",
                             value))
        return found

    def trusted_links(self, content: str) -> int:
        """How many links in ``content`` point at hosts this site's readers cited in approved
        comments and never in spam."""
        text = unmask_links(fold_for_matching(content))
        count = 0
        for url in LINK_RE.findall(text):
            host = host_of(url)
            key = ("linked site", host)
            if host and self.ham[key] and not self.spam[key]:
                count += 1
        return count


def label_stamp(session: Session) -> tuple[int, int]:
    """Changes whenever a comment gains, loses or changes a label (a cheap query): how many
    labelled comments there are, and how many of them are spam."""
    total, spam = session.execute(
        select(func.count(Comment.label),
               func.count(Comment.id).filter(Comment.label == Label.SPAM))).one()
    return int(total or 0), int(spam or 0)
