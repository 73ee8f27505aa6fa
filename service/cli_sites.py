"""``flask --app service sites ...``: the blogs allowed to use the Akismet-compatible API."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.database import standalone_session
from service.db import AdminEvent, Site
from service.sites import create_site, revoke_site

sites_cli = AppGroup("sites", help="Sites using the Akismet-compatible API, and their keys.")



def _audit(session: Session, action: str, site: Site) -> None:
    session.add(AdminEvent(actor="cli", action=action,
                           details={"site_id": site.id, "url": site.url}))


@sites_cli.command("add")
@click.argument("blog_url")
def sites_add(blog_url: str) -> None:
    """Register BLOG_URL; prints its API key once, alone on the last line."""
    with standalone_session() as session:
        try:
            site, key = create_site(session, blog_url)
        except ValueError as error:
            raise click.ClickException(str(error)) from None
        _audit(session, "site.add", site)
        session.commit()
    click.echo(f"created site {site.id} for {site.url}; API key (shown only now):")
    click.echo(key)


@sites_cli.command("list")
def sites_list() -> None:
    """Every site: id, URL, active or revoked, created."""
    with standalone_session() as session:
        for site in session.scalars(select(Site).order_by(Site.id)):
            click.echo(f"{site.id}\t{site.url}\t{'active' if site.active else 'revoked'}\t"
                       f"{site.created_at:%Y-%m-%d %H:%M}")


@sites_cli.command("revoke")
@click.argument("site_id", type=int)
def sites_revoke(site_id: int) -> None:
    """Revoke site SITE_ID's key: its requests are answered ``invalid`` at once."""
    with standalone_session() as session:
        site = revoke_site(session, site_id)
        if site is None:
            raise click.ClickException(f"no site {site_id}")
        _audit(session, "site.revoke", site)
        session.commit()
    click.echo(f"revoked site {site_id} ({site.url})")
