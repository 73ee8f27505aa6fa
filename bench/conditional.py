"""Conditional reads: a 200-comment listing asked with ``If-None-Match`` (its current ETag), so
every answer is a 304 from Redis alone, against Isso's plain GET of the same thread (Isso
sends no ETag).

`measure` is the phase bench/run.py runs (``--conditional-reads-seconds``). ``python -m
bench.conditional`` runs only this comparison, our service and Isso side by side, alternating
ours and Isso's for ``--rounds`` rounds, and prints the median ratio: a short A/B on a
shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench import isso, procs
from bench.load import isso_request, make_comments, write_requests
from service.db import CommentStatus
from service.embedded_redis import free_port

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench"
LUA = ROOT / "bench" / "conditional.lua"

# The target of the issue: conditional reads at least this many times Isso's GETs.
TARGET_RATIO = 30


def current_etag(port: int, path: str) -> str:
    """The ETag a plain GET of ``path`` answers now."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        tag = response.headers["ETag"]
    if not tag:
        raise SystemExit(f"{path} answered no ETag")
    return str(tag)


def measure(port: int, path: str, seconds: float, connections: int,
            conditional: bool = True) -> dict[str, Any]:
    """wrk (bench/conditional.lua) on ``path``, with ``If-None-Match: <its current ETag>``
    unless ``conditional`` is False: requests/s, latency, the answers' status codes."""
    tag = current_etag(port, path) if conditional else None
    out, cpu = procs.run_measured(
        ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "10s",
         "-s", str(LUA), f"http://127.0.0.1:{port}"],
        env={**os.environ, "BENCH_PATH": path, "BENCH_IF_NONE_MATCH": tag or ""})
    line = next(x for x in out.splitlines() if x.startswith("BENCH_JSON "))
    summary = json.loads(line.removeprefix("BENCH_JSON "))
    duration = summary["duration_us"] / 1e6
    summary.update(
        if_none_match=tag, seconds=duration, rps=summary["requests"] / duration,
        error_count=sum(summary["errors"].values()),
        p50_ms=summary["latency_us"]["p50"] / 1e3, p99_ms=summary["latency_us"]["p99"] / 1e3,
        generator_cpu_s=cpu)
    # wrk counts 3xx as answers, not errors: check they are 304s, not 200s, once more.
    if tag is not None:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                         headers={"If-None-Match": tag})
        try:
            urllib.request.urlopen(request, timeout=10)
            summary["still_304"] = False
        except urllib.error.HTTPError as error:
            summary["still_304"] = error.code == 304
    return summary


def main(argv: list[str] | None = None) -> int:
    """Our conditional reads and Isso's GETs of the same 200-comment thread, alternated."""
    from bench.run import READS_COUNT, READS_POST, Service, log, python_load, rows_for

    parser = argparse.ArgumentParser(prog="python -m bench.conditional", description=__doc__)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--web-workers", type=int, default=2)
    args = parser.parse_args(argv)
    VAR.mkdir(parents=True, exist_ok=True)
    database_url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{VAR / 'bench.db'}"
    service = Service(database_url, args.web_workers, 1)
    log("ours: migrating, model, starting")
    service.prepare()
    service.start()
    venv = VAR / "isso-venv"
    isso.ensure_venv(venv)
    isso_port = free_port()
    master = isso.start(venv, VAR / "isso", isso_port, args.web_workers)
    result: dict[str, Any] = {"rounds": []}
    try:
        service.insert(rows_for(READS_COUNT, seed=5, status=CommentStatus.PUBLISHED,
                                post=READS_POST))
        procs.wait_http(f"http://127.0.0.1:{isso_port}/info")
        seed = write_requests(VAR / "isso-reads-seed.txt", [
            isso_request(c, {}).replace(f"uri=%2F{c.post}", f"uri=%2F{READS_POST}")
            for c in make_comments(READS_COUNT, seed=5)])
        python_load("closed", isso_port, seed, count=READS_COUNT, concurrency=2)
        ours_path = f"/api/v1/posts/{READS_POST}/comments?limit={READS_COUNT}"
        isso_path = f"/?uri=%2F{READS_POST}"
        for i in range(args.rounds):
            log(f"round {i + 1}: ours (If-None-Match), then Isso (GET), {args.seconds} s each")
            ours = measure(service.port, ours_path, args.seconds, args.connections)
            peer = measure(isso_port, isso_path, args.seconds, args.connections,
                           conditional=False)
            result["rounds"].append({"ours": ours, "isso": peer,
                                     "ratio": ours["rps"] / peer["rps"]})
            log(f"  ours {ours['rps']:.0f} req/s (p99 {ours['p99_ms']:.1f} ms), "
                f"Isso {peer['rps']:.1f} req/s: {ours['rps'] / peer['rps']:.1f}x")
        ratios = [r["ratio"] for r in result["rounds"]]
        result["median_ratio"] = statistics.median(ratios)
        print(json.dumps({"ratios": [round(r, 1) for r in ratios],
                          "median_ratio": round(result["median_ratio"], 1),
                          "ours_rps": [round(r["ours"]["rps"]) for r in result["rounds"]],
                          "isso_rps": [round(r["isso"]["rps"], 1) for r in result["rounds"]],
                          "target": f">= {TARGET_RATIO}x"}))
    finally:
        procs.stop([master])
        service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
