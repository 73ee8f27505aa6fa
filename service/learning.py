"""The learning loop: retrain from moderators' labels, evaluate against the active model,
promote through a gate, keep the registry. Runs in the CLI, never in a web worker: the
scikit-learn side (`models.train`, `models.report`) is imported inside the functions."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.artifacts import ArtifactError
from models.data import HAM, SPAM, Example, deduplicate, load_paths, own_data, starter_corpus
from models.policy import MAX_HAM_AS_SPAM, MAX_SPAM_PUBLISHED, Thresholds
from service.db import Comment, CommentImport, ModelVersion
from service.db.model_store import ModelStore
from service.db.types import utcnow

log = logging.getLogger(__name__)

# The newest site labels are held out (time-ordered) once there are this many of them...
HOLDOUT_MIN_LABELS = 40
# ...this share of them, and at least this many of each class, so that MCC means something.
HOLDOUT_SHARE = 0.25
HOLDOUT_MIN_PER_CLASS = 5
# The candidate may be this much below the active model's MCC (noise) and still pass.
MCC_TOLERANCE = 0.01
# A candidate filing more genuine comments as spam than chance allows at this level is refused
# (`_more_ham_flagged`): a strict level for a safety check (at 0.005 of genuine comments, at
# most 1 of 65, 2 of 200, 7 of 1,000 pass).
HAM_FLAGGED_SIGNIFICANCE = 0.2
# Artifacts without a creation time are older than any label.
EPOCH = "1970-01-01T00:00:00+00:00"


def site_examples_with_times(session: Session) -> tuple[list[Example], list[Any]]:
    """Every comment a moderator (or a site, via submit-spam/ham, or an import of the blog's
    history) labelled, oldest decision first, and when each label reached this database:
    its decision's time, or for an imported one the time of the import (a model trained
    before the import never saw it, however old the comment)."""
    rows = session.execute(
        select(Comment, CommentImport.imported_at)
        .outerjoin(CommentImport, CommentImport.comment_id == Comment.id)
        .where(Comment.label.is_not(None))
        .order_by(Comment.decided_at, Comment.id)
    ).all()
    examples = [
        Example(content=c.content, label=SPAM if c.label == "spam" else HAM,
                author_name=c.author_name or "", author_email=c.author_email or "",
                author_url=c.author_url or "", group="site")
        for c, _ in rows
    ]
    return examples, [imported_at or c.decided_at for c, imported_at in rows]


def site_examples(session: Session) -> list[Example]:
    """Every labelled comment, oldest decision first."""
    return site_examples_with_times(session)[0]


def register(session: Session, store: ModelStore, version: str, *, state: str,
             promoted_by: str | None = None, gate: str | None = None) -> ModelVersion:
    """Insert or update a registry row from the artifact's metadata."""
    metadata = store.metadata(session, version)
    row = session.scalar(select(ModelVersion).where(ModelVersion.version == version))
    if row is None:
        row = ModelVersion(
            version=version, data_sha256=metadata["data"]["sha256"],
            n_examples=metadata["data"]["n"], thresholds=metadata["thresholds"],
            metrics={"cv": metadata.get("cv_metrics", {}),
                     "evaluation": metadata.get("evaluation", {})},
        )
        session.add(row)
    row.state = state
    if gate is not None:
        row.gate = gate
    if state == "promoted":
        row.promoted_at, row.promoted_by = utcnow(), promoted_by
    return row


def sync_registry(session: Session, store: ModelStore) -> None:
    """Register versions stored outside the loop (make train, an import) and mark the active
    one."""
    active = store.active_version(session)
    known = set(session.scalars(select(ModelVersion.version)))
    for version in store.versions(session):
        if version not in known:
            register(session, store, version,
                     state="promoted" if version == active else "candidate",
                     promoted_by="make train" if version == active else None)
    for row in session.scalars(select(ModelVersion)):
        row.active = row.version == active
    session.flush()


def activate(session: Session, store: ModelStore, version: str, actor: str) -> None:
    """Make ``version`` active (workers switch on their next job) and record who did it."""
    previous = store.active_version(session)
    store.activate(session, version, actor)
    if previous and previous != version:
        old = session.scalar(select(ModelVersion).where(ModelVersion.version == previous))
        if old is not None:
            old.state, old.active = "retired", False
    row = register(session, store, version, state="promoted", promoted_by=actor)
    row.active = True


