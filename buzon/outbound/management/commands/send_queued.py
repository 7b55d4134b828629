"""`buzon send_queued`: deliver due outgoing mail now, or keep doing so (--watch).

Run under the supervisor with --watch, it is what resumes the queue after a crash or restart:
claims left by a dead worker are taken over once their lease runs out (see outbound/queue.py).
"""

from __future__ import annotations

import signal
import threading
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
        stopping = threading.Event()
        if options["watch"]:  # SIGTERM/SIGINT: finish the run in progress, then exit cleanly
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_args: stopping.set())
        while not stopping.is_set():
            stats = deliver_due(limit=options["limit"])
            if stats.sent or stats.failed or stats.retrying:
                self.stdout.write(f"sent {stats.sent}, retrying {stats.retrying}, failed {stats.failed}")
            if not options["watch"]:
                return
            stopping.wait(options["interval"])
