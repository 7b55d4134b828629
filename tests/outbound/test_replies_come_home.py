"""A customer's answer to an agent's reply comes back to the account that sent it (and so to its
ticket), in both sender modes; only the per-account option sends it to the agent's own address.
Checked as a mail client reads the message at a real SMTP server, for an agent of one store."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from email.utils import make_msgid
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from buzon.crm.models import Agent, Store, Ticket
from buzon.inbound import pipeline
from buzon.messages.models import Message
from buzon.messages.outbox import queue_outgoing
from buzon.outbound.sender import deliver_due
from tests.inbound.helpers import mail, store_raw

pytestmark = pytest.mark.django_db

PERSONAL = "lucia.gomez@personal.example"


@pytest.fixture
def agent_user(db: Any) -> Any:
    """An agent of one store, whose personal address is outside the company."""
    store = Store.objects.create(name="Tienda Norte")
    user = get_user_model().objects.create_user("lucia", PERSONAL, "pw-lucia-123", first_name="Lucía",
                                                last_name="Gómez")
    Agent.objects.create(user=user, status=Agent.Status.FREE).stores.add(store)
    return user


def reply_target(mail: EmailMessage) -> str:
    """Where "Reply" sends the answer (RFC 5322 3.6.3): Reply-To when there is one, else From."""
    header = mail["Reply-To"] or mail["From"]
    return ", ".join(address.addr_spec for address in header.addresses)


@pytest.mark.parametrize(("always_account", "to_agent", "shown"), [
    (False, False, "Lucía Gómez via Soporte"),
    (True, False, "Soporte"),
    (False, True, "Lucía Gómez via Soporte"),
    (True, True, "Soporte"),
])
def test_the_customers_answer_comes_back_to_the_account(smtp_starttls: Any, make_account: Any, pool: Any,
                                                        agent_user: Any, always_account: bool, to_agent: bool,
                                                        shown: str) -> None:
    store = Store.objects.get()
    account = make_account(smtp_starttls, store=store, incoming_enabled=True, append_to="ticket", auto_link=True,
                           always_use_account_address=always_account, replies_to_agent=to_agent)
    pipeline.run_pipeline(store_raw(mail(sender="Ana <ana@customer.test>", to=account.email_address,
                                         subject="Pedido roto"), account).pk)
    question = Message.objects.get(subject="Pedido roto")
    ticket = question.record
    assert isinstance(ticket, Ticket)

    queue_outgoing(to="ana@customer.test", subject="Re: Pedido roto", text="Se lo cambiamos.",
                   in_reply_to=question, user=agent_user)
    assert deliver_due(pool=pool).sent == 1
    received = smtp_starttls.messages[0]
    sent = message_from_bytes(received.data, policy=default)

    assert sent["From"].addresses[0].addr_spec == account.email_address
    assert sent["From"].addresses[0].display_name == shown
    assert sent["Sender"] is None and received.mail_from == account.email_address
    if to_agent:
        assert reply_target(sent) == PERSONAL
        assert sent["Reply-To"].addresses[0].display_name == "Lucía Gómez"
        return
    assert reply_target(sent) == account.email_address
    assert PERSONAL.encode() not in received.data  # the personal address is nowhere in the message

    # The customer presses Reply: the answer reaches the shared mailbox and joins the ticket.
    answer = mail(sender="Ana <ana@customer.test>", to=reply_target(sent), subject=f"Re: {sent['Subject']}",
                  message_id=make_msgid(domain="customer.test"),
                  headers={"In-Reply-To": sent["Message-ID"], "References": sent["Message-ID"]})
    pipeline.run_pipeline(store_raw(answer, account).pk)
    assert Message.objects.get(message_id=message_from_bytes(answer)["Message-ID"]).record == ticket


def test_the_option_in_english_and_spanish_and_only_for_whoever_manages_the_account(
        staff_client: Client, make_account: Any, agent_user: Any) -> None:
    account = make_account(store=Store.objects.get())
    edit = f"/settings/email/accounts/{account.pk}/edit/"
    english = staff_client.get(edit, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'name="replies_to_agent"' in english and "Replies go to the agent&#x27;s personal address" in english
    spanish = staff_client.get(edit, HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Las respuestas van a la dirección personal del agente" in spanish
    assert "no se reciben en Buzón ni se añaden a la conversación" in spanish

    api = APIClient()
    api.force_authenticate(agent_user)  # an agent of the account's store, not its supervisor
    refused = api.patch(f"/api/v1/email-accounts/{account.pk}/", {"replies_to_agent": True}, format="json")
    assert refused.status_code in (403, 404)
    account.refresh_from_db()
    assert account.replies_to_agent is False
    admin = APIClient()
    admin.force_authenticate(get_user_model().objects.get(username="admin"))
    assert admin.get(f"/api/v1/email-accounts/{account.pk}/").json()["replies_to_agent"] is False
