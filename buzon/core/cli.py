"""The `buzon` console command: every Django management command, plus Buzón's own."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from buzon.core import config

#: Set for the children of `buzon run`: their parent already said where the data is.
QUIET_START = "BUZON_QUIET_START"


def main(argv: list[str] | None = None) -> None:
    # Before anything writes a file (the SQLite database and its -wal/-shm files, generated keys,
    # stored files): whatever Buzón creates is its owner's alone.
    os.umask(config.UMASK)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "buzon.settings")
    from django.core.management import execute_from_command_line

    args = list(sys.argv[1:] if argv is None else argv)
    _secure_and_announce_data()
    if args[:1] == ["sync"] and not {"--once", "--help", "-h"} & set(args):
        _start_sync_heartbeat()
    execute_from_command_line(["buzon", *args])


def _secure_and_announce_data() -> None:
    """Fix the modes of what is already in the data directory, and say (on stderr, so a command's
    own output stays clean) which data directory and database this command uses."""
    from django.conf import settings

    changed = config.secure_data_dir(settings.DATA_DIR)
    if os.environ.get(QUIET_START):
        return
    print(f"Buzón: data directory {settings.DATA_DIR}; database {describe_database(settings.DATABASES['default'])}",
          file=sys.stderr)
    if changed:
        print(f"Buzón: made {len(changed)} entries of the data directory private to their owner "
              "(0700 directories, 0600 files)", file=sys.stderr)


def describe_database(database: Mapping[str, Any]) -> str:
    """The database in words a person can check, never with its password."""
    engine = str(database.get("ENGINE", "")).rsplit(".", 1)[-1]
    if engine == "sqlite3":
        return f"SQLite {database.get('NAME')}"
    where = f"{database.get('HOST') or 'localhost'}:{database.get('PORT') or 'default port'}"
    return f"{engine} {database.get('NAME')} on {where} as {database.get('USER') or 'the current user'}"


def _start_sync_heartbeat() -> None:
    """The sync engine is a long-running process too: it shows on the processes page, and its
    leases (owner host:pid:...) are listed against it there."""
    import django

    django.setup()
    from buzon.core import heartbeat

    heartbeat.start("sync")


if __name__ == "__main__":
    main()
