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


def test_rows_kept_as_a_key_only_before_are_marked_so_by_the_migration():
    """Until now such rows were "skipped" like unknown senders' mail, and some were run since."""
    import hashlib
    import importlib

    from django.apps import apps

    from tests.inbound.helpers import mail, store_raw

    migration = importlib.import_module("buzon.sync.migrations.0005_rawmessage_key_only_statuses")
    unknown_sender = store_raw(mail())
    blanked = store_raw(mail())
    RawMessage.objects.filter(pk=unknown_sender.pk).update(status="skipped")
    RawMessage.objects.filter(pk=blanked.pk).update(data=b"", status="skipped")
    ran_as_empty = store_raw(mail())
    RawMessage.objects.filter(pk=ran_as_empty.pk).update(data=b"", status="processed")
    passed_over = RawMessage.objects.create(account_address="a@x.test", uidl="00000001", data=b"", size=10,
                                            sha256="", status="skipped")
    failed = RawMessage.objects.create(account_address="a@x.test", uidl="00000002", data=b"", size=10,
                                       sha256=hashlib.sha256(b"").hexdigest(), status="failed")
    migration.mark_key_only_rows(apps, None)
    states = dict(RawMessage.objects.values_list("pk", "status"))
    assert states == {unknown_sender.pk: "skipped", blanked.pk: "duplicate", ran_as_empty.pk: "duplicate",
                      passed_over.pk: "unfetched", failed.pk: "failed"}
