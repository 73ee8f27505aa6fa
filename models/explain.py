"""Why the model scored a comment as it did: signed contributions of readable features.

For a logistic regression the log-odds are a sum of ``weight * value`` over features, so each
term is an exact contribution. Character n-grams are credited to the words that contain them,
so a moderator reads "word 'viagra' +1.7", not "'agr' +0.2"; stop words and contributions
under `MIN_WEIGHT` are left out of the list (never out of the score).
"""

from __future__ import annotations

import bisect
import functools
import math
import re
import weakref
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

from models.features import (
    AUTHOR_MARKER,
    CUE_NAMES,
    Sample,
    cue_count,
    cue_values,
    describe_cue,
)
from models.text import model_text

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


# Fewer samples than this are scored one at a time (`_score_one`: the same numbers): a
# matrix's per-call costs (sklearn's validation, csr assembly) outweigh what it shares.
# Measured in process, scoring + explanation per comment, matrix vs one at a time: 2
# comments 1.63 vs 1.32 ms, 4: 1.53 vs 1.40, 8: 1.36 vs 1.38, 16: 1.13 vs 1.31 (the small
# batches of a burst, `worker.jobs`).
ONE_BY_ONE_BELOW = 8


def score(pipeline: Pipeline, samples: Sequence[Sample], top: int = 5) -> list[Verdict]:
    """Spam probability and the ``top`` strongest contributions for each sample, from a single
    pass of feature extraction."""
    if not samples:
        return []
    union = pipeline.named_steps["features"]
    clf = pipeline.named_steps["clf"]
    if len(samples) < ONE_BY_ONE_BELOW and _index(union).fast and _is_binary_linear(clf):
        return [_score_one(union, clf, sample, top) for sample in samples]
    matrix, cues = _transform(union, samples)
    probabilities = clf.predict_proba(matrix)[:, list(clf.classes_).index(1)]
    coef = clf.coef_[0]
    rows = ((matrix.indices[matrix.indptr[r]:matrix.indptr[r + 1]],
             matrix.data[matrix.indptr[r]:matrix.indptr[r + 1]]) for r in range(len(samples)))
    explained = _contributions(union, coef, rows, samples, top, cues)
    return [
        Verdict(float(p), contributions)
        for p, contributions in zip(probabilities, explained, strict=True)
    ]


def _is_binary_linear(clf: Any) -> bool:
    return (isinstance(clf, LogisticRegression) and len(clf.classes_) == 2
            and list(clf.classes_) == [0, 1])


def _score_one(union: Any, clf: LogisticRegression, sample: Sample, top: int) -> Verdict:
    """`score` of one sample without scipy or sklearn's per-call validation (the worker's idle
    case, where those cost more than the arithmetic). Same numbers, bit for bit: the same
    row, summed in the same order as ``predict_proba``'s sparse product, then the same
    ``expit``."""
    parts, raw_cues = _branch_rows(_index(union), [sample])
    columns = np.concatenate([p[1] for p in parts])
    data = np.concatenate([p[2] for p in parts])
    coef = clf.coef_[0]
    weights = coef[columns] * data
    decision = (np.cumsum(weights)[-1] if len(weights) else 0.0) + clf.intercept_[0]
    probability = float(expit(np.float64(decision)))
    explained = _contributions(union, coef, [(columns, data)], [sample], top, raw_cues,
                               weights=[weights])
    return Verdict(probability, explained[0])


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
    parts, raw_cues = _branch_rows(index, samples)
    return _join(parts, len(samples), index.width), raw_cues


