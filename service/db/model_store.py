"""Models in the database, each machine keeping a local copy by hash.

Every artifact (joblib bytes, metadata, SHA-256) is a `ModelArtifact` row and the version in
use is the one `ActiveModel` row, so training, promotion and rollback work from any machine
that reaches the database, and no machine needs a shared disk. A machine may keep copies in a
local folder (``MODEL_DIR``, in the folder layout of `models.artifacts.ArtifactStore`); a copy
is used only when it holds the bytes whose SHA-256 the database names, so a worker fetches a
version's bytes once, not per job, and a stale or damaged copy is fetched again. Bytes are
unpickled only after their hash matched (`models.artifacts.load_checked`).

A store of folders from before the database kept models (``MODEL_DIR`` with its ``ACTIVE``
file) comes in with `import_folder` (``flask --app service model import``)."""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, undefer

from models.artifacts import ArtifactError, ArtifactStore, load_checked
from service.db.registry import ACTIVE_ROW_ID, ActiveModel, ModelArtifact
from service.db.types import utcnow

log = logging.getLogger(__name__)

# Active versions whose bytes this process hashed, (version, SHA-256, size) -> when: /readyz
# (probed every few seconds by each load balancer) reads and hashes the bytes at most this
# often, and compares the row's hash and size in between.
VERIFY_EVERY_SECONDS = 60.0
_verified: dict[tuple[str, str, int], float] = {}


