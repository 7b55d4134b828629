"""Who may create customers (and tickets) in the API, and in which store.

Only administrators create store-less rows. An agent names one of their stores, or gets their only
one when they name none; an agent of two stores must name one; a user in no store is refused (403).
A customer address is checked only within the store the customer is written to, one the caller sees
entirely: a duplicate there is named as before, while an address held by a customer the caller cannot
see (another store's, a store-less one) is never revealed.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from buzon.crm.models import Agent, Customer, CustomerEmail, Store, Ticket

pytestmark = pytest.mark.django_db


def _client(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _agent(name: str, *stores: Store) -> User:
    user = User.objects.create_user(name, email=f"{name}@staff.test")
    agent = Agent.objects.create(user=user, status=Agent.Status.FREE)
    agent.stores.add(*stores)
    return user


@pytest.fixture
def world() -> dict[str, object]:
    store_a, store_b = Store.objects.create(name="Tienda A"), Store.objects.create(name="Tienda B")
    hidden_b = Customer.objects.create(name="Oculto B", store=store_b)
    CustomerEmail.objects.create(customer=hidden_b, address="oculto-b@cliente.test")
    hidden_none = Customer.objects.create(name="Oculto sin tienda")
    CustomerEmail.objects.create(customer=hidden_none, address="oculto@cliente.test")
    return {"a": store_a, "b": store_b}


def test_an_agent_creates_customers_in_their_store_and_no_address_is_an_oracle(world):
    store_a, store_b = world["a"], world["b"]
    api = _client(_agent("ana", store_a))
    # No store named: their only one. The addresses other stores' and store-less customers hold are free here.
    for address in ("oculto@cliente.test", "oculto-b@cliente.test", "nuevo@cliente.test"):
        created = api.post("/api/v1/customers/", {"name": "Cliente", "emails": [address]}, format="json")
        assert created.status_code == 201, created.content
        assert (created.json()["store"], created.json()["emails"]) == (store_a.pk, [address])
        assert api.get(f"/api/v1/customers/{created.json()['id']}/").status_code == 200
    # A duplicate within the caller's own store is named, as before (the caller can open that customer).
    again = api.post("/api/v1/customers/", {"name": "Otra", "emails": ["nuevo@cliente.test"]}, format="json")
    assert again.status_code == 400
    assert again.json() == {"emails": ["nuevo@cliente.test already belongs to another customer."]}
    # Store-less, or another store's: refused on the field.
    storeless = api.post("/api/v1/customers/", {"name": "X", "store": None}, format="json")
    assert storeless.status_code == 400 and "store" in storeless.json()
    other = api.post("/api/v1/customers/", {"name": "X", "store": store_b.pk}, format="json")
    assert other.status_code == 400 and "store" in other.json()
    # Nor can an existing customer be made store-less.
    mine = Customer.objects.filter(store=store_a).first()
    moved = api.patch(f"/api/v1/customers/{mine.pk}/", {"store": None}, format="json")
    assert moved.status_code == 400 and "store" in moved.json()
    assert Customer.objects.get(pk=mine.pk).store_id == store_a.pk
    # Tickets follow the same rule.
    ticket = api.post("/api/v1/tickets/", {"subject": "Pedido"}, format="json")
    assert ticket.status_code == 201 and ticket.json()["store"] == store_a.pk
    assert Customer.objects.filter(store__isnull=True).count() == 1


def test_an_agent_of_two_stores_names_one(world):
    api = _client(_agent("berta", world["a"], world["b"]))
    unnamed = api.post("/api/v1/customers/", {"name": "Cliente"}, format="json")
    assert unnamed.status_code == 400
    assert unnamed.json() == {"store": ["Choose one of your stores."]}
    spanish = api.post("/api/v1/customers/", {"name": "Cliente"}, format="json", HTTP_ACCEPT_LANGUAGE="es")
    assert spanish.json() == {"store": ["Elija una de sus tiendas."]}
    named = api.post("/api/v1/customers/", {"name": "Cliente", "store": world["b"].pk}, format="json")
    assert named.status_code == 201 and named.json()["store"] == world["b"].pk
    # In store B the hidden customer is hers to see, so its address is named.
    taken = api.post("/api/v1/customers/", {"name": "C", "store": world["b"].pk,
                                            "emails": ["oculto-b@cliente.test"]}, format="json")
    assert taken.status_code == 400
    assert taken.json() == {"emails": ["oculto-b@cliente.test already belongs to another customer."]}


@pytest.mark.parametrize("with_agent_row", [False, True], ids=["no-agent-row", "agent-of-no-store"])
def test_a_user_in_no_store_is_refused(world, with_agent_row):
    user = _agent("nadie") if with_agent_row else User.objects.create_user("nadie")
    api = _client(user)
    before = (Customer.objects.count(), Ticket.objects.count())
    for body in ({"name": "X"}, {"name": "X", "emails": ["oculto@cliente.test"]},
                 {"name": "X", "emails": ["desconocido@cliente.test"]}):
        refused = api.post("/api/v1/customers/", body, format="json")
        assert refused.status_code == 403
        assert "oculto" not in refused.content.decode()
    assert api.post("/api/v1/tickets/", {"subject": "X"}, format="json").status_code == 403
    assert (Customer.objects.count(), Ticket.objects.count()) == before


def test_an_administrator_still_creates_store_less_customers(world):
    api = _client(User.objects.create_superuser("jefa", "jefa@staff.test", "pw-jefa-123"))
    created = api.post("/api/v1/customers/", {"name": "Sin tienda", "emails": ["libre@cliente.test"]}, format="json")
    assert created.status_code == 201 and created.json()["store"] is None
    taken = api.post("/api/v1/customers/", {"name": "Dup", "emails": ["oculto@cliente.test"]}, format="json")
    assert taken.status_code == 400
    assert taken.json() == {"emails": ["oculto@cliente.test already belongs to another customer."]}
