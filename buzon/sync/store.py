"""Committing raw mail: keyed, idempotent, and before anything else happens to a message.

One call stores one batch in one transaction, together with the folder cursor that covers it
and the tasks that will process it, so a crash at any point leaves either all of it or none.
The unique keys (account, folder, UIDVALIDITY, UID) and (account, UIDL) make a duplicate
impossible; a copy of a message already held in the folder (same Message-ID and sha256, e.g.
after a UIDVALIDITY reset, one delivered twice, or one deleted in Buzón) is recorded as a duplicate:
its server key without its bytes, which nothing processes (KEY_ONLY), so it is never shown twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from buzon.core import pg_binary
from buzon.sync import deletion, lease
from buzon.sync.enqueue import enqueue_processing
from buzon.sync.fastinsert import insert_rows, insert_rows_returning, unnest_update_sql
from buzon.sync.headers import parse_header_fields, sha256
from buzon.sync.models import KEY_ONLY, FolderCursor, RawContent, RawMessage


@dataclass(frozen=True)
class Mailbox:
    """Where a batch was read: an IMAP folder at one UIDVALIDITY, or a POP3 maildrop (folder "")."""

    account_id: int
    address: str
    folder: str = ""
    uidvalidity: int | None = None


@dataclass
class Incoming:
    data: bytes
    uid: int | None = None
    uidl: str | None = None
    size: int | None = None  # the size on the server (differs from len(data) once truncated)
    flags: list[str] = field(default_factory=list)
    truncation_note: str = ""
    failed_reason: str = ""  # the server would not give this one: kept, marked, skipped


@dataclass(frozen=True)
class CursorMark:
    """Where the folder cursor stands once a batch is committed: it covers every UID up to
    `last_uid`; `done` once a whole pass (the first download included) has been read."""

    last_uid: int
    highest_modseq: int | None
    done: bool


@dataclass(frozen=True)
class Batch:
    box: Mailbox
    items: Sequence[Incoming]
    cursor: CursorMark | None = None


@dataclass
class StoreResult:
    stored: list[int] = field(default_factory=list)
    duplicates: int = 0
    already: int = 0


Prepared = dict[int, tuple[str, Any]]  # id(item) -> (sha256, its header fields)


def _prepare(items: Iterable[Incoming]) -> Prepared:
    """Each item's content hash and header fields, computed before the transaction: on SQLite a
    write transaction holds the database's one write lock from BEGIN (IMMEDIATE), so work done inside
    it (hashing tens of MB, reading headers) is time the pipeline's processes wait for the lock."""
    return {id(item): (sha256(item.data), parse_header_fields(item.data)) for item in items}


def _row(box: Mailbox, item: Incoming, prepared: Prepared, original: dict[tuple[str, str], int]) -> RawMessage:
    digest, fields = prepared[id(item)]
    row = RawMessage(
        account_id=box.account_id, account_address=box.address, folder=box.folder,
        uidvalidity=box.uidvalidity if item.uid is not None else None, uid=item.uid, uidl=item.uidl,
        size=item.size if item.size is not None else len(item.data), sha256=digest,
        message_id=fields.message_id, from_header=fields.from_header, to_header=fields.to_header,
        subject=fields.subject, date=fields.date, flags=item.flags,
        truncated=bool(item.truncation_note), truncation_note=item.truncation_note,
    )
    row.data = item.data  # written beside the row (RawContent)
    if item.failed_reason:
        row.status, row.status_reason = RawMessage.Status.FAILED, item.failed_reason
        return row
    duplicate_of = original.get((digest, fields.message_id))
    if duplicate_of is not None:
        # Keep the server key (so it is never fetched again) but not a second copy of the bytes.
        row.status = RawMessage.Status.DUPLICATE
        row.status_reason = (
            _("Same message as #%(id)s, already stored from this folder.") % {"id": duplicate_of}
            if duplicate_of > 0 else _("Same message as another one stored from this folder.")
        )
        row.data = b""
    return row


