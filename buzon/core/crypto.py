"""Secrets at rest: MultiFernet over the configured keys (newest first).

Ciphertext is stored as text. `rotate()` re-encrypts under the newest key, which is how
`buzon rotate-keys` moves every secret to a new key while old keys still decrypt.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with any configured key."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise SecretUnreadable("no encryption key is configured (BUZON_FERNET_KEYS)")
    return MultiFernet([Fernet(k.encode()) for k in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FERNET_KEYS))


def encrypt(plain: str) -> str:
    if plain == "":
        return ""
    return fernet().encrypt(plain.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    if token == "":
        return ""
    try:
        return fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken as exc:
        raise SecretUnreadable("the stored secret was encrypted with a key that is no longer configured") from exc


def rotate(token: str) -> str:
    if token == "":
        return ""
    return fernet().rotate(token.encode("ascii")).decode("ascii")
