"""The artifact store: versioned model folders (model.joblib + metadata.json) under one root,
and an ``ACTIVE`` pointer naming the version in use.

Artifacts are pickles, so one is loaded only from bytes whose SHA-256 matches the hash
recorded for them (`load_checked`): from this folder store, or from the database's copy
(`service/db/model_store.py`, which keeps its local cache in this folder layout). Reading
metadata needs neither joblib nor scikit-learn, so the web process can report on the model
without importing them.
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


def dump_bytes(pipeline: Any) -> bytes:
    """The joblib bytes of ``pipeline`` (compressed), as stored and hashed."""
    import joblib

    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer, compress=3)
    return buffer.getvalue()


def load_checked(data: bytes, sha256: str, name: str = "model") -> Any:
    """Unpickle ``data`` only if its SHA-256 is ``sha256``; ArtifactError otherwise.

    The bytes that were hashed are the bytes unpickled: no window for a swap between."""
    import joblib

    if not sha256 or hashlib.sha256(data).hexdigest() != sha256:
        raise ArtifactError(f"{name}: SHA-256 mismatch, refusing to load")
    return joblib.load(io.BytesIO(data))


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
        data = dump_bytes(pipeline)
        version = self.new_version()
        metadata = {
            **metadata,
            "version": version,
            "sha256": hashlib.sha256(data).hexdigest(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.put(version, data, metadata)
        if activate:
            self.activate(version)
        return version

    def put(self, version: str, data: bytes, metadata: dict[str, Any]) -> Path:
        """Write ``version`` from its bytes and metadata (a copy from elsewhere: the database's
        into a worker's cache). The metadata file comes last: a folder without it is no
        version, so a crash midway leaves nothing half-written to load."""
        folder = self.root / version
        if not version or "/" in version or version.startswith("."):
            raise ArtifactError(f"invalid model version {version!r}")
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{MODEL_FILE}.{secrets.token_hex(4)}"
        tmp.write_bytes(data)
        os.replace(tmp, folder / MODEL_FILE)
        _write_atomic(folder / METADATA_FILE, json.dumps(metadata, indent=2, sort_keys=True))
        return folder

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

    def read(self, version: str) -> tuple[bytes, dict[str, Any]]:
        """The model bytes and metadata of ``version``, hash-checked (to copy them elsewhere)."""
        return self._checked_bytes(version)

    def verify(self, version: str) -> dict[str, Any]:
        """Metadata of ``version`` after checking the model file's hash against it."""
        return self._checked_bytes(version)[1]

    def load(self, version: str | None = None) -> tuple[Any, dict[str, Any]]:
        """The pipeline and metadata of ``version`` (default: the active one), hash-checked.

        The bytes that were hashed are the bytes unpickled: no window for a swap between."""
        version = version or self.active_version()
        if version is None:
            raise ArtifactError(f"no active model in {self.root}")
        data, metadata = self._checked_bytes(version)
        return load_checked(data, metadata["sha256"], f"model {version}"), metadata
