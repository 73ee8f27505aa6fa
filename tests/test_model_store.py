"""Models in the database: two machines with their own MODEL_DIR and no shared disk; one
stores and promotes a model, the other's worker switches to it; importing a folder store."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, event

from models.artifacts import ArtifactError, ArtifactStore
from service.db import ActiveModel, Comment, ModelArtifact, ModelVersion
from service.db.model_store import ModelStore
from worker import jobs

HAM = "The part about HBM supply was the clearest explanation I have read this year."


def _new_version(db, store: ModelStore) -> str:
    """A new version stored from host ``store`` (the session's pipeline, other thresholds)."""
    pipeline, metadata = store.load(db)
    metadata = {k: v for k, v in metadata.items() if k not in ("version", "sha256", "created_at")}
    metadata["thresholds"] = {"low": 0.2, "high": 0.95}
    version = store.save(db, pipeline, metadata)
    db.commit()
    return version


def test_a_model_promoted_on_one_host_is_loaded_by_the_other_hosts_worker(
        app, db, post_comment, run_worker, tmp_path: Path) -> None:
    host_a, host_b = tmp_path / "a" / "models", tmp_path / "b" / "models"
    jobs.configure({**app.config, "MODEL_DIR": str(host_b)})  # host B's worker
    first = post_comment(content=HAM).get_json()["id"]
    run_worker()
    before = db.get(Comment, first).model_version

    version = _new_version(db, ModelStore(host_a))
    app.config["MODEL_DIR"] = str(host_a)  # host A's command line
    promoted = app.test_cli_runner().invoke(args=["model", "promote", version])
    assert promoted.exit_code == 0, promoted.output

    second = post_comment(content=HAM + " Twice.").get_json()["id"]
    run_worker()
    db.expire_all()
    assert db.get(Comment, second).model_version == version != before
    assert jobs.get_scorer().models.thresholds.low == 0.2
    # Host B keeps its own copy, checked by hash; host A's folder was never read by B.
    assert ArtifactStore(host_b).metadata(version)["sha256"] == \
        db.get(ModelArtifact, version).sha256
    registry = db.query(ModelVersion).filter_by(version=version).one()
    assert registry.active and registry.promoted_by == "cli"

    app.config["MODEL_DIR"] = str(host_b)  # rolled back from host B
    assert app.test_cli_runner().invoke(args=["model", "rollback"]).exit_code == 0
    third = post_comment(content=HAM + " Thrice.").get_json()["id"]
    run_worker()
    db.expire_all()
    assert db.get(Comment, third).model_version == before


def test_a_loaded_model_costs_one_small_read_per_batch_not_its_bytes(
        app, db, post_comment, tmp_path: Path) -> None:
    scorer = jobs.configure({**app.config, "MODEL_DIR": str(tmp_path / "cache")})
    scorer.models.refresh()
    assert scorer.models.pipeline is not None
    statements: list[str] = []
    engine = scorer.sessions.kw["bind"]
    listener = lambda *args: statements.append(args[2])  # noqa: E731 (conn, cursor, statement)
    event.listen(engine, "before_cursor_execute", listener)
    try:
        for n in range(3):
            comment_id = post_comment(content=f"{HAM} ({n})").get_json()["id"]
            assert jobs.score_comment(comment_id) == "published"
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    model_reads = [s for s in statements if "model_" in s]
    assert len(model_reads) == 3 and all("model_artifacts" not in s for s in model_reads)


def test_stored_bytes_must_match_their_hash(db, tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    metadata = store.metadata(db, store.active_version(db))
    with pytest.raises(ArtifactError, match="SHA-256 mismatch"):
        store.add(db, b"not the model", {**metadata, "version": "forged"})
    artifact = db.get(ModelArtifact, store.active_version(db))
    artifact.data = b"\x00" + artifact.data[1:]
    db.commit()
    with pytest.raises(ArtifactError, match="SHA-256 mismatch"):
        store.load(db)
    with pytest.raises(ArtifactError, match="SHA-256 mismatch"):
        store.activate(db, artifact.version)


def test_import_copies_a_folder_store_and_activates_its_active_version(
        app, db, model_dir: Path) -> None:
    folder = ArtifactStore(model_dir)
    db.execute(delete(ActiveModel))
    db.execute(delete(ModelArtifact))
    db.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["model", "import", str(model_dir)])
    assert result.exit_code == 0, result.output
    assert f"imported 1 version(s) from {model_dir}; {folder.active_version()} is active" \
        in result.output
    assert ModelStore().active_version(db) == folder.active_version()
    again = runner.invoke(args=["model", "import", str(model_dir)])
    assert "imported 0 version(s)" in again.output
    assert db.query(ModelVersion).filter_by(version=folder.active_version()).one().active
