"""What a blog engine tells us about a comment besides the comment, and what the worker makes
of it. WordPress's Akismet plugin sends these with every check (service/api/akismet.py
stores them with the check as ``signals``):

- its form token's result (``akismet_comment_nonce``): "failed" means the form was not sent
  from a page the blog served lately (a script posting directly, or a page cached for more
  than a day), so a human should look; "passed" and "inactive" (switched off) say nothing;
- whether the page's script ran (``javascript``: its ``ak_js`` field still holds the random
  placeholder the page was served with) and the reader's request headers: a form sent without
  running the page's script and without the headers every browser sends came from a program;
- the blog's language (``blog_lang``, a locale such as ``en_US``): when the site's setting
  ``hold_foreign_script`` is on, a comment written mostly in a script none of the blog's
  languages use is held for a human (spam in a foreign script is a kind a model trained on
  the blog's language can miss; a genuine reader writing in their own language is worth a
  look, not a verdict). Off by default: on our evaluation sets it held 3 of 75 and 2 of 78
  genuine comments and stopped no spam the model missed (README, "WordPress");
- the commenter's WordPress roles: an editor, author or contributor of the blog is trusted
  like a returning reader (the hold band publishes; the spam ceiling and the rules still
  apply). An administrator never reaches the worker: comment-check answers "not spam" at
  once, as Akismet does. A subscriber is anyone who signed up, so that role says nothing.

The honeypot and the page-load time are judged before storing, like the widget's bot traps
(service/api/akismet.py). The post's last change (``comment_post_modified_gmt``) is kept with
the check and not used (README, "WordPress": no data here shows it separates spam).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from models.text import model_text
from service.rules import Hit

# The roles of a blog's own people, most trusted first (WordPress's defaults below admin).
MEMBER_ROLES = ("editor", "author", "contributor")

# A form with fewer request headers than this, sent without running the page's script, came
# from a program: a browser sends Host, User-Agent, Accept, Accept-Language, Accept-Encoding,
# Content-Type, Content-Length, Origin, Referer and (since 2020) its Sec-Fetch-* headers.
# Measured through `php -S` and the plugin (tests/wordpress/test_wordpress.py::
# test_the_plugins_signals_tell_a_browser_from_a_program): Chromium 19, httpx 7, curl 5.
# Rechecks (WP-Cron, "Check for Spam") send no headers and no ak_js: the rule never sees them.
BROWSER_MIN_HEADERS = 10

# The Unicode script (the first word of a letter's name) each language is written in, by its
# ISO 639-1 code. A blog language not listed here says nothing.
_LATIN = ("af az bs ca cs cy da de en eo es et eu fi fil fo fr ga gl ha hr ht hu id ig is it "
          "jv lb lt lv mg ms mt nb nl nn no oc pl pt ro rw sk sl so sq sv sw tl tr tk uz vi "
          "wo xh yo zu")
LANGUAGE_SCRIPTS: dict[str, frozenset[str]] = {
    **{code: frozenset({"LATIN"}) for code in _LATIN.split()},
    **{code: frozenset({"CYRILLIC"})
       for code in ("be", "bg", "kk", "ky", "mk", "mn", "ru", "tg", "tt", "uk")},
    "sr": frozenset({"CYRILLIC", "LATIN"}),
    **{code: frozenset({"ARABIC"}) for code in ("ar", "fa", "ps", "sd", "ug", "ur")},
    **{code: frozenset({"HEBREW"}) for code in ("he", "yi")},
    **{code: frozenset({"DEVANAGARI"}) for code in ("hi", "mr", "ne", "sa")},
    "zh": frozenset({"CJK"}),
    "ja": frozenset({"CJK", "HIRAGANA", "KATAKANA"}),
    "ko": frozenset({"HANGUL", "CJK"}),
    "el": frozenset({"GREEK"}), "hy": frozenset({"ARMENIAN"}), "ka": frozenset({"GEORGIAN"}),
    "th": frozenset({"THAI"}), "lo": frozenset({"LAO"}), "km": frozenset({"KHMER"}),
    "my": frozenset({"MYANMAR"}), "si": frozenset({"SINHALA"}), "am": frozenset({"ETHIOPIC"}),
    "bn": frozenset({"BENGALI"}), "gu": frozenset({"GUJARATI"}), "pa": frozenset({"GURMUKHI"}),
    "ta": frozenset({"TAMIL"}), "te": frozenset({"TELUGU"}), "kn": frozenset({"KANNADA"}),
    "ml": frozenset({"MALAYALAM"}), "or": frozenset({"ORIYA"}),
}
_SCRIPT_NAMES = {"CJK": "Chinese characters", "HANGUL": "Korean Hangul",
                 "HIRAGANA": "Japanese kana", "KATAKANA": "Japanese kana"}
# Fewer letters than this prove nothing (a name, an emoticon, one quoted word).
MIN_LETTERS = 8
# The share of letters in a foreign script that makes the comment "written in" it.
FOREIGN_SHARE = 0.5


def blog_signal_hits(signals: Mapping[str, Any], content: str,
                     hold_foreign_script: bool = False) -> list[Hit]:
    """The doubts the blog engine's signals raise (none for a widget comment: no signals);
    the foreign-script one only when the site's setting ``hold_foreign_script`` is on."""
    hits = []
    if signals.get("akismet_comment_nonce") == "failed":
        hits.append(Hit("doubt", "WordPress's form token did not verify (not sent from a page "
                                "the blog served lately)"))
    headers = signals.get("request_headers")
    if signals.get("javascript") is False and isinstance(headers, int) \
            and headers < BROWSER_MIN_HEADERS:
        hits.append(Hit("doubt", f"sent by a program, not a browser: the page's script did not "
                                f"run and the request had {headers} headers"))
    foreign = foreign_script(content, str(signals.get("blog_lang") or "")) \
        if hold_foreign_script else None
    if foreign is not None:
        hits.append(Hit("doubt", f"written mostly in {foreign}; the blog's language is "
                                f"{signals['blog_lang']}", foreign))
    return hits


