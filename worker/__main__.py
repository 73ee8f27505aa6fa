"""The scoring worker: ``python -m worker [--burst]``; the delivery worker:
``python -m worker --deliveries`` (webhook deliveries and alert e-mails, on a queue of their
own, so that a slow receiver never delays a verdict; it loads no model).

It preloads the model once and runs jobs in this same process (RQ's SimpleWorker): the default
forking worker would re-import scikit-learn and the model for every job, under 1 comment/s.
A reconciler thread queues again any pending comment whose job was lost (Redis was down when
it was submitted, or a worker died mid-job). If Redis goes away, the worker waits for it.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from sqlalchemy.exc import SQLAlchemyError

from service import logs, privacy, webhooks
from service.config import load_config
from service.queue import connect, mark_worker_seen
from worker import jobs

log = logging.getLogger("worker")

# How often the reconciler looks for lost comments, and the lock that lets one worker do it
# (a round is one indexed count: a comment whose job died with its worker's machine waits
# 2-3 s, not the 5-10 s of a 5 s round, measured in `make cluster-drill`); unsent webhook
# deliveries are looked for less often.
RECONCILE_EVERY_SECONDS = 1
RECONCILE_LOCK = "scoring:reconciler"
REQUEUE_DELIVERIES_EVERY_SECONDS = 5
REQUEUE_DELIVERIES_LOCK = "webhooks:requeue-unsent"
ANONYMISE_EVERY_SECONDS = 3600
ANONYMISE_LOCK = "privacy:anonymise-ips"


def reconcile_forever(scorer: jobs.Scorer, redis: Redis, config: dict[str, Any],
                      stop: threading.Event) -> None:
    """Every second, one worker of all of them re-queues lost pending comments; every few
    seconds, unsent webhook deliveries; every hour, one of them anonymises the IPs past their
    retention period."""
    queue = Queue(config["QUEUE_NAME"], connection=redis)
    while not stop.wait(RECONCILE_EVERY_SECONDS):
        try:
            mark_worker_seen(redis, config["QUEUE_NAME"])  # what /readyz looks for
            if redis.set(RECONCILE_LOCK, 1, nx=True, px=RECONCILE_EVERY_SECONDS * 900):
                jobs.reconcile(scorer, queue)
            if redis.set(REQUEUE_DELIVERIES_LOCK, 1, nx=True,
                         ex=REQUEUE_DELIVERIES_EVERY_SECONDS - 1):
                with scorer.sessions() as session:
                    webhooks.requeue_unsent(session, webhooks.queue_for(redis, config))
            if redis.set(ANONYMISE_LOCK, 1, nx=True, ex=ANONYMISE_EVERY_SECONDS):
                with scorer.sessions() as session:
                    privacy.anonymise_old_ips(session, config["IP_RETENTION_DAYS"])
        except (RedisError, SQLAlchemyError) as error:
            log.warning("reconciler skipped a round: %s", error.__class__.__name__)
        except Exception:
            # Never let the thread die: it is what rescues comments whose jobs were lost.
            log.exception("reconciler round failed")


def lower_priority(nice: int) -> None:
    """Give this process (and the threads it starts later) ``nice`` lower CPU priority, and
    its session's autogroup too: on Linux with autogroups (the default on desktops and many
    servers), processes in different sessions share the CPU as groups, whatever their own
    nice values, so a worker that leads its own session (a container's, or one started with
    ``setsid``) would otherwise still take half the CPU from the web in a burst (measured:
    docs/PERFORMANCE.md). A worker in a shared session leaves the group alone. Best effort."""
    if nice <= 0:
        return
    try:
        os.nice(nice)
    except OSError as error:
        log.warning("could not lower the worker's priority: %s", error)
    if os.getsid(0) != os.getpid():
        return  # the session (and its group) is shared, with the web perhaps: nice suffices
    autogroup = Path("/proc/self/autogroup")
    try:
        if autogroup.exists():
            autogroup.write_text(str(min(nice, 19)))
    except OSError as error:  # no permission, or autogroups off: the process's nice applies
        log.debug("autogroup priority unchanged: %s", error)


# prctl(2): the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1


def children_die_with_this_process() -> None:
    """Make every process this one forks (RQ's scheduler, which a worker forks when it
    starts) get SIGTERM when this process dies. Without it a worker killed with SIGKILL
    (the OOM killer, a supervisor's last resort) leaves its scheduler running as an orphan
    that keeps the scheduler lock and the old configuration (seen in the tests: a comment
    queued after it was left pending). Linux only; elsewhere nothing changes."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getpid()

    def in_child() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(0)

    os.register_at_fork(after_in_child=in_child)


def main(argv: list[str] | None = None) -> int:
    """Run a scoring worker until stopped (or until the queue is empty with --burst)."""
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--name", default=None, help="worker name (default: RQ's)")
    parser.add_argument("--deliveries", action="store_true",
                        help="run the delivery queue (WEBHOOK_QUEUE_NAME) instead of scoring")
    args = parser.parse_args(argv)

    config = load_config()
    logs.configure(config["LOG_LEVEL"], config["JSON_LOGS"])
    children_die_with_this_process()
    queue_name = config["WEBHOOK_QUEUE_NAME"] if args.deliveries else config["QUEUE_NAME"]
    if not args.deliveries:
        lower_priority(config["SCORING_NICE"])  # before any thread starts: they inherit it
    redis = connect(config["REDIS_URL"] or "redis://127.0.0.1:6379/0")
    scorer = jobs.configure(config)
    if not args.deliveries:
        try:
            scorer.models.refresh()
        except SQLAlchemyError as error:  # the first batch tries again
            log.warning("model not loaded yet: database unreachable (%s)",
                        error.__class__.__name__)
    stop = threading.Event()
    if not args.burst and not args.deliveries:
        with contextlib.suppress(RedisError):
            mark_worker_seen(redis, config["QUEUE_NAME"])
        threading.Thread(target=reconcile_forever, name="reconciler", daemon=True,
                         args=(scorer, redis, config, stop)).start()
    try:
        while True:
            worker: SimpleWorker | None = None
            try:
                # Built inside the loop: RQ talks to Redis already when a worker is created.
                worker = SimpleWorker([queue_name], connection=redis, name=args.name)
                log.info("worker %s on queue %s, model %s", worker.name, queue_name,
                         scorer.models.version)
                worker.work(burst=args.burst, with_scheduler=True,
                            logging_level=config["LOG_LEVEL"])
            except RedisError as error:
                log.error("lost Redis (%s); retrying", error.__class__.__name__)
            if args.burst or (worker is not None and worker._shutdown_requested_date is not None):
                return 0
            # The worker quit on an error (typically Redis going away mid-job): start over.
            time.sleep(2)
    finally:
        stop.set()


if __name__ == "__main__":
    sys.exit(main())
