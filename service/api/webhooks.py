"""Admin API: outbound webhooks (signed JSON POSTs on comment events) and their delivery log."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate
from sqlalchemy import select

from service import auth, database, outbound, queue, webhooks
from service.db import Comment, Webhook, WebhookDelivery
from service.errors import InvalidFieldError, NotFoundError
from service.schemas import WEB_URL_DOC

blp = Blueprint(
    "webhooks", __name__, url_prefix="/api/v1/moderation",
    description="Outbound webhooks and their deliveries (admins only).",
)
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]
# The delivery log shows the latest attempts; older ones stay in the table.
DELIVERIES_SHOWN = 100
# The admins' webhooks page shows each webhook's latest few.
DELIVERIES_ON_PAGE = 10


class WebhookIn(Schema):
    """A new webhook."""

    class Meta:
        unknown = RAISE

    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False,
                     validate=validate.Length(max=2048), metadata=WEB_URL_DOC)
    events = fields.List(fields.String(validate=validate.OneOf(webhooks.EVENTS)),
                         required=True, validate=validate.Length(min=1))
    secret = fields.String(load_default=None, validate=validate.Length(min=16, max=128),
                           metadata={"description": "HMAC key; generated if omitted."})


class WebhookOut(Schema):
    """A webhook, without its secret."""

    id = fields.Integer()
    url = fields.String()
    events = fields.List(fields.String())
    active = fields.Boolean()
    created_at = fields.DateTime()


class WebhookCreated(WebhookOut):
    """A new webhook with its secret, shown this once."""

    secret = fields.String()


class WebhookList(Schema):
    """Every webhook."""

    webhooks = fields.List(fields.Nested(WebhookOut))


class DeliveryOut(Schema):
    """One delivery and its outcome."""

    id = fields.Integer()
    event = fields.String()
    comment_id = fields.Integer(allow_none=True)
    attempts = fields.Integer()
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    created_at = fields.DateTime()
    delivered_at = fields.DateTime(allow_none=True)


class DeliveryList(Schema):
    """The latest deliveries of one webhook, newest first."""

    deliveries = fields.List(fields.Nested(DeliveryOut))


@blp.before_request
def _admins_only() -> None:
    auth.require_admin()



def _webhook(webhook_id: int) -> Webhook:
    hook = database.session().get(Webhook, webhook_id)
    if hook is None:
        raise NotFoundError(f"No webhook {webhook_id}.")
    return hook


@blp.route("/webhooks")
class Webhooks(MethodView):
    """The webhooks."""

    @blp.doc(security=SECURITY)
    @blp.response(200, WebhookList)
    def get(self) -> dict[str, Any]:
        """Every webhook (secrets are never shown again)."""
        return {"webhooks": database.session().scalars(select(Webhook).order_by(Webhook.id))}

    @blp.doc(security=SECURITY)
    @blp.arguments(WebhookIn)
    @blp.response(201, WebhookCreated)
    def post(self, data: dict[str, Any]) -> Webhook:
        """Add a webhook; the answer holds its signing secret, shown this once. Its host must
        resolve to public addresses only (or to WEBHOOK_ALLOWED_NETWORKS): 422 otherwise."""
        try:
            outbound.check_url(data["url"], outbound.allowed_networks(
                current_app.config["WEBHOOK_ALLOWED_NETWORKS"]))
        except outbound.BlockedAddressError as error:
            raise InvalidFieldError("url", f"Webhooks may only reach public addresses: "
                                    f"{error}.") from None
        session = database.session()
        hook = Webhook(url=data["url"], events=list(dict.fromkeys(data["events"])),
                       secret=data["secret"] or webhooks.new_secret(), active=True)
        session.add(hook)
        session.flush()
        auth.audit("webhook.create", id=hook.id, url=hook.url, events=hook.events)
        session.commit()
        return hook


@blp.route("/webhooks/<int(max=2147483647):webhook_id>")
class WebhookById(MethodView):
    """One webhook."""

    @blp.doc(security=SECURITY)
    @blp.response(204)
    def delete(self, webhook_id: int) -> None:
        """Delete a webhook and its delivery log."""
        session = database.session()
        hook = _webhook(webhook_id)
        auth.audit("webhook.delete", id=hook.id, url=hook.url)
        session.delete(hook)
        session.commit()


@blp.route("/webhooks/<int(max=2147483647):webhook_id>/deliveries")
class Deliveries(MethodView):
    """A webhook's delivery log."""

    @blp.doc(security=SECURITY)
    @blp.response(200, DeliveryList)
    def get(self, webhook_id: int) -> dict[str, Any]:
        """The latest deliveries, newest first: attempts, status code, error, delivered_at."""
        _webhook(webhook_id)
        rows = database.session().scalars(
            select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
            .order_by(WebhookDelivery.id.desc()).limit(DELIVERIES_SHOWN))
        return {"deliveries": rows}


def hooks_with_deliveries(per_hook: int) -> list[tuple[Webhook, list[WebhookDelivery]]]:
    """Every webhook with its latest ``per_hook`` deliveries, newest first."""
    session = database.session()
    return [(hook, list(session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id)
        .order_by(WebhookDelivery.id.desc()).limit(per_hook))))
        for hook in session.scalars(select(Webhook).order_by(Webhook.id))]


def notify_decided(comment_ids: Iterable[int]) -> None:
    """Queue webhook events for comments a moderator just decided (after the commit)."""
    ids = list(comment_ids)
    if not ids:
        return
    session = database.session()
    comments = list(session.scalars(select(Comment).where(Comment.id.in_(ids))
                                    .order_by(Comment.id)))
    target = webhooks.queue_for(queue.redis(), dict(current_app.config))
    webhooks.comments_decided(session, target, comments)
