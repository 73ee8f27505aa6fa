"""Public comments API: submit a comment, read one, list a post's published comments."""

from __future__ import annotations

import logging
from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE
from sqlalchemy import func, select

from service import database, queue
from service.api.body import parse_body
from service.db import Comment, CommentStatus, PostSettings
from service.errors import ForbiddenError, InvalidFieldError, NotFoundError
from service.schemas import CommentAccepted, CommentIn, CommentOut, CommentPage, PageArgs

log = logging.getLogger(__name__)

blp = Blueprint(
    "comments", __name__, url_prefix="/api/v1", description="Submit and read comments."
)

_BODY_DOC = {
    "required": True,
    "content": {
        "application/json": {"schema": CommentIn},
        "application/x-www-form-urlencoded": {"schema": CommentIn},
    },
}


def _client_ip() -> str | None:
    # Behind a proxy, ProxyFix (configured by the deployment) rewrites remote_addr.
    return request.remote_addr


@blp.route("/comments")
class Comments(MethodView):
    """The comments collection."""

    @blp.doc(requestBody=_BODY_DOC)
    @blp.response(202, CommentAccepted, description="Stored; it will be scored shortly.")
    @blp.alt_response(422, description="A field is invalid (problem+json with `errors`).")
    def post(self) -> Any:
        """Submit a comment: stored at once as `pending`, then scored by a worker."""
        fields = parse_body(CommentIn())
        session = database.session()
        settings = session.get(PostSettings, fields["post"])
        if settings is not None and settings.closed:
            raise ForbiddenError("Comments are closed on this post.")
        parent_id = fields.get("parent_id")
        if parent_id is not None:
            parent = session.get(Comment, parent_id)
            if (
                parent is None
                or parent.post != fields["post"]
                or parent.status != CommentStatus.PUBLISHED
            ):
                raise InvalidFieldError(
                    "parent_id", "Must be a published comment of the same post."
                )
        comment = Comment(
            **fields,
            ip=_client_ip(),
            user_agent=(request.user_agent.string or None) and request.user_agent.string[:512],
            referer=request.referrer[:2048] if request.referrer else None,
            status=CommentStatus.PENDING,
        )
        session.add(comment)
        session.commit()
        try:
            queue.enqueue_scoring(queue.scoring_queue(), comment.id)
        except Exception:
            # The comment is safe in the database; the reconciler will queue it later.
            log.warning("could not enqueue comment %s; left pending", comment.id, exc_info=True)
        return comment, 202, {"Location": f"/api/v1/comments/{comment.id}"}


@blp.route("/comments/<int:comment_id>")
class CommentById(MethodView):
    """One comment."""

    @blp.response(200, CommentOut)
    def get(self, comment_id: int) -> Comment:
        """A comment's public view (no e-mail, no IP), whatever its status."""
        comment = database.session().get(Comment, comment_id)
        if comment is None:
            raise NotFoundError(f"No comment {comment_id}.")
        return comment


@blp.route("/posts/<path:post>/comments")
class PostComments(MethodView):
    """The published comments of one post."""

    @blp.arguments(PageArgs, location="query", as_kwargs=True, unknown=RAISE)
    @blp.response(200, CommentPage)
    def get(self, post: str, limit: int, cursor: str | None) -> dict[str, Any]:
        """Published comments, oldest first, ``limit`` per page; ``next`` is the next cursor."""
        post = post.strip("/")
        session = database.session()
        published = (Comment.post == post, Comment.status == CommentStatus.PUBLISHED)
        query = select(Comment).where(*published).order_by(Comment.id).limit(limit + 1)
        if cursor is not None:
            query = query.where(Comment.id > int(cursor))
        rows = list(session.scalars(query))
        total = session.scalar(select(func.count()).select_from(Comment).where(*published))
        more = len(rows) > limit
        rows = rows[:limit]
        return {
            "comments": rows,
            "next": str(rows[-1].id) if more else None,
            "total": total or 0,
        }
