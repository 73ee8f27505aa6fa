"""RQ jobs: score pending comments and decide them (publish, hold, spam).

A scoring worker process keeps one `Scorer`: the database sessions and the active model,
loaded once and swapped when the database's active row names another version. A job reads
the pending comments from the database, oldest first, in batches, and is idempotent: a
comment leaves `pending` exactly once, by a conditional UPDATE.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from rq import Queue, get_current_job
from sqlalchemy import Select, Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.artifacts import ArtifactError
from models.explain import Verdict, score
from models.policy import Band, Thresholds
from service import caching
from service.blog_signals import blog_member, blog_signal_hits
from service.campaigns import simhash
from service.config import load_config
from service.db import (
    AkismetCheck,
    Comment,
    CommentEvent,
    CommentStatus,
    DecidedBy,
    make_engine,
    make_sessionmaker,
)
from service.db.comments import PENDING
from service.db.model_store import ModelStore
from service.db.types import utcnow
from service.queue import clear_request, connect_guarded, request_scoring, scoring_queued
from service.reputation import Reputation, label_stamp
from service.rules import RuleSet, outcome
from worker import events

log = logging.getLogger(__name__)

# Reasons shown to moderators: the strongest few contributions are enough to see "why".
TOP_REASONS = 5
NO_MODEL_REASON = "no spam model available: held for a moderator"


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy decided for one comment."""

    status: CommentStatus
    spam_score: float | None
    reasons: list[str]
    model_version: str | None
    decided_by: DecidedBy
    # Its text's SimHash (None for short texts), stored with the verdict: its campaign.
    simhash: int | None = None


# A model that could not be loaded (missing, or its hash does not match) is tried again after
# this long if the active row still names it: a fetch of its bytes is not for every batch.
RETRY_LOAD_SECONDS = 30.0


class ModelHolder:
    """The active model, loaded once and reloaded when the database's active row names
    another version (or the same name with other bytes)."""

    def __init__(self, store: ModelStore, sessions: sessionmaker[Session],
                 overrides: Thresholds | None = None) -> None:
        self.store = store
        self.sessions = sessions
        self.overrides = overrides
        self.version: str | None = None
        self.pipeline: Any = None
        self.thresholds: Thresholds | None = None
        self._seen: tuple[str, str] | None = None
        self._retry_at = 0.0

    def refresh(self) -> None:
        """Load the active model if the active row changed since the last call (one small
        primary-key read otherwise; the bytes come from the local cache or, once per
        version, from the database)."""
        with self.sessions() as session:
            active = self.store.active(session)
            loaded = active is not None and active == self._seen and self.pipeline is not None
            if loaded or (active == self._seen and time.monotonic() < self._retry_at):
                return
            self._seen = active
            try:
                if active is None:
                    raise ArtifactError("no active model in the database")
                pipeline, metadata = self.store.load(session, active[0])
            except ArtifactError as exc:
                self._retry_at = time.monotonic() + RETRY_LOAD_SECONDS
                self._complain(exc)
                return
        limits = metadata["thresholds"]
        self.thresholds = self.overrides or Thresholds(limits["low"], limits["high"])
        self.pipeline, self.version = pipeline, metadata["version"]
        log.info("model %s loaded (thresholds %s)", self.version, self.thresholds)

    def _complain(self, exc: ArtifactError) -> None:
        if self.pipeline is None:
            log.error("no usable model: %s", exc)
        else:
            log.error("keeping model %s; new one unusable: %s", self.version, exc)


_COMMENTS = cast(Table, Comment.__table__)
# A pending comment's verdict: applied only if it is still pending.
_DECIDE = (
    update(_COMMENTS)
    .where(_COMMENTS.c.id == bindparam("comment_id"),
           _COMMENTS.c.status == CommentStatus.PENDING)
    .values({name: bindparam(name) for name in
             ("status", "spam_score", "reasons", "model_version", "decided_by", "decided_at",
              "simhash")})
)
_AUDIT = insert(cast(Table, CommentEvent.__table__))


