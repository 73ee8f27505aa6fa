"""Why the model scored a comment as it did: signed contributions of readable features.

For a logistic regression the log-odds are a sum of ``weight * value`` over features, so each
term is an exact contribution. Character n-grams are credited to the words that contain them,
so a moderator reads "'viagra' +1.7", not "'agr' +0.2".
"""

from __future__ import annotations

import bisect
import re
import weakref
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

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
    matrix, cues = _transform(union, samples)
    probabilities = clf.predict_proba(matrix)[:, list(clf.classes_).index(1)]
    explained = _contributions(union, clf.coef_[0], matrix, samples, top, cues)
    return [
        Verdict(float(p), contributions)
        for p, contributions in zip(probabilities, explained, strict=True)
    ]


def transform(union: Any, samples: Sequence[Sample]) -> sp.csr_matrix:
    """The union's output: the same matrix, bit for bit, as ``union.transform(samples)``.

    sklearn's per-call validation, ``csr`` construction and ``hstack`` cost ~10 ms for one
    comment, ten times the arithmetic; this applies each fitted branch's own analyzer,
    vocabulary, idf and scale (cached per model) and sklearn's own l2 normaliser, in the
    same order of operations, and assembles the rows once. A configuration it does not
    reproduce (binary counts, clipping, no idf...) takes the generic branch-wise path."""
    return _transform(union, samples)[0]


def _transform(union: Any, samples: Sequence[Sample]
               ) -> tuple[sp.csr_matrix, list[list[float]] | None]:
    """`transform`, plus the raw cue values it computed (the explanations quote them)."""
    index = _index(union)
    if not index.fast:
        return _transform_generic(union, samples), None
    n = len(samples)
    raw_cues: list[list[float]] | None = None
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for branch in index.branch_list:
        if branch.scale is not None:
            raw_cues = [cue_values(s) for s in samples]
            dense = np.log1p(np.asarray(raw_cues, dtype=np.float64).reshape(n, len(CUE_NAMES)))
            dense /= branch.scale
            rows, cols = np.nonzero(dense)
            indptr = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
            parts.append((indptr, cols.astype(np.int64) + branch.start, dense[rows, cols]))
            continue
        assert branch.vocabulary is not None and branch.idf is not None
        vocabulary, columns, counts = branch.vocabulary, [], []
        indptr_list = [0]
        for doc in branch.text_of(samples):
            counter: dict[int, int] = {}
            for feature, count in Counter(branch.analyze(doc)).items():
                column = vocabulary.get(feature)
                if column is not None:
                    counter[column] = count
            for column in sorted(counter):  # csr.sort_indices(): columns are unique
                columns.append(column)
                counts.append(counter[column])
            indptr_list.append(len(columns))
        local = np.asarray(columns, dtype=np.int32)
        data = np.asarray(counts, dtype=np.float64)
        if branch.sublinear:
            np.log(data, data)
            data += 1.0
        data *= branch.idf[local]
        indptr = np.asarray(indptr_list, dtype=np.int32)
        if branch.norm == "l2":
            inplace_csr_row_normalize_l2(
                sp.csr_matrix((data, local, indptr), shape=(n, branch.width), copy=False))
        parts.append((indptr.astype(np.int64), local.astype(np.int64) + branch.start, data))
    return _join(parts, n, index.width), raw_cues


def _join(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n: int,
          width: int) -> sp.csr_matrix:
    """Rows of side-by-side blocks (indptr, global columns, data) as one csr matrix."""
    lengths = np.stack([p[0][1:] - p[0][:-1] for p in parts], axis=1)  # (n, blocks)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths.sum(axis=1), out=indptr[1:])
    if len(parts) and n == 1:
        indices = np.concatenate([p[1] for p in parts])
        data = np.concatenate([p[2] for p in parts])
    else:
        order = [(p, r) for r in range(n) for p in range(len(parts))]
        indices = np.concatenate([parts[p][1][parts[p][0][r]:parts[p][0][r + 1]]
                                  for p, r in order]) if order else np.zeros(0, np.int64)
        data = np.concatenate([parts[p][2][parts[p][0][r]:parts[p][0][r + 1]]
                               for p, r in order]) if order else np.zeros(0)
    index_dtype = np.int32 if width < np.iinfo(np.int32).max else np.int64
    return sp.csr_matrix((data, indices.astype(index_dtype), indptr.astype(index_dtype)),
                         shape=(n, width))


def _transform_generic(union: Any, samples: Sequence[Sample]) -> sp.csr_matrix:
    """The union's output, computed branch by branch with each step's own ``transform``."""
    blocks = []
    for name, branch in union.transformer_list:
        steps = branch.named_steps
        if name == "cues":
            blocks.append(sp.csr_matrix(steps["scale"].transform(steps["cues"].transform(samples))))
        else:
            blocks.append(steps["tfidf"].transform(steps["text"].func(samples)))
    return sp.hstack(blocks, format="csr")


@dataclass(frozen=True, slots=True)
class _Branch:
    """One fitted branch of the union, unpacked for the fast transform and the explanations."""

    name: str
    start: int
    width: int
    names: list[str]
    text_of: Any = None
    analyze: Any = None
    vocabulary: dict[str, int] | None = None
    idf: np.ndarray | None = None
    sublinear: bool = False
    norm: str | None = None
    scale: np.ndarray | None = None  # the cues' MaxAbsScaler


