"""Every list that grows pages by keyset: walking the Older links (or the API's ``next``) visits each
row once, in order, and a deep page costs the same queries as the first; nothing counts the table; a
cursor edited by hand is a 400, not a 500 and not someone else's rows."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from buzon.crm.models import Notification
from buzon.mailboxes.models import AuditEntry
from buzon.messages.models import Direction, Message
from tests.security.conftest import World

pytestmark = pytest.mark.django_db


def _walk(client: Client, path: str, pattern: str) -> tuple[list[int], list[int]]:
    """Every id the pages show, following Older; and the number of queries of each page."""
    seen: list[int] = []
    costs: list[int] = []
    url = path
    while url:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, response.content[:300]
        body = response.content.decode()
        seen += [int(v) for v in re.findall(pattern, body)]
        counted = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]
        assert not [q for q in counted if "notification" not in q.lower() or "read_at" not in q], counted
        costs.append(len(captured.captured_queries))
        older = re.search(r'id="older" href="([^"]+)"', body)
        url = path.split("?")[0] + older.group(1).replace("&amp;", "&") if older else ""
    return seen, costs


def _messages(world: World, n: int) -> list[int]:
    for i in range(n):
        Message.objects.create(direction=Direction.INCOMING, account=world.a.account, subject=f"Pregunta {i}",
                               from_address=f"c{i}@example.test", text="x")
    return list(Message.objects.filter(direction=Direction.INCOMING, store=world.a.store)
                .order_by("-created_at", "-id").values_list("pk", flat=True))


def test_the_message_list_walks_by_cursor(world: World):
    expected = _messages(world, 120)
    admin = world.client("admin")
    admin.get("/inbox/")  # warm the session
    seen, costs = _walk(admin, f"/inbox/?store={world.a.store.pk}", r'href="/inbox/(\d+)/"')
    assert seen == expected and len(costs) == 3
    assert costs[0] == costs[1] == costs[2]
    assert admin.get("/inbox/?before=ayer~x").status_code == 400
    # The newer link of a deep page leads back to the rows above it.
    second = admin.get(f"/inbox/?store={world.a.store.pk}&before={_cursor_after(expected[49])}")
    newer = re.search(r'id="newer" href="([^"]+)"', second.content.decode())
    assert newer is not None
    back = admin.get("/inbox/" + newer.group(1).replace("&amp;", "&")).content.decode()
    assert [int(v) for v in re.findall(r'href="/inbox/(\d+)/"', back)] == expected[:50]
    # The other parameters are kept as they were sent, a key with "&" or "=" in it too.
    odd = admin.get(f"/inbox/?store={world.a.store.pk}&a%26b%3D=c%26d").content.decode()
    older = re.search(r'id="older" href="([^"]+)"', odd)
    assert older is not None and "a%26b%3D=c%26d&amp;" in older.group(1)


def _cursor_after(pk: int) -> str:
    from urllib.parse import quote

    message = Message.objects.get(pk=pk)
    return quote(f"{message.created_at.isoformat()}~{message.pk}")


def test_an_agent_walks_only_their_stores_mail(world: World):
    _messages(world, 60)
    bruno = world.client("agent_b")
    seen, _costs = _walk(bruno, "/inbox/", r'href="/inbox/(\d+)/"')
    assert seen and set(Message.objects.filter(pk__in=seen).values_list("store_id", flat=True)) == {world.b.store.pk}


def test_notifications_and_the_audit_log_walk_by_cursor(world: World):
    user = world.users["agent_a"]
    assert isinstance(user, User)
    for i in range(70):
        Notification.objects.create(user=user, kind="test", key=f"k{i}", text=f"Aviso {i}", url=f"/n/{i}/")
    ana = world.client("agent_a")
    seen, _costs = _walk(ana, "/notifications/", r'href="/n/(\d+)/"')
    assert seen == list(range(69, -1, -1))
    for i in range(60):
        AuditEntry.objects.create(action="update", target_type="store", target_id=world.a.store.pk,
                                  target_label=f"Tienda {i}", changes=[])
    admin = world.client("admin")
    body = admin.get("/settings/audit/?type=store").content.decode()
    assert 'id="older"' in body and AuditEntry.objects.order_by("-at", "-id").first().target_label in body


def _api_walk(client: Client, url: str) -> tuple[list[int], list[int]]:
    seen: list[int] = []
    costs: list[int] = []
    while url:
        with CaptureQueriesContext(connection) as captured:
            body: dict[str, Any] = client.get(url).json()
        assert "count" not in body
        assert not [q for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]
        costs.append(len(captured.captured_queries))
        seen += [row["id"] for row in body["results"]]
        url = body["next"] or ""
    return seen, costs


def test_the_api_lists_walk_by_cursor_with_constant_queries(world: World):
    expected = _messages(world, 120)
    admin = world.client("admin")
    admin.get("/api/v1/messages/?limit=1")  # warm: the session
    seen, costs = _api_walk(admin, f"/api/v1/messages/?store={world.a.store.pk}&limit=50")
    assert [pk for pk in seen if pk in set(expected)] == expected
    assert len(set(costs)) == 1, costs
    one = _api_walk(admin, f"/api/v1/messages/?store={world.a.store.pk}&limit=1&direction=in")[1][0]
    assert one == costs[0]
    assert admin.get("/api/v1/messages/?cursor=bm9wZQ").status_code == 404  # DRF: an invalid cursor
    assert len(admin.get("/api/v1/messages/?page_size=5").json()["results"]) == 5
