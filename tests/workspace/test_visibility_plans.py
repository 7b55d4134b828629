"""What an agent may see is a condition on the listed row's own indexed columns, and a list reads
each of its terms from the index that serves it in the list's order.

As an agent of one store, the conversation list and the message list are the role rule's terms (the
store, the agent, what they wrote, a store-less group), each read from its own (column, order) index
up to the page size and merged (buzon.core.keyset.merged_sql), then those rows read by id: no join,
no DISTINCT over the table, no sort of every row the agent may see. Checked in the plans SQLite and
PostgreSQL make of the very queries.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext

from buzon.core import keyset
from buzon.crm import roles
from buzon.crm.models import AgentGroup
from buzon.messages.models import Direction, Message
from buzon.workspace import reads
from tests.security.conftest import World

#: What each list's terms may be read from: an index starting with the term's column, in the order.
INDEXES = {
    "messages_app_conversation": {"conversation_store_activity", "conversation_agent_activity",
                                  "conversation_cgroup_activity", "conversation_agroup_activity"},
    "messages_app_message": {"message_store_created", "message_agent_created", "message_creator_created",
                             "message_customer_group_created", "message_account_group_created"},
}


def _lists(user: Any) -> dict[str, tuple[QuerySet[Any], str, str]]:
    conversations = reads.filtered(user)
    messages = roles.visible(Message.objects.filter(direction=Direction.INCOMING), user)
    return {"conversations": (conversations, "last_message_at", "messages_app.Conversation"),
            "messages": (messages.filter(created_at__isnull=False), "created_at", "messages_app.Message")}


def _page_queries(user: Any, name: str) -> tuple[tuple[str, list[Any]], tuple[str, list[Any]], str, int]:
    """The page's two queries as keyset.page runs them: the merged ids, then those rows by id."""
    rows, field, label = _lists(user)[name]
    terms = roles.terms(label, user) or []
    merged = keyset.merged_sql(rows, terms, field, (f"-{field}", "-pk"), 51)
    with CaptureQueriesContext(connection) as queries:
        keyset.page(rows, field=field, terms=terms)
    by_id = queries.captured_queries[-1]["sql"]
    assert ' IN (' in by_id and len(queries.captured_queries) == 2, queries.captured_queries
    return merged, (by_id, []), rows.model._meta.db_table, len(terms)


def _sqlite_plan(sql: str, params: list[Any]) -> list[tuple[int, int, str]]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params or None)
        return [(row[0], row[1], str(row[-1])) for row in cursor.fetchall()]


def _postgres_plan(sql: str, params: list[Any]) -> dict[str, Any]:
    with transaction.atomic(), connection.cursor() as cursor:
        # A test's tables are tiny, where reading a whole table, or a few rows of any index and then
        # sorting them, is cheapest: ask for a plan without either, which only an index in the list's
        # order gives (at volume PostgreSQL chooses it by cost: a Merge Append of the terms, no sort).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_incremental_sort = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params or None)
        found = cursor.fetchone()[0]
    return (json.loads(found) if isinstance(found, str) else found)[0]["Plan"]


def _shown(node: dict[str, Any], depth: int = 0) -> str:
    """A plan as EXPLAIN's text would show it, enough to read why an assertion failed."""
    line = "  " * depth + " ".join(str(node.get(k, "")) for k in ("Node Type", "Index Name", "Relation Name"))
    return "\n".join([line, *(_shown(child, depth + 1) for child in node.get("Plans", []))])


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(n for child in node.get("Plans", []) for n in _nodes(child))]


def _agent_with_a_store_less_group(world: World) -> Any:
    group = AgentGroup.objects.create(name="Equipo sin tienda")
    world.agents["agent_a"].groups.add(group)
    return world.users["agent_a"]