@dataclass(frozen=True, slots=True)
class _FeatureIndex:
    """Where each branch's columns start in the union's output, and their names."""

    branch_list: list[_Branch]
    starts: list[int]
    width: int
    fast: bool

    def locate(self, column: int) -> tuple[str, int, str]:
        """Branch, column within the branch, and feature name of a union column."""
        branch = self.branch_list[bisect.bisect_right(self.starts, column) - 1]
        local = column - branch.start
        return branch.name, local, branch.names[local]


# Feature names of a 300k-column vectorizer take milliseconds to build: once per model.
_INDEXES: weakref.WeakKeyDictionary[Any, _FeatureIndex] = weakref.WeakKeyDictionary()


def _index(union: Any) -> _FeatureIndex:
    index = _INDEXES.get(union)
    if index is None:
        index = _INDEXES[union] = _build_index(union)
    return index


def _build_index(union: Any) -> _FeatureIndex:
    branches: list[_Branch] = []
    start, fast = 0, True
    for name, transformer in union.transformer_list:
        steps = transformer.named_steps
        if name == "cues":
            scaler = steps["scale"]
            fast = fast and isinstance(scaler, MaxAbsScaler) and not scaler.clip
            branches.append(_Branch(name, start, len(CUE_NAMES), list(CUE_NAMES),
                                    scale=getattr(scaler, "scale_", None)))
        else:
            tfidf = steps["tfidf"]
            names = [str(x) for x in tfidf.get_feature_names_out()]
            fast = fast and (not tfidf.binary and tfidf.use_idf and tfidf.norm in ("l2", None)
                             and tfidf.dtype in (np.float64, float))
            branches.append(_Branch(
                name, start, len(names), names, text_of=steps["text"].func,
                analyze=tfidf.build_analyzer(), vocabulary=tfidf.vocabulary_,
                idf=tfidf.idf_, sublinear=tfidf.sublinear_tf, norm=tfidf.norm,
            ))
        start += branches[-1].width
    return _FeatureIndex(branches, [b.start for b in branches], start, fast)


def _owners_index(words: set[str], longest: int) -> dict[str, list[str]]:
    """Every substring of up to ``longest`` characters of ``words`` -> the words containing it,
    in the set's iteration order (what ``[w for w in words if piece in w]`` returns)."""
    owners: dict[str, list[str]] = {}
    for word in words:
        length = len(word)
        for piece in {word[i:i + size] for size in range(1, longest + 1)
                      for i in range(length - size + 1)}:
            found = owners.get(piece)
            if found is None:
                owners[piece] = [word]
            else:
                found.append(word)
    return owners


# Character n-grams are at most this long (char_wb 2-5 grams, padding stripped).
_LONGEST_PIECE = 5


def _contributions(
    union: Any, coef: np.ndarray, matrix: Any, samples: Sequence[Sample], top: int,
    cues: list[list[float]] | None = None,
) -> list[list[Contribution]]:
    if top <= 0:
        return [[] for _ in samples]
    index = _index(union)
    results = []
    for row_index, sample in enumerate(samples):
        lo, hi = int(matrix.indptr[row_index]), int(matrix.indptr[row_index + 1])
        row_columns = matrix.indices[lo:hi]
        all_weights = (coef[row_columns] * matrix.data[lo:hi]).tolist()
        # Columns are sorted, so each branch's entries are one slice of the row.
        bounds = np.searchsorted(row_columns, [*index.starts, index.width]).tolist()
        text = sample.get("content", "")
        words = {w.lower() for w in _WORD.findall(text)}
        pieces: dict[str, list[str]] | None = None
        totals: dict[str, float] = defaultdict(float)
        raw_cues = cues[row_index] if cues is not None else None
        for b, branch in enumerate(index.branch_list):
            first, last = bounds[b], bounds[b + 1]
            if first == last:
                continue
            names, start = branch.names, branch.start
            locals_ = (row_columns[first:last] - start).tolist()
            for local, weight in zip(locals_, all_weights[first:last], strict=True):
                if weight == 0.0:
                    continue
                feature = names[local]
                if branch.name == "words":
                    totals[f"'{feature}'"] += weight
                elif branch.name == "chars":
                    piece = feature.strip()
                    if len(piece) > _LONGEST_PIECE or not piece:
                        owners = [w for w in words if piece in w] or [piece]
                    else:
                        if pieces is None:
                            pieces = _owners_index(words, _LONGEST_PIECE)
                        owners = pieces.get(piece) or [piece]
                    for owner in owners:
                        totals[f"'{owner}'"] += weight / len(owners)
                elif branch.name == "author":
                    if feature != AUTHOR_MARKER:
                        totals[f"author '{feature}'"] += weight
                else:
                    raw_cues = raw_cues or cue_values(sample)
                    totals[describe_cue(CUE_NAMES[local], raw_cues[local])] += weight
        ranked = sorted(totals.items(), key=lambda item: abs(item[1]), reverse=True)
        results.append([Contribution(name, weight) for name, weight in ranked[:top]])
    return results
