"""``GET /api/docs``: a readable page of the OpenAPI document, with nothing from a CDN.

Swagger UI and ReDoc load from a CDN and need inline styles, which the Content-Security-Policy
refuses; this page is one template, one script and one stylesheet served by the app itself.
"""

from __future__ import annotations

from flask import Blueprint, Flask, render_template, url_for

bp = Blueprint("apidocs", __name__)


@bp.get("/api/docs")
def docs() -> str:
    """The API reference, rendered in the browser from /api/v1/openapi.json."""
    return render_template("apidocs.html", spec_url=url_for("api-docs.openapi_json"))


def init_app(app: Flask) -> None:
    """Serve the API docs page."""
    app.register_blueprint(bp)
