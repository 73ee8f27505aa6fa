"""The moderators' web pages: server-rendered HTML shells whose scripts talk to the JSON API."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the moderators' pages under /moderate."""
    from service.web import moderate

    app.register_blueprint(moderate.bp)
