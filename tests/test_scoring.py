"""The real path: POST, a real RQ worker in burst mode, the decision stored and shown."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from models.artifacts import ArtifactStore
from service.db import ActiveModel, Comment, CommentStatus, ModelArtifact
from service.db.comments import DecidedBy
from service.db.model_store import ModelStore
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


def test_one_job_decides_every_pending_comment_batch_after_batch(
    app, db, post_comment, run_worker
) -> None:
    jobs.configure({**app.config, "SCORE_BATCH_SIZE": 2})
    ids = [post_comment(content=f"{HAM} ({i})").get_json()["id"] for i in range(5)]
    assert run_worker() == 1  # three batches of at most 2, one job
    assert {db.get(Comment, i).status for i in ids} == {CommentStatus.PUBLISHED}
    assert len({db.get(Comment, i).decided_at for i in ids}) == 3


def test_a_comment_stored_after_the_job_started_queues_the_next_one(
    app, db, post_comment, run_worker
) -> None:
    from rq import Queue

    from service.queue import clear_request
    from tests.conftest import QUEUE

    queue = Queue(QUEUE, connection=app.extensions["redis"])
    first = post_comment(content=HAM).get_json()["id"]
    [job_id] = queue.job_ids
    clear_request(queue, job_id)  # what the job does first, before it reads pending comments
    second = post_comment(content=f"{HAM} (2)").get_json()["id"]
    assert len(queue.job_ids) == 2
    assert run_worker() == 2
    assert {db.get(Comment, i).status for i in (first, second)} == {CommentStatus.PUBLISHED}


def test_a_job_past_its_time_budget_hands_the_rest_to_a_successor(
    app, db, post_comment, run_worker, monkeypatch
) -> None:
    jobs.configure({**app.config, "SCORE_BATCH_SIZE": 2})
    monkeypatch.setattr(jobs, "JOB_BUDGET_SECONDS", -1.0)  # every batch is over budget
    ids = [post_comment(content=f"{HAM} ({i})").get_json()["id"] for i in range(5)]
    assert run_worker() == 3  # 2 + 2 + 1, each job queueing the next
    assert {db.get(Comment, i).status for i in ids} == {CommentStatus.PUBLISHED}


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
    db.execute(delete(ActiveModel))
    db.commit()
    _scorer_on(app, scratch_dir / "empty-cache")
    comment_id = post_comment(content=HAM).get_json()["id"]
    run_worker()
    row = db.get(Comment, comment_id)
    assert row.status == CommentStatus.HELD
    assert row.decided_by == DecidedBy.FALLBACK and row.model_version is None
    assert row.reasons == [jobs.NO_MODEL_REASON]


def test_a_tampered_model_is_refused_and_comments_held(
    app, db, post_comment, run_worker, scratch_dir
) -> None:
    artifact = db.get(ModelArtifact, ModelStore().active_version(db))
    artifact.data = artifact.data[:-10] + b"0123456789"  # its recorded SHA-256 stays
    db.commit()
    _scorer_on(app, scratch_dir / "empty-cache")  # nothing cached: the bytes come from the row
    comment_id = post_comment(content=HAM).get_json()["id"]
    run_worker()
    row = db.get(Comment, comment_id)
    assert row.status == CommentStatus.HELD and row.decided_by == DecidedBy.FALLBACK
    assert not (scratch_dir / "empty-cache").exists() or not any(
        (scratch_dir / "empty-cache").iterdir())  # refused bytes are not cached either


def test_a_damaged_local_copy_is_fetched_again_from_the_database(
    app, db, model_dir, post_comment, run_worker, scratch_dir
) -> None:
    cache = scratch_dir / "cache"
    shutil.copytree(model_dir, cache)
    version = ModelStore().active_version(db)
    model_file = cache / version / "model.joblib"
    good = model_file.read_bytes()
    model_file.write_bytes(good[:-10] + b"0123456789")
    _scorer_on(app, cache)
    comment_id = post_comment(content=HAM).get_json()["id"]
    run_worker()
    row = db.get(Comment, comment_id)
    assert row.status == CommentStatus.PUBLISHED and row.model_version == version
    assert model_file.read_bytes() == good


def test_workers_pick_up_a_newly_activated_model_without_restart(
    app, db, post_comment, run_worker, scratch_dir
) -> None:
    store = ModelStore(scratch_dir / "trainer")  # another machine's cache
    _scorer_on(app, scratch_dir / "worker")
    first = post_comment(content=HAM).get_json()["id"]
    run_worker()
    old_version = db.get(Comment, first).model_version
    pipeline, metadata = store.load(db)
    new_version = store.save(db, pipeline, metadata)
    store.activate(db, new_version, "tester")
    db.commit()
    second = post_comment(content=HAM + " Again.").get_json()["id"]
    run_worker()
    assert old_version != new_version
    assert db.get(Comment, second).model_version == new_version
    assert ArtifactStore(scratch_dir / "worker").versions() == sorted([old_version, new_version])


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


def test_reconciler_queues_a_job_only_when_old_pending_comments_have_none_waiting(
    app, db, post_comment, run_worker
) -> None:
    from rq import Queue
    from rq.job import Job

    from service.queue import requested_key, scoring_queued
    from tests.conftest import QUEUE

    redis = app.extensions["redis"]
    queue = Queue(QUEUE, connection=redis)
    scorer = jobs.get_scorer()
    assert jobs.reconcile(scorer, queue, older_than=0) == 0  # nothing pending
    ids = [post_comment(content=f"{HAM} ({n})").get_json()["id"] for n in range(3)]
    assert scoring_queued(queue)
    assert jobs.reconcile(scorer, queue, older_than=0) == 0  # their job is waiting
    assert jobs.reconcile(scorer, queue, older_than=60) == 0  # and they are not old

    [lost] = queue.job_ids
    Job.fetch(lost, connection=redis).delete()  # Redis lost the job; the mark names it
    assert not scoring_queued(queue)
    assert jobs.reconcile(scorer, queue, older_than=0) == 3
    [fresh] = queue.job_ids
    assert fresh != lost and redis.get(requested_key(queue)) == fresh.encode()
    assert jobs.reconcile(scorer, queue, older_than=0) == 0  # never twice

    taken = queue.job_ids[0]
    redis.lrem(queue.key, 0, taken)  # taken by a worker that died before starting it
    assert Job.fetch(taken, connection=redis).get_status() == "queued"
    assert not scoring_queued(queue)
    assert jobs.reconcile(scorer, queue, older_than=0) == 3
    assert queue.job_ids and queue.job_ids[0] != taken

    queue.empty()
    redis.delete(requested_key(queue))  # Redis was down: no mark, no job
    assert jobs.reconcile(scorer, queue, older_than=0) == 3
    assert run_worker() == 1
    assert {db.get(Comment, i).status for i in ids} == {CommentStatus.PUBLISHED}
    assert jobs.reconcile(scorer, queue, older_than=0) == 0


def test_a_job_taken_by_a_worker_that_died_before_starting_it_is_not_waiting(
    app, db, post_comment, run_worker
) -> None:
    """RQ moves a job it takes off the queue to an intermediate list first; a worker SIGKILLed
    then leaves it there, status "queued", for minutes. The reconciler must not wait for it
    (make faults' drill saw every comment of a stream wait 60 s, the mark's lifetime)."""
    from rq import Queue

    from service.queue import scoring_queued
    from tests.conftest import QUEUE

    redis = app.extensions["redis"]
    queue = Queue(QUEUE, connection=redis)
    scorer = jobs.get_scorer()
    ids = [post_comment(content=f"{HAM} ({n})").get_json()["id"] for n in range(2)]
    assert scoring_queued(queue)
    # What a worker does first with a job, through RQ's own dequeue; then it "dies".
    job, _ = Queue.dequeue_any([queue], timeout=None, connection=redis)
    assert job.get_status() == "queued" and queue.count == 0
    assert not scoring_queued(queue)
    assert jobs.reconcile(scorer, queue, older_than=0) == 2
    assert run_worker() == 1
    assert {db.get(Comment, i).status for i in ids} == {CommentStatus.PUBLISHED}


# The root autogroup (init's session, where a container's processes often run) reads as an
# empty file; any other reads "/autogroup-<id> nice <n>".
_PRIORITY_PROBE = """
import os, sys
from worker.__main__ import lower_priority
def group():
    return (open("/proc/self/autogroup").read().split() or ["root"])[-1]
