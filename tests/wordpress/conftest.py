"""A real WordPress (Debian's `wordpress` package with its bundled Akismet plugin) served by
`php -S`, on its own MariaDB database, talking to a real service (gunicorn and a scoring
worker) through the connector of integrations/wordpress/. One install per test session.

Ports (this suite's range): the service 8301, WordPress 8310, a MariaDB of our own 8398 (only
when none answers on 127.0.0.1:3306)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.db import Base, make_engine
from tests.conftest import ROOT

WORDPRESS = Path("/usr/share/wordpress")
AKISMET = WORDPRESS / "wp-content" / "plugins" / "akismet"
CONNECTOR = ROOT / "integrations" / "wordpress" / "comment-service-akismet.php"
SERVICE_PORT, WORDPRESS_PORT, MARIADB_PORT = 8301, 8310, 8398
ADMIN, ADMIN_PASSWORD = "admin", "correct-horse-battery-staple"
QUEUE = "wordpress-scoring"


def _have_packages() -> bool:
    return AKISMET.is_dir() and (WORDPRESS / "wp-content/themes/twentytwentythree").is_dir() \
        and shutil.which("php") is not None and shutil.which("mysql") is not None \
        and "mysqli" in subprocess.run(["php", "-m"], capture_output=True, text=True).stdout


@pytest.fixture(scope="session")
def wordpress_packages() -> None:
    """Debian's wordpress, its theme, php-cli and php-mysql: `make wordpress` installs them."""
    if not _have_packages():
        result = subprocess.run(["make", "-s", "wordpress"], cwd=ROOT, capture_output=True,
                                text=True)
        if result.returncode != 0 or not _have_packages():
            pytest.skip("Debian's wordpress, php-cli and php-mysql could not be installed: "
                        + (result.stderr or result.stdout)[-500:])


def _mysql(args: list[str], sql: str, database: str | None = None) -> str:
    command = ["mysql", *args, "-uroot", "--batch", "--skip-column-names"]
    if database:
        command.append(database)
    return subprocess.run(command, input=sql, capture_output=True, text=True, check=True,
                          timeout=60).stdout


def _answers(args: list[str]) -> bool:
    try:
        _mysql(args, "SELECT 1")
        return True
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def mariadb(wordpress_packages: None, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[list[str]]:
    """mysql client arguments of a MariaDB: the local one on 127.0.0.1:3306 when it answers
    as root, else Debian's mariadb-server started in a temporary folder."""
    local = ["-h127.0.0.1", "-P3306"]
    # WORDPRESS_OWN_MARIADB=1: start our own even when a local one answers (a fresh machine).
    if not os.environ.get("WORDPRESS_OWN_MARIADB") and _answers(local):
        yield local
        return
    if shutil.which("mariadbd") is None and shutil.which("mariadb-install-db") is None:
        result = subprocess.run(["make", "-s", "mariadb"], cwd=ROOT, capture_output=True,
                                text=True)
        if result.returncode != 0:
            pytest.skip("no MariaDB answers and mariadb-server could not be installed: "
                        + (result.stderr or result.stdout)[-500:])
    folder = tmp_path_factory.mktemp("mariadb")
    # --no-defaults first: the system's my.cnf would impose its user and log files.
    subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={folder / 'data'}",
                    "--user=root",
                    "--auth-root-authentication-method=normal", "--skip-test-db"],
                   check=True, capture_output=True, timeout=120)
    server = subprocess.Popen(
        ["mariadbd", "--no-defaults", f"--datadir={folder / 'data'}", "--user=root",
         "--bind-address=127.0.0.1", f"--port={MARIADB_PORT}",
         f"--socket={folder / 'mysqld.sock'}", f"--pid-file={folder / 'mysqld.pid'}",
         "--skip-name-resolve"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    own = ["-h127.0.0.1", f"-P{MARIADB_PORT}"]
    try:
        deadline = time.monotonic() + 60
        while not _answers(own):
            assert server.poll() is None, "mariadbd exited"
            assert time.monotonic() < deadline, "mariadbd did not start"
            time.sleep(0.2)
        yield own
    finally:
        server.terminate()
        server.wait(timeout=30)


@dataclass
class Service:
    """The comment service as WordPress sees it, and what a test needs to look inside."""

    url: str
    database_url: str
    env: dict[str, str]
    web: subprocess.Popen[bytes] | None = None

    def start_web(self) -> None:
        """gunicorn (2 workers), as `make web` runs it."""
        self.web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "service.wsgi:app", "--bind",
             f"127.0.0.1:{SERVICE_PORT}", "--workers", "2", "--log-level", "warning"],
            env=self.env, cwd=ROOT)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.1)

    def stop_web(self) -> None:
        """Stop gunicorn (an outage as WordPress sees it); the worker keeps running."""
        assert self.web is not None
        self.web.send_signal(signal.SIGTERM)
        self.web.wait(timeout=30)
        self.web = None

    def cli(self, *args: str) -> str:
        """`flask --app service ...` on the service's database."""
        return subprocess.run([sys.executable, "-m", "flask", "--app", "service", *args],
                              env=self.env, cwd=ROOT, capture_output=True, text=True,
                              check=True, timeout=120).stdout


