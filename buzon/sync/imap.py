"""One pass over one IMAP folder: from the cursor to the newest message, in chunks.

The cursor is (UIDVALIDITY, last UID), never the \\Seen flag, so mail another client read is
still brought in. Bodies are fetched with BODY.PEEK[] on a folder opened with EXAMINE: syncing
never changes anything on the server, unless the account deletes downloaded mail: then the folder
is opened with SELECT and, after the new mail is stored, the messages the pipeline has imported
since are deleted (`_delete_imported`, see buzon.sync.deletion). Each chunk is committed with the
cursor that covers it; several chunks are on the wire while one is being stored.
A folder's first pass brings in the newest `initial_count` messages, or none of them when the
account brings only mail received from now on: the cursor then starts at the folder's UIDNEXT.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass

from django.utils.translation import gettext as _

from buzon.sync import dbs, deletion
from buzon.sync.budget import ByteBudget, fetched
from buzon.sync.imap_conn import CommandFailed, ImapConnection
from buzon.sync.imap_parse import FetchItem, FolderStatus, uid_set
from buzon.sync.models import FolderCursor
from buzon.sync.store import CursorMark, Incoming, Mailbox
from buzon.sync.truncate import Plan, build, leaves_from_bodystructure, note_text, plan

log = logging.getLogger("buzon.sync")
BODY_ITEMS = "(UID FLAGS RFC822.SIZE BODY.PEEK[])"
UID_MAX = 2**32 - 1
#: UIDs deleted by one STORE and one UID EXPUNGE at most, and the longest UID set sent in them
#: (RFC 7162 asks clients to keep command lines under 8,192 octets).
DELETE_BATCH = 5_000
UID_SET_CHARS = 6_500  # checked every 50 UIDs, each at most 22 characters more
#: A pass's first chunk holds at most this many messages and bytes, and each next one twice as many,
#: up to the full chunk: the pipeline starts on the first messages of a big first download while
#: the rest are on the wire, instead of waiting for a whole chunk (up to 16 MB) to arrive and be
#: stored. More chunks cost nothing on the wire: FETCH_DEPTH of them are in flight at once.
FIRST_CHUNK = 25
FIRST_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class FolderOptions:
    account_id: int
    address: str
    folder: str
    unseen_only: bool
    initial_count: int  # 0: everything
    limit_bytes: int  # attachment limit
    chunk: int
    chunk_bytes: int
    depth: int = 3  # chunks on the wire at once
    delete: bool = False  # the account deletes imported mail from the server
    only_new: bool = False  # the folder's first pass brings in nothing already there: the cursor starts at the top


def chunks(uids: list[int], sizes: dict[int, int], count: int, max_bytes: int, *,
           first: tuple[int, int] | None = None) -> list[list[int]]:
    """`uids` in chunks of at most `count` messages and `max_bytes` (a bigger message alone);
    `first`: the first chunk's own limits (messages, bytes), doubled chunk by chunk up to those."""
    out: list[list[int]] = []
    current: list[int] = []
    used = 0
    limit, byte_limit = (min(count, first[0]), min(max_bytes, first[1])) if first else (count, max_bytes)
    for uid in uids:
        size = sizes.get(uid, 0)
        if current and (len(current) >= limit or used + size > byte_limit):
            out.append(current)
            current, used = [], 0
            limit, byte_limit = min(count, limit * 2), min(max_bytes, byte_limit * 2)
        current.append(uid)
        used += size
    if current:
        out.append(current)
    return out


async def sync_folder(conn: ImapConnection, opts: FolderOptions, on_work: Callable[[int], bool] | None = None,
                      cursor: FolderCursor | None = None) -> tuple[int, FolderCursor]:
    """Bring in every new message of `opts.folder`; returns how many were stored, and the folder's
    cursor as committed. `cursor`: the one the last pass returned (this worker is the only one
    moving it while it holds the lease), so an arrival by IDLE does not read it again.
    Then, if the account deletes downloaded mail, delete what the pipeline has imported."""
    deleting = opts.delete and await _deletes_here(conn, opts)
    stored, cursor = await _bring_in(conn, opts, on_work, cursor, deleting)
    if deleting:
        await _delete_imported(conn, opts, cursor.uidvalidity)
    return stored, cursor


