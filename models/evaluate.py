"""Evaluation: a stored model on labelled data, or leave-one-group-out training runs.

    python -m models.evaluate --data FILE_OR_FOLDER ... [--model VERSION] [--rules none]
    python -m models.evaluate --data FOLDER --leave-one-group-out [--with-starter]

Evaluating a stored model never trains. Each comment is decided as the worker decides it on a
new blog (the model's band plus the default rules: two links or more hold a comment, a very
sure model files it as spam; ``--rules none``: the model's band alone), and the outcome is
reported per kind of comment (the ``kind`` field of an evaluation set, models/eval/): spam
published, genuine comments filed as spam or held. A report for a blog's owner is written
beside (``--report``); the last line of stdout is one JSON object with the metrics.
Leave-one-group-out trains on the other groups only (a group is a file, e.g. a video).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.artifacts import ArtifactStore
from models.data import Example, deduplicate, load_paths, own_data, starter_corpus
from models.evaluation import all_metrics
from models.explain import score
from models.policy import Band, Thresholds
from models.train import train

# How a comment is decided from its band and score: the model's band alone by default; the
# command line passes the worker's rules (`service.rules.outcome`).
Policy = Callable[[Example, str, float], str]


def _band_only(example: Example, band: str, spam_score: float) -> str:
    return band


def evaluate_model(pipeline: Any, metadata: dict[str, Any], examples: Sequence[Example],
                   policy: Policy | None = None) -> dict[str, Any]:
    """Metrics of a fitted pipeline on ``examples`` at its own cut and thresholds, and the
    outcome of each kind of comment under ``policy`` (default: the model's band alone)."""
    examples = deduplicate(examples)
    scores = _scores(pipeline, examples)
    thresholds = Thresholds(**metadata["thresholds"])
    metrics = all_metrics([e.label for e in examples], scores, thresholds,
                          cut=float(metadata.get("cut", 0.5)))
    decide = policy or _band_only
    statuses = [decide(e, thresholds.band(s), s) for e, s in zip(examples, scores, strict=True)]
    return {"model": metadata.get("version"), **metrics,
            **outcomes(examples, statuses), "thresholds": metadata["thresholds"]}


def outcomes(examples: Sequence[Example], statuses: Sequence[str]) -> dict[str, Any]:
    """What happened to the comments (after the rules, when the policy has them): shares of
    genuine comments published, held and filed as spam, of spam published, of comments
    decided without a moderator, and the same counts for each kind of comment."""
    pairs = list(zip(examples, statuses, strict=True))
    ham = [s for e, s in pairs if e.label == 0]
    spam = [s for e, s in pairs if e.label == 1]

    def share(part: list[str], status: str) -> float | None:
        return round(part.count(status) / len(part), 4) if part else None

    kinds: dict[str, dict[str, Any]] = {}
    for example, status in pairs:
        kind = kinds.setdefault(example.kind or "(no kind)", {
            "label": "spam" if example.label == 1 else "ham", "n": 0,
            Band.PUBLISH: 0, Band.HOLD: 0, Band.SPAM: 0})
        kind["n"] += 1
        kind[status] += 1
    return {"outcome": {
        "ham_to_spam": share(ham, Band.SPAM), "ham_held": share(ham, Band.HOLD),
        "ham_published": share(ham, Band.PUBLISH), "spam_published": share(spam, Band.PUBLISH),
        "spam_held": share(spam, Band.HOLD), "spam_to_spam": share(spam, Band.SPAM),
        "auto_decided": round(1 - list(statuses).count(Band.HOLD) / len(pairs), 4)
        if pairs else None,
        "n_ham": len(ham), "n_spam": len(spam),
    }, "kinds": dict(sorted(kinds.items(), key=lambda item: (item[1]["label"], item[0])))}


def owner_summary(result: dict[str, Any]) -> str:
    """One sentence a blog's owner reads first: per 1,000 genuine and 1,000 spam comments."""
    out = result["outcome"]

    def per_thousand(value: float | None) -> str:
        return "-" if value is None else f"{value * 1000:,.0f}"

    return (f"Of 1,000 genuine comments, {per_thousand(out['ham_to_spam'])} would go to spam "
            f"and {per_thousand(out['ham_held'])} would wait for a moderator; of 1,000 spam, "
            f"{per_thousand(out['spam_published'])} would be published; "
            f"{(out['auto_decided'] or 0) * 100:.1f} % decided without a moderator.")


def kinds_table(result: dict[str, Any]) -> list[str]:
    """Markdown rows: each kind of comment and what happened to it."""
    rows = ["| kind | genuine/spam | n | published | held | filed as spam | wrong |",
            "|---|---|---|---|---|---|---|"]
    for kind, row in result["kinds"].items():
        wrong = (row[Band.PUBLISH] if row["label"] == "spam" else row[Band.SPAM])
        wrong_text = (f"{wrong} published" if row["label"] == "spam" else
                      f"{wrong} to spam, {row[Band.HOLD]} held")
        rows.append(f"| {kind} | {row['label']} | {row['n']} | {row[Band.PUBLISH]} | "
                    f"{row[Band.HOLD]} | {row[Band.SPAM]} | {wrong_text} |")
    return rows


def report_text(result: dict[str, Any], data: Sequence[str], policy_name: str) -> str:
    """The evaluation report as Markdown: the owner's summary, the thresholds, the details."""
    thresholds = result["thresholds"]
    details = {k: result.get(k) for k in ("n", "n_spam", "mcc", "f1", "precision", "recall",
                                           "roc_auc", "pr_auc", "confusion", "ham_flagged",
                                           "spam_published", "auto_decided")}
    return "\n".join([
        f"# Model {result['model']} on {', '.join(data)}", "",
        owner_summary(result), "",
        "## What happened to each kind of comment", "",
        f"Decided {policy_name}.", "", *kinds_table(result), "",
        "## Thresholds", "",
        f"Published below a spam score of {thresholds['low']}, filed as spam above "
        f"{thresholds['high']}, held for a moderator in between.", "",
        "## Machine-learning details (the model's band alone, before any rule)", "",
        "```json", json.dumps(details, indent=2), "```", ""])


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
        others = [e for e in examples if e.group != held_out]
        # Beside the starter corpus, the other groups are the site's own labels.
        pipeline, metadata = train(own_data(others) + list(extra_training) if extra_training
                                   else others)
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
    from service.config import VAR_DIR, load_config

    parser = argparse.ArgumentParser(prog="python -m models.evaluate", description=__doc__)
    parser.add_argument("--data", nargs="+", required=True, help="labelled files or folders")
    parser.add_argument("--model", default=None, help="model version (default: the active one)")
    parser.add_argument("--model-dir", default=None, help="artifact store (default: MODEL_DIR)")
    parser.add_argument("--rules", choices=("default", "none"), default="default",
                        help="decide with a new blog's default rules (default) or the band alone")
    parser.add_argument("--blog-lang", default="",
                        help="with the default rules: the blog's language as WordPress sends "
                             "it (e.g. en_US), for the foreign-script hold")
    parser.add_argument("--report", default=None,
                        help="where to write the report (default: var/reports/...md)")
    parser.add_argument("--leave-one-group-out", action="store_true")
    parser.add_argument("--with-starter", action="store_true",
                        help="with --leave-one-group-out: add the starter corpus to training")
    args = parser.parse_args(argv)
    data = [p for chunk in args.data for p in chunk.split()]
    if not data:
        print("make evaluate needs DATA: a labelled file or folder, e.g. "
              'DATA="models/eval/holdout.jsonl"', file=sys.stderr)
        return 2
    try:
        examples = load_paths(data)
    except (FileNotFoundError, ValueError, UnicodeDecodeError) as exc:
        print(f"cannot read DATA: {exc}", file=sys.stderr)
        return 2
    if args.leave_one_group_out:
        result = leave_one_group_out(examples, starter_corpus() if args.with_starter else ())
        print(json.dumps(result))
        return 0
    from models.artifacts import ArtifactError

    store = ArtifactStore(args.model_dir or load_config()["MODEL_DIR"])
    try:
        pipeline, metadata = store.load(args.model)
    except ArtifactError as exc:
        print(f"no model to evaluate: {exc} (make train makes one)", file=sys.stderr)
        return 2
    policy, policy_name = None, "by the model's band alone (--rules none)"
    if args.rules == "default":
        policy = default_rules_policy(args.blog_lang)
        policy_name = ("as the worker decides on a new blog: the default rules (two links or "
                       "more hold a comment, a model at least 0.99 sure files it as spam), "
                       "then the model's band")
        if args.blog_lang:
            policy_name += (f", with the blog's language {args.blog_lang} (a comment mostly "
                            "in another script is held)")
    result = evaluate_model(pipeline, metadata, examples, policy)
    name = "-".join(Path(p).stem for p in data)[:80]
    report = Path(args.report) if args.report else (
        VAR_DIR / "reports" / f"evaluate-{result['model']}-{name}.md")
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(report_text(result, data, policy_name), encoding="utf-8")
    print(owner_summary(result))
    print("\n".join(kinds_table(result)))
    print(f"report: {report}")
    print(json.dumps(result))
    return 0


def default_rules_policy(blog_lang: str = "") -> Policy:
    """The worker's decision on a new blog: `service.rules.outcome` with no admin rules (and,
    given ``blog_lang``, the blog engine's language signal, `service.blog_signals`)."""
    from types import SimpleNamespace

    from service.blog_signals import blog_signal_hits
    from service.rules import RuleSet, outcome

    rules = RuleSet.from_rules([])

    def decide(example: Example, band: str, spam_score: float) -> str:
        comment = SimpleNamespace(content=example.content, author_name=example.author_name,
                                  author_email=example.author_email,
                                  author_url=example.author_url, ip=None, post="",
                                  reasons=None)
        hits = rules.check(comment)  # type: ignore[arg-type]
        if blog_lang:
            hits += blog_signal_hits({"blog_lang": blog_lang}, example.content, True)
        return outcome(band, spam_score, hits, rules.trusted_spam_ceiling)[0]

    return decide


if __name__ == "__main__":
    sys.exit(main())
