"""Command-line tools under ``flask --app service ...``."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from service.db import migrate

db_cli = AppGroup("db", help="Database migrations.")


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    migrate.upgrade(current_app.config["DATABASE_URL"], revision)
    click.echo(f"database at {revision}")


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Autogenerate a migration from the tables' difference with the database."""
    migrate.revision(current_app.config["DATABASE_URL"], message)


def init_app(app: Flask) -> None:
    """Register the command groups."""
    app.cli.add_command(db_cli)
