"""Bulk actions on the conversation list and the API: each id goes through its single action (checked
and in the history exactly as one by one), another store's id is 'missing' with no effect, for every
role; read/unread per person; a number of queries that grows by a fixed amount per conversation."""

from __future__ import annotations

import pytest

from buzon.messages.conversations import Conversation
from buzon.workspace import bulk, reads
from buzon.workspace.models import ConversationEvent
from tests.security.conftest import ROLES, World

pytestmark = pytest.mark.django_db
SEES_A = {"agent_a", "supervisor_a", "admin"}
SEES_B = {"agent_b", "supervisor_b", "admin"}


def test_bulk_status_through_the_api_for_every_role_answers_per_id_and_touches_only_what_it_sees(world: World):
    a, b = world.a.message.conversation, world.b.message.conversation
    for role in ROLES:
        Conversation.objects.filter(pk__in=[a.pk, b.pk]).update(status="open")
        ConversationEvent.objects.all().delete()
        response = world.client(role).post("/api/v1/conversations/bulk/", {
            "ids": [a.pk, b.pk, 999999], "action": "status", "status": "pending"}, content_type="application/json")
        if role == "anonymous":
            assert response.status_code in (401, 403)
            assert Conversation.objects.get(pk=a.pk).status == "open"
            continue
        assert response.status_code == 200, (role, response.content)
        results = {r["id"]: r["result"] for r in response.json()["results"]}
        assert results == {a.pk: "done" if role in SEES_A else "missing",
                           b.pk: "done" if role in SEES_B else "missing", 999999: "missing"}, role
        assert Conversation.objects.get(pk=a.pk).status == ("pending" if role in SEES_A else "open"), role
        assert Conversation.objects.get(pk=b.pk).status == ("pending" if role in SEES_B else "open"), role
        events = set(ConversationEvent.objects.values_list("conversation_id", "kind", "actor_id"))
        user_id = world.users[role].pk  # type: ignore[union-attr]
        assert events == ({(a.pk, "status", user_id)} if role in SEES_A else set()) | (
            {(b.pk, "status", user_id)} if role in SEES_B else set()), role


def test_bulk_assign_on_the_web_list_for_every_role(world: World):
    a, b = world.a.message.conversation, world.b.message.conversation
    agent = world.agents["agent_a"].pk
    for role in ROLES:
        Conversation.objects.filter(pk__in=[a.pk, b.pk]).update(agent=None)
        response = world.client(role).post("/conversations/bulk/", {
            "ids": [str(a.pk), str(b.pk)], "action": "assign", "agent": str(agent), "next": "/conversations/"})
        assert response.status_code == 302, role
        if role == "anonymous":
            assert response["Location"].startswith("/login")
        else:
            assert response["Location"] == "/conversations/"
        a.refresh_from_db()
        b.refresh_from_db()
        assert a.agent_id == (agent if role in SEES_A else None), role
        assert b.agent_id is None, role  # store A's agent is refused for B; unseen B is missing
    page = world.client("admin").post("/conversations/bulk/", {
        "ids": [str(a.pk)], "action": "assign", "agent": str(agent), "next": "https://evil.test/"}, follow=True)
    assert page.redirect_chain[-1][0] == "/conversations/"  # never off-site
    assert "conversation changed." in page.content.decode()


def test_refused_and_bad_requests_say_why(world: World):
    a, b = world.a.message.conversation, world.b.message.conversation
    admin = world.client("admin")
    refused = admin.post("/api/v1/conversations/bulk/", {"ids": [a.pk, b.pk], "action": "assign",
                                                         "agent": world.agents["agent_a"].pk},
                         content_type="application/json").json()["results"]
    assert [(r["id"], r["result"]) for r in refused] == [(a.pk, "done"), (b.pk, "refused")]
    assert refused[1]["message"]
    for body in ({"ids": [], "action": "read"}, {"ids": [a.pk], "action": "delete"},
                 {"ids": [a.pk], "action": "status", "status": "gone"},
                 {"ids": list(range(1, bulk.MAX_IDS + 2)), "action": "read"}):
        assert admin.post("/api/v1/conversations/bulk/", body, content_type="application/json").status_code == 400
    web = admin.post("/conversations/bulk/", {"ids": ["x"], "action": "read"}, follow=True)
    assert "Conversations are given by their numbers." in web.content.decode()


def test_mark_read_and_unread_in_bulk_are_per_person(world: World):
    a = world.a.message.conversation
    ana, sara = world.users["agent_a"], world.users["supervisor_a"]

    def unread(user) -> bool:
        return bool(reads.with_unread(Conversation.objects.filter(pk=a.pk), user).get().unread)

    assert unread(ana) and unread(sara)
    assert bulk.do_bulk(ana, [a.pk], "read")[0].result == bulk.DONE
    assert not unread(ana) and unread(sara)
    world.client("agent_a").post("/conversations/bulk/", {"ids": [str(a.pk)], "action": "unread"})
    assert unread(ana)
    assert bulk.do_bulk(world.users["agent_b"], [a.pk], "read")[0].result == bulk.MISSING
    assert unread(ana) and unread(sara)


def test_bulk_queries_grow_by_a_fixed_amount_per_conversation(world: World, django_assert_max_num_queries):
    admin = world.users["admin"]
    rows = [Conversation.objects.create(store=world.a.store, subject=f"n{n}") for n in range(12)]
    bulk.do_bulk(admin, [rows[0].pk], "status", status="pending")  # the role's look-ups, once
    with django_assert_max_num_queries(2 + 7 * 2):
        bulk.do_bulk(admin, [r.pk for r in rows[1:3]], "status", status="closed")
    with django_assert_max_num_queries(2 + 7 * 9):
        bulk.do_bulk(admin, [r.pk for r in rows[3:12]], "status", status="closed")
    assert set(Conversation.objects.filter(pk__in=[r.pk for r in rows[1:]]).values_list("status", flat=True)) == {
        "closed"}
