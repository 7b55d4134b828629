"""Hand stored messages to the pipeline, by dotted path (settings.INBOUND_TASK), never an import.

The task takes a list of raw message ids: the messages stored together (one FETCH chunk, one IDLE
arrival) go to the pipeline together, at most settings.INBOUND_TASK_BATCH per task, so the pipeline
can read and write them in bulk. With the database task backend the task rows are written in the
same transaction as the raw bytes, so a crash can never leave a stored message without its task.
Any other backend (Redis) cannot join our transaction, so its tasks are sent once the transaction
has committed; a message whose task was lost is enqueued again by the pipeline's periodic sweep.
There, what is stored within settings.INBOUND_ENQUEUE_WINDOW_S goes as one task: a sync process
watching many accounts stores one IDLE arrival at a time, and a task per arrival would make the
workers pay a task's and a batch's fixed cost per message (the pipeline task also takes up other
waiting messages, see buzon.inbound.batch.run_queued). The window's timer is not a daemon, so a
process that exits normally sends what it holds first.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from functools import cache
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from buzon.sync.fastinsert import insert_rows

log = logging.getLogger("buzon.sync")


@cache
def _task() -> Any:
    return import_string(settings.INBOUND_TASK)


def batches(ids: Sequence[int]) -> list[list[int]]:
    size = max(1, settings.INBOUND_TASK_BATCH)
    return [list(ids[start:start + size]) for start in range(0, len(ids), size)]


def _joins_transaction(task: Any) -> bool:
    backend = type(task.get_backend()).__module__
    return backend.startswith("django_tasks_db")


def _send(groups: list[list[int]]) -> None:
    task = _task()
    for group in groups:
        try:
            task.enqueue(group)
        except Exception:  # a queue outage must not undo stored mail; the messages stay "stored"
            log.exception("could not enqueue processing of raw messages %s", group)


def _bulk_db_enqueue(task: Any, groups: list[list[int]]) -> None:
    """The database backend's enqueue(), for all groups in one INSERT.

    Enqueueing row by row costs a model save and two signal rounds per task; these rows are built
    exactly as DatabaseBackend.enqueue() builds them (tests/sync/test_imap.py compares them)."""
    from django_tasks_db.models import DBTaskResult, get_date_max

    backend = task.get_backend()
    backend.validate_task(task)
    run_after = task.run_after if task.run_after is not None else get_date_max()
    insert_rows([
        DBTaskResult(id=backend._get_id(), args_kwargs={"args": [group], "kwargs": {}}, priority=task.priority,
                     task_path=task.module_path, queue_name=task.queue_name, run_after=run_after,
                     backend_name=backend.alias)
        for group in groups
    ])


class _Window:
    """Ids committed within one window, sent together when it closes (or once a batch is full)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Held while a flush sends: a flush returns only once everything added before it has gone,
        # even when the timer's flush took the ids a moment earlier and is still sending them.
        self._sending = threading.Lock()
        self._ids: list[int] = []
        self._timer: threading.Timer | None = None

    def add(self, ids: Sequence[int]) -> None:
        window = settings.INBOUND_ENQUEUE_WINDOW_S
        if window <= 0:
            _send(batches(ids))
            return
        with self._lock:
            self._ids.extend(ids)
            full = len(self._ids) >= settings.INBOUND_TASK_BATCH
            if not full and self._timer is None:
                self._timer = threading.Timer(window, self.flush)
                self._timer.name = "buzon-enqueue-window"
                self._timer.start()
        if full:
            self.flush()

    def flush(self) -> None:
        with self._sending:
            with self._lock:
                ids, self._ids = self._ids, []
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
            if ids:
                _send(batches(ids))


window = _Window()


def enqueue_processing(ids: Sequence[int], *, coalesce: bool = False) -> None:
    """Call inside the transaction that stored `ids`. ``coalesce``: the sync engine's arrivals, sent
    with the others of the window (a backend outside the database only)."""
    if not ids:
        return
    task = _task()
    if _joins_transaction(task):
        _bulk_db_enqueue(task, batches(ids))
        return
    stored = list(ids)
    transaction.on_commit(lambda: window.add(stored) if coalesce else _send(batches(stored)))
