"""The peer: Isso (PyPI ``isso``), the self-hosted Python comment server, in its own venv.

Installed under var/bench/isso-venv (var/ is not in git) and served by gunicorn with the same
number of sync workers as our web tier. Its ``[guard]`` (per-IP rate limit, 2 new comments a
minute by default) is switched off, otherwise every benchmark request after the second would be
refused; moderation is off too, as in Isso's default, so a comment is published at once.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ISSO_VERSION = "0.14.0"

CONFIG = """\
[general]
dbpath = {db}
host = http://127.0.0.1:{port}/
notify = stdout
log-file = {log}

[moderation]
enabled = false

[guard]
# Lifted for the benchmark: the default limits one IP to 2 new comments a minute. On for the
# viral-post phase (bench/viral.py), whose botnet comes from many addresses.
enabled = {guard}

[server]
listen = http://127.0.0.1:{port}/
# The load generator and nginx: X-Forwarded-For names the client (the viral-post phase).
trusted-proxies = 127.0.0.1
"""


def ensure_venv(directory: Path) -> Path:
    """Create the venv with isso and gunicorn unless it exists; return its python."""
    python = directory / "bin" / "python"
    if not (directory / "bin" / "gunicorn").exists() or not (directory / ".installed").exists():
        subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", f"isso=={ISSO_VERSION}", "gunicorn"],
                       check=True)
        (directory / ".installed").touch()
    return python


def start(venv: Path, workdir: Path, port: int, workers: int, guard: bool = False
          ) -> subprocess.Popen[bytes]:
    """Write a fresh config and database, start gunicorn with Isso; return the master.
    ``guard``: Isso's per-IP limits on, as in its default configuration."""
    workdir.mkdir(parents=True, exist_ok=True)
    for old in workdir.glob("comments.db*"):
        old.unlink()
    conf = workdir / "isso.cfg"
    conf.write_text(CONFIG.format(db=workdir / "comments.db", port=port,
                                  log=workdir / "isso.log",
                                  guard="true" if guard else "false"))
    log = (workdir / "gunicorn.log").open("ab")
    return subprocess.Popen(
        [str(venv / "bin" / "gunicorn"), "isso.run:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--preload"],
        env={"ISSO_SETTINGS": str(conf), "PATH": "/usr/bin:/bin"},
        cwd=workdir, stdout=log, stderr=log, start_new_session=True,
    )
