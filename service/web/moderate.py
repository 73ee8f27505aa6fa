"""The moderator's pages: login and logout, the queue, one comment's history, the rules.

The pages are shells: everything dynamic (queue, counts, decisions, history, rules) goes
through the JSON API with the session cookie and the CSRF token, so page and API behave
identically. No inline scripts or styles, so a strict Content-Security-Policy can be set.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import cache, wraps
from typing import Any

from flask import Blueprint, redirect, render_template, request, session, url_for
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response

from service import auth, database, limits, throttle
from service import queue as jobs_queue
from service.api.rules import current_settings
from service.db import Moderator, PostSettings, Rule, RuleKind

bp = Blueprint("web", __name__, url_prefix="/moderate")

# Queue tabs, in the order a moderator works through them.
TABS = ("held", "pending", "spam", "published", "rejected")


@cache
def _dummy_hash() -> str:
    """A hash to check unknown names against, so timing does not reveal which names exist."""
    return generate_password_hash(secrets.token_urlsafe(16))


def current_moderator() -> Moderator | None:
    """The active moderator logged in on this browser session, if any (and not revoked)."""
    return auth.session_moderator()


def _login_redirect() -> Response:
    return redirect(url_for("web.login", next=request.full_path.rstrip("?")))


def _safe_next(target: str | None) -> str:
    """Only a path on this site under /moderate (no open redirect)."""
    # isprintable: no CR/LF (a header injection) nor any other control character.
    if target and target.startswith("/moderate") and not target.startswith("//") \
            and "\\" not in target and target.isprintable():
        return target
    return url_for("web.queue")


@bp.after_request
def _no_store(response: Response) -> Response:
    # Pages show e-mails and IPs: keep them out of shared caches and the back-forward cache.
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


@bp.get("/login")
def login() -> Any:
    """The login form."""
    if current_moderator() is not None:
        return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", next=request.args.get("next", ""), error=None,
                           name="")


@bp.post("/login")
def login_post() -> Any:
    """Check name and password; start a fresh session on success. Throttled per network
    and per account (429 with Retry-After); every name costs one password hash check."""
    auth.csrf.protect()
    name = request.form.get("name", "").strip()
    password = request.form.get("password", "")
    redis = jobs_queue.redis()
    account, network = f"name:{name.casefold()[:100]}", f"ip:{limits.client_network()}"
    try:
        throttle.attempt(redis, [network, account])
    except throttle.LoginThrottledError as error:
        return render_template("login.html", next=request.form.get("next", ""), name=name,
                               error=error.detail), 429, error.headers
    moderator = database.session().scalar(select(Moderator).where(Moderator.name == name))
    # The same scrypt check for unknown names and token-only accounts as for real ones, so
    # the time taken does not tell which names exist or have a password.
    if moderator is None or moderator.password_hash is None:
        check_password_hash(_dummy_hash(), password)
        moderator = None
    if moderator is None or not moderator.check_password(password) or not moderator.active:
        return render_template("login.html", next=request.form.get("next", ""), name=name,
                               error="Wrong name or password."), 401
    throttle.succeeded(redis, account, network)
    auth.start_session(moderator)
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
def logout() -> Response:
    """End the session, and every other session of the account (server-side revocation)."""
    auth.csrf.protect()
    moderator = current_moderator()
    if moderator is not None:
        moderator.revoke_sessions()
        database.session().commit()
    session.clear()
    return redirect(url_for("web.login"))


@bp.get("")
def queue() -> Any:
    """The moderation queue (the list itself is loaded from the API by moderate.js)."""
    moderator = current_moderator()
    if moderator is None:
        return _login_redirect()
    status = request.args.get("status", "held")
    return render_template("queue.html", moderator=moderator, tabs=TABS,
                           status=status if status in TABS else "held")


@bp.get("/comments/<int(max=9223372036854775807):comment_id>")
def comment(comment_id: int) -> Any:
    """One comment's full record and history (loaded from the API by moderate.js)."""
    moderator = current_moderator()
    if moderator is None:
        return _login_redirect()
    return render_template("comment.html", moderator=moderator, comment_id=comment_id)


