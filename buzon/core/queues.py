"""How much work waits in the task queue, whichever backend carries it (database table or Redis)."""

from __future__ import annotations

from django.conf import settings


def ready_tasks() -> int:
    """Tasks enqueued and not started yet (0 for backends that keep no queue)."""
    if settings.TASK_BACKEND_NAME == "db":
        from django_tasks_db.models import DBTaskResult

        return int(DBTaskResult.objects.ready().count())
    if settings.TASK_BACKEND_NAME == "rq":
        import django_rq

        return sum(len(django_rq.get_queue(name)) for name in settings.RQ_QUEUES)
    return 0
