"""Request bodies: JSON or HTML form, checked for media type and syntax before the schema."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from flask import json, request
from marshmallow import Schema
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}


def _strict_form(raw: bytes) -> dict[str, str]:
    """A url-encoded form, refusing invalid UTF-8 (Werkzeug would swap in U+FFFD silently).
    Repeated fields keep their first value, as Werkzeug's ``to_dict`` does."""
    try:
        pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, encoding="utf-8",
                          errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("The form is not valid UTF-8.") from None
    data: dict[str, str] = {}
    for key, value in pairs:
        data.setdefault(key, value)
    return data


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
    elif mimetype == "application/x-www-form-urlencoded":
        data = _strict_form(request.get_data(cache=True))
    elif mimetype in FORM_TYPES:
        if request.files:
            raise UnsupportedMediaType("File uploads are not accepted.")
        data = request.form.to_dict()
    else:
        raise UnsupportedMediaType(
            "Send application/json or application/x-www-form-urlencoded."
        )
    return dict(schema.load(data))
