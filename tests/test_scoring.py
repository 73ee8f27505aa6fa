"""The real path: POST, a real RQ worker in burst mode, the decision stored and shown."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from models.artifacts import ArtifactStore
from service.db import Comment, CommentStatus
from service.db.comments import DecidedBy
from worker import jobs

SPAM = (
    "CHEAP VIAGRA and CIALIS online, no prescription needed!!! Order now at "
    "http://cheap-pills-online.example and get 50% discount http://pills.example/buy"
)
HAM = "I think the seven-month lag estimate is too optimistic; the Qwen benchmarks disagree."


def test_genuine_comment_is_published_and_listed(client, db, post_comment, run_worker) -> None:
    comment_id = post_comment(content=HAM).get_json()["id"]
    assert run_worker() == 1
    row = db.get(Comment, comment_id)
    assert row.status == CommentStatus.PUBLISHED
    assert row.spam_score is not None and row.spam_score < 0.5
    assert row.model_version and row.decided_by == DecidedBy.MODEL
    assert row.decided_at is not None and row.decided_at >= row.created_at
    assert row.reasons and row.reasons[0].startswith("spam score")
    listing = client.get("/api/v1/posts/china-closing-ai-gap/comments").get_json()
    assert [c["id"] for c in listing["comments"]] == [comment_id]
    public = client.get(f"/api/v1/comments/{comment_id}").get_json()
    assert public["status"] == "published" and public["decided_at"]


def test_blatant_spam_is_filed_as_spam_with_reasons(client, db, post_comment, run_worker) -> None:
    comment_id = post_comment(content=SPAM, author_name="Cheap Pills").get_json()["id"]
    run_worker()
    row = db.get(Comment, comment_id)
    assert row.status == CommentStatus.SPAM
    assert row.spam_score > 0.9
    assert any("link" in reason for reason in row.reasons)
    listing = client.get("/api/v1/posts/china-closing-ai-gap/comments").get_json()
    assert listing["total"] == 0


def test_comment_between_the_thresholds_is_held(app, db, post_comment, run_worker) -> None:
    # Move the bands so that every score falls between them (configuration may override).
    jobs.configure({**app.config, "SPAM_THRESHOLD_LOW": 0.0, "SPAM_THRESHOLD_HIGH": 1.0})
    comment_id = post_comment(content=HAM).get_json()["id"]
    run_worker()
    row = db.get(Comment, comment_id)
    assert row.status == CommentStatus.HELD
    assert "between" in row.reasons[0]


def test_one_job_decides_every_pending_comment_and_the_rest_are_no_ops(
    db, post_comment, run_worker
) -> None:
    ids = [post_comment(content=f"{HAM} ({i})").get_json()["id"] for i in range(3)]
    assert jobs.score_comment(ids[0]) == CommentStatus.PUBLISHED
    assert {db.get(Comment, i).status for i in ids} == {CommentStatus.PUBLISHED}
    decided_at = [db.get(Comment, i).decided_at for i in ids]
    assert run_worker() == 3  # the three queued jobs run, and change nothing
    db.expire_all()
    assert [db.get(Comment, i).decided_at for i in ids] == decided_at


def test_scoring_a_decided_comment_again_leaves_it_alone(db, post_comment, run_worker) -> None:
    comment_id = post_comment(content=HAM).get_json()["id"]
    run_worker()
    row = db.get(Comment, comment_id)
    row.status = CommentStatus.HELD  # as if a moderator had it held
    db.commit()
    assert jobs.score_comment(comment_id) is None
    db.expire_all()
    assert db.get(Comment, comment_id).status == CommentStatus.HELD


def test_unknown_comment_id_is_a_no_op(app) -> None:
    assert jobs.score_comment(987654) is None


def _scorer_on(app, model_dir: Path) -> None:
    jobs.configure({**app.config, "MODEL_DIR": str(model_dir)})


def test_without_a_model_comments_are_held_not_published(
    app, db, post_comment, run_worker, scratch_dir
) -> None:
    _scorer_on(app, scratch_dir / "empty-store")
    comment_id = post_comment(content=HAM).get_json()["id"]
    run_worker()
    row = db.get(Comment, comment_id)
    assert row.status == CommentStatus.HELD
    assert row.decided_by == DecidedBy.FALLBACK and row.model_version is None
    assert row.reasons == [jobs.NO_MODEL_REASON]


def test_a_tampered_model_is_refused_and_comments_held(
    app, db, model_dir, post_comment, run_worker, scratch_dir
) -> None:
    store_dir = scratch_dir / "store"
    shutil.copytree(model_dir, store_dir)
    store = ArtifactStore(store_dir)
    model_file = store_dir / store.active_version() / "model.joblib"
    model_file.write_bytes(model_file.read_bytes()[:-10] + b"0123456789")
    _scorer_on(app, store_dir)
    comment_id = post_comment(content=HAM).get_json()["id"]
    run_worker()
    assert db.get(Comment, comment_id).status == CommentStatus.HELD


def test_workers_pick_up_a_newly_activated_model_without_restart(
    app, db, model_dir, post_comment, run_worker, scratch_dir
) -> None:
    store_dir = scratch_dir / "store"
    shutil.copytree(model_dir, store_dir)
    store = ArtifactStore(store_dir)
    _scorer_on(app, store_dir)
    first = post_comment(content=HAM).get_json()["id"]
    run_worker()
    old_version = db.get(Comment, first).model_version
    pipeline, metadata = store.load()
    new_version = store.save(pipeline, metadata, activate=True)
    second = post_comment(content=HAM + " Again.").get_json()["id"]
    run_worker()
    assert old_version != new_version
    assert db.get(Comment, second).model_version == new_version


@pytest.mark.parametrize("status", [CommentStatus.PUBLISHED, CommentStatus.HELD,
                                    CommentStatus.SPAM])
def test_every_pending_transition_is_reachable(app, db, post_comment, status) -> None:
    low, high = {"published": (1.0, 1.0), "held": (0.0, 1.0), "spam": (0.0, 0.0)}[status]
    jobs.configure({**app.config, "SPAM_THRESHOLD_LOW": low, "SPAM_THRESHOLD_HIGH": high})
    comment_id = post_comment(content=HAM).get_json()["id"]
    # p in (0, 1) strictly: below 1.0 publishes, above 0.0 is spam, [0, 1] holds.
    assert jobs.score_comment(comment_id) == status
    assert db.scalar(select(Comment.status).where(Comment.id == comment_id)) == status


def test_only_redoable_decisions_skip_waiting_for_the_disk(app, database_url) -> None:
    """A comment's row is on disk before its 202; the worker's decision commits do not wait
    for the disk (a lost decision leaves the comment pending, to be decided again), its other
    writes do."""
    from sqlalchemy import text

    sqlite = database_url.startswith("sqlite")

    def synchronous(sessions) -> str:
        with sessions() as session:
            # Twice, each in its own transaction: the setting must outlive the first one.
            for _ in range(2):
                value = str(session.scalar(text(
                    "PRAGMA synchronous" if sqlite else "SHOW synchronous_commit")))
                session.rollback()
            return value

    scorer = jobs.get_scorer()
    durable, redoable = ("2", "1") if sqlite else ("on", "off")  # SQLite: FULL, NORMAL
    assert synchronous(app.extensions["db_sessions"]) == durable
    assert synchronous(scorer.sessions) == durable
    assert synchronous(scorer.decision_sessions) == redoable


def test_reconciler_requeues_only_comments_whose_job_is_missing_failed_or_lost(
    app, db, post_comment, run_worker
) -> None:
    from datetime import timedelta

    from rq import Queue
    from rq.job import Job

    from service.db.types import utcnow
    from service.queue import score_job_id
    from tests.conftest import QUEUE

    redis = app.extensions["redis"]
    queue = Queue(QUEUE, connection=redis)
    decided = post_comment(content=HAM).get_json()["id"]
    run_worker()
    ids = [post_comment(content=f"{HAM} ({n})").get_json()["id"] for n in range(5)]
    missing, queued, failed, lost, running = ids
    Job.fetch(score_job_id(missing), connection=redis).delete()  # as if Redis lost it
    for ident in (failed, lost, running):  # off the queue, as a worker would have taken them
        queue.remove(score_job_id(ident))
    Job.fetch(score_job_id(failed), connection=redis).set_status("failed")
    for ident, started in ((lost, utcnow() - timedelta(seconds=jobs.LOST_JOB_SECONDS + 5)),
                           (running, utcnow())):
        job = Job.fetch(score_job_id(ident), connection=redis)
        job.started_at = started.replace(tzinfo=None)
        job.save()
        job.set_status("started")

    assert jobs.reconcile(jobs.get_scorer(), queue, older_than=0) == 3
    requeued = {int(j.removeprefix("score-")) for j in queue.job_ids}
    assert requeued == {missing, queued, failed, lost}  # `queued` was there all along
    assert decided not in requeued and running not in requeued
    assert jobs.reconcile(jobs.get_scorer(), queue, older_than=0) == 0  # never twice
    run_worker()
    assert {c.status for c in db.scalars(select(Comment))} == {CommentStatus.PUBLISHED}
