"""Marshmallow schemas: `load` checks input (unknown fields refused), `dump` shapes output."""

from __future__ import annotations

import copy
import re
import unicodedata
from typing import Any

from marshmallow import (
    INCLUDE,
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
from service.explanations import explanation

# Control characters other than tab and newline have no place in a comment.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
MAX_CONTENT_CHARS = 10_000
MAX_POST_CHARS = 200
MAX_NAME_CHARS = 100
# The largest id a BIGINT (and SQLite's INTEGER) holds; a cursor past it matches nothing.
MAX_ID = 2**63 - 1


def normalise(value: str) -> str:
    """NFC-normalise, turn CRLF into LF, and trim."""
    return unicodedata.normalize("NFC", value).replace("\r\n", "\n").replace("\r", "\n").strip()


def _ranges(chars: list[str]) -> str:
    """A regular-expression class body for ``chars`` (sorted), as literal ranges."""
    runs: list[list[str]] = []
    for ch in chars:
        if runs and ord(ch) == ord(runs[-1][1]) + 1:
            runs[-1][1] = ch
        else:
            runs.append([ch, ch])
    return "".join(a if a == b else f"{a}-{b}" for a, b in runs)


# The document's patterns for text fields: what _CONTROL (and, for names, the invisible-
# character check) refuses, so that clients and schemathesis know it before sending.
# (Those of the Basic Multilingual Plane: a pattern with astral ranges is beyond many tools.)
_FORMAT_CHARACTERS = _ranges([chr(c) for c in range(0x10000)
                              if unicodedata.category(chr(c)) == "Cf"])
# Required text is trimmed first: it needs one character that is not white space.
_TEXT = _CONTROL.pattern[1:-1]
_NAME = _TEXT + _FORMAT_CHARACTERS
TEXT_DOC = {"pattern": f"^[^{_TEXT}]*[^\\s{_TEXT}][^{_TEXT}]*$"}
NAME_DOC = {"pattern": f"^[^{_NAME}]*[^\\s{_NAME}][^{_NAME}]*$"}
# A post's path is also trimmed of its slashes.
POST_DOC = {"pattern": f"^[^{_TEXT}]*[^\\s/{_TEXT}][^{_TEXT}]*$"}


# How the document describes a web address field: what marshmallow's Url(schemes={"http",
# "https"}) accepts, so that clients (and schemathesis) know "" or "mailto:" is refused.
# The pattern follows marshmallow's own URL expression (require_tld=False).
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
WEB_URL_DOC = {"format": "uri", "pattern": (
    r"^https?://([^:@/\s]+(:[^:@/\s]*)?@)?"
    rf"(({_LABEL}\.)+([A-Za-z]{{2,6}}\.?|[A-Za-z0-9-]{{2,}}\.?)|localhost|{_LABEL}"
    r"|[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})"
    r"(:[0-9]+)?(/?|[/?]\S+)$")}

# And marshmallow's e-mail expression: a dotted domain whose last label has two characters.
_ATOM = r"[-!#$%&'*+/=?^`{}|~\w]+"
EMAIL_DOC = {"format": "email", "pattern": (
    rf"^{_ATOM}(\.{_ATOM})*@(({_LABEL}\.)+[A-Za-z0-9-]+[A-Za-z0-9]|localhost)$")}


class JsonBoolean(fields.Boolean):
    """A JSON true or false only: 0, "yes" or "off" are refused rather than guessed (marshmallow's
    Boolean takes them, and its ``falsy={False}`` would still take 0, since 0 == False)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def _no_invisible_characters(value: str) -> None:
    # Unicode format characters (Cf): bidi overrides that show "Ann" for a name stored
    # reversed, zero-width characters and soft hyphens that make two names look alike.
    invisible = sorted({f"U+{ord(ch):04X}" for ch in value if unicodedata.category(ch) == "Cf"})
    if invisible:
        raise ValidationError(
            "Please write your name without invisible or text-direction characters "
            f"(found {', '.join(invisible)}).")


# --- messages a reader reads (the widget shows them next to the field) ------------------


def _required(message: str, invalid: str | None = None) -> dict[str, Any]:
    """A field's error messages for missing, null and (optionally) wrongly typed input."""
    messages: dict[str, Any] = {"required": message, "null": message}
    if invalid:
        messages["invalid"] = invalid
    return messages


def _not_empty(message: str) -> validate.Validator:
    return validate.Length(min=1, error=message)


def _at_most(limit: int, what: str) -> validate.Validator:
    """A length limit that says how long ``what`` may be (and keeps maxLength in the spec)."""
    return validate.Length(max=limit, error=f"{what} is too long (at most {limit:,} characters).")


def _without_control_characters(what: str) -> Any:
    def check(value: str) -> None:
        if _CONTROL.search(value):
            raise ValidationError(f"Please remove the control characters from {what}.")

    return check


NAME_REQUIRED = "Please write your name."
CONTENT_REQUIRED = "Please write a comment."
EMAIL_INVALID = "Please enter an e-mail address like name@example.org, or leave it empty."
URL_INVALID = ("Please enter a web address starting with http:// or https://, "
               "or leave it empty.")


class CommentIn(Schema):
    """A "Leave a Comment" submission (JSON or an HTML form)."""

    class Meta:
        unknown = RAISE

    post = fields.String(
        required=True,
        error_messages=_required("Please say which post this comment is for.",
                                 "The post must be given as text."),
        validate=[_not_empty("Please say which post this comment is for."),
                  _at_most(MAX_POST_CHARS, "The post's name"),
                  _without_control_characters("the post's name")],
        metadata={"description": "The article's slug or path (surrounding slashes dropped).",
                  **POST_DOC},
    )
    author_name = fields.String(
        required=True,
        error_messages=_required(NAME_REQUIRED, "Please write your name as text."),
        validate=[_not_empty(NAME_REQUIRED), _at_most(MAX_NAME_CHARS, "Your name"),
                  _without_control_characters("your name"), _no_invisible_characters],
        metadata=NAME_DOC,
    )
    author_email = fields.Email(
        load_default=None, error_messages={"invalid": EMAIL_INVALID},
        validate=_at_most(254, "Your e-mail address"), metadata=EMAIL_DOC)
    author_url = fields.Url(
        load_default=None,
        schemes={"http", "https"},
        require_tld=False,
        error_messages={"invalid": URL_INVALID},
        validate=_at_most(2048, "Your website's address"),
        metadata=WEB_URL_DOC,
    )
    content = fields.String(
        required=True,
        error_messages=_required(CONTENT_REQUIRED, "Please write your comment as text."),
        validate=[_not_empty(CONTENT_REQUIRED), _at_most(MAX_CONTENT_CHARS, "Your comment")],
        metadata={"description": "1 to 10,000 characters after trimming; plain text.",
                  **TEXT_DOC},
    )
    parent_id = fields.Integer(
        load_default=None, strict=False,
        error_messages={"invalid": "The comment you replied to is not a comment of this post."},
        validate=validate.Range(min=1, max=2**62, error="The comment you replied to is not "
                                "a comment of this post."),
    )
    # Bot traps (never stored): a field humans never see, and the form's signed show time.
    hp_website = fields.String(load_default=None, validate=validate.Length(max=2048),
                               metadata={"description": "Honeypot: leave empty."})
    form_token = fields.String(load_default=None, validate=validate.Length(max=512),
                               metadata={"description": "From GET /api/v1/form-token."})
    # Never stored: where a plain HTML form's 303 goes back to (service/api/html_form.py).
    return_to = fields.String(load_default=None, validate=validate.Length(max=2048), metadata={
        "description": "A plain HTML form's page: a browser asking for HTML gets a 303 back "
                       "to it (else to its Referer), on this service's origin or one of "
                       "CORS_ORIGINS only, with `?comment=ID&comment_status=pending`."})
    # Never stored: the signed returning-reader token of an earlier answer (service/readers.py).
    reader_token = fields.String(load_default=None, validate=validate.Length(max=256),
                                 metadata={"description": "The `reader_token` of an earlier "
                                           "202; approved comments make its reader trusted."})

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
                if value == "" and key in {"author_email", "author_url", "parent_id",
                                           "hp_website", "form_token", "reader_token",
                                           "return_to"}:
                    continue
            cleaned[key] = value
        return cleaned

    @validates("content")
    def _content(self, value: str, **_kwargs: Any) -> None:
        _without_control_characters("your comment")(value.replace("\t", " "))

    @post_load
    def _lowercase_email(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        if data.get("author_email"):
            data["author_email"] = data["author_email"].lower()
        return data


def _as_form(schema: type[Schema]) -> type[Schema]:
    """The document's view of ``schema`` sent as an HTML form: a form has only strings, so
    no field is null (left blank, a field is absent). Loading is the same ``schema``."""
    declared = {name: copy.copy(field) for name, field in schema._declared_fields.items()}
    for field in declared.values():
        field.allow_none = False
    return type(f"{schema.__name__}Form", (schema,), declared)


CommentInForm = _as_form(CommentIn)

class Problem(Schema):
    """An error: RFC 9457 problem details (``application/problem+json``)."""

    class Meta:
        unknown = INCLUDE  # extension members, such as a duplicate's ``id``

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.Raw(), metadata={
        "description": "Messages per invalid field."})


class CommentAccepted(Schema):
    """The answer to a submission: its id and status (always pending at first)."""

    id = fields.Integer(required=True)
    status = fields.Enum(CommentStatus, by_value=True, required=True)
    post = fields.String(required=True)
    created_at = fields.AwareDateTime(required=True)
    secret = fields.String(metadata={"description": (
        "Shows you your comment before it is published: send it as the X-Comment-Secret "
        "header (or ?secret=) of GET /api/v1/comments/{id}, and to a data request. Shown "
        "once; only its hash is stored.")})
    reader_token = fields.String(required=True, metadata={
        "description": "Keep it and send it with this reader's later comments."})


class FormTokenArgs(Schema):
    """The post a comment form is shown for."""

    class Meta:
        unknown = RAISE

    post = fields.String(required=True, validate=validate.Length(min=1, max=MAX_POST_CHARS))


class FormToken(Schema):
    """A signed token the form sends back (proves when it was shown)."""

    token = fields.String(required=True)


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
    cursor = fields.String(load_default=None, validate=validate.Regexp(
        r"^[0-9]{1,19}$", error="Not a cursor from this listing."))

    @validates("cursor")
    def _cursor_in_range(self, value: str | None, **_kwargs: Any) -> None:
        if value is not None and int(value) > MAX_ID:
            raise ValidationError("Not a cursor from this listing.")


class CommentPage(Schema):
    """A page of published comments, oldest first."""

    comments = fields.List(fields.Nested(CommentOut), required=True)
    next = fields.String(allow_none=True, required=True)
    total = fields.Integer(required=True)
    closed = fields.Boolean(required=True, metadata={
        "description": "The post takes no new comments: show no form."})


# --- moderation -------------------------------------------------------------------------

QUEUE_SORTS = ("created", "-created", "score", "-score")


class QueueArgs(Schema):
    """Filters and paging of the moderation queue."""

    class Meta:
        unknown = RAISE

    status = fields.Enum(CommentStatus, by_value=True, load_default=CommentStatus.HELD)
    post = fields.String(load_default=None, validate=validate.Length(max=MAX_POST_CHARS))
    q = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    # The comments an Akismet site sent to comment-check (`sites list` shows the ids).
    site = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**31 - 1))
    sort = fields.String(load_default="created", validate=validate.OneOf(QUEUE_SORTS))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(load_default=None, validate=validate.Length(max=100))


