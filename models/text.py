"""Text normalisation applied before any feature sees a comment."""

from __future__ import annotations

import functools
import html
import re
import unicodedata

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAGS = re.compile(r"</?[a-zA-Z][^>]{0,200}>")
_SPACES = re.compile(r"[ \t]{2,}")
# Zero-width characters and the byte-order mark: invisible, and in the YouTube export
# their presence tracks the export date rather than spam.
_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060\u00ad"), None)


def clean_text(text: str) -> str:
    """Decode HTML entities and line-break tags, drop invisible marks, NFKC-normalise."""
    text = text.translate(_INVISIBLE)
    text = _BR.sub("\n", text)
    text = html.unescape(text)
    text = _SPACES.sub(" ", _TAGS.sub(" ", text))
    return unicodedata.normalize("NFKC", text).strip()


# --- the folded form that block and watch lists match on -------------------------------------


def _skeleton_key(text: str) -> str:
    """``disarm.skeleton_key``, imported on first use: its confusables table is 3.6 MB of a
    web worker's memory, and a web worker folds text only on an admin's rare paths."""
    import disarm

    return disarm.skeleton_key(text)

# Written-out dots of "name dot example", "name[.]example", "name(dot)example", and the
# ideographic full stops NFKC leaves alone.
_SPELLED_DOT = re.compile(r"\s*[\[({]\s*(?:dot|\.)\s*[\])}]\s*|\s+dot\s+|[\u3002\uff61\ufe12]")
_HXXP = re.compile(r"\bh[x*]{2}p(s?)(?:\[:\]|:)//")
_PERCENT_DOT = re.compile(r"%2e")
_SPACES_RUN = re.compile(r"\s+")


@functools.lru_cache(maxsize=4096)
def fold_for_matching(text: str) -> str:
    """The form on which block and watch lists match (term and text folded alike).

    NFKC (full-width and compatibility forms), Unicode format characters (category Cf:
    zero-width, soft hyphen, bidi controls) removed, combining marks removed (``casino`` with
    an accent or a stack of marks is ``casino``), case folded, then confusables folded to
    their Unicode TR39 skeleton by the ``disarm`` library (Cyrillic ``\\u0435`` is ``e``), and
    whitespace runs made one space. For matching only: the result is not for display.
    Cached: the rules, the reputation and its fingerprints fold the same comment in turn."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in unicodedata.normalize("NFD", text)
                   if unicodedata.category(ch) != "Cf" and not unicodedata.combining(ch))
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _skeleton_key(text)
    return _SPACES_RUN.sub(" ", unicodedata.normalize("NFC", text).casefold()).strip()


def unmask_links(folded: str) -> str:
    """``fold_for_matching`` text with obfuscated links written plainly: ``hxxp://``,
    ``name dot example``, ``name[.]example``, ``%2e`` and ideographic dots become links that
    a URL or bare-domain search finds."""
    text = _HXXP.sub(lambda m: f"http{m.group(1)}://", folded)
    text = _PERCENT_DOT.sub(".", text)
    return _SPELLED_DOT.sub(".", text)


# --- the one text every feature reads ---------------------------------------------------------

_WORDS = re.compile(r"\w+")
_FORMAT = dict.fromkeys(
    [c for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"
     and not 0xE0000 <= c <= 0xE007F], None)  # tag characters stay: emoji flags use them


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else ""


def _fold_mixed_word(match: re.Match[str]) -> str:
    word = match.group(0)
    if word.isascii():
        return word
    scripts = {_script(ch) for ch in word if ch.isalpha()}
    # A word that mixes Latin with Cyrillic or Greek letters is a homoglyph disguise
    # ("Вest сrурtо"): written as its Latin skeleton. Whole Cyrillic or Greek words stay.
    if "LATIN" in scripts and scripts & {"CYRILLIC", "GREEK"}:
        return _skeleton_key(word)
    return word


@functools.lru_cache(maxsize=8192)
def model_text(text: str) -> str:
    """The text the model reads, at training, scoring and explanation alike: `clean_text`
    (entities and tags decoded, NFKC: full-width letters are plain), every Unicode format
    character (Cf: zero-width joiners and spaces, bidi controls, word joiners) removed, and
    words that mix Latin with Cyrillic or Greek letters folded to their Latin skeleton.
    Idempotent: a stored comment and its cleaned training example read the same."""
    text = clean_text(text).translate(_FORMAT)
    if not text.isascii():
        text = _WORDS.sub(_fold_mixed_word, text)
    return text
