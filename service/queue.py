"""The scoring queue. Jobs are enqueued by dotted name so the web never imports the worker
(nor scikit-learn).

A stored comment does not get a job of its own: a scoring job decides every pending comment,
oldest first, in batches. So the web only has to make sure that *a* scoring job will start
after its commit. A Redis key names the job that is queued and not yet started; a submission
that finds it set has nothing to queue (one round trip, the common case under load), and the
job clears it when it starts, before it reads the pending comments. Either way, every stored
comment is read by a job that starts after it was committed. The workers' reconciler covers
the rest (Redis down at submission, a lost job).
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import uuid4

import pybreaker
from flask import Flask, current_app
from redis import Redis
from redis.client import Pipeline
from redis.exceptions import ConnectionError, RedisError, TimeoutError
from rq import Queue, Retry
from rq.job import Job, JobStatus

log = logging.getLogger(__name__)

SCORE_JOB = "worker.jobs.score_pending"
# Transient failures (database briefly locked, a deploy) are retried after 1 s, 5 s and 30 s.
SCORE_RETRY = Retry(max=3, interval=[1, 5, 30])
# A scoring job that has not started within a day is pointless: the reconciler queues another.
SCORE_JOB_TTL = 24 * 3600
# A job stops taking batches after about 10 s (`worker.jobs.JOB_BUDGET_SECONDS`) and queues
# its successor; a job still running after this is stuck.
SCORE_JOB_TIMEOUT = 60
# How long the "a job is queued" mark may outlive a job that was lost with Redis's memory or
# never queued; the reconciler replaces a stale mark sooner.
REQUESTED_TTL = 60
# A scoring job scheduled for a retry counts as waiting this long after it was created (its
# retries come within 36 s); later, its scheduler is presumed gone and another job is queued.
RETRY_PATIENCE_SECONDS = 45

# Deletes the mark only if it still names the given job (a newer job's mark stays).
_CLEAR_IF_OURS = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


# A web request's Redis calls give up after this long: a hung Redis costs one request a
# quarter of a second, then the breaker skips Redis for every request for a while.
WEB_REDIS_TIMEOUT_SECONDS = 0.25
# Once Redis was seen down or hung, web requests skip it for this long (a comment is stored
# pending and the reconciler queues it), then one request tries it again.
BREAKER_RESET_SECONDS = 5
# A blocking read (a wait for a job's result) gets a connection whose timeout outlasts it.
BLOCKING_TIMEOUT_SECONDS = 30
_BLOCKING_COMMANDS = frozenset({"BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BLMPOP", "BZPOPMIN",
                                "BZPOPMAX", "BZMPOP", "XREAD", "XREADGROUP", "WAIT"})
# When a worker of a queue last said it is alive (the reconciler thread writes it).
WORKER_HEARTBEAT_KEY = "{queue}:worker-seen"


def connect(url: str) -> Redis:
    """A Redis client for ``url`` with short timeouts: a dead Redis must not stall a worker."""
    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def _word(arg: Any) -> str:
    return (arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg)).upper()


def _is_outage(error: BaseException) -> bool:
    return isinstance(error, (ConnectionError, TimeoutError))


def new_breaker() -> pybreaker.CircuitBreaker:
    """A breaker that opens on the first connection error or timeout (not on a command's
    own error, such as a wrong type) and lets one call through after BREAKER_RESET_SECONDS."""
    return pybreaker.CircuitBreaker(fail_max=1, reset_timeout=BREAKER_RESET_SECONDS,
                                    exclude=[lambda error: not _is_outage(error)],
                                    name="redis")


def _through(breaker: pybreaker.CircuitBreaker, call: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return breaker.call(call, *args, **kwargs)
    except pybreaker.CircuitBreakerError as error:
        # What every caller already handles: Redis is unavailable.
        raise ConnectionError(f"Redis skipped for {BREAKER_RESET_SECONDS} s after a failure"
                              ) from error


class GuardedPipeline(Pipeline):
    """A pipeline whose round trip goes through the client's breaker."""

    breaker: pybreaker.CircuitBreaker

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Send the queued commands, unless the breaker is open."""
        return cast(list[Any], _through(self.breaker, super().execute, raise_on_error))


class GuardedRedis(Redis):
    """The web's Redis client: short timeouts, and a circuit breaker so that a Redis that is
    down or hung is skipped at once by every request until it answers again. Blocking reads
    go to a second connection pool with a timeout longer than their wait."""

    breaker: pybreaker.CircuitBreaker
    blocking: Redis

    def execute_command(self, *args: Any, **options: Any) -> Any:
        """Run one command through the breaker."""
        words = [_word(arg) for arg in args[:8]]
        name = words[0] if words else ""
        if name in _BLOCKING_COMMANDS and (not name.startswith("XREAD") or "BLOCK" in words):
            return _through(self.breaker, self.blocking.execute_command, *args, **options)
        return _through(self.breaker, super().execute_command, *args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> GuardedPipeline:
        """A pipeline sharing this client's breaker."""
        pipe = GuardedPipeline(self.connection_pool, self.response_callbacks, transaction,
                               shard_hint)
        pipe.breaker = self.breaker
        return pipe