def gate_refusal(session: Session, store: ModelStore, version: str) -> str | None:
    """Why the retrain gate refused ``version`` (its reason), or None if it did not: a
    registry row in state "refused", or a retrain's metadata saying it did not pass."""
    row = session.scalar(select(ModelVersion).where(ModelVersion.version == version))
    try:
        evaluation = store.metadata(session, version).get("evaluation") or {}
    except ArtifactError:
        evaluation = {}
    if (row is not None and row.state == "refused") or evaluation.get("passed") is False:
        return (row.gate if row is not None and row.gate else evaluation.get("gate")) \
            or "refused"
    return None


def rollback(session: Session, store: ModelStore, actor: str) -> str:
    """Re-activate the previously promoted version; returns it."""
    sync_registry(session, store)
    active = store.active_version(session)
    earlier = session.scalars(
        select(ModelVersion).where(ModelVersion.promoted_at.is_not(None),
                                   ModelVersion.version != active)
        .order_by(ModelVersion.promoted_at.desc())
    ).first()
    if earlier is None:
        raise ArtifactError("no earlier promoted model to roll back to")
    activate(session, store, earlier.version, actor)
    return earlier.version


@dataclass
class RetrainResult:
    """What a retrain did and why."""

    version: str
    promoted: bool
    gate: str
    metrics: dict[str, Any]
    report: Path
    evaluation: str
    extra: dict[str, Any] = field(default_factory=dict)


def _split_holdout(site: list[Example]) -> tuple[list[Example], list[Example]]:
    """The newest site labels as a time-ordered hold-out, when there are enough of them."""
    if len(site) < HOLDOUT_MIN_LABELS:
        return site, []
    size = max(int(len(site) * HOLDOUT_SHARE), 2 * HOLDOUT_MIN_PER_CLASS)
    older, newest = site[:-size], site[-size:]
    labels = [e.label for e in newest]
    if min(labels.count(HAM), labels.count(SPAM)) < HOLDOUT_MIN_PER_CLASS:
        return site, []
    return older, newest


def _key(example: Example) -> str:
    return " ".join(example.content.lower().split()) + "\x00" + example.author_url.lower()


def _enough(labels: Sequence[int]) -> bool:
    return min(labels.count(HAM), labels.count(SPAM)) >= HOLDOUT_MIN_PER_CLASS


def _scores(pipeline: Any, examples: Sequence[Example]) -> list[float]:
    from models.explain import score

    return [v.spam_score for v in score(pipeline, [e.features() for e in examples], top=0)]


def gate_verdict(candidate: dict[str, Any], active: dict[str, Any]) -> tuple[bool, str]:
    """Whether a candidate may replace the active model, and why, from their metrics on the
    same comparison set: MCC not lower (within `MCC_TOLERANCE`), no more spam published (what
    readers see: refused however the MCC compares), and no more ham filed as spam beyond
    chance (`_more_ham_flagged`)."""
    mcc_ok = candidate["mcc"] >= active["mcc"] - MCC_TOLERANCE
    ham_ok = not _more_ham_flagged(candidate, active)
    spam_ok = (candidate["spam_published"] or 0) <= (active["spam_published"] or 0)
    return mcc_ok and ham_ok and spam_ok, (
        f"MCC {candidate['mcc']} vs active {active['mcc']} (tolerance {MCC_TOLERANCE}): "
        f"{'ok' if mcc_ok else 'worse'}; ham flagged {candidate['ham_flagged']} vs "
        f"{active['ham_flagged']}: {'ok' if ham_ok else 'worse'}; spam published "
        f"{candidate['spam_published']} vs {active['spam_published']}: "
        f"{'ok' if spam_ok else 'worse'}")


