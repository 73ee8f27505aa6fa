"""Admin API: Akismet sites, spam models (list, promote, roll back, rescore), the audit log.

Admins only; every change is audited (``admin_events``). The web never imports scikit-learn:
promotion moves the store's ``ACTIVE`` pointer (hash-checked), and a rescore is an RQ job
queued by name that a scoring worker runs."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate
from rq import Queue
from sqlalchemy import func, select

from models.artifacts import ArtifactError
from service import auth, database, learning, queue
from service.db import AdminEvent, AkismetCheck, ModelVersion, Site
from service.db.model_store import ModelStore
from service.errors import ConflictError, InvalidFieldError, NotFoundError, UnavailableError
from service.schemas import WEB_URL_DOC
from service.sites import create_site, revoke_site

blp = Blueprint(
    "admin", __name__, url_prefix="/api/v1/moderation",
    description="Akismet sites, spam models and the audit log (admins only).",
)
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]
RESCORE_JOB = "worker.jobs.rescore_job"
# A rescore of a large held queue takes minutes on one worker.
RESCORE_TIMEOUT_SECONDS = 3600
AUDIT_PAGE = 100


@blp.before_request
def _admins_only() -> None:
    auth.require_admin()


# --- sites -------------------------------------------------------------------------------


class SiteIn(Schema):
    """A blog to let in through the Akismet-compatible API."""

    class Meta:
        unknown = RAISE

    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False,
                     validate=validate.Length(max=2048), metadata=WEB_URL_DOC)


class SiteOut(Schema):
    """A site, without its key."""

    id = fields.Integer()
    url = fields.String()
    active = fields.Boolean()
    created_at = fields.DateTime()
    checks = fields.Integer(metadata={"description": "comment-checks stored for it"})


class SiteCreated(SiteOut):
    """A new site with its API key, shown this once."""

    key = fields.String()


class SiteList(Schema):
    """Every site."""

    sites = fields.List(fields.Nested(SiteOut))


def site_rows() -> list[dict[str, Any]]:
    """Every site with its count of stored checks, oldest first."""
    session = database.session()
    counts = dict(session.execute(select(AkismetCheck.site_id, func.count())
                                  .group_by(AkismetCheck.site_id)).all())
    return [{"id": s.id, "url": s.url, "active": s.active, "created_at": s.created_at,
             "checks": counts.get(s.id, 0)}
            for s in session.scalars(select(Site).order_by(Site.id))]


@blp.route("/sites")
class Sites(MethodView):
    """The Akismet-compatible API's sites."""

    @blp.doc(security=SECURITY)
    @blp.response(200, SiteList)
    def get(self) -> dict[str, Any]:
        """Every site (keys are never shown again)."""
        return {"sites": site_rows()}

    @blp.doc(security=SECURITY)
    @blp.arguments(SiteIn)
    @blp.response(201, SiteCreated)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Register a blog; the answer holds its API key, shown this once."""
        session = database.session()
        try:
            site, key = create_site(session, data["url"])
        except ValueError as error:
            raise InvalidFieldError("url", str(error).capitalize().rstrip(".") + ".") from None
        auth.audit("site.add", site_id=site.id, url=site.url)
        session.commit()
        return {"id": site.id, "url": site.url, "active": site.active,
                "created_at": site.created_at, "checks": 0, "key": key}


@blp.route("/sites/<int(max=2147483647):site_id>/revoke")
class SiteRevoke(MethodView):
    """Revoke one site's key."""

    @blp.doc(security=SECURITY)
    @blp.response(204)
    def post(self, site_id: int) -> None:
        """Its requests are answered ``invalid`` at once; its checks stay."""
        session = database.session()
        site = revoke_site(session, site_id)
        if site is None:
            raise NotFoundError(f"No site {site_id}.")
        auth.audit("site.revoke", site_id=site.id, url=site.url)
        session.commit()


# --- models ------------------------------------------------------------------------------


class ModelOut(Schema):
    """One trained version: its state, metrics and bands."""

    version = fields.String()
    active = fields.Boolean()
    state = fields.String(metadata={"description": "candidate, promoted, refused, retired"})
    created_at = fields.DateTime()
    n_examples = fields.Integer()
    thresholds = fields.Dict()
    metrics = fields.Dict(metadata={"description": "cv: cross-validated; evaluation: the "
                                    "retrain's comparison with the model active then"})
    promoted_at = fields.DateTime(allow_none=True)
    promoted_by = fields.String(allow_none=True)
    gate = fields.String(allow_none=True)


class ModelList(Schema):
    """Every version, newest first."""

    models = fields.List(fields.Nested(ModelOut))


class PromoteIn(Schema):
    """Promotion of one version."""

    class Meta:
        unknown = RAISE

    force = fields.Boolean(load_default=False, metadata={
        "description": "Promote a version the retrain gate refused."})


class RescoreIn(Schema):
    """Which comments to rescore with the active model."""

    class Meta:
        unknown = RAISE

    statuses = fields.List(fields.String(validate=validate.OneOf(["pending", "held"])),
                           load_default=["pending", "held"], validate=validate.Length(min=1))


class JobOut(Schema):
    """A queued job."""

    job_id = fields.String()
    statuses = fields.List(fields.String())


