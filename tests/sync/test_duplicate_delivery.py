"""The same bytes delivered twice into one folder (IMAP) or maildrop (POP3), through the real Dovecot.

The sync keeps the second copy's server key only (so it is never fetched again), marked as a
duplicate. Whatever runs afterwards (the queued tasks, `buzon reprocess` of the account, of the
skipped or failed mail, the sender becoming a customer, the periodic re-queue) leaves it a duplicate:
it never becomes a second message, nor an unreadable one, and the inbox and API show one message.
"""

from __future__ import annotations

import imaplib
import io
import ssl

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from buzon.crm.models import Agent, Customer, CustomerEmail, Store
from buzon.inbound.batch import run_queued
from buzon.inbound.reprocess import skipped_count
from buzon.inbound.tasks import requeue_stored_task
from buzon.messages.models import Message
from buzon.sync.models import RawMessage
from tests.sync.helpers import make_account, make_mail, sync

pytestmark = pytest.mark.django_db


def _append_twice(dovecot, address: str, data: bytes) -> None:
    """Two IMAP APPENDs of the very same bytes into INBOX (what a client or a forwarding rule may do)."""
    context = ssl.create_default_context(cafile=str(dovecot.ca_file))
    with imaplib.IMAP4_SSL("localhost", dovecot.imaps_port, ssl_context=context) as client:
        client.login(address, dovecot.users[address])
        for _ in range(2):
            status, _answer = client.append("INBOX", None, None, data)
            assert status == "OK"
    assert dovecot.message_count(address) == 2


def _agent_of(store: Store, username: str) -> APIClient:
    user = get_user_model().objects.create_user(username, password="pw-long-enough-1")
    Agent.objects.create(user=user).stores.add(store)
    client = APIClient()
    client.force_authenticate(user)
    return client


def _run_queued_tasks() -> None:
    """What a worker does with the pipeline tasks the sync enqueued (database backend)."""
    from django_tasks_db.models import DBTaskResult

    for task in DBTaskResult.objects.filter(task_path="buzon.inbound.tasks.process_raw_messages"):
        run_queued(task.args_kwargs["args"][0])
        task.delete()


