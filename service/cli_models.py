"""``flask --app service model ...``: retrain, import, list, show, promote, rollback, rescore.

Models live in the database (`service/db/model_store.py`), so each of these works from any
machine that reaches it. They run in their own process; scikit-learn is imported only by the
commands that score."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from models.artifacts import ArtifactError, ArtifactStore
from service import learning, webhooks
from service.database import standalone_session
from service.db import AdminEvent, ModelVersion
from service.db.model_store import ModelStore

model_cli = AppGroup("model", help="Spam models: retrain, registry, promotion, rescoring.")


def _store() -> ModelStore:
    return ModelStore(current_app.config["MODEL_DIR"] or None)


@model_cli.command("retrain")
@click.option("--data", multiple=True, help="extra labelled files or folders")
@click.option("--force", is_flag=True, help="promote even if the gate refuses")
@click.option("--actor", default="make retrain", help="recorded as who promoted it")
@click.option("--force-hint", default="--force", hidden=True,
              help="how the caller spells --force (make: FORCE=1)")
def retrain(data: tuple[str, ...], force: bool, actor: str, force_hint: str) -> None:
    """Train on starter corpus + site labels (+ --data), evaluate, promote through the gate."""
    paths = [p for chunk in data for p in chunk.split()]
    with standalone_session() as session:
        result = learning.retrain(session, _store(), data=paths, actor=actor, force=force)
        session.commit()
    m = result.metrics
    click.echo(f"evaluation: {result.evaluation}")
    click.echo(f"candidate {result.version}: MCC {m['mcc']} F1 {m['f1']} ROC AUC {m['roc_auc']}"
               f" ham flagged {m['ham_flagged']} spam published {m['spam_published']}"
               f" auto-decided {m['auto_decided']}")
    active = result.extra.get("active")
    if active:
        click.echo(f"active model on the same data: MCC {active['mcc']} F1 {active['f1']} "
                   f"ham flagged {active['ham_flagged']} auto-decided {active['auto_decided']}")
    click.echo(f"gate: {result.gate}")
    click.echo("PROMOTED: workers switch on their next job" if result.promoted
               else f"NOT promoted (to promote it anyway: flask --app service model promote "
                    f"{result.version} --force; to retrain and promote: {force_hint})")
    click.echo(f"report: {result.report}")


@model_cli.command("import")
@click.argument("folder", required=False)
@click.option("--activate", is_flag=True,
              help="activate the folder's ACTIVE version even if the database has one")
@click.option("--actor", default="import")
def import_models(folder: str | None, activate: bool, actor: str) -> None:
    """Copy a folder store's versions (default: MODEL_DIR; `python -m models.train` writes
    one) into the database; its ACTIVE one becomes active if none is (or with --activate)."""
    source = ArtifactStore(folder or current_app.config["MODEL_DIR"])
    store = _store()
    with standalone_session() as session:
        try:
            copied, activated = store.import_folder(session, source, activate=activate,
                                                    actor=actor)
            learning.sync_registry(session, store)
        except ArtifactError as error:
            raise click.ClickException(str(error)) from None
        session.commit()
        active = store.active_version(session)
    click.echo(f"imported {len(copied)} version(s) from {source.root}"
               + (f"; {activated} is active" if activated else f"; active: {active or 'none'}"))


@model_cli.command("ensure")
def ensure() -> None:
    """An active model in the database: nothing to do if it has one; otherwise import
    MODEL_DIR's versions (a store from before models lived in the database), training the
    starter model there first if it holds none (`make run`, a deploy's migrate step)."""
    store = _store()
    with standalone_session() as session:
        active = store.active_version(session)
    if active is not None:
        click.echo(f"active model {active} in the database; nothing to do")
        return
    folder = store.local()
    if folder.active_version() is None:
        from models import train  # scikit-learn, in this command's process only

        train.main(["--model-dir", str(folder.root)])
    with standalone_session() as session:
        try:
            _copied, activated = store.import_folder(session, folder, actor="model ensure")
            learning.sync_registry(session, store)
        except ArtifactError as error:
            raise click.ClickException(str(error)) from None
        session.commit()
    click.echo(f"model {activated} from {folder.root} is active")


@model_cli.command("list")
def list_models() -> None:
    """Every version: state, active mark, headline CV metrics, who promoted it."""
    with standalone_session() as session:
        learning.sync_registry(session, _store())
        session.commit()
        for row in session.scalars(select(ModelVersion).order_by(ModelVersion.created_at)):
            cv = row.metrics.get("cv", {})
            click.echo(f"{'*' if row.active else ' '} {row.version}\t{row.state}\t"
                       f"n={row.n_examples}\tcv_mcc={cv.get('mcc')}\t"
                       f"promoted_by={row.promoted_by or '-'}")


@model_cli.command("show")
@click.argument("version")
def show(version: str) -> None:
    """A version's metadata and evaluation as JSON."""
    with standalone_session() as session:
        try:
            metadata = _store().metadata(session, version)
        except ArtifactError as error:
            raise click.ClickException(str(error)) from None
    click.echo(json.dumps(metadata, indent=2, sort_keys=True))


@model_cli.command("promote")
@click.argument("version")
@click.option("--actor", default="cli")
@click.option("--force", is_flag=True, help="promote a version the retrain gate refused")
def promote(version: str, actor: str, force: bool) -> None:
    """Make VERSION active (hash-checked); workers switch without a restart. A version the
    retrain gate refused needs --force."""
    store = _store()
    with standalone_session() as session:
        try:
            learning.sync_registry(session, store)
            refusal = learning.gate_refusal(session, store, version)
            if refusal:
                click.echo(f"warning: the retrain gate refused {version}: {refusal}", err=True)
                if not force:
                    raise click.ClickException("not promoted; add --force to promote it anyway")
            learning.activate(session, store, version, actor)
        except ArtifactError as error:
            raise click.ClickException(str(error)) from None
        session.add(AdminEvent(actor=actor, action="model.promote",
                               details={"version": version, "forced": bool(refusal)}))
        session.commit()
    click.echo(f"{version} is active")


@model_cli.command("rollback")
@click.option("--actor", default="cli")
def rollback(actor: str) -> None:
    """Re-activate the previously promoted version."""
    with standalone_session() as session:
        previous = _store().active_version(session)
        try:
            version = learning.rollback(session, _store(), actor)
        except ArtifactError as error:
            raise click.ClickException(str(error)) from None
        session.add(AdminEvent(actor=actor, action="model.rollback",
                               details={"version": version, "previous": previous}))
        session.commit()
    click.echo(f"rolled back to {version}")


@model_cli.command("rescore")
@click.option("--status", "statuses", multiple=True, type=click.Choice(["pending", "held"]),
              help="which comments (default: pending and held)")
def rescore(statuses: tuple[str, ...]) -> None:
    """Re-score undecided and held comments with the active model; moderators' decisions are
    never touched; every move is audited as made by the model."""
    from worker import jobs  # scoring lives in the worker; this is a separate process

    scorer = jobs.configure(dict(current_app.config))
    hooks = webhooks.queue_for(current_app.extensions["redis"], dict(current_app.config))
    chosen = statuses or ("pending", "held")
    result = jobs.rescore(scorer, chosen, on_moved=lambda session, comments:
                          webhooks.comments_decided(session, hooks, comments))
    scorer.close()
    moves = ", ".join(f"{n} to {status}" for status, n in sorted(result["moved"].items()))
    click.echo(f"rescored {result['rescored']} {' and '.join(chosen)} comments with model "
               f"{scorer.models.version or '(none)'}; moved: {moves or 'none'}")
    click.echo(json.dumps(result, sort_keys=True))
