"""Reasons as moderators see them: chips that explain the verdict, terms marked in the text
only when they pushed towards spam, never stop words or tiny weights."""

from __future__ import annotations

import pytest
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from service.explanations import MIN_WEIGHT, chips, explanation, stop_words


def test_the_stop_word_list_is_scikit_learns() -> None:
    # The web process never imports scikit-learn: it reads a copy, kept equal here.
    assert stop_words() == ENGLISH_STOP_WORDS


def test_stop_words_and_tiny_weights_are_left_out_rules_and_strong_terms_stay() -> None:
    shown = explanation([
        "watched term 'crypto'", "3 links (hold at 2)",
        "spam score 0.84 between 0.16 and 0.90",
        "'the' -0.4", "'is' +0.9", "'if you' +1.1", "'you' +0.3", "'cheap' +0.2",
        "'buy cheap' +1.7", "'my channel' +0.9", "2 links +0.8", "author 'spam.example' +0.6",
        "'arxiv' -1.3",
    ])
    texts = [chip["text"] for chip in shown["chips"]]
    assert texts == ["watched term 'crypto'", "3 links (hold at 2)",
                     "spam score 0.84 between 0.16 and 0.90", "“buy cheap”", "“my channel”",
                     "2 links", "author spam.example", "“arxiv”"]
    effects = [chip["effect"] for chip in shown["chips"]]
    assert effects == ["hold", "hold", "neutral", "spam", "spam", "spam", "spam", "ham"]
    # Only what pushed towards spam (or a hold) is marked; "arxiv" spoke for the comment.
    assert shown["highlight"] == ["crypto", "buy cheap", "my channel", "spam.example"]


def test_a_link_count_reason_marks_the_links() -> None:
    text = "Deals at https://spam.example/a?b=1, and https://spam.example/c."
    assert explanation(["2 links +1.6"], text)["highlight"] == [
        "https://spam.example/a?b=1", "https://spam.example/c"]
    assert explanation(["2 links -0.9"], text)["highlight"] == []  # it spoke for it


@pytest.mark.parametrize(("reason", "effect", "terms"), [
    ("blocked term 'casino'", "spam", ["casino"]),
    ("blocked domain spam.example", "spam", ["spam.example"]),
    ("trusted commenter (approved before)", "ham", []),
    ("post is pre-moderated", "hold", []),
    ("form sent 0.7 s after it was shown", "spam", []),
    ("no spam model available: held for a moderator", "hold", []),
])
def test_rule_reasons_are_kept_with_their_effect(reason, effect, terms) -> None:
    [chip] = chips([reason])
    assert (chip.kind, chip.effect, chip.terms) == ("rule", effect, terms)


def test_readable_feature_names_keep_parsing_by_the_trailing_weight() -> None:
    # Features named in plain words (no quotes) are read the same way: words, then weight.
    shown = chips(["buy cheap +1.4", "of the +2.0", "promotes own channel +0.9",
                   f"subscribe now {MIN_WEIGHT / 2:+.1f}"])
    assert [(c.text, c.weight, c.terms) for c in shown] == [
        ("buy cheap", 1.4, ["buy cheap"]), ("promotes own channel", 0.9,
                                            ["promotes own channel"])]


def test_no_reasons_show_nothing() -> None:
    assert explanation(None) == {"chips": [], "highlight": []}
