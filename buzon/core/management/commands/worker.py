from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections
from django_tasks.signals import task_finished, task_started

from buzon.core import heartbeat
from buzon.core.models import ProcessKind
from buzon.core.periodic import Scheduler


class Command(BaseCommand):
    help = "Run a task worker: RQ on Redis when BUZON_TASKS=rq, the database queue otherwise."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--queue", default="*", help="queue name, or * for every queue")
        parser.add_argument("--interval", type=float, default=0.2, help="database poll interval (s)")
        parser.add_argument("--no-periodic", action="store_true",
                            help="do not take part in periodic jobs (another worker runs them)")

    def handle(self, *args: Any, **options: Any) -> None:
        beat = heartbeat.start(ProcessKind.WORKER)
        if not options["no_periodic"]:
            Scheduler(beat.id).start()
        if settings.TASK_BACKEND_NAME == "rq":
            queues = ["default"] if options["queue"] == "*" else [options["queue"]]
            # As Django does around each request: a connection broken by a database restart is
            # dropped before the next job instead of failing every job after it.
            task_started.connect(_fresh_connections, dispatch_uid="buzon-worker-db")
            task_finished.connect(_fresh_connections, dispatch_uid="buzon-worker-db-end")
            # Jobs and RQ's scheduler run in this process (buzon.core.rqworker): nothing forks beside
            # the heartbeat and periodic threads started above, database connections stay this
            # process's own, and the heartbeat counts the jobs.
            call_command("rqworker", *queues, worker_class="buzon.core.rqworker.Worker",
                         job_class="django_tasks_rq.backend.Job", name=beat.id, with_scheduler=True)
            return
        call_command("db_worker", queue_name=options["queue"], interval=options["interval"],
                     startup_delay=False, worker_id=beat.id)


def _fresh_connections(**_kwargs: Any) -> None:
    close_old_connections()
