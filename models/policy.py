"""The three-band policy: publish below ``low``, file as spam above ``high``, hold between.

Thresholds are chosen from class-conditional limits on cross-validated probabilities (the share
of ham that may be filed as spam, the share of spam that may be published), not from precision,
which moves with the spam rate of a site.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# At most this share of genuine comments may be filed as spam (a reader silently lost).
MAX_HAM_AS_SPAM = 0.005
# At most this share of spam may be published without a human seeing it.
MAX_SPAM_PUBLISHED = 0.02


class Band:
    """The policy's three outcomes (values match the comment statuses they lead to)."""

    PUBLISH = "published"
    HOLD = "held"
    SPAM = "spam"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Publish if p < low; spam if p > high; hold otherwise."""

    low: float
    high: float

    def band(self, spam_score: float) -> str:
        """The band a spam probability falls in."""
        if spam_score > self.high:
            return Band.SPAM
        if spam_score < self.low:
            return Band.PUBLISH
        return Band.HOLD


def choose_thresholds(
    ham_scores: Sequence[float],
    spam_scores: Sequence[float],
    max_ham_as_spam: float = MAX_HAM_AS_SPAM,
    max_spam_published: float = MAX_SPAM_PUBLISHED,
) -> Thresholds:
    """The widest automatic bands that keep both error shares within their limits."""
    if not ham_scores or not spam_scores:
        raise ValueError("need scores of both classes to choose thresholds")
    ham = sorted(ham_scores, reverse=True)
    spam = sorted(spam_scores)
    # `allowed` hams may lie above `high`: high is the score of the next one down.
    high = ham[min(math.floor(max_ham_as_spam * len(ham)), len(ham) - 1)]
    # `allowed` spams may lie below `low`: low is the score of the next one up.
    low = spam[min(math.floor(max_spam_published * len(spam)), len(spam) - 1)]
    if low > high:
        # The classes separate cleanly: no hold band is needed; cut in the gap's middle.
        low = high = (low + high) / 2
    return Thresholds(low=round(low, 6), high=round(high, 6))
