"""The rules admins set, applied by the worker before the model's verdict.

Blocked terms, e-mails, e-mail domains, URL domains and IPs file a comment as spam; watched
terms, too many links, and pre-moderated posts hold it. Term matching is Unicode-aware and
word-boundary safe ("press" does not match "WordPress"); multi-word entries match across any
whitespace. Entries and comments are compared in their folded form
(`models.text.fold_for_matching`: homoglyphs, invisible characters and accents do not hide a
term), and URL domains are also found bare, as ``hxxp://``, ``name dot example`` or ``%2e``.
No Flask here: the worker loads rules straight from the database.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.text import fold_for_matching, unmask_links
from service.db import Comment, Label, PostSettings, Rule, RuleKind, Setting

# How the reasons the submission guard stores on a pending comment begin (service.guard,
# service.api.akismet): the worker holds such a comment after scoring.
GUARD_HOLD_REASONS = ("form sent ", "form token used before")
# WordPress's default: two links or more and a comment waits for a human.
DEFAULT_HOLD_LINKS = 2
# A returning reader with this many moderator-approved comments is trusted.
DEFAULT_TRUSTED_AFTER = 1
# A trusted commenter is still stopped when the model is at least this sure of spam.
DEFAULT_TRUSTED_SPAM_CEILING = 0.99
# Off: on our evaluation sets the foreign-script hold (service.blog_signals) held genuine
# readers and stopped no spam the model missed (README, "WordPress").
DEFAULT_HOLD_FOREIGN_SCRIPT = 0

SETTINGS_DEFAULTS: dict[str, float] = {
    "hold_links": DEFAULT_HOLD_LINKS,
    "trusted_after": DEFAULT_TRUSTED_AFTER,
    "trusted_spam_ceiling": DEFAULT_TRUSTED_SPAM_CEILING,
    "hold_foreign_script": DEFAULT_HOLD_FOREIGN_SCRIPT,
}

LINK_RE = re.compile(r"(?:https?://|www\.)[^\s<>\"')\]]+", re.IGNORECASE)
_HOST_RE = re.compile(r"^[a-z0-9.-]+$")
# A bare domain in text: labels of letters, digits and hyphens, ending in a letters-only TLD.
BARE_DOMAIN_RE = re.compile(r"(?<![\w.@-])((?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63})"
                            r"(?![\w-])")


def fold(text: str) -> str:
    """Case- and compatibility-folded text, so full-width letters match their plain forms."""
    return unicodedata.normalize("NFKC", text).casefold()


def _is_spaceless_script(ch: str) -> bool:
    # Scripts written without spaces between words: a word boundary means nothing there.
    name = unicodedata.name(ch, "")
    return name.startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "THAI", "LAO", "KHMER"))


def term_pattern(term: str) -> re.Pattern[str]:
    """A regex for ``term`` bounded by non-word characters (multi-word: any whitespace)."""
    words = fold_for_matching(term).split()
    body = r"\s+".join(re.escape(word) for word in words)
    if any(_is_spaceless_script(ch) for ch in term):
        return re.compile(body)
    return re.compile(rf"(?<!\w){body}(?!\w)")


def hosts_in(text: str, author_url: str | None) -> list[str]:
    """Hosts of every link in ``text`` (already folded and unmasked: also bare and obfuscated
    links) and of the author's URL, folded like the blocked domains."""
    urls = LINK_RE.findall(text) + BARE_DOMAIN_RE.findall(text) + (
        [fold_for_matching(author_url)] if author_url else [])
    hosts = []
    for url in urls:
        try:
            host = urlsplit(url if "//" in url else f"//{url}").hostname
        except ValueError:  # an unbalanced "[" in an obfuscated link
            continue
        if host:
            hosts.append(host.rstrip("."))
    return hosts


def domain_matches(host: str, domain: str) -> bool:
    """True if ``host`` is ``domain`` or one of its subdomains."""
    return host == domain or host.endswith("." + domain)


