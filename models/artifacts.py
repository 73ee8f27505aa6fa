"""The artifact store: versioned model folders (model.joblib + metadata.json) under one root,
and an ``ACTIVE`` pointer naming the version in use.

Artifacts are pickles, so one is loaded only from this store and only when its SHA-256 matches
the metadata written beside it. Reading metadata needs neither joblib nor scikit-learn, so the
web process can report on the model without importing them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
ACTIVE_FILE = "ACTIVE"


class ArtifactError(RuntimeError):
    """An artifact is missing, incomplete or does not match its recorded hash."""


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class ArtifactStore:
    """Versioned artifacts under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def new_version(self) -> str:
        """A sortable, unique version name: UTC time plus a random suffix."""
        return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)

    def save(self, pipeline: Any, metadata: dict[str, Any], *, activate: bool = False) -> str:
        """Write a new version; metadata gains ``version``, ``sha256`` and ``created_at``."""
        import joblib

        version = self.new_version()
        folder = self.root / version
        folder.mkdir(parents=True)
        model_path = folder / MODEL_FILE
        joblib.dump(pipeline, model_path, compress=3)
        metadata = {
            **metadata,
            "version": version,
            "sha256": sha256_of(model_path),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        _write_atomic(folder / METADATA_FILE, json.dumps(metadata, indent=2, sort_keys=True))
        if activate:
            self.activate(version)
        return version

    def versions(self) -> list[str]:
        """Every complete version, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / METADATA_FILE).is_file())

    def activate(self, version: str) -> None:
        """Point ``ACTIVE`` at ``version`` (atomically; workers pick it up on their next job)."""
        self.metadata(version)
        _write_atomic(self.root / ACTIVE_FILE, version + "\n")

    def active_version(self) -> str | None:
        """The active version's name, or None when no model was ever activated."""
        try:
            return (self.root / ACTIVE_FILE).read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def metadata(self, version: str) -> dict[str, Any]:
        """A version's metadata; ArtifactError if it is missing or unreadable."""
        if not version or "/" in version or version.startswith("."):
            raise ArtifactError(f"invalid model version {version!r}")
        path = self.root / version / METADATA_FILE
        try:
            return dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"model {version}: unreadable metadata ({exc})") from exc

    def _checked_bytes(self, version: str) -> tuple[bytes, dict[str, Any]]:
        metadata = self.metadata(version)
        try:
            data = (self.root / version / MODEL_FILE).read_bytes()
        except OSError as exc:
            raise ArtifactError(f"model {version}: {MODEL_FILE} unreadable ({exc})") from exc
        if hashlib.sha256(data).hexdigest() != metadata.get("sha256"):
            raise ArtifactError(f"model {version}: SHA-256 mismatch, refusing to load")
        return data, metadata

    def verify(self, version: str) -> dict[str, Any]:
        """Metadata of ``version`` after checking the model file's hash against it."""
        return self._checked_bytes(version)[1]

    def load(self, version: str | None = None) -> tuple[Any, dict[str, Any]]:
        """The pipeline and metadata of ``version`` (default: the active one), hash-checked.

        The bytes that were hashed are the bytes unpickled: no window for a swap between."""
        import joblib

        version = version or self.active_version()
        if version is None:
            raise ArtifactError(f"no active model in {self.root}")
        data, metadata = self._checked_bytes(version)
        return joblib.load(io.BytesIO(data)), metadata
