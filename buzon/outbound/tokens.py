"""Signed tokens for links that go out in mail: open pixel, unsubscribe, sender confirmation.

Each kind has its own salt, so a token minted for one purpose is useless for another, and any
change to a token (a different message id, address or account) breaks its signature.
"""

from __future__ import annotations

from typing import Any

from django.core import signing

PIXEL = "buzon.outbound.pixel"
UNSUBSCRIBE = "buzon.outbound.unsubscribe"
CONFIRM = "buzon.outbound.confirm-sender"


class BadToken(Exception):
    """The token was forged, altered, expired or made for another purpose."""


def make(purpose: str, payload: Any) -> str:
    return signing.dumps(payload, salt=purpose, compress=False)


def read(purpose: str, token: str, max_age: int | None = None) -> Any:
    try:
        return signing.loads(token, salt=purpose, max_age=max_age)
    except signing.BadSignature as exc:  # SignatureExpired is a subclass
        raise BadToken(str(exc)) from exc


def pixel_token(message_id: int) -> str:
    return make(PIXEL, message_id)


def unsubscribe_token(account_id: int, address: str) -> str:
    return make(UNSUBSCRIBE, [account_id, address.strip().lower()])


def confirm_token(account_id: int, address: str) -> str:
    # The address is inside, so a token for the old address stops working if it is changed.
    return make(CONFIRM, [account_id, address.strip().lower()])