class ReasonChip(Schema):
    """One reason worth showing a moderator."""

    text = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "rule, band or model"})
    effect = fields.String(required=True, metadata={
        "description": "spam (pushed towards spam), hold (a rule held it), ham, or neutral"})
    weight = fields.Float(allow_none=True, metadata={
        "description": "The model's signed contribution (log-odds), for model reasons."})


class Explanation(Schema):
    """The stored reasons as a page shows them: no stop words, no tiny weights."""

    chips = fields.List(fields.Nested(ReasonChip), required=True)
    highlight = fields.List(fields.String(), required=True, metadata={
        "description": "Terms of the text that pushed towards spam (to mark)."})


class ExplanationField(fields.Nested):
    """`Explanation` of the object's ``reasons``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(Explanation, attribute="reasons", dump_only=True, **kwargs)

    # Nested and Field name the first argument differently; either way mypy sees a clash.
    def _serialize(self, nested_obj: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        content = obj.get("content") if isinstance(obj, dict) else getattr(obj, "content", "")
        return super()._serialize(explanation(nested_obj, content or ""), attr, obj, **kwargs)


class Bands(Schema):
    """A model's score bands: published below ``low``, spam above ``high``."""

    low = fields.Float(allow_none=True, required=True)
    high = fields.Float(allow_none=True, required=True)


