"""Periodic work shared by every worker, and recovery of tasks a killed worker left behind.

settings.PERIODIC_TASKS maps a job name to (dotted task path, interval in seconds, *task args). Each worker
runs a Scheduler thread; on every tick it claims the due PeriodicJob rows with
SELECT ... FOR UPDATE SKIP LOCKED (one worker wins each round, whatever the number of workers),
moves them on by their interval, and enqueues their tasks. The tasks themselves are idempotent, so
a job that runs twice after a crash does no harm; one that is enqueued and lost (Redis restarted)
simply runs at the next interval.

With the database task backend, a worker killed mid-task leaves its task row RUNNING for ever.
The scheduler puts such rows back to READY once the worker's heartbeat is dead: every Buzón task
is idempotent, and the task's own transaction was rolled back with the dead process.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from django import db
from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from buzon.core.models import PeriodicJob, ProcessHeartbeat, ProcessKind

log = logging.getLogger("buzon.periodic")


def run_due_jobs(owner: str) -> list[str]:
    """Enqueue every due job this worker manages to claim; returns their names."""
    jobs: dict[str, tuple[Any, ...]] = settings.PERIODIC_TASKS
    PeriodicJob.objects.bulk_create([PeriodicJob(name=name) for name in jobs], ignore_conflicts=True)
    now = timezone.now()
    claimed: list[str] = []
    with transaction.atomic():
        due = list(PeriodicJob.objects.select_for_update(skip_locked=True)
                   .filter(name__in=list(jobs), next_run_at__lte=now))
        for job in due:
            interval = float(jobs[job.name][1])
            job.next_run_at, job.last_run_at, job.last_owner = now + timedelta(seconds=interval), now, owner
            job.save(update_fields=["next_run_at", "last_run_at", "last_owner"])
            claimed.append(job.name)
    for name in claimed:
        path, _interval, *args = jobs[name]
        try:
            import_string(path).enqueue(*args)
        except Exception:  # a queue outage: the job runs again at its next interval
            log.exception("could not enqueue periodic job %s", name)
    return claimed


def recover_orphaned_tasks() -> int:
    """Put back to READY the database-queue tasks whose worker died while running them."""
    if settings.TASK_BACKEND_NAME != "db":
        return 0
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    alive = set(ProcessHeartbeat.alive().filter(kind=ProcessKind.WORKER).values_list("id", flat=True))
    # A worker that has not beaten yet is given one grace period before its tasks are taken.
    grace = timezone.now() - timedelta(seconds=settings.HEARTBEAT_S * 3)
    running = DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING, started_at__lt=grace)
    orphans = [task.pk for task in running.only("pk", "worker_ids")
               if not task.worker_ids or task.worker_ids[-1] not in alive]
    if not orphans:
        return 0
    count = DBTaskResult.objects.filter(pk__in=orphans, status=TaskResultStatus.RUNNING).update(
        status=TaskResultStatus.READY, started_at=None)
    log.warning("put %s task(s) of dead workers back in the queue", count)
    return count


class Scheduler(threading.Thread):
    def __init__(self, owner: str, tick: float = 5.0) -> None:
        super().__init__(name="periodic", daemon=True)
        self.owner, self.tick = owner, tick
        self.halted = threading.Event()

    def run(self) -> None:
        while not self.halted.wait(self.tick):
            try:
                run_due_jobs(self.owner)
                recover_orphaned_tasks()
            except DatabaseError:
                log.warning("periodic jobs not checked (database unreachable); retrying")
            finally:
                db.connections.close_all()

    def halt(self) -> None:
        self.halted.set()