def pending_batch(size: int) -> Select[Comment]:
    """The oldest ``size`` pending comments no other worker has locked, locked for this one."""
    return (select(Comment).where(PENDING).order_by(Comment.id).limit(size)
            .with_for_update(skip_locked=True))


class Scorer:
    """Decides pending comments in batches, in one transaction per batch."""

    def __init__(self, sessions: sessionmaker[Session], models: ModelHolder,
                 batch_size: int, decision_sessions: sessionmaker[Session] | None = None
                 ) -> None:
        self.sessions = sessions
        # Sessions for the decisions themselves (see `from_config`); others use `sessions`.
        self.decision_sessions = decision_sessions or sessions
        self.models = models
        self.batch_size = batch_size
        self.reputation = Reputation()
        self._label_stamp: tuple[int, int, Any] | None = None
        # The rules as last read, and when (the model, labels and rules are read together).
        self._rules: RuleSet | None = None
        self._read_at = float("-inf")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Scorer:
        """A scorer for the configured database and model store."""
        low, high = config["SPAM_THRESHOLD_LOW"], config["SPAM_THRESHOLD_HIGH"]
        overrides = Thresholds(low, high) if low is not None and high is not None else None
        sessions = make_sessionmaker(make_engine(config["DATABASE_URL"]))
        models = ModelHolder(ModelStore(config["MODEL_DIR"] or None), sessions, overrides)
        # A decision is redoable: one lost to a power cut leaves its comment pending, and the
        # reconciler queues it again. So its commit need not wait for the disk.
        decisions = make_sessionmaker(make_engine(config["DATABASE_URL"], redoable=True))
        # Their commits replace the version tokens of the posts whose listings they change.
        redis = connect_guarded(config["REDIS_URL"] or "redis://127.0.0.1:6379/0")
        caching.bind(sessions, redis)
        caching.bind(decisions, redis)
        return cls(sessions, models, config["SCORE_BATCH_SIZE"], decisions)

    def close(self) -> None:
        """Release the database connections."""
        for factory in {self.sessions, self.decision_sessions}:
            engine = factory.kw.get("bind")
            if engine is not None:
                engine.dispose()

    def decide_batch(self, first_id: int | None = None, reuse_for: float = 0.0
                     ) -> tuple[dict[int, str], int]:
        """Decide ``first_id`` (if still pending) and the oldest other pending comments, up to
        the batch size. Returns the new status of each comment this call decided, and how
        many pending comments the batch read (fewer than the batch size: none were left).

        ``reuse_for``: the model, rules and labels read less than this many seconds ago serve
        again (a job in a burst; by default every batch reads them)."""
        fresh = time.monotonic() - self._read_at >= reuse_for
        if fresh:
            self.models.refresh()
        with self.decision_sessions() as session:
            comments = list(session.scalars(pending_batch(self.batch_size)))
            if first_id is not None and first_id not in {c.id for c in comments}:
                own = session.scalars(
                    select(Comment)
                    .where(Comment.id == first_id, PENDING)
                    .with_for_update(skip_locked=True)
                ).first()
                if own is not None:
                    comments.insert(0, own)
            if not comments:
                return {}, 0
            decided: dict[int, str] = {}
            decisions = self.decide(session, comments, fresh=fresh)
            now = utcnow()  # after scoring: decided_at is when the verdict existed
            # SQLAlchemy core with statements built once: the ORM's per-row bookkeeping
            # cost more than scoring. Each UPDATE is conditional and checked on its own.
            connection = session.connection()
            audit: list[dict[str, Any]] = []
            for comment, decision in zip(comments, decisions, strict=True):
                result = connection.execute(_DECIDE, {
                    "comment_id": comment.id, "status": decision.status,
                    "spam_score": decision.spam_score, "reasons": decision.reasons,
                    "model_version": decision.model_version,
                    "decided_by": decision.decided_by, "decided_at": now,
                    "simhash": decision.simhash,
                })
                if result.rowcount == 1:
                    decided[comment.id] = decision.status
                    audit.append({"comment_id": comment.id, "actor": decision.decided_by,
                                  "action": "score", "from_status": CommentStatus.PENDING,
                                  "to_status": decision.status, "note": None,
                                  "created_at": now})
            if audit:
                connection.execute(_AUDIT, audit)  # one executemany
            caching.changed(session, {c.post for c in comments
                                      if decided.get(c.id) == CommentStatus.PUBLISHED})
            session.commit()
        for comment_id, status in decided.items():
            log.info("comment %s %s", comment_id, status, extra={"comment_id": comment_id})
        return decided, len(comments)

    def decide(self, session: Session, comments: Sequence[Comment], fresh: bool = True
               ) -> list[Decision]:
        """The rules' and the model's decision for each comment (no database writes).
        ``fresh``: read the rules and labels again (else the last ones read serve).

        Order: a blocking rule files it as spam, and so does a very sure model; a holding
        rule holds it (a human should look); the model's spam and hold bands apply, except
        that a trusted commenter is published; otherwise the model's band decides."""
        rules = self._rules
        if fresh or rules is None:
            rules = self._rules = RuleSet.load(session)
            stamp = label_stamp(session)
            if stamp != self._label_stamp:  # a label changed: what the site learned changed
                if not self.reputation.update(session, stamp[0]):
                    self.reputation = Reputation.load(session)
                self._label_stamp = stamp
            self._read_at = time.monotonic()
        models = self.models
        verdicts: list[Verdict | None] = [None] * len(comments)
        if models.pipeline is not None:
            verdicts = list(score(models.pipeline, [_sample(c) for c in comments],
                                  top=TOP_REASONS))
        signals = _blog_signals(session, comments)
        return [self._decide_one(session, rules, comment, verdict, signals.get(comment.id))
                for comment, verdict in zip(comments, verdicts, strict=True)]

    def _decide_one(self, session: Session, rules: RuleSet, comment: Comment,
                    verdict: Verdict | None, signals: dict[str, Any] | None = None
                    ) -> Decision:
        signals = signals or {}
        # Once per comment (~30 µs for 40 words): the reputation's campaigns, and the row's.
        digest = simhash(comment.content)
        hits = sorted([*rules.check(comment, self.reputation.trusted_links),
                       *blog_signal_hits(signals, comment.content, rules.hold_foreign_script),
                       *self.reputation.hits(comment.content, comment.author_url,
                                             comment.author_email, digest)],
                      key=lambda hit: hit.effect != "spam")
        reasons = [hit.reason for hit in hits]
        thresholds = self.models.thresholds
        if verdict is None or thresholds is None:
            status = CommentStatus.SPAM if hits and hits[0].effect == "spam" else \
                CommentStatus.HELD
            by = DecidedBy.RULE if status == CommentStatus.SPAM else DecidedBy.FALLBACK
            return Decision(status, None, [*reasons, NO_MODEL_REASON], None, by, digest)

        p = verdict.spam_score
        band = thresholds.band(p)
        reasons += [_band_reason(band, p, thresholds)]
        reasons += [str(c) for c in verdict.contributions]

        def decision(status: CommentStatus, by: DecidedBy) -> Decision:
            return Decision(status, round(p, 6), reasons, self.models.version, by, digest)

        member = blog_member(signals)
        new_status, decided_by, trusted = outcome(
            band, p, hits, rules.trusted_spam_ceiling,
            lambda: member is not None or rules.is_trusted(session, comment.reader_id))
        if trusted:
            reasons.insert(0, f"a member of the blog (WordPress role: {member})" if member
                           else "trusted commenter (approved before)")
        return decision(CommentStatus(new_status), DecidedBy(decided_by))


