"""Merging two conversations and moving a message out of one, as the people who do it: the web
page's forms and the API, for every role. Nothing is lost (every message, the history), another
store's conversation is a 404 in either field and changes nothing, a merge across stores is refused
in words, and a merged ticket's next mail finds the conversation it became."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType

from buzon.messages.conversations import Conversation
from buzon.messages.models import Direction, Message
from buzon.workspace.models import ConversationEvent
from tests.security.conftest import ROLES, World

pytestmark = pytest.mark.django_db
SEES_A = {"agent_a", "supervisor_a", "admin"}


def _mail(world: World, side: str, subject: str, **fields: object) -> Message:
    s = getattr(world, side)
    message = Message.objects.create(direction=Direction.INCOMING, account=s.account, subject=subject,
                                     from_address="cliente@cliente.test", customer=s.customer, text=f"Texto {subject}",
                                     **fields)
    message.refresh_from_db()
    return message


def _state() -> list[tuple[int, int | None]]:
    return sorted(Message.objects.values_list("pk", "conversation_id"))


def test_an_agent_merges_two_conversations_of_a_customer(world: World):
    first = _mail(world, "a", "Pedido 12: ¿cuándo llega?")
    second = _mail(world, "a", "Otra vez sobre el pedido 12")
    into, other = first.conversation, second.conversation
    assert into is not None and other is not None and into.pk != other.pk
    ana = world.client("agent_a")
    page = ana.get(f"/conversations/{into.pk}/").content.decode()
    assert f'<option value="{other.pk}">' in page  # offered: the same customer's other conversation

    response = ana.post(f"/conversations/{into.pk}/merge/", {"other_choice": str(other.pk)})
    assert response.status_code == 302 and response["Location"] == f"/conversations/{into.pk}/"
    into.refresh_from_db()
    other.refresh_from_db()
    assert set(Message.objects.filter(conversation=into).values_list("pk", flat=True)) == {first.pk, second.pk}
    assert into.message_count == 2 and into.snippet.startswith("Texto Otra vez")
    assert other.merged_into_id == into.pk and other.message_count == 0 and other.last_message_at is None
    assert ana.get(f"/conversations/{other.pk}/")["Location"] == f"/conversations/{into.pk}/"
    listed = ana.get("/conversations/?view=").content.decode()
    assert f'data-conversation="{other.pk}"' not in listed and f'data-conversation="{into.pk}"' in listed
    event = ConversationEvent.objects.get(conversation=into, kind="merged")
    assert event.actor == world.users["agent_a"] and event.params["other"] == other.pk
    assert event.params["messages"] == 1
    api = world.client("agent_a").get(f"/api/v1/conversations/{other.pk}/").json()
    assert api["merged_into"] == into.pk and api["messages"] == []


def test_every_role_and_every_field(world: World):
    """Another store's conversation in the path or in ``other`` is a 404, as a missing one, and
    nothing moves; only the roles that see both may merge."""
    for role in ROLES:
        into = _mail(world, "a", f"Uno {role}").conversation
        other = _mail(world, "a", f"Dos {role}").conversation
        theirs = _mail(world, "b", f"De B {role}").conversation
        assert into and other and theirs
        client = world.client(role)
        before = _state()
        if role == "anonymous":
            assert client.post(f"/conversations/{into.pk}/merge/", {"other": other.pk}).status_code == 302
            assert client.post(f"/api/v1/conversations/{into.pk}/merge/", {"other": other.pk}).status_code in (401, 403)
            assert _state() == before
            continue
        missing = client.post(f"/api/v1/conversations/{into.pk}/merge/", {"other": 2147483600})
        assert missing.status_code == 404
        into_b = client.post(f"/api/v1/conversations/{into.pk}/merge/", {"other": theirs.pk})
        # Another store's conversation as ``other``: 404 for everybody (admins: refused across stores).
        if role == "admin":
            assert into_b.status_code == 400 and "different stores" in str(into_b.json()["other"])
        else:
            assert (into_b.status_code, into_b.json()) == (404, missing.json()), role
        assert _state() == before, role
        web = client.post(f"/conversations/{into.pk}/merge/", {"other": f"#{other.pk}"})
        assert web.status_code == (302 if role in SEES_A else 404), role
        moved = set(Message.objects.filter(conversation=into).values_list("pk", flat=True))
        assert (len(moved) == 2) == (role in SEES_A), role
        if role not in SEES_A:
            assert _state() == before


def test_merging_across_stores_is_refused_in_the_readers_language(world: World):
    a = _mail(world, "a", "Tienda A").conversation
    b = _mail(world, "b", "Tienda B").conversation
    admin = world.client("admin")
    admin.cookies["django_language"] = "es"
    response = admin.post(f"/conversations/{a.pk}/merge/", {"other": b.pk}, HTTP_ACCEPT_LANGUAGE="es", follow=True)
    assert "No se pueden fusionar conversaciones de tiendas distintas" in response.content.decode()
    assert Message.objects.filter(conversation=b).count() == 1


def test_a_merged_tickets_next_mail_joins_the_conversation_it_became(world: World):
    ticket_type = ContentType.objects.get_for_model(world.a.ticket)
    from buzon.crm.models import Ticket

    other_ticket = Ticket.objects.create(subject="Segundo", customer=world.a.customer, store=world.a.store)
    first = _mail(world, "a", "Ticket uno", record_type=ticket_type, record_id=world.a.ticket.pk)
    second = _mail(world, "a", "Ticket dos", record_type=ticket_type, record_id=other_ticket.pk)
    assert first.conversation_id != second.conversation_id
    assert world.client("agent_a").post(f"/api/v1/conversations/{first.conversation_id}/merge/",
                                        {"other": second.conversation_id}).status_code == 200
    merged = Conversation.objects.get(pk=first.conversation_id).message_count
    later = _mail(world, "a", "Re: Ticket dos", record_type=ticket_type, record_id=other_ticket.pk)
    assert later.conversation_id == first.conversation_id
    assert Conversation.objects.get(pk=first.conversation_id).message_count == merged + 1


def test_moving_a_message_out(world: World):
    first = _mail(world, "a", "Pedido 7")
    assert first.conversation is not None
    second = Message.objects.create(direction=Direction.INCOMING, account=world.a.account, subject="Una duda nueva",
                                    from_address="cliente@cliente.test", customer=world.a.customer, text="Otra cosa",
                                    conversation=first.conversation)
    conversation = first.conversation
    theirs = _mail(world, "b", "De B")
    bruno, ana = world.client("agent_b"), world.client("agent_a")
    before = _state()
    assert bruno.post(f"/conversations/{conversation.pk}/move-out/", {"message": second.pk}).status_code == 404
    # A message of another conversation (another store's): the same refusal as any wrong id.
    wrong = ana.post(f"/api/v1/conversations/{conversation.pk}/move-out/", {"message": theirs.pk})
    missing = ana.post(f"/api/v1/conversations/{conversation.pk}/move-out/", {"message": 2147483600})
    assert wrong.status_code == 400 and wrong.json() == missing.json()
    assert _state() == before

    response = ana.post(f"/api/v1/conversations/{conversation.pk}/move-out/", {"message": second.pk})
    assert response.status_code == 201, response.content
    new = Conversation.objects.get(pk=response.json()["id"])
    second.refresh_from_db()
    conversation.refresh_from_db()
    assert second.conversation_id == new.pk and new.subject == "Una duda nueva" and new.store_id == world.a.store.pk
    assert (conversation.message_count, new.message_count) == (1, 1)
    assert new.customer_id == world.a.customer.pk and new.status == "open"
    assert list(new.events.values_list("kind", flat=True)) == ["split"]
    only = ana.post(f"/conversations/{new.pk}/move-out/", {"message": second.pk}, follow=True)
    assert "only message" in only.content.decode()
    assert Message.objects.get(pk=second.pk).conversation_id == new.pk
