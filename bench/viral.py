"""The day a post goes viral (issue 17, target 4), a phase of `make bench`.

For ``--viral-seconds`` (default 60), all open-loop (request i leaves at ``start + i / rate``
whether or not the earlier ones were answered), one connection per request:

- readers: 300 requests/s, alternately the post's public listing
  (``GET /api/v1/posts/<post>/comments?limit=200`` on a thread of 200 published comments) and
  the counters of the post and nine others (``GET /api/v1/counts?post=...``), plain GETs
  without ``If-None-Match``: the worst case, a reader whose browser or CDN has nothing cached;
- a spam botnet: 200 comments/s of the corpus' spam (each with its own author, so the
  duplicate check never fires), from 2,000 addresses picked at random per comment, half of
  them on the viral post and half spread over the blog's other posts, sent as an API client
  would (JSON, no form token, no honeypot: every accepted one needs the model);
- genuine readers: 2 comments/s of the corpus' genuine comments on the viral post (12 % of
  them replies to the thread), each from an address of its own.

Addresses travel in ``X-Forwarded-For``; the service runs in the production shape (nginx in
front of gunicorn, ``PROXY_COUNT=2``: the generator plays the CDN or balancer in front of nginx),
so rate limits and flood control are evaluated per address, as on the internet. They come from
100.64.0.0/10 (RFC 6598 shared space: no reader's public address), one /24 each, so that
Isso's guard, which counts by /24, sees as many clients as ours. Only header text: every
request goes to 127.0.0.1.

Each of the three loads runs in its own process (``python -m bench.viral gen``), whose CPU
comes from ``wait4``. After the phase the backlog drains, then the database is checked: every
accepted comment (202, by id) stored once, decided, with exactly one decision event.

Isso (``--peer isso``) gets the same three loads through the same nginx front, its ``[guard]``
on (2 comments a minute per /24, its default) with 127.0.0.1 as a trusted proxy; the other
phases of the bench keep its guard off.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench import isso, nginx, procs
from bench.load import make_comments

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

VIRAL_POST = "bench-viral-post"
THREAD_COMMENTS = 200
READ_RATE = 300.0
BOT_RATE = 200.0
BOT_ADDRESSES = 2_000
GENUINE_RATE = 2.0
# Share of the botnet's comments aimed at the viral post; the rest spread over other posts.
BOT_VIRAL_SHARE = 0.5
# Share of genuine comments that answer a comment of the thread.
REPLY_SHARE = 0.12
# Seconds between showing a genuine reader's form (its token) and the load starting: more
# than the 3 s (service.guard.MIN_FILL_SECONDS) a form must be open for its token to count.
FORM_FILL_S = 4.0
# Posts besides the viral one in the counters request (a blog's "related posts" box).
RELATED_POSTS = 9
# A request not answered in this long counts as a timeout (slower than every answered one).
TIMEOUT_S = 10.0
# Goals of the issue.
READS_P99_GOAL_MS = 100.0
GENUINE_P99_GOAL_MS = 2_000.0
# "Mostly refused or filed as spam": at least this share of the botnet's comments.
BOT_STOPPED_GOAL = 0.9

Sample = list[Any]  # [kind, sent (epoch s), lateness s, latency s, status, id, reason]


# -- the load generator (its own process) -------------------------------------------------------

def address(index: int) -> str:
    """The ``index``-th client address: 100.64.0.1, 100.64.1.1, ... (one /24 each)."""
    number = (100 << 24) + (64 << 16) + index * 256 + 1
    return ".".join(str(number >> shift & 255) for shift in (24, 16, 8, 0))


def _raw(request: dict[str, Any]) -> bytes:
    body = (request.get("body") or "").encode()
    forwarded = f"X-Forwarded-For: {request['xff']}\r\n" if request.get("xff") else ""
    head = (f"{request['method']} {request['path']} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"User-Agent: bench-viral/1\r\n{forwarded}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n")
    return head.encode() + body


def _reason(status: int, body: bytes) -> str | None:
    """Why a comment was refused, from the answer (429: which limit; Isso: its guard)."""
    if status == 403:
        return "forbidden"
    if status != 429:
        return None
    try:
        answer = json.loads(body)
    except ValueError:
        return "429"
    if not isinstance(answer, dict):
        return "429"
    if "limit" in answer:  # Flask-Limiter's limits name their rule
        return "post-limit" if "This post" in str(answer.get("detail")) else "ip-limit"
    return "flood"


class _Exchange(asyncio.Protocol):
    """One request on its own connection, the answer read until the server closes it
    (asyncio's transports, without the bookkeeping of its streams)."""

    def __init__(self, request: bytes, done: asyncio.Future[bytes]) -> None:
        self.request = request
        self.done = done
        self.chunks: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            if exc is None:
                self.done.set_result(b"".join(self.chunks))
            else:
                self.done.set_exception(exc)


async def _one(port: int, request: bytes, timeout: float) -> tuple[float, int, Any, str | None]:
    """(latency s, status, id, refusal reason); status 0: connection error, -1: timeout."""
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    done: asyncio.Future[bytes] = loop.create_future()
    transport = None
    try:
        async with asyncio.timeout(timeout):
            transport, _ = await loop.create_connection(
                lambda: _Exchange(request, done), "127.0.0.1", port)
            data = await done
    except TimeoutError:
        if transport is not None:
            transport.abort()
        return time.perf_counter() - t0, -1, None, None
    except OSError:
        return time.perf_counter() - t0, 0, None, None
    elapsed = time.perf_counter() - t0
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return elapsed, 0, None, None
    ident = None
    if 200 <= status < 300 and body[:1] == b"{":
        with contextlib.suppress(ValueError, AttributeError):
            ident = json.loads(body).get("id")
    return elapsed, status, ident, _reason(status, body)


async def open_loop(port: int, requests: list[dict[str, Any]], rate: float, duration: float,
                    timeout: float) -> list[Sample]:
    """Send request i at ``start + i / rate`` for ``duration`` s, each on its own task."""
    raw = [_raw(r) for r in requests]
    total = int(rate * duration)
    start = time.perf_counter()

    async def send(i: int) -> Sample:
        lateness = time.perf_counter() - (start + i / rate)
        sent = time.time()
        latency, status, ident, reason = await _one(port, raw[i % len(raw)], timeout)
        return [requests[i % len(raw)]["kind"], sent, lateness, latency, status, ident, reason]

    tasks = []
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(i)))
    return list(await asyncio.gather(*tasks))


