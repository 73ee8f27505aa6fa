"""The scoring queue. Jobs are enqueued by dotted name so the web never imports the worker
(nor scikit-learn)."""

from __future__ import annotations

import logging
from typing import cast

from flask import Flask, current_app
from redis import Redis
from rq import Queue, Retry

log = logging.getLogger(__name__)

SCORE_JOB = "worker.jobs.score_comment"
# Transient failures (database briefly locked, a deploy) are retried after 1 s, 5 s and 30 s.
SCORE_RETRY = Retry(max=3, interval=[1, 5, 30])
# A scoring job that has not started within a day is pointless: the reconciler re-enqueues.
SCORE_JOB_TTL = 24 * 3600
# A batch of 500 scores in well under a second; a job still running after this is stuck.
SCORE_JOB_TIMEOUT = 30


def connect(url: str) -> Redis:
    """A Redis client for ``url`` with short timeouts: a dead Redis must not stall a request."""
    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def init_app(app: Flask) -> None:
    """Attach a Redis connection and the scoring queue to the app."""
    url = app.config["REDIS_URL"] or "redis://127.0.0.1:6379/0"
    redis = connect(url)
    app.extensions["redis"] = redis
    app.extensions["scoring_queue"] = Queue(app.config["QUEUE_NAME"], connection=redis)


def redis() -> Redis:
    """The app's Redis connection."""
    return cast(Redis, current_app.extensions["redis"])


def score_job_id(comment_id: int) -> str:
    """Job ids derive from the comment id, so a comment's job is always findable."""
    return f"score-{comment_id}"


def enqueue_scoring(queue: Queue, comment_id: int) -> None:
    """Queue the scoring job of one stored comment, in one round trip to Redis (RQ alone
    makes two: the queue registry, then the job and its push)."""
    with queue.connection.pipeline() as pipe:
        queue.enqueue(
            SCORE_JOB,
            comment_id,
            job_id=score_job_id(comment_id),
            retry=SCORE_RETRY,
            ttl=SCORE_JOB_TTL,
            job_timeout=SCORE_JOB_TIMEOUT,
            result_ttl=0,  # nobody reads results: the decision is on the comment's row
            failure_ttl=7 * 24 * 3600,
            description=f"score comment {comment_id}",
            pipeline=pipe,
        )
        pipe.execute()


def scoring_queue() -> Queue:
    """The app's scoring queue."""
    return cast(Queue, current_app.extensions["scoring_queue"])
