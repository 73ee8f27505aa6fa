"""``GET /``: a small landing page with the links `make run` prints (demo, API reference,
moderation, health) and the two lines a blog adds to embed the widget."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, render_template, request, url_for

bp = Blueprint("home", __name__)


@bp.get("/")
def home() -> str:
    """The landing page."""
    base = request.host_url.rstrip("/")
    return render_template(
        "home.html", base=base, embed_js=base + url_for("widget.embed_js"),
        demo=url_for("widget.demo", slug="china-closing-ai-gap"),
        cors_set=bool(current_app.config.get("CORS_ORIGINS")))


def init_app(app: Flask) -> None:
    """Serve the landing page."""
    app.register_blueprint(bp)
