"""RQ jobs: score pending comments and decide them (publish, hold, spam).

A scoring worker process keeps one `Scorer`: the database sessions and the active model,
loaded once and swapped when ``ACTIVE`` names another version. Jobs take ids, reload rows, and
are idempotent: a comment leaves `pending` exactly once, by a conditional UPDATE.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any, cast

from redis.exceptions import RedisError
from rq import Queue, get_current_job
from rq.job import Job, JobStatus
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.artifacts import ArtifactError, ArtifactStore
from models.explain import Verdict, score
from models.policy import Band, Thresholds
from service.config import load_config
from service.db import (
    Comment,
    CommentEvent,
    CommentStatus,
    DecidedBy,
    make_engine,
    make_sessionmaker,
)
from service.db.types import utcnow
from service.queue import enqueue_scoring, score_job_id
from service.rules import RuleSet
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


class ModelHolder:
    """The active model, loaded once and reloaded when the store's ``ACTIVE`` pointer moves."""

    def __init__(self, store: ArtifactStore, overrides: Thresholds | None = None) -> None:
        self.store = store
        self.overrides = overrides
        self.version: str | None = None
        self.pipeline: Any = None
        self.thresholds: Thresholds | None = None
        self._stamp: tuple[str | None, float] | None = None

    def _pointer_stamp(self) -> tuple[str | None, float]:
        try:
            mtime = os.stat(self.store.root / "ACTIVE").st_mtime
        except FileNotFoundError:
            return (None, 0.0)
        return (self.store.active_version(), mtime)

    def refresh(self) -> None:
        """Load the active model if it changed since the last call (a cheap stat otherwise)."""
        stamp = self._pointer_stamp()
        if stamp == self._stamp and self.pipeline is not None:
            return
        self._stamp = stamp
        try:
            pipeline, metadata = self.store.load()
        except ArtifactError as exc:
            if self.pipeline is None:
                log.error("no usable model: %s", exc)
            else:
                log.error("keeping model %s; new one unusable: %s", self.version, exc)
            return
        limits = metadata["thresholds"]
        self.thresholds = self.overrides or Thresholds(limits["low"], limits["high"])
        self.pipeline, self.version = pipeline, metadata["version"]
        log.info("model %s loaded (thresholds %s)", self.version, self.thresholds)


