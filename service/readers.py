"""Returning readers: a signed token the widget keeps, so trust is earned by a browser that
wrote approved comments, not by an e-mail address anyone can type.

Every accepted comment's answer carries a ``reader_token``: a random reader id signed with
SECRET_KEY. The widget keeps it (localStorage, on the blog's origin) and sends it back with the
reader's later comments; the comment row stores the id. A reader is trusted once moderators
approved ``trusted_after`` comments sent with that id (service/rules.py). A stranger who knows
an approved reader's name and e-mail has neither the token nor a way to forge one; a forged
or altered token counts as none (a new id is issued), never as an error a bot could probe.
"""

from __future__ import annotations

import secrets

from itsdangerous import BadSignature, URLSafeSerializer

SALT = "returning-reader"
# 128 random bits, hex: no two readers share an id by chance.
ID_BYTES = 16
ID_LENGTH = 2 * ID_BYTES


def _serializer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt=SALT)


def new_id() -> str:
    """A fresh reader id."""
    return secrets.token_hex(ID_BYTES)


def token_for(secret_key: str, reader_id: str) -> str:
    """The signed token naming ``reader_id``."""
    return str(_serializer(secret_key).dumps(reader_id))


def id_from(secret_key: str, token: str | None) -> str | None:
    """The reader id inside a genuine token; None for no token or a forged one."""
    if not token:
        return None
    try:
        reader_id = _serializer(secret_key).loads(token)
    except BadSignature:
        return None
    if not isinstance(reader_id, str) or len(reader_id) != ID_LENGTH:
        return None
    return reader_id
