"""Live conversation pages: the 'anything since?' probes of the list and of one conversation (every
role: another store's changes never show, another store's conversation is a 404), one indexed query
whatever the number of conversations, a change committed late within the window still seen, and
presence (who is viewing or replying) through the table and through Redis."""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid

import pytest
from django.test import Client

from buzon.inbound import pipeline
from buzon.messages.conversations import Conversation
from buzon.messages.models import Message
from buzon.workspace import actions, live, presence
from buzon.workspace.models import ConversationPresence
from tests.inbound.helpers import mail, store_raw
from tests.security.conftest import ROLES, World

pytestmark = pytest.mark.django_db
SEES_A = {"agent_a", "supervisor_a", "admin"}


@pytest.fixture(autouse=True)
def _own_presence_keys(monkeypatch):
    """With REDIS_URL set, presence lives in one shared Redis: each test gets its own keys."""
    monkeypatch.setattr(presence, "REDIS_KEY", f"buzon-test-{uuid.uuid4().hex}:presence:{{conversation}}")


def _list_token(client: Client) -> str:
    body = client.get("/conversations/").content.decode()
    found = re.search(r'data-bz-live-token="([^"]+)"', body)
    assert found, body[:300]
    return found.group(1).replace("&#x2B;", "+")


def _list_changed(client: Client, token: str) -> bool:
    response = client.get("/conversations/changes/", {"since": token})
    assert response.status_code == 200 and response["Cache-Control"].startswith("max-age=0")
    return bool(response.json()["changed"])


def _conversation_token(client: Client, pk: int) -> str:
    body = client.get(f"/conversations/{pk}/").content.decode()
    found = re.search(r'data-bz-live-token="([^"]+)"', body)
    assert found, body[:300]
    return found.group(1).replace("&#x2B;", "+")


def _customer_writes(world: World, subject: str) -> Message:
    raw = store_raw(mail(sender="cliente-a@example.test", to=world.a.account.email_address, subject=subject,
                         body="¿Dónde está mi pedido?"), world.a.account)
    assert pipeline.run_pipeline(raw.pk) == "processed"
    return Message.objects.get(raw=raw)


def test_the_list_probe_says_what_changed_for_each_role_and_nothing_of_another_store(world: World):
    a = world.a.message.conversation
    clients = {role: world.client(role) for role in ROLES if role != "anonymous"}
    tokens = {role: _list_token(client) for role, client in clients.items() if role != "nobody"}
    tokens["nobody"] = clients["nobody"].get("/conversations/changes/").json()["token"]
    for role, client in clients.items():
        assert not _list_changed(client, tokens[role]), role  # nothing happened yet
    actions.do_set_status(world.users["admin"], a.pk, "closed")
    for role, client in clients.items():
        assert _list_changed(client, tokens[role]) == (role in SEES_A), role
    assert world.client("anonymous").get("/conversations/changes/").status_code == 302
    # Once a page took the new token, the same change is not news again.
    fresh = clients["agent_a"].get("/conversations/changes/", {"since": tokens["agent_a"]}).json()["token"]
    assert not _list_changed(clients["agent_a"], fresh)


def test_new_mail_through_the_pipeline_shows_in_the_list_probe_of_its_store_only(world: World):
    agent_a, agent_b = world.client("agent_a"), world.client("agent_b")
    token_a, token_b = _list_token(agent_a), _list_token(agent_b)
    message = _customer_writes(world, "Otra pregunta")
    assert message.conversation_id is not None
    assert _list_changed(agent_a, token_a) and not _list_changed(agent_b, token_b)


def test_a_change_committed_late_inside_the_window_is_still_seen(world: World):
    conversation = world.a.message.conversation
    token = world.client("agent_a").get("/conversations/changes/").json()["token"]
    at = dt.datetime.fromisoformat(token.rpartition("~")[0])
    # A transaction that took its time before committing: its updated_at is older than the token.
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=at - dt.timedelta(seconds=2))
    assert _list_changed(world.client("agent_a"), token)
    assert not _list_changed(world.client("agent_b"), world.client("agent_b").get(
        "/conversations/changes/").json()["token"])
    assert not live.list_changes(world.users["agent_a"], "not a token").changed


def test_the_list_probe_is_one_query_whatever_the_number_of_conversations(world: World,
                                                                       django_assert_max_num_queries):
    user = world.users["agent_a"]
    token = live.list_changes(user).token
    live.list_changes(user, token)  # the role's look-ups (agent, stores, groups) cached on the user
    # The agent's groups (crm.roles reads them per call) and the probe itself.
    with django_assert_max_num_queries(2):
        assert not live.list_changes(user, token).changed
    for n in range(30):
        Conversation.objects.create(store=world.a.store, subject=f"n{n}")
    with django_assert_max_num_queries(2):
        assert live.list_changes(user, token).changed
    client = world.client("agent_a")
    client.get("/conversations/changes/")
    # Session, user, the second factor's two look-ups, the role's (agent, stores, groups), the probe.
    with django_assert_max_num_queries(8):
        client.get("/conversations/changes/", {"since": token})