_COMMENTS = cast(Table, Comment.__table__)
# A pending comment's verdict: applied only if it is still pending.
_DECIDE = (
    update(_COMMENTS)
    .where(_COMMENTS.c.id == bindparam("comment_id"),
           _COMMENTS.c.status == CommentStatus.PENDING)
    .values({name: bindparam(name) for name in
             ("status", "spam_score", "reasons", "model_version", "decided_by", "decided_at")})
)
_AUDIT = insert(cast(Table, CommentEvent.__table__))


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

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Scorer:
        """A scorer for the configured database and model store."""
        low, high = config["SPAM_THRESHOLD_LOW"], config["SPAM_THRESHOLD_HIGH"]
        overrides = Thresholds(low, high) if low is not None and high is not None else None
        models = ModelHolder(ArtifactStore(config["MODEL_DIR"]), overrides)
        sessions = make_sessionmaker(make_engine(config["DATABASE_URL"]))
        # A decision is redoable: one lost to a power cut leaves its comment pending, and the
        # reconciler queues it again. So its commit need not wait for the disk.
        decisions = make_sessionmaker(make_engine(config["DATABASE_URL"], redoable=True))
        return cls(sessions, models, config["SCORE_BATCH_SIZE"], decisions)

    def close(self) -> None:
        """Release the database connections."""
        for factory in {self.sessions, self.decision_sessions}:
            engine = factory.kw.get("bind")
            if engine is not None:
                engine.dispose()

    def decide_pending(self, first_id: int | None = None) -> dict[int, str]:
        """Decide ``first_id`` (if still pending) and the oldest other pending comments, up to
        the batch size. Returns the new status of each comment this call decided."""
        self.models.refresh()
        with self.decision_sessions() as session:
            query = (
                select(Comment)
                .where(Comment.status == CommentStatus.PENDING)
                .order_by(Comment.id)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            )
            comments = list(session.scalars(query))
            if first_id is not None and first_id not in {c.id for c in comments}:
                own = session.scalars(
                    select(Comment)
                    .where(Comment.id == first_id, Comment.status == CommentStatus.PENDING)
                    .with_for_update(skip_locked=True)
                ).first()
                if own is not None:
                    comments.insert(0, own)
            if not comments:
                return {}
            decided: dict[int, str] = {}
            decisions = self.decide(session, comments)
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
                })
                if result.rowcount == 1:
                    decided[comment.id] = decision.status
                    audit.append({"comment_id": comment.id, "actor": decision.decided_by,
                                  "action": "score", "from_status": CommentStatus.PENDING,
                                  "to_status": decision.status, "note": None,
                                  "created_at": now})
            if audit:
                connection.execute(_AUDIT, audit)  # one executemany
            session.commit()
        for comment_id, status in decided.items():
            log.info("comment %s %s", comment_id, status, extra={"comment_id": comment_id})
        return decided

    def decide(self, session: Session, comments: Sequence[Comment]) -> list[Decision]:
        """The rules' and the model's decision for each comment (no database writes).

        Order: a blocking rule files it as spam, and so does a very sure model; a holding
        rule holds it (a human should look); the model's spam and hold bands apply, except
        that a trusted commenter is published; otherwise the model's band decides."""
        rules = RuleSet.load(session)
        models = self.models
        verdicts: list[Verdict | None] = [None] * len(comments)
        if models.pipeline is not None:
            verdicts = list(score(models.pipeline, [_sample(c) for c in comments],
                                  top=TOP_REASONS))
        return [self._decide_one(session, rules, comment, verdict)
                for comment, verdict in zip(comments, verdicts, strict=True)]

    def _decide_one(self, session: Session, rules: RuleSet, comment: Comment,
                    verdict: Verdict | None) -> Decision:
        hits = rules.check(comment)
        reasons = [hit.reason for hit in hits]
        thresholds = self.models.thresholds
        if verdict is None or thresholds is None:
            status = CommentStatus.SPAM if hits and hits[0].effect == "spam" else \
                CommentStatus.HELD
            by = DecidedBy.RULE if status == CommentStatus.SPAM else DecidedBy.FALLBACK
            return Decision(status, None, [*reasons, NO_MODEL_REASON], None, by)

        p = verdict.spam_score
        band = thresholds.band(p)
        reasons += [_band_reason(band, p, thresholds)]
        reasons += [str(c) for c in verdict.contributions]

        def decision(status: CommentStatus, by: DecidedBy) -> Decision:
            return Decision(status, round(p, 6), reasons, self.models.version, by)

        if any(hit.effect == "spam" for hit in hits):
            return decision(CommentStatus.SPAM, DecidedBy.RULE)
        very_sure = p >= rules.trusted_spam_ceiling
        if very_sure:
            return decision(CommentStatus.SPAM, DecidedBy.MODEL)
        trusted = band != Band.PUBLISH and rules.is_trusted(session, comment.author_email)
        if band == Band.SPAM and not trusted and not hits:
            return decision(CommentStatus.SPAM, DecidedBy.MODEL)
        if hits:
            # A holding rule asks for a human: only a very sure model overrides it.
            return decision(CommentStatus.HELD, DecidedBy.RULE)
        if trusted:
            reasons.insert(0, "trusted commenter (approved before)")
            return decision(CommentStatus.PUBLISHED, DecidedBy.RULE)
        return decision(CommentStatus(band), DecidedBy.MODEL)


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


def score_comment(comment_id: int) -> str | None:
    """RQ job: decide comment ``comment_id`` (and other pending ones with it).

    Returns the comment's new status, or None if it had already been decided."""
    decided = get_scorer().decide_pending(comment_id)
    events.after_decisions(get_scorer(), decided)  # webhooks, latency metrics, alerts
    drop_queued_jobs([i for i in decided if i != comment_id])
    return decided.get(comment_id)


def drop_queued_jobs(comment_ids: Sequence[int]) -> int:
    """Take the still-queued jobs of comments a batch just decided (and committed) off the
    queue. Each would be a no-op that costs the worker a dequeue, a fetch and two status
    writes, several ms, more than scoring the comment. A job already taken by a worker is
    left alone (it finds nothing pending); the reconciler only looks at pending comments.
    Best effort: a Redis error leaves the no-ops in place. Returns how many were dropped."""
    job = get_current_job()
    if job is None or not comment_ids:
        return 0
    redis = job.connection
    queue = Queue(job.origin, connection=redis)
    job_ids = [score_job_id(i) for i in comment_ids]
    try:
        with redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                queue.remove(job_id, pipeline=pipe)
            removed = pipe.execute()
        gone = [Job.key_for(j) for j, n in zip(job_ids, removed, strict=True) if n]
        if gone:
            redis.delete(*gone)
    except RedisError as error:
        log.warning("could not drop %d no-op jobs: %s", len(job_ids),
                    error.__class__.__name__, extra={"job_id": job.id})
        return 0
    return len(gone)


