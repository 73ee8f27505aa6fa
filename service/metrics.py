"""Prometheus metrics at ``GET /metrics``, right across every web and worker process.

Gunicorn runs several web processes and there are several workers, so counters kept in one
process's memory would be wrong. Everything is read at scrape time from durable state
instead: comments and decisions from the database (the audit trail in ``comment_events``),
queue depth from Redis and the active model from the database. The few things that leave no
row (rate-limit refusals, latencies) are counted in Redis by whichever process sees them.

The recording functions take a Redis connection and never touch Flask: the worker uses them.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from service.db import Comment, CommentEvent, CommentStatus
from service.db.model_store import ModelStore

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)

PREFIX = "commentguard"
REFUSALS_KEY = "metrics:rate_limited"
HISTOGRAM_KEY = "metrics:histogram:{}"

# Seconds from submission to decision: the worker usually answers in well under a second;
# the long tail shows a backlog (or workers down) that readers notice.
DECISION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)
# Seconds one scoring job runs: a batch of 500 scores in well under a second.
JOB_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HISTOGRAMS: dict[str, tuple[Sequence[float], str]] = {
    "decision_latency_seconds": (DECISION_BUCKETS, "Seconds from submission to the first "
                                                   "decision (model, rule or fallback)."),
    "job_duration_seconds": (JOB_BUCKETS, "Seconds a scoring job ran."),
}


def _bound(value: float) -> str:
    return repr(float(value))


def observe(redis: Redis, name: str, values: Iterable[float]) -> None:
    """Add observations to histogram ``name``; buckets are cumulative, as Prometheus wants."""
    buckets, _ = HISTOGRAMS[name]
    values = list(values)
    if not values:
        return
    counts: dict[str, int] = {}
    for value in values:
        for bound in buckets:
            if value <= bound:
                counts[_bound(bound)] = counts.get(_bound(bound), 0) + 1
    key = HISTOGRAM_KEY.format(name)
    pipe = redis.pipeline(transaction=False)
    for field, n in counts.items():
        pipe.hincrby(key, field, n)
    pipe.hincrby(key, "+Inf", len(values))
    pipe.hincrbyfloat(key, "sum", sum(values))
    pipe.execute()


def count_refusal(redis: Redis) -> None:
    """Count one request refused with 429 (rate limit or flood control). Best effort: a
    Redis outage loses the count, never the response."""
    try:
        redis.incr(REFUSALS_KEY)
    except RedisError as error:
        log.warning("could not count a refusal: %s", error.__class__.__name__)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _histogram(redis: Redis, name: str) -> HistogramMetricFamily:
    buckets, documentation = HISTOGRAMS[name]
    stored = {_text(k): _text(v) for k, v in redis.hgetall(HISTOGRAM_KEY.format(name)).items()}
    total = int(stored.get("+Inf", 0))
    family = HistogramMetricFamily(f"{PREFIX}_{name}", documentation)
    family.add_metric(
        [],
        [(_bound(b), int(stored.get(_bound(b), 0))) for b in buckets] + [("+Inf", total)],
        float(stored.get("sum", 0.0)),
    )
    return family


def decisions_by(session: Session) -> list[tuple[str, str, int]]:
    """(status, who decided, count) over the audit trail: model, rule, fallback or moderator."""
    who = case((CommentEvent.moderator_id.is_not(None), "moderator"), else_=CommentEvent.actor)
    rows = session.execute(
        select(CommentEvent.to_status, who, func.count()).group_by(CommentEvent.to_status, who)
    ).all()
    return [(str(status), str(actor), int(n)) for status, actor, n in rows]


class StateCollector(Collector):
    """Reads the service's state at each scrape; a part that is down yields ``up 0``."""

    def __init__(self, sessions: Callable[[], Session], redis: Redis, queue_names: Sequence[str]
                 ) -> None:
        self.sessions = sessions
        self.redis = redis
        self.queue_names = list(dict.fromkeys(queue_names))

    def collect(self) -> Iterator[Metric]:
        """Every metric family, computed now."""
        up = GaugeMetricFamily(f"{PREFIX}_up", "1 if the scrape could read this part.",
                               labels=["part"])
        try:
            yield from self._database()
            up.add_metric(["database"], 1)
        except Exception as error:  # a scrape must answer even with the database down
            log.warning("metrics: database unreadable: %s", error.__class__.__name__)
            up.add_metric(["database"], 0)
        try:
            yield from self._redis()
            up.add_metric(["redis"], 1)
        except RedisError as error:
            log.warning("metrics: redis unreadable: %s", error.__class__.__name__)
            up.add_metric(["redis"], 0)
        yield up

    def _database(self) -> list[Metric]:
        with self.sessions() as session:
            received = session.scalar(select(func.count()).select_from(Comment)) or 0
            by_status = dict(session.execute(
                select(Comment.status, func.count()).group_by(Comment.status)).all())
            decisions = decisions_by(session)
            model = self._model(session)
        total = CounterMetricFamily(f"{PREFIX}_comments_received",
                                    "Comments stored since the database was created.")
        total.add_metric([], received)
        current = GaugeMetricFamily(f"{PREFIX}_comments", "Comments now in each status.",
                                    labels=["status"])
        for status in CommentStatus:
            current.add_metric([status.value], by_status.get(status, 0))
        decided = CounterMetricFamily(
            f"{PREFIX}_decisions", "Status changes by status and by who decided "
            "(model, rule, fallback, moderator).", labels=["status", "decided_by"])
        for to_status, who, n in decisions:
            decided.add_metric([to_status, who], n)
        return [total, current, decided, model]

    def _redis(self) -> list[Metric]:
        depth = GaugeMetricFamily(f"{PREFIX}_queue_jobs", "Jobs waiting in an RQ queue.",
                                  labels=["queue"])
        for name in self.queue_names:
            depth.add_metric([name], Queue(name, connection=self.redis).count)
        refused = CounterMetricFamily(f"{PREFIX}_rate_limited",
                                      "Requests refused with 429 (rate limit, flood control).")
        refused.add_metric([], int(self.redis.get(REFUSALS_KEY) or 0))
        return [depth, refused, *(_histogram(self.redis, name) for name in HISTOGRAMS)]

    def _model(self, session: Session) -> Metric:
        info = InfoMetricFamily(f"{PREFIX}_model", "The active spam model (its database row).")
        info.add_metric([], {"version": ModelStore().active_version(session) or ""})
        return info