def test_the_conversation_probe_every_role_and_404_for_another_store(world: World):
    a = world.a.message.conversation
    for role in ROLES:
        client = world.client(role)
        response = client.get(f"/conversations/{a.pk}/changes/", {"since": "", "state": "viewing"})
        if role == "anonymous":
            assert response.status_code == 302
            continue
        assert response.status_code == (200 if role in SEES_A else 404), role
    assert world.client("agent_a").get("/conversations/999999/changes/").status_code == 404
    client = world.client("agent_a")
    token = _conversation_token(client, a.pk)
    assert client.get(f"/conversations/{a.pk}/changes/", {"since": token}).json()["changed"] is False
    actions.do_assign(world.users["admin"], a.pk, world.agents["agent_a"].pk)
    answer = client.get(f"/conversations/{a.pk}/changes/", {"since": token}).json()
    assert answer["changed"] is True and answer["token"] != token
    assert client.get(f"/conversations/{a.pk}/changes/", {"since": answer["token"]}).json()["changed"] is False


def test_the_conversation_probe_is_a_constant_number_of_queries(world: World, django_assert_max_num_queries):
    a = world.a.message.conversation
    client = world.client("agent_a")
    client.get(f"/conversations/{a.pk}/changes/", {"state": "viewing"})
    # As the list's probe (7 before the probe), the conversation, presence written and read.
    with django_assert_max_num_queries(10):
        client.get(f"/conversations/{a.pk}/changes/", {"state": "typing"})


def _present(client: Client, pk: int, state: str = "viewing") -> list[dict[str, str]]:
    response = client.get(f"/conversations/{pk}/changes/", {"state": state})
    assert response.status_code == 200
    return response.json()["present"]


def test_presence_shows_who_else_is_viewing_or_replying_and_only_to_those_who_see_it(world: World, settings):
    settings.REDIS_URL = ""  # the table every web process shares (Redis: test_presence_through_redis)
    a = world.a.message.conversation
    ana, sara, root = world.client("agent_a"), world.client("supervisor_a"), world.client("admin")
    assert _present(ana, a.pk) == []
    assert [p["text"] for p in _present(sara, a.pk)] == ["ana is viewing"]
    assert [p["text"] for p in _present(ana, a.pk, "typing")] == ["sara is viewing"]
    assert {p["text"] for p in _present(root, a.pk)} == {"ana is replying", "sara is viewing"}
    # Another store's agent cannot appear nor learn who is there: 404, and nothing written.
    assert world.client("agent_b").get(f"/conversations/{a.pk}/changes/", {"state": "viewing"}).status_code == 404
    assert not ConversationPresence.objects.filter(user=world.users["agent_b"]).exists()
    assert "bruno" not in str(_present(ana, a.pk))
    # Someone who left (the page closed) or stopped polling disappears.
    assert sara.post(f"/conversations/{a.pk}/leave/").status_code == 204
    assert world.client("agent_b").post(f"/conversations/{a.pk}/leave/").status_code == 404
    ConversationPresence.objects.filter(user=world.users["admin"]).update(
        seen_at=dt.datetime.now(dt.UTC) - presence.TTL - dt.timedelta(seconds=1))
    assert _present(ana, a.pk) == []
    spanish = world.client("supervisor_a")
    spanish.cookies["django_language"] = "es"
    texts = [p["text"] for p in spanish.get(f"/conversations/{a.pk}/changes/", {"state": "viewing"},
                                            HTTP_ACCEPT_LANGUAGE="es").json()["present"]]
    assert texts == ["ana está viendo"]


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="REDIS_URL not set")
def test_presence_through_redis(world: World, settings):
    settings.REDIS_URL = os.environ["REDIS_URL"]
    a = world.a.message.conversation
    presence.here(a.pk, world.users["agent_a"], "typing")
    assert [(p.name, p.state) for p in presence.here(a.pk, world.users["supervisor_a"], "viewing")] == [
        ("ana", "typing")]
    assert not ConversationPresence.objects.exists()
    presence.leave(a.pk, world.users["agent_a"])
    assert presence.here(a.pk, world.users["supervisor_a"], "viewing") == []


def test_the_pages_carry_the_live_parts_and_the_shortcuts_help_in_english_and_spanish(world: World):
    a = world.a.message.conversation
    client = world.client("agent_a")
    body = client.get(f"/conversations/{a.pk}/").content.decode()
    assert 'id="presence-bar"' in body and "web/live.js" in body and "web/shortcuts.js" in body
    assert 'id="shortcuts-help"' in body and "Keyboard shortcuts" in body
    listing = client.get("/conversations/").content.decode()
    assert 'id="bulk-form"' in listing and 'id="bulk-all"' in listing and "Mark unread" in listing
    spanish = world.client("agent_a")
    spanish.cookies["django_language"] = "es"
    body = spanish.get("/conversations/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Atajos de teclado" in body and "Marcar como no leída" in body
