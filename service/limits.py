"""Rate limits on submissions, counted in Redis, and the IPs exempt from limits and flood
control. A Redis outage lifts the limits rather than refusing comments.

A comment's limits (per IP network, per post) and its flood control (per IP and per e-mail)
are one Lua script, one round trip (``check_submission``): moving windows as Flask-Limiter's
``moving-window`` strategy keeps them, tried shortest window first, stopping at the first
limit reached. The Akismet API's limits (service/api/akismet.py) use the same moving windows
through the ``limits`` library (``rate_limiter``); no extension runs on every request."""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import time
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qsl

from flask import Flask, current_app, request
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from redis import Redis
from redis.exceptions import NoScriptError, RedisError

from service import auth, queue
from service.guard import FORM_TOKEN_MAX_AGE, TooManyRequestsError, too_fast_message
from service.metrics import REFUSALS_KEY

log = logging.getLogger(__name__)

def network_of(ip: str | None, ipv6_prefix: int) -> str:
    """The unit limits count by: an IPv4 address as is; an IPv6 address cut to its
    ``ipv6_prefix`` network (a household or a VPS gets a whole /64 and can rotate inside it).
    Not an IP at all (a broken proxy header): the text itself."""
    if not ip:
        return "unknown"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/{ipv6_prefix}", strict=False))
    return str(address)


def client_network() -> str:
    """The requesting client's unit for per-IP limits, flood control and login throttling."""
    return network_of(request.remote_addr, int(current_app.config["IPV6_PREFIX_LENGTH"]))


def _storage_uri(redis_url: str) -> str:
    return "redis+" + redis_url if redis_url.startswith("unix://") else redis_url


def is_exempt() -> bool:
    """Trusted IPs (development: loopback) and moderators are never limited."""
    if request.remote_addr in current_app.config["TRUSTED_IPS"]:
        return True
    return auth.is_moderator_request()


def post_key() -> str:
    """The post a submission is for, read before validation (a bad body still counts).

    It reads the cached raw body and never ``request.form`` for a url-encoded body: that
    would consume the stream before the strict form parser (service/api/body.py) reads it,
    and every url-encoded comment would arrive empty."""
    post: Any = None
    if request.mimetype == "application/x-www-form-urlencoded":
        raw = request.get_data(cache=True).decode("utf-8", errors="replace")
        post = next((value for key, value in parse_qsl(raw, keep_blank_values=True)
                     if key == "post"), None)
    elif request.mimetype == "multipart/form-data":
        post = request.form.get("post")  # the body parser reads request.form too
    elif request.is_json:
        data = request.get_json(silent=True, cache=True)
        post = data.get("post") if isinstance(data, dict) else None
    return f"post:{str(post)[:200] if post else '-'}"


def init_app(app: Flask) -> None:
    """Point the Akismet API's limiter (service/api/akismet.py) at the app's Redis."""
    uri = app.config.get("RATELIMIT_STORAGE_URI") or \
        _storage_uri(app.config["REDIS_URL"] or "redis://127.0.0.1:6379/0")
    # Short timeouts: a hung Redis costs one request a quarter of a second, and the caller
    # lifts the limit (as a Redis outage lifts the comment limits).
    timeout = queue.WEB_REDIS_TIMEOUT_SECONDS
    storage = storage_from_string(uri, socket_connect_timeout=timeout, socket_timeout=timeout)
    app.extensions["rate_limiter"] = MovingWindowRateLimiter(storage)


def rate_limiter() -> MovingWindowRateLimiter:
    """The app's moving-window limiter, counted in Redis (the Akismet API's limits)."""
    return cast(MovingWindowRateLimiter, current_app.extensions["rate_limiter"])


