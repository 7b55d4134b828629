"""Hand stored messages to the pipeline: one task per message, by dotted path, never an import.

With the database task backend the task rows are written in the same transaction as the raw
bytes, so a crash can never leave a stored message without its task. Any other backend (Redis)
cannot join our transaction, so its tasks are sent once the transaction has committed.
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


def _joins_transaction(task: Any) -> bool:
    backend = type(task.get_backend()).__module__
    return backend.startswith("django_tasks_db")


def _send(ids: Sequence[int]) -> None:
    task = _task()
    for raw_id in ids:
        try:
            task.enqueue(raw_id)
        except Exception:  # a queue outage must not undo stored mail; the message stays "stored"
            log.exception("could not enqueue processing of raw message %s", raw_id)


def _bulk_db_enqueue(task: Any, ids: Sequence[int]) -> None:
    """The database backend's enqueue(), for a whole batch in one INSERT.

    Enqueueing row by row costs more than storing the mail itself (a model save and two signal
    rounds per task); these rows are built exactly as DatabaseBackend.enqueue() builds them."""
    from django_tasks_db.models import DBTaskResult, get_date_max

    backend = task.get_backend()
    backend.validate_task(task)
    run_after = task.run_after if task.run_after is not None else get_date_max()
    insert_rows([
        DBTaskResult(id=backend._get_id(), args_kwargs={"args": [raw_id], "kwargs": {}}, priority=task.priority,
                     task_path=task.module_path, queue_name=task.queue_name, run_after=run_after,
                     backend_name=backend.alias)
        for raw_id in ids
    ])


def enqueue_processing(ids: Sequence[int]) -> None:
    """Call inside the transaction that stored `ids`."""
    if not ids:
        return
    task = _task()
    if _joins_transaction(task):
        _bulk_db_enqueue(task, ids)
        return
    frozen = list(ids)
    transaction.on_commit(lambda: _send(frozen))
