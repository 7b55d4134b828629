"""The task queues, and how much work waits in them, whichever backend carries it (database or Redis).

Three queues, so that one kind of work never waits behind another: ``inbound`` (the pipeline, stored
mail → records), ``outbound`` (delivery and Sent-folder copies, which wait on remote servers: a relay
taking 30 s per message holds only these) and ``housekeeping`` (the periodic jobs). Each task names
its queue in its ``@task(queue_name=...)``; `buzon worker` gives each queue slots of its own
(buzon.core.slots). ``default`` holds tasks queued before the queues were split (and any task that
names none); workers serve it with housekeeping.
"""

from __future__ import annotations

from django.conf import settings

INBOUND = "inbound"
OUTBOUND = "outbound"
HOUSEKEEPING = "housekeeping"
LEGACY = "default"
QUEUES: tuple[str, ...] = (INBOUND, OUTBOUND, HOUSEKEEPING)
#: every queue a backend accepts and a worker serving everything drains
ALL_QUEUES: tuple[str, ...] = (*QUEUES, LEGACY)


def waiting_by_queue() -> dict[str, int]:
    """Tasks enqueued and not started yet, per queue (empty for backends that keep no queue)."""
    if settings.TASK_BACKEND_NAME == "db":
        from django.db.models import Count
        from django_tasks_db.models import DBTaskResult

        counted = dict(DBTaskResult.objects.ready().values_list("queue_name").annotate(n=Count("id")).order_by())
        return {name: int(counted.get(name, 0)) for name in ALL_QUEUES}
    if settings.TASK_BACKEND_NAME == "rq":
        import django_rq

        return {name: len(django_rq.get_queue(name)) for name in ALL_QUEUES}
    return {}


def ready_tasks(queue: str | None = None) -> int:
    """Tasks enqueued and not started yet, in ``queue`` or in all of them."""
    waiting = waiting_by_queue()
    return waiting.get(queue, 0) if queue is not None else sum(waiting.values())
