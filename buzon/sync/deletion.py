"""The account option "delete downloaded messages": which server copies go, and the bookkeeping.

Only mail Buzón has imported is deleted from the server; mail it did not import (from a sender who
is not a customer when the account creates no customers, quarantined, not downloaded) stays there.
So the sync engine never deletes a message as it downloads it: the pipeline, once it has imported
a raw message (Message stored, a duplicate of one, or kept as unreadable), marks the raw row
`delete` (`mark_imported`; a copy of it in the folder, kept as a duplicate, goes with it:
`copies_stored`); the engine deletes those on its next pass over the folder, and wakes
the folder for it as soon as it sees new ones (`waiting`). A crash in between leaves the mail on the
server and the row marked, and the next pass deletes it. Rows waiting are found by a partial index
that holds only them (`raw_delete_waiting`), never by reading the account's other mail.

Which folders: every synced folder but the ones holding the account's own mail, Sent and Drafts
(special-use \\Sent / \\Drafts, or their usual names on servers without SPECIAL-USE): a copy Buzón
appends to Sent is never deleted by this option. POP3 has only the inbox.

Turning the option on also marks the mail imported before (once, `follow_option`), since the
option deletes what has been downloaded to Buzón, as the POP3 fetcher always did.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db.models import Max, Q

from buzon.sync.models import RawMessage, SyncState

OnServer = RawMessage.OnServer
IN_CHUNK = 5_000  # ids in one IN (...) list: SQLite takes at most 32,766 parameters per statement
#: Folders never emptied by the option: the account's own mail (see the module docstring).
KEPT_SPECIAL_USE = frozenset({"\\sent", "\\drafts"})
KEPT_NAMES = frozenset(name.lower() for name in (
    "Sent", "Sent Items", "Sent Messages", "Sent Mail", "INBOX.Sent", "INBOX/Sent", "Enviados",
    "Elementos enviados", "[Gmail]/Sent Mail", "Drafts", "INBOX.Drafts", "INBOX/Drafts", "Borradores",
    "[Gmail]/Drafts",
))


def folder_kept(name: str, attributes: Iterable[str]) -> bool:
    """Whether the option leaves this IMAP folder alone (its LIST attributes, lower case)."""
    found = {attribute.lower() for attribute in attributes}
    if found & KEPT_SPECIAL_USE:
        return True
    special = {"\\sent", "\\drafts", "\\trash", "\\junk", "\\archive", "\\all", "\\flagged"}
    return not (found & special) and name.lower() in KEPT_NAMES


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[start:start + IN_CHUNK] for start in range(0, len(ids), IN_CHUNK)]


def mark_imported(raw_ids: Sequence[int]) -> int:
    """The pipeline imported these raw messages: mark those whose account deletes downloaded mail
    (and read from a server key) to be deleted from the server. One statement; the account's option
    is read by it, not from a cache. Copies of the same message in its folder (kept as duplicates,
    never processed) go with it. Returns how many were marked."""
    marked = 0
    for chunk in _chunks(list(raw_ids)):
        rows = RawMessage.objects.filter(
            Q(uid__isnull=False) | Q(uidl__isnull=False), pk__in=chunk, status=RawMessage.Status.PROCESSED,
            on_server=OnServer.KEPT, account__delete_after_download=True)
        count = rows.update(on_server=OnServer.DELETE)
        if count:
            marked += count + _mark_copies(chunk)
    return marked


def _mark_copies(raw_ids: Sequence[int]) -> int:
    """Copies (status duplicate: the same bytes and Message-ID in the same folder) of marked rows."""
    originals = list(RawMessage.objects.filter(pk__in=raw_ids, on_server=OnServer.DELETE).values_list(
        "account_id", "folder", "sha256", "message_id"))
    if not originals:
        return 0
    same = Q()
    for account_id, folder, digest, message_id in originals:
        same |= Q(account_id=account_id, folder=folder, sha256=digest, message_id=message_id)
    return RawMessage.objects.filter(same, status=RawMessage.Status.DUPLICATE, on_server=OnServer.KEPT).update(
        on_server=OnServer.DELETE)


def copies_stored(rows: Sequence[RawMessage]) -> None:
    """The sync just stored these rows: a copy of mail the folder held (status duplicate, never
    processed) whose original was imported from an account that deletes it goes from the server
    too, else it would stay there for good. One look-up by content (raw_content_key), only when a
    batch holds copies."""
    copies = [row for row in rows if row.status == RawMessage.Status.DUPLICATE and row.pk is not None]
    if not copies:
        return
    same = Q()
    for row in copies:
        same |= Q(account_id=row.account_id, folder=row.folder, sha256=row.sha256, message_id=row.message_id)
    imported = set(RawMessage.objects.filter(
        same, status=RawMessage.Status.PROCESSED, account__delete_after_download=True,
        on_server__in=[OnServer.DELETE, OnServer.DELETED, OnServer.FLAGGED],
    ).values_list("account_id", "folder", "sha256", "message_id"))
    ids = [row.pk for row in copies if (row.account_id, row.folder, row.sha256, row.message_id) in imported]
    if ids:
        RawMessage.objects.filter(pk__in=ids, on_server=OnServer.KEPT).update(on_server=OnServer.DELETE)


def follow_option(account_id: int, on: bool) -> None:
    """The engine loaded the account's settings: when the option was just turned on, the mail
    imported before is marked too (one pass over the account's rows, once per turning on)."""
    changed = SyncState.objects.filter(account_id=account_id).exclude(delete_seen_on=on).update(delete_seen_on=on)
    if not changed and not SyncState.objects.filter(account_id=account_id).exists():
        SyncState.objects.get_or_create(account_id=account_id, defaults={"delete_seen_on": on})
        changed = 1
    if on and changed:
        ids = list(RawMessage.objects.filter(account_id=account_id, status=RawMessage.Status.PROCESSED,
                                             on_server=OnServer.KEPT).values_list("id", flat=True))
        mark_imported(ids)


def waiting(account_ids: Sequence[int]) -> dict[tuple[int, str], int]:
    """(account, folder) -> the newest raw id waiting to be deleted there (from the partial index)."""
    if not account_ids:
        return {}
    rows = (RawMessage.objects.filter(account_id__in=list(account_ids), on_server=OnServer.DELETE)
            .values("account_id", "folder").annotate(top=Max("id")).order_by())
    return {(row["account_id"], row["folder"]): row["top"] for row in rows}


def imap_waiting(account_id: int, folder: str) -> list[tuple[int, int | None, int]]:
    """(raw id, UIDVALIDITY, UID) of the folder's messages waiting to be deleted, in UID order."""
    rows = RawMessage.objects.filter(account_id=account_id, folder=folder, on_server=OnServer.DELETE,
                                     uid__isnull=False).values_list("id", "uidvalidity", "uid")
    return sorted(((pk, validity, uid) for pk, validity, uid in rows if uid is not None), key=lambda row: row[2])


def pop3_waiting(account_id: int) -> dict[str, int]:
    """UIDL -> raw id of the maildrop's messages waiting to be deleted."""
    rows = RawMessage.objects.filter(account_id=account_id, folder="", on_server=OnServer.DELETE,
                                     uidl__isnull=False).values_list("uidl", "id")
    return {str(uidl): pk for uidl, pk in rows}


def mark(raw_ids: Sequence[int], state: str) -> None:
    """What became of the server copies of these rows (only rows still waiting change)."""
    for chunk in _chunks(list(raw_ids)):
        RawMessage.objects.filter(pk__in=chunk, on_server=OnServer.DELETE).update(on_server=state)


def record_expunge(account_id: int, expunged: bool) -> None:
    """Whether deleting on this account's IMAP server removes the messages or only marks them."""
    SyncState.objects.filter(account_id=account_id).exclude(delete_expunged=expunged).update(
        delete_expunged=expunged)
