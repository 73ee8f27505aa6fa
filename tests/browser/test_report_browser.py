"""The retrain report as a blog owner opens it in Chromium: the plain-words summary, the
verdict of the gate and the thresholds come first, the plots after them."""

from __future__ import annotations

from pathlib import Path

import pytest

from service import learning
from service.db import Comment, CommentStatus, Label
from service.db.model_store import ModelStore

pytestmark = pytest.mark.slow


def test_the_retrain_report_speaks_to_the_owner_first(browser, db, tmp_path: Path,
                                                      screenshot) -> None:
    store = ModelStore(tmp_path / "store")
    for i in range(8):
        db.add(Comment(post="p", author_name="A", status=CommentStatus.SPAM, label=Label.SPAM,
                       content=f"Sunflower seeds wholesale offer, message Karl on signal #{i}"))
        db.add(Comment(post="p", author_name="B", status=CommentStatus.PUBLISHED,
                       label=Label.HAM, content=f"Loved the bit about HBM stacks, thanks #{i}"))
    db.commit()
    result = learning.retrain(db, store, actor="tester")
    db.commit()

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(result.report.as_uri())
        summary = page.get_by_text("of 1,000 genuine comments", exact=False).first
        verdict = page.get_by_text("PROMOTED", exact=False).first
        plot = page.locator("img").first
        assert summary.is_visible() and verdict.is_visible() and plot.is_visible()
        top = {name: box["y"] for name, box in (
            ("summary", summary.bounding_box()), ("verdict", verdict.bounding_box()),
            ("plot", plot.bounding_box()))}
        assert top["summary"] < top["plot"] and top["verdict"] < top["plot"], top
        body = page.inner_text("body")
        assert "threshold" in body.lower(), body[:800]
        # How much the figures rest on, and the confusion matrix in words, not JSON.
        assert "Measured on 16 labelled comments" in body and "rough guide" in body
        assert "{" not in body and "of the spam," in body
        screenshot(page, "retrain-report")
    finally:
        page.close()
