"""The model registry: every trained version, its metrics and data hash, who promoted it.

The artifact store's ``ACTIVE`` pointer is what workers read (a cheap stat per job); this table
is the history and the record of who did what."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String, Text
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
