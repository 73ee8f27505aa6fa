"""The score bands (publish below ``low``, spam above ``high``) of the model versions, as the
moderators' pages draw them: from each version's metadata, or the operator's overrides
(SPAM_THRESHOLD_LOW / _HIGH), never from cut-offs written into a page."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from flask import current_app

from models.artifacts import ArtifactError
from service import database
from service.db.model_store import ModelStore


@lru_cache(maxsize=256)
def _stored_thresholds(version: str) -> tuple[float, float] | None:
    # A version's metadata never changes once written, so it is read once per process.
    try:
        limits = ModelStore().metadata(database.session(), version)["thresholds"]
        return float(limits["low"]), float(limits["high"])
    except (ArtifactError, KeyError, TypeError, ValueError):
        return None


def _active_version() -> str | None:
    return ModelStore().active_version(database.session())


def thresholds_of(version: str | None) -> dict[str, float] | None:
    """``{"low", "high"}`` the worker uses for ``version`` (None: unknown version)."""
    config = current_app.config
    low, high = config["SPAM_THRESHOLD_LOW"], config["SPAM_THRESHOLD_HIGH"]
    if low is not None and high is not None:
        return {"low": low, "high": high}
    if not version:
        return None
    stored = _stored_thresholds(version)
    return {"low": stored[0], "high": stored[1]} if stored else None


def active_model() -> dict[str, Any]:
    """The active version and its bands (all None when no model was activated)."""
    version = _active_version()
    bands: dict[str, float | None] = {"low": None, "high": None}
    bands.update(thresholds_of(version) or {})
    return {"version": version, **bands}


def bands_of(versions: Iterable[str | None]) -> dict[str, dict[str, float]]:
    """The bands of each known version among ``versions``."""
    found = {}
    for version in set(versions):
        bands = thresholds_of(version)
        if version and bands:
            found[version] = bands
    return found


def drawn_with(version: str | None) -> dict[str, float] | None:
    """The bands a comment scored by ``version`` is drawn with: its model's, or the active
    model's when that version is gone from the store."""
    active = _active_version()
    return thresholds_of(version) or thresholds_of(active)