async def _bring_in(conn: ImapConnection, opts: FolderOptions, on_work: Callable[[int], bool] | None,
                    cursor: FolderCursor | None, writable: bool) -> tuple[int, FolderCursor]:
    if cursor is None:
        cursor = await dbs.run(dbs.read_cursor, opts.account_id, opts.folder)
    since = (cursor.uidvalidity, cursor.highest_modseq) if cursor and cursor.uidvalidity and cursor.highest_modseq \
        else None
    status = await (conn.examine(opts.folder, since, writable=True) if writable else conn.examine(opts.folder, since))
    # QRESYNC: the answer to EXAMINE already said which flags changed (and what was expunged).
    resynced = conn.qresync and since is not None and status.uidvalidity == since[0]
    if cursor is None or cursor.uidvalidity != status.uidvalidity:
        cursor = await dbs.run(dbs.open_cursor, opts.account_id, opts.folder, status.uidvalidity)
    if resynced:
        await _apply_changes(opts, cursor, status)
    flags_changed = bool(conn.condstore and cursor.highest_modseq and status.highest_modseq != cursor.highest_modseq
                         and not resynced)
    if cursor.initial_done and status.uidnext is not None and status.uidnext <= cursor.last_uid + 1:
        if flags_changed:
            await _refresh_flags(conn, opts, cursor, status.uidvalidity)
        if status.highest_modseq != cursor.highest_modseq:
            await dbs.run(dbs.close_cursor, opts.account_id, opts.folder, cursor.last_uid, status.highest_modseq)
            cursor.highest_modseq, cursor.initial_done = status.highest_modseq, True
        return 0, cursor
    # Both questions in one round trip: what changed among the known messages, what is new.
    changes = asyncio.ensure_future(_refresh_flags(conn, opts, cursor, status.uidvalidity)) if flags_changed else None
    # "Only mail received from now on": the first pass leaves what is there; UIDNEXT says where it ends.
    skip_existing = opts.only_new and not cursor.initial_done
    try:
        sizes = {} if skip_existing and status.uidnext is not None else \
            await _new_messages(conn, opts, cursor.last_uid, status.exists)
    finally:
        if changes is not None:
            await changes
    uids = [] if skip_existing else sorted(sizes)
    if not cursor.initial_done and opts.initial_count and len(uids) > opts.initial_count:
        uids = uids[-opts.initial_count:]  # the newest N; the cursor then starts above the rest
    top = max([cursor.last_uid, *sizes, (status.uidnext or 1) - 1])
    stored = 0
    if uids:
        tracked = on_work(len(uids)) if on_work else True
        stored = await _download(conn, opts, uids, sizes, cursor, Close(top, status.highest_modseq), tracked)
    elif (top, status.highest_modseq, True) != (cursor.last_uid, cursor.highest_modseq, cursor.initial_done):
        await dbs.run(dbs.close_cursor, opts.account_id, opts.folder, top, status.highest_modseq)
        cursor.last_uid, cursor.highest_modseq, cursor.initial_done = top, status.highest_modseq, True
    return stored, cursor


async def _new_messages(conn: ImapConnection, opts: FolderOptions, last_uid: int, exists: int) -> dict[int, int]:
    """UID -> size of each message above the cursor (unread ones only, with `unseen_only`)."""
    if not exists:
        return {}
    if opts.unseen_only:
        found = [uid for uid in await conn.uid_search(f"UID {last_uid + 1}:*", "UNSEEN") if uid > last_uid]
        wanted: Collection[int] = found
        if not found:
            return {}
    else:
        wanted = range(last_uid + 1, UID_MAX + 1)  # "n:4294967295": unlike "n:*", empty when nothing is new
    return {item.uid: item.size or 0 for item in await conn.uid_fetch(wanted, "(UID RFC822.SIZE)")
            if item.uid > last_uid}


@dataclass(frozen=True)
class Close:
    """Where the cursor goes once the pass's last batch is stored."""

    last_uid: int
    highest_modseq: int | None


