"""A supervisor manages their store's agents (status, agent groups) in the UI and the API, never
another store's agents or groups, an administrator, nor an agent's user or stores; tried as every role."""

from __future__ import annotations

import re

from rest_framework.test import APIClient

from buzon.crm.models import Agent, AgentGroup
from tests.security.conftest import World


def _api(world: World, role: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(world.users[role])
    return client


def _fresh(agent: Agent) -> Agent:
    return Agent.objects.prefetch_related("groups").get(pk=agent.pk)


def test_the_agents_page_lists_the_supervisors_store_only(world: World):
    page = world.client("supervisor_a").get("/settings/agents/")
    html = page.content.decode()
    assert page.status_code == 200 and 'data-agent="ana"' in html and 'data-agent="bruno"' not in html
    assert "Equipo A" in html and "Equipo B" not in html
    admin = world.client("admin").get("/settings/agents/").content.decode()
    assert 'data-agent="ana"' in admin and 'data-agent="bruno"' in admin and "Equipo B" in admin
    for role in ("agent_a", "agent_b", "nobody"):
        assert world.client(role).get("/settings/agents/").status_code == 403, role
        assert 'href="/settings/agents/"' not in world.client(role).get("/").content.decode(), role
    assert 'href="/settings/agents/"' in world.client("supervisor_a").get("/").content.decode()
    other = world.client("supervisor_b").get("/settings/agents/").content.decode()
    assert 'data-agent="bruno"' in other and 'data-agent="sergio"' in other and 'data-agent="ana"' not in other


def test_a_supervisor_sets_status_and_groups_in_the_ui_but_not_for_other_stores(world: World):
    ana, bruno = world.agents["agent_a"], world.agents["agent_b"]
    client = world.client("supervisor_a")
    done = client.post(f"/settings/agents/{ana.pk}/", {"status": "lunch", "groups": [world.a.group.pk]})
    assert done.status_code == 302
    assert _fresh(ana).status == "lunch" and set(_fresh(ana).groups.all()) == {world.a.group}
    # Another store's group posted by hand is not theirs to give: ignored.
    client.post(f"/settings/agents/{ana.pk}/", {"status": "free", "groups": [world.a.group.pk, world.b.group.pk]})
    assert set(_fresh(ana).groups.all()) == {world.a.group}
    client.post(f"/settings/agents/{ana.pk}/", {"status": "free"})  # unticked: leaves the group
    assert not _fresh(ana).groups.exists() and _fresh(ana).status == "free"
    # A group outside their stores that ana is in stays as it was.
    ana.groups.add(world.b.group)
    client.post(f"/settings/agents/{ana.pk}/", {"status": "free"})
    assert set(_fresh(ana).groups.all()) == {world.b.group}
    assert client.post(f"/settings/agents/{bruno.pk}/", {"status": "lunch"}).status_code == 404
    assert _fresh(bruno).status != "lunch"
    for role in ("agent_a", "agent_b", "nobody"):
        assert world.client(role).post(f"/settings/agents/{ana.pk}/", {"status": "busy"}).status_code == 403
    assert world.client("supervisor_b").post(f"/settings/agents/{ana.pk}/", {"status": "busy"}).status_code == 404
    assert _fresh(ana).status == "free"


def test_an_administrator_working_in_the_store_is_not_the_supervisors_to_manage(world: World):
    admin_agent = Agent.objects.create(user=world.users["admin"])
    admin_agent.stores.add(world.a.store)
    client = world.client("supervisor_a")
    assert f'id="agent-{admin_agent.pk}"' not in client.get("/settings/agents/").content.decode()
    assert client.post(f"/settings/agents/{admin_agent.pk}/", {"status": "lunch"}).status_code == 404
    assert _api(world, "supervisor_a").patch(f"/api/v1/agents/{admin_agent.pk}/", {"status": "lunch"},
                                             format="json").status_code == 403
    assert _fresh(admin_agent).status == "offline"


def test_the_api_lets_a_supervisor_change_their_stores_agents_only(world: World):
    ana, bruno = world.agents["agent_a"], world.agents["agent_b"]
    api = _api(world, "supervisor_a")
    listed = {row["username"] for row in api.get("/api/v1/agents/?limit=100").json()["results"]}
    assert listed == {"ana", "sara"}
    ok = api.patch(f"/api/v1/agents/{ana.pk}/", {"status": "busy", "groups": [world.a.group.pk]}, format="json")
    assert ok.status_code == 200, ok.content
    assert ok.json()["status"] == "busy" and ok.json()["groups"] == [world.a.group.pk]
    # Another store's group is answered like one that does not exist (400, not a refusal naming it).
    assert api.patch(f"/api/v1/agents/{ana.pk}/", {"groups": [world.b.group.pk]}, format="json").status_code == 400
    # Stores are the administrators' to give (store B is not even a valid choice for them: 400).
    assert api.patch(f"/api/v1/agents/{ana.pk}/", {"stores": [world.b.store.pk]},
                     format="json").status_code in (400, 403)
    assert api.patch(f"/api/v1/agents/{ana.pk}/", {"stores": []}, format="json").status_code == 403
    assert api.patch(f"/api/v1/agents/{ana.pk}/", {"user": world.users["nobody"].pk},
                     format="json").status_code == 403
    assert api.patch(f"/api/v1/agents/{bruno.pk}/", {"status": "busy"}, format="json").status_code == 404
    assert api.post("/api/v1/agents/", {"user": world.users["nobody"].pk}, format="json").status_code == 403
    assert api.delete(f"/api/v1/agents/{ana.pk}/").status_code == 403
    assert set(_fresh(ana).groups.all()) == {world.a.group} and list(_fresh(ana).stores.all()) == [world.a.store]

    group = api.patch(f"/api/v1/agent-groups/{world.a.group.pk}/", {"agents": []}, format="json")
    assert group.status_code == 200 and not _fresh(ana).groups.exists()
    assert api.patch(f"/api/v1/agent-groups/{world.a.group.pk}/", {"agents": [ana.pk]},
                     format="json").status_code == 200
    assert api.patch(f"/api/v1/agent-groups/{world.a.group.pk}/", {"agents": [ana.pk, bruno.pk]},
                     format="json").status_code in (400, 403)  # bruno works in store B
    # Their stores' groups are theirs to rename (buzon.crm.agent_groups), never to move to another store.
    assert api.patch(f"/api/v1/agent-groups/{world.a.group.pk}/", {"name": "Otro"}, format="json").status_code == 200
    assert api.patch(f"/api/v1/agent-groups/{world.a.group.pk}/", {"name": "Equipo A"},
                     format="json").status_code == 200
    assert api.patch(f"/api/v1/agent-groups/{world.a.group.pk}/", {"store": world.b.store.pk},
                     format="json").status_code == 400
    assert api.patch(f"/api/v1/agent-groups/{world.b.group.pk}/", {"agents": [ana.pk]},
                     format="json").status_code == 404
    assert api.post("/api/v1/agent-groups/", {"name": "Nuevo", "store": world.b.store.pk},
                    format="json").status_code == 400
    assert api.post("/api/v1/agent-groups/", {"name": "Nuevo"}, format="json").status_code == 400
    assert not AgentGroup.objects.filter(name="Nuevo").exists()
    assert set(AgentGroup.objects.get(pk=world.a.group.pk).agents.all()) == {ana}

    for role in ("agent_a", "agent_b", "supervisor_b", "nobody"):
        other = _api(world, role)
        assert other.patch(f"/api/v1/agents/{ana.pk}/", {"status": "free"}, format="json").status_code in (403, 404)
        assert other.patch(f"/api/v1/agent-groups/{world.a.group.pk}/", {"agents": []},
                           format="json").status_code in (403, 404)
    admin = _api(world, "admin")
    # Not even an administrator puts Bruno (store B) into store A's group: it would give him nothing.
    assert admin.patch(f"/api/v1/agents/{bruno.pk}/", {"groups": [world.a.group.pk, world.b.group.pk]},
                       format="json").status_code == 400
    assert admin.patch(f"/api/v1/agents/{bruno.pk}/", {"groups": [world.b.group.pk]},
                       format="json").status_code == 200


def test_the_agents_page_pages_and_costs_no_query_per_agent(world: World):
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = world.client("supervisor_a")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/settings/agents/").status_code == 200
        return len(captured)

    queries()  # the first request of a session marks it seen (buzon.crm.presence): one write, once a minute
    few = queries()
    for index in range(60):
        agent = Agent.objects.create(user=User.objects.create_user(f"agente{index:02d}"))
        agent.stores.add(world.a.store)
        agent.groups.add(world.a.group)
    assert queries() == few
    first = client.get("/settings/agents/").content.decode()
    older = re.search(r'id="older" href="([^"]+)"', first)
    assert older is not None  # "Next": a keyset page by username
    second = client.get("/settings/agents/" + older.group(1).replace("&amp;", "&")).content.decode()
    assert first.count('data-agent="') == 50 and second.count('data-agent="') == 12  # 62 in store A
    names = re.findall(r'data-agent="([^"]+)"', first + second)
    assert names == sorted(names) and len(set(names)) == 62