@bp.get("/rules")
def rules() -> Any:
    """The admin's rules page: block and watch lists, settings, per-post flags."""
    moderator = current_moderator()
    if moderator is None:
        return _login_redirect()
    if not moderator.is_admin:
        return render_template("forbidden.html", moderator=moderator), 403
    db = database.session()
    return render_template(
        "rules.html", moderator=moderator, kinds=[kind.value for kind in RuleKind],
        rules=db.scalars(select(Rule).order_by(Rule.id.desc())).all(),
        posts=db.scalars(select(PostSettings).order_by(PostSettings.post)).all(),
        settings=current_settings(),
    )


# --- admin pages ---------------------------------------------------------------------------
# Each page renders the stored state; its forms go through the admin API (session + CSRF
# header, audited there), then the page reloads.


def admin_page(view: Callable[[Moderator], Any]) -> Callable[[], Any]:
    """Decorator: the login page for a visitor, 403 for a moderator, else ``view(admin)``."""

    @wraps(view)
    def wrapper() -> Any:
        moderator = current_moderator()
        if moderator is None:
            return _login_redirect()
        if not moderator.is_admin:
            return render_template("forbidden.html", moderator=moderator), 403
        return view(moderator)

    return wrapper


@bp.get("/webhooks")
@admin_page
def webhooks_page(moderator: Moderator) -> Any:
    """Webhooks: add (the secret is shown once), delete, the latest deliveries of each."""
    from service.api.webhooks import DELIVERIES_ON_PAGE, hooks_with_deliveries
    from service.webhooks import EVENTS

    return render_template("webhooks.html", moderator=moderator, events=EVENTS,
                           hooks=hooks_with_deliveries(DELIVERIES_ON_PAGE))


@bp.get("/sites")
@admin_page
def sites_page(moderator: Moderator) -> Any:
    """Akismet-compatible API sites: add (the key is shown once), revoke."""
    from service.api.admin import site_rows

    return render_template("sites.html", moderator=moderator, sites=site_rows())


# The metrics two model versions are compared on, in the page's words.
COMPARED_METRICS = (
    ("n", "comments evaluated", "count"),
    ("ham_flagged", "genuine comments filed as spam", "share"),
    ("spam_published", "spam published", "share"),
    ("auto_decided", "decided without a moderator", "share"),
    ("mcc", "MCC", "number"),
    ("f1", "F1", "number"),
    ("roc_auc", "ROC AUC", "number"),
)


@bp.get("/models")
@admin_page
def models_page(moderator: Moderator) -> Any:
    """The model registry: promote, roll back, rescore, and two versions side by side."""
    from service import learning
    from service.api.admin import model_rows, store

    rows = model_rows()
    by_version = {row.version: row for row in rows}
    chosen = [v for v in request.args.getlist("compare") if v in by_version][:2]
    refusals = {row.version: learning.gate_refusal(database.session(), store(), row.version)
                for row in rows}
    return render_template("models.html", moderator=moderator, models=rows,
                           compared=[by_version[v] for v in chosen], refusals=refusals,
                           metrics=COMPARED_METRICS)


def _int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    text = request.args.get(name, "")
    if text.isascii() and text.isdigit() and low <= int(text) <= high:
        return int(text)
    return default


@bp.get("/stats")
@admin_page
def stats_page(moderator: Moderator) -> Any:
    """Accuracy as moderators saw it: automatic decisions and their overturns."""
    from service.api.moderation import accuracy

    window = _int_arg("days", 30, 1, 365) or 30
    days = accuracy(database.session(), window)["days"]
    totals = {key: sum(row[key] for row in days) for key in
              ("published", "held", "spam", "false_positives", "missed_spam", "held_resolved")}
    return render_template("stats.html", moderator=moderator, days=days, totals=totals,
                           window=window)


@bp.get("/audit")
@admin_page
def audit_log(moderator: Moderator) -> Any:
    """The admins' audit log, newest first."""
    from service.api.admin import AUDIT_PAGE, audit_page

    page = audit_page(_int_arg("before", None, 1, 2**31 - 1), AUDIT_PAGE)
    return render_template("audit.html", moderator=moderator, **page)
