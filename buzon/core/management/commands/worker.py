from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Run a task worker: RQ on Redis when BUZON_TASKS=rq, the database queue otherwise."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--queue", default="*", help="queue name, or * for every queue")
        parser.add_argument("--interval", type=float, default=0.2, help="database poll interval (s)")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.TASK_BACKEND_NAME == "rq":
            queues = ["default"] if options["queue"] == "*" else [options["queue"]]
            call_command("rqworker", *queues, with_scheduler=True)
            return
        call_command("db_worker", queue_name=options["queue"], interval=options["interval"], no_startup_delay=True)