def _reprocess(*args: str) -> str:
    out = io.StringIO()
    call_command("reprocess", *args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_copy_delivered_twice_stays_one_message_and_a_skipped_duplicate(dovecot, protocol, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": settings.TASK_QUEUES}}
    store = Store.objects.create(name="Tienda Centro")
    account = make_account(dovecot, protocol=protocol, store=store, append_to="ticket", auto_link=True,
                           create_customer_if_not_found=False)  # unknown senders wait: reprocess --skipped
    data = make_mail(1, subject="Pedido 1042")
    _append_twice(dovecot, account.email_address, data)

    sync(account)
    original, copy = RawMessage.objects.filter(account=account).order_by("id")
    assert bytes(original.data) == data and original.status == RawMessage.Status.STORED
    assert copy.status == RawMessage.Status.DUPLICATE and bytes(copy.data) == b""
    assert copy.status_reason.startswith("Same message as")

    _run_queued_tasks()
    original.refresh_from_db()
    assert original.status == RawMessage.Status.SKIPPED  # not a customer yet: waits, with its bytes
    assert skipped_count(account.pk) == 1  # the account log counts the unknown sender's mail only

    # Every way mail is run again: the account, the skipped, the failed, the periodic re-queue.
    assert "unparseable" not in _reprocess("--account", str(account.pk))
    assert "unparseable" not in _reprocess("--skipped")
    _reprocess("--failed")
    requeue_stored_task.call()
    _run_queued_tasks()
    # The sender becomes a customer: their skipped mail is imported (tasks run as the worker would).
    customer = Customer.objects.create(store=store)
    CustomerEmail.objects.create(customer=customer, address="sender1@example.test")
    _run_queued_tasks()
    _reprocess("--account", str(account.pk))

    original.refresh_from_db()
    copy.refresh_from_db()
    assert original.status == RawMessage.Status.PROCESSED
    assert copy.status == RawMessage.Status.DUPLICATE and copy.status_reason.startswith("Same message as")
    assert bytes(copy.data) == b""
    message = Message.objects.get(account=account)
    assert message.raw_id == original.pk and message.status != "unparseable"

    agent = _agent_of(store, "lucia")
    listing = agent.get(f"/api/v1/messages/?account={account.pk}")
    assert listing.status_code == 200
    assert [(m["id"], m["subject"]) for m in listing.json()["results"]] == [(message.pk, "Pedido 1042")]
    detail = agent.get(f"/api/v1/messages/{message.pk}/").json()
    assert "Could not be read" not in str(detail) and detail["text"].startswith("Hello number 1.")
    # Another store's agent sees neither copy.
    stranger = _agent_of(Store.objects.create(name="Tienda Norte"), "marcos")
    assert stranger.get(f"/api/v1/messages/?account={account.pk}").json()["results"].__len__() == 0

    web = Client()
    web.login(username="lucia", password="pw-long-enough-1")
    assert "Pedido 1042" in web.get("/inbox/").content.decode()
    assert "Pedido 1042" not in web.get("/inbox/?status=unparseable").content.decode()  # "Could not be read"

    sync(account)  # a later pass fetches neither copy again
    assert RawMessage.objects.filter(account=account).count() == 2


def test_pop3_mail_passed_over_by_the_initial_count_is_never_run_as_an_empty_message(dovecot, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": settings.TASK_QUEUES}}
    store = Store.objects.create(name="Tienda Centro")
    account = make_account(dovecot, protocol="pop3", store=store, initial_sync_count=1)
    for i in range(3):
        dovecot.deliver(account.email_address, make_mail(i, subject=f"Pedido {i}"))
    sync(account)
    _run_queued_tasks()
    assert "unparseable" not in _reprocess("--account", str(account.pk))
    assert "unparseable" not in _reprocess("--skipped")
    statuses = sorted(RawMessage.objects.filter(account=account).values_list("status", flat=True))
    assert statuses == ["processed", "unfetched", "unfetched"]
    assert skipped_count(account.pk) == 0  # not mail from unknown senders waiting to be imported
    listing = _agent_of(store, "lucia").get(f"/api/v1/messages/?account={account.pk}").json()
    assert [m["subject"] for m in listing["results"]] == ["Pedido 2"]


@pytest.mark.slow
def test_rows_kept_as_a_key_only_before_are_marked_so_and_bytes_move_beside_their_rows(tmp_path):
    """A database from before key-only statuses and before RawContent, migrated by `buzon migrate`
    as a site upgrades: rows kept as a key only (empty bytes) were "skipped" like unknown senders'
    mail, and some were run since; they become duplicate / unfetched (0005), and every message's
    bytes move to sync_rawcontent, byte for byte, while rows without bytes get none (0008)."""
    import hashlib
    import os
    import sqlite3
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "BUZON_"))}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["BUZON_DATA_DIR"] = str(tmp_path)

    def migrate(*target: str) -> None:
        done = subprocess.run([sys.executable, "-m", "buzon.core.cli", "migrate", "-v", "0", *target], env=env,
                              cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr

    migrate("sync", "0004_synclease_epoch")
    empty = hashlib.sha256(b"").hexdigest()
    rows = {  # name: (uidl, bytes, status, sha256)
        "unknown_sender": ("u1", b"Subject: a\r\n\r\nfrom someone unknown\r\n", "skipped", "x"),
        "blanked": ("u2", b"", "skipped", "y"),
        "ran_as_empty": ("u3", b"", "processed", "z"),
        "passed_over": ("u4", b"", "skipped", ""),
        "failed": ("u5", b"", "failed", empty),
        "processed": ("u6", b"Subject: b\r\n\r\n" + bytes(range(256)) * 1000, "processed", "w"),
    }
    with sqlite3.connect(tmp_path / "buzon.sqlite3") as db:
        for name, (uidl, data, status, digest) in rows.items():
            db.execute("INSERT INTO sync_rawmessage (account_address, folder, uidl, data, size, sha256, message_id, "
                       "from_header, to_header, subject, flags, truncated, truncation_note, status, status_reason, "
                       "received_at) VALUES ('a@x.test', '', ?, ?, ?, ?, '', '', '', ?, '[]', 0, '', ?, '', "
                       "'2026-01-01 00:00:00')", (uidl, data, max(len(data), 10), digest, name, status))
    migrate()
    with sqlite3.connect(tmp_path / "buzon.sqlite3") as db:
        states = dict(db.execute("SELECT subject, status FROM sync_rawmessage"))
        contents = dict(db.execute("SELECT r.subject, c.data FROM sync_rawcontent c JOIN sync_rawmessage r "
                                   "ON r.id = c.raw_id"))
        columns = [row[1] for row in db.execute("PRAGMA table_info(sync_rawmessage)")]
    assert states == {"unknown_sender": "skipped", "blanked": "duplicate", "ran_as_empty": "duplicate",
                      "passed_over": "unfetched", "failed": "failed", "processed": "processed"}
    assert contents == {"unknown_sender": rows["unknown_sender"][1], "processed": rows["processed"][1]}
    assert "data" not in columns
