"""The HTTP API: flask-smorest blueprints and the OpenAPI document at /api/v1/openapi.json."""

from __future__ import annotations

import http
from typing import Any

from flask import Flask
from flask_smorest import Api
from marshmallow import fields
from werkzeug.exceptions import HTTPException

from service import problems
from service.schemas import Problem


class ProblemApi(Api):
    """flask-smorest's Api, answering HTTP errors as problem+json, and documenting them so:
    every operation's error responses are `application/problem+json` bodies (`Problem`)."""

    ERROR_SCHEMA = Problem

    def handle_http_exception(self, error: HTTPException) -> Any:
        return problems.from_http_exception(error)

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["content"] = {problems.PROBLEM_JSON: {"schema": Problem}}
            self.spec.components.response(status.name, response, lazy=True)
        self.spec.components.response("DEFAULT_ERROR", {
            "description": "An error (RFC 9457 problem details).",
            "content": {problems.PROBLEM_JSON: {"schema": Problem}}}, lazy=True)


# check_request refuses NUL in any text (no column can hold it): the document says so.
_NO_NUL = "^[^\\u0000]*$"


def _text_without_nul(self: Any, field: fields.Field, ret: dict[str, Any], **_: Any
                      ) -> dict[str, Any]:
    """An apispec attribute function: every string without its own pattern gets ``_NO_NUL``."""
    if isinstance(field, fields.String) and ret.get("type") == "string" \
            and "pattern" not in ret and "enum" not in ret:
        return {"pattern": _NO_NUL}
    return {}


def init_app(app: Flask) -> None:
    """Register every blueprint and the OpenAPI document."""
    app.config.update(
        API_TITLE="Comment moderation API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
    )
    from service.api.body import check_request

    app.before_request(check_request)
    api = ProblemApi(app)
    api.ma_plugin.converter.add_attribute_function(_text_without_nul)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer",
                       "description": "A moderator's API token (flask moderators add)."}
    )
    from service.api import (
        admin,
        akismet,
        comments,
        health,
        moderation,
        posts,
        rules,
        webhooks,
    )

    api.register_blueprint(comments.blp)
    api.register_blueprint(posts.blp)
    api.register_blueprint(moderation.blp)
    api.register_blueprint(rules.blp)
    api.register_blueprint(webhooks.blp)
    api.register_blueprint(admin.blp)
    app.register_blueprint(health.bp)
    app.register_blueprint(akismet.bp)
    app.extensions["api"] = api