@pytest.fixture(scope="session")
def comment_service(tmp_path_factory: pytest.TempPathFactory, redis_url: str,
                    model_dir: Path) -> Iterator[Service]:
    """gunicorn and one scoring worker on a SQLite file of their own."""
    folder = tmp_path_factory.mktemp("service")
    database_url = f"sqlite:///{folder / 'comments.db'}"
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "MODEL_DIR": str(model_dir), "QUEUE_NAME": QUEUE, "LOG_LEVEL": "WARNING",
           "FLASK_APP": "service",
           # A shared CI machine can be slow; the outcome, not the 3 s default, is tested.
           "AKISMET_CHECK_TIMEOUT": "10"}
    service = Service(f"http://127.0.0.1:{SERVICE_PORT}", database_url, env)
    service.cli("db", "upgrade")
    service.cli("model", "ensure")  # a deploy's migrate step: the session's model, made active
    engine = make_engine(database_url)
    Base.metadata.create_all(engine)  # no-op after the migrations; keeps the check honest
    engine.dispose()
    worker = subprocess.Popen([sys.executable, "-m", "worker"], env=env, cwd=ROOT)
    try:
        service.start_web()
        _warm_up(service)
        yield service
    finally:
        if service.web is not None:
            service.stop_web()
        worker.terminate()
        worker.wait(timeout=30)


def _warm_up(service: Service) -> None:
    """One widget comment decided: the worker has loaded its model before WordPress asks."""
    posted = httpx.post(f"{service.url}/api/v1/comments", json={
        "post": "warm-up", "author_name": "Warm Up", "content": "Warming up the worker."})
    assert posted.status_code == 202, posted.text
    url = f"{service.url}/api/v1/comments/{posted.json()['id']}"
    deadline = time.monotonic() + 120
    while httpx.get(url).json().get("status", "pending") == "pending":
        assert time.monotonic() < deadline, "the worker decided nothing in 120 s"
        time.sleep(0.2)


WP_CONFIG = """<?php
define( 'DB_NAME', '{database}' );
define( 'DB_USER', 'root' );
define( 'DB_PASSWORD', '' );
define( 'DB_HOST', '{db_host}' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );
define( 'AUTH_KEY', 'test-auth' ); define( 'SECURE_AUTH_KEY', 'test-secure-auth' );
define( 'LOGGED_IN_KEY', 'test-logged-in' ); define( 'NONCE_KEY', 'test-nonce' );
define( 'AUTH_SALT', 'a' ); define( 'SECURE_AUTH_SALT', 'b' ); define( 'LOGGED_IN_SALT', 'c' );
define( 'NONCE_SALT', 'd' );
$table_prefix = 'wp_';
define( 'WP_HOME', '{home}' );
define( 'WP_SITEURL', '{home}' );
define( 'WP_DEBUG', true );
define( 'WP_DEBUG_DISPLAY', false );
define( 'WP_DEBUG_LOG', __DIR__ . '/../debug.log' );
// WP-Cron runs when the test asks for wp-cron.php, not on page loads.
define( 'DISABLE_WP_CRON', true );
// The two lines of the README: the connector's setting.
define( 'COMMENT_SERVICE_URL', '{service}' );
if ( ! defined( 'ABSPATH' ) ) {{
	define( 'ABSPATH', __DIR__ . '/' );
}}
require_once ABSPATH . 'wp-settings.php';
"""

# Test set-up only: one reader (127.0.0.1) posts many comments in a row.
NO_FLOOD = "<?php add_filter( 'wp_is_comment_flood', '__return_false', 100 );\n"

# Time moved in the data: WP-Cron's pending Akismet recheck becomes due now.
CRON_DUE = """<?php
require '{root}/wp-load.php';
$crons = _get_cron_array();
$moved = array();
foreach ( $crons as $time => $hooks ) {{
	foreach ( $hooks as $hook => $events ) {{
		$target = 'akismet_schedule_cron_recheck' === $hook ? time() - 1 : $time;
		foreach ( $events as $key => $event ) {{
			$moved[ $target ][ $hook ][ $key ] = $event;
		}}
	}}
}}
ksort( $moved );
_set_cron_array( $moved );
echo isset( $moved[ time() - 1 ]['akismet_schedule_cron_recheck'] ) ? 'due' : 'none';
"""


