"""Canned responses: who sees, changes and shares which, on the pages and the API, for every role
(another agent's own response or another store's shared one is a 404 like a missing one, a shared
one seen by an agent is theirs to read only, and nothing changes either way); keyset pages with a
constant number of queries; Spanish pages."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from buzon.workspace.models import CannedResponse
from tests.security.conftest import ROLES, World

pytestmark = pytest.mark.django_db


@pytest.fixture
def texts(world: World) -> dict[str, CannedResponse]:
    u = world.users
    return {
        "ana_own": CannedResponse.objects.create(owner=u["agent_a"], shortcut="hola", title="Saludo",
                                                 text="Hola, soy Ana."),
        "a_shared": CannedResponse.objects.create(owner=u["supervisor_a"], store=world.a.store, shortcut="gracias",
                                                  title="Gracias A", text="Gracias por escribir a la tienda A."),
        "b_shared": CannedResponse.objects.create(owner=u["supervisor_b"], store=world.b.store, shortcut="gracias",
                                                  title="Gracias B", text="Gracias de la tienda B."),
        "bruno_own": CannedResponse.objects.create(owner=u["agent_b"], shortcut="hola", title="Saludo B",
                                                   text="Hola, soy Bruno."),
    }


SEES = {  # role -> the responses it sees
    "admin": {"a_shared", "b_shared"}, "supervisor_a": {"a_shared"}, "agent_a": {"ana_own", "a_shared"},
    "agent_b": {"bruno_own", "b_shared"}, "supervisor_b": {"b_shared"}, "nobody": set(),
}
CHANGES = {  # role -> the responses it may change
    "admin": {"a_shared", "b_shared"}, "supervisor_a": {"a_shared"}, "agent_a": {"ana_own"},
    "agent_b": {"bruno_own"}, "supervisor_b": {"b_shared"}, "nobody": set(),
}


def test_every_role_lists_exactly_what_it_may_see(world: World, texts):
    for role in ROLES:
        client = world.client(role)
        if role == "anonymous":
            assert client.get("/canned-responses/").status_code == 302
            assert client.get("/api/v1/canned-responses/").status_code in (401, 403)
            continue
        api = client.get("/api/v1/canned-responses/")
        assert api.status_code == 200
        assert {row["id"] for row in api.json()["results"]} == {texts[k].pk for k in SEES[role]}, role
        page = client.get("/canned-responses/").content.decode()
        shown = {k for k, row in texts.items() if f'data-canned="{row.pk}"' in page}
        assert shown == SEES[role], role
        for key, row in texts.items():
            detail = client.get(f"/api/v1/canned-responses/{row.pk}/")
            assert detail.status_code == (200 if key in SEES[role] else 404), (role, key)
            if key in SEES[role]:
                assert detail.json()["editable"] == (key in CHANGES[role]), (role, key)


def test_changing_and_deleting_follow_the_rules_with_no_partial_effect(world: World, texts):
    for role in ROLES:
        client = world.client(role)
        for key, row in texts.items():
            before = CannedResponse.objects.get(pk=row.pk)
            patch = client.patch(f"/api/v1/canned-responses/{row.pk}/", {"text": f"cambiado por {role}"},
                                 content_type="application/json")
            edit = client.post(f"/canned-responses/{row.pk}/edit/", {
                "shortcut": before.shortcut, "title": before.title, "text": f"web {role}",
                "store": str(before.store_id or "")})
            if role == "anonymous":
                assert patch.status_code in (401, 403) and edit.status_code == 302
                assert edit.headers["Location"].startswith("/login/")
            elif key in CHANGES[role]:
                assert patch.status_code == 200 and edit.status_code == 302, (role, key, edit.content[:300])
            else:
                expected = 403 if key in SEES[role] else 404
                assert patch.status_code == expected and edit.status_code == expected, (role, key)
                assert client.get(f"/canned-responses/{row.pk}/edit/").status_code == expected
                after = CannedResponse.objects.get(pk=row.pk)
                assert (after.text, after.store_id) == (before.text, before.store_id), (role, key)
    for key, row in texts.items():  # the last change allowed is the one kept
        row.refresh_from_db()
        last = [r for r in ROLES if key in CHANGES.get(r, set())][-1]
        assert row.text == f"web {last}", key
    # Deleting: an outsider's attempt (404, or 403 for a visible shared one) leaves it; the owner's removes it.
    assert world.client("agent_b").delete(f"/api/v1/canned-responses/{texts['ana_own'].pk}/").status_code == 404
    assert world.client("admin").post(f"/canned-responses/{texts['ana_own'].pk}/delete/").status_code == 404
    assert world.client("agent_a").post(f"/canned-responses/{texts['a_shared'].pk}/delete/").status_code == 403
    assert world.client("supervisor_b").delete(f"/api/v1/canned-responses/{texts['a_shared'].pk}/").status_code == 404
    assert CannedResponse.objects.filter(pk__in=[texts["ana_own"].pk, texts["a_shared"].pk]).count() == 2
    assert world.client("agent_a").delete(f"/api/v1/canned-responses/{texts['ana_own'].pk}/").status_code == 204
    assert world.client("supervisor_a").post(f"/canned-responses/{texts['a_shared'].pk}/delete/").status_code == 302
    assert not CannedResponse.objects.filter(pk__in=[texts["ana_own"].pk, texts["a_shared"].pk]).exists()


def test_creating_and_sharing(world: World, texts):
    a, b = world.a.store.pk, world.b.store.pk
    for role in ROLES:
        client = world.client(role)
        own = client.post("/api/v1/canned-responses/", {"shortcut": f"/Mio-{role}"[:40], "title": "Mío",
                                                         "text": "Texto"}, content_type="application/json")
        share_a = client.post("/api/v1/canned-responses/", {"shortcut": f"a-{role}", "title": "A", "text": "Para A",
                                                             "store": a}, content_type="application/json")
        share_b = client.post("/canned-responses/new/", {"shortcut": f"b-{role}", "title": "B", "text": "Para B",
                                                         "store": str(b)})
        if role == "anonymous":
            assert own.status_code in (401, 403) and share_b.status_code == 302
            continue
        assert own.status_code == 201 and own.json()["shortcut"] == f"mio-{role}" and own.json()["store"] is None
        assert share_a.status_code == (201 if role in ("admin", "supervisor_a") else 400), role
        if share_a.status_code == 400:
            assert "store" in share_a.json()
        assert (share_b.status_code == 302) == (role in ("admin", "supervisor_b")), role
    shared = set(CannedResponse.objects.exclude(store=None).values_list("shortcut", "store_id"))
    assert shared == {("gracias", a), ("gracias", b), ("a-admin", a), ("a-supervisor_a", a),
                      ("b-admin", b), ("b-supervisor_b", b)}
    client = world.client("agent_a")
    twice = client.post("/api/v1/canned-responses/", {"shortcut": "hola", "title": "Otra", "text": "x"},
                        content_type="application/json")
    assert twice.status_code == 400 and "shortcut" in twice.json()
    bad = client.post("/api/v1/canned-responses/", {"shortcut": "con espacio", "title": "x", "text": "x"},
                      content_type="application/json")
    assert bad.status_code == 400 and "shortcut" in bad.json()
    # An agent of store A cannot move their own response into store B's sight.
    moved = client.patch(f"/api/v1/canned-responses/{texts['ana_own'].pk}/", {"store": b},
                         content_type="application/json")
    assert moved.status_code == 400 and CannedResponse.objects.get(pk=texts["ana_own"].pk).store_id is None


def test_the_reply_box_asks_for_the_conversations_store(world: World, texts):
    conversation = world.a.message.conversation
    page = world.client("admin").get(f"/conversations/{conversation.pk}/").content.decode()
    assert f'data-bz-canned="/api/v1/canned-responses/?store={world.a.store.pk}"' in page
    rows = world.client("admin").get(f"/api/v1/canned-responses/?store={world.a.store.pk}").json()["results"]
    assert {r["id"] for r in rows} == {texts["a_shared"].pk}  # the admin's own (none) and store A's
    assert world.client("admin").get("/api/v1/canned-responses/?store=x").status_code == 400


def test_pages_by_cursor_with_a_constant_number_of_queries(world: World, django_assert_max_num_queries):
    ana = world.users["agent_a"]
    CannedResponse.objects.bulk_create([CannedResponse(owner=ana, shortcut=f"r{n:03d}", title=f"T{n}", text="x")
                                        for n in range(3)])
    client = world.client("agent_a")
    with CaptureQueriesContext(connection) as few_api:
        client.get("/api/v1/canned-responses/")
    with CaptureQueriesContext(connection) as few_web:
        client.get("/canned-responses/")
    CannedResponse.objects.bulk_create([CannedResponse(owner=ana, shortcut=f"s{n:03d}", title=f"T{n}", text="x",
                                                       store=world.a.store if n % 2 else None) for n in range(150)])
    with django_assert_max_num_queries(len(few_api.captured_queries)):
        first = client.get("/api/v1/canned-responses/").json()
    with django_assert_max_num_queries(len(few_web.captured_queries)):
        assert client.get("/canned-responses/").status_code == 200
    assert len(first["results"]) == 100 and first["next"]
    second = client.get(f"/api/v1/canned-responses/?after={first['next']}").json()
    seen = [r["shortcut"] for r in first["results"] + second["results"]]
    assert len(seen) == 153 and seen == sorted(seen) and second["next"] is None
    assert client.get("/api/v1/canned-responses/?after=nonsense").status_code == 400
    web = client.get(f"/canned-responses/?after={first['next']}").content.decode()
    assert "s149" in web and "r000" not in web


def test_spanish_pages(world: World, texts):
    client = world.client("agent_a")
    client.cookies["django_language"] = "es"
    body = client.get("/canned-responses/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Respuestas predefinidas" in body and "Nueva respuesta predefinida" in body and "Solo yo" in body
    form = client.get("/canned-responses/new/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Atajo" in form and "Compartida con" not in form  # an agent shares with no store
    supervisor = world.client("supervisor_a")
    supervisor.cookies["django_language"] = "es"
    assert "Compartida con" in supervisor.get("/canned-responses/new/").content.decode()
