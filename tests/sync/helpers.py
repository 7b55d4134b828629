"""Accounts pointed at the Dovecot fixture, generated mail, and one-pass syncs for the sync tests."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from asgiref.sync import async_to_sync

from buzon.mailboxes.models import AccountState, EmailAccount
from buzon.sync.once import sync_once

PORTS = {
    ("imap", "ssl"): "imaps_port", ("imap", "starttls"): "imap_port",
    ("pop3", "ssl"): "pop3s_port", ("pop3", "starttls"): "pop3_port",
}


def make_account(dovecot, *, protocol: str = "imap", security: str = "ssl", port: int | None = None,
                 password: str = "secret", address: str | None = None, **fields) -> EmailAccount:
    address = address or dovecot.add_user()
    fields.setdefault("initial_sync_count", 0)
    account = EmailAccount(
        email_address=address, incoming_enabled=True, incoming_protocol=protocol, incoming_host="localhost",
        incoming_port=port or getattr(dovecot, PORTS[(protocol, security)]), incoming_security=security,
        state=AccountState.IDLE, **fields,
    )
    account.set_password(password)
    account.save()
    return account


def make_mail(index: int = 0, *, subject: str | None = None, size_kb: int = 0, html: bool = False,
              attachment_kb: int = 0, message_id: str | None = None, body: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Sender {index} <sender{index}@example.test>"
    msg["To"] = "inbox@example.test"
    msg["Subject"] = subject if subject is not None else f"Message {index}"
    msg["Date"] = format_datetime(datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    msg["Message-ID"] = message_id or make_msgid(domain="example.test")
    text = body if body is not None else f"Hello number {index}.\n" + ("lorem ipsum " * 80 + "\n") * size_kb
    msg.set_content(text)
    if html:
        msg.add_alternative(f"<html><body><p>Hello <b>number {index}</b></p></body></html>", subtype="html")
    if attachment_kb:
        blob = random.Random(index).randbytes(attachment_kb * 1024)
        msg.add_attachment(blob, maintype="application", subtype="pdf", filename=f"report-{index}.pdf")
    return msg.as_bytes().replace(b"\n", b"\r\n")


def sync(*accounts: EmailAccount) -> str:
    """One foreground pass, as `buzon sync ACCOUNT --once` runs it; returns what it printed."""
    out = io.StringIO()
    async_to_sync(sync_once)([account.pk for account in accounts], out)
    return out.getvalue()


class EngineThread:
    """The sync engine (`buzon sync`) running in this process, on its own loop and thread."""

    def __init__(self, only: set[int] | None = None) -> None:
        import asyncio
        import threading

        from buzon.sync.engine import Engine

        self.loop = asyncio.new_event_loop()
        self.engine: Engine | None = None
        self.only = only
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import asyncio

        from django.db import connections

        from buzon.sync.engine import Engine

        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            self.engine = Engine(only=self.only, heartbeat_thread=False)
            await self.engine.run()

        try:
            self.loop.run_until_complete(main())
        finally:
            connections.close_all()

    def __enter__(self) -> EngineThread:
        import time

        self.thread.start()
        deadline = time.monotonic() + 5
        while self.engine is None and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.engine is not None:
            self.loop.call_soon_threadsafe(self.engine.stop)
        self.thread.join(30)


def on_db(func, *args):
    """Run `func` on the engine's database thread. SQLite's shared in-memory test database locks
    whole tables between connections, so while an engine runs, tests read through its thread."""
    from asgiref.sync import SyncToAsync

    return SyncToAsync.single_thread_executor.submit(func, *args).result()


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def run_pipeline_tasks() -> int:
    """What `buzon worker` does with the pipeline tasks the sync enqueued (database task backend):
    runs each as the worker would, and returns how many there were."""
    from django_tasks_db.models import DBTaskResult

    from buzon.inbound.batch import run_queued

    tasks = list(DBTaskResult.objects.filter(task_path="buzon.inbound.tasks.process_raw_messages"))
    for task in tasks:
        run_queued(task.args_kwargs["args"][0])
        task.delete()
    return len(tasks)