class ActiveModel(Bands):
    """The model the workers score with now."""

    version = fields.String(allow_none=True, required=True)


class ModerationComment(Schema):
    """A comment as a moderator sees it: everything we know, including e-mail and IP."""

    id = fields.Integer(required=True)
    post = fields.String(required=True)
    parent_id = fields.Integer(allow_none=True)
    author_name = fields.String(required=True)
    author_email = fields.String(allow_none=True)
    author_url = fields.String(allow_none=True)
    content = fields.String(required=True)
    ip = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    referer = fields.String(allow_none=True)
    status = fields.Enum(CommentStatus, by_value=True, required=True)
    spam_score = fields.Float(allow_none=True)
    reasons = fields.List(fields.String(), allow_none=True)
    explanation = ExplanationField()
    model_version = fields.String(allow_none=True)
    decided_by = fields.String(allow_none=True)
    label = fields.String(allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    decided_at = fields.AwareDateTime(allow_none=True)


class CommentEventOut(Schema):
    """One entry of a comment's history."""

    id = fields.Integer(required=True)
    actor = fields.String(required=True)
    action = fields.String(required=True)
    from_status = fields.String(allow_none=True)
    to_status = fields.String(required=True)
    note = fields.String(allow_none=True)
    created_at = fields.AwareDateTime(required=True)


class AuthorComment(Schema):
    """Another comment by the same author (same e-mail, returning-reader token or IP)."""

    id = fields.Integer(required=True)
    post = fields.String(required=True)
    content = fields.String(required=True)
    status = fields.Enum(CommentStatus, by_value=True, required=True)
    spam_score = fields.Float(allow_none=True)
    created_at = fields.AwareDateTime(required=True)


# The start of a campaign member's text shown in its record (enough to recognise it).
EXCERPT_CHARS = 160


def excerpt_of(text: str) -> str:
    """The start of ``text``, cut at `EXCERPT_CHARS` with an ellipsis."""
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS].rstrip() + "…"