def generate(argv: list[str]) -> int:
    """``python -m bench.viral gen``: one open-loop load, samples written as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.viral gen")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--requests", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S)
    args = parser.parse_args(argv)
    requests = json.loads(args.requests.read_text(encoding="utf-8"))
    samples = asyncio.run(open_loop(args.port, requests, args.rate, args.duration,
                                    args.timeout))
    args.out.write_text(json.dumps(samples))
    return 0


# -- what each load sends ---------------------------------------------------------------------

def _other_posts() -> list[str]:
    return sorted({c.post for c in make_comments(400, seed=41)})


def reader_requests(peer: str) -> list[dict[str, Any]]:
    """The listing and the counters, alternately."""
    posts = [VIRAL_POST, *_other_posts()[:RELATED_POSTS]]
    if peer == "isso":
        return [{"kind": "listing", "method": "GET", "path": f"/?uri=%2F{VIRAL_POST}"},
                {"kind": "counts", "method": "POST", "path": "/count",
                 "body": json.dumps([f"/{p}" for p in posts])}]
    query = "&".join(f"post={quote(p)}" for p in posts)
    return [{"kind": "listing", "method": "GET",
             "path": f"/api/v1/posts/{VIRAL_POST}/comments?limit={THREAD_COMMENTS}"},
            {"kind": "counts", "method": "GET", "path": f"/api/v1/counts?{query}"}]


def _comment_request(peer: str, kind: str, post: str, comment: Any, xff: str,
                     parent: int | None, form_token: str | None = None) -> dict[str, Any]:
    if peer == "isso":
        body: dict[str, Any] = {"text": comment.content, "author": comment.author_name,
                                "title": post.replace("-", " ").title()}
        names = {"author_email": "email", "author_url": "website"}
        path = f"/new?uri=%2F{post}"
    else:
        body = {"post": post, "author_name": comment.author_name, "content": comment.content}
        names = {"author_email": "author_email", "author_url": "author_url"}
        path = "/api/v1/comments"
    for ours, theirs in names.items():
        if getattr(comment, ours):
            body[theirs] = getattr(comment, ours)
    if parent is not None:
        body["parent" if peer == "isso" else "parent_id"] = parent
    if form_token is not None:
        body["form_token"] = form_token
    return {"kind": kind, "method": "POST", "path": path, "xff": xff,
            "body": json.dumps(body, ensure_ascii=False)}


def botnet_requests(peer: str, count: int, addresses: int = BOT_ADDRESSES, seed: int = 61
                    ) -> list[dict[str, Any]]:
    """``count`` spam comments from ``addresses`` addresses, on the viral post and others."""
    rng = random.Random(seed)
    others = _other_posts()
    spam: list[Any] = []
    while len(spam) < count:
        spam += [c for c in make_comments(int(count * 2.8) + 100, seed=seed + len(spam))
                 if c.spam]
    out = []
    for comment in spam[:count]:
        post = VIRAL_POST if rng.random() < BOT_VIRAL_SHARE else rng.choice(others)
        out.append(_comment_request(peer, "bot", post, comment,
                                    address(rng.randrange(addresses)), None))
    return out


def genuine_address(i: int) -> str:
    """The address of the ``i``-th genuine reader (after the botnet's)."""
    return address(BOT_ADDRESSES + i)


def genuine_requests(peer: str, count: int, thread_ids: list[int], seed: int = 62,
                     form_tokens: list[str] | None = None) -> list[dict[str, Any]]:
    """``count`` genuine comments on the viral post, each from its own address; with
    ``form_tokens``, each sent with the token its form was shown with (the widget's)."""
    rng = random.Random(seed)
    ham = [c for c in make_comments(int(count * 1.8) + 50, seed=seed) if not c.spam][:count]
    return [
        _comment_request(peer, "genuine", VIRAL_POST, comment, genuine_address(i),
                         rng.choice(thread_ids) if rng.random() < REPLY_SHARE else None,
                         form_tokens[i] if form_tokens else None)
        for i, comment in enumerate(ham)
    ]


def form_tokens(port: int, count: int) -> list[str]:
    """What each genuine reader's widget fetches when it shows the comment form (through the
    front, from the reader's own address): a form token for the viral post."""
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        return [http.get("/api/v1/form-token", params={"post": VIRAL_POST},
                         headers={"X-Forwarded-For": genuine_address(i)}).json()["token"]
                for i in range(count)]


def seed_requests(count: int) -> list[dict[str, Any]]:
    """Isso's thread: ``count`` published comments, each from its own address (its guard is
    on), the ids 1..count of a fresh database."""
    ham = [c for c in make_comments(count * 2 + 50, seed=63) if not c.spam][:count]
    return [_comment_request("isso", "seed", VIRAL_POST, c, address(10_000 + i), None)
            for i, c in enumerate(ham)]


# -- running the loads ------------------------------------------------------------------------

class Loads:
    """The generator processes of one phase, started together, each measured by ``wait4``."""

    def __init__(self, workdir: Path, port: int, timeout: float = TIMEOUT_S) -> None:
        self.workdir = workdir
        self.port = port
        self.timeout = timeout
        self.running: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def start(self, name: str, requests: list[dict[str, Any]], rate: float,
              duration: float) -> None:
        """Start one load in its own process."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        file = self.workdir / f"{name}-requests.json"
        file.write_text(json.dumps(requests), encoding="utf-8")
        out = self.workdir / f"{name}-samples.json"
        out.unlink(missing_ok=True)
        proc = subprocess.Popen(
            [PY, "-m", "bench.viral", "gen", "--port", str(self.port), "--requests", str(file),
             "--out", str(out), "--rate", str(rate), "--duration", str(duration),
             "--timeout", str(self.timeout)], cwd=ROOT)
        self.running.append((name, proc, out))

    def wait(self) -> dict[str, tuple[list[Sample], float]]:
        """Every load's samples and CPU seconds, once all have finished."""
        done = {}
        for name, proc, out in self.running:
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0:
                raise RuntimeError(f"load generator {name} failed ({proc.returncode})")
            done[name] = (json.loads(out.read_text()), usage.ru_utime + usage.ru_stime)
        self.running = []
        return done


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def _ms(value: float | None) -> float | None:
    return None if value is None else (float("inf") if value == float("inf") else value * 1e3)


def _latencies(samples: list[Sample]) -> dict[str, Any]:
    """Percentiles over answered requests, timeouts and errors ranked slower than all."""
    ranked = [s[3] if s[4] > 0 else float("inf") for s in samples]
    return {"requests": len(samples),
            "p50_ms": _ms(pct(ranked, 50)), "p99_ms": _ms(pct(ranked, 99)),
            "max_answered_ms": _ms(max((s[3] for s in samples if s[4] > 0), default=None))}


def _statuses(samples: list[Sample]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in samples:
        key = {0: "connection error", -1: "timeout"}.get(s[4], str(s[4]))
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def _refusals(samples: list[Sample]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in samples:
        if s[6]:
            counts[s[6]] = counts.get(s[6], 0) + 1
    return counts


def _generator(done: dict[str, tuple[list[Sample], float]], duration: float) -> dict[str, Any]:
    """The generators' own CPU and how late they sent (their event loops' lag)."""
    out: dict[str, Any] = {"cpu_s": {n: round(cpu, 2) for n, (_s, cpu) in done.items()}}
    out["cpu_share_of_a_core"] = round(sum(c for _s, c in done.values()) / duration, 3)
    lateness = [s[2] for samples, _cpu in done.values() for s in samples]
    out["send_lateness_ms"] = {"p99": _ms(pct(lateness, 99)), "max": _ms(max(lateness))}
    return out


def _reads(samples: list[Sample], duration: float) -> dict[str, Any]:
    reads = _latencies(samples)
    reads["offered_rps"] = len(samples) / duration
    reads["statuses"] = _statuses(samples)
    for kind in ("listing", "counts"):
        reads[kind] = _latencies([s for s in samples if s[0] == kind])
    return reads


# -- our service ------------------------------------------------------------------------------

def run_ours(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """The viral day against our service; fills ``result['viral']['ours']``."""
    # Imported here: the generator processes (this module's `gen`) start without them.
    from sqlalchemy import func, select

    from bench.run import VAR, Service, log, rows_for
    from service.db import Comment, CommentEvent, CommentStatus
    from service.embedded_redis import free_port

    seconds, scale = args.viral_seconds, args.viral_scale
    front = args.viral_front
    database_url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{VAR / 'bench.db'}"
    service = Service(database_url, args.web_workers, args.scoring_workers, args.web_threads,
                      args.worker_class)
    # The generator is the CDN or balancer in front; nginx (when there) is the second proxy.
    service.env["PROXY_COUNT"] = "2" if front == "nginx" else "1"
    # The production per-post limit, not the ingest phases' raised one: the day a post goes
    # viral is when it counts.
    service.env.pop("RATE_LIMIT_PER_POST", None)
    ours: dict[str, Any] = {"front": front or "none", "database": database_url.split(":")[0],
                            "web_workers": args.web_workers,
                            "proxy_count": int(service.env["PROXY_COUNT"])}
    result.setdefault("viral", {})["ours"] = ours
    log(f"viral: fresh database, {THREAD_COMMENTS}-comment thread, front {ours['front']}")
    service.prepare()
    service.start()
    front_proc = None
    port = service.port
    try:
        if front == "nginx":
            port = free_port()
            front_proc = nginx.start(VAR / "nginx-viral", port, f"127.0.0.1:{service.port}")
            procs.wait_http(f"http://127.0.0.1:{port}/readyz")
        thread_ids = service.insert(rows_for(THREAD_COMMENTS, seed=5,
                                             status=CommentStatus.PUBLISHED, post=VIRAL_POST))
        readers = reader_requests("ours")
        loads = Loads(VAR / "viral", port)
        loads.start("warm", readers, 40, 3)  # each web worker's first requests
        loads.wait()
        bots = botnet_requests("ours", int(BOT_RATE * scale * seconds) + 1,
                               round(BOT_ADDRESSES * scale))
        # Genuine readers comment through the widget: each form was shown (its token
        # fetched) before the load starts, at least the 3 s a person needs before sending.
        # The botnet posts straight to the API, without tokens.
        count = int(GENUINE_RATE * scale * seconds) + 1
        shown_at = time.monotonic()
        genuine = genuine_requests("ours", count, thread_ids,
                                   form_tokens=form_tokens(port, count))
        time.sleep(max(0.0, shown_at + FORM_FILL_S - time.monotonic()))
        first_id = service.max_id() + 1

        samples: list[tuple[float, int]] = []
        stop = threading.Event()

        def sampler() -> None:
            t0 = time.monotonic()
            while not stop.is_set():
                samples.append((time.monotonic() - t0, service.pending()))
                stop.wait(1.0)

        watch = threading.Thread(target=sampler, daemon=True)
        cpu0 = (service.web_cpu(), service.worker_cpu(),
                procs.tree_cpu([front_proc.pid]) if front_proc else 0.0)
        log(f"viral: {seconds:.0f} s of reads {READ_RATE * scale:.0f}/s, botnet "
            f"{BOT_RATE * scale:.0f}/s from {round(BOT_ADDRESSES * scale):,} addresses, "
            f"genuine {GENUINE_RATE * scale:g}/s")
        watch.start()
        loads.start("readers", readers, READ_RATE * scale, seconds)
        loads.start("botnet", bots, BOT_RATE * scale, seconds)
        loads.start("genuine", genuine, GENUINE_RATE * scale, seconds)
        done = loads.wait()
        cpu1 = (service.web_cpu(), service.worker_cpu(),
                procs.tree_cpu([front_proc.pid]) if front_proc else 0.0)
        stop.set()
        watch.join()
        ours["drain_after_s"] = _quiet(service, args.settle_cap * 2)
        ours["pending_max_during"] = max((p for _t, p in samples), default=0)
        ours["cpu_s"] = {"web": round(cpu1[0] - cpu0[0], 2), "scoring": round(cpu1[1] - cpu0[1], 2),
                         "nginx": round(cpu1[2] - cpu0[2], 2)}

        read_samples = done["readers"][0]
        bot_samples, genuine_samples = done["botnet"][0], done["genuine"][0]
        everything = read_samples + bot_samples + genuine_samples
        ours["reads"] = _reads(read_samples, seconds)
        ours["server_errors_5xx"] = sum(1 for s in everything if s[4] >= 500)
        ours["timeouts_or_connection_errors"] = sum(1 for s in everything if s[4] <= 0)
        ours["generator"] = _generator(done, seconds)

        # The database, once drained: each accepted comment stored once, decided, one event.
        accepted = {s[5]: s for s in bot_samples + genuine_samples
                    if s[4] == 202 and s[5] is not None}
        with service.engine.connect() as conn:
            rows = {ident: (status, decided)
                    for ident, status, decided in conn.execute(
                        select(Comment.id, Comment.status, Comment.decided_at)
                        .where(Comment.id >= first_id))}
            # Every comment sent is unique (its own author): a second row is a duplicate.
            distinct = conn.scalar(select(func.count()).select_from(
                select(Comment.post, Comment.author_name, Comment.author_email,
                       Comment.content).where(Comment.id >= first_id).distinct().subquery()))
            events = dict(conn.execute(
                select(CommentEvent.comment_id, func.count())
                .where(CommentEvent.comment_id >= first_id,
                       CommentEvent.action.in_(("score", "bot-trap")))
                .group_by(CommentEvent.comment_id)).all())
        ours["integrity"] = {
            "accepted": len(accepted),
            "rows_stored": len(rows),
            "accepted_missing": len(set(accepted) - set(rows)),
            "duplicates": len(rows) - int(distinct or 0),
            # Stored, but the client gave up (timeout) before its 202 arrived: not an error.
            "stored_answer_lost": len(set(rows) - set(accepted)),
            "undecided": sum(1 for status, _d in rows.values()
                             if status == CommentStatus.PENDING),
            "decision_events": sum(events.values()),
            "rows_without_exactly_one_decision_event": sum(
                1 for ident in rows if events.get(ident, 0) != 1),
        }
        ours["botnet"] = _comments(bot_samples, rows, seconds)
        ours["genuine"] = _comments(genuine_samples, rows, seconds)
        ours["genuine"]["decided_ms"] = _decided(genuine_samples, rows)
        log(f"  reads p50/p99 {ours['reads']['p50_ms']:.0f}/{ours['reads']['p99_ms']:.0f} ms; "
            f"genuine decided p99 {ours['genuine']['decided_ms']['p99']} ms; "
            f"5xx {ours['server_errors_5xx']}; botnet {ours['botnet']['outcomes']}")
    finally:
        if front_proc is not None:
            procs.stop([front_proc])
        service.stop()


def _quiet(service: Any, cap: float, still_s: float = 2.0) -> float:
    """Wait until nothing is pending and no comment has arrived for ``still_s`` (nginx may
    still pass on requests whose clients gave up); the seconds waited, at most ``cap``."""
    t0 = time.monotonic()
    newest, since = service.max_id(), time.monotonic()
    while time.monotonic() - t0 < cap:
        time.sleep(0.25)
        now_newest = service.max_id()
        if now_newest != newest:
            newest, since = now_newest, time.monotonic()
        elif not service.pending() and time.monotonic() - since >= still_s:
            break
    return round(time.monotonic() - t0, 2)


def _comments(samples: list[Sample], rows: dict[int, Any], duration: float) -> dict[str, Any]:
    """What became of one load's comments: refused (why) or accepted (and decided how)."""
    outcomes: dict[str, int] = {}
    for s in samples:
        if s[4] == 202 and s[5] in rows:
            key = str(rows[s[5]][0])
        elif s[4] == 202:
            key = "accepted, not stored"
        elif s[6]:
            key = f"refused: {s[6]}"
        else:
            key = {0: "connection error", -1: "timeout"}.get(s[4], f"HTTP {s[4]}")
        outcomes[key] = outcomes.get(key, 0) + 1
    return {"sent": len(samples), "offered_rps": len(samples) / duration,
            "outcomes": dict(sorted(outcomes.items())), "http": _latencies(samples)}


def _decided(samples: list[Sample], rows: dict[int, Any]) -> dict[str, Any]:
    """POST sent to decided_at, for the accepted ones; undecided rank slower than all."""
    times = []
    for s in samples:
        if s[4] == 202 and s[5] in rows:
            decided = rows[s[5]][1]
            times.append((decided.timestamp() - s[1]) * 1e3 if decided else float("inf"))
    return {"count": len(times), "p50": pct(times, 50), "p99": pct(times, 99),
            "max": max(times, default=None)}


# -- Isso -------------------------------------------------------------------------------------

def run_isso(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """The same loads against Isso, guard on, same front; fills ``result['viral']['isso']``."""
    from bench.run import VAR, log
    from service.embedded_redis import free_port

    seconds, scale = args.viral_seconds, args.viral_scale
    venv = VAR / "isso-venv"
    isso.ensure_venv(venv)
    web_port = free_port()
    master = isso.start(venv, VAR / "isso-viral", web_port, args.web_workers, guard=True)
    front_proc = None
    port = web_port
    peer: dict[str, Any] = {"front": args.viral_front or "none", "guard": "on (ratelimit 2/min "
                            "per /24, direct-reply 3), 127.0.0.1 a trusted proxy"}
    result.setdefault("viral", {})["isso"] = peer
    try:
        procs.wait_http(f"http://127.0.0.1:{web_port}/info")
        if args.viral_front == "nginx":
            port = free_port()
            front_proc = nginx.start(VAR / "nginx-viral-isso", port, f"127.0.0.1:{web_port}")
            procs.wait_http(f"http://127.0.0.1:{port}/info")
        log(f"viral, isso: seeding a {THREAD_COMMENTS}-comment thread")
        loads = Loads(VAR / "viral-isso", port)
        loads.start("seed", seed_requests(THREAD_COMMENTS), 50, THREAD_COMMENTS / 50)
        seeded = loads.wait()["seed"][0]
        peer["thread_seeded"] = sum(1 for s in seeded if s[4] in (201, 202))
        readers = reader_requests("isso")
        loads.start("warm", readers, 10, 2)
        loads.wait()
        bots = botnet_requests("isso", int(BOT_RATE * scale * seconds) + 1,
                               round(BOT_ADDRESSES * scale))
        genuine = genuine_requests("isso", int(GENUINE_RATE * scale * seconds) + 1,
                                   list(range(1, THREAD_COMMENTS + 1)))
        log(f"viral, isso: {seconds:.0f} s, the same three loads")
        cpu0 = procs.tree_cpu([master.pid])
        loads.start("readers", readers, READ_RATE * scale, seconds)
        loads.start("botnet", bots, BOT_RATE * scale, seconds)
        loads.start("genuine", genuine, GENUINE_RATE * scale, seconds)
        done = loads.wait()
        peer["cpu_s"] = {"web": round(procs.tree_cpu([master.pid]) - cpu0, 2)}
        everything = [s for samples, _cpu in done.values() for s in samples]
        peer["reads"] = _reads(done["readers"][0], seconds)
        peer["server_errors_5xx"] = sum(1 for s in everything if s[4] >= 500)
        peer["timeouts_or_connection_errors"] = sum(1 for s in everything if s[4] <= 0)
        peer["generator"] = _generator(done, seconds)
        for name in ("botnet", "genuine"):
            samples = done[name][0]
            peer[name] = {"sent": len(samples), "statuses": _statuses(samples),
                          "http": _latencies(samples)}
        log(f"  reads p50/p99 {peer['reads']['p50_ms']:.0f}/{peer['reads']['p99_ms']:.0f} ms")
    finally:
        procs.stop([p for p in (front_proc, master) if p is not None])


# -- bench/run.py's hooks ---------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The phase's options."""
    parser.add_argument("--viral-seconds", type=float, default=60,
                        help="length of the viral-post phase (0: skip it)")
    parser.add_argument("--viral-front", choices=["", "nginx"],
                        default="nginx" if shutil.which("nginx") or Path("/usr/sbin/nginx")
                        .exists() else "",
                        help="front of the viral phase (default: nginx when installed)")
    parser.add_argument("--viral-scale", type=float, default=1.0,
                        help="multiply the phase's rates and botnet addresses (1: the issue's)")
    parser.add_argument("--viral-only", action="store_true",
                        help="run only the viral-post phase (and Isso's, with --peer isso)")


def run(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """Our viral day, then Isso's with ``--peer isso``."""
    if args.viral_seconds <= 0:
        return
    scale = args.viral_scale
    result.setdefault("viral", {})["settings"] = {
        "seconds": args.viral_seconds, "scale": scale, "read_rps": READ_RATE * scale,
        "bot_rps": BOT_RATE * scale, "bot_addresses": round(BOT_ADDRESSES * scale),
        "bot_viral_share": BOT_VIRAL_SHARE, "genuine_rps": GENUINE_RATE * scale,
        "thread": THREAD_COMMENTS, "timeout_s": TIMEOUT_S, "conditional_reads": False}
    run_ours(args, result)
    if args.peer == "isso":
        run_isso(args, result)


def figure(value: Any, digits: int = 0) -> str:
    """A measured number as the report tables print it ("-": not measured; "never")."""
    if value is None:
        return "-"
    if isinstance(value, float) and value == float("inf"):
        return "never"
    return f"{value:,.{digits}f}"


def verdicts(result: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(target, measured, goal, met) of the viral phase."""
    ours = result.get("viral", {}).get("ours")
    if not ours or "reads" not in ours:
        return []
    peer = result["viral"].get("isso", {}).get("reads")
    reads = ours["reads"]["p99_ms"]
    beside = f" (Isso {figure(peer['p99_ms'])} ms)" if peer else ""
    genuine = ours["genuine"]
    refused = sum(n for k, n in genuine["outcomes"].items() if k.startswith("refused"))
    p99 = genuine["decided_ms"]["p99"]
    integrity = ours["integrity"]
    intact = (integrity["accepted_missing"] == 0 and integrity["undecided"] == 0
              and integrity["rows_without_exactly_one_decision_event"] == 0
              and integrity["duplicates"] == 0)
    bots = ours["botnet"]["outcomes"]
    stopped = sum(n for k, n in bots.items() if k.startswith("refused") or k == "spam")
    share = stopped / max(ours["botnet"]["sent"], 1)
    return [
        ("viral: reads p99", f"{figure(reads)} ms{beside}", f"< {READS_P99_GOAL_MS:.0f} ms",
         reads is not None and reads < READS_P99_GOAL_MS),
        ("viral: genuine decided p99", f"{figure(p99)} ms ({genuine['decided_ms']['count']} "
         f"accepted, {refused} of {genuine['sent']} refused)",
         f"< {GENUINE_P99_GOAL_MS:.0f} ms", p99 is not None and p99 < GENUINE_P99_GOAL_MS),
        ("viral: 5xx", str(ours["server_errors_5xx"]), "0", ours["server_errors_5xx"] == 0),
        ("viral: accepted stored once and decided",
         f"{integrity['accepted']} accepted: {integrity['accepted_missing']} missing, "
         f"{integrity['duplicates']} duplicates, {integrity['undecided']} undecided, "
         f"{integrity['rows_without_exactly_one_decision_event']} without one decision event",
         "0 each", intact),
        ("viral: botnet refused or spam", f"{share:.1%}", f">= {BOT_STOPPED_GOAL:.0%}",
         share >= BOT_STOPPED_GOAL),
    ]


def table_rows(result: dict[str, Any]) -> list[str]:
    """The phase's Markdown table (empty when it did not run)."""
    viral = result.get("viral", {})
    ours, peer = viral.get("ours"), viral.get("isso", {})
    if not ours or "reads" not in ours:
        return []
    pr = peer.get("reads", {})
    rows = ["", f"Viral post ({viral['settings']['seconds']:.0f} s, front "
            f"{ours['front']}, plain GETs without If-None-Match):", "",
            "| Viral post | Ours | Isso |", "|---|---:|---:|"]

    def line(name: str, a: Any, b: Any = None, digits: int = 0) -> None:
        rows.append(f"| {name} | {figure(a, digits)} | {figure(b, digits)} |")

    r = ours["reads"]
    line("reads offered /s", r["offered_rps"], pr.get("offered_rps"))
    line("reads answered 200 (of those offered)", r["statuses"].get("200", 0),
         pr.get("statuses", {}).get("200") if pr else None)
    line("reads p50 ms", r["p50_ms"], pr.get("p50_ms"), 1)
    line("reads p99 ms", r["p99_ms"], pr.get("p99_ms"), 1)
    line("listing p99 ms", r["listing"]["p99_ms"], pr.get("listing", {}).get("p99_ms"), 1)
    line("counts p99 ms", r["counts"]["p99_ms"], pr.get("counts", {}).get("p99_ms"), 1)
    line("5xx (all loads)", ours["server_errors_5xx"], peer.get("server_errors_5xx"))
    line("timeouts / connection errors", ours["timeouts_or_connection_errors"],
         peer.get("timeouts_or_connection_errors"))
    line("web CPU s", ours["cpu_s"]["web"], peer.get("cpu_s", {}).get("web"), 1)
    line("generators' CPU, share of a core", ours["generator"]["cpu_share_of_a_core"],
         peer.get("generator", {}).get("cpu_share_of_a_core"), 2)
    line("generators' send lateness p99 ms", ours["generator"]["send_lateness_ms"]["p99"],
         peer.get("generator", {}).get("send_lateness_ms", {}).get("p99"), 1)
    g = ours["genuine"]
    rows += [
        "",
        "| Viral post, comments | Value |", "|---|---|",
        f"| botnet sent | {ours['botnet']['sent']:,} |",
        f"| botnet outcomes | {_outcomes(ours['botnet']['outcomes'])} |",
        f"| genuine sent | {g['sent']} |",
        f"| genuine outcomes | {_outcomes(g['outcomes'])} |",
        f"| genuine POST to decided_at p50 / p99 ms | {figure(g['decided_ms']['p50'])} /"
        f" {figure(g['decided_ms']['p99'])} |",
        "| accepted (202) / rows stored / stored but the 202 lost to a timeout / duplicates /"
        " undecided / rows without one decision event |"
        + " / ".join(f" {ours['integrity'][k]}" for k in (
            "accepted", "rows_stored", "stored_answer_lost", "duplicates", "undecided",
            "rows_without_exactly_one_decision_event")) + " |",
        f"| pending max during / drained in s | {ours['pending_max_during']} /"
        f" {ours['drain_after_s']} |",
        f"| CPU s: web / scoring / nginx | {ours['cpu_s']['web']} / {ours['cpu_s']['scoring']}"
        f" / {ours['cpu_s']['nginx']} |",
    ]
    if peer.get("botnet"):
        rows.append(f"| Isso: botnet / genuine statuses | {_outcomes(peer['botnet']['statuses'])}"
                    f" / {_outcomes(peer['genuine']['statuses'])} |")
    return rows


def _outcomes(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items())


if __name__ == "__main__":
    if sys.argv[1:2] != ["gen"]:
        raise SystemExit("usage: python -m bench.viral gen ... (make bench runs the phase)")
    sys.exit(generate(sys.argv[2:]))
