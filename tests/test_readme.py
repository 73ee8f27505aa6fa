"""The README's examples ("Try it" and "Moderators") run as written against a real server:
each command is read from README.md and run by bash (curl, make), in order, with a real
worker deciding in between; only the address and the placeholders a reader fills in
($SECRET from the 202, PASSWORD=...) are supplied."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq import Queue, SimpleWorker
from werkzeug.serving import make_server

from service import create_app
from service.db.migrate import upgrade
from tests.conftest import PRODUCTION, QUEUE, ROOT, _empty_tables
from worker import jobs

pytestmark = pytest.mark.slow

README_BASE = "http://127.0.0.1:8000"
PASSWORD = "a long pass phrase for the readme"


def readme_commands(section: str) -> list[str]:
    """The commands of a README section's indented code blocks, continuation lines joined,
    comment-only lines dropped (bash drops the trailing comments itself)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line[4:] for line in body.splitlines() if line.startswith("    ")]
    commands: list[str] = []
    pending = ""
    for line in lines:
        pending += line
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        if pending.strip() and not pending.strip().startswith("#"):
            commands.append(pending.strip())
        pending = ""
    return commands


@pytest.fixture
def fresh_app(tmp_path: Path, redis_url: str, model_dir: Path) -> Iterator[Flask]:
    """Production settings on a database of its own, new (so the first comment is 1, as in
    the README)."""
    url = f"sqlite:///{tmp_path / 'readme.db'}"
    upgrade(url)
    _empty_tables(url, model_dir)  # nothing in it but the session's model, as `make train` leaves
    Redis.from_url(redis_url).flushdb()
    app = create_app({**PRODUCTION, "DATABASE_URL": url, "REDIS_URL": redis_url,
                      "MODEL_DIR": str(model_dir), "QUEUE_NAME": QUEUE})
    scorer = jobs.configure(dict(app.config))
    yield app
    scorer.close()
    app.extensions["db_engine"].dispose()


@pytest.fixture
def server(fresh_app: Flask) -> Iterator[str]:
    """The app over real HTTP on a free port."""
    httpd = make_server("127.0.0.1", 0, fresh_app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(timeout=10)
    httpd.server_close()


def _run(command: str, base: str, env: dict[str, str]) -> str:
    command = command.replace(README_BASE, base).replace("PASSWORD=...", f"PASSWORD='{PASSWORD}'")
    assigned = re.fullmatch(r"(\w+)=\$\((.*)\)(\s+#.*)?", command)
    result = subprocess.run(["bash", "-c", assigned.group(2) if assigned else command],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (command, result.stdout, result.stderr)
    if assigned:
        env[assigned.group(1)] = result.stdout.strip()
    return result.stdout


def _json(output: str) -> Any:
    return json.loads(output.strip().splitlines()[-1])


def test_the_readmes_examples_run_as_written(server: str, fresh_app: Flask) -> None:
    env = {**os.environ, **{key: str(fresh_app.config[key]) for key in (
        "APP_ENV", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "MODEL_DIR")}}
    env.pop("MODERATOR_PASSWORD", None)
    try_it = readme_commands("Try it")
    assert len(try_it) == 4 and all(c.startswith("curl") for c in try_it), try_it

    submitted = _run(try_it[0], server, env)
    assert submitted.startswith("HTTP/1.1 202"), submitted
    assert re.search(r"^Location: /api/v1/comments/1\r?$", submitted, re.MULTILINE)
    accepted = _json(submitted)
    assert (accepted["id"], accepted["status"]) == (1, "pending")
    env["SECRET"] = accepted["secret"]
    assert _json(_run(try_it[1], server, env))["status"] == 404  # "404 until it is published"
    assert _json(_run(try_it[2], server, env))["status"] == "pending"  # its author sees it

    connection = fresh_app.extensions["redis"]
    worker = SimpleWorker([Queue(QUEUE, connection=connection)], connection=connection)
    worker.work(burst=True, with_scheduler=False)
    listing = _json(_run(try_it[3], server, env))
    assert [c["id"] for c in listing["comments"]] == [1]  # the starter model published it

    moderators = readme_commands("Moderators")
    assert moderators[0].startswith("TOKEN=$(make -s moderator"), moderators
    _run(moderators[0], server, env)
    assert re.fullmatch(r"\S{20,}", env["TOKEN"]), env["TOKEN"]
    queue = _json(_run(moderators[1], server, env))
    assert queue["comments"] == [] and "counts" in queue
    decided = _json(_run(moderators[2], server, env))
    assert (decided["id"], decided["status"]) == (1, "rejected"), decided
    listing = _json(_run(try_it[3], server, env))
    assert listing["comments"] == []  # taken down
