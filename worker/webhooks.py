"""RQ jobs: deliver one webhook event (signed JSON POST), send the held-queue alert e-mail.

A delivery job records every attempt on its `WebhookDelivery` row and re-raises a failure, so
RQ retries it on the schedule in ``service.webhooks.DELIVERY_RETRY``.
"""

from __future__ import annotations

import logging

from service import notify, outbound, webhooks
from service.config import load_config
from service.db import Webhook, WebhookDelivery
from service.db.types import utcnow
from worker.jobs import get_scorer

log = logging.getLogger(__name__)

# A receiver has this long to answer; a slow one is retried rather than holding a worker.
DELIVERY_TIMEOUT_SECONDS = 5
USER_AGENT = "commentguard-webhooks/1"
ERROR_CHARS = 1000


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST ``body``; the status code if 2xx, else raise. The host is resolved and checked
    once and the connection goes to the checked address (service.outbound: no loopback,
    private or metadata addresses unless WEBHOOK_ALLOWED_NETWORKS names them; redirects are
    failures, never followed)."""
    allowed = outbound.allowed_networks(load_config()["WEBHOOK_ALLOWED_NETWORKS"])
    return outbound.post(url, body, {"Content-Type": "application/json",
                                     "User-Agent": USER_AGENT, **headers},
                         timeout=DELIVERY_TIMEOUT_SECONDS, allowed=allowed)


def deliver(delivery_id: int) -> int | None:
    """RQ job: POST delivery ``delivery_id`` to its webhook, signed with the webhook's secret.

    Returns the receiver's status code, or None when there is nothing (more) to send: already
    delivered, the webhook was deleted or disabled."""
    with get_scorer().sessions() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None or delivery.delivered_at is not None:
            return None
        hook = session.get(Webhook, delivery.webhook_id)
        if hook is None or not hook.active:
            delivery.error = "webhook disabled"
            session.commit()
            return None
        body = webhooks.body_of(delivery.payload)
        delivery.attempts += 1
        try:
            status = post(hook.url, body, {
                webhooks.SIGNATURE_HEADER: webhooks.sign(hook.secret, body),
                "X-Webhook-Event": delivery.event,
                "X-Webhook-Delivery": str(delivery.id),
            })
        except Exception as error:
            delivery.status_code = getattr(error, "code", None)
            delivery.error = f"{error.__class__.__name__}: {error}"[:ERROR_CHARS]
            session.commit()
            log.warning("webhook delivery %s to hook %s failed (attempt %d): %s", delivery_id,
                        hook.id, delivery.attempts, delivery.error,
                        extra={"delivery_id": delivery_id, "comment_id": delivery.comment_id})
            raise
        delivery.status_code, delivery.error, delivery.delivered_at = status, None, utcnow()
        session.commit()
        return status


def email_held_alert(held: int) -> None:
    """RQ job: e-mail ALERT_EMAIL_TO that ``held`` comments wait for a moderator."""
    config = load_config()
    notify.send_email(notify.alert_message(held, config), config)