def _branch_rows(index: _FeatureIndex, samples: Sequence[Sample]
                 ) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                            list[list[float]] | None]:
    """Each branch's rows as (indptr, global columns, data), and the raw cue values."""
    n = len(samples)
    raw_cues: list[list[float]] | None = None
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for branch in index.branch_list:
        if branch.scale is not None:
            raw_cues = [cue_values(s)[:branch.width] for s in samples]
            dense = np.log1p(np.asarray(raw_cues, dtype=np.float64).reshape(n, branch.width))
            dense /= branch.scale
            rows, cols = np.nonzero(dense)
            indptr = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
            parts.append((indptr, cols.astype(np.int64) + branch.start, dense[rows, cols]))
            continue
        assert branch.vocabulary is not None and branch.idf is not None
        lookup, columns, counts = branch.vocabulary.get, [], []
        indptr_list = [0]
        for doc in branch.text_of(samples):
            if branch.tokens is not None:  # np.unique sorts, as csr.sort_indices() would
                found, found_counts = np.unique(branch.columns_of(doc), return_counts=True)
                columns.extend(found.tolist())
                counts.extend(found_counts.tolist())
            else:
                counter: dict[int, int] = {}
                for feature, count in Counter(branch.analyze(doc)).items():
                    column = lookup(feature)
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
            if n == 1:  # what inplace_csr_row_normalize_l2 does: a running sum, one sqrt
                total = float(np.cumsum(data * data)[-1]) if len(data) else 0.0
                if total != 0.0:
                    data /= math.sqrt(total)
            else:
                inplace_csr_row_normalize_l2(
                    sp.csr_matrix((data, local, indptr), shape=(n, branch.width), copy=False))
        parts.append((indptr.astype(np.int64), local.astype(np.int64) + branch.start, data))
    return parts, raw_cues


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
    weights = union.transformer_weights or {}
    for name, branch in union.transformer_list:
        steps = branch.named_steps
        if name == "cues":
            block = sp.csr_matrix(steps["scale"].transform(steps["cues"].transform(samples)))
        else:
            block = steps["tfidf"].transform(steps["text"].func(samples))
        if name in weights:
            block = block * weights[name]
        blocks.append(block)
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
    # char_wb only: a text's whitespace tokens, and one token's n-gram columns (cached).
    tokens: Any = None
    token_ngrams: Any = None
    token_columns: dict[str, np.ndarray] = field(default_factory=dict)
    stripped: list[str] = field(default_factory=list)  # names without char_wb's padding

    def columns_of(self, doc: str) -> np.ndarray:
        """The vocabulary columns of ``doc``'s n-grams, one entry per occurrence.

        char_wb n-grams never cross whitespace, so a text's n-grams are its tokens' n-grams
        and a token's columns are computed once (words recur: most are cache hits)."""
        cache, parts = self.token_columns, []
        for token in self.tokens(doc):
            columns = cache.get(token)
            if columns is None:
                if len(cache) >= _TOKEN_CACHE:
                    cache.clear()
                lookup = self.vocabulary.get  # type: ignore[union-attr]
                found = [lookup(gram) for gram in self.token_ngrams(token)]
                columns = cache[token] = np.array([c for c in found if c is not None],
                                                  dtype=np.int64)
            parts.append(columns)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


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
    # transformer_weights (none in the shipped pipeline) take the generic path.
    start, fast = 0, not union.transformer_weights
    for name, transformer in union.transformer_list:
        steps = transformer.named_steps
        if name == "cues":
            scaler = steps["scale"]
            fast = fast and isinstance(scaler, MaxAbsScaler) and not scaler.clip
            width = cue_count(steps["cues"])
            branches.append(_Branch(name, start, width, list(CUE_NAMES[:width]),
                                    scale=getattr(scaler, "scale_", None)))
        else:
            tfidf = steps["tfidf"]
            names = [str(x) for x in tfidf.get_feature_names_out()]
            fast = fast and (not tfidf.binary and tfidf.use_idf and tfidf.norm in ("l2", None)
                             and tfidf.dtype in (np.float64, float))
            tokens = token_ngrams = None
            if tfidf.analyzer == "char_wb":  # what its analyzer does, one token at a time
                preprocess, white = tfidf.build_preprocessor(), tfidf._white_spaces
                decode, token_ngrams = tfidf.decode, tfidf._char_wb_ngrams

                def tokens(doc: str, preprocess: Any = preprocess, white: Any = white,
                           decode: Any = decode) -> list[str]:
                    return white.sub(" ", preprocess(decode(doc))).split()

            branches.append(_Branch(
                name, start, len(names), names, text_of=steps["text"].func,
                analyze=tfidf.build_analyzer(), vocabulary=tfidf.vocabulary_,
                idf=tfidf.idf_, sublinear=tfidf.sublinear_tf, norm=tfidf.norm,
                tokens=tokens, token_ngrams=token_ngrams, stripped=[n.strip() for n in names],
            ))
        start += branches[-1].width
    return _FeatureIndex(branches, [b.start for b in branches], start, fast)


@functools.lru_cache(maxsize=65536)
def _pieces(word: str, longest: int) -> frozenset[str]:
    """Every substring of ``word`` of up to ``longest`` characters (words recur: cached)."""
    length = len(word)
    return frozenset(word[i:i + size] for size in range(1, longest + 1)
                     for i in range(length - size + 1))


def _owners_index(words: set[str], longest: int) -> dict[str, list[str]]:
    """Every substring of up to ``longest`` characters of ``words`` -> the words containing it,
    in the set's iteration order (what ``[w for w in words if piece in w]`` returns)."""
    owners: dict[str, list[str]] = {}
    for word in words:
        for piece in _pieces(word, longest):
            found = owners.get(piece)
            if found is None:
                owners[piece] = [word]
            else:
                found.append(word)
    return owners