class CampaignComment(Schema):
    """A near-duplicate of the comment (one template, a few words spun), on any post by any
    author."""

    id = fields.Integer(required=True)
    post = fields.String(required=True)
    author_name = fields.String(required=True)
    status = fields.Enum(CommentStatus, by_value=True, required=True)
    created_at = fields.AwareDateTime(required=True)
    excerpt = fields.Function(lambda comment: excerpt_of(comment.content), required=True,
                              metadata={"type": "string"})


class Campaign(Schema):
    """The comment's campaign: the comments of the last 30 days (at most the newest 5,000
    with a SimHash) whose text is at most 6 bits of SimHash from its text."""

    total = fields.Integer(required=True, metadata={"description": "How many there are."})
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                         metadata={"description": "How many in each status (every status, "
                                                  "zeros included)."})
    comments = fields.List(fields.Nested(CampaignComment), required=True, metadata={
        "description": "The newest 50, newest first. To decide them all: POST their ids to "
                       "/api/v1/moderation/decisions, one request per status they are listed "
                       "in, with that status as expected_status."})


class ModerationDetail(ModerationComment):
    """A comment with its status history and actions."""

    history = fields.List(fields.Nested(CommentEventOut), required=True)
    bands = fields.Nested(Bands, allow_none=True, metadata={
        "description": "The bands of the model that scored it, else the active model's."})
    author_comments = fields.List(fields.Nested(AuthorComment), metadata={
        "description": "The author's other comments, newest first."})
    campaign = fields.Nested(Campaign, metadata={
        "description": "Its near-duplicates across posts and authors (none for a text under "
                       "10 words, or one never scored)."})


class QueuePage(Schema):
    """A page of the queue, with the count of comments in each status."""

    comments = fields.List(fields.Nested(ModerationComment), required=True)
    next = fields.String(allow_none=True, required=True)
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    active_model = fields.Nested(ActiveModel, required=True)
    bands = fields.Dict(keys=fields.String(), values=fields.Nested(Bands), required=True,
                        metadata={"description": "The bands of each model version on the page."})


