"""The inbox lists conversations, with the views and filters an agent works by: mine, unassigned,
my stores', all (administrators), and by store, status, account, agent and customer. Each filter is
served by an index ending in the list's order; a filter naming another store's account, agent or
customer finds nothing (never their mail); the choice is kept for the next visit, on any device."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from buzon.messages.conversations import Conversation
from buzon.messages.models import Direction, Message
from buzon.workspace import reads
from tests.security.conftest import World

pytestmark = pytest.mark.django_db


def _ids(client: Client, path: str) -> list[int]:
    response = client.get(path)
    assert response.status_code == 200, response.content[:300]
    if path.startswith("/api/"):
        return [row["id"] for row in response.json()["results"]]
    return [int(v) for v in re.findall(r'data-conversation="(\d+)"', response.content.decode())]


def _conversation(world: World, side: str, subject: str, *, agent: str | None = None) -> Conversation:
    s = getattr(world, side)
    message = Message.objects.create(direction=Direction.INCOMING, account=s.account, subject=subject,
                                     from_address=f"{subject.replace(' ', '')}@cliente.test",
                                     agent=world.agents[agent] if agent else None, text=subject)
    message.refresh_from_db()
    assert message.conversation is not None and message.conversation.account_id == s.account.pk
    return message.conversation


def test_views_and_filters_for_each_role(world: World):
    mine = _conversation(world, "a", "Para Ana", agent="agent_a")
    free = _conversation(world, "a", "Sin nadie")
    other = _conversation(world, "b", "De Bruno", agent="agent_b")
    ana, bruno, admin = world.client("agent_a"), world.client("agent_b"), world.client("admin")
    for path in ("/conversations/", "/api/v1/conversations/"):
        assert _ids(ana, f"{path}?view=mine") == [mine.pk]
        assert free.pk in _ids(ana, f"{path}?view=unassigned") and mine.pk not in _ids(ana, f"{path}?view=unassigned")
        assert other.pk not in _ids(ana, f"{path}?view=unassigned")
        stores = _ids(ana, f"{path}?view=stores")
        assert {mine.pk, free.pk} <= set(stores) and other.pk not in stores
        assert other.pk not in _ids(ana, f"{path}?view=all")  # "all" is everything *visible*
        assert {mine.pk, free.pk, other.pk} <= set(_ids(admin, f"{path}?view=all"))
        # By account, agent, customer: another store's finds nothing, not their mail.
        assert set(_ids(ana, f"{path}?account={world.a.account.pk}")) >= {mine.pk, free.pk}
        assert _ids(ana, f"{path}?account={world.b.account.pk}") == []
        assert _ids(ana, f"{path}?agent={world.agents['agent_b'].pk}") == []
        assert _ids(admin, f"{path}?agent={world.agents['agent_b'].pk}") == [other.pk]
        assert _ids(ana, f"{path}?customer={world.b.customer.pk}") == []
        assert _ids(bruno, f"{path}?customer={world.a.customer.pk}") == []
        assert world.a.message.conversation_id in _ids(ana, f"{path}?customer={world.a.customer.pk}")
    for bad in ("view=everything", "account=uno", "agent=-1", "customer=x", "status=done"):
        assert ana.get(f"/api/v1/conversations/?{bad}").status_code == 400, bad
        assert ana.get(f"/conversations/?{bad}").status_code == 400, bad


def test_the_choice_is_kept_until_changed(world: World):
    mine = _conversation(world, "a", "Para Ana", agent="agent_a")
    free = _conversation(world, "a", "Sin nadie")
    ana = world.client("agent_a")
    assert set(_ids(ana, "/conversations/")) >= {mine.pk, free.pk}
    assert _ids(ana, "/conversations/?view=mine&store=&status=") == [mine.pk]
    again = world.client("agent_a")  # another browser: the choice is the person's, not the session's
    page = again.get("/conversations/")
    assert [int(v) for v in re.findall(r'data-conversation="(\d+)"', page.content.decode())] == [mine.pk]
    assert 'value="mine" selected' in page.content.decode() and 'id="clear-filters"' in page.content.decode()
    assert set(_ids(again, "/conversations/?view=")) >= {mine.pk, free.pk}  # "Clear filters"
    assert set(_ids(ana, "/conversations/")) >= {mine.pk, free.pk}
    assert _ids(world.client("supervisor_a"), "/conversations/?view=mine") == []  # sara has none


@pytest.mark.parametrize("filters", [{"view": "mine"}, {"view": "unassigned"}, {"status": "open"},
                                     {"store": "STORE"}, {"account": "ACCOUNT"}, {"agent": "AGENT"},
                                     {"customer": "CUSTOMER"}])
def test_each_filter_reads_an_index_in_the_lists_order(world: World, filters: dict[str, str]):
    """The page's query walks an index that starts with the filter's column and ends in the order:
    no sort step over the table (SQLite's plan says "USE TEMP B-TREE FOR ORDER BY" when it sorts)."""
    values = {"STORE": str(world.a.store.pk), "ACCOUNT": str(world.a.account.pk),
              "AGENT": str(world.agents["agent_a"].pk), "CUSTOMER": str(world.a.customer.pk)}
    chosen = {k: values.get(v, v) for k, v in filters.items()}
    rows = reads.filtered(world.users["agent_a"], **chosen).order_by("-last_message_at", "-id")[:51]
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor != "sqlite":
            pytest.skip("the plan text is SQLite's; PostgreSQL's is measured in bench/")
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        plan = " | ".join(str(row[-1]) for row in cursor.fetchall())
    assert "TEMP B-TREE" not in plan, plan
    assert "conversation" in plan.lower(), plan


def test_a_filtered_page_costs_a_constant_number_of_queries(world: World):
    ana = world.client("agent_a")
    for i in range(3):
        _conversation(world, "a", f"Pregunta {i}", agent="agent_a")
    ana.get("/conversations/?view=mine")  # warm: the session, the language, the kept choice
    with CaptureQueriesContext(connection) as few:
        ana.get("/conversations/?view=mine")
    for i in range(40):
        _conversation(world, "a", f"Otra {i}", agent="agent_a")
    with CaptureQueriesContext(connection) as many:
        ana.get("/conversations/?view=mine")
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
    counted = [q["sql"] for q in many.captured_queries if "COUNT(" in q["sql"].upper()]
    assert not [q for q in counted if "conversation" in q or "messages_app_message" in q]  # the bell's own only
