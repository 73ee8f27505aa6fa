"""The one place that reads the environment.

Every setting has a safe development default so `make run` works on a fresh machine;
production mode (``APP_ENV=production``) refuses to start without real secrets and URLs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from service.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", PROJECT_ROOT / "var"))

DEV_SECRET_KEY = "dev-only-not-secret"

# Bodies above this are refused with 413: a 10,000-character comment in 4-byte UTF-8
# plus the other fields fits comfortably, a flood of junk does not.
MAX_CONTENT_LENGTH = 64 * 1024

# How many pending comments one scoring job takes in a single transaction. Scoring a
# batch with scikit-learn costs about the same as scoring one, RQ overhead is per job.
SCORE_BATCH_SIZE = 500

# How much lower a scoring worker's CPU priority is than the web's (nice, 0-19). Under a
# burst, storing and answering comments comes first; their decisions catch up afterwards.
SCORING_NICE = 10


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _optional_float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def load_config(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Build the settings mapping from the environment, then apply ``overrides``."""
    env = os.environ
    app_env = (overrides or {}).get("APP_ENV", env.get("APP_ENV", "development"))
    production = app_env == "production"
    config: dict[str, Any] = {
        "APP_ENV": app_env,
        "SECRET_KEY": env.get("SECRET_KEY", DEV_SECRET_KEY),
        "DATABASE_URL": env.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'comments.db'}"),
        # Empty means: no Redis configured (make run then starts an embedded one).
        "REDIS_URL": env.get("REDIS_URL", ""),
        "QUEUE_NAME": env.get("QUEUE_NAME", "scoring"),
        "MODEL_DIR": env.get("MODEL_DIR", str(VAR_DIR / "models")),
        # Overrides of the thresholds stored in the model's metadata (empty: use the model's).
        "SPAM_THRESHOLD_LOW": _optional_float(env.get("SPAM_THRESHOLD_LOW")),
        "SPAM_THRESHOLD_HIGH": _optional_float(env.get("SPAM_THRESHOLD_HIGH")),
        "SCORE_BATCH_SIZE": int(env.get("SCORE_BATCH_SIZE", SCORE_BATCH_SIZE)),
        "SCORING_NICE": int(env.get("SCORING_NICE", SCORING_NICE)),
        "MAX_CONTENT_LENGTH": MAX_CONTENT_LENGTH,
        # Flood control: seconds between comments from one IP or e-mail (0: off).
        "FLOOD_SECONDS": int(env.get("FLOOD_SECONDS", 15)),
        # Moving-window limits on POST /api/v1/comments, service.limits ("" turns one off).
        "RATE_LIMIT_PER_IP": env.get("RATE_LIMIT_PER_IP", "20/minute;200/day"),
        "RATE_LIMIT_PER_POST": env.get("RATE_LIMIT_PER_POST", "120/minute"),
        # Never rate-limited or flood-checked. Development: this machine. Behind a proxy,
        # set up ProxyFix (PROXY_COUNT) so that remote_addr is the reader's address.
        "TRUSTED_IPS": _list(env.get("TRUSTED_IPS", "" if production else "127.0.0.1,::1")),
        "PROXY_COUNT": int(env.get("PROXY_COUNT", 0)),
        # IPv6 readers count by their network of this prefix for per-IP limits, flood control
        # and login throttling (a /64 is one subscriber's; 128: every address apart).
        "IPV6_PREFIX_LENGTH": int(env.get("IPV6_PREFIX_LENGTH", 64)),
        # Hours a moderator's login lasts (the cookie is refused after it, whatever it says).
        "SESSION_LIFETIME_HOURS": int(env.get("SESSION_LIFETIME_HOURS", 12)),
        # Networks (comma-separated CIDR) webhooks may reach although they are not public:
        # loopback, private and link-local addresses are refused unless listed here.
        "WEBHOOK_ALLOWED_NETWORKS": _list(env.get("WEBHOOK_ALLOWED_NETWORKS", "")),
        # Days after which commenters' IPs are cut to their /24 (IPv6: /48) network.
        "IP_RETENTION_DAYS": int(env.get("IP_RETENTION_DAYS", 30)),
        "JSON_LOGS": _bool(env.get("JSON_LOGS", "0")),
        "LOG_LEVEL": env.get("LOG_LEVEL", "INFO"),
        # Blog origins (comma-separated) allowed to call the widget's API routes from a browser.
        "CORS_ORIGINS": [o.strip() for o in env.get("CORS_ORIGINS", "").split(",") if o.strip()],
        # If set, GET /metrics needs "Authorization: Bearer <this>" (empty: open, for scrapers).
        "METRICS_TOKEN": env.get("METRICS_TOKEN", ""),
        # RQ queue of webhook deliveries and alerts, run by a delivery worker of its own
        # (`python -m worker --deliveries`): a slow receiver never delays a verdict.
        "WEBHOOK_QUEUE_NAME": env.get("WEBHOOK_QUEUE_NAME", "deliveries"),
        # /readyz fails when no scoring worker has beaten for this many seconds (0: no check).
        "WORKER_SEEN_SECONDS": int(env.get("WORKER_SEEN_SECONDS", 30)),
        # Held comments at which moderators are alerted (at most once per ALERT_EVERY_SECONDS).
        "HELD_ALERT_THRESHOLD": int(env.get("HELD_ALERT_THRESHOLD", 10)),
        "ALERT_EVERY_SECONDS": int(env.get("ALERT_EVERY_SECONDS", 3600)),
        # Where people reach this service (no trailing slash): the alert e-mail links to the
        # queue under it. Development: what `make run` serves.
        "PUBLIC_URL": env.get("PUBLIC_URL", "" if production else "http://127.0.0.1:8000"),
        # Alert e-mail (sent only when SMTP_HOST and ALERT_EMAIL_TO are set; comma-separated).
        "SMTP_HOST": env.get("SMTP_HOST", ""),
        "SMTP_PORT": int(env.get("SMTP_PORT", 587)),
        "SMTP_USER": env.get("SMTP_USER", ""),
        "SMTP_PASSWORD": env.get("SMTP_PASSWORD", ""),
        # STARTTLS before logging in (off only for a local relay on port 25).
        "SMTP_STARTTLS": _bool(env.get("SMTP_STARTTLS", "1")),
        # Empty: comments@ the host of PUBLIC_URL.
        "SMTP_FROM": env.get("SMTP_FROM", ""),
        "ALERT_EMAIL_TO": _list(env.get("ALERT_EMAIL_TO", "")),
        # Akismet API (service/api/akismet.py). Seconds comment-check waits for the verdict.
        "AKISMET_CHECK_TIMEOUT": float(env.get("AKISMET_CHECK_TIMEOUT", 3)),
        # comment-checks waiting for a verdict at once, over all web workers: the share of
        # the web they may hold (the others are answered "retry later" at once).
        "AKISMET_MAX_WAITING": int(env.get("AKISMET_MAX_WAITING", 1)),
        # comment-checks per site key ("" turns it off); a busy blog gets a few a minute.
        "AKISMET_RATE_LIMIT": env.get("AKISMET_RATE_LIMIT", "120/minute"),
        # Wrong keys per IP before verify-key and friends answer 429 (keys have 48 bits).
        "AKISMET_KEY_FAILURES": env.get("AKISMET_KEY_FAILURES", "30/hour"),
    }
    if overrides:
        config.update(overrides)
    config["PUBLIC_URL"] = str(config["PUBLIC_URL"] or "").rstrip("/")
    if not config["SMTP_FROM"]:
        host = urlsplit(config["PUBLIC_URL"]).hostname or ""
        config["SMTP_FROM"] = f"comments@{host if '.' in host else 'localhost'}"
    _check(config, database_given="DATABASE_URL" in env or "DATABASE_URL" in (overrides or {}))
    return config


def _check(config: Mapping[str, Any], database_given: bool) -> None:
    if config["APP_ENV"] != "production":
        return
    missing = []
    if config["SECRET_KEY"] in ("", DEV_SECRET_KEY):
        missing.append("SECRET_KEY")
    # The development default (SQLite under var/) is refused; a URL set on purpose is not.
    if not database_given and str(config["DATABASE_URL"]).startswith("sqlite"):
        missing.append("DATABASE_URL")
    if not config["REDIS_URL"]:
        missing.append("REDIS_URL")
    if config["SMTP_HOST"] and config["ALERT_EMAIL_TO"]:
        # An alert must say where the queue is, and come from an address mail servers accept.
        if not config["PUBLIC_URL"]:
            missing.append("PUBLIC_URL")
        if str(config["SMTP_FROM"]).endswith("@localhost"):
            missing.append("SMTP_FROM")
    if missing:
        raise ConfigError(f"production mode needs real settings for: {', '.join(missing)}")
