"""Metrics of a model's scores against labels: the binary verdict at a cut, and the
three-band policy's outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    precision_score,
    recall_score,
    roc_auc_score,
)

from models.policy import Band, Thresholds


def binary_metrics(
    labels: Sequence[int], scores: Sequence[float], cut: float = 0.5
) -> dict[str, Any]:
    """Accuracy, precision, recall, F1 and MCC of ``score >= cut``; ROC and PR AUC of ranking."""
    y = np.asarray(labels)
    p = np.asarray(scores, dtype=float)
    predicted = (p >= cut).astype(int)
    both = len(set(y.tolist())) == 2
    tn, fp, fn, tp = confusion_matrix(y, predicted, labels=[0, 1]).ravel()
    return {
        "n": len(y),
        "n_spam": int(y.sum()),
        "cut": cut,
        "accuracy": round(float(accuracy_score(y, predicted)), 4),
        "precision": round(float(precision_score(y, predicted, zero_division=0)), 4),
        "recall": round(float(recall_score(y, predicted, zero_division=0)), 4),
        "f1": round(float(f1_score(y, predicted, zero_division=0)), 4),
        "mcc": round(float(matthews_corrcoef(y, predicted)), 4),
        "roc_auc": round(float(roc_auc_score(y, p)), 4) if both else None,
        "pr_auc": round(float(average_precision_score(y, p)), 4) if both else None,
        "confusion": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }


def band_metrics(
    labels: Sequence[int], scores: Sequence[float], thresholds: Thresholds
) -> dict[str, Any]:
    """Shares of ham filed as spam, spam published, and comments decided without a human."""
    bands = [thresholds.band(float(s)) for s in scores]
    ham = [b for b, y in zip(bands, labels, strict=True) if y == 0]
    spam = [b for b, y in zip(bands, labels, strict=True) if y == 1]
    return {
        "ham_flagged": round(ham.count(Band.SPAM) / len(ham), 4) if ham else None,
        "spam_published": round(spam.count(Band.PUBLISH) / len(spam), 4) if spam else None,
        "auto_decided": round(1 - bands.count(Band.HOLD) / len(bands), 4) if bands else None,
        "ham_published": round(ham.count(Band.PUBLISH) / len(ham), 4) if ham else None,
        "spam_kept_off": round(1 - spam.count(Band.PUBLISH) / len(spam), 4) if spam else None,
    }


def all_metrics(
    labels: Sequence[int], scores: Sequence[float], thresholds: Thresholds, cut: float = 0.5
) -> dict[str, Any]:
    """`binary_metrics` and `band_metrics` in one flat mapping."""
    return {**binary_metrics(labels, scores, cut), **band_metrics(labels, scores, thresholds)}
