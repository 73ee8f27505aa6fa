"""A self-contained HTML report of an evaluation: headline numbers and pictures (ROC and PR
curves, score histogram by class, calibration, confusion matrix), images inlined as PNG."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: render to memory

import matplotlib.pyplot as plt
import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

HEADLINE = ("n", "precision", "recall", "f1", "mcc", "roc_auc", "pr_auc", "ham_flagged",
            "spam_published", "auto_decided")


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def figures(labels: Sequence[int], scores: Sequence[float], low: float, high: float,
            title: str) -> dict[str, str]:
    """Base64 PNGs of the five pictures for one model's scores."""
    y = np.asarray(labels)
    p = np.asarray(scores, dtype=float)
    out: dict[str, str] = {}
    both = len(set(y.tolist())) == 2
    if both:
        fig, ax = plt.subplots(figsize=(4, 3.5))
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr)
        ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
        ax.set(xlabel="ham flagged (FPR)", ylabel="spam caught (TPR)", title=f"ROC: {title}")
        out["roc"] = _png(fig)
        fig, ax = plt.subplots(figsize=(4, 3.5))
        precision, recall, _ = precision_recall_curve(y, p)
        ax.plot(recall, precision)
        ax.set(xlabel="recall", ylabel="precision", title=f"Precision-recall: {title}")
        out["pr"] = _png(fig)
        fig, ax = plt.subplots(figsize=(4, 3.5))
        observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
        ax.plot(predicted, observed, marker="o")
        ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
        ax.set(xlabel="predicted p(spam)", ylabel="observed spam share",
               title=f"Calibration: {title}")
        out["calibration"] = _png(fig)
    fig, ax = plt.subplots(figsize=(4, 3.5))
    bins = np.linspace(0, 1, 41).tolist()
    ax.hist(p[y == 0], bins=bins, alpha=0.6, label="ham")
    ax.hist(p[y == 1], bins=bins, alpha=0.6, label="spam")
    for cut in (low, high):
        ax.axvline(cut, color="black", linestyle="--", linewidth=1)
    ax.set(xlabel="p(spam)", ylabel="comments", title=f"Scores by class: {title}",
           yscale="log")
    ax.legend()
    out["histogram"] = _png(fig)
    fig, ax = plt.subplots(figsize=(3.2, 3))
    bands = np.where(p > high, 2, np.where(p < low, 0, 1))
    matrix = confusion_matrix(y, bands, labels=[0, 1, 2])[:2]
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center")
    ax.set_xticks([0, 1, 2], ["published", "held", "spam"])
    ax.set_yticks([0, 1], ["ham", "spam"])
    ax.set_title(f"Policy outcome: {title}")
    out["confusion"] = _png(fig)
    return out


def write_report(path: Path, title: str, sections: list[dict[str, Any]],
                 notes: Sequence[str] = ()) -> None:
    """Write the HTML report. Each section: name, metrics, labels, scores, low, high."""
    parts = [f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>",
             "<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1200px}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
             "img{margin:4px}</style>",
             f"<h1>{html.escape(title)}</h1>"]
    parts += [f"<p>{html.escape(note)}</p>" for note in notes]
    parts.append("<table><tr><th>model / data</th>"
                 + "".join(f"<th>{k}</th>" for k in HEADLINE) + "</tr>")
    for section in sections:
        metrics = section["metrics"]
        parts.append(f"<tr><td>{html.escape(section['name'])}</td>" + "".join(
            f"<td>{html.escape(str(metrics.get(k)))}</td>" for k in HEADLINE) + "</tr>")
    parts.append("</table>")
    for section in sections:
        parts.append(f"<h2>{html.escape(section['name'])}</h2>")
        confusion = section["metrics"].get("confusion")
        if confusion:
            parts.append("<p>At the spam cut: " + html.escape(
                f"of the genuine comments, {confusion.get('tn', 0):,} not filed as spam and "
                f"{confusion.get('fp', 0):,} filed as spam; of the spam, "
                f"{confusion.get('tp', 0):,} caught and {confusion.get('fn', 0):,} missed.")
                + "</p>")
        images = figures(section["labels"], section["scores"], section["low"], section["high"],
                         section["name"])
        parts += [f'<img alt="{name}" src="data:image/png;base64,{data}">'
                  for name, data in images.items()]
    path.write_text("\n".join(parts), encoding="utf-8")