def store_batch(box: Mailbox, items: Sequence[Incoming], *, cursor: CursorMark | None = None) -> StoreResult:
    """Store `items` and move the folder cursor to `cursor`, atomically."""
    result = StoreResult()
    prepared = _prepare(items)
    with transaction.atomic():
        # No look-up of the keys first: the cursor moves with the batch, so a key already held is
        # only possible after a lost lease; the unique constraints catch it (see _insert).
        known = _content_indexes({(box.account_id, box.folder)}, {digest for digest, _ in prepared.values()})
        rows = _rows(box, items, prepared, known.get((box.account_id, box.folder), {}), result)
        created = _insert(box, rows)
        deletion.copies_stored(created)
        result.already = len(rows) - len(created)
        result.stored = [row.pk for row in created if row.status != RawMessage.Status.DUPLICATE]
        _move_cursors([Batch(box, items, cursor)])
        enqueue_processing(result.stored, coalesce=True)
        lease.check(box.account_id)  # last: a holder that stalled past a takeover commits nothing
    return result


def store_batches(batches: Sequence[Batch], fences: dict[int, lease.Fence | None]) -> list[StoreResult]:
    """store_batch() for many batches (many accounts' IDLE arrivals) in one transaction, with a
    fixed number of statements for all of them: one content look-up, one INSERT, one cursor update
    per batch sent together, one lease check. `fences`: each account's, as its runner holds it.

    All or nothing: any failure (a key already held, a lease lost) raises and stores none of them;
    the caller then stores them one by one (store_batch), where each fails or commits alone."""
    results = [StoreResult() for _ in batches]
    prepared = _prepare(item for batch in batches for item in batch.items)
    with transaction.atomic():
        known = _content_indexes({(b.box.account_id, b.box.folder) for b in batches},
                                 {digest for digest, _ in prepared.values()})
        rows = [_rows(batch.box, batch.items, prepared, known.setdefault((batch.box.account_id, batch.box.folder), {}),
                      result) for batch, result in zip(batches, results, strict=True)]
        insert_rows_returning([row for batch_rows in rows for row in batch_rows])
        _write_contents([row for batch_rows in rows for row in batch_rows])
        deletion.copies_stored([row for batch_rows in rows for row in batch_rows])
        for batch_rows, result in zip(rows, results, strict=True):
            result.stored = [row.pk for row in batch_rows if row.status != RawMessage.Status.DUPLICATE]
        _move_cursors(batches)
        enqueue_processing([pk for result in results for pk in result.stored], coalesce=True)
        lease.check_many(fences)  # last, as in store_batch
    return results


def _rows(box: Mailbox, items: Sequence[Incoming], prepared: Prepared, original: dict[tuple[str, str], int],
          result: StoreResult) -> list[RawMessage]:
    """The rows to insert; `original` (what the folder holds, by content) learns each stored one."""
    rows: list[RawMessage] = []
    for item in items:
        row = _row(box, item, prepared, original)
        if row.status == RawMessage.Status.DUPLICATE:
            result.duplicates += 1
        rows.append(row)
        if row.status == RawMessage.Status.STORED:
            original.setdefault((row.sha256, row.message_id), -1)  # a copy within this batch
    return rows


Folder = tuple[int, str]  # (account id, folder name)


def _content_indexes(boxes: set[Folder], digests: set[str]) -> dict[Folder, dict[tuple[str, str], int]]:
    """What each folder already holds of these contents: (sha256, Message-ID) -> raw id, by folder,
    in one query (by content hash, then sorted by folder)."""
    found: dict[Folder, dict[tuple[str, str], int]] = {}
    # One folder: its own index (account, folder, sha256). Several: the content hash alone is as
    # selective, where filtering by account would let the planner scan each account's mail.
    where = Q()
    if len(boxes) == 1:
        ((account_id, folder),) = boxes
        where = Q(account_id=account_id, folder=folder)
    # A row that holds the message, whatever became of it (processed, skipped as from an unknown
    # sender, quarantined, deleted in Buzón), not one that holds only a key.
    rows = RawMessage.objects.filter(where, sha256__in=digests).filter(
        ~Q(status__in=KEY_ONLY)).values_list("account_id", "folder", "sha256", "message_id", "id")
    for account_id, folder, digest, message_id, raw_id in rows:
        if (account_id, folder) in boxes:
            found.setdefault((account_id, folder), {})[(digest, message_id)] = raw_id
    return found


