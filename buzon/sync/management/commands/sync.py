"""`buzon sync`: run the sync engine forever; `buzon sync ACCOUNT --once`: one pass, with a bar."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from buzon.mailboxes.errors import MailServerError
from buzon.sync.once import find_accounts, sync_once


def _raise_open_files_limit() -> None:
    """One socket per watched folder: 1,000 accounts need more than the usual 1,024 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))


class Command(BaseCommand):
    # The engine needs models, not templates or URLs: a check elsewhere must not stop mail coming in.
    requires_system_checks: list[str] = []
    help = _("Bring incoming mail in: every enabled account, forever (IDLE), or one pass with --once.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("accounts", nargs="*", help=_("account id or email address (default: all)"))
        parser.add_argument("--once", action="store_true", help=_("one pass in the foreground, then exit"))
        parser.add_argument("--max-accounts", type=int, default=10_000,
                            help=_("hold at most this many accounts in this process"))

    def handle(self, *args: Any, **options: Any) -> None:
        logging.getLogger("buzon.sync").setLevel(logging.INFO)
        _raise_open_files_limit()
        try:
            ids = find_accounts(options["accounts"]) if options["accounts"] else None
        except LookupError as exc:
            raise CommandError(str(exc)) from exc
        if options["once"]:
            try:
                asyncio.run(sync_once(ids, self.stderr))
            except MailServerError as exc:
                raise CommandError(exc.message()) from exc
            return
        asyncio.run(self._forever(ids, options["max_accounts"]))

    async def _forever(self, ids: list[int] | None, max_accounts: int) -> None:
        from buzon.sync.engine import Engine

        engine = Engine(only=set(ids) if ids is not None else None, max_accounts=max_accounts)
        loop = asyncio.get_running_loop()

        # Not loop.add_signal_handler: asyncio gives SIGTERM back its default action when the loop
        # closes, and ctrl-c reaches `buzon run`'s whole process group, whose supervisor then sends
        # SIGTERM too, which arrived while this process was saying goodbye (the heartbeat's
        # stopped_at, written at exit) and killed it before the write. Once stopping, a signal asks
        # nothing more; the supervisor still kills a process that does not end in its grace period.
        def on_signal(_signum: int, _frame: object) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(engine.stop)

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)
        await engine.run()
