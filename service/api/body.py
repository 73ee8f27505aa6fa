"""Request bodies: JSON or HTML form, checked for media type and syntax before the schema."""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from flask import json, request
from marshmallow import Schema
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, UnsupportedMediaType

from service.errors import InvalidFieldError
from service.schemas import MAX_POST_CHARS

FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}

# Deeper than any body of this API (a comment is flat, a bulk decision two levels); Python's
# JSON parser recurses once per level and fails with RecursionError near 1,000.
MAX_JSON_DEPTH = 32
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")
# What no text column can hold: NUL (PostgreSQL refuses it) and a lone UTF-16 surrogate
# (not a character; UTF-8 cannot encode it). Only their escapes can reach a JSON body.
_BAD_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
_BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")


def _json_depth(raw: bytes) -> int:
    """How deeply arrays and objects nest in ``raw`` (strings skipped)."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub(b"", raw)):
        depth += 1 if bracket in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _bad_character_message(value: str) -> str:
    if "\x00" in value:
        return "NUL characters are not allowed."
    return "Unpaired UTF-16 surrogates are not characters; send valid Unicode text."


def _find_bad_text(data: Any, path: str = "") -> tuple[str, str] | None:
    """The first field (dotted path) whose key or text holds NUL or a lone surrogate."""
    if isinstance(data, str):
        return (path or "_schema", _bad_character_message(data)) \
            if _BAD_CHARACTER.search(data) else None
    items: Any = data.items() if isinstance(data, dict) else (
        enumerate(data) if isinstance(data, list) else ())
    for key, value in items:
        where = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and _BAD_CHARACTER.search(key):
            return where, _bad_character_message(key)
        found = _find_bad_text(value, where)
        if found:
            return found
    return None


_TOO_LARGE = "commentguard.body_too_large"

# Blueprints whose bodies may exceed the app's MAX_CONTENT_LENGTH (name -> bytes): the one
# table both the streamed read below and `check_request` go by.
LARGER_BODIES: dict[str, int] = {}


def allow_larger_bodies(blueprint: str, limit: int) -> None:
    """Let the routes of ``blueprint`` take bodies up to ``limit`` bytes."""
    LARGER_BODIES[blueprint] = limit


class StreamedBodyLimit:
    """WSGI middleware: a body without Content-Length (chunked, as gunicorn hands it over
    with ``wsgi.input_terminated``) is read here up to the limit. Werkzeug would stop at the
    limit silently and the view would see a truncated body ("not valid JSON"); over the
    limit the request is marked, and `check_request` answers 413."""

    def __init__(self, wsgi_app: Any, limit: int) -> None:
        self.wsgi_app, self.limit = wsgi_app, limit

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("wsgi.input_terminated") and (
                not environ.get("CONTENT_LENGTH")
                or environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"):
            # The largest any route takes; `check_request` holds each route to its own.
            limit = max(self.limit, *LARGER_BODIES.values())
            stream, chunks, size = environ["wsgi.input"], [], 0
            while size <= limit:
                chunk = stream.read(min(65536, limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            if size > limit:
                environ[_TOO_LARGE] = True
                chunks = []
            body = b"".join(chunks)
            environ["wsgi.input"] = io.BytesIO(body)
            # Now an ordinary body of known length (Werkzeug ignores Content-Length while
            # Transfer-Encoding says chunked).
            environ["CONTENT_LENGTH"] = str(len(body))
            del environ["wsgi.input_terminated"]
            environ.pop("HTTP_TRANSFER_ENCODING", None)
        return self.wsgi_app(environ, start_response)


def check_request() -> None:
    """Refuse, before any view or schema sees them, inputs that no field could hold: NUL in
    the path or a query, a JSON body nested too deeply or holding NUL or a lone surrogate,
    NUL in a form, and a PUT without a body (it would reset what it leaves out)."""
    if request.environ.get(_TOO_LARGE):
        raise RequestEntityTooLarge()
    if request.blueprint in LARGER_BODIES:
        # Before anything reads the body.
        request.max_content_length = LARGER_BODIES[request.blueprint]
    if "\x00" in request.path:
        raise BadRequest("The address must not contain NUL characters.")
    for key, value in request.args.items(multi=True):
        if "\x00" in key or "\x00" in value:
            raise InvalidFieldError(key.replace("\x00", ""), "NUL characters are not allowed.")
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    if request.routing_exception is not None:
        return  # no such route or method: routing answers 404 or 405, whatever the body
    raw = request.get_data(cache=True)
    if not raw:
        if request.method == "PUT":
            raise BadRequest("This request needs a JSON body: the fields to set.")
        return
    mimetype = request.mimetype
    if mimetype == "application/json" or mimetype.endswith("+json"):
        if _BRACKETS.search(raw) and _json_depth(raw) > MAX_JSON_DEPTH:
            raise BadRequest(f"The JSON body is nested too deeply (at most {MAX_JSON_DEPTH} "
                             "levels).")
        if _BAD_ESCAPE.search(raw):
            try:
                data = json.loads(raw.decode("utf-8"))
            except ValueError:
                return  # the parser answers 400 for broken JSON
            found = _find_bad_text(data)
            if found:
                raise InvalidFieldError(*found)
    elif mimetype == "application/x-www-form-urlencoded" and b"%00" in raw:
        for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
            if "\x00" in key or "\x00" in value:
                raise InvalidFieldError(key.replace("\x00", ""),
                                        "NUL characters are not allowed.")


def post_path(post: str) -> str:
    """A post's slug from a URL path (surrounding slashes dropped), or 422 if no post could
    have it: longer than the column."""
    post = post.strip("/")
    if len(post) > MAX_POST_CHARS:
        raise InvalidFieldError("post", f"At most {MAX_POST_CHARS} characters.")
    return post


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
