"""Secrets at rest: MultiFernet over ENCRYPTION_KEYS (the first key encrypts, every key decrypts).

To rotate: put a new key first and keep the old ones after it; values re-encrypt with the new key as they
are rewritten (`rotate`); drop an old key only when nothing encrypted with it is left.
"""

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator


class SecretUnreadable(RuntimeError):
    """No configured key opens this value (a key was removed too early)."""


def _fernet() -> MultiFernet:
    keys = current_app.config["ENCRYPTION_KEYS"]
    cached = current_app.extensions.get("bogbro.fernet")
    if cached is None or cached[0] != keys:
        cached = (keys, MultiFernet([Fernet(key) for key in keys]))
        current_app.extensions["bogbro.fernet"] = cached
    return cached[1]


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("none of ENCRYPTION_KEYS decrypts this value") from exc


def rotate(token: str) -> str:
    """Re-encrypt with the first key."""
    return _fernet().rotate(token.encode()).decode()


class EncryptedJSON(TypeDecorator):
    """A JSON value stored encrypted (credentials, tokens); decrypted only when read in the app."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else encrypt(json.dumps(value, sort_keys=True))

    def process_result_value(self, value, dialect):
        return None if value is None else json.loads(decrypt(value))
