"""`buzon rotate-keys`: re-encrypt every stored secret under the newest key (first in BUZON_FERNET_KEYS)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from buzon.mailboxes.secrets import RotationFailed, rotate_all


class Command(BaseCommand):
    help = "Re-encrypt every stored password and secret under the newest key, in one transaction."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            count = rotate_all()
        except RotationFailed as exc:
            raise CommandError(f"nothing was changed: {exc}") from exc
        self.stdout.write(f"re-encrypted {count} secret(s) under the newest key")
