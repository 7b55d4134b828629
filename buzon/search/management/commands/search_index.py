"""`buzon search_index --rebuild`: index every message again (the triggers keep it current after)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from buzon import search
from buzon.search import index


class Command(BaseCommand):
    help = "Rebuild the full-text search index from the mail stored (--rebuild)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rebuild", action="store_true", help="empty the index and fill it again")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["rebuild"]:
            raise CommandError("Say --rebuild to empty the search index and fill it again.")
        if not index.supported():
            raise CommandError("Search needs SQLite or PostgreSQL.")
        started = time.monotonic()

        def progress(source: str, done: int) -> None:
            if options["verbosity"] > 1:
                self.stdout.write(f"{source}: {done} indexed")

        counts = search.rebuild(progress=progress)
        took = time.monotonic() - started
        for source, count in counts.items():
            self.stdout.write(f"{source}: {count} indexed in {took:.1f} s.")
