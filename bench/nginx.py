"""nginx (Debian's) as the buffering front of gunicorn, for the bench and the slow-client
drill: the server block of deploy/nginx/, in a throw-away prefix of its own (no root, no
system configuration touched)."""

from __future__ import annotations

import os
import shutil
import string
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx" / "commentguard.conf.template"


def executable() -> str:
    """nginx's path; SystemExit naming the make target that installs it."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None)
    if found is None:
        raise SystemExit("nginx is not installed: run `make nginx` (Debian's nginx-light)")
    return found


def config(workdir: Path, listen_port: int, upstream: str, workers: int = 1,
           host: str = "127.0.0.1") -> Path:
    """Write nginx.conf under ``workdir`` (our server block inside a minimal main block)."""
    workdir.mkdir(parents=True, exist_ok=True)
    server = string.Template(TEMPLATE.read_text(encoding="utf-8")).safe_substitute(
        COMMENTGUARD_UPSTREAM=upstream, COMMENTGUARD_LISTEN=f"{host}:{listen_port}",
        COMMENTGUARD_CACHE=str(workdir / "cache"))
    (workdir / "commentguard.conf").write_text(server, encoding="utf-8")
    path = workdir / "nginx.conf"
    # Started by root (a container, CI), nginx would run its workers as "nobody", who cannot
    # reach a cache folder inside root's private temporary folders.
    user = "user root;\n" if os.geteuid() == 0 else ""
    path.write_text(f"""daemon off;
{user}worker_processes {workers};
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    include {workdir}/commentguard.conf;
}}
""", encoding="utf-8")
    return path


def command(workdir: Path, listen_port: int, upstream: str, workers: int = 1,
            host: str = "127.0.0.1") -> list[str]:
    """The command line of nginx in the foreground with this configuration (written now)."""
    conf = config(workdir, listen_port, upstream, workers, host)
    return [executable(), "-p", str(workdir), "-c", str(conf), "-e", str(workdir / "error.log")]


def start(workdir: Path, listen_port: int, upstream: str, workers: int = 1
          ) -> subprocess.Popen[bytes]:
    """Start nginx in the foreground (stop it with terminate())."""
    return subprocess.Popen(command(workdir, listen_port, upstream, workers),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
