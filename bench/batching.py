"""The scoring worker's batching, A/B in one run: ``python -m bench.batching [--before REV]``.

One production-shape service (bench/run.py's: Redis, gunicorn, SQLite or
``BENCH_DATABASE_URL``); its scoring worker is restarted between variants: "before" runs the
worker package of git revision REV (extracted under var/bench/), "after" this tree's. Each
round runs both, in alternating order, through the same phases: a short max ingest (wrk),
the worker's CPU from its start until the burst is decided, per decision; idle decisions (4/s);
steady load at half the first max ingest measured (the same rate for both); a drain. Prints
one JSON line per variant and round, then the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

from bench import procs
from bench.load import make_comments, ours_request, write_requests
from bench.run import PY, ROOT, VAR, Service, drain, log, python_load, steady, wrk


def extract(rev: str) -> Path:
    """This repository's tree at ``rev``, under var/bench/ (the before variant's code)."""
    commit = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    folder = VAR / f"tree-{commit}"
    if not folder.exists():
        VAR.mkdir(parents=True, exist_ok=True)
        archive = VAR / f"tree-{commit}.tar"
        with archive.open("wb") as out:
            subprocess.run(["git", "archive", rev], cwd=ROOT, stdout=out, check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
        archive.unlink()
    return folder


def restart_worker(service: Service, cwd: Path, name: str) -> None:
    """Stop the scoring workers; start one from the tree at ``cwd``; wait until it listens."""
    procs.stop(service.workers)
    service.workers.clear()
    logs = VAR / "logs"
    worker_log = (logs / f"worker-{name}.log").open("ab")
    service.workers.append(subprocess.Popen(
        [PY, "-m", "worker", "--name", name], env={**service.env, "PYTHONPATH": str(cwd)},
        cwd=cwd, stdout=worker_log, stderr=worker_log, start_new_session=True))
    assert service.redis is not None
    deadline = time.monotonic() + 60
    while not service.redis.sismember("rq:workers:scoring", f"rq:worker:{name}"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"worker {name} did not start")
        time.sleep(0.2)


def burst(service: Service, seconds: float, connections: int, seed: int) -> dict[str, Any]:
    """Max ingest; the worker's CPU from the burst's start until its comments are decided."""
    requests = write_requests(VAR / f"burst-{seed}.txt",
                              [ours_request(c, {}) for c in make_comments(int(seconds) * 900,
                                                                          seed=seed)])
    before = service.count()
    cpu0 = service.worker_cpu()
    result = wrk(service.port, requests, seconds, connections)
    cpu_during = service.worker_cpu() - cpu0
    stored = service.count() - before
    pending = service.pending()
    service.wait_decided(60)
    cpu = service.worker_cpu() - cpu0
    return {"rps": result["rps"], "stored": stored, "pending_after": pending,
            "worker_cpu_s_during": cpu_during,
            "worker_cpu_ms_per_decision_during": cpu_during / max(stored - pending, 1) * 1e3,
            "worker_cpu_ms_per_decision": cpu / max(stored, 1) * 1e3}


def variant(service: Service, tree: Path, label: str, rate: float | None,
            args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """Every phase with the worker from ``tree``."""
    restart_worker(service, tree, f"{label}-{seed}-{os.getpid()}")
    out: dict[str, Any] = {"variant": label}
    out["burst"] = burst(service, args.ingest_seconds, args.connections, seed)
    service.settle(30)
    idle = write_requests(VAR / f"idle-{seed}.txt",
                          [ours_request(c, {}) for c in make_comments(40, seed=seed + 1)])
    level = steady(service, 4.0, 6.0, idle, settle_cap=30, poll_s=0.002)
    out["idle_p50_ms"] = level["decision_ms"]["p50"]
    service.settle(30)
    rate = rate or out["burst"]["stored"] / args.ingest_seconds / 2
    half = write_requests(VAR / f"half-{seed}.txt",
                          [ours_request(c, {}) for c in
                           make_comments(int(rate * args.steady_seconds) + 10, seed=seed + 2)])
    level = steady(service, rate, args.steady_seconds, half, settle_cap=30)
    out["half"] = {"rate": rate, "p50_ms": level["decision_ms"]["p50"],
                   "p99_ms": level["decision_ms"]["p99"],
                   "worker_cpu_ms_per_decision": level["worker_cpu_s"]
                   / max(level["accepted"], 1) * 1e3}
    service.settle(30)
    dr = drain(service, args.drain, 120)
    out["drain_worker_cpu_ms_per_decision"] = dr["worker_cpu_ms_per_decision"]
    out["drain_per_s"] = dr["decisions_per_s"]
    service.settle(30)
    out["worker_peak_rss_mb"] = procs.peak_rss_mb(service.workers[0].pid)
    out["web_worker_peak_rss_mb"] = max(procs.peak_rss_mb(p)
                                        for p in service.web_worker_pids())
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the rounds; print each variant's figures and the medians."""
    parser = argparse.ArgumentParser(prog="python -m bench.batching", description=__doc__)
    parser.add_argument("--before", default="HEAD", help="git revision of the before variant")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ingest-seconds", type=float, default=8)
    parser.add_argument("--steady-seconds", type=float, default=8)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--drain", type=int, default=4000)
    args = parser.parse_args(argv)
    database_url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{VAR / 'bench.db'}"
    trees = {"before": extract(args.before), "after": ROOT}
    service = Service(database_url, 2, 1)
    service.prepare()
    service.start()
    results: list[dict[str, Any]] = []
    rate = None
    try:
        warm = write_requests(VAR / "warm.txt", [ours_request(c, {})
                                                 for c in make_comments(300, seed=1)])
        python_load("closed", service.port, warm, count=300, concurrency=4)
        service.settle(60)
        for round_ in range(args.rounds):
            order = ["before", "after"] if round_ % 2 == 0 else ["after", "before"]
            for label in order:
                seed = 1000 + 10 * len(results)
                log(f"round {round_ + 1}: {label}")
                out = variant(service, trees[label], label, rate, args, seed)
                rate = out["half"]["rate"]
                print(json.dumps(out), flush=True)
                results.append(out)
    finally:
        service.stop()

    def median(label: str, *path: str) -> float:
        values = []
        for r in results:
            if r["variant"] == label:
                value: Any = r
                for key in path:
                    value = value[key]
                values.append(value)
        return statistics.median(values)

    keys = [("burst", "rps"), ("burst", "worker_cpu_ms_per_decision"),
            ("burst", "worker_cpu_ms_per_decision_during"),
            ("drain_worker_cpu_ms_per_decision",), ("idle_p50_ms",), ("half", "p99_ms"),
            ("half", "worker_cpu_ms_per_decision"), ("worker_peak_rss_mb",),
            ("web_worker_peak_rss_mb",)]
    summary = {"/".join(k): {label: median(label, *k) for label in trees} for k in keys}
    print(json.dumps({"medians": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
