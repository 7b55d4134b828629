"""One POP3 pass: UIDL bookkeeping, and DELE only for messages the pipeline has imported.

POP3 has no folders and no flags; the UIDL of every message ever seen is kept as the key of its
RawMessage row, so a message left on the server is never downloaded twice. With
`delete_after_download`, a pass sends DELE for the messages whose rows the pipeline marked imported
since (buzon.sync.deletion: found by index, never by reading every row), and marks them deleted once
QUIT has confirmed it; a crash before QUIT undoes the DELE on the server, and the next pass deletes
them again. Mail that was not imported (from a sender who is not a customer, say) stays on the
server, and is not downloaded again.

The first pass (kept as SyncState.pop3_first_listed_at, even for an empty mailbox) may leave messages
out: those older than the initial sync count, or all that are there when the account brings only
mail received from now on. They are remembered as not downloaded, so no later pass fetches them.
"""

from __future__ import annotations

import asyncio
import logging
import poplib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from buzon.sync import dbs, deletion, mimescan
from buzon.sync.budget import fetched
from buzon.sync.models import RawMessage, SyncState
from buzon.sync.store import Incoming, Mailbox
from buzon.sync.truncate import truncate_bytes

log = logging.getLogger("buzon.sync")
BATCH = 50
SPOOL_BYTES = 1024 * 1024  # an oversized message's first bytes are kept in memory, the rest on disk


@dataclass(frozen=True)
class Pop3Options:
    account_id: int
    address: str
    delete_after_download: bool
    initial_count: int
    limit_bytes: int
    only_new: bool = False  # the first pass downloads nothing already there (remembered as not downloaded)


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


def _known(account_id: int, uidls: list[str]) -> set[str]:
    """The UIDLs already held (stored, passed over, or failed): never downloaded again."""
    known: set[str] = set()
    for start in range(0, len(uidls), deletion.IN_CHUNK):
        known.update(str(uidl) for uidl in RawMessage.objects.filter(
            account_id=account_id, uidl__in=uidls[start:start + deletion.IN_CHUNK]).values_list("uidl", flat=True))
    return known


def _first_pass(account_id: int) -> bool:
    """Whether no pass has listed this mailbox yet (rows are checked too, for mailboxes listed before
    the mark existed)."""
    if SyncState.objects.filter(account_id=account_id, pop3_first_listed_at__isnull=False).exists():
        return False
    return not RawMessage.objects.filter(account_id=account_id, uidl__isnull=False).exists()


def _first_listed(box: Mailbox, passed: list[Incoming], reason: str) -> None:
    """End the first pass's choice: the messages it leaves out are remembered (never downloaded) and the
    mailbox is marked listed, together, so a later pass never leaves out mail that arrived since, even
    when the mailbox was empty the first time."""
    with transaction.atomic():
        if passed:
            _pass_over(box, passed, reason)
        state, _created = SyncState.objects.get_or_create(account_id=box.account_id)
        SyncState.objects.filter(pk=state.pk, pop3_first_listed_at__isnull=True).update(
            pop3_first_listed_at=timezone.now())


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
    """One pass, ended with QUIT (the DELEs take effect only then); returns how many were stored."""
    listing = await asyncio.to_thread(_listing, client)
    known = await dbs.run(_known, opts.account_id, [uidl for _, uidl, _ in listing])
    box = Mailbox(opts.account_id, opts.address)
    deleted = await _delete_imported(client, opts.account_id, listing) if opts.delete_after_download else []
    new = [entry for entry in listing if entry[1] not in known]
    if await dbs.run(_first_pass, opts.account_id):
        older: list[tuple[int, str, int]] = []
        reason = ""
        if opts.only_new:
            older, new = new, []
            reason = _("Already in the mailbox at the account's first sync, which brings only mail received "
                       "from then on; not downloaded.")
        elif opts.initial_count and len(new) > opts.initial_count:
            older, new = new[: -opts.initial_count], new[-opts.initial_count:]
            reason = _("Older than the initial sync count; not downloaded.")
        passed = [Incoming(data=b"", uidl=uidl, size=size, failed_reason="") for _, uidl, size in older]
        await dbs.run(_first_listed, box, passed, reason)
    tracked = on_work(len(new)) if on_work and new else True
    stored = 0
    budget = fetched()
    for start in range(0, len(new), BATCH):
        batch = new[start : start + BATCH]
        held = await budget.acquire(sum(min(size, opts.limit_bytes) for _num, _uidl, size in batch))
        try:
            items = [await asyncio.to_thread(_retrieve, client, num, uidl, size, opts.limit_bytes)
                     for num, uidl, size in batch]
            stored += await dbs.store(box, items, None, tracked=tracked)
        finally:
            budget.release(held)
    await asyncio.to_thread(client.quit)
    if deleted:
        await dbs.run(deletion.mark, deleted, deletion.OnServer.DELETED)
        log.info("deleted from the server account=%s folder= count=%s", opts.account_id, len(deleted))
    return stored


async def _delete_imported(client: poplib.POP3, account_id: int, listing: list[tuple[int, str, int]]) -> list[int]:
    """DELE every listed message the pipeline has imported; returns the raw ids to mark deleted after
    QUIT: those, and those no longer listed (deleted by an earlier pass whose marks were lost)."""
    waiting = await dbs.run(deletion.pop3_waiting, account_id)
    if not waiting:
        return []
    numbers = {uidl: num for num, uidl, _ in listing}
    listed = [(numbers[uidl], pk) for uidl, pk in waiting.items() if uidl in numbers]
    refused = await asyncio.to_thread(_dele, client, [num for num, _ in listed])
    return [pk for uidl, pk in waiting.items() if uidl not in numbers] + [
        pk for num, pk in listed if num not in refused]


def _dele(client: poplib.POP3, numbers: list[int]) -> set[int]:
    """DELE each message (POP3 names one per command); returns those the server refused."""
    refused = set()
    for num in numbers:
        try:
            client.dele(num)
        except poplib.error_proto:
            log.warning("POP3 DELE %s refused", num)
            refused.add(num)
    return refused


def _pass_over(box: Mailbox, items: list[Incoming], reason: str) -> None:
    """Remember messages the first pass leaves out, without downloading them."""
    RawMessage.objects.bulk_create([
        RawMessage(account_id=box.account_id, account_address=box.address, uidl=item.uidl,
                   size=item.size or 0, sha256="", status=RawMessage.Status.NOT_DOWNLOADED, status_reason=reason)
        for item in items
    ], ignore_conflicts=True)
