"""buzon reprocess MESSAGE | --account ID [--skipped] [--failed] | --skipped | --failed"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from buzon.inbound.reprocess import raw_ids, reprocess


class Command(BaseCommand):
    help = "Run the inbound pipeline again on stored mail, without duplicating anything."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("message", nargs="?", type=int, help="id of a Message")
        parser.add_argument("--account", type=int, help="every message of this email account")
        parser.add_argument("--skipped", action="store_true", help="only mail skipped as from unknown senders")
        parser.add_argument("--failed", action="store_true", help="only mail whose processing failed")

    def handle(self, *args: Any, **options: Any) -> None:
        message, account = options["message"], options["account"]
        if message is None and account is None and not options["skipped"] and not options["failed"]:
            raise CommandError("Name a message id, --account ID, --skipped or --failed.")
        ids = raw_ids(message_id=message, account_id=account, skipped=options["skipped"], failed=options["failed"])
        if message is not None and not ids:
            raise CommandError(f"Message {message} does not exist or was not received from a mailbox.")
        outcomes = reprocess(ids)
        summary = ", ".join(f"{name} {count}" for name, count in sorted(outcomes.items())) or "nothing to do"
        self.stdout.write(f"{len(ids)} message(s): {summary}")
