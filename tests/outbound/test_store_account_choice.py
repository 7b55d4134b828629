"""A store's agent who leaves "Send from" on automatic writes as their store: the mail leaves through the
store's outgoing account, not through the default outgoing account, which carries notifications and bulk
mail (seed 000 §3.4) and may be a store-less notifications address or another store's account.

Checked through the API an integrator or the compose page uses, at a real SMTP server, as a mail client
reads the From; on the code before, the Norte agent's mail left From the notifications address and the
Sur agent's was refused while the form offered Sur's account.
"""

from __future__ import annotations

from email import message_from_bytes, policy
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from buzon.crm.models import Agent, Store
from buzon.mailboxes.models import EmailAccount
from buzon.outbound.sender import deliver_due
from tests.outbound.conftest import SMTP_USER

pytestmark = pytest.mark.django_db


def _agent(username: str, store: Store | None) -> Any:
    user = get_user_model().objects.create_user(username, f"{username}@personal.example", "pw-agent-123")
    agent = Agent.objects.create(user=user, status=Agent.Status.FREE)
    if store is not None:
        agent.stores.add(store)
    return user


def _send(user: Any, **fields: Any) -> Any:
    client = APIClient()
    client.force_authenticate(user)
    return client.post("/api/v1/messages/send/", {"to": ["ana@cliente.example"], "subject": "Hola",
                                                   "text": "Buenos días.", **fields}, format="json")


def _senders(sink: Any, pool: Any) -> list[str]:
    deliver_due(pool=pool)
    return sorted(message_from_bytes(m.data, policy=policy.default)["From"].addresses[0].addr_spec
                  for m in sink.messages)  # in the order the pool's connections finished: sorted


@pytest.fixture
def stores(smtp_starttls: Any, make_account: Any) -> dict[str, Any]:
    north, south = Store.objects.create(name="Norte"), Store.objects.create(name="Sur")
    accounts = {
        name: make_account(smtp_starttls, address=f"{name}@example.test", login=SMTP_USER, store=store)
        for name, store in (("norte", north), ("sur", south))
    }
    return {"north": north, "south": south, **accounts}


def test_a_stores_agent_sends_as_the_store_not_as_the_notifications_account(smtp_starttls, make_account, pool,
                                                                          stores):
    make_account(smtp_starttls, address="avisos@example.test", login=SMTP_USER, default_outgoing=True)
    lucia, pedro = _agent("lucia", stores["north"]), _agent("pedro", stores["south"])
    nobody = _agent("invitado", None)
    for user, expected in ((lucia, "norte@example.test"), (pedro, "sur@example.test"),
                           (nobody, "avisos@example.test")):  # no store: the store-less default, as before
        response = _send(user)
        assert response.status_code == 202, response.content
        assert response.json()["account"] == expected
    assert _senders(smtp_starttls, pool) == ["avisos@example.test", "norte@example.test", "sur@example.test"]
    # Bulk mail still leaves through the default outgoing account, whoever sends it.
    admin = get_user_model().objects.create_user("admin", "admin@personal.example", "pw-admin-123", is_staff=True)
    assert _send(admin, kind="bulk").json()["account"] == "avisos@example.test"


def test_another_stores_default_does_not_stop_an_agent_who_has_a_store_account(smtp_starttls, pool, stores):
    EmailAccount.objects.filter(pk=stores["norte"].pk).update(default_outgoing=True)
    pedro = _agent("pedro", stores["south"])
    response = _send(pedro)
    assert response.status_code == 202, response.content
    assert response.json()["account"] == "sur@example.test"
    assert _senders(smtp_starttls, pool) == ["sur@example.test"]


def test_the_stores_default_outgoing_account_comes_first_among_its_accounts(smtp_starttls, make_account, pool,
                                                                           stores):
    second = make_account(smtp_starttls, address="ventas@example.test", login=SMTP_USER, store=stores["north"],
                          default_outgoing=True)
    lucia = _agent("lucia", stores["north"])
    assert _send(lucia).json()["account"] == second.email_address
    # An account the agent names is still the one used.
    assert _send(lucia, account=stores["norte"].pk).json()["account"] == "norte@example.test"
    assert _senders(smtp_starttls, pool) == ["norte@example.test", "ventas@example.test"]
