"""The embeddable comments widget (/embed.js, /embed.css), a demo blog page that uses it
(/demo/<slug>), and CORS for the public API routes the widget calls from a blog's origin.

A blog adds ``<div data-comments data-post="slug"></div>`` and
``<script src="https://comments.example/embed.js" defer></script>``; the script finds the
service's origin from its own ``src``. Elements with ``data-comment-count data-post="slug"``
anywhere on the page get the "N comments" counter filled in.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, abort, render_template, request
from flask_cors import CORS
from werkzeug.wrappers import Response

from service.api.posts import published_counts

bp = Blueprint(
    "widget", __name__,
    static_folder="static", static_url_path="/widget",
    template_folder="templates",
)

# Seconds a browser may reuse embed.js/embed.css at their plain URLs without asking again:
# short, so a new widget version reaches readers within minutes (the snippet blogs paste
# names /embed.js, which must never be pinned to one version); then, for a day, it may use
# its copy while it asks (a 304: the ETag is the content's hash).
ASSET_MAX_AGE = 300
ASSET_STALE_SECONDS = 24 * 3600
# At a versioned URL (?v=<the widget's hash>, what our pages and embed.js itself link) the
# bytes never change: a year, immutable.
VERSIONED_MAX_AGE = 365 * 24 * 3600
# The served embed.js names the widget's version here, so it links the versioned embed.css.
VERSION_PLACEHOLDER = b"__WIDGET_VERSION__"
_ASSETS = {"embed.js": "text/javascript", "embed.css": "text/css"}

# The public routes the widget calls from a blog's origin. Anchored: never /api/v1/moderation
# or anything else that acts on a moderator's session.
CORS_ROUTES = (
    re.compile(r"^/api/v1/comments$"),
    re.compile(r"^/api/v1/comments/[0-9]+$"),
    re.compile(r"^/api/v1/posts/.+/(comments|count)$"),
    re.compile(r"^/api/v1/counts$"),
    re.compile(r"^/api/v1/form-token$"),
)
# Seconds a browser may cache a preflight answer.
CORS_MAX_AGE = 600


@dataclass(frozen=True)
class DemoPost:
    """A placeholder article of the demo blog; ``body`` is a list of (tag, text) blocks."""

    slug: str
    title: str
    date: str
    views: int
    body: tuple[tuple[str, str | tuple[str, ...]], ...]


# Placeholder articles written for this demo; the numbers are illustrative, not reporting.
DEMO_POSTS = {
    post.slug: post
    for post in (
        DemoPost(
            slug="china-closing-ai-gap",
            title="China's AI Labs Are Catching Up, and Scarcity Is Helping",
            date="Jan 10, 2026",
            views=22,
            body=(
                ("p", "For a few years the story of artificial intelligence had one obvious "
                      "front-runner. That story is getting harder to tell. New open models from "
                      "Chinese labs now land on the public leaderboards within months of the "
                      "American systems they are measured against, and some of them were "
                      "trained on a fraction of the hardware."),
                ("p", "This is a demo article: the text is a placeholder written to show how "
                      "the comments widget sits under a real-looking blog post."),
                ("h2", "Doing more with fewer chips"),
                ("p", "Export rules have kept the newest accelerators scarce in China. Labs "
                      "there answered with engineering rather than purchases: mixtures of "
                      "experts that wake only part of a network for each word, lower-precision "
                      "arithmetic during training, and careful scheduling so that no GPU waits "
                      "on another."),
                ("ul", (
                    "Smaller active networks per token mean cheaper training runs.",
                    "Lower-precision maths trades a little accuracy for a lot of throughput.",
                    "Published training recipes let other teams reproduce the savings.",
                )),
                ("h2", "Open weights as a strategy"),
                ("p", "Many of these models are released with their weights, so anyone can "
                      "download, fine-tune and run them. Developers who want a capable model "
                      "on their own servers increasingly start from one of them, which turns "
                      "a research result into an ecosystem."),
                ("h2", "What the gap looks like now"),
                ("p", "Measured by benchmark scores, the distance between the best closed "
                      "model and the best open one has narrowed from years to months. "
                      "Benchmarks are an imperfect ruler, and the frontier keeps moving, but "
                      "the trend is hard to miss."),
                ("p", "Whether this lasts depends on questions nobody can answer yet: how far "
                      "efficiency can stretch a fixed supply of chips, and how quickly domestic "
                      "hardware matures. What do you think? Leave a comment below."),
            ),
        ),
        DemoPost(
            slug="open-weights-explained",
            title="Open Weights, Explained in Five Minutes",
            date="Dec 18, 2025",
            views=57,
            body=(
                ("p", "A placeholder post of the demo blog. An open-weights model is one whose "
                      "trained parameters are published: you can run it on your own machines, "
                      "inspect it and adapt it, even when the training data stays private."),
                ("p", "That is different from open source in the classic sense, and the "
                      "licences vary widely, so read them before building on a model."),
            ),
        ),
        DemoPost(
            slug="mixture-of-experts",
            title="Why Mixture-of-Experts Models Are Cheaper to Train",
            date="Nov 30, 2025",
            views=41,
            body=(
                ("p", "A placeholder post of the demo blog. A mixture-of-experts network "
                      "routes each token to a few specialised sub-networks instead of the "
                      "whole model, so the compute per token grows much more slowly than the "
                      "number of parameters."),
            ),
        ),
    )
}


@dataclass(frozen=True)
class Widget:
    """The widget's files as served, and its version: a hash of both (either changing
    changes the URLs our pages and embed.js link)."""

    version: str
    files: dict[str, bytes]
    etags: dict[str, str]


@functools.cache
def widget() -> Widget:
    """The widget, read once per process (a deploy restarts the workers)."""
    assert bp.static_folder is not None
    raw = {name: (Path(bp.static_folder) / name).read_bytes() for name in _ASSETS}
    digest = hashlib.sha256()
    for name in _ASSETS:
        digest.update(raw[name])
    version = digest.hexdigest()[:16]
    files = {**raw, "embed.js": raw["embed.js"].replace(VERSION_PLACEHOLDER, version.encode())}
    etags = {name: hashlib.sha256(body).hexdigest()[:32] for name, body in files.items()}
    return Widget(version, files, etags)


def _asset(filename: str) -> Response:
    """The file with a strong ETag (its bytes' hash: the same on every machine, unlike a
    modification time); immutable for a year at the current version's URL."""
    current = widget()
    response = Response(current.files[filename], mimetype=_ASSETS[filename])
    response.set_etag(current.etags[filename])
    response.cache_control.public = True
    if request.args.get("v") == current.version:
        response.cache_control.max_age = VERSIONED_MAX_AGE
        response.cache_control.immutable = True
    else:  # the plain URL, or a version that is no longer current
        response.cache_control.max_age = ASSET_MAX_AGE
        response.cache_control.stale_while_revalidate = ASSET_STALE_SECONDS
    return response.make_conditional(request)