def blog_languages(blog_lang: str) -> set[str]:
    """The ISO 639-1 codes in WordPress's locale or Akismet's list ("en_US", "en, fr_ca")."""
    codes = set()
    for part in blog_lang.replace(";", ",").split(","):
        code = part.strip().replace("-", "_").split("_")[0].lower()
        if code:
            codes.add(code)
    return codes


def foreign_script(content: str, blog_lang: str) -> str | None:
    """The name of the script most of ``content``'s letters are written in, when none of the
    blog's languages uses it; None when they do, when the text is too short to tell, or when
    a blog language is one we do not know the script of."""
    languages = blog_languages(blog_lang)
    if not languages or not languages <= LANGUAGE_SCRIPTS.keys():
        return None
    allowed = frozenset().union(*(LANGUAGE_SCRIPTS[code] for code in languages))
    counts: dict[str, int] = {}
    letters = 0
    # The model's text: homoglyph disguises ("Вest сrурtо") are Latin there, whole Cyrillic
    # or Greek words stay what they are (matching's folding would make Russian Latin).
    for ch in model_text(content):
        if not ch.isalpha():
            continue
        letters += 1
        script = unicodedata.name(ch, "UNKNOWN").split(" ")[0]
        if script not in allowed:
            counts[script] = counts.get(script, 0) + 1
    if letters < MIN_LETTERS or not counts:
        return None
    if sum(counts.values()) < FOREIGN_SHARE * letters:
        return None
    script = max(counts, key=counts.__getitem__)
    return _SCRIPT_NAMES.get(script, f"{script.title()} script")


def blog_member(signals: Mapping[str, Any]) -> str | None:
    """The commenter's most trusted role among the blog's own people, or None."""
    roles = signals.get("user_roles") or ()
    return next((role for role in MEMBER_ROLES if role in roles), None)
