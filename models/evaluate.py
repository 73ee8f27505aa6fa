"""Evaluation: a stored model on labelled data, or leave-one-group-out training runs.

    python -m models.evaluate --data FILE_OR_FOLDER ... [--model VERSION]
    python -m models.evaluate --data FOLDER --leave-one-group-out [--with-starter]

The last line of stdout is one JSON object with the metrics. Evaluating a stored model never
trains; leave-one-group-out trains on the other groups only (a group is a file, e.g. a video).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from models.artifacts import ArtifactStore
from models.data import Example, deduplicate, load_paths, starter_corpus
from models.evaluation import all_metrics
from models.explain import score
from models.policy import Thresholds
from models.train import train


def evaluate_model(pipeline: Any, metadata: dict[str, Any], examples: Sequence[Example]
                   ) -> dict[str, Any]:
    """Metrics of a fitted pipeline on ``examples`` at its own cut and thresholds."""
    examples = deduplicate(examples)
    scores = _scores(pipeline, examples)
    thresholds = Thresholds(**metadata["thresholds"])
    metrics = all_metrics([e.label for e in examples], scores, thresholds,
                          cut=float(metadata.get("cut", 0.5)))
    return {"model": metadata.get("version"), **metrics}


def _scores(pipeline: Any, examples: Sequence[Example]) -> list[float]:
    return [v.spam_score for v in score(pipeline, [e.features() for e in examples], top=0)]


def leave_one_group_out(examples: Sequence[Example], extra_training: Sequence[Example] = ()
                        ) -> dict[str, Any]:
    """Train on all groups but one (plus ``extra_training``), test on that one, for each group."""
    examples = deduplicate(examples)
    groups = sorted({e.group for e in examples})
    per_group: dict[str, Any] = {}
    labels: list[int] = []
    scores: list[float] = []
    bands: list[str] = []
    for held_out in groups:
        test = [e for e in examples if e.group == held_out]
        pipeline, metadata = train([e for e in examples if e.group != held_out]
                                   + list(extra_training))
        group_scores = _scores(pipeline, test)
        thresholds = Thresholds(**metadata["thresholds"])
        per_group[held_out] = all_metrics([e.label for e in test], group_scores, thresholds)
        labels += [e.label for e in test]
        scores += group_scores
        bands += [thresholds.band(s) for s in group_scores]
    pooled = all_metrics(labels, scores, Thresholds(0.5, 0.5))
    # Band metrics pooled from each fold's own thresholds.
    y = np.array(labels)
    b = np.array(bands)
    pooled.update({
        "ham_flagged": round(float(np.mean(b[y == 0] == "spam")), 4),
        "spam_published": round(float(np.mean(b[y == 1] == "published")), 4),
        "auto_decided": round(float(np.mean(b != "held")), 4),
    })
    return {"mode": "leave-one-group-out", "groups": per_group, **pooled}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; prints the metrics as JSON on the last line."""
    from service.config import load_config

    parser = argparse.ArgumentParser(prog="python -m models.evaluate", description=__doc__)
    parser.add_argument("--data", nargs="+", required=True, help="labelled files or folders")
    parser.add_argument("--model", default=None, help="model version (default: the active one)")
    parser.add_argument("--model-dir", default=None, help="artifact store (default: MODEL_DIR)")
    parser.add_argument("--leave-one-group-out", action="store_true")
    parser.add_argument("--with-starter", action="store_true",
                        help="with --leave-one-group-out: add the starter corpus to training")
    args = parser.parse_args(argv)
    examples = load_paths([p for chunk in args.data for p in chunk.split()])
    if args.leave_one_group_out:
        result = leave_one_group_out(examples, starter_corpus() if args.with_starter else ())
    else:
        store = ArtifactStore(args.model_dir or load_config()["MODEL_DIR"])
        pipeline, metadata = store.load(args.model)
        result = evaluate_model(pipeline, metadata, examples)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
