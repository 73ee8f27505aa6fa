"""The learning loop: retrain from labels, the promotion gate, registry, rollback, rescore,
and the evaluate command's output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from models.data import SPAM, Example
from service import learning
from service.db import Comment, CommentEvent, CommentStatus, Label, ModelVersion
from service.db.model_store import ModelStore
from tests.conftest import ROOT
from worker import jobs

pytestmark = pytest.mark.slow


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    """The database's models (the test's own: promoting and rolling back touch no other
    test), with a local cache of this test's own."""
    return ModelStore(tmp_path / "store")


def _label(db, content: str, label: str, n: int) -> None:
    for i in range(n):
        db.add(Comment(post="p", author_name="A", content=f"{content} #{i}",
                       status=CommentStatus.SPAM if label == "spam" else CommentStatus.PUBLISHED,
                       label=Label(label)))
    db.commit()


def test_retrain_learns_site_labels_promotes_and_writes_a_report(db, store) -> None:
    before = store.active_version(db)
    _label(db, "Sunflower seeds wholesale offer, message Karl on signal", "spam", 8)
    _label(db, "Loved the bit about HBM stacks, thanks for the clear write-up", "ham", 8)
    result = learning.retrain(db, store, actor="tester")
    db.commit()
    assert result.promoted and store.active_version(db) == result.version != before
    assert result.report.is_file() and "data:image/png;base64" in result.report.read_text()
    assert "<p>PROMOTED: " in result.report.read_text()
    folder = store.folder(result.version)
    evaluation = json.loads((folder / "metrics.json").read_text())
    assert {"candidate", "active", "gate", "method", "cv"} <= set(evaluation)
    assert evaluation["method"].startswith("16 labelled comments the active model never saw")
    for key in ("precision", "recall", "f1", "mcc", "roc_auc", "pr_auc", "ham_flagged",
                "spam_published", "confusion", "auto_decided"):
        assert key in evaluation["candidate"]
    rows = {r.version: r for r in db.scalars(select(ModelVersion))}
    assert rows[result.version].promoted_by == "tester" and rows[result.version].active
    assert rows[before].state == "retired" and not rows[before].active


def test_the_gate_refuses_a_worse_model_unless_forced(db, store) -> None:
    _label(db, "Sunflower seeds wholesale offer, message Karl on signal", "spam", 8)
    _label(db, "Loved the bit about HBM stacks, thanks for the clear write-up", "ham", 8)
    active = store.active_version(db)
    # Spam weighed at a ten-thousandth of ham: a model that calls nearly everything genuine.
    # (A C=1e-6 model ranked these sixteen comments perfectly at the cut: not worse.)
    worse = {"clf__class_weight": {0: 1.0, 1: 1e-4}}
    refused = learning.retrain(db, store, params=worse)
    db.commit()
    assert not refused.promoted and store.active_version(db) == active
    assert "worse" in refused.gate
    report = refused.report.read_text()
    assert "<p>NOT PROMOTED: " in report and "of 1,000 spam" in report
    assert report.index("of 1,000 genuine") < report.index("NOT PROMOTED")
    row = db.scalar(select(ModelVersion).where(ModelVersion.version == refused.version))
    assert row.state == "refused"
    forced = learning.retrain(db, store, params=worse, force=True)
    assert forced.promoted and store.active_version(db) == forced.version
    assert "--force" in forced.gate


def test_the_gate_refuses_a_model_that_publishes_more_spam() -> None:
    active = {"mcc": 0.90, "ham_flagged": 0.0, "spam_published": 0.02, "n": 300, "n_spam": 100}
    better_mcc_more_spam = {**active, "mcc": 0.95, "spam_published": 0.03}
    passed, why = learning.gate_verdict(better_mcc_more_spam, active)
    assert not passed and why.endswith("spam published 0.03 vs 0.02: worse")
    passed, why = learning.gate_verdict({**better_mcc_more_spam, "spam_published": 0.02}, active)
    assert passed and "worse" not in why
    assert not learning.gate_verdict({**active, "ham_flagged": 0.015}, active)[0]  # 3 of 200
    assert not learning.gate_verdict({**active, "mcc": 0.88}, active)[0]
    assert learning.gate_verdict({**active, "mcc": 0.895}, active)[0]  # within the tolerance


def test_the_gate_lets_one_borderline_genuine_comment_through_but_not_a_pattern() -> None:
    # The held queue's labels: the active model held them all, so it filed none as spam.
    active = {"mcc": 0.40, "ham_flagged": 0.0, "spam_published": 0.0, "n": 100, "n_spam": 35}
    one = {**active, "mcc": 0.87, "ham_flagged": round(1 / 65, 4)}
    passed, why = learning.gate_verdict(one, active)
    assert passed and "ham flagged 0.0154 vs 0.0: ok" in why
    two = {**one, "ham_flagged": round(2 / 65, 4)}
    passed, why = learning.gate_verdict(two, active)
    assert not passed and "ham flagged 0.0308 vs 0.0: worse" in why
    # On a larger set the same share is a pattern, not chance: 10 of 650.
    large = {**one, "n": 1000, "n_spam": 350}
    assert not learning.gate_verdict(large, {**active, "n": 1000, "n_spam": 350})[0]


