"""``flask --app service import FORMAT FILE``: a blog's history from the system it used."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from service.database import standalone_session
from service.db import AdminEvent, Site
from service.errors import ImportFileError
from service.importers import READERS
from service.importers.store import BATCH_SIZE, ImportCounts, store

# A progress line on stderr every this many comments read.
PROGRESS_EVERY = 1000


def _site_id(reference: str) -> int:
    """The id of the site named by its id or its blog URL."""
    with standalone_session() as session:
        if reference.isdigit():
            site = session.get(Site, int(reference))
        else:
            site = session.scalar(select(Site).where(Site.url == reference.strip())
                                  .order_by(Site.id).limit(1))
    if site is None:
        raise click.ClickException(
            f"no site {reference!r} (see `flask --app service sites list`)")
    return site.id


def _summary(counts: ImportCounts) -> str:
    statuses = ", ".join(f"{status} {n}" for status, n in sorted(counts.statuses.items()))
    labels = ", ".join(f"{label} {n}" for label, n in sorted(counts.labels.items()))
    skipped = ", ".join(f"{reason} {n}" for reason, n in counts.skipped.most_common())
    return (f"imported {counts.imported} of {counts.read} comments"
            f"{f' ({statuses})' if statuses else ''}; labels: {labels or 'none'}; "
            f"{counts.already} already imported; "
            f"{counts.checked} seen before through the Akismet API (linked, "
            f"{counts.relabelled} labelled by the blog's decision); "
            f"skipped {sum(counts.skipped.values())}{f' ({skipped})' if skipped else ''}; "
            f"replies linked {counts.linked}, without their parent {counts.orphans}")


@click.command("import")
@with_appcontext
@click.argument("format_name", metavar="FORMAT", type=click.Choice(sorted(READERS)))
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--site", "site", default=None,
              help="the site (id or blog URL, see `sites list`) these comments belong to")
@click.option("--progress-every", default=PROGRESS_EVERY, show_default=True,
              type=click.IntRange(min=1), help="a progress line on stderr every N comments")
def import_comments(format_name: str, file: Path, site: str | None,
                    progress_every: int) -> None:
    """Import the comments of FILE (wxr: a WordPress export; disqus: a Disqus XML export;
    isso: an Isso database; remark42: a Remark42 backup) with their status, dates, thread
    and training labels. Importing the same file again stores nothing twice."""
    if not file.is_file():
        raise click.ClickException(f"{file}: {'not a file' if file.exists() else 'no such file'}")
    site_id = _site_id(site) if site is not None else None
    sessions = cast(sessionmaker, current_app.extensions["db_sessions"])
    shown = 0

    def progress(counts: ImportCounts) -> None:
        nonlocal shown
        if counts.read // progress_every > shown:
            shown = counts.read // progress_every
            click.echo(f"{format_name}: {counts.read} read, {counts.imported} imported, "
                       f"{counts.already} already imported", err=True)

    done = ImportCounts()
    try:
        store(sessions, format_name, READERS[format_name](file), site_id=site_id,
              batch_size=min(progress_every, BATCH_SIZE), progress=progress, counts=done)
    except ImportFileError as error:
        kept = (f" ({done.imported} comments before it were imported: importing the fixed "
                "file skips them)") if done.read else ""
        raise click.ClickException(f"{error}{kept}") from None
    with standalone_session() as session:
        session.add(AdminEvent(actor="cli", action="comments.import", details={
            "format": format_name, "file": file.name, "site_id": site_id,
            "read": done.read, "imported": done.imported, "already": done.already,
            "checked": done.checked, "relabelled": done.relabelled,
            "skipped": sum(done.skipped.values())}))
        session.commit()
    click.echo(_summary(done))
