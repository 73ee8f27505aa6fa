"""The model registry: every trained version, its metrics and data hash, who promoted it;
the artifacts themselves (joblib bytes, metadata, SHA-256) and the one row naming the active
version.

Workers read the active row (one small primary-key read per batch) and fetch an artifact's
bytes only when that row names a version they have not cached (`service/db/model_store.py`),
so no machine needs a shared disk."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.db.types import UTCDateTime, utcnow


class ModelVersion(Base):
    """One trained model."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    data_sha256: Mapped[str] = mapped_column(String(64))
    n_examples: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    # "candidate", "promoted", "refused" (the gate said no), "retired" (replaced or rolled back)
    state: Mapped[str] = mapped_column(String(16), default="candidate")
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    promoted_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    gate: Mapped[str | None] = mapped_column(Text, nullable=True)


class ModelArtifact(Base):
    """A trained model's bytes (joblib, compressed: about 1 MB for the starter model), its
    metadata and the SHA-256 the bytes must match before anyone unpickles them."""

    __tablename__ = "model_artifacts"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    # "metadata" is the declarative base's own attribute: the column keeps the name.
    details: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    # Deferred: listing versions or reading metadata never drags the bytes along.
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# The active row's fixed key: there is one active model for the whole service.
ACTIVE_ROW_ID = 1


class ActiveModel(Base):
    """The version in use, one row (its SHA-256 copied from the artifact when it was
    activated): what every worker compares its loaded model with."""

    __tablename__ = "model_active"
    __table_args__ = (CheckConstraint(f"id = {ACTIVE_ROW_ID}", name="ck_model_active_one_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=ACTIVE_ROW_ID,
                                    autoincrement=False)
    version: Mapped[str] = mapped_column(String(64), ForeignKey("model_artifacts.version"))
    sha256: Mapped[str] = mapped_column(String(64))
    activated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