def _more_ham_flagged(candidate: dict[str, Any], active: dict[str, Any]) -> bool:
    """Whether the candidate files more genuine comments as spam than the active model, by
    more than chance explains at the policy's own limit.

    The site's labels are mostly the held queue, which the active model held by definition:
    it filed none of them as spam, so "no more than the active model" would refuse any
    candidate that files one borderline genuine comment of them as spam, and refuse it again
    at every retrain as the labels grow. So the candidate's count is compared with what a
    model that meets the limit (`MAX_HAM_AS_SPAM`, or the active model's rate if higher)
    would reach by chance on this many genuine comments: refused when that is less likely
    than `HAM_FLAGGED_SIGNIFICANCE` (one-sided binomial test). Measured on `make simulate`'s
    site (65 genuine comments among its first 100 labels): a candidate that filed 1 of them
    as spam (p = 0.28) passes; 2 (p = 0.04) would not."""
    from scipy.stats import binom

    n_ham = candidate["n"] - candidate["n_spam"]
    if (candidate["ham_flagged"] or 0) <= (active["ham_flagged"] or 0) or not n_ham:
        return False
    flagged = round(candidate["ham_flagged"] * n_ham)
    rate = max(active["ham_flagged"] or 0, MAX_HAM_AS_SPAM)
    return float(binom.sf(flagged - 1, n_ham, rate)) < HAM_FLAGGED_SIGNIFICANCE


def _owner_notes(candidate: dict[str, Any] | None, active: dict[str, Any] | None,
                 active_version: str | None, compared_on: int | None = None) -> list[str]:
    """What a blog's owner reads first: per 1,000 genuine and 1,000 spam comments of the
    comparison set (``compared_on`` comments: a small set says little), for the new model
    and the one in use."""
    def sentence(who: str, metrics: dict[str, Any]) -> str:
        def per_thousand(key: str) -> str:
            value = metrics.get(key)
            return "-" if value is None else f"{value * 1000:,.0f}"
        return (f"{who}: of 1,000 genuine comments, {per_thousand('ham_flagged')} would go to "
                f"spam; of 1,000 spam, {per_thousand('spam_published')} would be published; "
                f"{(metrics.get('auto_decided') or 0) * 100:.1f} % decided without a moderator.")

    notes = []
    if compared_on is not None and (candidate is not None or active is not None):
        notes.append(f"Measured on {compared_on:,} labelled comments the models did not learn "
                     "from" + (" (few: read these figures as a rough guide)." if compared_on
                               < 200 else "."))
    if candidate is not None:
        notes.append(sentence("The new model", candidate))
    if active is not None:
        notes.append(sentence(f"The model in use ({active_version})", active))
    return notes


