"""`flask --app service import FORMAT FILE`: a blog's history, through the real command, on
the real database; files built by tests/import_files.py in each format's documented shape."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rq import Queue
from sqlalchemy import func, select

from service.db import (
    AdminEvent,
    Comment,
    CommentEvent,
    CommentImport,
    CommentStatus,
    DecidedBy,
    Webhook,
    WebhookDelivery,
)
from service.importers import READERS
from service.queue import requested_key
from service.sites import create_site, record_check
from tests.conftest import QUEUE, ROOT
from tests.import_files import (
    DisqusPost,
    WpComment,
    WpPost,
    remark42_comment,
    write_disqus,
    write_isso,
    write_remark42,
    write_wxr,
)


def run_import(app: Any, *args: str) -> Any:
    """The command through Flask's CLI runner (stdout and stderr apart)."""
    return app.test_cli_runner().invoke(args=["import", *args])


def by_external_id(db: Any) -> dict[str, Comment]:
    """Imported comments by their id in the old system."""
    rows = db.execute(select(CommentImport.external_id, Comment)
                      .join(Comment, Comment.id == CommentImport.comment_id))
    return {external: comment for external, comment in rows}


def blog_posts() -> list[WpPost]:
    """Two posts: a thread with every moderation state, and a second post."""
    return [
        WpPost(1, "hello-world", [
            WpComment(11, "First! Lovely write-up about the harbour walk.",
                      author="Ann", email="Ann@Example.ORG", url="https://ann.example",
                      date_gmt="2020-01-02 03:04:05"),
            WpComment(12, "Thanks Ann, the second half is even better.", parent=11,
                      author="Ben", date_gmt="2020-01-03 03:04:05"),
            WpComment(13, "Is the ferry running in winter?", approved="0",
                      date_gmt="2020-01-04 03:04:05"),
            WpComment(14, "Cheap replica watches, best prices http://watches.example",
                      approved="spam", author="Watch Deals", date_gmt="2020-01-05 03:04:05"),
            WpComment(15, "(removed by the author's request)", approved="trash", parent=12,
                      date_gmt="2020-01-06 03:04:05"),
            WpComment(16, "[...] a nice walk, see hello-world [...]", type="pingback"),
            # An old comment whose GMT date WordPress never filled: the local one is used.
            WpComment(17, "Still here in 2008.", date_gmt="0000-00-00 00:00:00",
                      date="2008-07-08 09:10:11"),
        ]),
        WpPost(2, "second-post", [
            WpComment(21, "A reply to nothing we have", parent=999,
                      date_gmt="2021-01-01 00:00:00"),
        ]),
    ]


def test_wxr_keeps_status_dates_thread_and_labels(app, client, db, tmp_path) -> None:
    db.add(Webhook(url="http://127.0.0.1:8499/hook", secret="s",
                   events=["comment.published", "comment.held", "comment.spam"], active=True))
    db.commit()
    path = write_wxr(tmp_path / "blog.wordpress.2026-12-01.xml", blog_posts())

    result = run_import(app, "wxr", str(path))

    assert result.exit_code == 0, result.output
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("imported 7 of 8 comments (held 1, published 4, rejected 1, "
                              "spam 1); labels: ham 4, spam 1;"), summary
    assert "skipped 1 (pingback 1)" in summary and "replies linked 2" in summary
    assert "without their parent 1" in summary
    rows = by_external_id(db)
    assert sorted(rows) == ["11", "12", "13", "14", "15", "17", "21"]
    expected = {"11": ("published", "ham"), "12": ("published", "ham"), "13": ("held", None),
                "14": ("spam", "spam"), "15": ("rejected", None), "17": ("published", "ham"),
                "21": ("published", "ham")}
    assert {k: (c.status, c.label) for k, c in rows.items()} == expected
    assert {c.decided_by for c in rows.values()} == {"import"}
    assert rows["11"].created_at == datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert rows["11"].decided_at == rows["11"].created_at
    assert rows["17"].created_at == datetime(2008, 7, 8, 9, 10, 11, tzinfo=UTC)
    assert rows["12"].parent_id == rows["11"].id and rows["15"].parent_id == rows["12"].id
    assert rows["11"].parent_id is None and rows["21"].parent_id is None
    assert (rows["11"].post, rows["21"].post) == ("hello-world", "second-post")
    assert rows["11"].author_email == "ann@example.org"
    assert (rows["11"].author_url, rows["11"].ip) == ("https://ann.example", "203.0.113.7")
    assert {c.site_id for c in rows.values()} == {None}
    # Audited, no webhook for anything, no scoring asked for.
    events = db.scalars(select(CommentEvent).where(CommentEvent.comment_id == rows["14"].id))
    assert [(e.actor, e.action, e.to_status) for e in events] == [
        ("import", "import-wxr", "spam")]
    assert db.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
    queue = Queue(QUEUE, connection=app.extensions["redis"])
    assert queue.count == 0 and not queue.connection.exists(requested_key(queue))
    audit = db.scalar(select(AdminEvent).where(AdminEvent.action == "comments.import"))
    assert audit.details["imported"] == 7 and audit.details["format"] == "wxr"
    # Readers see the published ones, threaded, on the post's page (in the file's order).
    listing = client.get("/api/v1/posts/hello-world/comments").get_json()
    assert [(c["content"][:6], c["parent_id"]) for c in listing["comments"]] == [
        ("First!", None), ("Thanks", rows["11"].id), ("Still ", None)]


