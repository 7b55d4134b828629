"""The workspace's conversations: who sees which (web and API, every role), cursor pages with a
constant number of queries, and the actions (reply, status, assign, read) end to end through the
pipeline, the outbox and the aiosmtpd sink."""

from __future__ import annotations

import re
from email import message_from_bytes
from email.policy import default

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from buzon.crm.models import Ticket
from buzon.messages.conversations import Conversation
from buzon.messages.models import Direction, Message
from buzon.outbound.sender import deliver_due
from buzon.outbound.smtp import SMTPPool
from buzon.workspace.models import ConversationEvent
from tests.inbound.test_conversation_answers import _receive, _signed_in
from tests.security.conftest import ROLES, World

pytestmark = pytest.mark.django_db
SEES_A = {"agent_a", "supervisor_a", "admin"}
SEES_B = {"agent_b", "supervisor_b", "admin"}


def _ids(client: Client, path: str) -> set[int]:
    response = client.get(path)
    assert response.status_code == 200, response.content[:500]
    if path.startswith("/api/"):
        return {row["id"] for row in response.json()["results"]}
    return {int(v) for v in __import__("re").findall(r'data-conversation="(\d+)"', response.content.decode())}


def test_every_role_sees_only_the_conversations_it_may(world: World):
    a, b = world.a.message.conversation, world.b.message.conversation
    assert a is not None and b is not None and a.store_id == world.a.store.pk
    for role in ROLES:
        client = world.client(role)
        if role == "anonymous":
            assert client.get("/conversations/").status_code == 302
            assert client.get("/api/v1/conversations/").status_code in (401, 403)
            assert client.get(f"/conversations/{a.pk}/").status_code == 302
            continue
        for path in ("/conversations/", "/api/v1/conversations/"):
            seen = _ids(client, path)
            assert (a.pk in seen) == (role in SEES_A), (role, path)
            assert (b.pk in seen) == (role in SEES_B), (role, path)
        for path in (f"/conversations/{a.pk}/", f"/api/v1/conversations/{a.pk}/"):
            assert client.get(path).status_code == (200 if role in SEES_A else 404), (role, path)
        assert client.get("/conversations/999999/").status_code == 404  # invisible answers as missing
        status = client.post(f"/api/v1/conversations/{a.pk}/status/", {"status": "closed"},
                             content_type="application/json")
        assert status.status_code == (200 if role in SEES_A else 404), role
        web = client.post(f"/conversations/{a.pk}/assign/", {"agent": str(world.agents["agent_a"].pk)})
        assert web.status_code == (302 if role in SEES_A else 404), role
    a.refresh_from_db()
    assert a.status == "closed" and a.agent_id == world.agents["agent_a"].pk
    kinds = list(ConversationEvent.objects.filter(conversation=a).values_list("kind", "actor__username"))
    assert kinds[0] == ("status", "ana") and ("assigned", "ana") in kinds  # the first role allowed acted


