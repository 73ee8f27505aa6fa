"""What this site has learned from its moderators: a local reputation of domains, e-mail
domains and text fingerprints (like Antispam Bee's local spam database).

Every labelled comment (a moderator's decision, or an imported blog's moderation state) counts
for the keys it carries: the host of the author's website, the hosts linked in its text, its
e-mail domain (not the big free-mail providers: everyone has one) and a fingerprint of its
folded text. A key moderators filed as spam and never approved makes the next comment that
carries it spam, with a reason naming it ("author website cheap-vps.example filed as spam by a
moderator before (2x)"), and so does a near-duplicate of a spam text (a campaign: the same
template with a few words spun, across posts and authors; `service.campaigns`' SimHash of
its words) unless it is as near to an approved one. Hosts readers cite in approved comments
and never in spam (arxiv.org, a university) are the site's trusted hosts: a link to one does
not count towards the link-count hold.

Worker side only: it needs the database. The worker reads what changed when a label changed
(one cheap query per batch tells), the whole history only at start or after an import.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.features import REFERENCE, host_of
from models.text import fold_for_matching, unmask_links
from service.campaigns import near, simhash
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
    """Counts of spam and ham labels per key, and the SimHashes of labelled texts, kept per
    labelled comment so that a comment whose label changed is counted once, as it is now."""

    spam: Counter[tuple[str, str]] = field(default_factory=Counter)
    ham: Counter[tuple[str, str]] = field(default_factory=Counter)
    # comment id -> (is spam, its keys, its SimHash or None)
    entries: dict[int, tuple[bool, list[tuple[str, str]], int | None]] = field(
        default_factory=dict)
    _arrays: tuple[np.ndarray, np.ndarray] | None = None
    # The newest decided_at read, for `update`.
    newest: Any = None

    @property
    def spam_texts(self) -> np.ndarray:
        """SimHashes of the spam-labelled texts long enough to have one."""
        return self._texts()[0]

    @property
    def ham_texts(self) -> np.ndarray:
        """SimHashes of the ham-labelled texts long enough to have one."""
        return self._texts()[1]

    def _texts(self) -> tuple[np.ndarray, np.ndarray]:
        if self._arrays is None:
            spam = [h for is_spam, _, h in self.entries.values() if is_spam and h is not None]
            ham = [h for is_spam, _, h in self.entries.values() if not is_spam and h is not None]
            self._arrays = (np.array(spam, dtype=np.uint64), np.array(ham, dtype=np.uint64))
        return self._arrays

    def add(self, comment_id: int, label: str, content: str, author_url: str | None,
            author_email: str | None, digest: int | None = None) -> None:
        """Count one labelled comment (replacing what it counted before, if anything);
        ``digest``: its stored SimHash, when the worker stored one."""
        self.remove(comment_id)
        is_spam = label == Label.SPAM
        keys = keys_of(content, author_url, author_email)
        (self.spam if is_spam else self.ham).update(keys)
        self.entries[comment_id] = (is_spam, keys, simhash(content) if digest is None
                                    else digest)
        self._arrays = None

    def remove(self, comment_id: int) -> None:
        """Stop counting a comment."""
        entry = self.entries.pop(comment_id, None)
        if entry is not None:
            (self.spam if entry[0] else self.ham).subtract(entry[1])
            self._arrays = None

    @classmethod
    def from_labels(cls, rows: Iterable[tuple[str, str, str | None, str | None]]
                    ) -> Reputation:
        """From (label, content, author_url, author_email) rows."""
        reputation = cls()
        for number, (label, content, author_url, author_email) in enumerate(rows):
            reputation.add(-1 - number, label, content, author_url, author_email)
        return reputation

    @classmethod
    def load(cls, session: Session) -> Reputation:
        """From the newest labelled comments of the database."""
        reputation = cls()
        reputation._read(session, select(*_COLUMNS).where(Comment.label.is_not(None))
                         .order_by(Comment.id.desc()).limit(HISTORY_LIMIT))
        return reputation

    def update(self, session: Session, labelled: int) -> bool:
        """Read the comments decided since the newest one read (a moderator's decisions);
        False if that does not account for all ``labelled`` comments (an import of old
        comments, a label taken away): the caller loads it afresh."""
        if self.newest is None:
            return False
        self._read(session, select(*_COLUMNS).where(Comment.decided_at >= self.newest))
        return len(self.entries) == min(labelled, HISTORY_LIMIT)

    def _read(self, session: Session, query: Any) -> None:
        for comment_id, label, content, author_url, author_email, decided_at, digest in \
                session.execute(query):
            if label is None:
                self.remove(comment_id)
            else:
                self.add(comment_id, str(label), content, author_url, author_email, digest)
            if decided_at is not None and (self.newest is None or decided_at > self.newest):
                self.newest = decided_at

    def hits(self, content: str, author_url: str | None, author_email: str | None,
             digest: int | None = None) -> list[Hit]:
        """A spam hit for each key moderators filed as spam and never approved. Hosts of
        papers and references (`models.features.REFERENCE`) never count: one spammer's
        citation of arxiv.org must not make every reader's spam. ``digest``: the content's
        `simhash`, when the caller has it already."""
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
        if len(self.spam_texts) and not any(hit.reason.startswith("the same text")
                                            for hit in found):
            digest = simhash(content) if digest is None else digest
            if digest is not None:
                near_spam = len(near(self.spam_texts, digest))
                if near_spam and not len(near(self.ham_texts, digest)):
                    times = f" ({near_spam}x)" if near_spam > 1 else ""
                    found.append(Hit("spam", "near-duplicate of a comment filed as spam by a "
                                     f"moderator (a campaign){times}", f"{digest:016x}"))
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


# The SimHash the worker stored with a comment's verdict is read, not computed again (a
# comment scored before migration 0011, or imported, has none: computed then).
_COLUMNS = (Comment.id, Comment.label, Comment.content, Comment.author_url,
            Comment.author_email, Comment.decided_at, Comment.simhash)


# Over the labelled rows only: the partial index ix_comments_labelled covers the query.
LABEL_STAMP = (select(func.count(), func.count().filter(Comment.label == Label.SPAM),
                      func.max(Comment.decided_at))
               .where(Comment.label.is_not(None)))


def label_stamp(session: Session) -> tuple[int, int, Any]:
    """Changes whenever a comment gains, loses or changes a label (a cheap query): how many
    labelled comments there are, how many of them are spam, and the newest decision."""
    total, spam, newest = session.execute(LABEL_STAMP).one()
    return int(total or 0), int(spam or 0), newest
