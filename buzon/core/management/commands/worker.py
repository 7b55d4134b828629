import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections
from django_tasks.signals import task_finished, task_started

from buzon.core import heartbeat, slots
from buzon.core.models import ProcessKind
from buzon.core.periodic import Scheduler
from buzon.core.workerpool import DatabaseSlot, Pool, ReadyQueues, RedisSlot, Slot


class Command(BaseCommand):
    help = ("Run a task worker: several tasks at once (--concurrency), from the queues named (--queue); "
            "RQ on Redis when BUZON_TASKS=rq, the database queue otherwise.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--queue", "--queues", dest="queue", default="*",
                            help="queues to serve, separated by commas: inbound, outbound, housekeeping "
                                 "(default: * for all)")
        parser.add_argument("--concurrency", type=int, default=None,
                            help="tasks run at once (threads); default: one per queue served and at least one "
                                 "per core. Each queue has a slot of its own while there are enough.")
        parser.add_argument("--interval", type=float, default=0.05,
                            help="how often the process looks for a task in the database queue while a slot is "
                                 "idle (s): one read for all its idle slots")
        parser.add_argument("--no-periodic", action="store_true",
                            help="do not take part in periodic jobs (another worker runs them)")
        parser.add_argument("--connections", type=int, default=None,
                            help="SMTP connections this process opens to one account at most "
                                 "(default: BUZON_OUTBOUND_CONNECTIONS, 16); `buzon run` shares that number "
                                 "among its workers")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            queues = slots.parse_queues(options["queue"])
        except slots.UnknownQueue as exc:
            raise CommandError(str(exc)) from exc
        concurrency = options["concurrency"] or slots.default_concurrency(queues)
        if concurrency < 1:
            raise CommandError("--concurrency must be at least 1")
        plan = slots.plan(queues, concurrency)
        if options["connections"] is not None:
            if options["connections"] < 1:
                raise CommandError("--connections must be at least 1")
            settings.OUTBOUND_CONNECTIONS_PER_ACCOUNT = options["connections"]  # before any pool exists
        beat = heartbeat.start(ProcessKind.WORKER)
        slots.publish(plan)
        if not options["no_periodic"]:
            Scheduler(beat.id).start()
        pool: list[Slot]
        if settings.TASK_BACKEND_NAME == "rq":
            # As Django does around each request: a connection broken by a database restart is
            # dropped before the next job instead of failing every job after it (in the job's thread).
            task_started.connect(_fresh_connections, dispatch_uid="buzon-worker-db")
            task_finished.connect(_fresh_connections, dispatch_uid="buzon-worker-db-end")
            # Jobs and RQ's scheduler run in this process (buzon.core.rqworker): nothing forks beside
            # the heartbeat and periodic threads started above, and the heartbeat counts the jobs.
            pool = [RedisSlot(i, q, name=f"{beat.id}.{i}", scheduler_queues=queues if i == 0 else None)
                    for i, q in enumerate(plan)]
        elif settings.TASK_BACKEND_NAME == "db":
            # One worker id for every slot: a task is the process's, recovered when its heartbeat dies.
            watch = ReadyQueues(options["interval"])  # one look for every idle slot of the process
            pool = [DatabaseSlot(i, q, worker_id=beat.id, interval=options["interval"], watch=watch)
                    for i, q in enumerate(plan)]
        else:
            raise CommandError(f"BUZON_TASKS={settings.TASK_BACKEND_NAME} runs tasks without a worker")
        sys.exit(Pool(pool).run())


def _fresh_connections(**_kwargs: Any) -> None:
    close_old_connections()