@dataclass(frozen=True, slots=True)
class Hit:
    """One rule that matched: its effect and the reason shown. 'spam' files the comment as
    spam, 'held' holds it whatever the model says; 'doubt' holds a comment the model would
    publish and leaves one it files as spam (a sign of a bot, not of a human to hear)."""

    effect: str
    reason: str
    matched: str = ""


@dataclass
class RuleSet:
    """Every rule and setting, loaded once per scoring batch."""

    terms: list[tuple[re.Pattern[str], str, str]] = field(default_factory=list)
    emails: set[str] = field(default_factory=set)
    email_domains: set[str] = field(default_factory=set)
    url_domains: set[str] = field(default_factory=set)
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list)
    hold_links: int = DEFAULT_HOLD_LINKS
    trusted_after: int = DEFAULT_TRUSTED_AFTER
    trusted_spam_ceiling: float = DEFAULT_TRUSTED_SPAM_CEILING
    hold_foreign_script: bool = False
    premoderated_posts: set[str] = field(default_factory=set)

    @classmethod
    def from_rules(cls, rules: Iterable[Rule], settings: dict[str, float] | None = None,
                   premoderated: Iterable[str] = ()) -> RuleSet:
        """Compile rules and settings."""
        settings = {**SETTINGS_DEFAULTS, **(settings or {})}
        ruleset = cls(
            hold_links=int(settings["hold_links"]),
            trusted_after=int(settings["trusted_after"]),
            trusted_spam_ceiling=float(settings["trusted_spam_ceiling"]),
            hold_foreign_script=bool(settings["hold_foreign_script"]),
            premoderated_posts=set(premoderated),
        )
        for rule in rules:
            value = rule.value.strip()
            match rule.kind:
                case RuleKind.BLOCKED_TERM | RuleKind.WATCHED_TERM:
                    ruleset.terms.append((term_pattern(value), rule.kind, value))
                case RuleKind.BLOCKED_EMAIL:
                    ruleset.emails.add(fold_for_matching(value))
                case RuleKind.BLOCKED_EMAIL_DOMAIN:
                    ruleset.email_domains.add(fold_for_matching(value).lstrip("@"))
                case RuleKind.BLOCKED_URL_DOMAIN:
                    ruleset.url_domains.add(fold_for_matching(value))
                case RuleKind.BLOCKED_IP:
                    ruleset.networks.append(ipaddress.ip_network(value, strict=False))
        return ruleset

    @classmethod
    def load(cls, session: Session) -> RuleSet:
        """Every rule and setting from the database."""
        settings = {s.name: float(s.value) for s in session.scalars(select(Setting))}
        premoderated = session.scalars(
            select(PostSettings.post).where(PostSettings.premoderated.is_(True))
        )
        return cls.from_rules(session.scalars(select(Rule)), settings, premoderated)

    def check(self, comment: Comment, trusted_links: Callable[[str], int] | None = None
              ) -> list[Hit]:
        """Every rule the comment trips, blocks (spam) first. ``trusted_links(content)``
        says how many of its links point at hosts this site trusts (`service.reputation`):
        those do not count towards the link-count hold."""
        hits: list[Hit] = []
        # Folded once (it is the costly part): terms are searched in the text and the name,
        # links and hosts in the unmasked text.
        folded = fold_for_matching(comment.content)
        text = unmask_links(folded)
        searchable = f"{folded} {fold_for_matching(comment.author_name or '')}"
        for pattern, kind, value in self.terms:
            found = pattern.search(searchable)
            if found:
                if kind == RuleKind.BLOCKED_TERM:
                    hits.append(Hit("spam", f"blocked term '{value}'", found.group(0)))
                else:
                    hits.append(Hit("held", f"watched term '{value}'", found.group(0)))
        email = fold_for_matching(comment.author_email or "")
        if email and email in self.emails:
            hits.append(Hit("spam", f"blocked e-mail {email}", email))
        if email and "@" in email:
            domain = email.rsplit("@", 1)[1]
            for blocked in sorted(self.email_domains):
                if domain_matches(domain, blocked):
                    hits.append(Hit("spam", f"blocked e-mail domain {blocked}", domain))
        for host in sorted(set(hosts_in(text, comment.author_url))):
            for blocked in sorted(self.url_domains):
                if domain_matches(host, blocked):
                    hits.append(Hit("spam", f"blocked domain {blocked}", host))
        if comment.ip and self.networks:
            try:
                address = ipaddress.ip_address(comment.ip)
            except ValueError:
                address = None
            for network in self.networks:
                if address is not None and address.version == network.version \
                        and address in network:
                    hits.append(Hit("spam", f"blocked IP range {network}", comment.ip))
        links = len(LINK_RE.findall(text))
        if trusted_links is not None and links >= self.hold_links > 0:
            links -= trusted_links(comment.content)
        if self.hold_links > 0 and links >= self.hold_links:
            hits.append(Hit("held", f"{links} links (hold at {self.hold_links})"))
        if comment.post in self.premoderated_posts:
            hits.append(Hit("held", "post is pre-moderated"))
        # What the submission guard noticed and stored with the comment (a form sent too
        # fast, a reused form token): a person may have done it, so a moderator looks, also
        # when a held comment is rescored (the reason stays first among its reasons).
        hits.extend(Hit("held", reason) for reason in comment.reasons or ()
                    if isinstance(reason, str) and reason.startswith(GUARD_HOLD_REASONS))
        hits.sort(key=lambda hit: hit.effect != "spam")
        return hits

    def is_trusted(self, session: Session, reader_id: str | None) -> bool:
        """True if the returning reader ``reader_id`` (from the signed token its browser
        keeps, service/readers.py) has at least ``trusted_after`` moderator-approved comments.
        An e-mail address proves nothing: anyone can type an approved reader's."""
        if not reader_id or self.trusted_after <= 0:
            return False
        approved = session.scalar(
            select(func.count()).select_from(Comment).where(
                Comment.reader_id == reader_id, Comment.label == Label.HAM,
                Comment.status == "published",
            )
        )
        return (approved or 0) >= self.trusted_after


