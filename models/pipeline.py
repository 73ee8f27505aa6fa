"""The one scikit-learn pipeline: TF-IDF words and characters, author words, generic cues,
feeding a logistic regression (its probabilities drive the three-band policy)."""

from __future__ import annotations

from typing import Any

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer, MaxAbsScaler

from models.features import CueFeatures, author_of, content_of

SEED = 0

DEFAULT_PARAMS: dict[str, Any] = {
    # Measured on the YouTube corpus: C in 10-100 beats the default 1.0 (sharper n-gram
    # weights); with the cues weighted x2, leave-one-video-out MCC is flat over C 30-100
    # (0.908-0.914), so C=50 is a middle value, not a tuned optimum.
    "clf__C": 50.0,
    # The dozen cue columns compete with ~500k n-gram columns under one penalty; doubling their
    # scale lets the generic cues (links, calls to action, engagement bait) carry more weight,
    # which is what transfers to videos never seen (leave-one-video-out MCC 0.897 -> 0.908).
    "features__transformer_weights": {"cues": 2.0},
}


def build_pipeline(**params: Any) -> Pipeline:
    """A fresh, unfitted pipeline; ``params`` are `set_params` names (``clf__C=10``)."""
    pipeline = Pipeline(
        [
            (
                "features",
                FeatureUnion(
                    [
                        (
                            "words",
                            Pipeline(
                                [
                                    ("text", FunctionTransformer(content_of)),
                                    (
                                        "tfidf",
                                        TfidfVectorizer(
                                            ngram_range=(1, 2), sublinear_tf=True, min_df=1,
                                            token_pattern=r"(?u)\b\w+\b", max_features=200_000,
                                        ),
                                    ),
                                ]
                            ),
                        ),
                        (
                            "chars",
                            Pipeline(
                                [
                                    ("text", FunctionTransformer(content_of)),
                                    (
                                        "tfidf",
                                        TfidfVectorizer(
                                            analyzer="char_wb", ngram_range=(2, 5),
                                            sublinear_tf=True, min_df=2, max_features=300_000,
                                        ),
                                    ),
                                ]
                            ),
                        ),
                        (
                            "author",
                            Pipeline(
                                [
                                    ("text", FunctionTransformer(author_of)),
                                    ("tfidf", TfidfVectorizer(sublinear_tf=True)),
                                ]
                            ),
                        ),
                        ("cues", Pipeline([("cues", CueFeatures()), ("scale", MaxAbsScaler())])),
                    ]
                ),
            ),
            (
                "clf",
                LogisticRegression(
                    C=20.0, class_weight="balanced", max_iter=5000, random_state=SEED
                ),
            ),
        ]
    )
    return pipeline.set_params(**{**DEFAULT_PARAMS, **params})