def _move_cursors(batches: Sequence[Batch]) -> None:
    """Each batch's folder cursor (a later batch of the same folder has the last word).

    On PostgreSQL one statement, never executemany: psycopg pipelines that and sends the pipeline's
    Sync only once every result is back, so a process frozen mid-pipeline would leave its session
    waiting outside the idle-in-transaction timeout (see lease.end_frozen_transactions).
    SQLite runs in this process: executemany there is one call and no round trip."""
    moves = {(b.box.account_id, b.box.folder): (b.cursor.last_uid, b.box.uidvalidity, b.cursor.highest_modseq,
                                                 b.cursor.done) for b in batches if b.cursor is not None}
    if not moves:
        return
    moved, keys = ("last_uid", "uidvalidity", "highest_modseq", "initial_done"), ("account", "folder")
    params = [[*move, account_id, folder] for (account_id, folder), move in moves.items()]
    with pg_binary.binary_cursor() as cursor:
        if connection.vendor == "postgresql":  # all of them in one statement, one array per column
            cursor.execute(unnest_update_sql(FolderCursor, moved, keys),
                           [list(column) for column in zip(*params, strict=True)])
            return
        quote = connection.ops.quote_name
        column = {name: quote(str(FolderCursor._meta.get_field(name).column))  # type: ignore[union-attr]
                  for name in moved + keys}
        table = quote(FolderCursor._meta.db_table)
        sql = (f"UPDATE {table} SET " + ", ".join(f"{column[name]} = %s" for name in moved)  # noqa: S608  # nosec B608
               + " WHERE " + " AND ".join(f"{column[name]} = %s" for name in keys))
        cursor.executemany(sql, params)


def _write_contents(rows: Sequence[RawMessage]) -> None:
    """The bytes of rows just inserted (with their ids), in one statement (models.RawContent)."""
    insert_rows([RawContent(raw_id=row.pk, data=row.data) for row in rows if row.data])
    for row in rows:
        row.hold_data(row.data)  # written


def _insert(box: Mailbox, rows: list[RawMessage]) -> list[RawMessage]:
    if not rows:
        return []
    try:
        with transaction.atomic():
            insert_rows(rows)
            _insert_ids(box, rows)
            _write_contents(rows)
    except IntegrityError:
        return _insert_one_by_one(rows)
    return rows


def _insert_ids(box: Mailbox, rows: list[RawMessage]) -> None:
    if rows[0].pk is not None:  # a single row, its id returned by the INSERT
        return
    # Read the new ids back by their server keys (one indexed query): for a first download's chunks
    # an executemany and this query beat multi-row INSERTs with RETURNING (measured on SQLite).
    ids: dict[object, int]
    if rows[0].uid is not None:
        ids = dict(RawMessage.objects.filter(
            account_id=box.account_id, folder=box.folder, uidvalidity=box.uidvalidity,
            uid__in=[row.uid for row in rows]).values_list("uid", "id"))
        for row in rows:
            row.pk = ids[row.uid]
    else:
        ids = dict(RawMessage.objects.filter(account_id=box.account_id, uidl__in=[row.uidl for row in rows])
                   .values_list("uidl", "id"))
        for row in rows:
            row.pk = ids[row.uidl]


def _insert_one_by_one(rows: list[RawMessage]) -> list[RawMessage]:
    """Someone else stored part of this batch (only possible without a lease): keep what is new."""
    created = []
    for row in rows:
        try:
            with transaction.atomic():
                row.save(force_insert=True)
            created.append(row)
        except IntegrityError:
            continue
    return created
