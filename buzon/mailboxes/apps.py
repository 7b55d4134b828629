import logging
from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

log = logging.getLogger(__name__)


def _system_account_after_migrate(sender: AppConfig, **kwargs: Any) -> None:
    """The system account follows BUZON_SYSTEM_SMTP_URL after every migrate (ready() runs before
    the database may exist, so it is not done there). Not after a migrate to an older state."""
    from buzon.core import migrated
    from buzon.mailboxes.system_account import SystemSMTPURLError, ensure_system_account

    if not migrated.fully(kwargs.get("using", "default")):
        return
    try:
        ensure_system_account()
    except SystemSMTPURLError as exc:
        log.error("%s", exc)


class MailboxesConfig(AppConfig):
    name = "buzon.mailboxes"
    label = "mailboxes"

    def ready(self) -> None:
        post_migrate.connect(_system_account_after_migrate, sender=self, dispatch_uid="mailboxes.system_account")
        from buzon.mailboxes import audit

        audit.connect_signals()
