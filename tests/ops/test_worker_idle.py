"""An idle slot of `buzon worker` on the database queue only reads: SQLite has one writer, and the
sync, the pipeline and every request wait for whoever holds it. It takes the write lock (the
library's exclusive transaction) to claim a task, only when one is ready, and finds it within a
poll of being queued."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
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


@pytest.fixture(autouse=True)
def database_queue(settings: Any) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": settings.TASK_QUEUES}}


def _stop(slots: Sequence[DatabaseSlot]) -> None:
    for slot in slots:
        slot.request_stop()
    for slot in slots:
        slot.join(5)


def test_an_idle_slot_takes_no_write_lock_and_claims_a_ready_task_once(monkeypatch: Any) -> None:
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


def test_a_workers_idle_slots_share_one_read_per_poll_and_each_still_gets_its_queues_tasks() -> None:
    """Three idle slots of one process (the housekeeping, inbound and outbound queues) cost one query
    per poll between them, not each its own (and a connection health check each): `buzon worker` with
    nothing to do was about a seventh of a core on a 2-core machine. A task then reaches the slot of
    its queue within a poll or so."""
    from django.db.backends.signals import connection_created

    from buzon.core.workerpool import ReadyQueues

    statements: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append(sql)
        return execute(sql, params, many, context)

    def counted(connection: Any, **_: Any) -> None:
        connection.execute_wrappers.append(count)

    connection_created.connect(counted)
    watch = ReadyQueues(0.05)
    slots = [DatabaseSlot(i, (queue,), worker_id="idle-test", interval=0.05, watch=watch)
             for i, queue in enumerate(("housekeeping", "inbound", "outbound"))]
    try:
        for slot in slots:
            slot.start()
        time.sleep(0.5)  # connected, each slot has looked once and waits
        statements.clear()
        time.sleep(1.0)  # twenty polls
        assert all(slot.is_alive() for slot in slots)
        assert 3 <= len(statements) <= 25, len(statements)  # at most one read a poll; alone, each slot made two
        queued = presence_sweep_task.enqueue()  # the housekeeping queue's
        began = time.monotonic()
        done = wait_for(lambda: DBTaskResult.objects.filter(
            pk=queued.id, status=TaskResultStatus.SUCCESSFUL).first(), 10)
        assert time.monotonic() - began < 1.0
        assert done.worker_ids == ["idle-test"]
    finally:
        connection_created.disconnect(counted)
        _stop(slots)
    assert not any(slot.is_alive() for slot in slots)


def test_a_queues_own_idle_slot_takes_its_tasks_before_a_spare_slot_that_serves_every_queue() -> None:
    """On a machine with more cores than queues, `buzon worker` has spare slots serving every queue.
    Woken together with a queue's own slot, a spare one took about half of that queue's tasks; a
    delivery task lingers for the next message sent only in the outbound slot, so one message sent
    at a time paid a task each half the time. The queue's own slot is woken first; the spare one
    serves it while the queue's own slots are busy."""
    from buzon.core.workerpool import ReadyQueues

    watch = ReadyQueues(0.05)
    own = DatabaseSlot(0, ("housekeeping",), worker_id="own-first", interval=0.05, watch=watch)
    spare = DatabaseSlot(1, ("inbound", "outbound", "housekeeping"), worker_id="own-first", interval=0.05,
                         watch=watch)
    ran: list[str] = []
    for slot in (own, spare):
        def recording(task: Any, run: Any = slot.worker.run_task, name: str = slot.name) -> Any:
            ran.append(name)
            return run(task)
        slot.worker.run_task = recording
    try:
        own.start()
        spare.start()
        for _ in range(6):
            time.sleep(0.3)  # both idle again, waiting to be woken
            queued = presence_sweep_task.enqueue()
            wait_for(lambda: DBTaskResult.objects.filter(pk=queued.id, status=TaskResultStatus.SUCCESSFUL).first(),
                     10)
        assert ran == [own.name] * 6
    finally:
        _stop((own, spare))
