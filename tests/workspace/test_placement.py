"""Every message is given its conversation when it is written (buzon.messages.placement): received
mail one by one, a customer's answer, an agent's reply through the outbox, a ticket's mail; and the
data migration gives mail written before conversations existed the same ones."""

from __future__ import annotations

import importlib
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.db import connection

from buzon.crm.models import Agent, Store, Ticket
from buzon.inbound import pipeline
from buzon.mailboxes.models import EmailAccount
from buzon.messages.conversations import Conversation, ConversationStatus
from buzon.messages.models import Message
from buzon.messages.outbox import queue_outgoing
from buzon.outbound import confirm
from buzon.workspace import actions
from tests.inbound.helpers import mail, store_raw

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(smtp_starttls: Any) -> dict[str, Any]:
    store = Store.objects.create(name="Tienda")
    user = User.objects.create_user("lucia", email="lucia@shop.test", password="pw-lucia-123")
    agent = Agent.objects.create(user=user, status=Agent.Status.FREE)
    agent.stores.add(store)
    account = EmailAccount(
        email_address="support@shop.test", store=store, incoming_enabled=True, outgoing_enabled=True,
        default_outgoing=True, smtp_host="localhost", smtp_port=smtp_starttls.port, smtp_security="starttls",
        smtp_auth=True, append_to="", auto_link=True)
    account.set_password("smtp-secret")
    account.save()
    confirm.mark_confirmed(account)
    return {"account": account, "user": user, "store": store}


def _receive(account: EmailAccount, **fields: Any) -> Message:
    raw = store_raw(mail(**fields), account)
    assert pipeline.run_pipeline(raw.pk) == "processed"
    return Message.objects.get(raw=raw)


def _snapshot() -> list[tuple[Any, ...]]:
    """Conversations by their messages' ids, with what the inbox shows (ids of conversations differ)."""
    rows = []
    for c in Conversation.objects.all():
        members = tuple(sorted(c.messages.values_list("pk", flat=True)))
        rows.append((members, c.message_count, c.subject, c.snippet, c.store_id, c.customer_id,
                     c.record_type_id, c.record_id, c.last_message_at, c.last_incoming_at))
    return sorted(rows)


def test_a_thread_without_record_is_one_conversation_with_its_replies(shop):
    first = _receive(shop["account"], subject="Pedido 7", body="Quiero cambiar mi pedido.",
                     message_id="<q1@customer.test>")
    conversation = first.conversation
    assert conversation is not None and conversation.record_id is None
    assert (conversation.message_count, conversation.subject, conversation.snippet, conversation.store_id) == (
        1, "Pedido 7", "Quiero cambiar mi pedido.", shop["store"].pk)
    assert conversation.last_incoming_at == first.created_at == conversation.last_message_at

    reply = queue_outgoing(to="ana@customer.test", subject="Re: Pedido 7", text="Claro, dígame cuál.",
                           in_reply_to=first, user=shop["user"])
    answer = _receive(shop["account"], subject="Re: Pedido 7", body="El azul.",
                      headers={"In-Reply-To": "<q1@customer.test>"})
    other = _receive(shop["account"], subject="Otra cosa", body="Nada que ver.")

    assert reply.conversation_id == answer.conversation_id == conversation.pk != other.conversation_id
    conversation.refresh_from_db()
    assert (conversation.message_count, conversation.snippet, conversation.status) == (3, "El azul.", "open")
    assert conversation.last_message_at == answer.created_at
    assert conversation.customer_id == first.customer_id is not None


def test_a_ticket_and_its_mail_are_one_conversation(shop):
    EmailAccount.objects.filter(pk=shop["account"].pk).update(append_to="ticket")
    shop["account"].refresh_from_db()
    first = _receive(shop["account"], subject="Garantía", body="Se rompió.")
    ticket = Ticket.objects.get()
    conversation = first.conversation
    assert (conversation.record_type.model_class(), conversation.record_id) == (Ticket, ticket.pk)
    again = _receive(shop["account"], subject=f"Re: Garantía [#T-{ticket.pk}]", body="¿Alguna novedad?",
                     sender=first.from_address)
    assert again.conversation_id == conversation.pk
    Conversation.objects.filter(pk=conversation.pk).update(status=ConversationStatus.CLOSED)
    _receive(shop["account"], subject=f"Re: Garantía [#T-{ticket.pk}]", body="Sigue roto.", sender=first.from_address)
    conversation.refresh_from_db()
    assert (conversation.message_count, conversation.status, conversation.snippet) == (3, "open", "Sigue roto.")


def test_the_data_migration_gives_old_mail_the_same_conversations(shop):
    first = _receive(shop["account"], subject="Pedido 7", body="Quiero cambiar mi pedido.",
                     message_id="<q1@customer.test>")
    queue_outgoing(to="ana@customer.test", subject="Re: Pedido 7", text="Claro.", in_reply_to=first,
                   user=shop["user"])
    _receive(shop["account"], subject="Re: Pedido 7", body="El azul.", headers={"In-Reply-To": "<q1@customer.test>"})
    _receive(shop["account"], subject="Otra cosa", body="Nada que ver.")
    written = [(members, *rest) for members, *rest in _snapshot()]
    assert [row[1] for row in written] == [3, 1]

    Message.objects.update(conversation=None)  # as before the migration
    Conversation.objects.all().delete()
    migration = importlib.import_module("buzon.workspace.migrations.0002_fill_conversations")
    migration.BATCH = 2  # several ranges, a parent in an earlier range than its reply
    migration.fill(apps, SimpleNamespace(connection=connection))
    assert _snapshot() == written
    migration.fill(apps, SimpleNamespace(connection=connection))  # resumed or run again: nothing changes
    assert _snapshot() == written


def test_a_reply_written_in_a_conversation_joins_it_even_without_references(shop):
    first = _receive(shop["account"], subject="Sin Message-ID", body="Hola.")
    Message.objects.filter(pk=first.pk).update(message_id="")  # nothing a reply could name
    reply = actions.do_reply(shop["user"], first.conversation_id, text="Buenos días.")
    assert reply.in_reply_to == "" and reply.conversation_id == first.conversation_id
    conversation = Conversation.objects.get(pk=first.conversation_id)
    assert (conversation.message_count, conversation.status, conversation.snippet) == (2, "pending", "Buenos días.")
    plain = queue_outgoing(to="ana@customer.test", subject="Aparte", text="Otra cosa.", user=shop["user"])
    assert plain.conversation_id != first.conversation_id  # outside the action: a new conversation