def _blog_signals(session: Session, comments: Sequence[Comment]) -> dict[int, dict[str, Any]]:
    """The blog engine's signals of the comments that came through the Akismet API (their
    check's row), by comment id; one query, and none for a batch of widget comments."""
    ids = [c.id for c in comments if c.site_id is not None]
    if not ids:
        return {}
    return {comment_id: signals or {} for comment_id, signals in session.execute(
        select(AkismetCheck.comment_id, AkismetCheck.signals)
        .where(AkismetCheck.comment_id.in_(ids)))}


def _sample(comment: Comment) -> dict[str, str]:
    return {
        "content": comment.content,
        "author_name": comment.author_name or "",
        "author_email": comment.author_email or "",
        "author_url": comment.author_url or "",
    }


def _band_reason(band: str, spam_score: float, thresholds: Thresholds) -> str:
    if band == Band.SPAM:
        return f"spam score {spam_score:.2f} above {thresholds.high:.2f}"
    if band == Band.PUBLISH:
        return f"spam score {spam_score:.2f} below {thresholds.low:.2f}"
    return f"spam score {spam_score:.2f} between {thresholds.low:.2f} and {thresholds.high:.2f}"


_scorer: Scorer | None = None


def configure(config: dict[str, Any]) -> Scorer:
    """Set this process's scorer from settings (the entry point and tests call this)."""
    global _scorer
    if _scorer is not None:
        _scorer.close()
    _scorer = Scorer.from_config(config)
    return _scorer


