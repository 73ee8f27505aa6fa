"""Campaigns: one template with a few words spun, sent across posts and authors. A 64-bit
SimHash of a comment's folded words makes near-duplicates a few bits apart.

The worker computes each comment's SimHash when it scores it (`service.reputation` judges
new comments by the ones moderators filed as spam; the comments table keeps it); the
moderation API reads the stored ones to show a comment's campaign. The folding only (numpy
is imported by the worker's functions when they run): no database, no scikit-learn, no numpy
on import, so a web worker that shows a moderator a campaign (`members`) stays within its
memory budget.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from models.text import fold_for_matching

if TYPE_CHECKING:
    import numpy as np

# A SimHash only for texts of this many words or more; two texts at most NEAR_BITS bits
# apart are one campaign. Measured on the 310 texts of models/eval/: a recovery scam with
# its amount, coin, noun and days spun is 6 bits from its template, and no two of the eval
# texts are nearer than 11.
MIN_SIMHASH_WORDS = 10
NEAR_BITS = 6


def simhash(content: str) -> int | None:
    """The 64-bit SimHash of a comment's folded words (None for short texts)."""
    words = fold_for_matching(content).split()
    if len(words) < MIN_SIMHASH_WORDS:
        return None
    import numpy as np  # the worker's (see the module's docstring)

    bits_at = np.arange(64, dtype=np.uint64)
    hashes = np.array([int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(),
                                      "little") for word in words], dtype=np.uint64)
    bits = ((hashes[:, None] >> bits_at) & np.uint64(1)).astype(np.int64)
    votes = (2 * bits - 1).sum(axis=0)
    return int(((votes > 0).astype(np.uint64) << bits_at).sum())


def near(fingerprints: np.ndarray, value: int) -> np.ndarray:
    """Indices of ``fingerprints`` (uint64) at most `NEAR_BITS` bits from ``value``: the
    worker's check of each new comment against every text filed as spam."""
    import numpy as np
    if not len(fingerprints):
        return np.zeros(0, dtype=np.int64)
    distance = np.bitwise_count(fingerprints ^ np.uint64(value))
    return np.flatnonzero(distance <= NEAR_BITS)


def members(candidates: Sequence[tuple[int, int]], value: int) -> list[int]:
    """The ids of the (id, SimHash) ``candidates`` at most `NEAR_BITS` bits from ``value``,
    in their order. Plain integers, not `near`: a web worker shows one comment's campaign
    (5,000 candidates in about a millisecond) without loading numpy (14 MB)."""
    return [ident for ident, other in candidates if (other ^ value).bit_count() <= NEAR_BITS]
