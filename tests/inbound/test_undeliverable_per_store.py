"""A bounce marks addresses undeliverable in the store that received it, never in every store.

Anyone can write a bounce. One received by store A's mailbox (maybe forged) marks the address
for store A: store A's customer card and a card made later in store A. Store B's card of the same
address, and a new one store B makes, stay deliverable. One by one and in bulk alike.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from buzon.crm.models import Agent, Customer, CustomerEmail, Store
from buzon.inbound import batch, pipeline
from buzon.messages.models import UndeliverableAddress
from tests.inbound.helpers import mail, store_raw, support_account

pytestmark = pytest.mark.django_db


def _dsn(to: str, recipient: str) -> bytes:
    return (
        f"From: Mail Delivery System <MAILER-DAEMON@mx.client.test>\r\nTo: {to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nDate: Tue, 3 Nov 2026 10:00:00 +0000\r\n"
        f"Message-ID: <dsn-{to}@mx.client.test>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.client.test\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
        f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: {to}\r\nTo: {recipient}\r\n"
        "Message-ID: <never-sent@x>\r\n\r\n--b--\r\n"
    ).encode()


def _run(raw_ids: list[int], bulk: bool) -> None:
    if bulk:
        batch.run_batch(raw_ids)
    else:
        for raw_id in raw_ids:
            pipeline.run_pipeline(raw_id)


def _api_of(store: Store, username: str) -> APIClient:
    agent = Agent.objects.create(user=User.objects.create_user(username, password=f"{username}-pw-123"))
    agent.stores.add(store)
    client = APIClient()
    client.force_authenticate(agent.user)
    return client


@pytest.mark.parametrize("bulk", [False, True])
def test_a_bounce_to_store_a_marks_the_address_for_store_a_only(bulk: bool) -> None:
    store_a, store_b = Store.objects.create(name="Tienda A"), Store.objects.create(name="Tienda B")
    account_a = support_account(email_address="ventas@tienda-a.test", store=store_a)
    account_b = support_account(email_address="ventas@tienda-b.test", store=store_b)
    # The same person is a customer of both stores.
    _run([store_raw(mail(sender="ana@customer.test", to=a.email_address, message_id=f"<ana-{a.pk}@x>"), a).pk
          for a in (account_a, account_b)], bulk)
    ana_a = Customer.objects.get(store=store_a)
    ana_b = Customer.objects.get(store=store_b)
    # A bounce received by store A for ana and for someone who is nobody's customer yet.
    _run([store_raw(_dsn(account_a.email_address, "ana@customer.test"), account_a).pk,
          store_raw(_dsn(account_a.email_address + ".", "luis@customer.test"), account_a).pk], bulk)
    assert set(UndeliverableAddress.objects.values_list("store_id", "address")) == {
        (store_a.pk, "ana@customer.test"), (store_a.pk, "luis@customer.test")}
    api_a, api_b = _api_of(store_a, "agente_a"), _api_of(store_b, "agente_b")
    assert api_a.get(f"/api/v1/customers/{ana_a.pk}/").json()["undeliverable"] == ["ana@customer.test"]
    assert api_b.get(f"/api/v1/customers/{ana_b.pk}/").json()["undeliverable"] == []
    # Luis writes to both stores: store A's new card is marked at once, store B's is not.
    _run([store_raw(mail(sender="luis@customer.test", to=a.email_address, message_id=f"<luis-{a.pk}@x>"), a).pk
          for a in (account_a, account_b)], bulk)
    luis = dict(CustomerEmail.objects.filter(address="luis@customer.test").values_list("store_id", "undeliverable"))
    assert luis == {store_a.pk: True, store_b.pk: False}
    # The same bounce again (another copy) keeps one row per store.
    _run([store_raw(_dsn(account_a.email_address, "ana@customer.test").replace(b"<dsn-", b"<dsn2-"),
                    account_a).pk], bulk)
    assert UndeliverableAddress.objects.filter(address="ana@customer.test").count() == 1


def test_a_store_less_accounts_bounce_stays_with_store_less_mail() -> None:
    store_b = Store.objects.create(name="Tienda B")
    shared = support_account(email_address="avisos@central.test")
    account_b = support_account(email_address="ventas@tienda-b.test", store=store_b)
    pipeline.run_pipeline(store_raw(_dsn(shared.email_address, "eva@customer.test"), shared).pk)
    assert list(UndeliverableAddress.objects.values_list("store_id", "address")) == [(None, "eva@customer.test")]
    pipeline.run_pipeline(store_raw(mail(sender="eva@customer.test", to=account_b.email_address), account_b).pk)
    pipeline.run_pipeline(store_raw(mail(sender="eva@customer.test", to=shared.email_address,
                                         message_id="<eva-2@x>"), shared).pk)
    eva = dict(CustomerEmail.objects.filter(address="eva@customer.test").values_list("store_id", "undeliverable"))
    assert eva == {store_b.pk: False, None: True}
