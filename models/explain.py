"""Why the model scored a comment as it did: signed contributions of readable features.

For a logistic regression the log-odds are a sum of ``weight * value`` over features, so each
term is an exact contribution. Character n-grams are credited to the words that contain them,
so a moderator reads "'viagra' +1.7", not "'agr' +0.2".
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.pipeline import Pipeline

from models.features import AUTHOR_MARKER, CUE_NAMES, Sample, cue_values, describe_cue

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Contribution:
    """One readable feature and its signed share of the log-odds (positive: towards spam)."""

    feature: str
    weight: float

    def __str__(self) -> str:
        return f"{self.feature} {self.weight:+.1f}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The model's spam probability for one sample and the contributions behind it."""

    spam_score: float
    contributions: list[Contribution]


def score(pipeline: Pipeline, samples: Sequence[Sample], top: int = 5) -> list[Verdict]:
    """Spam probability and the ``top`` strongest contributions for each sample, from a single
    pass of feature extraction."""
    if not samples:
        return []
    union = pipeline.named_steps["features"]
    clf = pipeline.named_steps["clf"]
    matrix = union.transform(samples).tocsr()
    probabilities = clf.predict_proba(matrix)[:, list(clf.classes_).index(1)]
    explained = _contributions(union, clf.coef_[0], matrix, samples, top)
    return [
        Verdict(float(p), contributions)
        for p, contributions in zip(probabilities, explained, strict=True)
    ]


def _contributions(
    union: object, coef: np.ndarray, matrix: object, samples: Sequence[Sample], top: int
) -> list[list[Contribution]]:
    # Column offsets of each branch inside the union's output, in transformer_list order.
    offsets: dict[str, tuple[int, list[str]]] = {}
    start = 0
    for name, transformer in union.transformer_list:  # type: ignore[attr-defined]
        if name == "cues":
            names = list(CUE_NAMES)
        else:
            names = list(transformer.named_steps["tfidf"].get_feature_names_out())
        offsets[name] = (start, names)
        start += len(names)

    results = []
    for row_index, sample in enumerate(samples):
        row = matrix.getrow(row_index)  # type: ignore[attr-defined]
        text = sample.get("content", "")
        words = [w.lower() for w in _WORD.findall(text)]
        totals: dict[str, float] = defaultdict(float)
        raw_cues = cue_values(sample)
        for column, value in zip(row.indices, row.data, strict=True):
            weight = float(coef[column] * value)
            if weight == 0.0:
                continue
            branch, local = _locate(offsets, column)
            feature = offsets[branch][1][local]
            if branch == "words":
                totals[f"'{feature}'"] += weight
            elif branch == "chars":
                owners = [w for w in set(words) if feature.strip() in w] or [feature.strip()]
                for owner in owners:
                    totals[f"'{owner}'"] += weight / len(owners)
            elif branch == "author":
                if feature != AUTHOR_MARKER:
                    totals[f"author '{feature}'"] += weight
            else:
                cue = CUE_NAMES[local]
                totals[describe_cue(cue, raw_cues[local])] += weight
        ranked = sorted(totals.items(), key=lambda item: abs(item[1]), reverse=True)
        results.append([Contribution(name, weight) for name, weight in ranked[:top]])
    return results


def _locate(offsets: dict[str, tuple[int, list[str]]], column: int) -> tuple[str, int]:
    for name, (start, names) in offsets.items():
        if start <= column < start + len(names):
            return name, column - start
    raise IndexError(column)
