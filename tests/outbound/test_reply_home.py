"""Mail from an account that only sends tells the customer to answer to a mailbox Buzón syncs, and to
the right one: the mailbox the conversation came in through, else one of the store's own, and only
then the site's default incoming account (which may be another store's). Checked as a mail client
reads the message at a real SMTP server."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from buzon.crm.models import Agent, Store
from buzon.inbound import pipeline
from buzon.mailboxes.models import EmailAccount
from buzon.messages.models import Message
from buzon.messages.outbox import queue_outgoing
from buzon.outbound.sender import deliver_due
from tests.inbound.helpers import mail, store_raw
from tests.outbound.conftest import SMTP_USER

pytestmark = pytest.mark.django_db


@pytest.fixture
def stores(db: Any) -> dict[str, Any]:
    """Store Sur's mailbox is the site's default incoming account; store Norte receives at two
    mailboxes of its own and sends from a third that receives nothing."""
    sur, norte = Store.objects.create(name="Sur"), Store.objects.create(name="Norte")
    made = {
        "sur": EmailAccount.objects.create(email_address="sur@shop.test", store=sur, incoming_enabled=True,
                                           default_incoming=True),
        "ventas": EmailAccount.objects.create(email_address="ventas@shop.test", store=norte, incoming_enabled=True),
        "soporte": EmailAccount.objects.create(email_address="soporte@shop.test", store=norte,
                                               incoming_enabled=True),
    }
    user = get_user_model().objects.create_user("lucia", "lucia@personal.example", "pw-lucia-123")
    Agent.objects.create(user=user).stores.add(norte)
    return {**made, "norte": norte, "agent": user}


def answer_to(server: Any) -> str:
    """Where the customer's "Reply" goes (RFC 5322 3.6.3): Reply-To when there is one, else From."""
    sent = message_from_bytes(server.messages[-1].data, policy=default)
    return ", ".join(address.addr_spec for address in (sent["Reply-To"] or sent["From"]).addresses)


def test_a_reply_sends_answers_to_the_mailbox_the_conversation_came_in_through(
        smtp_starttls: Any, make_account: Any, pool: Any, stores: dict[str, Any]) -> None:
    salida = make_account(smtp_starttls, address="salida@shop.test", login=SMTP_USER, store=stores["norte"])
    pipeline.run_pipeline(store_raw(mail(to="soporte@shop.test", subject="Pedido roto"), stores["soporte"]).pk)
    question = Message.objects.get(subject="Pedido roto")
    queue_outgoing(to="ana@customer.test", subject="Re: Pedido roto", text="Se lo cambiamos.", account=salida,
                   in_reply_to=question, user=stores["agent"])
    assert deliver_due(pool=pool).sent == 1
    assert answer_to(smtp_starttls) == "soporte@shop.test"  # not ventas@ (the store's first), not sur@


def test_new_mail_sends_answers_to_the_stores_own_mailbox(
        smtp_starttls: Any, make_account: Any, pool: Any, stores: dict[str, Any]) -> None:
    salida = make_account(smtp_starttls, address="salida@shop.test", login=SMTP_USER, store=stores["norte"])
    queue_outgoing(to="ana@customer.test", subject="Novedades", text="Hola", account=salida, user=stores["agent"])
    assert deliver_due(pool=pool).sent == 1
    assert answer_to(smtp_starttls) == "ventas@shop.test"


def test_a_store_without_a_mailbox_of_its_own_uses_the_default_incoming_account(
        smtp_starttls: Any, make_account: Any, pool: Any, stores: dict[str, Any]) -> None:
    solo = Store.objects.create(name="Sin buzón")
    salida = make_account(smtp_starttls, address="salida@shop.test", login=SMTP_USER, store=solo)
    queue_outgoing(to="ana@customer.test", subject="Hola", text="Hola", account=salida)
    assert deliver_due(pool=pool).sent == 1
    assert answer_to(smtp_starttls) == "sur@shop.test"


def test_a_store_less_sending_account_answers_to_the_senders_store_when_one_mail_is_in_two(
        smtp_starttls: Any, make_account: Any, pool: Any, stores: dict[str, Any]) -> None:
    """One customer mail to two stores is one message in each, with one Message-ID: the answer to the
    reply Norte's agent sends through the installation's own outgoing account (no store: the one the
    implementer set up, say) goes to Norte's mailbox, never to Sur's copy (newer, and not hers to see)."""
    salida = make_account(smtp_starttls, address="salida@shop.test", login=SMTP_USER, default_outgoing=True)
    both = "<para-los-dos@customer.test>"
    pipeline.run_pipeline(store_raw(mail(to="soporte@shop.test", subject="A los dos", message_id=both),
                                    stores["soporte"]).pk)
    pipeline.run_pipeline(store_raw(mail(to="sur@shop.test", subject="A los dos", message_id=both),
                                    stores["sur"]).pk)
    mine = Message.objects.get(subject="A los dos", store=stores["norte"])
    queue_outgoing(to="ana@customer.test", subject="Re: A los dos", text="Hola", account=salida,
                   in_reply_to=mine, user=stores["agent"])
    assert deliver_due(pool=pool).sent == 1
    assert answer_to(smtp_starttls) == "soporte@shop.test"
