"""The database side of the engine, run off the event loop in one thread (Django's ORM is sync).

Every function here is short and commits on its own; the event loop awaits them through `run`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django import db
from django.db import transaction

from buzon.sync.models import FolderCursor, RawMessage
from buzon.sync.store import CursorMark, Incoming, Mailbox, store_batch

T = TypeVar("T")


STOPPING = threading.Event()


class Stopping(Exception):
    """The engine is stopping: a queued database job was skipped."""


def _unless_stopping(func: Callable[..., T]) -> Callable[..., T]:
    def job(*args: Any, **kwargs: Any) -> T:
        if STOPPING.is_set():
            raise Stopping(func.__name__)
        return func(*args, **kwargs)

    return job


async def run(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run on the engine's database thread (one connection, jobs in order)."""
    return await sync_to_async(_unless_stopping(func), thread_sensitive=True)(*args, **kwargs)


async def run_fresh(func: Callable[..., T], *args: Any) -> T:
    """Run in a thread of its own with its own connection, ahead of anything queued (for stopping)."""
    def job() -> T:
        try:
            return func(*args)
        finally:
            db.connections.close_all()

    return await asyncio.to_thread(job)


def open_cursor(account_id: int, folder: str, uidvalidity: int | None) -> FolderCursor:
    """The folder's cursor; a new UIDVALIDITY starts it over (duplicates are caught by content).

    Read without a write transaction in the common case: every IDLE wake-up passes here."""
    cursor = FolderCursor.objects.filter(account_id=account_id, folder=folder).first()
    if cursor is not None and cursor.uidvalidity == uidvalidity:
        return cursor
    with transaction.atomic():
        cursor, _ = FolderCursor.objects.select_for_update().get_or_create(
            account_id=account_id, folder=folder, defaults={"uidvalidity": uidvalidity})
        if cursor.uidvalidity != uidvalidity:
            cursor.uidvalidity, cursor.last_uid, cursor.highest_modseq = uidvalidity, 0, None
            cursor.initial_done = False
            cursor.save()
    return cursor


def close_cursor(account_id: int, folder: str, last_uid: int, highest_modseq: int | None) -> None:
    FolderCursor.objects.filter(account_id=account_id, folder=folder, last_uid__lte=last_uid).update(
        last_uid=last_uid, highest_modseq=highest_modseq, initial_done=True)


def store(box: Mailbox, items: Sequence[Incoming], cursor: CursorMark | None, *, tracked: bool = True) -> int:
    """`tracked`: the pass shows a progress bar (an arrival by IDLE does not: one write fewer each)."""
    from buzon.sync import progress

    result = store_batch(box, items, cursor=cursor)
    if tracked:
        progress.add_done(box.account_id, len(items))
    return len(result.stored)


def update_flags(account_id: int, folder: str, uidvalidity: int | None, flags: dict[int, list[str]]) -> None:
    rows = list(RawMessage.objects.filter(account_id=account_id, folder=folder, uidvalidity=uidvalidity,
                                          uid__in=list(flags)).only("id", "uid", "flags"))
    for row in rows:
        row.flags = flags[row.uid] if row.uid is not None else row.flags
    RawMessage.objects.bulk_update(rows, ["flags"], batch_size=500)
