"""Answers for a plain HTML comment form (no JavaScript): a browser posting a form and
asking for HTML gets a 303 back to the page it came from, as WordPress's
``wp-comments-post.php`` does, instead of a JSON body.

The page is the form's ``return_to`` field, else the Referer, and only on an allowed origin:
the service's own or one of ``CORS_ORIGINS`` (the blogs it serves); anything else gets a
small page of its own, never a redirect elsewhere (no open redirect). The page learns what
happened from the query: ``comment=<id>&comment_status=pending`` (received, being checked).
A refused comment (a field to fix, a closed post, too fast) gets a page with the reasons in
words and a link back, with the problem's status; JSON clients keep their 202 and
problem+json.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import current_app, json, render_template, request
from werkzeug.wrappers import Response

from service.api.body import FORM_TYPES
from service.problems import PROBLEM_JSON

# The form field naming the page to go back to (WordPress calls it redirect_to).
RETURN_FIELD = "return_to"
MAX_RETURN_URL = 2048
# The words a page shows next to each field's message.
FIELD_LABELS = {"author_name": "Name", "author_email": "E-mail", "author_url": "Website",
                "content": "Comment", "post": "Post", "parent_id": "Reply to"}


def wants_html() -> bool:
    """A browser's form post: a form body, and HTML preferred to JSON in Accept."""
    if request.mimetype not in FORM_TYPES:
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def allowed_return_url(url: str | None) -> str | None:
    """``url`` if it is a page a comment may be answered back to, else None."""
    if not url or len(url) > MAX_RETURN_URL or any(ch in url for ch in "\r\n\t\\"):
        return None
    parts = urlsplit(url)
    if not parts.scheme and not parts.netloc and url.startswith("/") \
            and not url.startswith("//"):
        return request.host_url.rstrip("/") + url  # a path of the service's own pages
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.username \
            or parts.password:
        return None
    allowed = {_origin(request.host_url)}
    allowed.update(_origin(origin) for origin in current_app.config.get("CORS_ORIGINS") or [])
    return url if _origin(url) in allowed else None


def return_url() -> str | None:
    """The page this form came from (its ``return_to`` field, else the Referer), if allowed."""
    raw = request.get_data(cache=True).decode("utf-8", errors="replace")
    field = next((value for key, value in parse_qsl(raw, keep_blank_values=True)
                  if key == RETURN_FIELD), None) if request.mimetype != "multipart/form-data" \
        else request.form.get(RETURN_FIELD)
    return allowed_return_url(field) or allowed_return_url(request.referrer)


def with_status(url: str, **params: Any) -> str:
    """``url`` with ``params`` set in its query (older values of the same names replaced)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k not in params]
    query += [(k, str(v)) for k, v in params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


def answer(response: Response) -> Response:
    """Turn the API's answer to a browser's form post into a redirect or a page."""
    if request.method != "POST" or not wants_html():
        return response
    back = return_url()
    body: dict[str, Any] = {}
    if response.mimetype in ("application/json", PROBLEM_JSON):
        try:
            body = json.loads(response.get_data())
        except ValueError:
            body = {}
    accepted = response.status_code == 202 or (response.status_code == 409 and "id" in body)
    if accepted and back:
        redirect = Response(status=303)
        redirect.headers["Location"] = with_status(back, comment=body.get("id", ""),
                                                   comment_status="pending")
        return redirect
    if accepted:
        page = render_template("comment_answer.html", accepted=True, back=None, problems=[])
        return Response(page, status=202, mimetype="text/html")
    problems = []
    for field, messages in (body.get("errors") or {}).items():
        for message in messages if isinstance(messages, list) else [messages]:
            problems.append((FIELD_LABELS.get(field, field), str(message)))
    if not problems:
        problems.append((None, body.get("detail") or body.get("title") or "Please try again."))
    page = render_template("comment_answer.html", accepted=False, back=back, problems=problems)
    refused = Response(page, status=response.status_code, mimetype="text/html")
    if "Retry-After" in response.headers:
        refused.headers["Retry-After"] = response.headers["Retry-After"]
    return refused
