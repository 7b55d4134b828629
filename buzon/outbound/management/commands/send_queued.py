"""`buzon send_queued`: deliver due outgoing mail now, or keep doing so (--watch).

Run under the supervisor with --watch, it is what resumes the queue after a crash or restart:
claims left by a dead worker are taken over once their lease runs out (see outbound/queue.py).
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from buzon.outbound.sender import deliver_due


class Command(BaseCommand):
    help = "Send the outgoing mail that is due (retries and scheduled mail included)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--watch", action="store_true", help="keep running, checking every --interval seconds")
        parser.add_argument("--interval", type=float, default=5.0)
        parser.add_argument("--limit", type=int, default=None, help="send at most this many, then stop")

    def handle(self, *args: Any, **options: Any) -> None:
        while True:
            stats = deliver_due(limit=options["limit"])
            if stats.sent or stats.failed or stats.retrying:
                self.stdout.write(f"sent {stats.sent}, retrying {stats.retrying}, failed {stats.failed}")
            if not options["watch"]:
                return
            time.sleep(options["interval"])
