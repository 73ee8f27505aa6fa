"""Moderator accounts. Passwords and API tokens are stored only as hashes."""

from __future__ import annotations

import enum
import hashlib
import secrets
from datetime import datetime

from sqlalchemy import Boolean, Enum, Integer, String
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from service.db import Base
from service.db.types import UTCDateTime, utcnow


class Role(enum.StrEnum):
    """What an account may do: moderators decide comments; admins also manage rules."""

    MODERATOR = "moderator"
    ADMIN = "admin"


# NIST SP 800-63B's floor for a chosen password is 8; a moderator's account guards every
# reader's e-mail and IP, so 12 (a passphrase of three words passes, "Summer2024" does not).
PASSWORD_MIN_LENGTH = 12


def hash_token(token: str) -> str:
    """Tokens are 256 random bits, so a fast hash is enough and allows an indexed lookup."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh API token (shown once, never stored in clear)."""
    return "mod_" + secrets.token_urlsafe(32)


class Moderator(Base):
    """A person who reviews comments."""

    __tablename__ = "moderators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])
    )
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Raised by logout, a password change and disabling: every session cookie carrying an
    # older number stops working at once (the cookie alone cannot be revoked).
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def set_password(self, password: str) -> None:
        """Store a salted scrypt hash of ``password`` and end every session of the account."""
        if len(password) < PASSWORD_MIN_LENGTH:
            raise ValueError(f"the password must be at least {PASSWORD_MIN_LENGTH} characters")
        self.password_hash = generate_password_hash(password)
        self.revoke_sessions()

    def revoke_sessions(self) -> None:
        """Log the account out everywhere (its session cookies stop working)."""
        self.session_version = (self.session_version or 0) + 1

    def check_password(self, password: str) -> bool:
        """True if ``password`` is this account's password."""
        return bool(self.password_hash) and check_password_hash(self.password_hash or "", password)

    def rotate_token(self) -> str:
        """Replace the API token; returns the new one (the only time it is visible)."""
        token = new_token()
        self.token_hash = hash_token(token)
        return token

    @property
    def is_admin(self) -> bool:
        """Admins manage rules and settings."""
        return self.role == Role.ADMIN
