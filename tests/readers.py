"""Reader addresses for tests: the default client is one ordinary reader (flood control and
per-IP limits apply to it), so a test that posts many comments gives each its own reader."""

from __future__ import annotations

import itertools

# The default client's address: TEST-NET-3 (RFC 5737), public-looking, not in TRUSTED_IPS.
READER_IP = "203.0.113.10"
# What an operator trusts on purpose (the blog's own server, a health checker).
TRUSTED_IP = "127.0.0.1"

# Distinct public-looking readers (198.18.0.0/15, RFC 2544) for tests that post many comments.
_READERS = (f"198.18.{n // 250}.{n % 250 + 1}" for n in itertools.count())


def reader_ip() -> str:
    """A reader address no other request of this test session used."""
    return next(_READERS)


def as_reader(ip: str | None = None) -> dict[str, str]:
    """``environ_base`` for one request from a distinct (or the given) reader address."""
    return {"REMOTE_ADDR": ip or reader_ip()}