def retrain(
    session: Session,
    store: ModelStore,
    *,
    data: Sequence[str] = (),
    actor: str = "make retrain",
    force: bool = False,
    max_ham_as_spam: float = MAX_HAM_AS_SPAM,
    max_spam_published: float = MAX_SPAM_PUBLISHED,
    params: dict[str, Any] | None = None,
) -> RetrainResult:
    """Train on starter corpus + site labels + ``data``; compare with the active model on data
    neither was trained on; promote if the gate passes (or ``force``). The caller commits.

    The comparison set, in order of preference:
    1. a time-ordered hold-out: the newest site labels (the candidate is trained without
       them), when there are enough of both classes;
    2. labelled data the active model never saw (site labels newer than it, files it was not
       trained on), the candidate scored out-of-fold;
    3. nothing to compare on: not promoted without ``force``.
    Stratified cross-validation metrics of the candidate are reported in every case."""
    from models.evaluation import all_metrics
    from models.report import write_report
    from models.train import train, train_with_scores

    params = params or {}
    site, decided = site_examples_with_times(session)
    site, extra = own_data(site), own_data(load_paths(data))
    sync_registry(session, store)
    active = store.active_version(session)
    active_model = store.load(session, active) if active else None
    trained = train_with_scores(starter_corpus() + extra + site,
                                sources=["starter-corpus", "site-labels", *data],
                                max_ham_as_spam=max_ham_as_spam,
                                max_spam_published=max_spam_published, **params)
    metadata, thresholds = trained.metadata, Thresholds(**trained.metadata["thresholds"])
    cv_labels = [e.label for e in trained.examples]
    cv_metrics = metadata["cv_metrics"]
    sections = [{"name": "candidate, cross-validated", "metrics": cv_metrics,
                 "labels": cv_labels, "scores": trained.oof_scores,
                 "low": thresholds.low, "high": thresholds.high}]

    older, holdout = _split_holdout(site)
    candidate_scores: list[float] = []
    eval_set: list[Example] = []
    candidate_thresholds = thresholds
    if holdout:
        eval_set = deduplicate(holdout)
        held = {_key(e) for e in eval_set}
        candidate, candidate_meta = train(
            [e for e in deduplicate(starter_corpus() + extra + older) if _key(e) not in held],
            max_ham_as_spam=max_ham_as_spam, max_spam_published=max_spam_published, **params)
        candidate_scores = _scores(candidate, eval_set)
        candidate_thresholds = Thresholds(**candidate_meta["thresholds"])
        evaluation = f"time-ordered hold-out: the newest {len(eval_set)} site labels"
    elif active_model is not None:
        active_meta = active_model[1]
        since = datetime.fromisoformat(active_meta.get("created_at") or EPOCH)
        seen_sources = set(active_meta.get("data", {}).get("sources", []))
        unseen = {_key(e) for e, when in zip(site, decided, strict=True)
                  if when is None or when > since}
        for path in data:
            if path not in seen_sources:
                unseen |= {_key(e) for e in load_paths([path])}
        index = [i for i, e in enumerate(trained.examples) if _key(e) in unseen]
        if _enough([trained.examples[i].label for i in index]):
            eval_set = [trained.examples[i] for i in index]
            candidate_scores = [trained.oof_scores[i] for i in index]
            evaluation = (f"{len(eval_set)} labelled comments the active model never saw, "
                          "the candidate scored out-of-fold")
        else:
            evaluation = ("too few labelled comments the active model never saw "
                          f"({len(index)}; {HOLDOUT_MIN_PER_CLASS} of each class needed)")
    else:
        evaluation = "no active model to compare with"

    labels = [e.label for e in eval_set]
    candidate_metrics: dict[str, Any] | None = None
    active_metrics: dict[str, Any] | None = None
    if eval_set:
        candidate_metrics = all_metrics(labels, candidate_scores, candidate_thresholds)
        sections.append({"name": "candidate on the comparison set",
                         "metrics": candidate_metrics, "labels": labels,
                         "scores": candidate_scores, "low": candidate_thresholds.low,
                         "high": candidate_thresholds.high})
        if active_model is not None:
            active_pipeline, active_meta = active_model
            active_thresholds = Thresholds(**active_meta["thresholds"])
            active_scores = _scores(active_pipeline, eval_set)
            active_metrics = all_metrics(labels, active_scores, active_thresholds)
            sections.append({"name": f"active {active} on the comparison set",
                             "metrics": active_metrics, "labels": labels,
                             "scores": active_scores, "low": active_thresholds.low,
                             "high": active_thresholds.high})

    if active_model is None:
        passed, gate = True, "no active model: the first one is promoted"
    elif candidate_metrics is None or active_metrics is None:
        passed, gate = False, f"nothing to compare on: {evaluation}"
    else:
        passed, gate = gate_verdict(candidate_metrics, active_metrics)
    promoted = passed or force
    if force and not passed:
        gate += "; promoted anyway (--force)"
    metadata["evaluation"] = {"method": evaluation, "cv": cv_metrics, "passed": passed,
                              "candidate": candidate_metrics, "active": active_metrics,
                              "active_version": active, "gate": gate,
                              "site_labels": len(site)}
    version = store.save(session, trained.pipeline, metadata)
    folder = store.folder(version)
    (folder / "metrics.json").write_text(json.dumps(metadata["evaluation"], indent=2),
                                         encoding="utf-8")
    report = folder / "report.html"
    verdict = ("PROMOTED" if promoted else "NOT PROMOTED") + f": {gate}."
    write_report(report, f"Model {version}", sections,
                 notes=[*_owner_notes(candidate_metrics, active_metrics, active,
                                      len(eval_set) if candidate_metrics else None),
                        verdict,
                        f"Thresholds of the new model: published below a spam score of "
                        f"{thresholds.low}, filed as spam above {thresholds.high}, held in "
                        "between (a blocking rule files as spam, a holding rule holds, first).",
                        f"Comparison: {evaluation}.",
                        f"Training data: {metadata['data']['n']} comments "
                        f"({len(site)} labelled on this site)."])
    register(session, store, version, state="candidate", gate=gate)
    if promoted:
        activate(session, store, version, actor)
    else:
        register(session, store, version, state="refused", gate=gate)
    session.flush()
    return RetrainResult(version, promoted, gate, candidate_metrics or cv_metrics, report,
                         evaluation, {"active": active_metrics, "cv": cv_metrics})