def get_scorer() -> Scorer:
    """This process's scorer, created from the environment on first use if not configured."""
    return _scorer or configure(load_config())


# A job stops taking new batches after this long and queues its successor, well inside
# SCORE_JOB_TIMEOUT (a 500-comment batch takes about a second).
JOB_BUDGET_SECONDS = 10.0
# In a burst a job keeps deciding: after a short batch of at least BURST_MIN_BATCH comments
# (they arrive faster than one per batch) it waits BURST_WAIT_SECONDS for the next ones and
# reads again, rather than ending and leaving a new job (RQ's bookkeeping) a batch of 1-5.
# Each batch costs ~4 ms besides its comments (queries, commit, the model's call), so a
# batch of 3 cost 2.5x per comment what one of 500 does. A comment that arrives alone (idle)
# is decided at once: its job reads it, finds no second one and ends.
BURST_MIN_BATCH = 2
# Bounded so that waiting adds at most this much to a decision under load (target: p99
# <= 250 ms at half the maximum ingest rate).
BURST_WAIT_SECONDS = 0.03
# Within one job, the model, rules and labels read this recently serve the next batch: in a
# burst they are read once a second, not for every batch (a moderator's change applies to
# comments decided from the next second on; every job starts by reading them).
CONTEXT_SECONDS = 1.0


def score_pending() -> int:
    """RQ job: decide every pending comment, oldest first, one batch (one transaction) at a
    time, until none is left. Returns how many this job decided.

    It first clears the mark that told submissions a job was waiting (`service.queue`), so a
    comment committed from then on queues the next job, and one committed before is read
    here. A comment leaves `pending` exactly once (a conditional UPDATE), whichever job or
    worker gets to it."""
    job = get_current_job()
    queue = None
    if job is not None:
        queue = Queue(job.origin, connection=job.connection)
        clear_request(queue, job.id)
    scorer = get_scorer()
    deadline = time.monotonic() + JOB_BUDGET_SECONDS
    total = 0
    reuse_for = 0.0  # the job's first batch reads the model, rules and labels
    while True:
        decided, read = scorer.decide_batch(reuse_for=reuse_for)
        reuse_for = CONTEXT_SECONDS
        events.after_decisions(scorer.sessions, decided)  # webhooks, latency metrics, alerts
        total += len(decided)
        if read < BURST_MIN_BATCH:
            return total
        if time.monotonic() > deadline:
            if queue is not None:
                request_scoring(queue)  # the rest is the next job's (or a queued one's)
            return total
        if read < scorer.batch_size:
            time.sleep(BURST_WAIT_SECONDS)  # comments are arriving: let the next batch fill


def score_comment(comment_id: int) -> str | None:
    """Decide comment ``comment_id`` now, with the oldest other pending ones (a direct call:
    the CLI and tests; the queue runs `score_pending`). Returns its new status, or None if it
    had already been decided."""
    scorer = get_scorer()
    decided, _ = scorer.decide_batch(comment_id)
    events.after_decisions(scorer.sessions, decided)
    return decided.get(comment_id)


# Pending comments older than this with no scoring job waiting get one from the reconciler.
RECONCILE_AFTER_SECONDS = 2
# The reconciler counts at most this many of them (for its log line).
RECONCILE_LIMIT = 1000


