"""buzon notify_unreplied [--every SECONDS]: alert about conversations whose customer mail no person
has answered in time (buzon.inbound.unreplied), once each."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from buzon.inbound.unreplied import notify_unreplied


class Command(BaseCommand):
    help = "Alert the configured addresses about conversations nobody has answered in time (once each)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--every", type=int, default=0, help="keep running, checking every N seconds")

    def handle(self, *args: Any, **options: Any) -> None:
        while True:
            self.stdout.write(f"{notify_unreplied()} conversation(s) notified")
            if options["every"] <= 0:
                return
            close_old_connections()
            time.sleep(options["every"])
