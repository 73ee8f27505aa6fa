"""Moderator alerts when the held queue grows: an e-mail (SMTP) and/or a webhook event.

Checked by the worker after each batch that held something. Once the number of held
comments reaches ``HELD_ALERT_THRESHOLD``, one alert goes out, then none for
``ALERT_EVERY_SECONDS`` (a Redis key with that TTL, shared by every worker). No Flask here.
"""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from typing import Any

from redis import Redis
from rq import Queue, Retry
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service import webhooks
from service.db import Comment, CommentStatus
from service.db.types import utcnow

log = logging.getLogger(__name__)

ALERT_KEY = "alerts:held_growing"
EMAIL_JOB = "worker.webhooks.email_held_alert"
# A mail server briefly down gets three more chances within the hour.
EMAIL_RETRY = Retry(max=3, interval=[60, 300, 900])
SMTP_TIMEOUT_SECONDS = 10


def held_count(session: Session) -> int:
    """How many comments wait for a moderator."""
    query = select(func.count()).select_from(Comment).where(Comment.status == CommentStatus.HELD)
    return session.scalar(query) or 0


def check_held(session: Session, redis: Redis, queue: Queue, config: dict[str, Any]) -> bool:
    """Alert if the held queue reached the threshold and no alert went out lately.
    Returns True if an alert was queued."""
    threshold = int(config["HELD_ALERT_THRESHOLD"])
    if threshold <= 0:
        return False
    held = held_count(session)
    if held < threshold:
        return False
    if not redis.set(ALERT_KEY, held, nx=True, ex=int(config["ALERT_EVERY_SECONDS"])):
        return False
    log.warning("held queue at %d comments (threshold %d): alerting moderators", held,
                threshold)
    webhooks.dispatch(session, queue, [(webhooks.HELD_GROWING,
                                        {"held": held, "threshold": threshold}, None)])
    if config["SMTP_HOST"] and config["ALERT_EMAIL_TO"]:
        queue.enqueue(EMAIL_JOB, held, retry=EMAIL_RETRY, result_ttl=0,
                      job_timeout=60, description=f"held-queue alert e-mail ({held})")
    return True


def alert_message(held: int, config: dict[str, Any]) -> EmailMessage:
    """The alert e-mail."""
    message = EmailMessage()
    noun = "comment" if held == 1 else "comments"
    message["Subject"] = f"{held} held {noun} waiting for a moderator"
    message["From"] = config["SMTP_FROM"]
    message["To"] = ", ".join(config["ALERT_EMAIL_TO"])
    public = str(config.get("PUBLIC_URL") or "").rstrip("/")
    where = (f"Review them in the queue:\n{public}/moderate?status=held\n" if public else
             "Review them in the moderation queue (/moderate; set PUBLIC_URL to get a link "
             "here).\n")
    message.set_content(
        f"{held} {noun} {'was' if held == 1 else 'were'} held for a moderator as of "
        f"{utcnow():%Y-%m-%d %H:%M} UTC (alert threshold: "
        f"{config['HELD_ALERT_THRESHOLD']}).\n\n{where}"
    )
    return message


def send_email(message: EmailMessage, config: dict[str, Any]) -> None:
    """Send ``message`` through the configured SMTP server (STARTTLS and login if set)."""
    with smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"],
                      timeout=SMTP_TIMEOUT_SECONDS) as smtp:
        if config["SMTP_STARTTLS"]:
            smtp.starttls()
        if config["SMTP_USER"]:
            smtp.login(config["SMTP_USER"], config["SMTP_PASSWORD"])
        smtp.send_message(message)