def test_importing_again_stores_nothing_twice(app, db, tmp_path) -> None:
    path = write_wxr(tmp_path / "export.xml", blog_posts())
    assert run_import(app, "wxr", str(path)).exit_code == 0
    first = {c.id: (c.status, c.parent_id) for c in db.scalars(select(Comment))}

    again = run_import(app, "wxr", str(path))

    assert again.exit_code == 0, again.output
    assert "imported 0 of 8 comments; labels: none; 7 already imported" in again.stdout
    db.expire_all()
    assert {c.id: (c.status, c.parent_id) for c in db.scalars(select(Comment))} == first
    assert db.scalar(select(func.count()).select_from(CommentEvent)) == 7


def test_a_parent_imported_later_is_linked_then(app, db, tmp_path) -> None:
    """An import cut short (or a file split in two) links its replies when the parent comes."""
    reply = WpPost(1, "p", [WpComment(2, "A reply", parent=1)])
    parent = WpPost(1, "p", [WpComment(1, "The first comment")])
    assert "without their parent 1" in run_import(
        app, "wxr", str(write_wxr(tmp_path / "a.xml", [reply]))).stdout

    result = run_import(app, "wxr", str(write_wxr(tmp_path / "b.xml", [parent])))

    assert "replies linked 1, without their parent 0" in result.stdout
    rows = by_external_id(db)
    assert rows["2"].parent_id == rows["1"].id


def test_the_same_ids_from_another_blog_are_other_comments(app, db, tmp_path) -> None:
    posts = [WpPost(1, "p", [WpComment(1, "Same id, another blog")])]
    run_import(app, "wxr", str(write_wxr(tmp_path / "a.xml", posts, blog="https://a.example")))
    run_import(app, "wxr", str(write_wxr(tmp_path / "b.xml", posts, blog="https://b.example")))
    assert db.scalar(select(func.count()).select_from(Comment)) == 2


def test_disqus_export(app, db, tmp_path) -> None:
    threads = {"100": "https://blog.example/2019/05/harbour-walk/", "200": "https://blog.example/"}
    path = write_disqus(tmp_path / "blogexample-2026-12-01T10_00_00.all.xml", threads, [
        DisqusPost("1", "100", '<p>Great photos.</p><p>See <a href="https://my.example/x" '
                   'rel="nofollow noopener">my pictures</a></p>', email="Reader@Mail.example"),
        DisqusPost("2", "100", "<p>Agreed!</p>", parent="1", created="2019-05-07T00:00:00Z"),
        DisqusPost("3", "100", "<p>Buy followers now</p>", spam=True),
        DisqusPost("4", "200", "<p>gone</p>", deleted=True, parent="2"),
        DisqusPost("5", "999", "<p>a thread the file lacks</p>"),
    ])

    result = run_import(app, "disqus", str(path))

    assert result.exit_code == 0, result.output
    assert "skipped 1 (its thread is not in the file 1)" in result.stdout
    rows = by_external_id(db)
    assert {k: (c.status, c.label) for k, c in rows.items()} == {
        "1": ("published", "ham"), "2": ("published", "ham"), "3": ("spam", "spam"),
        "4": ("rejected", None)}
    assert rows["1"].content == "Great photos.\n\nSee my pictures (https://my.example/x)"
    assert rows["1"].post == "2019/05/harbour-walk" and rows["4"].post == "blog.example"
    assert rows["2"].parent_id == rows["1"].id and rows["4"].parent_id == rows["2"].id
    assert rows["2"].created_at == datetime(2019, 5, 7, tzinfo=UTC)
    assert (rows["1"].author_email, rows["1"].ip) == ("reader@mail.example", "198.51.100.4")
    origins = set(db.scalars(select(CommentImport.origin)))
    assert origins == {"blogexample"}