def reconcile(scorer: Scorer, queue: Queue, older_than: float = RECONCILE_AFTER_SECONDS
              ) -> int:
    """Queue a scoring job if comments have been pending for ``older_than`` seconds and none
    is waiting: their submission could not reach Redis, or the job was lost (Redis lost its
    memory, a worker died mid-job). Returns how many such comments there were when a job was
    queued for them, else 0."""
    cutoff = utcnow() - timedelta(seconds=older_than)
    with scorer.sessions() as session:
        waiting = session.scalar(select(func.count()).select_from(
            select(Comment.id)
            .where(PENDING, Comment.created_at <= cutoff)
            .limit(RECONCILE_LIMIT).subquery()))
    if not waiting or scoring_queued(queue):
        return 0
    request_scoring(queue, replace=True)
    log.warning("reconciler queued a scoring job for %d pending comments", waiting)
    return int(waiting)


def rescore(scorer: Scorer, statuses: Sequence[str] = ("pending", "held"),
            on_moved: Callable[[Session, list[Comment]], Any] | None = None) -> dict[str, Any]:
    """Re-decide undecided and held comments with the active model and rules.

    Every comment read gets the new score, reasons and model version; one whose status
    changes is audited as moved by the model (actor = who decided: model, rule or
    fallback). Comments a moderator labelled are never touched. ``on_moved`` gets the
    comments of each batch that moved, after its commit (the CLI sends their webhook
    events). Returns ``{"rescored": n, "moved": {new status: n}}``."""
    scorer.models.refresh()
    moved: dict[str, int] = {}
    rescored = 0
    last_id = 0
    while True:
        with scorer.sessions() as session:
            comments = list(session.scalars(
                select(Comment).where(Comment.status.in_(statuses), Comment.label.is_(None),
                                      Comment.id > last_id)
                .order_by(Comment.id).limit(scorer.batch_size)
            ))
            if not comments:
                return {"rescored": rescored, "moved": moved}
            last_id = comments[-1].id
            now = utcnow()
            batch_moved: list[int] = []
            for comment, decision in zip(comments, scorer.decide(session, comments),
                                         strict=True):
                changes: dict[str, Any] = {
                    "spam_score": decision.spam_score, "reasons": decision.reasons,
                    "model_version": decision.model_version, "decided_by": decision.decided_by,
                    "simhash": decision.simhash}
                if decision.status != comment.status:
                    changes.update(status=decision.status, decided_at=now)
                result = session.execute(
                    update(Comment)
                    .where(Comment.id == comment.id, Comment.status == comment.status,
                           Comment.label.is_(None))
                    .values(**changes)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount != 1:  # type: ignore[attr-defined]
                    continue  # a moderator or a worker got there first
                rescored += 1
                if decision.status != comment.status:
                    session.add(CommentEvent(
                        comment_id=comment.id, actor=decision.decided_by, action="rescore",
                        from_status=comment.status, to_status=decision.status, created_at=now,
                    ))
                    moved[decision.status] = moved.get(decision.status, 0) + 1
                    batch_moved.append(comment.id)
                    if CommentStatus.PUBLISHED in (comment.status, decision.status):
                        caching.changed(session, [comment.post])
            session.commit()
            if on_moved is not None and batch_moved:
                on_moved(session, list(session.scalars(
                    select(Comment).where(Comment.id.in_(batch_moved)).order_by(Comment.id)
                    .execution_options(populate_existing=True))))


def rescore_job(statuses: Sequence[str]) -> dict[str, Any]:
    """RQ job (queued by the admins' models page): `rescore` with this worker's scorer; the
    moves' webhook events go to the delivery queue."""
    from service import webhooks

    job = get_current_job()
    config = load_config()
    connection = job.connection if job is not None else None

    def deliver(session: Session, comments: list[Comment]) -> None:
        if connection is not None:
            webhooks.comments_decided(session, webhooks.queue_for(connection, config),
                                      comments)

    result = rescore(get_scorer(), tuple(statuses), on_moved=deliver)
    log.info("rescored %d comments (%s): moved %s", result["rescored"],
             ", ".join(statuses), result["moved"])
    return result