@bp.get("/embed.js")
def embed_js() -> Response:
    """The widget script a blog includes."""
    return _asset("embed.js")


@bp.get("/embed.css")
def embed_css() -> Response:
    """The widget's styles; embed.js links them, so blogs need no inline styles."""
    return _asset("embed.css")


@bp.get("/demo/<slug>")
def demo(slug: str) -> str:
    """A demo blog post with the widget under it."""
    post = DEMO_POSTS.get(slug)
    if post is None:
        abort(404, f"No demo post {slug!r}.")
    related = [p for p in DEMO_POSTS.values() if p.slug != slug]
    counts = published_counts([p.slug for p in DEMO_POSTS.values()])
    return render_template("demo.html", post=post, related=related, counts=counts)


def init_app(app: Flask) -> None:
    """Serve the widget and the demo; allow the configured blog origins on the widget's API."""
    app.register_blueprint(bp)

    @app.context_processor
    def _widget_version() -> dict[str, Any]:
        # Templates link url_for('widget.embed_js', v=widget_version): the immutable URL.
        return {"widget_version": widget().version}
    origins = list(app.config.get("CORS_ORIGINS") or [])
    if origins:
        CORS(
            app,
            resources={route: {} for route in CORS_ROUTES},
            origins=origins,
            methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Content-Type", "Idempotency-Key", "X-Comment-Secret"],
            expose_headers=["Location"],
            supports_credentials=False,
            max_age=CORS_MAX_AGE,
        )