async def _download(conn: ImapConnection, opts: FolderOptions, uids: list[int], sizes: dict[int, int],
                    cursor: FolderCursor, close: Close, tracked: bool) -> int:
    """Fetch in chunks with FETCH_DEPTH of them on the wire at once, and store them in UID order,
    each committed with the cursor that covers it (the last one closes the pass)."""
    box = Mailbox(opts.account_id, opts.address, opts.folder, cursor.uidvalidity)
    batches = chunks(uids, sizes, opts.chunk, opts.chunk_bytes, first=(FIRST_CHUNK, FIRST_CHUNK_BYTES))
    depth = max(1, opts.depth)
    budget = fetched()
    inflight = deque(asyncio.ensure_future(_fetch_reserved(conn, opts, batch, sizes, budget))
                     for batch in batches[:depth])
    stored = 0
    try:
        for index, batch in enumerate(batches):
            items, held = await inflight.popleft()
            try:
                if index + depth < len(batches):
                    inflight.append(asyncio.ensure_future(
                        _fetch_reserved(conn, opts, batches[index + depth], sizes, budget)))
                last = index + 1 == len(batches)
                mark = (CursorMark(close.last_uid, close.highest_modseq, done=True) if last
                        else CursorMark(max(batch), cursor.highest_modseq, done=cursor.initial_done))
                stored += await dbs.store(box, items, mark, tracked=tracked)
            finally:
                del items
                budget.release(held)
            cursor.last_uid, cursor.highest_modseq, cursor.initial_done = mark.last_uid, mark.highest_modseq, mark.done
    finally:
        for pending in inflight:
            if pending.done() and not pending.cancelled() and pending.exception() is None:
                budget.release(pending.result()[1])  # fetched, never stored
            else:
                pending.cancel()  # a fetch still waiting or on the wire gives its bytes back itself
    return stored


async def _fetch_reserved(conn: ImapConnection, opts: FolderOptions, batch: list[int], sizes: dict[int, int],
                          budget: ByteBudget) -> tuple[list[Incoming], int]:
    """`_fetch_chunk` once the process's budget has room for it (buzon.sync.budget); returns the
    chunk and the bytes it holds, for the caller to release once it is stored."""
    held = await budget.acquire(sum(min(sizes.get(uid, 0), opts.limit_bytes) for uid in batch))
    try:
        return await _fetch_chunk(conn, opts, batch, sizes), held
    except BaseException:
        budget.release(held)
        raise


async def _fetch_chunk(conn: ImapConnection, opts: FolderOptions, batch: list[int],
                       sizes: dict[int, int]) -> list[Incoming]:
    small = [uid for uid in batch if sizes.get(uid, 0) <= opts.limit_bytes]
    got: dict[int, Incoming] = {}
    if small:
        for item in await conn.uid_fetch(small, BODY_ITEMS):
            body = item.sections.get("BODY[]")
            if body is not None and item.uid in sizes:
                got[item.uid] = Incoming(data=body, uid=item.uid, size=item.size, flags=item.flags)
    for uid in batch:
        if uid in got:
            continue
        if sizes.get(uid, 0) > opts.limit_bytes:
            got[uid] = await _fetch_truncated(conn, opts, uid, sizes[uid])
        else:
            got[uid] = await _fetch_one(conn, uid)
    return [got[uid] for uid in batch if uid in got]


async def _fetch_one(conn: ImapConnection, uid: int) -> Incoming:
    """A message missing from a chunk's answer: ask for it alone, and keep it marked if it fails."""
    try:
        items = await conn.uid_fetch([uid], BODY_ITEMS)
    except CommandFailed as exc:
        items, reason = [], exc.text
    else:
        reason = _("The server did not return this message.")
    for item in items:
        body = item.sections.get("BODY[]")
        if item.uid == uid and body is not None:
            return Incoming(data=body, uid=uid, size=item.size, flags=item.flags)
    log.warning("uid %s could not be fetched: %s", uid, reason)
    return Incoming(data=b"", uid=uid, failed_reason=_("The mail server could not deliver this message: %(reason)s")
                    % {"reason": reason})


async def _fetch_truncated(conn: ImapConnection, opts: FolderOptions, uid: int, size: int) -> Incoming:
    """Headers and text only, planned from BODYSTRUCTURE: the big parts never cross the wire."""
    head = await conn.uid_fetch([uid], "(UID FLAGS BODYSTRUCTURE BODY.PEEK[HEADER])")
    if not head:
        return await _fetch_one(conn, uid)
    item: FetchItem = head[0]
    leaves = leaves_from_bodystructure(item.bodystructure)
    multipart = isinstance(item.bodystructure, list) and bool(item.bodystructure) and isinstance(
        item.bodystructure[0], list)
    # A single-part message this big is all attachment (or all text): only the headers fit.
    chosen = plan(leaves, opts.limit_bytes) if multipart else Plan(keep=[], left_out=leaves)
    parts: list[tuple[bytes, bytes]] = []
    if chosen.keep:
        wanted = " ".join(f"BODY.PEEK[{leaf.part}.MIME] BODY.PEEK[{leaf.part}]" for leaf in chosen.keep)
        fetched = await conn.uid_fetch([uid], f"(UID {wanted})")
        sections = fetched[0].sections if fetched else {}
        parts = [(sections.get(f"BODY[{leaf.part}.MIME]", b""), sections.get(f"BODY[{leaf.part}]", b""))
                 for leaf in chosen.keep]
    data = build(item.sections.get("BODY[HEADER]", b""), parts, chosen.left_out)
    return Incoming(data=data, uid=uid, size=size, flags=item.flags, truncation_note=note_text(chosen.left_out))


