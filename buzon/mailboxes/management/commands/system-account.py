"""`buzon system-account`: create, update or disable the outgoing account from BUZON_SYSTEM_SMTP_URL."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from buzon.mailboxes.system_account import SystemSMTPURLError, ensure_system_account


class Command(BaseCommand):
    help = "Apply BUZON_SYSTEM_SMTP_URL: the read-only default outgoing account of a hosted install."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            account = ensure_system_account()
        except SystemSMTPURLError as exc:
            raise CommandError(str(exc)) from exc
        if account is None:
            self.stdout.write("BUZON_SYSTEM_SMTP_URL is not set (or conflicts): no active system account")
            return
        self.stdout.write(f"system outgoing account: {account.email_address} via {account.smtp_host}:"
                          f"{account.smtp_port} ({account.smtp_security})")