class ModelStore:
    """The database's models, with an optional local cache folder (``cache_dir``)."""

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        self.cache = ArtifactStore(cache_dir) if cache_dir else None
        self._scratch: ArtifactStore | None = None

    def local(self) -> ArtifactStore:
        """The folder new versions and their reports are written to: the cache, or (without
        one) a temporary folder of this process."""
        if self.cache is not None:
            return self.cache
        if self._scratch is None:
            self._scratch = ArtifactStore(tempfile.mkdtemp(prefix="models-"))
        return self._scratch

    # --- reading -------------------------------------------------------------------------

    def active(self, session: Session) -> tuple[str, str] | None:
        """The active version and its SHA-256, or None: one primary-key read, no bytes."""
        row = session.execute(select(ActiveModel.version, ActiveModel.sha256)
                              .where(ActiveModel.id == ACTIVE_ROW_ID)).first()
        return (row.version, row.sha256) if row is not None else None

    def active_version(self, session: Session) -> str | None:
        """The active version's name, or None when none was ever activated."""
        active = self.active(session)
        return active[0] if active else None

    def versions(self, session: Session) -> list[str]:
        """Every stored version, oldest first (names sort by creation time)."""
        return sorted(session.scalars(select(ModelArtifact.version)))

    def metadata(self, session: Session, version: str) -> dict[str, Any]:
        """A version's metadata; ArtifactError if the database has no such version."""
        details = session.scalar(select(ModelArtifact.details)
                                 .where(ModelArtifact.version == version))
        if details is None:
            raise ArtifactError(f"no model {version!r} in the database")
        return dict(details)

    def _checked(self, session: Session, version: str, sha256: str | None = None
                 ) -> tuple[bytes, dict[str, Any]]:
        """A version's bytes and metadata after checking the bytes against the hash its row
        records (and ``sha256``, the active row's, when given)."""
        row = session.scalars(select(ModelArtifact).options(undefer(ModelArtifact.data))
                              .where(ModelArtifact.version == version)).first()
        if row is None:
            raise ArtifactError(f"no model {version!r} in the database")
        expected = {row.sha256, row.details.get("sha256"), *([sha256] if sha256 else [])}
        if len(expected) != 1 or hashlib.sha256(row.data).hexdigest() != row.sha256:
            raise ArtifactError(f"model {version}: SHA-256 mismatch, refusing to load")
        return row.data, dict(row.details)

    def verify(self, session: Session, version: str) -> dict[str, Any]:
        """Metadata of ``version`` after checking its bytes' hash."""
        return self._checked(session, version)[1]

    def check_active(self, session: Session) -> str:
        """The active version, its bytes checked against its hash (read and hashed at most
        once a minute by this process, its hash and size compared in between); ArtifactError."""
        row = session.execute(
            select(ActiveModel.version, ActiveModel.sha256, ModelArtifact.sha256.label("own"),
                   func.length(ModelArtifact.data).label("size"))
            .join(ModelArtifact, ModelArtifact.version == ActiveModel.version)
            .where(ActiveModel.id == ACTIVE_ROW_ID)).first()
        if row is None:
            raise ArtifactError("no active model in the database")
        if row.sha256 != row.own:
            raise ArtifactError(f"model {row.version}: SHA-256 mismatch")
        key = (row.version, row.sha256, int(row.size))
        if time.monotonic() - _verified.get(key, -VERIFY_EVERY_SECONDS) >= VERIFY_EVERY_SECONDS:
            _verified.pop(key, None)
            self._checked(session, row.version, row.sha256)
            _verified[key] = time.monotonic()
        return str(row.version)

    def load(self, session: Session, version: str | None = None) -> tuple[Any, dict[str, Any]]:
        """The pipeline and metadata of ``version`` (default: the active one): from the local
        copy when it holds the bytes the database names, else from the database (and then
        kept locally). Hash-checked either way."""
        if version is None:
            active = self.active(session)
            if active is None:
                raise ArtifactError("no active model in the database")
            version, sha256 = active
        else:
            sha256 = session.scalar(select(ModelArtifact.sha256)
                                    .where(ModelArtifact.version == version)) or ""
            if not sha256:
                raise ArtifactError(f"no model {version!r} in the database")
        if self.cache is not None and version in self.cache.versions():
            try:
                if self.cache.metadata(version).get("sha256") == sha256:
                    return self.cache.load(version)
            except ArtifactError as error:
                log.warning("local copy of model %s unusable (%s); fetching it again",
                            version, error)
        data, metadata = self._checked(session, version, sha256)
        pipeline = load_checked(data, sha256, f"model {version}")
        if self.cache is not None:
            try:
                self.cache.put(version, data, metadata)
            except OSError as error:  # a full or read-only cache costs a fetch, nothing else
                log.warning("could not keep model %s in %s: %s", version, self.cache.root, error)
        return pipeline, metadata

    # --- writing (the caller commits) ----------------------------------------------------

    def add(self, session: Session, data: bytes, metadata: dict[str, Any]) -> str:
        """Store an artifact (``metadata`` names its version and SHA-256, which ``data`` must
        match). Storing the same version again with the same bytes changes nothing."""
        version = str(metadata.get("version") or "")
        sha256 = hashlib.sha256(data).hexdigest()
        if not version or metadata.get("sha256") != sha256:
            raise ArtifactError(f"model {version or '?'}: SHA-256 mismatch, not stored")
        known = session.scalar(select(ModelArtifact.sha256)
                               .where(ModelArtifact.version == version))
        if known is not None:
            if known != sha256:
                raise ArtifactError(f"model {version} is stored already with other bytes")
            return version
        session.add(ModelArtifact(version=version, sha256=sha256, size=len(data),
                                  details=metadata, data=data))
        session.flush()
        return version

    def save(self, session: Session, pipeline: Any, metadata: dict[str, Any]) -> str:
        """A new version of a trained pipeline: written to the local folder (reports go beside
        it, `folder`) and stored in the database. Not activated."""
        local = self.local()
        version = local.save(pipeline, metadata)
        self.add(session, *local.read(version))
        return version

    def folder(self, version: str) -> Path:
        """The local folder of ``version`` (where its reports are written)."""
        return self.local().root / version

    def activate(self, session: Session, version: str, actor: str | None = None) -> None:
        """Make ``version`` the active one (its bytes hash-checked first); every worker loads
        it before its next batch."""
        metadata = self.verify(session, version)
        row = session.get(ActiveModel, ACTIVE_ROW_ID)
        if row is None:
            row = ActiveModel(id=ACTIVE_ROW_ID, version=version, sha256=metadata["sha256"])
            session.add(row)
        row.version, row.sha256 = version, metadata["sha256"]
        row.activated_at, row.activated_by = utcnow(), actor
        session.flush()

    def import_folder(self, session: Session, folder: ArtifactStore, *, activate: bool = False,
                      actor: str = "import") -> tuple[list[str], str | None]:
        """Copy every version of a folder store that the database lacks (hash-checked), and
        activate the folder's ``ACTIVE`` one if the database has no active model (or if
        ``activate``). Returns the versions copied and the one activated (or None)."""
        copied = []
        known = set(self.versions(session))
        for version in folder.versions():
            if version not in known:
                self.add(session, *folder.read(version))
                copied.append(version)
        chosen = folder.active_version()
        activated = None
        if chosen is not None and (activate or self.active(session) is None) and \
                self.active_version(session) != chosen:
            if chosen not in known and chosen not in copied:
                raise ArtifactError(f"{folder.root}: ACTIVE names {chosen}, which is missing")
            self.activate(session, chosen, actor)
            activated = chosen
        return copied, activated