def test_promoting_a_refused_version_warns_and_needs_force(app, db, store) -> None:
    active = store.active_version(db)
    app.config["MODEL_DIR"] = str(store.local().root)
    runner = app.test_cli_runner()
    # No labels yet: nothing to compare on, so the gate refuses. make's users read FORCE=1.
    hint = next(line for line in (ROOT / "Makefile").read_text().splitlines()
                if "model retrain" in line).split("--force-hint ")[1].strip('"')
    assert hint == "make retrain FORCE=1"
    retrained = runner.invoke(args=["model", "retrain", "--force-hint", hint])
    assert retrained.exit_code == 0, retrained.output
    assert "NOT promoted" in retrained.output and "make retrain FORCE=1" in retrained.output
    assert "use --force" not in retrained.output
    refused = db.scalars(select(ModelVersion).where(ModelVersion.state == "refused")).one()
    plain = runner.invoke(args=["model", "promote", refused.version])
    assert plain.exit_code != 0
    assert f"the retrain gate refused {refused.version}" in plain.output
    assert "add --force" in plain.output and store.active_version(db) == active
    forced = runner.invoke(args=["model", "promote", refused.version, "--force"])
    assert forced.exit_code == 0, forced.output
    assert "warning: the retrain gate refused" in forced.output
    assert store.active_version(db) == refused.version
    from service.db import AdminEvent
    db.expire_all()
    event = db.scalars(select(AdminEvent).where(AdminEvent.action == "model.promote")).one()
    assert event.details == {"version": refused.version, "forced": True}
    # A version the gate passed is promoted without a word.
    back = runner.invoke(args=["model", "promote", active])
    assert back.exit_code == 0 and "warning" not in back.output
    rolled = runner.invoke(args=["model", "rollback"])
    assert rolled.exit_code == 0 and store.active_version(db) == refused.version
    db.expire_all()
    assert [e.action for e in db.scalars(select(AdminEvent).order_by(AdminEvent.id))] == [
        "model.promote", "model.promote", "model.rollback"]


def test_nothing_new_to_compare_on_is_not_promoted(db, store) -> None:
    active = store.active_version(db)
    result = learning.retrain(db, store)
    assert not result.promoted and store.active_version(db) == active
    assert result.gate.startswith("nothing to compare on: too few labelled comments")


def test_a_time_ordered_holdout_compares_both_models_on_the_same_comments(db, store) -> None:
    from datetime import timedelta

    from service.db.types import utcnow

    start = utcnow() - timedelta(days=10)
    for i in range(30):
        db.add(Comment(post="p", author_name="A", label=Label.SPAM, status=CommentStatus.SPAM,
                       decided_at=start + timedelta(hours=i),
                       content=f"Sunflower seed wholesale, message Karl on signal, lot {i}"))
        db.add(Comment(post="p", author_name="B", label=Label.HAM,
                       status=CommentStatus.PUBLISHED, decided_at=start + timedelta(hours=i),
                       content=f"Thanks for part {i} of the chip series, very clear."))
    db.commit()
    result = learning.retrain(db, store)
    assert result.evaluation.startswith("time-ordered hold-out: the newest 15")
    assert result.extra["active"]["n"] == result.metrics["n"] == 15
    assert result.promoted  # the new kind of spam is learnt; the starter model misses it


def test_rollback_returns_to_the_previous_promoted_model(db, store) -> None:
    first = store.active_version(db)
    learning.sync_registry(db, store)
    pipeline, metadata = store.load(db)
    second = store.save(db, pipeline, {k: v for k, v in metadata.items()
                                   if k not in ("version", "sha256", "created_at")})
    learning.activate(db, store, second, "tester")
    db.commit()
    assert learning.rollback(db, store, "tester") == first
    assert store.active_version(db) == first


def test_rescore_moves_undecided_comments_but_never_a_moderators(app, db, post_comment) -> None:
    spammy = "CHEAP VIAGRA online no prescription!!! order now http://pills-shop.xyz/buy"
    held = post_comment(content=spammy, author_name="Pills").get_json()["id"]
    decided = post_comment(content=spammy + " again", author_name="Pills").get_json()["id"]
    for comment_id in (held, decided):
        db.get(Comment, comment_id).status = CommentStatus.HELD
    db.get(Comment, decided).label = Label.HAM  # a moderator's call
    db.commit()
    result = jobs.rescore(jobs.get_scorer(), ("held",))
    assert result == {"rescored": 1, "moved": {"spam": 1}}
    db.expire_all()
    assert db.get(Comment, held).status == CommentStatus.SPAM
    assert db.get(Comment, decided).status == CommentStatus.HELD
    event = db.scalar(select(CommentEvent).where(CommentEvent.comment_id == held))
    assert (event.actor, event.action, event.from_status) == ("model", "rescore", "held")