class DecisionIn(Schema):
    """A moderator's decision on one comment."""

    class Meta:
        unknown = RAISE

    action = fields.String(required=True, validate=validate.OneOf(
        ["approve", "reject", "spam", "not_spam"]))
    note = fields.String(load_default=None, validate=validate.Length(max=2000))
    expected_status = fields.Enum(CommentStatus, by_value=True, load_default=None)


class UndoIn(Schema):
    """Which decision to take back: its event id (the last entry of the decision's history)."""

    class Meta:
        unknown = RAISE

    event_id = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_ID))


class BulkDecisionIn(DecisionIn):
    """The same decision on many comments (each audited on its own)."""

    ids = fields.List(fields.Integer(validate=validate.Range(min=1, max=2**62)), required=True,
                      validate=validate.Length(min=1, max=200))


class BulkResult(Schema):
    """What happened to one comment of a bulk decision."""

    id = fields.Integer(required=True)
    ok = fields.Boolean(required=True)
    status = fields.String(allow_none=True)
    error = fields.String(allow_none=True)


class BulkOut(Schema):
    """Results of a bulk decision, one per id, in request order."""

    results = fields.List(fields.Nested(BulkResult), required=True)


# --- rules (admin) ----------------------------------------------------------------------


class RuleIn(Schema):
    """A new block- or watch-list entry."""

    class Meta:
        unknown = RAISE

    kind = fields.String(required=True, validate=validate.OneOf([
        "blocked_term", "blocked_email", "blocked_email_domain", "blocked_url_domain",
        "blocked_ip", "watched_term"]))
    value = fields.String(required=True, validate=validate.Length(min=1, max=255))
    note = fields.String(load_default=None, validate=validate.Length(max=255))


class RuleOut(Schema):
    """A stored rule."""

    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    value = fields.String(required=True)
    note = fields.String(allow_none=True)
    created_by = fields.String(allow_none=True)
    created_at = fields.AwareDateTime(required=True)


class SettingsSchema(Schema):
    """Site-wide moderation settings (all optional on update)."""

    class Meta:
        unknown = RAISE

    # strict: a JSON number that is not a whole one (2.5) is refused, not truncated.
    hold_links = fields.Integer(strict=True, validate=validate.Range(min=0, max=100),
                                metadata={"description": "Hold at this many links (0: off)."})
    trusted_after = fields.Integer(strict=True, validate=validate.Range(min=0, max=1000), metadata={
        "description": "Approved comments that make a returning reader trusted (0: off)."})
    trusted_spam_ceiling = fields.Float(validate=validate.Range(min=0.5, max=1.0), metadata={
        "description": "A trusted commenter is still stopped at this spam score."})
    hold_foreign_script = JsonBoolean(metadata={
        "description": "Hold a blog engine's comment written mostly in a script its blog's "
                       "language does not use (WordPress's blog_lang), unless the model "
                       "files it as spam."})


class RulesOut(Schema):
    """Every rule and the settings."""

    rules = fields.List(fields.Nested(RuleOut), required=True)
    settings = fields.Nested(SettingsSchema, required=True)


class PostSettingsSchema(Schema):
    """Per-post moderation."""

    class Meta:
        unknown = RAISE

    post = fields.String(dump_only=True)
    closed = JsonBoolean(load_default=False)
    premoderated = JsonBoolean(load_default=False)


class StatsArgs(Schema):
    """The window of the accuracy report."""

    class Meta:
        unknown = RAISE

    days = fields.Integer(load_default=30, validate=validate.Range(min=1, max=365))
    # Only the comments an Akismet site sent to comment-check.
    site = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**31 - 1))


class DayStats(Schema):
    """One day and model version: what the model decided and how often moderators overturned it."""

    date = fields.String(required=True)
    model_version = fields.String(allow_none=True, required=True)
    published = fields.Integer(required=True)
    held = fields.Integer(required=True)
    spam = fields.Integer(required=True)
    false_positives = fields.Integer(required=True, metadata={
        "description": "Filed as spam by the model or rules, approved by a moderator."})
    missed_spam = fields.Integer(required=True, metadata={
        "description": "Published automatically, marked spam by a moderator."})
    held_resolved = fields.Integer(required=True)


class StatsOut(Schema):
    """Accuracy over time, per day and model version, newest first."""

    days = fields.List(fields.Nested(DayStats), required=True)
