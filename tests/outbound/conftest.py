"""Fixtures for outgoing mail: accounts pointed at the aiosmtpd fixtures, a fresh pool per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from buzon.mailboxes.models import EmailAccount
from buzon.outbound import confirm
from buzon.outbound.smtp import SMTPPool
from tests.support.smtpd import SMTPServer

SMTP_USER, SMTP_PASSWORD = "sender@example.test", "smtp-secret"


@pytest.fixture
def make_account(db: Any) -> Callable[..., EmailAccount]:
    def make(server: SMTPServer | None = None, *, address: str = SMTP_USER, confirmed: bool = True,
             **fields: Any) -> EmailAccount:
        values: dict[str, Any] = {"outgoing_enabled": True, "smtp_host": "localhost", "display_name": "Soporte"}
        if server is not None:
            values.update(smtp_port=server.port, smtp_security=server.mode, smtp_auth=True)
        password = fields.pop("password", SMTP_PASSWORD)
        values.update(fields)
        account = EmailAccount(email_address=address, **values)
        account.set_password(password)
        account.save()
        if confirmed:
            confirm.mark_confirmed(account)
        return account

    return make


@pytest.fixture
def pool() -> Iterator[SMTPPool]:
    pool = SMTPPool(per_account=4, timeout=10)
    yield pool
    pool.shutdown()


@pytest.fixture(autouse=True)
def _immediate_tasks(settings: Any) -> None:
    """Queueing does not run delivery by itself in these tests; each test drains the queue explicitly."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend",
                                    "QUEUES": settings.TASK_QUEUES}}