# Distinct tokens whose character n-gram columns a branch keeps (then it starts afresh).
_TOKEN_CACHE = 50_000

# Character n-grams are at most this long (char_wb 2-5 grams, padding stripped).
_LONGEST_PIECE = 5


def _contributions(
    union: Any, coef: np.ndarray, rows: Iterable[tuple[np.ndarray, np.ndarray]],
    samples: Sequence[Sample], top: int, cues: list[list[float]] | None = None,
    weights: Sequence[np.ndarray] | None = None,
) -> list[list[Contribution]]:
    """The ``top`` readable contributions of each row (its union columns and values)."""
    if top <= 0:
        return [[] for _ in samples]
    index = _index(union)
    results = []
    for row_index, (sample, (row_columns, row_data)) in enumerate(zip(samples, rows, strict=True)):
        row_weights = (weights[row_index] if weights is not None
                       else coef[row_columns] * row_data).tolist()
        # Columns are sorted, so each branch's entries are one slice of the row.
        bounds = np.searchsorted(row_columns, [*index.starts, index.width]).tolist()
        text = model_text(sample.get("content", ""))
        words = {w.lower() for w in _WORD.findall(text)}
        pieces: dict[str, list[str]] | None = None
        quoted: dict[str, float] = {}  # words and the words that own character n-grams
        totals: dict[str, float] = defaultdict(float)
        raw_cues = cues[row_index] if cues is not None else None
        for b, branch in enumerate(index.branch_list):
            first, last = bounds[b], bounds[b + 1]
            if first == last:
                continue
            names, start = branch.names, branch.start
            locals_ = (row_columns[first:last] - start).tolist()
            pairs = zip(locals_, row_weights[first:last], strict=True)
            if branch.name == "words":
                for local, weight in pairs:
                    if weight != 0.0:
                        quoted[names[local]] = quoted.get(names[local], 0.0) + weight
            elif branch.name == "chars":
                if pieces is None:
                    pieces = _owners_index(words, _LONGEST_PIECE)
                owners_of, stripped, add = pieces.get, branch.stripped, quoted.get
                for local, weight in pairs:
                    if weight == 0.0:
                        continue
                    piece = stripped[local]
                    owners = owners_of(piece)
                    if owners is None:  # no word has it (punctuation), or longer than indexed
                        owners = (None if 0 < len(piece) <= _LONGEST_PIECE
                                  else [w for w in words if piece in w]) or [piece]
                    if len(owners) == 1:
                        owner = owners[0]
                        quoted[owner] = add(owner, 0.0) + weight
                    else:
                        share = len(owners)
                        for owner in owners:
                            quoted[owner] = quoted.get(owner, 0.0) + weight / share
            elif branch.name == "author":
                for local, weight in pairs:
                    if weight != 0.0 and names[local] != AUTHOR_MARKER:
                        totals[f"author '{names[local]}'"] += weight
            else:
                for local, weight in pairs:
                    if weight != 0.0:
                        raw_cues = raw_cues or cue_values(sample)
                        totals[describe_cue(CUE_NAMES[local], raw_cues[local],
                                            sample.get("content", ""))] += weight
        # The union's word branches come before the author and cue branches. Only what is
        # strong enough to show is ranked, and words are checked for readability from the
        # strongest down until ``top`` are found: the list ranking them all would give.
        ranked = sorted([*((weight, True, text) for text, weight in quoted.items()
                           if abs(weight) >= MIN_WEIGHT),
                         *((weight, False, name) for name, weight in totals.items()
                           if abs(weight) >= MIN_WEIGHT)],
                        key=lambda item: abs(item[0]), reverse=True)
        shown: list[Contribution] = []
        for weight, is_text, name in ranked:
            if len(shown) == top:
                break
            if is_text:
                if not readable_words(name):
                    continue
                name = quote(name)
            shown.append(Contribution(name, weight))
        results.append(shown)
    return results


# A contribution smaller than this (in log-odds) explains nothing a moderator can act on.
MIN_WEIGHT = 0.25


def readable_words(text: str) -> bool:
    """True if a word or phrase is worth showing: not only stop words ('the', 'of the'),
    digits or single characters (their weight still counts in the score)."""
    words = text.split()
    return any(len(w) > 1 and not w.isdigit() and w not in ENGLISH_STOP_WORDS for w in words)


def quote(text: str) -> str:
    """How a moderator reads a word or phrase feature: "word 'cheap'", "phrase 'buy now'"."""
    return f"{'phrase' if ' ' in text else 'word'} '{text}'"
