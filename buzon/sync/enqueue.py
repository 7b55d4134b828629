"""Hand stored messages to the pipeline, by dotted path (settings.INBOUND_TASK), never an import.

The task takes a list of raw message ids: the messages stored together (one FETCH chunk, one IDLE
arrival) go to the pipeline together, at most settings.INBOUND_TASK_BATCH per task, so the pipeline
can read and write them in bulk. With the database task backend the task rows are written in the
same transaction as the raw bytes, so a crash can never leave a stored message without its task.
Any other backend (Redis) cannot join our transaction, so its tasks are sent once the transaction
has committed; a message whose task was lost is enqueued again by the pipeline's periodic sweep.
"""

from __future__ import annotations

import logging
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


def enqueue_processing(ids: Sequence[int]) -> None:
    """Call inside the transaction that stored `ids`."""
    if not ids:
        return
    task = _task()
    groups = batches(ids)
    if _joins_transaction(task):
        _bulk_db_enqueue(task, groups)
        return
    transaction.on_commit(lambda: _send(groups))