async def _refresh_flags(conn: ImapConnection, opts: FolderOptions, cursor: FolderCursor,
                         uidvalidity: int | None) -> None:
    """CONDSTORE: only the flags that changed since we last looked, in one command."""
    if cursor.last_uid <= 0 or not cursor.highest_modseq:
        return
    changed_since = f"(CHANGEDSINCE {cursor.highest_modseq})"
    items = await conn.uid_fetch(range(1, cursor.last_uid + 1), "(UID FLAGS)", changed_since)
    if items:
        await dbs.run(dbs.update_flags, opts.account_id, opts.folder, uidvalidity, {i.uid: i.flags for i in items})


async def _apply_changes(opts: FolderOptions, cursor: FolderCursor, status: FolderStatus) -> None:
    """QRESYNC's news about messages already stored: their new flags. Expunged ones (VANISHED)
    stay stored: Buzón keeps mail that was deleted on the server once it has brought it in."""
    flags = {item.uid: item.flags for item in status.changed if item.uid <= cursor.last_uid}
    if flags:
        await dbs.run(dbs.update_flags, opts.account_id, opts.folder, status.uidvalidity, flags)
    if status.vanished:
        log.debug("account %s folder %s: %s messages expunged on the server since the last pass",
                  opts.account_id, opts.folder, status.vanished)


async def _deletes_here(conn: ImapConnection, opts: FolderOptions) -> bool:
    """Whether imported mail is deleted from this folder: not from Sent or Drafts (asked once per
    connection; their rows waiting are marked kept, so they do not wake the folder again)."""
    kept = conn.folder_kept.get(opts.folder)
    if kept is None:
        attributes = await conn.list_attributes(opts.folder)
        kept = conn.folder_kept[opts.folder] = deletion.folder_kept(opts.folder, attributes or ())
    if kept:
        waiting = await dbs.run(deletion.imap_waiting, opts.account_id, opts.folder)
        if waiting:
            await dbs.run(deletion.mark, [pk for pk, _, _ in waiting], deletion.OnServer.NEVER)
    return not kept


def delete_batches(uids: list[int]) -> list[list[int]]:
    """UIDs in runs of at most DELETE_BATCH, each written as a set of at most UID_SET_CHARS."""
    out: list[list[int]] = []
    current: list[int] = []
    for uid in sorted(uids):
        current.append(uid)
        if len(current) >= DELETE_BATCH or (len(current) % 50 == 0 and len(uid_set(current)) > UID_SET_CHARS):
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


async def _delete_imported(conn: ImapConnection, opts: FolderOptions, uidvalidity: int | None) -> None:
    """Delete from the server the folder's messages the pipeline has imported, a batch of UIDs per
    STORE and UID EXPUNGE; each batch is marked deleted once the server has confirmed it (a crash
    before leaves it marked waiting, and the next pass deletes it: both commands are idempotent)."""
    waiting = await dbs.run(deletion.imap_waiting, opts.account_id, opts.folder)
    if not waiting:
        return
    # Rows of an earlier UIDVALIDITY name no message of the folder any more: nothing can be deleted.
    stale = [pk for pk, validity, _ in waiting if validity != uidvalidity]
    if stale:
        await dbs.run(deletion.mark, stale, deletion.OnServer.KEPT)
    by_uid = {uid: pk for pk, validity, uid in waiting if validity == uidvalidity}
    expunged = True
    for batch in delete_batches(list(by_uid)):
        expunged = await conn.delete_uids(batch)
        state = deletion.OnServer.DELETED if expunged else deletion.OnServer.FLAGGED
        await dbs.run(deletion.mark, [by_uid[uid] for uid in batch], state)
    if by_uid:
        await dbs.run(deletion.record_expunge, opts.account_id, expunged)
        log.info("deleted from the server account=%s folder=%s count=%s expunged=%s", opts.account_id,
                 opts.folder, len(by_uid), expunged)
