"""Training: cross-validate, choose the policy's thresholds, fit on everything, save.

    python -m models.train [--data FILE_OR_FOLDER ...] [--no-starter] [--model-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline

from models.artifacts import ArtifactStore
from models.data import Example, data_hash, deduplicate, load_paths, own_data, starter_corpus
from models.evaluation import all_metrics
from models.pipeline import SEED, build_pipeline
from models.policy import MAX_HAM_AS_SPAM, MAX_SPAM_PUBLISHED, choose_thresholds

# Five folds: every fold keeps enough of the minority class for stable threshold estimates.
CV_FOLDS = 5


def cross_validated_scores(
    examples: Sequence[Example], folds: int = CV_FOLDS, **params: Any
) -> np.ndarray:
    """Out-of-fold spam probabilities, stratified, with a fixed seed (each fold fitted with
    the examples' weights)."""
    X = [e.features() for e in examples]
    y = np.array([e.label for e in examples])
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED)
    return cross_val_predict(
        build_pipeline(**params), X, y, cv=splitter, method="predict_proba", n_jobs=1,
        params={"clf__sample_weight": _weights(examples)},
    )[:, 1]


def fit(examples: Sequence[Example], **params: Any) -> Pipeline:
    """A pipeline fitted on all ``examples``, each counting its `Example.weight`."""
    pipeline = build_pipeline(**params)
    pipeline.fit([e.features() for e in examples], [e.label for e in examples],
                 clf__sample_weight=_weights(examples))
    return pipeline


def _weights(examples: Sequence[Example]) -> np.ndarray:
    return np.array([e.weight for e in examples], dtype=float)


@dataclass
class Trained:
    """A fitted pipeline, its metadata, and the out-of-fold scores of its (deduplicated)
    training examples: each example scored by a model that never saw it."""

    pipeline: Pipeline
    metadata: dict[str, Any]
    examples: list[Example]
    oof_scores: list[float]


def train(
    examples: Sequence[Example],
    *,
    max_ham_as_spam: float = MAX_HAM_AS_SPAM,
    max_spam_published: float = MAX_SPAM_PUBLISHED,
    sources: Sequence[str] = (),
    **params: Any,
) -> tuple[Pipeline, dict[str, Any]]:
    """Deduplicate, cross-validate, choose thresholds, fit on all; return pipeline and metadata.
    The thresholds are chosen on the out-of-fold scores of every example counted once (the
    starter corpus keeps the policy's limits honest however few the site's labels), the
    logistic regression is fitted with the examples' weights (`Example.weight`)."""
    trained = train_with_scores(examples, max_ham_as_spam=max_ham_as_spam,
                                max_spam_published=max_spam_published, sources=sources,
                                **params)
    return trained.pipeline, trained.metadata


def train_with_scores(
    examples: Sequence[Example],
    *,
    max_ham_as_spam: float = MAX_HAM_AS_SPAM,
    max_spam_published: float = MAX_SPAM_PUBLISHED,
    sources: Sequence[str] = (),
    **params: Any,
) -> Trained:
    """`train`, also returning the deduplicated examples and their out-of-fold scores."""
    examples = deduplicate(examples)
    labels = [e.label for e in examples]
    if len(set(labels)) != 2 or min(labels.count(0), labels.count(1)) < CV_FOLDS:
        raise ValueError(f"need at least {CV_FOLDS} examples of each class, got {len(labels)}")
    scores = cross_validated_scores(examples, **params)
    thresholds = choose_thresholds(
        [s for s, y in zip(scores, labels, strict=True) if y == 0],
        [s for s, y in zip(scores, labels, strict=True) if y == 1],
        max_ham_as_spam=max_ham_as_spam,
        max_spam_published=max_spam_published,
    )
    pipeline = fit(examples, **params)
    metadata = {
        "kind": "tfidf-words-chars+cues/logistic-regression",
        "params": {k: repr(v) for k, v in pipeline.get_params(deep=True).items() if "__" in k
                   and k.startswith("clf__")},
        "thresholds": {"low": thresholds.low, "high": thresholds.high},
        "threshold_limits": {
            "max_ham_as_spam": max_ham_as_spam,
            "max_spam_published": max_spam_published,
        },
        "cut": 0.5,
        "data": {
            "n": len(examples),
            "n_spam": int(sum(labels)),
            "sha256": data_hash(examples),
            "sources": list(sources),
            "n_weighted": sum(1 for e in examples if e.weight != 1.0),
            "weight": max((e.weight for e in examples), default=1.0),
        },
        "cv_metrics": all_metrics(labels, scores.tolist(), thresholds),
        "libraries": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "joblib": joblib.__version__,
        },
    }
    return Trained(pipeline, metadata, list(examples), scores.tolist())


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: train on the starter corpus plus ``--data``, save and activate."""
    from service.config import load_config  # settings only; no Flask app is created

    parser = argparse.ArgumentParser(prog="python -m models.train", description=__doc__)
    parser.add_argument("--data", nargs="*", default=[], help="extra labelled files or folders")
    parser.add_argument("--no-starter", action="store_true", help="leave out the starter corpus")
    parser.add_argument("--model-dir", default=None, help="artifact store (default: MODEL_DIR)")
    parser.add_argument("--if-missing", action="store_true",
                        help="do nothing when an active model exists already")
    args = parser.parse_args(argv)

    store = ArtifactStore(args.model_dir or load_config()["MODEL_DIR"])
    if args.if_missing and store.active_version():
        print(f"active model {store.active_version()} in {store.root}; not training")
        return 0
    examples: list[Example] = [] if args.no_starter else starter_corpus()
    sources = [] if args.no_starter else ["starter-corpus"]
    data = [p for chunk in args.data for p in chunk.split()]
    examples += own_data(load_paths(data)) if examples else load_paths(data)
    sources += data
    pipeline, metadata = train(examples, sources=sources)
    version = store.save(pipeline, metadata, activate=True)
    cv = metadata["cv_metrics"]
    print(json.dumps({"version": version, "thresholds": metadata["thresholds"],
                      **{k: cv[k] for k in ("n", "mcc", "f1", "roc_auc", "ham_flagged",
                                             "spam_published", "auto_decided")}}))
    print(f"model {version} saved and activated in {store.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
