"""The Flask application: the public comments API, health checks and (later) moderation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from service import auth, cli, database, logs, problems, queue
from service.config import load_config


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app; ``overrides`` win over the environment (tests use this)."""
    app = Flask(__name__)
    app.config.from_mapping(load_config(overrides))
    logs.init_app(app)
    database.init_app(app)
    queue.init_app(app)
    problems.init_app(app)
    auth.init_app(app)

    from service.api import init_app as init_api

    init_api(app)
    cli.init_app(app)
    return app