def connect_guarded(url: str, timeout: float = WEB_REDIS_TIMEOUT_SECONDS,
                    breaker: pybreaker.CircuitBreaker | None = None) -> GuardedRedis:
    """The web's client for ``url``: ``timeout`` on every call, one breaker for all of them."""
    client = cast(GuardedRedis, GuardedRedis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout))
    client.breaker = breaker or new_breaker()
    client.blocking = Redis.from_url(url, socket_connect_timeout=timeout,
                                     socket_timeout=BLOCKING_TIMEOUT_SECONDS)
    return client


def init_app(app: Flask) -> None:
    """Attach a Redis connection and the scoring queue to the app."""
    url = app.config["REDIS_URL"] or "redis://127.0.0.1:6379/0"
    redis = connect_guarded(url)
    app.extensions["redis"] = redis
    app.extensions["scoring_queue"] = Queue(app.config["QUEUE_NAME"], connection=redis)


def mark_worker_seen(connection: Redis, queue_name: str) -> None:
    """A worker of ``queue_name`` is alive now (its heartbeat, every few seconds)."""
    connection.set(WORKER_HEARTBEAT_KEY.format(queue=queue_name), f"{time.time():.3f}",
                   ex=24 * 3600)


def worker_seen_ago(connection: Redis, queue_name: str) -> float | None:
    """Seconds since a worker of ``queue_name`` last beat, or None if none ever did (in a
    day)."""
    value = connection.get(WORKER_HEARTBEAT_KEY.format(queue=queue_name))
    if value is None:
        return None
    return max(0.0, time.time() - float(value))


def redis() -> Redis:
    """The app's Redis connection."""
    return cast(Redis, current_app.extensions["redis"])


def requested_key(queue: Queue) -> str:
    """The key naming the scoring job that is queued and has not started yet."""
    return f"{queue.name}:scoring-requested"


def request_scoring(queue: Queue, *, replace: bool = False) -> str | None:
    """Make sure a scoring job starts after this call: queue one, unless one is queued and
    not started yet. Returns the id of the job queued, or None when one was waiting already.
    ``replace``: queue one whatever the mark says (the reconciler, for a stale mark)."""
    connection = queue.connection
    job_id = f"score-{uuid4().hex}"
    key = requested_key(queue)
    if not connection.set(key, job_id, nx=not replace, ex=REQUESTED_TTL):
        return None
    try:
        with connection.pipeline() as pipe:
            queue.enqueue(
                SCORE_JOB,
                job_id=job_id,
                retry=SCORE_RETRY,
                ttl=SCORE_JOB_TTL,
                job_timeout=SCORE_JOB_TIMEOUT,
                result_ttl=0,  # nobody reads results: the decisions are on the comments' rows
                failure_ttl=7 * 24 * 3600,
                description="score pending comments",
                pipeline=pipe,
            )
            pipe.execute()
    except Exception:
        # The mark must not promise a job that does not exist (if Redis is gone, the mark
        # expires, and the reconciler queues a job for the comments meanwhile).
        with contextlib.suppress(RedisError):
            clear_request(queue, job_id)
        raise
    return job_id


def clear_request(queue: Queue, job_id: str) -> None:
    """Clear the mark if it still names ``job_id``: the job starts (a submission from now on
    must queue another one), or it could not be queued."""
    queue.connection.eval(_CLEAR_IF_OURS, 1, requested_key(queue), job_id)


def scoring_queued(queue: Queue) -> bool:
    """Whether the job the mark names is still waiting to run: in the queue itself, or
    scheduled for a retry lately.

    A job a worker took and died with before starting it still reads "queued" (RQ keeps it in
    its intermediate list for a minute), and a retry waits for RQ's scheduler, which may have
    died with its worker's machine: neither is waiting (seen in `make cluster-drill`: decisions
    stopped for a minute after a worker machine died)."""
    job_id = queue.connection.get(requested_key(queue))
    if job_id is None:
        return False
    if isinstance(job_id, bytes):
        job_id = job_id.decode()
    job = Job.fetch_many([job_id], connection=queue.connection,
                         serializer=queue.serializer)[0]
    if job is None:
        return False
    status = job.get_status(refresh=False)
    if status == JobStatus.QUEUED:
        return queue.connection.lpos(queue.key, job_id) is not None
    if status in (JobStatus.SCHEDULED, JobStatus.DEFERRED):
        created = job.created_at.replace(tzinfo=job.created_at.tzinfo or UTC)
        return datetime.now(UTC) - created < timedelta(seconds=RETRY_PATIENCE_SECONDS)
    return False


def scoring_queue() -> Queue:
    """The app's scoring queue."""
    return cast(Queue, current_app.extensions["scoring_queue"])
