"""The `buzon` console command: every Django management command, plus Buzón's own."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "buzon.settings")
    from django.core.management import execute_from_command_line

    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["sync"] and not {"--once", "--help", "-h"} & set(args):
        _start_sync_heartbeat()
    execute_from_command_line(["buzon", *args])


def _start_sync_heartbeat() -> None:
    """The sync engine is a long-running process too: it shows on the processes page, and its
    leases (owner host:pid:...) are listed against it there."""
    import django

    django.setup()
    from buzon.core import heartbeat

    heartbeat.start("sync")


if __name__ == "__main__":
    main()