@dataclass
class WordPress:
    """A WordPress install: its URL, its database and an admin's HTTP session."""

    url: str
    root: Path
    mysql_args: list[str]
    database: str
    admin: httpx.Client

    def sql(self, query: str) -> list[list[str]]:
        """Rows of a query on WordPress's database (what its screens show, read directly)."""
        out = _mysql(self.mysql_args, query, self.database)
        return [line.split("\t") for line in out.splitlines()]

    def admin_page(self, path: str, **params: Any) -> str:
        response = self.admin.get(f"{self.url}/wp-admin/{path}", params=params)
        assert response.status_code == 200, (path, response.status_code)
        return response.text

    def recheck_due(self) -> str:
        """Make WP-Cron's pending Akismet recheck due now; 'due' or 'none'."""
        script = self.root / "cron-due.php"
        script.write_text(CRON_DUE.format(root=self.root))
        return subprocess.run(["php", str(script)], capture_output=True, text=True,
                              check=True, timeout=60).stdout.strip()

    def run_cron(self) -> None:
        """Ask wp-cron.php to run what is due, as a system cron job does."""
        # No doing_wp_cron: called as an external job, wp-cron.php takes its own lock.
        response = httpx.get(f"{self.url}/wp-cron.php", timeout=120)
        assert response.status_code == 200


def _form_fields(html: str, form_marker: str) -> dict[str, str]:
    """The input/textarea names and values of the form containing ``form_marker``."""
    start = html.index(form_marker)
    form = html[html.rindex("<form", 0, start):html.index("</form>", start)]
    values: dict[str, str] = {}
    for tag in re.findall(r"<input[^>]*>", form):
        # WordPress writes some attributes in single quotes (comment_post_ID).
        name = re.search(r"""name=["']([^"']+)["']""", tag)
        value = re.search(r"""value=(["'])(.*?)\1""", tag)
        if name:
            values[unescape(name.group(1))] = unescape(value.group(2)) if value else ""
    for name in re.findall(r"""<textarea[^>]*name=["']([^"']+)["']""", form):
        values.setdefault(unescape(name), "")
    return values


@pytest.fixture(scope="session")
def wordpress(mariadb: list[str], comment_service: Service,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[WordPress]:
    """WordPress installed through its own install.php, the Akismet plugin activated, the
    connector copied to mu-plugins, served by `php -S`; an admin logged in."""
    root = tmp_path_factory.mktemp("wordpress") / "site"
    shutil.copytree(WORDPRESS, root, symlinks=True)
    (root / ".htaccess").unlink(missing_ok=True)
    database = f"wp_test_{os.getpid()}"
    _mysql(mariadb, f"DROP DATABASE IF EXISTS {database}; CREATE DATABASE {database} "
                    "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;")
    home = f"http://127.0.0.1:{WORDPRESS_PORT}"
    db_host = ":".join(a[2:] for a in mariadb)
    (root / "wp-config.php").write_text(WP_CONFIG.format(
        database=database, db_host=db_host, home=home, service=comment_service.url))
    mu_plugins = root / "wp-content" / "mu-plugins"
    mu_plugins.mkdir()
    shutil.copy(CONNECTOR, mu_plugins)  # the README's "copy one file"
    (mu_plugins / "test-no-flood.php").write_text(NO_FLOOD)
    env = {**os.environ, "PHP_CLI_SERVER_WORKERS": "4"}
    php_log = (root.parent / "php-server.log").open("wb")
    server = subprocess.Popen(["php", "-S", f"127.0.0.1:{WORDPRESS_PORT}", "-t", str(root)],
                              env=env, cwd=root, stdout=php_log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    admin = httpx.Client(timeout=120, follow_redirects=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{home}/readme.html", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "php -S did not start"
                time.sleep(0.1)
        installed = admin.post(f"{home}/wp-admin/install.php", params={"step": "2"}, data={
            "weblog_title": "Drop-in test blog", "user_name": ADMIN,
            "admin_password": ADMIN_PASSWORD, "admin_password2": ADMIN_PASSWORD,
            "pw_weak": "on", "admin_email": "admin@example.org", "blog_public": "0",
            "language": ""})
        assert installed.status_code == 200 and "Success" in installed.text, installed.text[-2000:]
        site = WordPress(home, root, mariadb, database, admin)
        # Settings a test blog needs: the Akismet plugin active (Plugins -> Activate), and
        # WordPress's own "author must have a previously approved comment" off, so that the
        # service's verdict alone decides (the default would hold every new reader).
        site.sql("UPDATE wp_options SET option_value='a:1:{i:0;s:19:\"akismet/akismet.php\";}' "
                 "WHERE option_name='active_plugins'; "
                 "UPDATE wp_options SET option_value='0' "
                 "WHERE option_name='comment_previously_approved';")
        admin.get(f"{home}/wp-login.php")
        logged_in = admin.post(f"{home}/wp-login.php", data={
            "log": ADMIN, "pwd": ADMIN_PASSWORD, "wp-submit": "Log In", "testcookie": "1",
            "redirect_to": f"{home}/wp-admin/"})
        assert "Dashboard" in logged_in.text, logged_in.text[-1000:]
        yield site
    finally:
        admin.close()
        # PHP_CLI_SERVER_WORKERS forks: stop the whole group, not only the parent.
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        php_log.close()
        with contextlib.suppress(subprocess.CalledProcessError):
            _mysql(mariadb, f"DROP DATABASE IF EXISTS {database};")


__all__ = ["ADMIN", "QUEUE", "Service", "WordPress", "_form_fields"]
