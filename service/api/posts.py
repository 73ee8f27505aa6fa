"""Comment counters of posts: one post's count, or many at once for a blog's index page."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate
from sqlalchemy import func, select

from service import database
from service.api.body import post_path
from service.db import Comment, CommentStatus
from service.schemas import MAX_POST_CHARS

# A blog index or a "related posts" box rarely shows more; the cap keeps one query bounded.
MAX_BATCH_POSTS = 100

blp = Blueprint(
    "posts", __name__, url_prefix="/api/v1", description="How many comments posts have."
)


class PostCount(Schema):
    """The number of published comments of one post."""

    post = fields.String(required=True)
    count = fields.Integer(required=True)


class CountsArgs(Schema):
    """The posts to count: ``?post=a&post=b``."""

    class Meta:
        unknown = RAISE

    post = fields.List(
        fields.String(validate=validate.Length(min=1, max=MAX_POST_CHARS)),
        required=True,
        validate=validate.Length(min=1, max=MAX_BATCH_POSTS),
    )


class Counts(Schema):
    """Published comments per post; every asked post is present (0 when it has none)."""

    counts = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)


def published_counts(posts: list[str]) -> dict[str, int]:
    """Published comments per post, 0 for posts without any."""
    rows = database.session().execute(
        select(Comment.post, func.count())
        .where(Comment.post.in_(posts), Comment.status == CommentStatus.PUBLISHED)
        .group_by(Comment.post)
    )
    found = {post: int(count) for post, count in rows}
    return {post: found.get(post, 0) for post in posts}


@blp.route("/posts/<path:post>/count")
class PostCountView(MethodView):
    """One post's counter."""

    @blp.response(200, PostCount)
    def get(self, post: str) -> dict[str, Any]:
        """The number of published comments of a post (0 for a post nobody commented on)."""
        post = post_path(post)
        return {"post": post, "count": published_counts([post])[post]}


@blp.route("/counts")
class CountsView(MethodView):
    """Many posts' counters in one request."""

    @blp.arguments(CountsArgs, location="query", as_kwargs=True, unknown=RAISE)
    @blp.response(200, Counts)
    def get(self, post: list[str]) -> dict[str, Any]:
        """Published comments of up to 100 posts: ``{"counts": {post: n}}``."""
        posts = list(dict.fromkeys(p.strip("/") for p in post))
        return {"counts": published_counts(posts)}
