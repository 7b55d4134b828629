"""Agent groups never open another store's wall.

An agent of store B put in store A's agent group (however it happened: the Django admin, a group
moved into store A, data from before the rule) sees none of store A's mail, customers or tickets:
a group reaches only store-less rows (buzon.crm.roles). And the places that manage groups and
agents (the Agents page, the agent-group and agent endpoints) refuse putting an agent into a group
of a store they do not work in, in the reader's language.
"""

from __future__ import annotations

from rest_framework.test import APIClient

from buzon.crm.models import AgentGroup
from tests.security.conftest import World


def _api(world: World, role: str, language: str = "en") -> APIClient:
    client = APIClient(HTTP_ACCEPT_LANGUAGE=language)
    client.force_authenticate(world.users[role])
    return client


def test_store_b_agent_in_store_a_group_sees_nothing_of_store_a(world: World):
    world.agents["agent_b"].groups.add(world.a.group)  # store A's group, which A's account uses
    assert world.a.account.agent_group_id == world.a.group.pk
    api = _api(world, "agent_b")
    for url in (f"/api/v1/messages/{world.a.message.pk}/", f"/api/v1/messages/{world.a.message.pk}/raw/",
                f"/api/v1/messages/{world.a.sent.pk}/", f"/api/v1/customers/{world.a.customer.pk}/",
                f"/api/v1/tickets/{world.a.ticket.pk}/", f"/api/v1/contacts/{world.a.contact.pk}/",
                f"/api/v1/email-accounts/{world.a.account.pk}/", f"/api/v1/agent-groups/{world.a.group.pk}/"):
        assert api.get(url).status_code == 404, url
    for url, row in (("/api/v1/messages/", world.a.message), ("/api/v1/customers/", world.a.customer),
                     ("/api/v1/tickets/", world.a.ticket)):
        body = api.get(url + "?limit=1000").json()
        ids = {r["id"] for r in (body["results"] if isinstance(body, dict) else body)}
        assert row.pk not in ids and ids, url  # store B's own rows are still there
    client = world.client("agent_b")
    for page in ("/inbox/", "/inbox/?q=Fotos", "/customers/", "/tickets/"):
        html = client.get(page).content.decode()
        assert "[A]" not in html and "cliente-a@example.test" not in html, page
    assert "[B] Fotos" in client.get("/inbox/?q=Fotos").content.decode()
    assert client.get(f"/inbox/{world.a.message.pk}/").status_code == 404
    # Store A's own agent still sees it all.
    assert _api(world, "agent_a").get(f"/api/v1/messages/{world.a.message.pk}/").status_code == 200


def test_a_store_less_group_still_brings_its_store_less_mail(world: World):
    """The rule's purpose: a store-less account's group reaches that account's mail (documented in
    buzon.crm.roles); tests/security/test_visibility.py checks it for every page."""
    from tests.security.test_visibility import _storeless

    group = AgentGroup.objects.create(name="Equipo sin tienda")
    world.agents["agent_b"].groups.add(group)
    grouped = _storeless(world, group, "hola@grupo.test", "G")
    api = _api(world, "agent_b")
    assert api.get(f"/api/v1/messages/{grouped['message'].pk}/").status_code == 200
    assert api.get(f"/api/v1/customers/{grouped['customer'].pk}/").status_code == 200
    assert api.get(f"/api/v1/tickets/{grouped['ticket'].pk}/").status_code == 200
    assert _api(world, "agent_a").get(f"/api/v1/messages/{grouped['message'].pk}/").status_code == 404


def test_the_api_refuses_an_agent_into_another_stores_group(world: World):
    agent_b = world.agents["agent_b"]
    for language, text in (("en", "Equipo A is a group of Tienda A, where this person does not work."),
                           ("es", "Equipo A es un grupo de Tienda A, donde esta persona no trabaja.")):
        admin = _api(world, "admin", language)
        answer = admin.patch(f"/api/v1/agents/{agent_b.pk}/", {"groups": [world.a.group.pk]}, format="json")
        assert answer.status_code == 400 and answer.json() == {"groups": [text]}, answer.content
        # Through the group's members too.
        answer = admin.patch(f"/api/v1/agent-groups/{world.a.group.pk}/", {"agents": [agent_b.pk]}, format="json")
        assert answer.status_code == 400 and "Bruno" not in answer.content.decode(), answer.content
        assert answer.json()["agents"], answer.content
    created = _api(world, "admin").post("/api/v1/agents/", {"user": world.users["nobody"].pk,  # type: ignore[union-attr]
                                                             "stores": [world.b.store.pk],
                                                             "groups": [world.a.group.pk]}, format="json")
    assert created.status_code == 400 and "groups" in created.json(), created.content
    assert not agent_b.groups.exists()
    # A group of no store with B's agent in it cannot be moved into store A.
    shared = AgentGroup.objects.create(name="Compartido")
    agent_b.groups.add(shared)
    moved = _api(world, "admin").patch(f"/api/v1/agent-groups/{shared.pk}/", {"store": world.a.store.pk},
                                       format="json")
    assert moved.status_code == 400 and "agents" in moved.json(), moved.content
    shared.refresh_from_db()
    assert shared.store_id is None


def test_the_agents_page_refuses_an_agent_into_another_stores_group(world: World):
    agent_b = world.agents["agent_b"]
    client = world.client("admin")
    listed = client.get("/settings/agents/").content.decode()
    assert f'id="agent-{agent_b.pk}"' in listed or f"agent-{agent_b.pk}" in listed
    answer = client.post(f"/settings/agents/{agent_b.pk}/", {"status": agent_b.status,
                                                             "groups": [world.a.group.pk]},
                         HTTP_ACCEPT_LANGUAGE="es", follow=True)
    assert "Equipo A es un grupo de Tienda A, donde esta persona no trabaja." in answer.content.decode()
    assert not agent_b.groups.exists()
    # Their own store's group is fine.
    assert client.post(f"/settings/agents/{agent_b.pk}/", {"status": agent_b.status,
                                                           "groups": [world.b.group.pk]}).status_code == 302
    assert list(agent_b.groups.all()) == [world.b.group]
