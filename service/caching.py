"""What lets a cache serve the public reads: each post's version token in Redis, replaced
after every commit that changed what the post's listing or counter shows, and the ETags and
``Cache-Control`` of those reads.

A conditional read (``If-None-Match``) is answered from Redis alone: the ETag is a hash of
the post's token (and of a token every post shares, replaced by changes that touch posts we
do not name, such as an import). A token is random, never a counter, so a Redis that lost
its data (restart, eviction) hands out new tokens and no client's old ETag can match one:
a lost token costs one full answer, never a wrong 304.

Order matters. A writer replaces the token *after* its commit (the session event below); a
reader takes the token *before* it reads the database. So a listing is never tagged with a
token newer than its rows: at worst with an older one, which the next revalidation replaces.
A replacement lost to Redis being down at that moment, or to a crash between the commit and
the replacement, would leave an old token in place: tokens therefore expire after
`TOKEN_TTL_SECONDS`, which bounds how long such a listing can be answered 304.

ETags are weak (``W/"..."``): the token says the listing *means* the same (same rows, same
state), not that its bytes are identical (a reader racing a commit can tag newer rows with
the older token; a compressing proxy changes the bytes). If-None-Match compares weakly, so
a weak tag revalidates as well as a strong one; nothing ranges over JSON.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterable
from typing import Any

from flask import Flask, Response, request
from redis import Redis
from redis.commands.core import Script
from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from service import queue

log = logging.getLogger(__name__)

POST_TOKEN_KEY = "post-version:{}"
# Replaced when a change touches posts nobody listed (an import, linking imported replies).
ALL_POSTS_TOKEN_KEY = "post-version:all-posts"
# How long a token lives: the longest a lost replacement can keep an old listing answered
# 304; each expiry costs every client of a post one full answer, so not shorter.
TOKEN_TTL_SECONDS = 60
# Part of every listing and counter ETag: change it when their JSON changes, so that tokens
# kept in Redis across a deploy do not answer 304 for the old shape.
READ_FORMAT = "1"

# The listing: a cache may keep it LISTING_MAX_AGE s, then serve it stale for
# LISTING_STALE s while it asks again (the asking is a 304 from Redis). A moderator's
# decision reaches a cached copy within their sum.
LISTING_CACHE_CONTROL = "public, max-age=10, stale-while-revalidate=60"
COUNTS_CACHE_CONTROL = LISTING_CACHE_CONTROL

# Tokens of KEYS, creating a random one (ARGV[1] plus the key's place) for each missing key,
# in one round trip. Creation is SET NX, so two readers agree on the one that won.
_TOKENS = """
local out = {}
for i, key in ipairs(KEYS) do
  local token = redis.call('GET', key)
  if not token then
    token = ARGV[1] .. i
    if not redis.call('SET', key, token, 'NX', 'EX', ARGV[2]) then
      token = redis.call('GET', key)
    end
  end
  out[i] = token
end
return out
"""

# session.info keys: the Redis client of a session factory, and the posts a transaction
# changed.
_REDIS = "caching.redis"
_CHANGED = "caching.changed"
_EVERY_POST = object()


def init_app(app: Flask) -> None:
    """Let the app's sessions replace the tokens of the posts their commits changed."""
    bind(app.extensions["db_sessions"], app.extensions["redis"])


def bind(sessions: sessionmaker[Session], redis: Redis) -> None:
    """Let ``sessions``' commits replace the tokens of the posts they changed."""
    info = dict(sessions.kw.get("info") or {})
    info[_REDIS] = redis
    sessions.configure(info=info)


def changed(session: Session, posts: Iterable[str]) -> None:
    """Record that this transaction changes what these posts' listings or counters show;
    their tokens are replaced once it commits (nothing happens if it rolls back)."""
    session.info.setdefault(_CHANGED, set()).update(posts)


def changed_every_post(session: Session) -> None:
    """As `changed`, for a change whose posts are not known (every token is replaced)."""
    session.info.setdefault(_CHANGED, set()).add(_EVERY_POST)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    posts = session.info.pop(_CHANGED, None)
    if not posts:
        return
    redis = session.info.get(_REDIS)
    if redis is None:
        log.warning("posts changed by a session without Redis: cached listings may stay "
                    "stale for up to %s s", TOKEN_TTL_SECONDS)
        return
    replace(redis, posts)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous: SessionTransaction) -> None:
    if previous.parent is None:  # the whole transaction (a savepoint's keeps them: harmless)
        session.info.pop(_CHANGED, None)


def replace(redis: Redis, posts: Iterable[Any]) -> None:
    """New tokens for ``posts`` (`_EVERY_POST` among them: the shared token). Best effort:
    Redis down leaves the old tokens to expire (logged)."""
    keys = [ALL_POSTS_TOKEN_KEY if post is _EVERY_POST else POST_TOKEN_KEY.format(post)
            for post in posts]
    try:
        pipe = redis.pipeline(transaction=False)
        for key in keys:
            pipe.set(key, secrets.token_hex(8), ex=TOKEN_TTL_SECONDS)
        pipe.execute()
    except RedisError as error:
        log.warning("could not replace %s post version token(s) (%s): cached listings may "
                    "stay stale for up to %s s", len(keys), error.__class__.__name__,
                    TOKEN_TTL_SECONDS)


def tokens(redis: Redis, posts: list[str]) -> list[bytes]:
    """The shared token, then each post's (created when missing), in one round trip;
    RedisError if Redis is unavailable."""
    global _tokens_script
    if _tokens_script is None:
        _tokens_script = redis.register_script(_TOKENS)
    keys = [ALL_POSTS_TOKEN_KEY, *(POST_TOKEN_KEY.format(post) for post in posts)]
    found = _tokens_script(keys=keys, args=[secrets.token_hex(8) + ":", TOKEN_TTL_SECONDS],
                           client=redis)
    return [t if isinstance(t, bytes) else str(t).encode() for t in found]


_tokens_script: Script | None = None


def read_tag(posts: list[str], *variant: str) -> str | None:
    """The ETag value (unquoted) of a read of ``posts`` from Redis alone: their tokens and
    the read's ``variant`` (route, arguments). None when Redis is unavailable."""
    try:
        found = tokens(queue.redis(), posts)
    except RedisError:
        return None
    digest = hashlib.blake2b(digest_size=12)
    for part in (READ_FORMAT.encode(), *found, *(v.encode() for v in variant)):
        digest.update(len(part).to_bytes(4, "big"))
        digest.update(part)
    return digest.hexdigest()


def fresh(tag: str | None) -> bool:
    """True if the request's If-None-Match names ``tag`` (weak comparison, or ``*``)."""
    return tag is not None and request.if_none_match.contains_weak(tag)


def not_modified(tag: str, cache_control: str) -> Response:
    """A 304 with the headers the 200 would carry (RFC 9110 15.4.5)."""
    response = Response(status=304)
    del response.headers["Content-Type"]
    response.set_etag(tag, weak=True)
    response.headers["Cache-Control"] = cache_control
    return response


def conditional(response: Response, tag: str | None, cache_control: str) -> Response:
    """``response`` tagged (``tag``, or a hash of its body when Redis gave none) and with
    ``cache_control``; a 304 instead when the request's If-None-Match names the tag."""
    if tag is None:
        tag = "b" + hashlib.blake2b(response.get_data(), digest_size=12).hexdigest()
    if fresh(tag):
        return not_modified(tag, cache_control)
    response.set_etag(tag, weak=True)
    response.headers["Cache-Control"] = cache_control
    return response
