"""The database side of the engine, run off the event loop in one thread (Django's ORM is sync).

Every function here is short and commits on its own; the event loop awaits them through `run`.
Batches of mail go through `store`: those that wait while the database thread is busy (many
accounts' arrivals landing together) are committed together next, in one transaction with a
savepoint each, so one batch's failure never undoes another's and each still commits with its
own folder cursor.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django import db
from django.db import transaction

from buzon.sync import lease
from buzon.sync.models import FolderCursor, RawMessage
from buzon.sync.store import Batch, CursorMark, Incoming, Mailbox, store_batch, store_batches

T = TypeVar("T")
log = logging.getLogger("buzon.sync")


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


def read_cursor(account_id: int, folder: str) -> FolderCursor | None:
    return FolderCursor.objects.filter(account_id=account_id, folder=folder).first()


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


def store_now(box: Mailbox, items: Sequence[Incoming], cursor: CursorMark | None, *, tracked: bool = True) -> int:
    """`tracked`: the pass shows a progress bar (an arrival by IDLE does not: one write fewer each)."""
    from buzon.sync import progress

    result = store_batch(box, items, cursor=cursor)
    if tracked:
        progress.add_done(box.account_id, len(items))
    return len(result.stored)


GROUP_MESSAGES = 500  # messages in one grouped transaction, at most (a single batch may be larger)


@dataclass
class _StoreJob:
    box: Mailbox
    items: Sequence[Incoming]
    cursor: CursorMark | None
    tracked: bool
    context: contextvars.Context  # the submitting runner's, its lease fence included
    future: asyncio.Future[int]


class _StoreQueue:
    def __init__(self) -> None:
        self.waiting: deque[_StoreJob] = deque()
        self.draining: asyncio.Task[None] | None = None

    async def drain(self) -> None:
        while self.waiting:
            jobs: list[_StoreJob] = []
            count = 0
            while self.waiting and (not jobs or count + len(self.waiting[0].items) <= GROUP_MESSAGES):
                job = self.waiting.popleft()
                if not job.future.done():  # its runner was cancelled before its turn: nothing to do
                    jobs.append(job)
                    count += len(job.items)
            if not jobs:
                continue
            try:
                outcomes = await run(_store_group, jobs)
            except BaseException as exc:  # nothing of this group was committed
                for job in jobs:
                    if job.future.done():
                        continue
                    if isinstance(exc, Exception):
                        job.future.set_exception(exc)
                    else:
                        job.future.cancel()
                if not isinstance(exc, Exception):
                    raise
                continue
            for job, outcome in zip(jobs, outcomes, strict=True):
                if job.future.done():
                    continue
                if isinstance(outcome, BaseException):
                    job.future.set_exception(outcome)
                else:
                    job.future.set_result(outcome)


_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _StoreQueue] = weakref.WeakKeyDictionary()


async def store(box: Mailbox, items: Sequence[Incoming], cursor: CursorMark | None, *, tracked: bool = True) -> int:
    """Commit one batch with its cursor (see store_now); returns how many messages were stored."""
    loop = asyncio.get_running_loop()
    queue = _queues.get(loop)
    if queue is None:
        queue = _queues[loop] = _StoreQueue()
    job = _StoreJob(box, items, cursor, tracked, contextvars.copy_context(), loop.create_future())
    queue.waiting.append(job)
    if queue.draining is None or queue.draining.done():
        queue.draining = loop.create_task(queue.drain())
    return await job.future


def _store_one(job: _StoreJob) -> int:
    return job.context.run(store_now, job.box, job.items, job.cursor, tracked=job.tracked)


def _store_group(jobs: list[_StoreJob]) -> list[int | Exception]:
    if len(jobs) == 1:
        try:
            return [_store_one(jobs[0])]
        except Exception as exc:
            return [exc]
    together = _store_together(jobs)
    if together is not None:
        return together
    outcomes: list[int | Exception] = []
    with transaction.atomic():
        for job in jobs:
            try:
                with transaction.atomic():  # a savepoint: a failed batch leaves the others whole
                    outcomes.append(_store_one(job))
            except Exception as exc:
                outcomes.append(exc)
    return outcomes


def _store_together(jobs: list[_StoreJob]) -> list[int | Exception] | None:
    """The whole group with a few statements (store_batches); None if any part of it failed, and
    nothing of it was committed: the caller then stores the batches one by one."""
    from buzon.sync import progress

    fences: dict[int, lease.Fence | None] = {}
    for job in jobs:
        fence = job.context.run(lease.current)
        if fences.setdefault(job.box.account_id, fence) != fence:
            return None  # one account under two claims: let each batch be checked on its own
    try:
        results = store_batches([Batch(job.box, job.items, job.cursor) for job in jobs], fences)
    except Exception as exc:
        log.debug("a group of %d batches did not commit together (%r): storing them one by one", len(jobs), exc)
        return None
    for job in jobs:
        if job.tracked:
            progress.add_done(job.box.account_id, len(job.items))
    return [len(result.stored) for result in results]


def update_flags(account_id: int, folder: str, uidvalidity: int | None, flags: dict[int, list[str]]) -> None:
    rows = list(RawMessage.objects.filter(account_id=account_id, folder=folder, uidvalidity=uidvalidity,
                                          uid__in=list(flags)).only("id", "uid", "flags"))
    for row in rows:
        row.flags = flags[row.uid] if row.uid is not None else row.flags
    RawMessage.objects.bulk_update(rows, ["flags"], batch_size=500)
