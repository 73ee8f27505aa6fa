"""The Flask application: the public comments API, health checks and (later) moderation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from service import (
    apidocs,
    auth,
    caching,
    cli,
    database,
    home,
    limits,
    logs,
    metrics,
    problems,
    queue,
    security,
    web,
    widget,
)
from service.config import load_config


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app; ``overrides`` win over the environment (tests use this)."""
    app = Flask(__name__)
    app.config.from_mapping(load_config(overrides))
    logs.init_app(app)
    database.init_app(app)
    queue.init_app(app)
    caching.init_app(app)
    problems.init_app(app)
    auth.init_app(app)
    limits.init_app(app)
    security.init_app(app)
    if app.config["PROXY_COUNT"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    from service.api import init_app as init_api
    from service.api.body import StreamedBodyLimit

    # Innermost: it sees the body as the server hands it over, after ProxyFix.
    app.wsgi_app = StreamedBodyLimit(  # type: ignore[method-assign]
        app.wsgi_app, app.config["MAX_CONTENT_LENGTH"])

    init_api(app)
    apidocs.init_app(app)
    home.init_app(app)
    metrics.init_app(app)
    web.init_app(app)
    widget.init_app(app)
    cli.init_app(app)
    return app