def _check(world: World, name: str, grouped: bool) -> None:
    user = _agent_with_a_store_less_group(world) if grouped else world.users["agent_a"]
    for _ in range(3):  # rows in the list, in each term
        Message.objects.create(direction=Direction.INCOMING, account=world.a.account, subject="Más",
                               customer=world.a.customer, agent=world.agents["agent_a"])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # the planner's statistics of these rows, as a site's housekeeping gathers them
    (sql, params), (by_id, _), table, count = _page_queries(user, name)
    assert count >= 3 if grouped else count >= 2  # the store, the agent (and the writer, a group)
    assert " JOIN " not in sql and not re.search(rf'SELECT DISTINCT "{table}"', sql), sql
    if connection.vendor == "sqlite":
        plan = _sqlite_plan(sql, params)
        text = "\n".join(detail for _, _, detail in plan)
        parents = {node: parent for node, parent, _ in plan}
        terms = {node for node, _, detail in plan if re.fullmatch(r"CO-ROUTINE term\d+", detail)}

        def in_a_term(node: int) -> bool:
            while node:
                if node in terms:
                    return True
                node = parents.get(node, 0)
            return False

        ranges = [detail for node, _, detail in plan if detail.startswith(f"SEARCH {table} USING") and in_a_term(node)]
        assert len(ranges) == count == len(terms), text  # one index range per term, in the list's order
        assert {r.split(" INDEX ")[1].split()[0] for r in ranges} <= INDEXES[table], text
        assert f"SCAN {table}" not in text and "MULTI-INDEX OR" not in text, text  # never the whole table
        assert not [d for node, _, d in plan if "TEMP B-TREE" in d and in_a_term(node)], text  # no term sorted
        rows = "\n".join(d for _, _, d in _sqlite_plan(by_id, []))
        assert "USING INTEGER PRIMARY KEY" in rows and f"SCAN {table}" not in rows, rows
    else:
        found = _postgres_plan(sql, params)
        nodes, plan = _nodes(found), _shown(found)
        assert {n["Relation Name"] for n in nodes if "Relation Name" in n} == {table}, plan
        # Made unique or sorted: only the terms' first pages together (an Append of them, or a Merge
        # Append that keeps their order: then nothing is sorted at all).
        merged = [n for n in nodes if n["Node Type"] in ("Unique", "Aggregate", "Sort", "Incremental Sort")]
        assert all(any(m["Node Type"] in ("Append", "Merge Append") for m in _nodes(n)) for n in merged), plan
        # Each term: a Limit straight over a scan of its index in the list's order.
        terms = [n for n in nodes[1:] if n["Node Type"] == "Limit"]
        assert len(terms) == count, plan
        for term in terms:
            scan = term["Plans"][0]
            assert scan["Node Type"] in ("Index Scan", "Index Only Scan"), plan
            assert scan["Index Name"] in INDEXES[table], plan
        looked_up = _nodes(_postgres_plan(by_id, []))  # the page's rows: by their ids
        assert f"{table}_pkey" in {n.get("Index Name") for n in looked_up}, looked_up
        assert not [n for n in looked_up if n.get("Relation Name") == table and "Index" not in n["Node Type"]
                    and n["Node Type"] != "Bitmap Heap Scan"], looked_up


LISTS = pytest.mark.parametrize("name", ["conversations", "messages"])
AGENTS = pytest.mark.parametrize("grouped", [False, True], ids=["one store", "one store and a group"])


@LISTS
@AGENTS
def test_an_agents_list_needs_no_join_nor_distinct_and_reads_each_term_from_its_index(
        world: World, name: str, grouped: bool):
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL's plans: the test below")
    _check(world, name, grouped)


@pytest.mark.postgres
@LISTS
@AGENTS
def test_the_same_on_postgresql(world: World, postgres_url: str, name: str, grouped: bool):
    _check(world, name, grouped)


def test_pages_merged_from_the_terms_list_every_visible_row_once_in_order(world: World):
    """Rows of the store alone, of the agent alone (another store's, assigned to them) and of both, some
    sharing a moment: walked down page by page and back up, as the single OR query would list them."""
    from datetime import timedelta

    from django.utils import timezone

    from buzon.messages.conversations import Conversation

    ana, now = world.agents["agent_a"], timezone.now()
    for i, (store, agent) in enumerate([(world.a.store, None), (world.b.store, ana), (world.a.store, ana),
                                        (world.b.store, None), (world.a.store, None), (world.b.store, ana),
                                        (world.a.store, ana), (None, ana), (world.b.store, None)]):
        Conversation.objects.create(store=store, agent=agent, subject=f"#{i}",
                                    last_message_at=now - timedelta(minutes=i // 2))  # pairs share a moment
    user = world.users["agent_a"]
    expected = list(reads.filtered(user).order_by("-last_message_at", "-id").values_list("pk", flat=True))
    assert len(expected) >= 8 and len(roles.terms("messages_app.Conversation", user) or []) == 2
    seen, before, pages = [], "", []
    while True:
        found = reads.page(user, before=before, size=3)
        pages.append(found)
        seen += [row.pk for row in found.rows]
        if found.older is None:
            break
        before = str(found.older)
    assert seen == expected
    back = reads.page(user, after=str(pages[-1].newer), size=3)  # the page above the last one
    assert [row.pk for row in back.rows] == [row.pk for row in pages[-2].rows]


@pytest.mark.parametrize("role", ["admin", "agent_a"])
def test_a_deep_page_starts_its_index_range_at_the_cursor(world: World, role: str):
    """A page from a cursor reads the list's index from the cursor down: the cursor's OR (earlier
    time, or the same time and a lower id) comes with the bound a range starts at. Without it
    SQLite, its values bound as parameters and its statistics gathered, read both sides of the OR
    through the index and sorted every row below the cursor (460 ms at 1,000,000 messages)."""
    for i in range(120):
        Message.objects.create(direction=Direction.INCOMING, account=world.a.account, subject=f"Pedido {i}",
                               customer=world.a.customer, from_address=f"c{i}@example.test")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    user = world.users[role]
    first = reads.page(user, {})
    assert first.older is not None
    executed: list[tuple[str, Any]] = []

    def keep(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        executed.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        reads.page(user, {}, before=str(first.older))
    listed = [(sql, params) for sql, params in executed if '"last_message_at" < ' in sql]  # below the cursor
    assert listed, executed
    for sql, params in listed:  # as the page ran them, values bound
        assert re.search(r'"last_message_at" <= (%s|\?)', sql), sql
        if connection.vendor == "sqlite":
            text = "\n".join(d for _, _, d in _sqlite_plan(sql.replace("?", "%s"), list(params)))
            assert "MULTI-INDEX OR" not in text, text
            if role == "admin":  # one index range in the list's order (an agent's terms are merged)
                assert "TEMP B-TREE" not in text and "USING INDEX conversation_activity" in text, text
