"""Marshmallow schemas: `load` checks input (unknown fields refused), `dump` shapes output."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates,
)

from service.db.comments import CommentStatus

# Control characters other than tab and newline have no place in a comment.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
MAX_CONTENT_CHARS = 10_000
MAX_POST_CHARS = 200
MAX_NAME_CHARS = 100


def normalise(value: str) -> str:
    """NFC-normalise, turn CRLF into LF, and trim."""
    return unicodedata.normalize("NFC", value).replace("\r\n", "\n").replace("\r", "\n").strip()


def _no_control_characters(value: str) -> None:
    if _CONTROL.search(value):
        raise ValidationError("Control characters are not allowed.")


class CommentIn(Schema):
    """A "Leave a Comment" submission (JSON or an HTML form)."""

    class Meta:
        unknown = RAISE

    post = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=MAX_POST_CHARS), _no_control_characters],
        metadata={"description": "The article's slug or path (surrounding slashes dropped)."},
    )
    author_name = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=MAX_NAME_CHARS), _no_control_characters],
    )
    author_email = fields.Email(load_default=None, validate=validate.Length(max=254))
    author_url = fields.Url(
        load_default=None,
        schemes={"http", "https"},
        require_tld=False,
        validate=validate.Length(max=2048),
    )
    content = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_CONTENT_CHARS),
        metadata={"description": "1 to 10,000 characters after trimming; plain text."},
    )
    parent_id = fields.Integer(
        load_default=None, strict=False, validate=validate.Range(min=1, max=2**62)
    )

    @pre_load
    def _normalise(self, data: Any, **_kwargs: Any) -> Any:
        if not isinstance(data, dict):
            return data
        cleaned = {}
        for key, value in data.items():
            if isinstance(value, str):
                value = normalise(value)
                if key == "post":
                    value = value.strip("/")
                # An HTML form sends empty strings for fields left blank.
                if value == "" and key in {"author_email", "author_url", "parent_id"}:
                    continue
            cleaned[key] = value
        return cleaned

    @validates("content")
    def _content(self, value: str, **_kwargs: Any) -> None:
        _no_control_characters(value.replace("\t", " "))

    @post_load
    def _lowercase_email(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        if data.get("author_email"):
            data["author_email"] = data["author_email"].lower()
        return data


class CommentAccepted(Schema):
    """The answer to a submission: its id and status (always pending at first)."""

    id = fields.Integer(required=True)
    status = fields.Enum(CommentStatus, by_value=True, required=True)
    post = fields.String(required=True)
    created_at = fields.AwareDateTime(required=True)


class CommentOut(Schema):
    """The public view of a comment: no e-mail, no IP."""

    id = fields.Integer(required=True)
    post = fields.String(required=True)
    parent_id = fields.Integer(allow_none=True)
    author_name = fields.String(required=True)
    author_url = fields.String(allow_none=True)
    content = fields.String(required=True)
    status = fields.Enum(CommentStatus, by_value=True, required=True)
    created_at = fields.AwareDateTime(required=True)
    decided_at = fields.AwareDateTime(allow_none=True)


class PageArgs(Schema):
    """Paging of a listing: ``limit`` items after the opaque ``cursor``."""

    class Meta:
        unknown = RAISE

    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(load_default=None, validate=validate.Regexp(r"^[0-9]{1,19}$"))


class CommentPage(Schema):
    """A page of published comments, oldest first."""

    comments = fields.List(fields.Nested(CommentOut), required=True)
    next = fields.String(allow_none=True, required=True)
    total = fields.Integer(required=True)