def registry_for(collector: Collector) -> CollectorRegistry:
    """A registry holding only ``collector`` (no per-process metrics: they would mislead)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def token_matches(expected: str, authorization: str | None) -> bool:
    """True if no token is configured, or the Authorization header carries it (Bearer)."""
    if not expected:
        return True
    scheme, _, token = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), expected)


def init_app(app: Flask) -> None:
    """Serve ``GET /metrics`` (Bearer ``METRICS_TOKEN`` if set) from the app's database,
    Redis and model store. Flask is imported here only: the worker imports this module."""
    from flask import Response, request
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from service.errors import ForbiddenError, UnauthorizedError

    config = app.config
    queues = [config["QUEUE_NAME"], config.get("WEBHOOK_QUEUE_NAME") or config["QUEUE_NAME"]]
    registry = registry_for(StateCollector(app.extensions["db_sessions"],
                                           app.extensions["redis"], queues))

    @app.get("/metrics")
    def metrics() -> Response:
        # Production without a token: only the trusted addresses (the scraper's, if listed);
        # queue depths and decision counts are nobody else's business.
        if config["APP_ENV"] == "production" and not config["METRICS_TOKEN"] and \
                request.remote_addr not in config["TRUSTED_IPS"]:
            raise ForbiddenError("/metrics is off in production until METRICS_TOKEN is set "
                                 "(or the scraper's address is in TRUSTED_IPS).")
        if not token_matches(config["METRICS_TOKEN"], request.headers.get("Authorization")):
            raise UnauthorizedError("/metrics needs 'Authorization: Bearer <METRICS_TOKEN>'.")
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
