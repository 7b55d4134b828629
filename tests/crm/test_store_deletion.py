"""Deleting a store is refused while it holds mail, customers, records or accounts (buzon.crm.store_deletion).

Before, deleting a store whose customers and messages were also held by a store-less account (the
same address, the same message) failed halfway with an integrity error: its rows became
store-less and collided. Now the administrator is told, in the UI and the API, what the store still
holds; an empty store (agents and groups only) is deleted and its agents and groups stay.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from buzon.crm.models import Agent, AgentGroup, Customer, CustomerEmail, Store
from buzon.inbound import pipeline
from buzon.mailboxes.models import EmailAccount
from buzon.messages.models import Message
from tests.inbound.helpers import mail, store_raw, support_account

pytestmark = pytest.mark.django_db


def _store_with_colliding_rows() -> Store:
    """Store A's account and a store-less one got the same mail from the same person; then A's
    account was moved out of the store (it holds no account, but still mail and a customer)."""
    store = Store.objects.create(name="Tienda A")
    ours = support_account(email_address="ventas@tienda-a.test", store=store)
    shared = support_account(email_address="avisos@central.test")
    same = mail(sender="ana@customer.test", to="ventas@tienda-a.test, avisos@central.test", message_id="<una@x>")
    for account in (ours, shared):
        pipeline.run_pipeline(store_raw(same, account).pk)
    assert Message.objects.filter(store=store).count() == 1 and Message.objects.filter(store=None).count() == 1
    assert CustomerEmail.objects.filter(address="ana@customer.test").count() == 2
    EmailAccount.objects.filter(pk=ours.pk).update(store=None)
    return store


def test_the_api_refuses_deleting_a_store_that_holds_mail_and_customers() -> None:
    store = _store_with_colliding_rows()
    admin = APIClient()
    admin.force_authenticate(User.objects.create_user("root", password="root-pw-123", is_staff=True))
    answer = admin.delete(f"/api/v1/stores/{store.pk}/")
    assert answer.status_code == 400, answer.content
    text = answer.content.decode()
    assert "Store Tienda A still holds messages: 1, customers: 1" in text and "tickets: 1" in text, text
    spanish = admin.delete(f"/api/v1/stores/{store.pk}/", HTTP_ACCEPT_LANGUAGE="es")
    assert spanish.status_code == 400
    assert "La tienda Tienda A aún tiene mensajes: 1, clientes: 1" in spanish.content.decode(), spanish.content
    assert Store.objects.filter(pk=store.pk).exists()
    assert Customer.objects.filter(store=store).count() == 1  # nothing moved, nothing lost


def test_the_stores_page_says_why_and_deletes_an_empty_store() -> None:
    store = _store_with_colliding_rows()
    client = Client(HTTP_ACCEPT_LANGUAGE="es")
    client.force_login(User.objects.create_user("root", password="root-pw-123", is_staff=True))
    page = client.get(f"/settings/stores/{store.pk}/delete/").content.decode()
    assert "La tienda Tienda A aún tiene mensajes: 1, clientes: 1" in page
    answer = client.post(f"/settings/stores/{store.pk}/delete/", follow=True)
    assert "La tienda Tienda A aún tiene mensajes: 1, clientes: 1" in answer.content.decode()
    assert Store.objects.filter(pk=store.pk).exists()
    # A store holding only its agents and a group is deleted; they stay, of no store.
    empty = Store.objects.create(name="Tienda vacía")
    group = AgentGroup.objects.create(name="Equipo vacío", store=empty)
    agent = Agent.objects.create(user=User.objects.create_user("eva", password="eva-pw-123"))
    agent.stores.add(empty)
    answer = client.post(f"/settings/stores/{empty.pk}/delete/", follow=True)
    assert answer.status_code == 200 and not Store.objects.filter(pk=empty.pk).exists()
    group.refresh_from_db()
    assert group.store_id is None and Agent.objects.filter(pk=agent.pk).exists()
