"""`append_to_sent`: put a copy of what was sent into the account's IMAP Sent folder.

Servers such as Zimbra or cPanel do not file mail sent over SMTP (seed 000 §3.4). The folder is the
one flagged `\\Sent` (RFC 6154 SPECIAL-USE), else the first folder with a usual Sent name, else a
new "Sent". The copy is the exact bytes sent (DKIM signature included), flagged \\Seen.
"""

from __future__ import annotations

import asyncio
import re

import aioimaplib
from django.conf import settings
from django.utils import timezone

from buzon.mailboxes.connections import open_imap
from buzon.mailboxes.endpoints import ServerSettings, incoming_settings
from buzon.mailboxes.errors import MailServerError, ProtocolError, classify
from buzon.outbound.compose import INTERNAL_KINDS
from buzon.outbound.models import OutgoingEmail

USUAL_NAMES = ("Sent", "Sent Items", "Sent Messages", "Sent Mail", "INBOX.Sent", "INBOX/Sent", "Enviados",
               "Elementos enviados", "[Gmail]/Sent Mail")
_LIST_RE = re.compile(rb'^\((?P<flags>[^)]*)\) (?:"[^"]*"|NIL) (?P<name>.+)$')


def parse_list_line(line: bytes) -> tuple[set[str], str] | None:
    """One LIST reply line → (flags, folder name), or None for lines that are not folders."""
    match = _LIST_RE.match(line.strip())
    if match is None:
        return None
    name = match["name"].decode("utf-8", "replace")
    if name.startswith('"') and name.endswith('"'):
        name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return {f.lower() for f in match["flags"].decode().split()}, name


def pick_sent_folder(folders: list[tuple[set[str], str]]) -> str | None:
    for flags, name in folders:
        if "\\sent" in flags:
            return name
    by_name = {name.lower(): name for _flags, name in folders}
    for usual in USUAL_NAMES:
        if usual.lower() in by_name:
            return by_name[usual.lower()]
    return None


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def _append(server: ServerSettings, data: bytes) -> str:
    client = await open_imap(server, timeout=settings.OUTBOUND_SMTP_TIMEOUT_S)
    try:
        listing = await client.list('""', "*")
        folders = [f for f in (parse_list_line(line) for line in listing.lines if isinstance(line, bytes)) if f]
        folder = pick_sent_folder(folders)
        if folder is None:
            folder = "Sent"
            await client.create(folder)
        response = await client.append(data, mailbox=_quoted(folder), flags="(\\Seen)", date=timezone.now())
        if response.result != "OK":
            raise ProtocolError(server.host, server.port, "folder", f"APPEND {response.result}", protocol="imap",
                                folder=folder)
        return folder
    finally:
        try:
            await client.logout()
        except Exception:  # noqa: BLE001,S110 - the copy is already stored; a failed goodbye changes nothing
            pass


def append_sent_copy(outgoing_id: int) -> bool:
    """Append the sent bytes of one message; True once stored (again-safe: a done copy is not repeated)."""
    outgoing = OutgoingEmail.objects.select_related("message__account__domain").filter(pk=outgoing_id).first()
    if outgoing is None or outgoing.appended_to_sent or outgoing.mime is None:
        return bool(outgoing and outgoing.appended_to_sent)
    if outgoing.kind in INTERNAL_KINDS:  # mail to staff is not filed with what customers were sent
        return False
    account = outgoing.message.account
    if account is None or not account.incoming_enabled:
        return False
    server = incoming_settings(account)
    if server.protocol != "imap":
        return False  # POP3 has no folders
    try:
        folder = asyncio.run(_append(server, bytes(outgoing.mime)))
    except MailServerError:
        raise
    except (TimeoutError, OSError, aioimaplib.AioImapException) as exc:
        raise classify(exc, server, "folder") from exc
    OutgoingEmail.objects.filter(pk=outgoing_id).update(appended_to_sent=True)
    decisions = list(outgoing.message.decisions or [])
    decisions.append({"step": "append_to_sent", "decision": f"copied to {folder}"})
    outgoing.message.decisions = decisions
    outgoing.message.save(update_fields=["decisions"])
    return True