class ActiveOut(Schema):
    """The active version after a change."""

    version = fields.String()


def store() -> ModelStore:
    """The models in the database (MODEL_DIR: this process's cache), as the workers read."""
    return ModelStore(current_app.config["MODEL_DIR"] or None)


def model_rows() -> list[ModelVersion]:
    """Every registered version (the store's versions registered first), newest first."""
    session = database.session()
    learning.sync_registry(session, store())
    session.commit()
    return list(session.scalars(select(ModelVersion).order_by(ModelVersion.created_at.desc(),
                                                              ModelVersion.id.desc())))


@blp.route("/models")
class Models(MethodView):
    """The model registry."""

    @blp.doc(security=SECURITY)
    @blp.response(200, ModelList)
    def get(self) -> dict[str, Any]:
        """Every version: active mark, state, metrics, bands, who promoted it."""
        return {"models": model_rows()}


@blp.route("/models/<string(maxlength=64):version>/promote")
class Promote(MethodView):
    """Make one version active."""

    @blp.doc(security=SECURITY)
    @blp.arguments(PromoteIn)
    @blp.response(200, ActiveOut)
    def post(self, data: dict[str, Any], version: str) -> dict[str, Any]:
        """Workers switch on their next job. A version the retrain gate refused needs
        ``force`` (409 otherwise, naming the gate's reason)."""
        session = database.session()
        artifacts = store()
        if version not in artifacts.versions(session):
            raise NotFoundError(f"No model {version}.")
        learning.sync_registry(session, artifacts)
        refusal = learning.gate_refusal(session, artifacts, version)
        if refusal and not data["force"]:
            raise ConflictError(f"The retrain gate refused {version} ({refusal}); "
                                "promote it with force to override.")
        try:
            learning.activate(session, artifacts, version, auth.authenticate().name)
        except ArtifactError as error:
            raise ConflictError(str(error)) from None
        auth.audit("model.promote", version=version, forced=bool(refusal))
        session.commit()
        return {"version": version}


@blp.route("/models/rollback")
class Rollback(MethodView):
    """Go back to the previously promoted version."""

    @blp.doc(security=SECURITY)
    @blp.response(200, ActiveOut)
    def post(self) -> dict[str, Any]:
        """Re-activate the version promoted before the active one (409 if none)."""
        session = database.session()
        previous = store().active_version(session)
        try:
            version = learning.rollback(session, store(), auth.authenticate().name)
        except ArtifactError as error:
            raise ConflictError(str(error).capitalize() + ".") from None
        auth.audit("model.rollback", version=version, previous=previous)
        session.commit()
        return {"version": version}


@blp.route("/models/rescore")
class Rescore(MethodView):
    """Rescore undecided and held comments with the active model."""

    @blp.doc(security=SECURITY)
    @blp.arguments(RescoreIn, required=False)  # no body: its defaults
    @blp.response(202, JobOut)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Queue the rescore for a scoring worker; moderators' decisions are never touched."""
        statuses = list(dict.fromkeys(data["statuses"]))
        scoring = Queue(current_app.config["QUEUE_NAME"], connection=queue.redis())
        try:
            job = scoring.enqueue(RESCORE_JOB, statuses, job_timeout=RESCORE_TIMEOUT_SECONDS,
                                  result_ttl=24 * 3600, description="rescore " +
                                  " and ".join(statuses))
        except Exception as error:  # Redis down: nothing was queued, nothing audited
            raise UnavailableError("The rescore could not be queued (Redis is unavailable); "
                                   "try again shortly.") from error
        auth.audit("model.rescore", statuses=statuses, job_id=job.id)
        database.session().commit()
        return {"job_id": job.id, "statuses": statuses}


# --- audit log ---------------------------------------------------------------------------


class AuditArgs(Schema):
    """Paging of the audit log."""

    class Meta:
        unknown = RAISE

    before = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**31 - 1))
    limit = fields.Integer(load_default=AUDIT_PAGE, validate=validate.Range(min=1, max=500))


class AdminEventOut(Schema):
    """One audited change."""

    id = fields.Integer()
    actor = fields.String()
    action = fields.String()
    details = fields.Dict()
    created_at = fields.DateTime()


class AuditPage(Schema):
    """Audited changes, newest first; ``next`` pages on."""

    events = fields.List(fields.Nested(AdminEventOut))
    next = fields.Integer(allow_none=True)


def audit_page(before: int | None, limit: int) -> dict[str, Any]:
    """The newest ``limit`` audited changes older than id ``before``."""
    query = select(AdminEvent).order_by(AdminEvent.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(AdminEvent.id < before)
    rows = list(database.session().scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"events": rows, "next": rows[-1].id if more and rows else None}


@blp.route("/audit")
class Audit(MethodView):
    """The admins' audit log."""

    @blp.doc(security=SECURITY)
    @blp.arguments(AuditArgs, location="query", as_kwargs=True, unknown=RAISE)
    @blp.response(200, AuditPage)
    def get(self, before: int | None, limit: int) -> dict[str, Any]:
        """Rules, settings, posts, webhooks, sites, models, accounts: who changed what."""
        return audit_page(before, limit)
