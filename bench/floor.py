"""The floor of ingest on this machine: the least a Flask endpoint that stores a comment
durably can do, for `make bench` to measure beside ours and Isso's.

``POST /api/v1/comments`` parses the JSON body, inserts three of its fields into SQLite (WAL,
``synchronous=FULL``, as ours) with the standard library, commits and answers 202 with the id.
No validation, no duplicate or closed-post check, no queue, no scoring: what is left is
gunicorn, Flask, the JSON and one fsync'd commit. ``FLOOR_DB`` names the database file.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Any

from flask import Flask, request

app = Flask(__name__)
_local = threading.local()  # one connection per thread (`--web-threads` runs gthread)


def _db() -> sqlite3.Connection:
    connection: sqlite3.Connection | None = getattr(_local, "connection", None)
    if connection is None:
        connection = sqlite3.connect(os.environ["FLOOR_DB"], timeout=30, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("CREATE TABLE IF NOT EXISTS comments (id INTEGER PRIMARY KEY, "
                           "post TEXT, author_name TEXT, content TEXT)")
        _local.connection = connection
    return connection


@app.get("/")
def ready() -> str:
    """Up."""
    return "ok"


@app.post("/api/v1/comments")
def submit() -> tuple[dict[str, Any], int]:
    """Store the comment; 202 with its id."""
    data = request.get_json()
    db = _db()
    db.execute("BEGIN IMMEDIATE")
    cursor = db.execute("INSERT INTO comments (post, author_name, content) VALUES (?, ?, ?)",
                        (data.get("post"), data.get("author_name"), data.get("content")))
    db.execute("COMMIT")
    return {"id": cursor.lastrowid, "status": "pending"}, 202