def test_the_detail_shows_the_thread_and_holds_remote_images_back(world: World):
    conversation = world.a.message.conversation
    Message.objects.filter(pk=world.a.message.pk).update(html='<p>Hola</p><img src="https://tracker.test/p.gif">')
    page = world.client("agent_a").get(f"/conversations/{conversation.pk}/")
    body = page.content.decode()
    assert page.status_code == 200 and 'id="images-blocked"' in body and 'id="reply-form"' in body
    assert "data-blocked-src=&quot;https://tracker.test/p.gif&quot;" in body
    assert "tracker.test" not in page.headers.get("Content-Security-Policy", "")
    api = world.client("agent_a").get(f"/api/v1/conversations/{conversation.pk}/").json()
    assert [m["id"] for m in api["messages"]] == list(
        Message.objects.filter(conversation=conversation).order_by("created_at", "id").values_list("pk", flat=True))
    assert world.client("agent_b").get(f"/conversations/{conversation.pk}/").status_code == 404
    spanish = world.client("agent_a")
    spanish.cookies["django_language"] = "es"
    body = spanish.get(f"/conversations/{conversation.pk}/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Enviar respuesta" in body and ">Abierta<" in body and "Sin leer" not in body
    listed = spanish.get("/conversations/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Bandeja de entrada" in listed and "Última actividad" in listed


def _more_conversations(world: World, n: int) -> None:
    for i in range(n):
        Message.objects.create(direction=Direction.INCOMING, account=world.a.account, subject=f"Pregunta {i}",
                               from_address=f"c{i}@example.test", customer=world.a.customer,
                               agent=world.agents["agent_a"], text=f"Texto {i}")


def _queries(client: Client, path: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return [q["sql"] for q in captured.captured_queries]


@pytest.mark.parametrize("path", ["/conversations/", "/api/v1/conversations/"])
def test_a_page_costs_the_same_queries_with_1_or_50_rows_and_counts_nothing(world: World, path: str):
    Conversation.objects.exclude(store=world.a.store).delete()
    Conversation.objects.filter(store=world.a.store).delete()
    _more_conversations(world, 1)
    client = world.client("agent_a")
    _queries(client, path)  # warm: the session, the language
    one = _queries(client, path)
    _more_conversations(world, 49)
    fifty = _queries(client, path)
    assert len(_ids(client, path)) == 50
    assert len(one) == len(fifty), "\n".join(fifty)
    assert not [q for q in fifty if "COUNT(" in q.upper() and "conversation" in q.lower()]


@pytest.mark.parametrize("path", ["/conversations/", "/api/v1/conversations/"])
def test_pages_go_by_cursor_newer_and_older_without_gaps(world: World, path: str):
    _more_conversations(world, 60)
    client = world.client("agent_a")
    expected = list(Conversation.objects.filter(agent=world.agents["agent_a"]).order_by("-last_message_at", "-id")
                    .values_list("pk", flat=True))
    assert len(expected) == 60
    first = client.get(path + "?view=mine")
    if path.startswith("/api/"):
        body = first.json()
        assert body["newer"] is None and body["older"]
        second = client.get(path, {"view": "mine", "before": body["older"]}).json()
        assert [r["id"] for r in body["results"] + second["results"]] == expected[:60]
        assert second["older"] is None
        back = client.get(path, {"view": "mine", "after": second["newer"]}).json()
        assert [r["id"] for r in back["results"]] == expected[:50]
        assert client.get(path, {"before": "not-a-cursor"}).json() == {"cursor": ["Not a cursor this list gave."]}
        assert client.get(path, {"status": "lost"}).status_code == 400
    else:
        html = first.content.decode()
        assert 'id="older"' in html and 'id="newer"' not in html
        older = __import__("re").search(r'id="older" href="\?([^"]+)"', html)[1].replace("&amp;", "&")
        second = client.get(path + "?" + older)
        assert 'id="newer"' in second.content.decode() and 'id="older"' not in second.content.decode()


def _deliver() -> None:
    pool = SMTPPool(per_account=2, timeout=10)
    try:
        deliver_due(pool=pool)
    finally:
        pool.shutdown()


def test_an_agent_replies_in_the_conversation_and_the_customers_answer_reopens_it(shop):
    first = _receive(shop, subject="Pedido roto", message_id="<p1@customer.test>")
    ticket = first.record
    conversation = first.conversation
    assert conversation.record_id == ticket.pk
    browser = _signed_in()
    link = f'href="/conversations/{conversation.pk}/"'
    assert link in browser.get("/tickets/").content.decode()  # a ticket row opens its conversation
    assert link in browser.get("/customers/").content.decode()  # a customer row opens their latest
    message_page = browser.get(f"/inbox/{first.pk}/").content.decode()
    assert 'id="open-conversation"' in message_page and link in message_page and 'id="reply"' in message_page
    listed = browser.get("/conversations/")
    assert f'data-conversation="{conversation.pk}"' in listed.content.decode()
    assert "unread" in listed.content.decode()  # the customer's mail is new for the agent
    assert browser.get(f"/conversations/{conversation.pk}/").status_code == 200
    assert 'class="badge text-bg-primary me-1 unread"' not in browser.get("/conversations/").content.decode()

    assert browser.post(f"/conversations/{conversation.pk}/reply/", {"text": "   "}).status_code == 302
    assert not Message.objects.filter(direction=Direction.OUTGOING, created_by__isnull=False).exists()
    sent = browser.post(f"/conversations/{conversation.pk}/reply/", {"text": "Le enviamos otro."})
    assert sent.status_code == 302
    reply = Message.objects.get(direction=Direction.OUTGOING, created_by__isnull=False)
    assert reply.conversation_id == conversation.pk and reply.in_reply_to == "<p1@customer.test>"
    ticket.refresh_from_db()
    conversation.refresh_from_db()
    assert ticket.status == Ticket.Status.REPLIED and conversation.status == "pending"
    _deliver()
    delivered = [message_from_bytes(m.data, policy=default) for m in shop["sink"].messages
                 if "ana@customer.test" in m.rcpt_tos]
    ours = [m for m in delivered if m["In-Reply-To"] == "<p1@customer.test>" and "Le enviamos" in m.get_content()]
    assert len(ours) == 1 and str(ours[0]["Message-ID"]) == reply.message_id

    answer = _receive(shop, subject="Re: Pedido roto", body="Gracias.", headers={"In-Reply-To": reply.message_id})
    assert answer.conversation_id == conversation.pk
    conversation.refresh_from_db()
    ticket.refresh_from_db()
    assert conversation.status == "open" and ticket.status == Ticket.Status.OPEN and conversation.snippet == "Gracias."
    page = browser.get(f"/conversations/{conversation.pk}/").content.decode()
    assert page.index("Quiero cambiar") < page.index("Le enviamos otro.") < page.index("Gracias.")


def test_the_conversation_endpoints_are_in_the_openapi_schema(client: Client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    for path in ("/api/v1/conversations/", "/api/v1/conversations/{id}/", "/api/v1/conversations/{id}/reply/",
                 "/api/v1/conversations/{id}/status/", "/api/v1/conversations/{id}/assign/"):
        assert path in schema["paths"], path
    names = {p["name"] for p in schema["paths"]["/api/v1/conversations/"]["get"]["parameters"]}
    assert {"view", "store", "status", "before", "after"} <= names


def test_saved_filters_the_user_no_longer_sees_are_dropped(world: World):
    """A filter kept from last time that names what the user can no longer see (they were moved to
    another store) is dropped, not applied to an empty list with no filter shown."""
    from buzon.workspace import preferences

    ana = world.client("agent_a")
    a_conversation, b_conversation = world.a.message.conversation_id, world.b.message.conversation_id
    ana.get("/conversations/", {"store": world.a.store.pk, "account": world.a.account.pk,
                                "customer": world.a.customer.pk, "agent": world.agents["supervisor_a"].pk})
    world.agents["agent_a"].stores.set([world.b.store])
    body = ana.get("/conversations/").content.decode()
    shown = {int(pk) for pk in re.findall(r'data-conversation="(\d+)"', body)}
    assert b_conversation in shown and a_conversation not in shown
    user = world.users["agent_a"]
    assert preferences.inbox_filters(user) == {}  # every one named store A's rows
    # Asked for explicitly, a filter out of reach still lists nothing (never another store's rows).
    forged = ana.get("/conversations/", {"store": world.a.store.pk}).content.decode()
    assert not re.findall(r'data-conversation="(\d+)"', forged)
