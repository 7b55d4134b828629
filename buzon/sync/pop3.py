"""One POP3 pass: UIDL bookkeeping, and DELE only for messages whose bytes are committed.

POP3 has no folders and no flags; the UIDL of every message ever seen is kept as the key of its
RawMessage row, so a message left on the server is never downloaded twice. With
`delete_after_download`, DELE is sent only after the batch holding the message has committed;
a crash before QUIT undoes the DELE on the server, and the next pass deletes it again.
"""

from __future__ import annotations

import asyncio
import poplib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from buzon.sync import dbs, mimescan
from buzon.sync.models import RawMessage
from buzon.sync.store import Incoming, Mailbox
from buzon.sync.truncate import truncate_bytes

BATCH = 50
SPOOL_BYTES = 1024 * 1024  # an oversized message's first bytes are kept in memory, the rest on disk


@dataclass(frozen=True)
class Pop3Options:
    account_id: int
    address: str
    delete_after_download: bool
    initial_count: int
    limit_bytes: int


def _listing(client: poplib.POP3) -> list[tuple[int, str, int]]:
    """(number, UIDL, size) for every message, oldest first."""
    _, uidl_lines, _ = client.uidl()
    _, list_lines, _ = client.list()
    sizes = {}
    for line in list_lines:
        num, size = line.split()[:2]
        sizes[int(num)] = int(size)
    out = []
    for line in uidl_lines:
        num, uidl = line.split()[:2]
        out.append((int(num), uidl.decode("utf-8", "replace"), sizes.get(int(num), 0)))
    return sorted(out)


def _known(account_id: int, uidls: list[str]) -> dict[str, bool]:
    """UIDL -> whether its bytes are safely stored (so the server's copy may be deleted).

    False for one passed over by the initial count, or one the server failed to deliver."""
    rows = RawMessage.objects.filter(account_id=account_id, uidl__in=uidls).values_list("uidl", "sha256", "status")
    return {str(uidl): bool(digest) and status != RawMessage.Status.FAILED for uidl, digest, status in rows}


def _first_pass(account_id: int) -> bool:
    return not RawMessage.objects.filter(account_id=account_id, uidl__isnull=False).exists()


def _retrieve(client: poplib.POP3, num: int, uidl: str, size: int, limit: int) -> Incoming:
    try:
        if size > limit:
            return _retrieve_oversized(client, num, uidl, limit)
        _, lines, _ = client.retr(num)
    except poplib.error_proto as exc:
        return Incoming(data=b"", uidl=uidl, size=size, failed_reason=_(
            "The mail server could not deliver this message: %(reason)s") % {"reason": str(exc)[:200]})
    data = b"\r\n".join(lines) + b"\r\n"
    if len(data) > limit:  # the listing said less
        cut = truncate_bytes(data, limit)
        if cut is not None:
            return Incoming(data=cut[0], uidl=uidl, size=len(data), truncation_note=cut[1])
    return Incoming(data=data, uidl=uidl, size=len(data))


def _retrieve_oversized(client: poplib.POP3, num: int, uidl: str, limit: int) -> Incoming:
    """RETR streamed to a temporary file (spilled to disk past SPOOL_BYTES), then cut from there:
    a message far over the limit is never held whole in memory."""
    wire: Any = client  # poplib's own line reader (retr() would gather every line in a list)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        wire._putcmd(f"RETR {num}")
        wire._getresp()  # -ERR raises error_proto
        while True:
            line, _octets = wire._getline()
            if line == b".":
                break
            spool.write((line[1:] if line.startswith(b"..") else line) + b"\r\n")  # dot-unstuffing
        total = spool.tell()
        cut = mimescan.cut(spool, limit)  # type: ignore[arg-type]
        if cut is not None:
            return Incoming(data=cut[0], uidl=uidl, size=total, truncation_note=cut[1])
        spool.seek(0)
        return Incoming(data=spool.read(), uidl=uidl, size=total)  # every part fits after all


async def sync_pop3(client: poplib.POP3, opts: Pop3Options, on_work: Callable[[int], bool] | None = None) -> int:
    listing = await asyncio.to_thread(_listing, client)
    known = await dbs.run(_known, opts.account_id, [uidl for _, uidl, _ in listing])
    box = Mailbox(opts.account_id, opts.address)
    if opts.delete_after_download:
        # Stored in an earlier pass whose QUIT never came: their DELE was undone. Delete them now.
        for num, uidl, _size in listing:
            if known.get(uidl):
                await asyncio.to_thread(client.dele, num)
    new = [entry for entry in listing if entry[1] not in known]
    if opts.initial_count and len(new) > opts.initial_count and await dbs.run(_first_pass, opts.account_id):
        older, new = new[: -opts.initial_count], new[-opts.initial_count:]
        passed = [Incoming(data=b"", uidl=uidl, size=size, failed_reason="") for _, uidl, size in older]
        await dbs.run(_pass_over, box, passed)
    tracked = on_work(len(new)) if on_work and new else True
    stored = 0
    for start in range(0, len(new), BATCH):
        batch = new[start : start + BATCH]
        items = [await asyncio.to_thread(_retrieve, client, num, uidl, size, opts.limit_bytes)
                 for num, uidl, size in batch]
        stored += await dbs.store(box, items, None, tracked=tracked)
        if opts.delete_after_download:  # only now: the bytes above are committed
            for (num, _uidl, _size), item in zip(batch, items, strict=True):
                if not item.failed_reason:
                    await asyncio.to_thread(client.dele, num)
    return stored


def _pass_over(box: Mailbox, items: list[Incoming]) -> None:
    """Remember messages older than the initial count without downloading them."""
    RawMessage.objects.bulk_create([
        RawMessage(account_id=box.account_id, account_address=box.address, uidl=item.uidl, data=b"",
                   size=item.size or 0, sha256="", status=RawMessage.Status.NOT_DOWNLOADED,
                   status_reason=_("Older than the initial sync count; not downloaded."))
        for item in items
    ], ignore_conflicts=True)
