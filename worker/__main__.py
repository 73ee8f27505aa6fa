"""The scoring worker: ``python -m worker [--burst]``.

It preloads the model once and runs jobs in this same process (RQ's SimpleWorker): the default
forking worker would re-import scikit-learn and the model for every job, under 1 comment/s.
"""

from __future__ import annotations

import argparse
import logging
import sys

from rq import SimpleWorker

from service import logs
from service.config import load_config
from service.queue import connect
from worker import jobs

log = logging.getLogger("worker")


def main(argv: list[str] | None = None) -> int:
    """Run a scoring worker until stopped (or until the queue is empty with --burst)."""
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--name", default=None, help="worker name (default: RQ's)")
    args = parser.parse_args(argv)

    config = load_config()
    logs.configure(config["LOG_LEVEL"], config["JSON_LOGS"])
    redis = connect(config["REDIS_URL"] or "redis://127.0.0.1:6379/0")
    scorer = jobs.configure(config)
    scorer.models.refresh()
    worker = SimpleWorker([config["QUEUE_NAME"]], connection=redis, name=args.name)
    log.info("worker %s on queue %s, model %s", worker.name, config["QUEUE_NAME"],
             scorer.models.version)
    worker.work(burst=args.burst, with_scheduler=True, logging_level=config["LOG_LEVEL"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
