"""What follows a batch of decisions, once it is committed: webhook deliveries, latency
metrics and the held-queue alert. Kept apart from `jobs.py` so scoring stays readable; it
imports nothing from `jobs.py` (jobs calls it with its session factory). The deliveries go to
their own queue (WEBHOOK_QUEUE_NAME), run by the delivery worker."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from rq import get_current_job
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service import metrics, notify, webhooks
from service.config import load_config
from service.db import Comment, CommentStatus
from service.db.types import utcnow

log = logging.getLogger(__name__)


def after_decisions(sessions: sessionmaker[Session], decided: dict[int, str]) -> None:
    """Queue webhook events for ``decided`` (comment id -> new status), record latencies,
    alert moderators if the held queue grew. Needs the RQ job's Redis: a direct call outside
    a job (tests, scripts) does nothing."""
    job = get_current_job()
    if not decided or job is None:
        return
    config = load_config()
    queue = webhooks.queue_for(job.connection, {**config, "QUEUE_NAME": job.origin})
    with sessions() as session:
        comments = list(session.scalars(
            select(Comment).where(Comment.id.in_(decided)).order_by(Comment.id)))
        webhooks.comments_decided(session, queue, comments)
        if CommentStatus.HELD in decided.values():
            notify.check_held(session, job.connection, queue, config)
    latencies = [(c.decided_at - c.created_at).total_seconds()
                 for c in comments if c.decided_at is not None]
    try:
        metrics.observe(job.connection, "decision_latency_seconds", latencies)
        if job.started_at is not None:
            started = job.started_at if job.started_at.tzinfo else \
                job.started_at.replace(tzinfo=utcnow().tzinfo)
            metrics.observe(job.connection, "job_duration_seconds",
                            [(utcnow() - started).total_seconds()])
    except RedisError as error:  # metrics are best effort: the decisions stand
        log.warning("could not record latencies: %s", error.__class__.__name__,
                    extra={"job_id": job.id})