def test_isso_database(app, db, tmp_path) -> None:
    path = write_isso(tmp_path / "comments.db", {1: "/2020/harbour-walk/", 2: "/about"}, [
        (1, 1, None, 1_600_000_000.25, 1, "Lovely *walk*", "Ann"),
        (1, 2, 1, 1_600_000_100.5, 1, "Thanks!", None),
        (1, 3, None, 1_600_000_200.0, 2, "Waiting for a moderator", "Cy"),
        (2, 4, None, 1_600_000_300.0, 4, "", None),
        (2, 5, 4, 1_600_000_400.0, 1, "A reply to a deleted comment", "Dee"),
    ])

    result = run_import(app, "isso", str(path))

    assert result.exit_code == 0, result.output
    rows = sorted(db.scalars(select(Comment)), key=lambda c: c.created_at)
    assert [(c.status, c.label) for c in rows] == [
        ("published", "ham"), ("published", "ham"), ("held", None), ("rejected", None),
        ("published", "ham")]
    first, reply, _, deleted, orphan_reply = rows
    assert first.created_at == datetime.fromtimestamp(1_600_000_000.25, UTC)
    assert (first.post, deleted.post) == ("2020/harbour-walk", "about")
    assert reply.parent_id == first.id and orphan_reply.parent_id == deleted.id
    assert reply.author_name == "Anonymous" and first.content == "Lovely *walk*"
    assert first.author_url == "https://reader.example" and first.ip == "192.0.2.0"
    assert "1@1600000000.250000" in set(db.scalars(select(CommentImport.external_id)))


@pytest.mark.parametrize("gzipped", [True, False], ids=["gzip", "plain"])
def test_remark42_backup(app, db, tmp_path, gzipped: bool) -> None:
    url = "https://blog.example/posts/harbour-walk/"
    path = write_remark42(tmp_path / "backup-remark-20261201.gz", [
        remark42_comment("a1", url, "<p>Nice <strong>walk</strong></p>\n",
                         "2022-02-03T04:05:06.123456789-06:00", orig="Nice **walk**"),
        remark42_comment("b2", url, "<p>Agreed, see <a href=\"https://x.example\">this</a></p>",
                         "2022-02-04T00:00:00Z", pid="a1", name="Bo"),
        remark42_comment("c3", url, "", "2022-02-05T00:00:00Z", pid="b2", deleted=True),
    ], gzipped=gzipped)

    result = run_import(app, "remark42", str(path))

    assert result.exit_code == 0, result.output
    rows = by_external_id(db)
    assert {k: (c.status, c.label) for k, c in rows.items()} == {
        "a1": ("published", "ham"), "b2": ("published", "ham"), "c3": ("rejected", None)}
    assert rows["a1"].content == "Nice **walk**"
    assert rows["b2"].content == "Agreed, see this (https://x.example)"
    assert rows["a1"].created_at == datetime(2022, 2, 3, 10, 5, 6, 123456, tzinfo=UTC)
    assert rows["b2"].parent_id == rows["a1"].id and rows["c3"].parent_id == rows["b2"].id
    assert rows["a1"].post == "posts/harbour-walk" and rows["a1"].ip is None  # a hash, not an IP


