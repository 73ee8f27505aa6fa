"""Request bodies: JSON or HTML form, checked for media type and syntax before the schema."""

from __future__ import annotations

from typing import Any

from flask import json, request
from marshmallow import Schema
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}


def parse_body(schema: Schema) -> dict[str, Any]:
    """Load the request body through ``schema``: 415 for other media types, 400 for broken
    JSON, marshmallow's ValidationError (422) for invalid fields."""
    mimetype = request.mimetype
    if mimetype == "application/json" or mimetype.endswith("+json"):
        raw = request.get_data(cache=True)
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise BadRequest("The body is not valid UTF-8.") from None
        except ValueError as exc:
            raise BadRequest(f"The body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise BadRequest("The body must be a JSON object.")
    elif mimetype in FORM_TYPES:
        if request.files:
            raise UnsupportedMediaType("File uploads are not accepted.")
        data = request.form.to_dict()
    else:
        raise UnsupportedMediaType(
            "Send application/json or application/x-www-form-urlencoded."
        )
    return dict(schema.load(data))
