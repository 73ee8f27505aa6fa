"""Admin API: block and watch lists, site settings, per-post settings. Every change audited."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from service import auth, caching, database
from service.api.body import post_path
from service.db import PostSettings, Rule, RuleKind, Setting
from service.errors import ConflictError, InvalidFieldError, NotFoundError
from service.rules import SETTINGS_DEFAULTS, validate_rule
from service.schemas import PostSettingsSchema, RuleIn, RuleOut, RulesOut, SettingsSchema

blp = Blueprint(
    "rules", __name__, url_prefix="/api/v1/moderation",
    description="Rules and settings (admins only).",
)
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]


@blp.before_request
def _admins_only() -> None:
    auth.require_admin()



def current_settings() -> dict[str, Any]:
    """Every setting, defaults filled in, typed as `SettingsSchema` declares."""
    stored = {s.name: s.value for s in database.session().scalars(select(Setting))}
    merged = {**{k: str(v) for k, v in SETTINGS_DEFAULTS.items()}, **stored}
    return {
        "hold_links": int(float(merged["hold_links"])),
        "trusted_after": int(float(merged["trusted_after"])),
        "trusted_spam_ceiling": float(merged["trusted_spam_ceiling"]),
        "hold_foreign_script": bool(float(merged["hold_foreign_script"])),
    }


@blp.route("/rules")
class Rules(MethodView):
    """Block and watch lists."""

    @blp.doc(security=SECURITY)
    @blp.response(200, RulesOut)
    def get(self) -> dict[str, Any]:
        """Every rule, newest first, and the settings."""
        rules = database.session().scalars(select(Rule).order_by(Rule.id.desc())).all()
        return {"rules": rules, "settings": current_settings()}

    @blp.doc(security=SECURITY)
    @blp.arguments(RuleIn)
    @blp.response(201, RuleOut)
    def post(self, rule_in: dict[str, Any]) -> Rule:
        """Add a rule (409 if the same kind and value exist)."""
        kind = RuleKind(rule_in["kind"])
        try:
            value = validate_rule(kind, rule_in["value"])
        except ValueError as error:
            raise InvalidFieldError("value", str(error).capitalize() + ".") from None
        session = database.session()
        rule = Rule(kind=kind, value=value, note=rule_in["note"],
                    created_by=auth.authenticate().name)
        session.add(rule)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            raise ConflictError(f"A {kind} rule for {value!r} exists already.") from None
        auth.audit("rule.add", rule_id=rule.id, kind=kind.value, value=value)
        session.commit()
        return rule


@blp.route("/rules/<int(max=2147483647):rule_id>")
class RuleById(MethodView):
    """One rule."""

    @blp.doc(security=SECURITY)
    @blp.response(204)
    def delete(self, rule_id: int) -> None:
        """Remove a rule."""
        session = database.session()
        rule = session.get(Rule, rule_id)
        if rule is None:
            raise NotFoundError(f"No rule {rule_id}.")
        auth.audit("rule.delete", rule_id=rule.id, kind=rule.kind.value, value=rule.value)
        session.delete(rule)
        session.commit()


@blp.route("/settings")
class Settings(MethodView):
    """Site-wide moderation settings."""

    @blp.doc(security=SECURITY)
    @blp.response(200, SettingsSchema)
    def get(self) -> dict[str, Any]:
        """The current settings."""
        return current_settings()

    @blp.doc(security=SECURITY)
    @blp.arguments(SettingsSchema)
    @blp.response(200, SettingsSchema)
    def put(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Change some settings; the others keep their values."""
        session = database.session()
        before = current_settings()
        for name, value in changes.items():
            setting = session.get(Setting, name) or Setting(name=name)
            setting.value = str(int(value) if isinstance(value, bool) else value)
            session.add(setting)
        auth.audit("settings.update", before={k: before[k] for k in changes}, after=changes)
        session.commit()
        return current_settings()


@blp.route("/posts/<path:post>")
class PostModeration(MethodView):
    """A post's moderation settings."""

    @blp.doc(security=SECURITY)
    @blp.response(200, PostSettingsSchema)
    def get(self, post: str) -> Any:
        """Closed / pre-moderated flags of a post (both false if never set)."""
        post = post_path(post)
        return database.session().get(PostSettings, post) or {"post": post, "closed": False,
                                                               "premoderated": False}

    @blp.doc(security=SECURITY)
    @blp.arguments(PostSettingsSchema)
    @blp.response(200, PostSettingsSchema)
    def put(self, flags: dict[str, Any], post: str) -> PostSettings:
        """Close a post to new comments, or hold every new comment for review."""
        post = post_path(post)
        session = database.session()
        settings = session.get(PostSettings, post) or PostSettings(post=post)
        settings.closed, settings.premoderated = flags["closed"], flags["premoderated"]
        session.add(settings)
        caching.changed(session, [post])  # the listing says whether the post is closed
        auth.audit("post.update", post=post, **flags)
        session.commit()
        return settings