# A scoring job that "started" this long ago died with its worker (jobs take well under 10 s).
LOST_JOB_SECONDS = 60
# Pending comments older than this without a live job are queued again.
RECONCILE_AFTER_SECONDS = 5
# At most this many comments re-queued per round (one job decides a whole batch anyway).
RECONCILE_LIMIT = 1000


def reconcile(scorer: Scorer, queue: Queue, older_than: float = RECONCILE_AFTER_SECONDS
              ) -> int:
    """Queue again every pending comment whose job is missing, failed or lost.

    A comment whose job is queued, scheduled, or started less than LOST_JOB_SECONDS ago is
    left alone, so a comment is never queued twice at once. Returns how many were queued."""
    cutoff = utcnow() - timedelta(seconds=older_than)
    with scorer.sessions() as session:
        ids = list(session.scalars(
            select(Comment.id)
            .where(Comment.status == CommentStatus.PENDING, Comment.created_at <= cutoff)
            .order_by(Comment.id).limit(RECONCILE_LIMIT)
        ))
    requeued = 0
    # One pipelined round trip for all their jobs (fetching them one by one cost 16 % of a
    # worker during a 20,000-comment backlog).
    found = Job.fetch_many([score_job_id(i) for i in ids], connection=queue.connection,
                           serializer=queue.serializer)
    for comment_id, job in zip(ids, found, strict=True):
        if job is not None:
            status = job.get_status(refresh=False)
            if status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
                continue
            if status == JobStatus.STARTED and job.started_at is not None and (
                utcnow() - job.started_at.replace(tzinfo=UTC)
            ).total_seconds() < LOST_JOB_SECONDS:
                continue
            job.delete()
        enqueue_scoring(queue, comment_id)
        requeued += 1
    if requeued:
        log.warning("reconciler queued %d pending comments again", requeued)
    return requeued


def rescore(scorer: Scorer, statuses: Sequence[str] = ("pending", "held"),
            on_moved: Callable[[Session, list[Comment]], Any] | None = None) -> dict[str, int]:
    """Re-decide undecided and held comments with the active model and rules.

    Comments a moderator labelled are never touched; each move is audited as made by the
    model (actor = who decided: model, rule or fallback). ``on_moved`` gets the comments of
    each batch that moved, after its commit (the CLI sends their webhook events). Returns
    moves per new status."""
    scorer.models.refresh()
    moved: dict[str, int] = {}
    last_id = 0
    while True:
        with scorer.sessions() as session:
            comments = list(session.scalars(
                select(Comment).where(Comment.status.in_(statuses), Comment.label.is_(None),
                                      Comment.id > last_id)
                .order_by(Comment.id).limit(scorer.batch_size)
            ))
            if not comments:
                return moved
            last_id = comments[-1].id
            now = utcnow()
            batch_moved: list[int] = []
            for comment, decision in zip(comments, scorer.decide(session, comments),
                                         strict=True):
                if decision.status == comment.status:
                    continue
                result = session.execute(
                    update(Comment)
                    .where(Comment.id == comment.id, Comment.status == comment.status,
                           Comment.label.is_(None))
                    .values(status=decision.status, spam_score=decision.spam_score,
                            reasons=decision.reasons, model_version=decision.model_version,
                            decided_by=decision.decided_by, decided_at=now)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    session.add(CommentEvent(
                        comment_id=comment.id, actor=decision.decided_by, action="rescore",
                        from_status=comment.status, to_status=decision.status, created_at=now,
                    ))
                    moved[decision.status] = moved.get(decision.status, 0) + 1
                    batch_moved.append(comment.id)
            session.commit()
            if on_moved is not None and batch_moved:
                on_moved(session, list(session.scalars(
                    select(Comment).where(Comment.id.in_(batch_moved)).order_by(Comment.id)
                    .execution_options(populate_existing=True))))
