"""Stored reasons as a moderator reads them: chips that explain a verdict, terms to mark.

A comment's ``reasons`` are strings: the rules' reasons ("blocked term 'casino'", "3 links
(hold at 2)"), the band reason ("spam score 0.84 between 0.16 and 0.90"), then the model's
strongest contributions, each "<feature> <signed weight>" (``models.explain.Contribution``;
the feature may be quoted words, "'buy cheap'", or a readable phrase, "3 links"). What is
stored stays as it is (the audit record); this module only chooses what a page shows: no
stop words, no tiny weights, and marks in the text only for what pushed towards spam.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

# A contribution smaller than this (in log-odds) moves p(spam) by under 0.1 around 0.5 and
# by far less near the ends: not what explains a verdict.
MIN_WEIGHT = 0.5
# Rule reasons that speak for the comment, and those that hold it for a human; every other
# rule reason (blocked entries, bot traps) files it as spam.
_GOOD_RULES = ("trusted commenter", "a member of the blog")
_HOLD_RULES = re.compile(r"^(watched term |post is pre-moderated|no spam model|\d+ links \(hold"
                         r"|WordPress's form token|sent by a program|written mostly in )")
_CONTRIBUTION = re.compile(r"^(?P<feature>.+?)\s+(?P<weight>[+-]\d+(?:\.\d+)?)$")
_BAND = re.compile(r"^spam score (?P<score>\d(?:\.\d+)?) (?P<where>above|below|between)\b")
_QUOTED = re.compile(r"'([^']+)'")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Rule reasons naming what they matched without quotes: "blocked domain spam.example".
_UNQUOTED_MATCH = re.compile(r"^blocked (?:domain|e-mail domain|e-mail) (?P<term>\S+)$")
# A reason about the link count ("3 links", "2 links (hold at 2)") marks the links themselves.
_LINKS_REASON = re.compile(r"^\d+ links?\b")
_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
STOP_WORDS_FILE = Path(__file__).with_name("english_stop_words.txt")


@cache
def stop_words() -> frozenset[str]:
    """scikit-learn's English stop words (a copy the tests keep equal to the installed list:
    the web process never imports scikit-learn)."""
    lines = STOP_WORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


@dataclass(frozen=True, slots=True)
class Chip:
    """One shown reason.

    ``kind``: rule, band or model; ``effect``: spam (pushed towards spam), hold (a rule
    asked for a human), ham (spoke for the comment) or neutral; ``terms``: what to mark in
    the comment's text (only for what pushed towards spam or a hold)."""

    text: str
    kind: str
    effect: str
    weight: float | None = None
    terms: list[str] = field(default_factory=list)


def _all_stop_words(text: str) -> bool:
    words = [word.casefold() for word in _WORD.findall(text)]
    return not words or all(word in stop_words() for word in words)


def _rule_chip(reason: str) -> Chip:
    effect = "ham" if reason.startswith(_GOOD_RULES) else \
        "hold" if _HOLD_RULES.match(reason) else "spam"
    terms = [] if effect == "ham" else _QUOTED.findall(reason)
    unquoted = _UNQUOTED_MATCH.match(reason)
    if unquoted:
        terms.append(unquoted.group("term"))
    return Chip(reason, "rule", effect, None, [t.strip() for t in terms if t.strip()])


def _band_chip(reason: str, where: str) -> Chip:
    effect = {"above": "spam", "below": "ham"}.get(where, "neutral")
    return Chip(reason, "band", effect)


def _model_chip(feature: str, weight: float) -> Chip | None:
    if abs(weight) < MIN_WEIGHT:
        return None
    quoted = [q.strip() for q in _QUOTED.findall(feature) if q.strip()]
    if quoted and all(_all_stop_words(q) for q in quoted):
        return None
    if not quoted and _all_stop_words(feature):
        return None
    words = feature.replace("'", "")
    text = f"“{words}”" if quoted and feature.startswith("'") else words
    effect = "spam" if weight > 0 else "ham"
    # Quoted words are text of the comment; a readable phrase is marked where it occurs.
    terms = (quoted or [feature]) if effect == "spam" else []
    return Chip(text, "model", effect, weight, terms)


def chips(reasons: list[str] | None) -> list[Chip]:
    """The reasons worth showing, in their stored order (rules, band, model)."""
    shown: list[Chip] = []
    for raw in reasons or []:
        reason = str(raw).strip()
        if not reason:
            continue
        band = _BAND.match(reason)
        contribution = _CONTRIBUTION.match(reason)
        if band:
            shown.append(_band_chip(reason, band.group("where")))
        elif contribution:
            chip = _model_chip(contribution.group("feature"), float(contribution.group("weight")))
            if chip is not None:
                shown.append(chip)
        else:
            shown.append(_rule_chip(reason))
    return shown


def explanation(reasons: list[str] | None, content: str = "") -> dict[str, Any]:
    """`chips` and the terms of ``content`` to mark, as the moderation API shows them."""
    shown = chips(reasons)
    against = [chip for chip in shown if chip.effect in ("spam", "hold")]
    terms = [term for chip in against for term in chip.terms
             if not _LINKS_REASON.match(chip.text)]
    if any(_LINKS_REASON.match(chip.text) for chip in against):
        terms += [url.rstrip(".,;:!?)") for url in _URL.findall(content or "")]
    marks = list(dict.fromkeys(terms))
    return {"chips": [{"text": c.text, "kind": c.kind, "effect": c.effect, "weight": c.weight}
                      for c in shown],
            "highlight": marks}