def test_rescore_of_held_comments_that_stay_held_gives_them_the_new_score_and_version(
        app, db, post_comment, model_dir) -> None:
    comment_id = post_comment(content="Interesting, though I'd like a source.").get_json()["id"]
    row = db.get(Comment, comment_id)
    row.status, row.spam_score, row.model_version = CommentStatus.HELD, 0.5, "old-model"
    row.reasons = ["watched term 'source'"]
    db.commit()
    # A watched term keeps it held whatever the model says: it stays, with the new numbers.
    from service.db import Rule, RuleKind
    db.add(Rule(kind=RuleKind.WATCHED_TERM, value="source"))
    db.commit()
    result = app.test_cli_runner().invoke(args=["model", "rescore", "--status", "held"])
    assert result.exit_code == 0, result.output
    assert "rescored 1 held comments" in result.output
    assert json.loads(result.output.strip().splitlines()[-1]) == {"moved": {}, "rescored": 1}
    db.expire_all()
    row = db.get(Comment, comment_id)
    assert row.status == CommentStatus.HELD
    assert row.model_version == ModelStore().active_version(db)
    assert row.spam_score != 0.5 and row.reasons[0] == "watched term 'source'"
    assert any(reason.startswith("spam score") for reason in row.reasons)


def test_model_cli_lists_and_refuses_unknown_versions(app, db, store) -> None:
    app.config["MODEL_DIR"] = str(store.local().root)
    runner = app.test_cli_runner()
    listing = runner.invoke(args=["model", "list"])
    assert listing.exit_code == 0 and f"* {store.active_version(db)}" in listing.output
    assert runner.invoke(args=["model", "promote", "no-such-version"]).exit_code != 0
    shown = runner.invoke(args=["model", "show", store.active_version(db)])
    assert json.loads(shown.output)["version"] == store.active_version(db)


def test_evaluate_prints_every_field_on_the_last_line(model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "labelled.jsonl"
    rows = [{"content": "Buy cheap pills now http://a.xyz http://b.xyz", "label": "spam"},
            {"content": "I disagree with the part about HBM supply.", "label": "ham"},
            {"content": "WIN a free iPhone, click http://win.top now!!!", "label": "spam"},
            {"content": "Thanks, this explained the export rules well.", "label": "ham"}]
    data.write_text("\n".join(json.dumps(r) for r in rows))
    result = subprocess.run(
        [sys.executable, "-m", "models.evaluate", "--data", str(data), "--model-dir",
         str(model_dir), "--report", str(tmp_path / "report.md")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("n", "accuracy", "precision", "recall", "f1", "mcc", "roc_auc", "ham_flagged",
                "spam_published", "auto_decided"):
        assert key in metrics
    assert metrics["n"] == 4


def test_evaluate_reports_each_kind_and_writes_the_owners_report(model_dir: Path,
                                                                   tmp_path: Path) -> None:
    data = tmp_path / "kinds.jsonl"
    rows = [
        {"content": "Buy cheap pills now http://a.xyz http://b.xyz", "label": "spam",
         "kind": "link_spam"},
        {"content": "See https://arxiv.org/abs/2412.19437 and https://arxiv.org/abs/2501.12948 "
                    "for the training cost.", "label": "ham", "kind": "cites_sources"},
        {"content": "I disagree with the part about HBM supply.", "label": "ham",
         "kind": "disagreement"},
    ]
    data.write_text("\n".join(json.dumps(r) for r in rows))
    report = tmp_path / "report.md"
    result = subprocess.run(
        [sys.executable, "-m", "models.evaluate", "--data", str(data), "--model-dir",
         str(model_dir), "--report", str(report)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    kinds = metrics["kinds"]
    assert set(kinds) == {"link_spam", "cites_sources", "disagreement"}
    assert kinds["link_spam"]["label"] == "spam" and kinds["link_spam"]["published"] == 0
    # Two links hold a comment on a new blog (the default rule), whatever the model says.
    assert kinds["cites_sources"]["held"] == 1
    assert metrics["outcome"]["n_ham"] == 2 and metrics["outcome"]["ham_to_spam"] == 0
    text = report.read_text()
    assert text.splitlines()[2].startswith("Of 1,000 genuine comments, 0 would go to spam")
    assert text.index("## Thresholds") < text.index("## Machine-learning details")
    assert "| cites_sources | ham | 1 | 0 | 1 | 0 | 0 to spam, 1 held |" in text
    band_only = subprocess.run(
        [sys.executable, "-m", "models.evaluate", "--data", str(data), "--model-dir",
         str(model_dir), "--report", str(report), "--rules", "none"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(band_only.stdout.strip().splitlines()[-1])["kinds"]["cites_sources"][
        "held"] == 0


@pytest.mark.parametrize("data", ["", "no/such/file.jsonl"])
def test_evaluate_without_usable_data_says_so_in_one_line(data: str) -> None:
    result = subprocess.run([sys.executable, "-m", "models.evaluate", "--data", data],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "DATA" in result.stderr


def test_site_examples_are_the_labelled_comments(db) -> None:
    _label(db, "spam text", "spam", 2)
    db.add(Comment(post="p", author_name="A", content="unlabelled", status="published"))
    db.commit()
    examples = learning.site_examples(db)
    assert [e.label for e in examples] == [SPAM, SPAM]
    assert all(isinstance(e, Example) and e.group == "site" for e in examples)
