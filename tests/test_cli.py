"""`flask --app service moderators ...`: accounts and tokens from the command line."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import select

from service.db import AdminEvent, Moderator
from tests.conftest import ROOT


def test_add_prints_the_token_alone_on_the_last_line_and_stores_only_hashes(app, client, db):
    result = app.test_cli_runner().invoke(
        args=["moderators", "add", "ann", "--role", "admin", "--password", "s3cret-pass-phrase"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("mod_") and " " not in token
    moderator = db.scalar(select(Moderator).where(Moderator.name == "ann"))
    assert moderator.role == "admin" and moderator.check_password("s3cret-pass-phrase")
    assert token not in (moderator.token_hash, moderator.password_hash)
    assert "s3cret-pass-phrase" not in (moderator.password_hash or "")
    response = client.get("/api/v1/moderation/rules", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


def test_duplicate_names_are_refused(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["moderators", "add", "bob"]).exit_code == 0
    again = runner.invoke(args=["moderators", "add", "bob"])
    assert again.exit_code != 0 and "exists already" in again.output


def test_rotate_and_disable_take_effect_at_once(app, client, db):
    runner = app.test_cli_runner()
    old = runner.invoke(args=["moderators", "add", "cy"]).output.strip().splitlines()[-1]
    new = runner.invoke(args=["moderators", "rotate-token", "cy"]).output.strip().splitlines()[-1]
    assert old != new

    def status(token: str) -> int:
        return client.get("/api/v1/moderation/queue",
                          headers={"Authorization": f"Bearer {token}"}).status_code

    assert (status(old), status(new)) == (401, 200)
    listing = runner.invoke(args=["moderators", "list"]).output
    assert "cy\tmoderator\tactive\ttoken only" in listing
    assert runner.invoke(args=["moderators", "disable", "cy"]).exit_code == 0
    assert status(new) == 401
    assert [e.action for e in db.scalars(select(AdminEvent).order_by(AdminEvent.id))] == [
        "moderator.add", "moderator.rotate-token", "moderator.disable"]
    assert runner.invoke(args=["moderators", "disable", "nobody"]).exit_code != 0


def test_the_real_flask_command_works(app, database_url):
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": app.config["REDIS_URL"]}
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "service", "moderators", "add", "dee"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )
    assert result.stdout.strip().splitlines()[-1].startswith("mod_")
