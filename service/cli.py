"""Command-line tools under ``flask --app service ...``."""

from __future__ import annotations

from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.cli_sites import sites_cli
from service.database import standalone_session
from service.db import AdminEvent, Moderator, Role
from service.db.moderators import hash_token, new_token

db_cli = AppGroup("db", help="Database migrations.")
moderators_cli = AppGroup("moderators", help="Moderator accounts.")


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    from service.db import migrate  # Alembic stays out of the web process

    migrate.upgrade(current_app.config["DATABASE_URL"], revision)
    click.echo(f"database at {revision}")


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Autogenerate a migration from the tables' difference with the database."""
    from service.db import migrate

    migrate.revision(current_app.config["DATABASE_URL"], message)



def _find(session: Session, name: str) -> Moderator:
    moderator = session.scalar(select(Moderator).where(Moderator.name == name))
    if moderator is None:
        raise click.ClickException(f"no moderator named {name!r}")
    return moderator


def _set_password(moderator: Moderator, password: str) -> None:
    try:
        moderator.set_password(password)
    except ValueError as error:
        raise click.ClickException(str(error)) from None


def _audit(session: Session, action: str, name: str) -> None:
    session.add(AdminEvent(actor="cli", action=action, details={"name": name}))


@moderators_cli.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.MODERATOR.value)
@click.option("--password", default=None, envvar="MODERATOR_PASSWORD", show_envvar=True,
              help="password for the web login (without one: API token only); prefer the "
                   "environment variable, which no process list or shell history shows")
def moderators_add(name: str, role: str, password: str | None) -> None:
    """Create an account; prints its API token once, alone on the last line."""
    name = name.strip()
    if not name or len(name) > 100:
        raise click.ClickException("the name must be 1 to 100 characters")
    with standalone_session() as session:
        if session.scalar(select(Moderator).where(Moderator.name == name)) is not None:
            raise click.ClickException(f"a moderator named {name!r} exists already")
        token = new_token()
        moderator = Moderator(name=name, role=Role(role), token_hash=hash_token(token))
        if password:
            _set_password(moderator, password)
        session.add(moderator)
        _audit(session, "moderator.add", name)
        session.commit()
    click.echo(f"created {role} {name!r}; API token (shown only now):")
    click.echo(token)


@moderators_cli.command("list")
def moderators_list() -> None:
    """Every account: name, role, active, web login."""
    with standalone_session() as session:
        for m in session.scalars(select(Moderator).order_by(Moderator.name)):
            click.echo(f"{m.name}\t{m.role.value}\t{'active' if m.active else 'disabled'}\t"
                       f"{'password' if m.password_hash else 'token only'}")


@moderators_cli.command("disable")
@click.argument("name")
def moderators_disable(name: str) -> None:
    """Disable an account: its token and login stop working at once, and its sessions stay
    revoked even if it is enabled again."""
    with standalone_session() as session:
        moderator = _find(session, name)
        moderator.active = False
        moderator.revoke_sessions()
        _audit(session, "moderator.disable", name)
        session.commit()
    click.echo(f"disabled {name!r}")


@moderators_cli.command("rotate-token")
@click.argument("name")
def moderators_rotate(name: str) -> None:
    """Replace an account's API token; prints the new one alone on the last line."""
    with standalone_session() as session:
        token = _find(session, name).rotate_token()
        _audit(session, "moderator.rotate-token", name)
        session.commit()
    click.echo(f"new API token for {name!r} (the old one no longer works):")
    click.echo(token)


@moderators_cli.command("set-password")
@click.argument("name")
@click.password_option()
def moderators_set_password(name: str, password: str) -> None:
    """Set an account's web login password (it logs the account out everywhere)."""
    with standalone_session() as session:
        _set_password(_find(session, name), password)
        _audit(session, "moderator.set-password", name)
        session.commit()
    click.echo(f"password set for {name!r}")


commenter_cli = AppGroup("commenter", help="Readers' data requests (export, erase).")


def _request_options(command: Any) -> Any:
    """The handles of a data request: an e-mail, comment ids, or comment secrets."""
    command = click.option("--secret", "secrets", multiple=True, help=(
        "the secret a comment's 202 answer gave its author (repeatable)"))(command)
    command = click.option("--id", "ids", type=int, multiple=True, help=(
        "a comment id, once you know the comment is the requester's (repeatable)"))(command)
    return click.argument("email", required=False)(command)


def _handles(email: str | None, ids: tuple[int, ...], secrets: tuple[str, ...]) -> None:
    if not (email or ids or secrets):
        raise click.UsageError("name the commenter: EMAIL, --id or --secret")


@commenter_cli.command("export")
@_request_options
def commenter_export(email: str | None, ids: tuple[int, ...], secrets: tuple[str, ...]
                     ) -> None:
    """Print, as JSON, everything stored about a commenter (EMAIL, --id or --secret)."""
    import json

    from service import privacy

    _handles(email, ids, secrets)
    with standalone_session() as session:
        data = privacy.export(session, email, ids=ids, secrets=secrets)
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@commenter_cli.command("erase")
@_request_options
@click.confirmation_option(prompt="Delete these comments for good?")
def commenter_erase(email: str | None, ids: tuple[int, ...], secrets: tuple[str, ...]) -> None:
    """Delete a commenter's comments (EMAIL, --id or --secret) and their history, and blank
    them in stored webhook deliveries (audited without the address)."""
    from service import privacy

    _handles(email, ids, secrets)
    with standalone_session() as session:
        count = privacy.erase(session, email, ids=ids, secrets=secrets)
    click.echo(f"erased {count} comments")


@commenter_cli.command("anonymise-ips")
@click.option("--days", type=int, default=None, help="retention (default: IP_RETENTION_DAYS)")
def commenter_anonymise(days: int | None) -> None:
    """Anonymise the IPs of comments older than the retention period (workers do it hourly)."""
    from service import privacy

    with standalone_session() as session:
        count = privacy.anonymise_old_ips(session, days or current_app.config["IP_RETENTION_DAYS"])
    click.echo(f"anonymised {count} addresses")


def init_app(app: Flask) -> None:
    """Register the command groups."""
    app.cli.add_command(db_cli)
    app.cli.add_command(moderators_cli)
    app.cli.add_command(commenter_cli)
    from service.cli_models import model_cli

    app.cli.add_command(model_cli)
    app.cli.add_command(sites_cli)
    from service.cli_import import import_comments

    app.cli.add_command(import_comments)