def test_site_scoping(app, db, tmp_path) -> None:
    site, _key = create_site(db, "https://blog.example")
    db.commit()
    path = write_wxr(tmp_path / "export.xml", blog_posts())

    by_url = run_import(app, "wxr", str(path), "--site", "https://blog.example")
    unknown = run_import(app, "wxr", str(path), "--site", "42")

    assert by_url.exit_code == 0, by_url.output
    assert {c.site_id for c in db.scalars(select(Comment))} == {site.id}
    assert unknown.exit_code == 1
    assert unknown.output.strip() == ("Error: no site '42' "
                                      "(see `flask --app service sites list`)")


def test_comments_the_site_checked_are_linked_and_take_the_blogs_decision(app, db, tmp_path
                                                                         ) -> None:
    # A WordPress blog whose comments went through comment-check, then exported: the held
    # one was approved in WordPress, the other was checked and never decided there.
    site, _key = create_site(db, "https://blog.example")
    held = {"post": "akismet:https://blog.example/?p=1", "author_name": "Ann",
            "author_email": "Ann@Example.ORG", "content": "Is the ferry running in winter?\n",
            "ip": "203.0.113.7"}
    comment, _check = record_check(db, site, held, {}, {
        "status": CommentStatus.HELD, "decided_by": DecidedBy.RULE, "reasons": ["watched"]})
    published = {**held, "author_name": "Cy", "content": "Lovely walk, thanks."}
    ours, _check = record_check(db, site, published, {}, {
        "status": CommentStatus.PUBLISHED, "decided_by": DecidedBy.MODEL, "reasons": []})
    db.commit()
    posts = [WpPost(1, "hello-world", [
        WpComment(11, "Is the ferry running in winter?", author="Ann", email="ann@example.org",
                  ip="203.0.113.7"),
        # Published by WordPress because the check said so: no human decision to learn.
        WpComment(13, "Lovely walk, thanks.", author="Cy", email="ann@example.org"),
        WpComment(12, "A comment from before the connector.", author="Ben")])]
    path = write_wxr(tmp_path / "export.xml", posts)

    result = run_import(app, "wxr", str(path), "--site", str(site.id))

    assert result.exit_code == 0, result.output
    assert "2 seen before through the Akismet API (linked, 1 labelled" in result.output
    assert db.scalar(select(func.count()).select_from(Comment)) == 3  # none stored twice
    db.expire_all()
    checked = db.get(Comment, comment.id)
    assert (checked.status, checked.label, checked.decided_by) == ("published", "ham", "import")
    assert [e.note for e in db.scalars(select(CommentEvent).where(
        CommentEvent.comment_id == comment.id, CommentEvent.action == "import-wxr"))] == [
        "decided on the blog (wxr id 11)"]
    assert (db.get(Comment, ours.id).label, db.get(Comment, ours.id).decided_by) == (
        None, "model")
    again = run_import(app, "wxr", str(path), "--site", str(site.id))
    assert "imported 0 of 3" in again.output and "3 already imported" in again.output


