"""Login throttling: a growing delay after failed logins, per client network and per account.

The first few failures are free (people mistype). After that every failure closes the door
for twice as long as the last one (2 s, 4 s, 8 s ... up to 15 minutes), for the IP network
and for the account name alike, and an attempt while it is closed gets 429 with Retry-After
without its password being checked. A success clears the account's count.
Redis down: logins are not throttled (they still need the right password), as the comment
limits do.
"""

from __future__ import annotations

import logging

from redis import Redis
from redis.exceptions import RedisError

from service.errors import ServiceError

log = logging.getLogger(__name__)

# Failures allowed before the delay starts: enough for a few typos and a caps-lock key.
FREE_FAILURES = 5
# The first delay, doubled with each further failure.
FIRST_DELAY_SECONDS = 2
# The longest delay: an attacker gets about 100 guesses a day per account, a moderator who
# forgot the password waits a quarter of an hour at most.
MAX_DELAY_SECONDS = 15 * 60
# Failures are forgotten after a day without one.
FAILURES_KEPT_SECONDS = 24 * 3600


class LoginThrottledError(ServiceError):
    """Too many failed logins from this network or for this account: wait ``retry_after``."""

    status = 429
    title = "Too Many Requests"
    type_slug = "rate-limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed logins. Please wait {retry_after} s and try again.")
        self.retry_after = retry_after
        self.headers["Retry-After"] = str(retry_after)


def _keys(scope: str) -> tuple[str, str]:
    return f"login:failures:{scope}", f"login:closed:{scope}"


def delay_after(failures: int) -> int:
    """Seconds the door stays closed after the ``failures``-th failure in a row."""
    if failures <= FREE_FAILURES:
        return 0
    return min(FIRST_DELAY_SECONDS * 2 ** (failures - FREE_FAILURES - 1), MAX_DELAY_SECONDS)


def _wait(redis: Redis, closed_key: str) -> int:
    return max((int(redis.pttl(closed_key)) + 999) // 1000, 1)


def attempt(redis: Redis, scopes: list[str]) -> None:
    """Count a login attempt in every scope (``ip:<network>``, ``name:<name>``) as a failure
    until it succeeds; LoginThrottledError if a scope's door is closed.

    Counting before the password is checked makes parallel guessing useless: past the free
    failures, the one attempt that closes the door (SET NX) goes on, the others are refused."""
    try:
        for scope in scopes:
            if redis.exists(_keys(scope)[1]):
                raise LoginThrottledError(_wait(redis, _keys(scope)[1]))
        for scope in scopes:
            failures_key, closed_key = _keys(scope)
            with redis.pipeline() as pipe:
                pipe.incr(failures_key)
                pipe.expire(failures_key, FAILURES_KEPT_SECONDS)
                failures = int(pipe.execute()[0])
            delay = delay_after(failures)
            if delay and not redis.set(closed_key, failures, ex=delay, nx=True):
                redis.decr(failures_key)  # refused unchecked: not a guess
                raise LoginThrottledError(_wait(redis, closed_key))
    except RedisError:
        log.warning("login throttle skipped: Redis unavailable")


def succeeded(redis: Redis, account_scope: str, network_scope: str) -> None:
    """The attempt was right: forget the account's failures; on the network, take this
    attempt back and open the door (its earlier failures still count)."""
    try:
        redis.delete(*_keys(account_scope))
        failures_key, closed_key = _keys(network_scope)
        with redis.pipeline() as pipe:
            pipe.decr(failures_key)
            pipe.delete(closed_key)
            pipe.execute()
    except RedisError:
        log.warning("login failures not cleared: Redis unavailable")