# KEYS: the refusals counter (service.metrics), a fresh form token's "used" key (when ARGV[3]
# is 1), the limits' windows (in the order they are tried), then the flood keys. ARGV: now,
# the number of windows, whether a token key is given, whether to spend it, each window's
# amount, seconds and whether a fresh token passes it (the per-post windows), then the flood
# seconds and the token's lifetime. The windows are lists of hit times, newest first, as
# Flask-Limiter's moving window keeps them: full and its oldest hit inside the window means
# the limit is reached. A refusal is counted here (no second round trip to count it). The
# answer's last element says whether the token was unused (1), used before (0) or not given
# (-1).
_SUBMISSION_LUA = """
local now = tonumber(ARGV[1])
local windows = tonumber(ARGV[2])
local has_token = tonumber(ARGV[3])
local first = 1 + has_token
local fresh = -1
if has_token == 1 then
  fresh = redis.call('exists', KEYS[2]) == 0 and 1 or 0
end
for i = 1, windows do
  local key = KEYS[first + i]
  local amount = tonumber(ARGV[2 + 3 * i])
  local seconds = tonumber(ARGV[3 + 3 * i])
  if not (fresh == 1 and ARGV[4 + 3 * i] == '1') then
    local oldest = redis.call('lindex', key, amount - 1)
    if oldest and tonumber(oldest) >= now - seconds then
      redis.call('incr', KEYS[1])
      return {'limit', i, tostring(tonumber(oldest) + seconds), fresh}
    end
    redis.call('lpush', key, ARGV[1])
    redis.call('ltrim', key, 0, amount - 1)
    redis.call('expire', key, seconds)
  end
end
local flood = tonumber(ARGV[5 + 3 * windows])
for j = first + windows + 1, #KEYS do
  if not redis.call('set', KEYS[j], 1, 'EX', flood, 'NX') then
    redis.call('incr', KEYS[1])
    return {'flood', j, tostring(redis.call('ttl', KEYS[j])), fresh}
  end
end
if fresh == 1 and ARGV[4] == '1' then
  redis.call('set', KEYS[2], 1, 'EX', tonumber(ARGV[6 + 3 * windows]))
end
return {'ok', fresh}
"""
_SUBMISSION_SHA = hashlib.sha1(_SUBMISSION_LUA.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class _Window:
    scope: str  # "ip" or "post": which message the reader gets
    item: RateLimitItem


@functools.lru_cache(maxsize=64)
def _windows(per_ip_setting: str, per_post_setting: str) -> tuple[_Window, ...]:
    """The settings' limits, shortest window first (as Flask-Limiter tries them); a setting
    of "" has none."""
    windows = [_Window("ip", item) for item in parse_many(per_ip_setting)] if per_ip_setting \
        else []
    windows += [_Window("post", item) for item in parse_many(per_post_setting)] \
        if per_post_setting else []
    return tuple(sorted(windows, key=lambda w: w.item.get_expiry()))


class FloodError(TooManyRequestsError):
    """Flood control: this address or e-mail sent a comment moments ago (counted already)."""

    counted = True


class RateLimitedError(TooManyRequestsError):
    """A submission limit is reached; ``limit`` keeps the rule for developers."""

    def __init__(self, window: _Window, wait: int) -> None:
        if window.scope == "post":
            detail = ("This post is getting a lot of comments right now; please wait "
                      f"{'a minute' if wait <= 90 else f'{round(wait / 60)} minutes'} "
                      "and send yours again.")
        else:
            detail = too_fast_message(wait)
        super().__init__(detail, retry_after=wait)
        self.extensions["limit"] = str(window.item)
        self.counted = True


def flood_keys(email: str | None) -> list[str]:
    """The flood marks a stored comment leaves: its address's and its e-mail's."""
    keys = [f"flood:ip:{client_network()}"]
    if email:
        keys.append(f"flood:email:{email}")
    return keys


def check_submission(redis: Redis, email: str | None, flood_seconds: int,
                     *, flood: bool = True, windows: bool = True,
                     token_key: str | None = None) -> bool | None:
    """Count this submission against its limits and, with ``flood``, set its flood marks,
    in one round trip; 429 (TooManyRequestsError) if a limit or a mark stops it.
    ``flood=False``: the limits only (a submission refused for another reason still counts,
    as it did when the limits ran before everything else); ``windows=False``: flood control
    alone (the limits were counted already). Redis down: let it pass.

    ``token_key``: the "used" key of the form token it came with, when that token is genuine,
    for this post and old enough (`guard.ripe_token_key`). Unused, it lets the comment past
    the per-post limit (a reader who loaded the form is not refused with the bots posting
    straight to the API on a viral post), and the call with ``flood`` spends it. Returns
    whether the token was unused (None: no token, or Redis down)."""
    config = current_app.config
    limited = _windows(str(config["RATE_LIMIT_PER_IP"]), str(config["RATE_LIMIT_PER_POST"])) \
        if windows else ()
    network = client_network()
    keys = [REFUSALS_KEY, token_key] if token_key else [REFUSALS_KEY]
    keys += [f"limit:{w.scope}:{network if w.scope == 'ip' else post_key()}:"
             f"{w.item.amount}/{w.item.get_expiry()}" for w in limited]
    args: list[Any] = [repr(time.time()), len(limited), int(bool(token_key)), int(flood)]
    for window in limited:
        args += [window.item.amount, window.item.get_expiry(), int(window.scope == "post")]
    args += [flood_seconds, FORM_TOKEN_MAX_AGE]
    if flood and flood_seconds > 0:
        keys += flood_keys(email)
    if len(keys) == 1:  # nothing to count or mark
        return None
    try:
        try:
            verdict = redis.evalsha(_SUBMISSION_SHA, len(keys), *keys, *args)
        except NoScriptError:  # a Redis restarted since: EVAL loads it again
            verdict = redis.eval(_SUBMISSION_LUA, len(keys), *keys, *args)
    except RedisError:
        log.warning("rate limits and flood control skipped: Redis unavailable")
        return None
    if verdict[0] == b"limit":
        reset_at = float(verdict[2])
        raise RateLimitedError(limited[int(verdict[1]) - 1],
                               max(int(reset_at - time.time()) + 1, 1))
    if verdict[0] == b"flood":
        wait = max(int(verdict[2]), 1)
        raise FloodError(too_fast_message(wait), retry_after=wait)
    fresh = int(verdict[-1])
    return None if fresh < 0 else bool(fresh)
