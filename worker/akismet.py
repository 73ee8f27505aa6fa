"""RQ job behind the Akismet-compatible ``comment-check``: score a comment nobody stores.

The web process waits for this job's result (it never imports scikit-learn), so it runs in the
scoring worker with the model and the rules that worker already holds.
"""

from __future__ import annotations

import logging
from typing import Any

from service.db import Comment, CommentStatus, DecidedBy
from worker import jobs

log = logging.getLogger(__name__)

# Spam this sure is "blatant": Akismet's `X-akismet-pro-tip: discard`, the blog may drop it
# unseen. The same bar as a trusted commenter's spam ceiling (service.rules).
DISCARD_SCORE = 0.99


def check_comment(fields: dict[str, Any]) -> dict[str, Any]:
    """RQ job: the rules' and the model's verdict on a comment that is not stored.

    ``fields`` are Comment columns (post, author_name, author_email, author_url, content, ip,
    user_agent, referer). Returns spam, discard, status, decided_by, score, reasons and
    model_version; ``held`` means nobody could decide (no usable model, or a holding rule)."""
    comment = Comment(**fields, status=CommentStatus.PENDING)
    scorer = jobs.get_scorer()
    scorer.models.refresh()
    with scorer.sessions() as session:
        decision = scorer.decide(session, [comment])[0]
    spam = decision.status == CommentStatus.SPAM
    blocked = spam and decision.decided_by == DecidedBy.RULE
    sure = decision.spam_score is not None and decision.spam_score >= DISCARD_SCORE
    log.info("akismet check: %s (score %s)", decision.status, decision.spam_score)
    return {
        "spam": spam,
        "discard": spam and (blocked or sure),
        "status": str(decision.status),
        "decided_by": str(decision.decided_by),
        "score": decision.spam_score,
        "reasons": decision.reasons,
        "model_version": decision.model_version,
    }
