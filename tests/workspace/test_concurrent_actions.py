"""Two agents acting at once lose nothing (PostgreSQL, real concurrent transactions): two replies
written in the same instant both go out and both appear in the thread with the count right; a close
racing the customer's new mail ends open."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connections

from buzon.crm.models import Agent, AgentGroup, Store
from buzon.mailboxes.models import EmailAccount
from buzon.messages.conversations import Conversation
from buzon.messages.models import Direction, Message
from buzon.outbound import confirm
from buzon.workspace import actions

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _at_once(*jobs: Callable[[], Any]) -> list[Any]:
    """Run each job in its own thread (its own connection), released together."""
    start = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def run(index: int, job: Callable[[], Any]) -> None:
        try:
            start.wait()
            results[index] = job()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def _shop() -> tuple[Conversation, User, User]:
    store = Store.objects.create(name="Tienda")
    group = AgentGroup.objects.create(name="Equipo", store=store)
    account = EmailAccount(email_address="hola@tienda.test", store=store, outgoing_enabled=True,
                           default_outgoing=True, smtp_host="localhost", smtp_port=2525, agent_group=group)
    account.save()
    confirm.mark_confirmed(account)
    users = []
    for name in ("lucia", "pedro"):
        user = User.objects.create_user(name, password="pw-" + name + "-123")
        Agent.objects.create(user=user).stores.add(store)
        users.append(user)
    message = Message.objects.create(direction=Direction.INCOMING, account=account, subject="Pedido",
                                     from_address="ana@cliente.test", text="¿Dónde está?", message_id="<a@c>")
    message.refresh_from_db()
    assert message.conversation is not None
    return message.conversation, users[0], users[1]


def test_two_replies_in_the_same_instant_both_go_out_and_both_appear(postgres_url):
    conversation, lucia, pedro = _shop()
    results = _at_once(lambda: actions.do_reply(lucia, conversation.pk, text="Sale hoy."),
                       lambda: actions.do_reply(pedro, conversation.pk, text="Llega mañana."))
    assert all(isinstance(r, Message) for r in results), results
    thread = list(Message.objects.filter(conversation=conversation).order_by("id").values_list("text", flat=True))
    assert sorted(thread[1:]) == ["Llega mañana.", "Sale hoy."]
    conversation.refresh_from_db()
    assert conversation.message_count == 3 and conversation.status == "pending"
    assert Message.objects.filter(conversation=conversation, direction=Direction.OUTGOING,
                                  status="queued").count() == 2


def test_a_close_racing_the_customers_mail_ends_open(postgres_url):
    conversation, lucia, _pedro = _shop()
    seen = conversation.last_incoming_at
    for _ in range(5):  # whichever commits first, the end is the same
        results = _at_once(
            lambda: actions.do_set_status(lucia, conversation.pk, "closed", seen_incoming_at=seen),
            lambda: Message.objects.create(direction=Direction.INCOMING, account=EmailAccount.objects.get(),
                                           subject="Re: Pedido", from_address="ana@cliente.test", text="¿Y?",
                                           conversation=conversation))
        assert isinstance(results[1], Message), results
        conversation.refresh_from_db()
        assert conversation.status == "open", results
        seen = conversation.last_incoming_at
