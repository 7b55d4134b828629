"""One mail addressed to two stores, end to end through the real Dovecot: it reaches both.

To: store A's mailbox, Cc: store B's. The mail server delivers a copy into each mailbox (here two
IMAP APPENDs of the same bytes into two Dovecot users); Buzón syncs both accounts and the pipeline
runs as the worker runs it. Each store gets its own message, record and customer card, seen by its
own agent only (API and inbox), never "already stored" as the other store's message.
"""

from __future__ import annotations

import imaplib
import ssl

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from buzon.crm.models import Agent, AgentGroup, Store
from buzon.inbound.batch import run_queued
from buzon.messages.models import Message
from buzon.sync.models import RawMessage
from tests.sync.helpers import make_account, sync

pytestmark = pytest.mark.django_db

MAIL = (
    "From: Luis Gil <luis@cliente.test>\r\nTo: {a}\r\nCc: {b}\r\nSubject: Pedido para las dos tiendas\r\n"
    "Date: Fri, 4 Dec 2026 10:00:00 +0000\r\nMessage-ID: <dos-tiendas@cliente.test>\r\nMIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    "¿Tenéis las dos el modelo azul?\r\n"
)


def _append(dovecot, address: str, data: bytes) -> None:
    context = ssl.create_default_context(cafile=str(dovecot.ca_file))
    with imaplib.IMAP4_SSL("localhost", dovecot.imaps_port, ssl_context=context) as client:
        client.login(address, dovecot.users[address])
        status, _answer = client.append("INBOX", None, None, data)
        assert status == "OK"


def _store_with_agent(dovecot, key: str):
    store = Store.objects.create(name=f"Tienda {key}")
    group = AgentGroup.objects.create(name=f"Grupo {key}", store=store)
    user = get_user_model().objects.create_user(f"agente_{key}", password="pw-long-enough-1")
    agent = Agent.objects.create(user=user, status=Agent.Status.FREE)
    agent.stores.add(store)
    agent.groups.add(group)
    account = make_account(dovecot, store=store, agent_group=group, append_to="ticket", auto_link=True)
    api = APIClient()
    api.force_authenticate(user)
    web = Client()
    web.force_login(user)
    return store, agent, account, api, web


def _run_queued_tasks() -> None:
    """What a worker does with the pipeline tasks the sync enqueued (database backend)."""
    from django_tasks_db.models import DBTaskResult

    for task in DBTaskResult.objects.filter(task_path="buzon.inbound.tasks.process_raw_messages"):
        run_queued(task.args_kwargs["args"][0])
        task.delete()


def test_one_mail_to_two_stores_reaches_both_through_dovecot(dovecot, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": settings.TASK_QUEUES}}
    store_a, agent_a, account_a, api_a, web_a = _store_with_agent(dovecot, "A")
    store_b, agent_b, account_b, api_b, web_b = _store_with_agent(dovecot, "B")
    data = MAIL.format(a=account_a.email_address, b=account_b.email_address).encode()
    _append(dovecot, account_a.email_address, data)
    _append(dovecot, account_b.email_address, data)

    sync(account_a)
    _run_queued_tasks()
    sync(account_b)  # the second store's copy comes later, as it would from another mailbox
    _run_queued_tasks()

    assert sorted(RawMessage.objects.values_list("status", flat=True)) == ["processed", "processed"]
    in_a = Message.objects.get(account=account_a)
    in_b = Message.objects.get(account=account_b)
    assert (in_a.store, in_b.store) == (store_a, store_b)
    assert in_a.customer != in_b.customer and (in_a.customer.store, in_b.customer.store) == (store_a, store_b)
    assert (in_a.agent, in_b.agent) == (agent_a, agent_b)
    assert in_a.record != in_b.record and (in_a.record.store, in_b.record.store) == (store_a, store_b)
    for api, web, own, other in ((api_a, web_a, in_a, in_b), (api_b, web_b, in_b, in_a)):
        listing = api.get("/api/v1/messages/").json()
        assert [(m["id"], m["subject"]) for m in listing["results"]] == [(own.pk, "Pedido para las dos tiendas")]
        detail = api.get(f"/api/v1/messages/{own.pk}/")
        assert detail.status_code == 200 and detail.json()["text"].startswith("¿Tenéis las dos el modelo azul?")
        assert api.get(f"/api/v1/messages/{other.pk}/").status_code == 404
        inbox = web.get("/inbox/").content.decode()
        assert f"/inbox/{own.pk}/" in inbox and f"/inbox/{other.pk}/" not in inbox
        assert web.get(f"/inbox/{other.pk}/").status_code == 404
