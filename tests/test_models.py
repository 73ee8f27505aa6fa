"""The classifier package on its own: cleaning, loaders, thresholds, artifacts, explanations."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from models.artifacts import ArtifactError, ArtifactStore
from models.data import (
    HAM,
    OWN_DATA_WEIGHT,
    SPAM,
    Example,
    data_hash,
    deduplicate,
    load_paths,
    own_data,
    starter_corpus,
)
from models.explain import score
from models.policy import Band, Thresholds, choose_thresholds
from models.text import clean_text
from models.train import fit
from tests.conftest import SHARED_DATA

YOUTUBE = SHARED_DATA / "youtube-spam"
SMS = SHARED_DATA / "sms-spam" / "SMSSpamCollection"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("\ufeffHello&#39;s world", "Hello's world"),
        ("one<br />two<br>three", "one\ntwo\nthree"),
        ("&quot;quoted&quot; &amp; <a href='x'>link</a>", '"quoted" & link'),
        ("ｆｕｌｌ width", "full width"),
        ("zero\u200bwidth", "zerowidth"),
    ],
)
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


def test_starter_corpus_is_large_varied_and_labelled() -> None:
    corpus = starter_corpus()
    assert len(corpus) >= 1000
    labels = [e.label for e in corpus]
    assert labels.count(SPAM) >= 400 and labels.count(HAM) >= 400
    non_latin = [e for e in corpus if any(ord(ch) > 0x2FF for ch in e.content)]
    assert len({e.label for e in non_latin}) == 2 and len(non_latin) >= 100
    assert len(deduplicate(corpus)) == len(corpus)


def test_every_starter_comment_is_a_valid_submission() -> None:
    """The demo and the benchmark post the starter corpus: the API must accept every row
    (an e-mail like "r..o@hey.com" used to be refused with 422)."""
    from service.schemas import CommentIn

    fields = ("author_name", "author_email", "author_url", "content")
    for example in starter_corpus():
        sample = example.features()
        body = {"post": "a-post", **{k: sample[k] for k in fields if sample.get(k)}}
        assert CommentIn().validate(body) == {}, body


def test_jsonl_loader_reports_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"content": "ok", "label": "ham"}\n{"content": "x", "label": "maybe"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        load_paths([path])


def test_unknown_file_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some text\n")
    with pytest.raises(ValueError, match="not JSONL"):
        load_paths([path])


@pytest.mark.skipif(not YOUTUBE.is_dir(), reason="../shared/data/youtube-spam absent")
def test_youtube_loader_reads_every_video() -> None:
    examples = load_paths([YOUTUBE])
    assert len(examples) == 350 + 350 + 438
    assert {e.group for e in examples} == {"Youtube01-Psy", "Youtube02-KatyPerry",
                                           "Youtube03-LMFAO"}
    assert sum(e.label for e in examples) == 175 + 175 + 236
    assert not any("\ufeff" in e.content or "&#39;" in e.content for e in examples)
    assert len(deduplicate(examples)) < len(examples) * 0.9  # about 15% repeats


@pytest.mark.skipif(not SMS.is_file(), reason="../shared/data/sms-spam absent")
def test_sms_loader_keeps_every_line_despite_stray_quotes() -> None:
    examples = load_paths([SMS])
    assert len(examples) == 5574
    assert sum(e.label for e in examples) == 747


def test_deduplicate_prefers_the_spam_label_and_ignores_case() -> None:
    kept = deduplicate([Example("Nice post", HAM), Example("nice  POST", SPAM),
                        Example("Other", HAM)])
    assert [(e.content, e.label) for e in kept] == [("nice  POST", SPAM), ("Other", HAM)]


def test_a_sites_own_label_of_a_starter_text_keeps_the_sites_weight() -> None:
    starter, site = Example("Nice post", HAM), own_data([Example("nice  POST", SPAM)])[0]
    for pair in ([starter, site], [site, starter]):
        (kept,) = deduplicate(pair)
        assert (kept.label, kept.weight) == (SPAM, OWN_DATA_WEIGHT)
    (kept,) = deduplicate([Example("Nice post", SPAM), own_data([Example("nice post", HAM)])[0]])
    assert (kept.label, kept.weight) == (SPAM, OWN_DATA_WEIGHT)


def test_the_sites_own_labels_weigh_more_than_the_starter_corpus() -> None:
    prizes = ["cinema tickets", "a weekend in Rome", "concert passes"]
    template = ("You are one of our lucky winners this week, {} are waiting for you. "
                "Reply WIN to 80086 to claim")
    site = [Example(template.format(prizes[0]), SPAM), Example(template.format(prizes[1]), SPAM),
            Example("Lovely piece, the photo of the harbour at dawn is my favourite", HAM),
            Example("The bit about the ferry timetable matches what I saw last May", HAM)]
    base = starter_corpus()[::4]
    probe = [{"content": template.format(prizes[2]), "author_name": "", "author_email": "",
              "author_url": ""}]

    def spam_score(examples: list[Example]) -> float:
        return score(fit(examples), probe, top=0)[0].spam_score

    plain, own = spam_score(base + site), spam_score(base + own_data(site))
    print(f"spam score of a third text of the site's spam: {plain:.3f} -> {own:.3f}")
    assert math.log(own / (1 - own)) - math.log(plain / (1 - plain)) > 1.0


def test_data_hash_changes_with_the_data() -> None:
    a = [Example("one", HAM), Example("two", SPAM)]
    assert data_hash(a) == data_hash(list(a))
    assert data_hash(a) != data_hash([Example("one", SPAM), Example("two", SPAM)])


def test_thresholds_respect_both_class_limits() -> None:
    ham = [i / 1000 for i in range(1000)]  # 0.000 .. 0.999
    spam = [0.5 + i / 2000 for i in range(1000)]  # 0.500 .. 0.9995
    t = choose_thresholds(ham, spam, max_ham_as_spam=0.005, max_spam_published=0.02)
    assert sum(s > t.high for s in ham) <= 5
    assert sum(s < t.low for s in spam) <= 20
    assert t.low <= t.high


def test_cleanly_separated_classes_get_no_hold_band() -> None:
    t = choose_thresholds([0.01, 0.02, 0.1], [0.8, 0.9, 0.95])
    assert t.low == t.high == pytest.approx(0.45)
    assert t.band(0.2) == Band.PUBLISH and t.band(0.7) == Band.SPAM


@pytest.mark.parametrize(("p", "band"), [(0.05, Band.PUBLISH), (0.1, Band.HOLD),
                                         (0.5, Band.HOLD), (0.9, Band.HOLD), (0.91, Band.SPAM)])
def test_bands(p: float, band: str) -> None:
    assert Thresholds(low=0.1, high=0.9).band(p) == band


def test_artifact_metadata_and_hash_check(model_dir: Path, tmp_path: Path) -> None:
    store = ArtifactStore(model_dir)
    version = store.active_version()
    metadata = store.verify(version)
    for key in ("sha256", "thresholds", "cv_metrics", "libraries", "data", "created_at"):
        assert key in metadata
    assert metadata["data"]["n"] >= 1000
    assert metadata["cv_metrics"]["mcc"] > 0.8
    pipeline, _ = store.load()
    # Any change to the bytes is refused.
    copy = ArtifactStore(tmp_path)
    version2 = copy.save(pipeline, {k: v for k, v in metadata.items()
                                    if k not in ("version", "sha256", "created_at")},
                         activate=True)
    model_file = tmp_path / version2 / "model.joblib"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_file.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="SHA-256"):
        copy.load()


@pytest.mark.parametrize("version", ["../etc", ".hidden", "", "a/b"])
def test_artifact_store_refuses_odd_version_names(tmp_path: Path, version: str) -> None:
    with pytest.raises(ArtifactError):
        ArtifactStore(tmp_path).metadata(version)


def test_missing_active_model_is_an_artifact_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no active model"):
        ArtifactStore(tmp_path).load()


def test_explanations_name_readable_words_and_cues(model_dir: Path) -> None:
    pipeline, _ = ArtifactStore(model_dir).load()
    spam, ham = score(pipeline, [
        {"content": "Buy cheap viagra now!!! http://pills.example http://meds.example"},
        {"content": "Thanks, the part about export controls was a useful summary."},
    ])
    assert spam.spam_score > 0.9 > 0.1 > ham.spam_score
    names = [c.feature for c in spam.contributions]
    assert "2 links" in names
    assert all(name.split(" ", 1)[0] not in ("word", "phrase")
               or name.split(" ", 1)[1].strip("'").isprintable() for name in names)
    assert all(abs(c.weight) >= 0.25 for v in (spam, ham) for c in v.contributions)
    assert not {"word 'now'", "word 'the'"} & {c.feature for v in (spam, ham)
                                               for c in v.contributions}
    assert spam.contributions[0].weight > 0
    assert str(spam.contributions[0]).split()[-1].startswith("+")


def test_metadata_is_json(model_dir: Path) -> None:
    store = ArtifactStore(model_dir)
    raw = (model_dir / store.active_version() / "metadata.json").read_text()
    assert json.loads(raw)["version"] == store.active_version()


def test_fast_scoring_matches_the_pipeline(model_dir: Path) -> None:
    pipeline, _ = ArtifactStore(model_dir).load()
    samples = [e.features() for e in starter_corpus()[:50]] + [{"content": "x"}]
    fast = [v.spam_score for v in score(pipeline, samples, top=0)]
    slow = pipeline.predict_proba(samples)[:, 1]
    assert fast == pytest.approx(list(slow), abs=1e-12)


def _reference_explanations(pipeline: Any, samples: list[dict[str, str]],
                            top: int) -> list[list[tuple[str, float]]]:
    """The explanations computed the plain way: sklearn's own transform, feature names from
    ``get_feature_names_out``, character n-grams credited by scanning the words."""
    from collections import defaultdict

    from models.explain import _WORD, MIN_WEIGHT, quote, readable_words
    from models.features import AUTHOR_MARKER, CUE_NAMES, cue_values, describe_cue
    from models.text import model_text

    union, coef = pipeline.named_steps["features"], pipeline.named_steps["clf"].coef_[0]
    matrix = union.transform(samples).tocsr()
    spans, start = [], 0
    for name, branch in union.transformer_list:
        names = (list(CUE_NAMES) if name == "cues"
                 else list(branch.named_steps["tfidf"].get_feature_names_out()))
        spans.append((name, start, names))
        start += len(names)
    out = []
    for row, sample in enumerate(samples):
        words = {w.lower() for w in _WORD.findall(model_text(sample.get("content", "")))}
        totals: dict[str, float] = defaultdict(float)
        lo, hi = matrix.indptr[row], matrix.indptr[row + 1]
        for column, value in zip(matrix.indices[lo:hi], matrix.data[lo:hi], strict=True):
            weight = float(coef[column] * value)
            if weight == 0.0:
                continue
            branch, first, names = next(s for s in reversed(spans) if s[1] <= column)
            local = int(column) - first
            feature = str(names[local])
            if branch == "words":
                totals[f"'{feature}'"] += weight
            elif branch == "chars":
                piece = feature.strip()
                owners = [w for w in words if piece in w] or [piece]
                for owner in owners:
                    totals[f"'{owner}'"] += weight / len(owners)
            elif branch == "author":
                if feature != AUTHOR_MARKER:
                    totals[f"author '{feature}'"] += weight
            else:
                totals[describe_cue(CUE_NAMES[local], cue_values(sample)[local],
                                    sample.get("content", ""))] += weight
        ranked = sorted(totals.items(), key=lambda item: abs(item[1]), reverse=True)
        named = [(quote(name[1:-1]) if name.startswith("'") else name, weight)
                 for name, weight in ranked
                 if not name.startswith("'") or readable_words(name[1:-1])]
        out.append([(name, weight) for name, weight in named if abs(weight) >= MIN_WEIGHT][:top])
    return out


def test_fast_transform_and_explanations_are_identical_to_sklearn(model_dir: Path) -> None:
    import numpy as np

    from models.explain import transform

    pipeline, _ = ArtifactStore(model_dir).load()
    union = pipeline.named_steps["features"]
    samples = [dict(e.features()) for e in starter_corpus()[:300]] + [
        {"content": ""}, {"content": "x"}, {},
        {"content": "İSTANBUL straße ﬁne!!! $50/day http://cheap.example/x call +1 555 0100 99",
         "author_url": "https://spam-shop.example/", "author_email": "a@b.example"},
        {"content": "don't   stop -- really?! " * 40},
    ]
    for batch in [samples, *([s] for s in samples[:60] + samples[-5:])]:
        ours, theirs = transform(union, batch), union.transform(batch).tocsr()
        assert ours.shape == theirs.shape
        assert np.array_equal(ours.indptr, theirs.indptr)
        assert np.array_equal(ours.indices, theirs.indices)
        assert ours.data.tobytes() == theirs.data.tobytes()  # bit for bit, not approximately
    verdicts = score(pipeline, samples, top=8)
    assert [v.spam_score for v in verdicts] == list(pipeline.predict_proba(samples)[:, 1])
    explained = [[(c.feature, c.weight) for c in v.contributions] for v in verdicts]
    assert explained == _reference_explanations(pipeline, samples, top=8)
    # One comment takes a path without scipy (the worker's idle case): the same numbers.
    singles = [score(pipeline, [s], top=8)[0] for s in samples[:40] + samples[-5:]]
    assert [[(c.feature, c.weight) for c in v.contributions] for v in singles] == (
        explained[:40] + explained[-5:])
    assert [v.spam_score for v in singles] == [v.spam_score for v in verdicts[:40] + verdicts[-5:]]
    # A small batch (a burst's) is scored one at a time: the same numbers as the matrix's.
    small = score(pipeline, samples[:3], top=8)
    assert [v.spam_score for v in small] == [v.spam_score for v in verdicts[:3]]
    assert [[(c.feature, c.weight) for c in v.contributions] for v in small] == explained[:3]


def test_engagement_and_self_promotion_cues() -> None:
    from models.features import CUE_NAMES, cue_values

    def cue(name: str, text: str) -> float:
        return cue_values({"content": text})[CUE_NAMES.index(name)]

    assert cue("engagement_bait", "Like this comment if you're watching in 2015") == 1
    assert cue("engagement_bait", "sub 4 sub, please share") == 2
    assert cue("self_promotion", "Check out my new channel, subscribe!") == 1  # new channel
    assert cue("call_to_action", "Check out my new channel, subscribe!") == 2  # check, subscribe
    assert cue("self_promotion", "los invito a subscribirse a mi canal") == 2
    assert cue("self_promotion", "I make music videos, listen to my track") == 2
    # A phrase counts for one cue only: counted twice, the model learnt a negative weight for
    # one of them, and explanations said "promotes own channel -1.9" on blatant spam.
    for text in ("subscribe", "check out my site", "my channel", "follow me"):
        assert cue("call_to_action", text) >= 1 and cue("self_promotion", text) == 0
    for text in ("Came here to check the views", "Thumbs up for the robot guy",
                 "Great song, she deserves the award"):
        assert cue("engagement_bait", text) == cue("self_promotion", text) == 0


def test_cue_look_aheads_change_no_match() -> None:
    """The first-letter look-aheads only speed the cue patterns up: without them, every
    text of the starter corpus (and a few edge cases) gets the same matches."""
    import re

    from models import features

    texts = [e.content for e in starter_corpus()] + [
        "SUBSCRIBE!! Check out my channel", "i make videos", "Órder now", "sub4sub", "",
        "thumbs UP if you agree", "mi canal", "Plz share", "fix the free-ish tier",
    ]
    for name in ("CALL_TO_ACTION", "ENGAGEMENT", "SELF_PROMOTION"):
        fast = getattr(features, name)
        plain = re.compile(re.sub(r"^\\b\(\?=\[[a-z]+\]\)", r"\\b", fast.pattern), fast.flags)
        assert plain.pattern != fast.pattern
        assert [fast.findall(t) for t in texts] == [plain.findall(t) for t in texts], name


def test_cue_features_fitted_before_the_new_cues_keep_their_columns() -> None:
    import numpy as np

    from models.features import CUE_NAMES, CueFeatures

    cues = CueFeatures().fit([{"content": "x"}])
    assert cues.transform([{"content": "subscribe"}]).shape == (1, len(CUE_NAMES))
    legacy = CueFeatures()  # as unpickled from an older model: ten names, no n_cues_
    legacy.feature_names_out_ = np.array([f"cue:{n}" for n in CUE_NAMES[:10]], dtype=object)
    assert legacy.transform([{"content": "subscribe"}]).shape == (1, 10)
    assert list(legacy.get_feature_names_out()) == [f"cue:{n}" for n in CUE_NAMES[:10]]


def test_fast_path_honours_a_weighted_cue_block() -> None:
    """`features__transformer_weights` on the cues (tried for YouTube, not the default):
    `transform` and `score`, one comment or many, still give sklearn's numbers, bit for bit
    (such a union takes the generic path)."""
    import numpy as np

    from models.explain import transform
    from models.pipeline import build_pipeline

    examples = starter_corpus()[::3]
    pipeline = build_pipeline(features__transformer_weights={"cues": 2.0})
    pipeline.fit([e.features() for e in examples], [e.label for e in examples])
    samples = [dict(e.features()) for e in examples[:60]]
    union = pipeline.named_steps["features"]
    ours, theirs = transform(union, samples), union.transform(samples).tocsr()
    assert np.array_equal(ours.indices, theirs.indices)
    assert ours.data.tobytes() == theirs.data.tobytes()
    expected = list(pipeline.predict_proba(samples)[:, 1])
    assert [v.spam_score for v in score(pipeline, samples)] == expected
    assert [score(pipeline, [s])[0].spam_score for s in samples] == expected


# --- one text path: training, scoring and explanations read the same text --------------------

DISGUISED = [
    ("Ea\u200brn $500/d\u200bay from home, message me", "Earn $500/day from home, message me"),
    ("\uff25\uff41\uff52\uff4e passive income with crypto signals",
     "Earn passive income with crypto signals"),
    ("\u0412est \u0441r\u0443\u0440t\u043e \u0441\u0430sin\u043e b\u043enus today",
     "best crypto casino bonus today"),
    ("I\u2060n\u2060v\u2060e\u2060s\u2060t in gold &amp; silver", "Invest in gold & silver"),
]


@pytest.mark.parametrize(("disguised", "plain"), DISGUISED)
def test_a_disguised_comment_reads_as_its_plain_form(disguised: str, plain: str) -> None:
    from models.text import model_text

    assert model_text(disguised).lower() == model_text(plain).lower()
    assert model_text(model_text(disguised)) == model_text(disguised)  # idempotent


def test_genuine_non_latin_words_are_left_alone() -> None:
    from models.text import model_text

    for text in ("\u0421\u043f\u0430\u0441\u0438\u0431\u043e \u0437\u0430 \u0442\u0435"
                 "\u0441\u0442\u044b", "\u6587\u7ae0\u5199\u5f97\u5f88\u597d",
                 "\u03ba\u03b1\u03bb\u03b7\u03bc\u03ad\u03c1\u03b1"):
        assert model_text(text) == text


def test_a_stored_comment_and_its_training_example_give_the_same_features(
        model_dir: Path, tmp_path: Path) -> None:
    """The worker scores the stored text (only NFC); training reads the JSONL through
    clean_text. Both reach the pipeline's features through model_text: the same row, the same
    score and the same explanation, and a zero-width disguise scores like its clean form."""
    from models.explain import transform

    pipeline, _ = ArtifactStore(model_dir).load()
    union = pipeline.named_steps["features"]
    path = tmp_path / "train.jsonl"
    raw = [{"content": d, "label": "spam", "author_name": "Amanda"} for d, _ in DISGUISED]
    path.write_text("\n".join(json.dumps(r) for r in raw), encoding="utf-8")
    examples = load_paths([path])
    stored = [{"content": r["content"], "author_name": r["author_name"], "author_email": "",
               "author_url": ""} for r in raw]
    plain = [{**s, "content": p} for s, (_, p) in zip(stored, DISGUISED, strict=True)]
    trained = transform(union, [e.features() for e in examples])
    served = transform(union, stored)
    assert (trained != served).nnz == 0
    stored_verdicts = score(pipeline, stored, top=5)
    assert [str(c) for v in stored_verdicts for c in v.contributions] == [
        str(c) for v in score(pipeline, [e.features() for e in examples], top=5)
        for c in v.contributions]
    zero_width, clean = stored_verdicts[0], score(pipeline, [plain[0]], top=5)[0]
    assert zero_width.spam_score == pytest.approx(clean.spam_score, abs=1e-9)
    assert zero_width.spam_score > 0.9
