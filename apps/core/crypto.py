"""Encryption of secrets at rest (data-source passwords, LLM API keys).

`cryptography`'s MultiFernet over `settings.FIELD_ENCRYPTION_KEYS`: the first key
encrypts, every key decrypts, so keys rotate without downtime — put a new key
first, run `manage.py rotate_encryption_keys` (which re-encrypts every stored
value with it), then drop the old key. Tokens are authenticated: a changed or
foreign token fails to decrypt instead of yielding garbage.
"""

from __future__ import annotations

import threading

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

__all__ = ["DecryptionError", "decrypt", "encrypt", "is_current", "rotate"]

_lock = threading.Lock()
_cache: dict[tuple[str, ...], tuple[MultiFernet, Fernet]] = {}


class DecryptionError(Exception):
    """A stored secret cannot be decrypted with the configured keys (a key was dropped too early)."""


def _keys() -> tuple[MultiFernet, Fernet]:
    """MultiFernet over the configured keys, and the first key's Fernet; cached per key list."""
    configured = settings.FIELD_ENCRYPTION_KEYS
    if isinstance(configured, str):
        configured = configured.split(",")
    keys = tuple(key.strip() for key in configured if key and key.strip())
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: secrets cannot be encrypted.")
    with _lock:
        cached = _cache.get(keys)
        if cached is None:
            try:
                fernets = [Fernet(key) for key in keys]
            except (ValueError, TypeError):
                raise ImproperlyConfigured(
                    "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key "
                    "(32 url-safe base64-encoded bytes)."
                ) from None
            cached = (MultiFernet(fernets), fernets[0])
            _cache.clear()  # only the current key list is ever used again
            _cache[keys] = cached
        return cached


def encrypt(text: str) -> str:
    """The Fernet token of `text`, encrypted with the first configured key."""
    multi, _first = _keys()
    return multi.encrypt(text.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    """The text a token holds; DecryptionError when no configured key opens it."""
    multi, _first = _keys()
    try:
        return multi.decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError):
        raise DecryptionError(
            "A stored secret cannot be decrypted with the configured FIELD_ENCRYPTION_KEYS."
        ) from None


def rotate(token: str) -> str:
    """The same secret re-encrypted with the first key (DecryptionError when no key opens it)."""
    multi, _first = _keys()
    try:
        return multi.rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError):
        raise DecryptionError(
            "A stored secret cannot be decrypted with the configured FIELD_ENCRYPTION_KEYS."
        ) from None


def is_current(token: str) -> bool:
    """Whether the token is already encrypted with the first (current) key."""
    _multi, first = _keys()
    try:
        first.decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeError):
        return False
    return True
