"""Logging in to IMAP, POP3 and SMTP with an OAuth access token: XOAUTH2, or OAUTHBEARER (RFC 7628).

Used by connections.py when ServerSettings carries `oauth_token` (see mailboxes.oauth).
"""

from __future__ import annotations

import asyncio
import base64
import poplib
from typing import Any

import aioimaplib

from buzon.mailboxes.endpoints import ServerSettings
from buzon.mailboxes.errors import AuthenticationFailed


def sasl_xoauth2(user: str, token: str) -> bytes:
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def sasl_oauthbearer(user: str, token: str, host: str = "", port: int | None = None) -> bytes:
    extra = (f"host={host}\x01" if host else "") + (f"port={port}\x01" if port else "")
    return f"n,a={user},\x01{extra}auth=Bearer {token}\x01\x01".encode()


def fresh_token(s: ServerSettings) -> str:
    """Blocking (it may read the database and refresh): call from a thread in async code."""
    from buzon.mailboxes.oauth import current_token

    return current_token(s.oauth_account_id, s.oauth_token, s.oauth_expires)


def oauth_mechanism(s: ServerSettings, offered: set[str], token: str | None = None) -> tuple[str, bytes]:
    """XOAUTH2 (Google, Microsoft) where offered, else OAUTHBEARER (RFC 7628)."""
    token = fresh_token(s) if token is None else token
    if "XOAUTH2" in offered or "OAUTHBEARER" not in offered:
        return "XOAUTH2", sasl_xoauth2(s.username, token)
    return "OAUTHBEARER", sasl_oauthbearer(s.username, token, s.host, s.port)


async def imap_oauth(client: Any, s: ServerSettings) -> None:
    protocol = client.protocol
    offered = {c[5:].upper() for c in protocol.capabilities if c.upper().startswith("AUTH=")}
    token = await asyncio.to_thread(fresh_token, s)
    mechanism, sasl = oauth_mechanism(s, offered, token)
    command = aioimaplib.Command("AUTHENTICATE", protocol.new_tag(), mechanism,
                                 base64.b64encode(sasl).decode("ascii"), loop=protocol.loop)
    response = await protocol.execute(command)
    if response.result != "OK":
        text = b" ".join(line for line in response.lines if isinstance(line, bytes)).decode("utf-8", "replace")
        raise AuthenticationFailed(reason="oauth", detail=f"AUTHENTICATE {mechanism} {response.result}: {text}"[:300])
    protocol.state = aioimaplib.AUTH


def pop3_oauth(client: poplib.POP3, s: ServerSettings) -> None:
    try:
        offered = {m.upper() for m in client.capa().get("SASL", [])}
    except poplib.error_proto:
        offered = set()
    mechanism, sasl = oauth_mechanism(s, offered)
    try:
        client._shortcmd(  # type: ignore[attr-defined]
            f"AUTH {mechanism} {base64.b64encode(sasl).decode('ascii')}")
    except poplib.error_proto as exc:
        raise AuthenticationFailed(reason="oauth", detail=f"AUTH {mechanism}: {exc}"[:300]) from exc