def _truncated_wxr(tmp_path: Path) -> Path:
    text = write_wxr(tmp_path / "full.xml", blog_posts()).read_text()
    path = tmp_path / "truncated.xml"
    path.write_text(text[: len(text) // 2])
    return path


BROKEN_FILES = {
    "missing": ("wxr", lambda tmp: tmp / "nope.xml", "no such file"),
    "a-folder": ("isso", lambda tmp: tmp, "not a file"),
    "truncated-xml": ("wxr", _truncated_wxr, "not well-formed XML (unclosed token: line"),
    "disqus-as-wxr": ("wxr", lambda tmp: write_disqus(tmp / "d.xml", {}, []),
                      "not a WordPress export (root <disqus>, not <rss>)"),
    "rss-not-wxr": ("wxr", lambda tmp: _write(tmp / "feed.xml", "<rss><channel/></rss>"),
                    "not a WordPress export (no wp: elements)"),
    "wxr-as-disqus": ("disqus", lambda tmp: write_wxr(tmp / "w.xml", []),
                      "not a Disqus export (root <rss>, not <disqus>)"),
    "entity-bomb": ("wxr", lambda tmp: _write(
        tmp / "bomb.xml", '<!DOCTYPE r [<!ENTITY a "aaaa">]><rss>&a;</rss>'), "refused:"),
    "text-as-isso": ("isso", lambda tmp: _write(tmp / "c.db", "not a database"),
                     "not an Isso database (file is not a database)"),
    "other-sqlite": ("isso", lambda tmp: _sqlite(tmp / "o.db"),
                     "not an Isso database (no such table: comments)"),
    "remark42-bad-line": ("remark42", lambda tmp: _write(
        tmp / "b.json", '{"version": 1}\n{"id": "x", broken\n'), "line 2 is not JSON"),
    "remark42-no-header": ("remark42", lambda tmp: _write(tmp / "h.json", '{"users": []}\n'),
                           "not a Remark42 backup (its header has version None"),
    "remark42-bad-gzip": ("remark42", lambda tmp: _bytes(
        tmp / "t.gz", gzip.compress(b'{"version": 1}\n' * 50)[:40]), "unreadable after line"),
}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _sqlite(path: Path) -> Path:
    import sqlite3

    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE things (id INTEGER)")
    connection.close()
    return path


@pytest.mark.parametrize("case", sorted(BROKEN_FILES))
def test_a_broken_file_gets_one_clear_line(app, db, tmp_path, case: str) -> None:
    format_name, make, message = BROKEN_FILES[case]
    path = make(tmp_path)

    result = run_import(app, format_name, str(path))

    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {path}: "), result.output
    assert message in lines[0]
    if case not in ("truncated-xml", "remark42-bad-gzip"):  # cut short: the others fail first
        assert "imported" not in lines[0]
    assert "Traceback" not in result.output


def test_progress_lines_and_no_traceback_from_the_real_command(app, database_url, tmp_path
                                                               ) -> None:
    posts = [WpPost(1, "p", [WpComment(i, f"Comment number {i}") for i in range(1, 8)])]
    path = write_wxr(tmp_path / "export.xml", posts)
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": app.config["REDIS_URL"]}

    def command(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "flask", "--app", "service", "import",
                               *args], env=env, cwd=ROOT, capture_output=True, text=True,
                              timeout=120)

    done = command("wxr", str(path), "--progress-every", "3")
    broken = command("wxr", str(_truncated_wxr(tmp_path)))
    fixed = command("wxr", str(tmp_path / "full.xml"))

    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["wxr: 3 read, 3 imported, 0 already imported",
                                        "wxr: 6 read, 6 imported, 0 already imported"]
    assert done.stdout.startswith("imported 7 of 7 comments (published 7)")
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
    (line,) = broken.stderr.strip().splitlines()
    assert line.startswith(f"Error: {tmp_path / 'truncated.xml'}: not well-formed XML (")
    assert line.endswith(") (3 comments before it were imported: importing the fixed file "
                         "skips them)")
    assert fixed.stdout.startswith("imported 4 of 8 comments"), fixed.stdout
    assert "3 already imported" in fixed.stdout  # and 12 → 11 was linked by the first run
    assert "replies linked 1, without their parent 1" in fixed.stdout


@pytest.mark.parametrize("format_name", ["wxr", "disqus"])
def test_xml_is_read_as_a_stream(tmp_path, format_name: str) -> None:
    """Memory stays flat: reading 4,000 comments (~4 MB) peaks far below the file's size."""
    n = 4_000
    text = "A fairly ordinary comment about the harbour walk and the ferry times. " * 12
    if format_name == "wxr":
        path = write_wxr(tmp_path / "big.xml", [
            WpPost(p, f"post-{p}", [WpComment(p * 1000 + i, text) for i in range(100)])
            for p in range(n // 100)])
    else:
        path = write_disqus(tmp_path / "big.xml", {str(t): f"https://b.example/{t}"
                                                   for t in range(n // 100)},
                            [DisqusPost(str(i), str(i // 100), text) for i in range(n)])
    size = path.stat().st_size
    tracemalloc.start()
    try:
        count = sum(1 for _ in READERS[format_name](path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == n and size > 3_000_000
    assert peak < size / 10, f"peak {peak} bytes for a {size}-byte file"


HAM_TOPICS = ["the ferry timetable", "the harbour walk", "the lighthouse photos", "the tide table",
              "the old fish market", "the winter opening hours", "the cliff path", "the map"]
HAM_TEXTS = ["Thanks for writing about {t}, we used it last weekend and it was spot on.",
             "Quick question about {t}: is it still the same since the spring?",
             "I grew up near there and {t} brought back good memories, cheers."]
# The blog's own spam: vocabulary of its own, nothing of the posts' topics.
SPAM_TEXTS = ["Earn $500 a day from home, message Anna on telegram @quickcash{i} today",
              "Best prices on replica watches, visit http://replica-{i}.example now",
              "Your account needs verification, login at http://secure-{i}.example/verify"]


def history(n: int, *, with_spam: bool = True) -> list[WpPost]:
    """``n`` comments over ``n`` days, moderated: ham approved, spam filed as spam."""
    comments = []
    for i in range(n):
        topic = HAM_TOPICS[i % len(HAM_TOPICS)]
        spam = with_spam and i % 2 == 1
        template = (SPAM_TEXTS if spam else HAM_TEXTS)[(i // 2) % 3]
        comments.append(WpComment(
            100 + i, template.format(t=topic, i=i) + f" ({i})", approved="spam" if spam else "1",
            author=f"Reader {i}", date_gmt=f"2020-{1 + i // 28:02d}-{1 + i % 28:02d} 12:00:00"))
    return [WpPost(1, "harbour", comments)]


def test_imported_labels_are_training_data_known_since_the_import(app, db, tmp_path) -> None:
    """learning.py reads imported labels, dated by the import for the "never saw it" check."""
    from service import learning

    before = datetime.now(UTC)
    run_import(app, "wxr", str(write_wxr(tmp_path / "h.xml", history(12))))
    db.add(Comment(post="p", author_name="A", content="An unlabelled comment"))
    db.commit()

    examples, known = learning.site_examples_with_times(db)

    assert [e.label for e in examples] == [0, 1] * 6  # oldest decision first; 1 is spam
    assert examples[1].content.startswith("Earn $500 a day")
    assert all(when >= before for when in known)


@pytest.mark.slow
def test_make_retrain_after_a_wxr_import_trains_on_it_and_promotes(app, database_url,
                                                                   tmp_path) -> None:
    """The commands `make retrain` runs, after an import: the candidate is trained on the
    imported labels, compared on the newest of them, and promoted."""
    from service.db.model_store import ModelStore

    store = ModelStore()
    with app.extensions["db_sessions"]() as session:
        before = store.active_version(session)
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": app.config["REDIS_URL"],
           "MODEL_DIR": str(tmp_path / "models")}

    def flask(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "flask", "--app", "service", *args],
                              env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        return done.stdout

    imported = flask("import", "wxr", str(write_wxr(tmp_path / "h.xml", history(64))))
    flask("db", "upgrade")
    retrained = flask("model", "retrain")

    assert "imported 64 of 64 comments (published 32, spam 32)" in imported
    assert "evaluation: time-ordered hold-out: the newest 16 site labels" in retrained
    assert "PROMOTED" in retrained, retrained
    with app.extensions["db_sessions"]() as session:
        after = store.active_version(session)
        assert after != before
        metadata = store.metadata(session, after)
        assert metadata["evaluation"]["site_labels"] == 64
        assert "site-labels" in metadata["data"]["sources"]
        assert metadata["data"]["n"] > store.metadata(session, before)["data"]["n"] + 40


def test_an_imported_held_comment_waits_for_our_moderators(app, client, db, make_moderator,
                                                            tmp_path) -> None:
    run_import(app, "wxr", str(write_wxr(tmp_path / "e.xml", blog_posts())))
    headers = {"Authorization": f"Bearer {make_moderator()}"}
    held = by_external_id(db)["13"]

    queue = client.get("/api/v1/moderation/queue", headers=headers).get_json()
    decided = client.post(f"/api/v1/moderation/comments/{held.id}/decision", headers=headers,
                          json={"action": "approve", "expected_status": "held"})

    assert [c["id"] for c in queue["comments"]] == [held.id]
    assert decided.status_code == 200, decided.get_json()
    db.expire_all()
    assert (db.get(Comment, held.id).status, db.get(Comment, held.id).label) == (
        "published", "ham")