before = group()
lower_priority(int(sys.argv[1]))
print(os.getpriority(os.PRIO_PROCESS, 0), before, group())
"""


@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="no autogroups here")
@pytest.mark.parametrize("own_session", [True, False])
def test_a_scoring_worker_yields_the_cpu_to_the_web(own_session: bool) -> None:
    import subprocess
    import sys

    probe = subprocess.run([sys.executable, "-c", _PRIORITY_PROBE, "7"], text=True,
                           capture_output=True, start_new_session=own_session)
    assert probe.returncode == 0, probe.stderr
    nice, group_before, group_after = probe.stdout.split()
    assert int(nice) == min(os.getpriority(os.PRIO_PROCESS, 0) + 7, 19)
    # Its own session is its own CPU group: that group yields too. A shared one is left be.
    assert group_after == ("7" if own_session else group_before)


def test_pending_comments_are_read_through_the_partial_index(database_url: str) -> None:
    """The batch query names the pending status in its SQL, so that even PostgreSQL's generic
    plan for the prepared statement (psycopg prepares what it runs often) uses the partial
    index ix_comments_pending rather than one entry per comment ever scored."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL plan")
    import itertools
    import re

    from service.db import make_engine

    engine = make_engine(database_url)
    statement = str(jobs.pending_batch(500).compile(dialect=engine.dialect))
    # psycopg's %(name)s placeholders become PREPARE's $1, $2, ... (only the LIMIT, here).
    numbers = itertools.count(1)
    sql, placeholders = re.subn(r"%\(\w+\)s", lambda _: f"${next(numbers)}", statement)
    with engine.connect() as connection:
        connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        connection.exec_driver_sql(f"PREPARE pending_batch AS {sql}")
        args = ", ".join(["500"] * placeholders)
        plan = "\n".join(connection.exec_driver_sql(
            f"EXPLAIN EXECUTE pending_batch({args})").scalars())
    engine.dispose()
    assert "ix_comments_pending" in plan, plan


def test_what_the_site_learned_is_checked_through_the_labelled_index(database_url: str) -> None:
    """`label_stamp`, asked before every batch, reads the partial index of labelled comments
    (ix_comments_labelled, migration 0010) rather than scanning every comment ever stored
    (5.6 ms at 40,000 comments on SQLite; 0.34 ms through the index)."""
    from service.db import make_engine
    from service.reputation import LABEL_STAMP

    engine = make_engine(database_url)
    sql = str(LABEL_STAMP.compile(dialect=engine.dialect,
                                  compile_kwargs={"literal_binds": True}))
    with engine.connect() as connection:
        if database_url.startswith("postgresql"):
            connection.exec_driver_sql("SET enable_seqscan = off")  # a small table: force
            plan = "\n".join(connection.exec_driver_sql(f"EXPLAIN {sql}").scalars())
        else:
            plan = "\n".join(str(row[-1]) for row in connection.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {sql}"))
    engine.dispose()
    assert "ix_comments_labelled" in plan, plan
