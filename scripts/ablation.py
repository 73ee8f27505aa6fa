"""Which features bought what: the starter model trained with groups of cues switched off,
each decided as on a new blog (default rules) on the evaluation sets.

    python scripts/ablation.py [--sets models/eval/dev.jsonl models/eval/holdout.jsonl]
                               [--out bench/results/ablation.json]

A switched-off cue group reads as zero at training and scoring alike (so its columns carry
no weight). "+ author host words" puts back the branch that learned ``com``/``blog`` as ham.
Prints one JSON line and writes it to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models import features  # noqa: E402
from models.data import load_paths, starter_corpus  # noqa: E402
from models.evaluate import default_rules_policy, evaluate_model  # noqa: E402
from models.train import train  # noqa: E402

GROUPS: dict[str, tuple[str, ...]] = {
    "author name and website cues": ("author_name_keywords", "author_site_commercial",
                                     "author_site_odd"),
    "link-kind cues": ("shortener_link", "bare_ip_link", "tracking_link", "obfuscated_link",
                       "author_site_in_text", "commercial_link", "reference_link"),
    "promotion cues": ("business_voice", "offer", "discount_code", "messenger",
                       "recovery_pitch"),
}
ALL_NEW = tuple(name for group in GROUPS.values() for name in group)


@contextmanager
def without(names: tuple[str, ...]) -> Any:
    """Cues ``names`` read as zero inside the block (training and scoring both)."""
    original = features._cue_values
    drop = [features.CUE_NAMES.index(n) for n in names]

    def zeroed(*args: str) -> tuple[float, ...]:
        values = list(original(*args))
        for index in drop:
            values[index] = 0.0
        return tuple(values)

    features._cue_values = zeroed  # type: ignore[assignment]
    try:
        yield
    finally:
        features._cue_values = original


def run(sets: list[str]) -> dict[str, Any]:
    """Each variant's cross-validated and evaluation-set outcomes."""
    variants: list[tuple[str, tuple[str, ...], dict[str, Any]]] = [
        ("full", (), {}),
        *((f"without {group}", names, {}) for group, names in GROUPS.items()),
        ("without any new cue", ALL_NEW, {}),
        ("full + author host words", (), {"author_host_words": True}),
    ]
    out: dict[str, Any] = {}
    data = {path: load_paths([path]) for path in sets}
    for name, drop, params in variants:
        started = time.monotonic()
        with without(drop):
            pipeline, metadata = train(starter_corpus(), **params)
            row: dict[str, Any] = {"cv": {k: metadata["cv_metrics"][k] for k in (
                "mcc", "ham_flagged", "spam_published", "auto_decided")}}
            for path, examples in data.items():
                result = evaluate_model(pipeline, metadata, examples, default_rules_policy())
                row[Path(path).stem] = result["outcome"]
        row["seconds"] = round(time.monotonic() - started, 1)
        out[name] = row
        print(name, json.dumps(row), file=sys.stderr)
    return out


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sets", nargs="+", default=["models/eval/dev.jsonl",
                                                      "models/eval/holdout.jsonl"])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "ablation.json"))
    args = parser.parse_args()
    result = run(args.sets)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
