"""Scoring cost in a worker-like process: ``python -m bench.scoring MODEL_DIR``.

Loads the active model as the worker does, then times ``models.explain.score`` on one comment
at a time (the idle case: the probability alone, and with its explanation as the worker stores
it) and on a batch of 1,000 (the drain case). Prints one JSON line.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any

from bench.load import make_comments
from models.artifacts import ArtifactStore
from models.explain import score

SINGLE_CALLS = 500
# The whole run must fit in minutes: stop the single-comment loop early if scoring is slow.
SINGLE_BUDGET_S = 12.0
BATCH = 1000


def _timed(pipeline: Any, samples: list[dict[str, str]], top: int) -> list[float]:
    """Seconds per `score` call, one comment at a time (stops early if it is slow)."""
    times = []
    deadline = time.perf_counter() + SINGLE_BUDGET_S / 2
    for sample in samples:
        t0 = time.perf_counter()
        score(pipeline, [sample], top=top)
        times.append(time.perf_counter() - t0)
        if t0 > deadline:
            break
    return times


def main(argv: list[str] | None = None) -> int:
    """Time single-comment and batch scoring; print the medians as JSON."""
    args = sys.argv[1:] if argv is None else argv
    pipeline, metadata = ArtifactStore(args[0]).load()
    samples = [
        {"content": c.content, "author_name": c.author_name,
         "author_email": c.author_email or "", "author_url": c.author_url or ""}
        for c in make_comments(max(2 * SINGLE_CALLS, BATCH), seed=7)
    ]
    for sample in samples[:5]:  # warm caches and lazy imports
        score(pipeline, [sample])
    single = _timed(pipeline, samples[:SINGLE_CALLS], top=5)  # as the worker stores it
    # The probability alone, on other comments (the same ones would find their words cached).
    bare = _timed(pipeline, samples[SINGLE_CALLS:2 * SINGLE_CALLS], top=0)
    t0 = time.perf_counter()
    score(pipeline, samples[:BATCH])
    batch = time.perf_counter() - t0
    single.sort()
    print(json.dumps({
        "model_version": metadata["version"],
        "single_ms": {"p50": statistics.median(single) * 1e3,
                      "p99": single[int(len(single) * 0.99) - 1] * 1e3},
        "single_score_only_ms": {"p50": statistics.median(bare) * 1e3},
        "single_calls": len(single),
        "batch_1000_s": batch,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
