"""A worker-like process, measured: ``python -m bench.worker_rss MODEL_DIR``.

The scoring worker's `Scorer` on a fresh SQLite database with 500 labelled comments (the
site's reputation) and 2,000 pending ones, decided batch by batch as a job does (rules,
reputation, model, explanations, the UPDATEs and audit rows). Prints one JSON line with the
time per comment and the process's peak RSS, and writes it to bench/results/worker_rss.json.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from bench.load import make_comments
from service.db import Comment, CommentStatus, Label, make_engine, make_sessionmaker
from service.db.migrate import upgrade
from worker.jobs import Scorer

LABELLED, PENDING, BATCH = 500, 2000, 500


def main(argv: list[str] | None = None) -> int:
    """Decide the pending comments; print and write the figures."""
    args = sys.argv[1:] if argv is None else argv
    folder = Path(tempfile.mkdtemp(prefix="worker-rss-"))
    url = f"sqlite:///{folder / 'bench.db'}"
    upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with sessions() as session:
        for i, c in enumerate(make_comments(LABELLED + PENDING, seed=3)):
            label = (Label.SPAM if i % 3 == 0 else Label.HAM) if i < LABELLED else None
            status = (CommentStatus.PENDING if label is None else
                      CommentStatus.SPAM if label == Label.SPAM else CommentStatus.PUBLISHED)
            session.add(Comment(post="p", author_name=c.author_name, author_url=c.author_url,
                                author_email=c.author_email, content=c.content,
                                status=status, label=label))
        session.commit()
    scorer = Scorer.from_config({"DATABASE_URL": url, "MODEL_DIR": args[0],
                                 "SCORE_BATCH_SIZE": BATCH, "SPAM_THRESHOLD_LOW": None,
                                 "SPAM_THRESHOLD_HIGH": None})
    started, decided = time.perf_counter(), 0
    while True:
        done, read = scorer.decide_batch()
        decided += len(done)
        if read < BATCH:
            break
    elapsed = time.perf_counter() - started
    result = {"model_version": scorer.models.version, "decided": decided,
              "ms_per_comment_with_db": round(elapsed / max(decided, 1) * 1e3, 3),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    out = Path(__file__).resolve().parent / "results" / "worker_rss.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result), encoding="utf-8")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
