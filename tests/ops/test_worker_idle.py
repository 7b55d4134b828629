"""An idle slot of `buzon worker` on the database queue only reads: SQLite has one writer, and the
sync, the pipeline and every request wait for whoever holds it. It takes the write lock (the
library's exclusive transaction) to claim a task, only when one is ready, and finds it within a
poll of being queued."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django_tasks.base import TaskResultStatus
from django_tasks_db import utils
from django_tasks_db.models import DBTaskResult

from buzon.core.workerpool import DatabaseSlot
from buzon.crm.tasks import presence_sweep_task
from tests.sync.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_idle_slot_takes_no_write_lock_and_claims_a_ready_task_once(monkeypatch: Any, settings: Any) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": settings.TASK_QUEUES}}
    locks: list[float] = []
    exclusive = utils.exclusive_transaction

    @contextmanager
    def counted(using: str | None = None) -> Iterator[None]:
        locks.append(time.monotonic())
        with exclusive(using):
            yield

    monkeypatch.setattr(utils, "exclusive_transaction", counted)
    slot = DatabaseSlot(0, ("housekeeping",), worker_id="idle-test", interval=0.05)
    slot.start()
    try:
        time.sleep(0.6)  # twelve polls with nothing to do
        assert slot.is_alive() and locks == []
        queued = presence_sweep_task.enqueue()
        began = time.monotonic()
        done = wait_for(lambda: DBTaskResult.objects.filter(
            pk=queued.id, status=TaskResultStatus.SUCCESSFUL).first(), 10)
        assert done.worker_ids == ["idle-test"]
        assert len(locks) == 1 and locks[0] - began < 1.0, locks
        time.sleep(0.3)
        assert len(locks) == 1  # idle again: reads only
    finally:
        slot.request_stop()
        slot.join(5)
    assert not slot.is_alive()  # a stop reaches an idle slot at once, not after a poll of the lock
