"""Comment counters of posts: one post's count, or many at once for a blog's index page."""

from __future__ import annotations

from typing import Any, cast

from flask import jsonify
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate
from sqlalchemy import func, select

from service import caching, database
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


_CACHING_DOC = ("Also 304 for an `If-None-Match` naming the current ETag; the same for "
                "everyone: `Cache-Control: public, max-age=10, stale-while-revalidate=60`.")


@blp.route("/posts/<path:post>/count")
class PostCountView(MethodView):
    """One post's counter."""

    @blp.response(200, PostCount, description=_CACHING_DOC)
    def get(self, post: str) -> Any:
        """The number of published comments of a post (0 for a post nobody commented on)."""
        post = post_path(post)
        tag = caching.read_tag([post], "count", post)
        if caching.fresh(tag):
            return caching.not_modified(cast(str, tag), caching.COUNTS_CACHE_CONTROL)
        body = _POST_COUNT.dump({"post": post, "count": published_counts([post])[post]})
        return caching.conditional(jsonify(body), tag, caching.COUNTS_CACHE_CONTROL)


@blp.route("/counts")
class CountsView(MethodView):
    """Many posts' counters in one request."""

    @blp.arguments(CountsArgs, location="query", as_kwargs=True, unknown=RAISE)
    @blp.response(200, Counts, description=_CACHING_DOC)
    def get(self, post: list[str]) -> Any:
        """Published comments of up to 100 posts: ``{"counts": {post: n}}``."""
        posts = list(dict.fromkeys(p.strip("/") for p in post))
        tag = caching.read_tag(posts, "counts", *posts)
        if caching.fresh(tag):
            return caching.not_modified(cast(str, tag), caching.COUNTS_CACHE_CONTROL)
        body = _COUNTS.dump({"counts": published_counts(posts)})
        return caching.conditional(jsonify(body), tag, caching.COUNTS_CACHE_CONTROL)


_POST_COUNT = PostCount()
_COUNTS = Counts()