def outcome(band: str, spam_score: float, hits: Sequence[Hit], spam_ceiling: float,
            trusted: Callable[[], bool] = lambda: False) -> tuple[str, str, bool]:
    """What the rules and the model's band decide together: (status, decided_by, trusted).

    A blocking rule files it as spam, and so does a model at least ``spam_ceiling`` sure; a
    holding rule holds it (a human should look); the model's spam and hold bands apply,
    except that a trusted commenter (``trusted()``, asked only when it matters) is published;
    a doubt holds what would otherwise be published; otherwise the model's band decides.
    The worker and ``make evaluate`` both use this."""
    if any(hit.effect == "spam" for hit in hits):
        return "spam", "rule", False
    if spam_score >= spam_ceiling:
        return "spam", "model", False
    holds = any(hit.effect == "held" for hit in hits)
    is_trusted = band != "published" and trusted()
    if band == "spam" and not is_trusted and not holds:
        return "spam", "model", False
    if holds:
        return "held", "rule", False
    if is_trusted:
        return "published", "rule", True
    if band == "published" and hits:
        return "held", "rule", False
    return band, "model", False


def validate_rule(kind: RuleKind, value: str) -> str:
    """The normalised value of a new rule, or ValueError saying why it is unusable."""
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    match kind:
        case RuleKind.BLOCKED_IP:
            try:
                return str(ipaddress.ip_network(value, strict=False))
            except ValueError:
                raise ValueError("not an IP address or CIDR range") from None
        case RuleKind.BLOCKED_EMAIL:
            if "@" not in value or " " in value:
                raise ValueError("not an e-mail address")
            return fold(value)
        case RuleKind.BLOCKED_EMAIL_DOMAIN | RuleKind.BLOCKED_URL_DOMAIN:
            domain = fold(value).lstrip("@")
            if "//" in domain:
                domain = urlsplit(domain).hostname or ""
            if not _HOST_RE.match(domain) or "." not in domain:
                raise ValueError("not a domain name")
            return domain
    return " ".join(value.split())
