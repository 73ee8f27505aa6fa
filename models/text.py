"""Text normalisation applied before any feature sees a comment."""

from __future__ import annotations

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
