"""People: creating, editing, inviting and deactivating agents, and agent groups, in the web UI and the
API, as every role. Administrators reach everyone; a supervisor their own stores' agents and groups
(anyone else is a 404); agents and users in no store are refused (403); signed out, sent to sign in."""

from __future__ import annotations

import re

from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from buzon.core import api_tokens
from buzon.core.models import UserPreferences
from buzon.crm import assignment
from buzon.crm.models import Agent, AgentGroup, Customer, Ticket
from buzon.mailboxes.models import AuditEntry
from tests.security.conftest import World

MANAGED_BY_A = ("admin", "supervisor_a")
REFUSED = {"agent_a": 403, "agent_b": 403, "nobody": 403, "supervisor_b": 404}


def _api(world: World, role: str) -> APIClient:
    client = APIClient()
    if world.users[role] is not None:
        client.force_authenticate(world.users[role])
    return client


def _link(html: str) -> str:
    found = re.search(r'id="invitation-link" readonly value="https?://[^/]+(/welcome/[^"]+/)"', html)
    assert found, html[:2000]
    return found.group(1)


def test_the_people_pages_answer_each_role(world: World):
    ana = world.users["agent_a"]
    for role in ("admin", "supervisor_a", "supervisor_b"):
        page = world.client(role).get("/settings/agents/new/")
        assert page.status_code == 200, role
        assert ('name="is_admin"' in page.content.decode()) == (role == "admin"), role
    for role, code in REFUSED.items():
        assert world.client(role).get(f"/settings/agents/people/{ana.pk}/").status_code == code, role
        assert world.client(role).post(f"/settings/agents/people/{ana.pk}/deactivate/").status_code == code, role
    for role in MANAGED_BY_A:
        assert world.client(role).get(f"/settings/agents/people/{ana.pk}/").status_code == 200, role
    assert world.client("anonymous").get("/settings/agents/new/")["Location"].startswith("/login/")
    # A supervisor never reaches an administrator, nor another store's agent.
    for other in ("admin", "agent_b"):
        assert world.client("supervisor_a").get(f"/settings/agents/people/{world.users[other].pk}/").status_code == 404
    assert ana.is_active and User.objects.get(pk=ana.pk).is_active


def test_a_supervisor_creates_an_agent_of_their_store_who_is_invited(world: World):
    client = world.client("supervisor_a")
    page = client.post("/settings/agents/new/", {
        "username": "lucia", "first_name": "Lucía", "email": "lucia@shop.test", "language": "es",
        "stores": [world.a.store.pk], "groups": [world.a.group.pk], "is_admin": "on"})
    assert page.status_code == 200, page.content.decode()[:3000]
    link = _link(page.content.decode())
    lucia = User.objects.get(username="lucia")
    agent = Agent.objects.get(user=lucia)
    assert set(agent.stores.all()) == {world.a.store} and set(agent.groups.all()) == {world.a.group}
    assert not lucia.is_staff  # the administrator flag is not a supervisor's to give
    assert not lucia.has_usable_password() and UserPreferences.objects.get(user=lucia).must_set_password
    entry = AuditEntry.objects.get(target_type="user", target_id=lucia.pk)
    assert entry.actor_name == "sara" and entry.action == "created"
    assert {c["field"] for c in entry.changes} >= {"username", "stores", "groups", "language"}
    # Another store is not among their choices; nothing is created.
    refused = client.post("/settings/agents/new/", {"username": "intrusa", "stores": [world.b.store.pk]})
    assert refused.status_code == 200 and 'data-error-for="stores"' in refused.content.decode()
    assert not User.objects.filter(username="intrusa").exists()
    none = client.post("/settings/agents/new/", {"username": "sin-tienda"})
    assert "Choose at least one of the stores you supervise." in none.content.decode()
    assert link.startswith("/welcome/")


def test_the_invitation_sets_a_password_once_in_the_persons_language(world: World):
    api = _api(world, "admin")
    made = api.post("/api/v1/users/", {"username": "marta", "email": "marta@shop.test", "language": "es",
                                        "stores": [world.a.store.pk]}, format="json")
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["password_pending"] and "/welcome/" in body["invitation_url"]
    link = "/welcome/" + body["invitation_url"].split("/welcome/")[1]
    marta = User.objects.get(username="marta")
    # Until she sets it, no password works, and a token made for her by hand is refused.
    _row, token = api_tokens.create(marta)
    refused = APIClient().get("/api/v1/customers/", HTTP_AUTHORIZATION=f"Token {token}")
    assert refused.status_code == 401 and "invitation" in refused.json()["detail"]
    forced = Client()
    forced.force_login(marta)
    assert forced.get("/inbox/")["Location"].startswith("/login/")
    assert forced.get("/api/v1/customers/").status_code in (401, 403)
    forced.force_login(marta)
    assert forced.get(link).status_code == 200  # the one page that does answer: where she sets it

    browser = Client()
    page = browser.get(link)
    assert page.status_code == 200 and "Elija su contraseña" in page.content.decode()  # her language
    short = browser.post(link, {"new_password1": "abc", "new_password2": "abc"})
    assert short.status_code == 200 and 'data-error-for="new_password2"' in short.content.decode()
    done = browser.post(link, {"new_password1": "Marta-clave-2026", "new_password2": "Marta-clave-2026"})
    assert done.status_code == 302 and done["Location"] == "/"
    assert browser.get("/inbox/").status_code == 200
    assert browser.cookies["django_language"].value == "es"
    assert not UserPreferences.objects.get(user__username="marta").must_set_password
    again = Client().get(link)
    assert again.status_code == 404 and "no es válido" not in again.content.decode()  # the visitor's language
    assert "not valid or was already used" in again.content.decode()
    assert Client().login(username="marta", password="Marta-clave-2026")  # noqa: S106
    assert Client().get("/welcome/forged-token/").status_code == 404


def test_a_new_invitation_replaces_the_old_link_and_an_expired_one_says_so(world: World, settings):
    api = _api(world, "supervisor_a")
    made = api.post("/api/v1/users/", {"username": "pablo", "stores": [world.a.store.pk]}, format="json")
    assert made.status_code == 201, made.content
    first = "/welcome/" + made.json()["invitation_url"].split("/welcome/")[1]
    pablo = made.json()["id"]
    again = api.post(f"/api/v1/users/{pablo}/invitation/")
    assert again.status_code == 200
    second = "/welcome/" + again.json()["invitation_url"].split("/welcome/")[1]
    assert Client().get(first).status_code == 404 and Client().get(second).status_code == 200
    assert _api(world, "supervisor_b").post(f"/api/v1/users/{pablo}/invitation/").status_code == 404
    settings.INVITATION_DAYS = 0
    expired = Client().get(second)
    assert expired.status_code == 404 and "expired" in expired.content.decode()


def test_the_users_api_as_every_role(world: World):
    ana = world.users["agent_a"]
    listed = {row["username"] for row in _api(world, "supervisor_a").get("/api/v1/users/").json()["results"]}
    assert listed == {"ana", "sara"}
    admin_list = {row["username"] for row in _api(world, "admin").get("/api/v1/users/").json()["results"]}
    assert {"ana", "bruno", "root", "nadie"} <= admin_list
    for role, code in REFUSED.items():
        expected = 404 if role == "supervisor_b" else 403
        assert _api(world, role).get(f"/api/v1/users/{ana.pk}/").status_code == expected, role
        assert _api(world, role).patch(f"/api/v1/users/{ana.pk}/", {"first_name": "X"},
                                       format="json").status_code == code, role
    assert _api(world, "anonymous").get("/api/v1/users/").status_code in (401, 403)
    sara = _api(world, "supervisor_a")
    assert sara.get(f"/api/v1/users/{world.users['admin'].pk}/").status_code == 404
    wrong_store = sara.post("/api/v1/users/", {"username": "x1", "stores": [world.b.store.pk]}, format="json")
    assert wrong_store.status_code == 400 and "stores" in wrong_store.json()
    made_admin = sara.post("/api/v1/users/", {"username": "x2", "stores": [world.a.store.pk], "is_admin": True},
                           format="json")
    assert made_admin.status_code == 400 and "is_admin" in made_admin.json()
    assert not User.objects.filter(username__in=["x1", "x2"]).exists()
    changed = sara.patch(f"/api/v1/users/{ana.pk}/", {"first_name": "Ana", "is_supervisor": True}, format="json")
    assert changed.status_code == 200 and changed.json()["is_supervisor"] and changed.json()["first_name"] == "Ana"
    assert sara.delete(f"/api/v1/users/{ana.pk}/").status_code == 405  # deactivate instead: history stays
    assert _api(world, "admin").post(f"/api/v1/users/{world.users['admin'].pk}/deactivate/").status_code == 400


def test_deactivating_signs_out_revokes_tokens_and_stops_assignment(world: World):
    ana, ana_agent = world.users["agent_a"], world.agents["agent_a"]
    ana_agent.groups.add(world.a.group)
    ana_agent.status, ana_agent.online = Agent.Status.FREE, True
    ana_agent.save()
    signed_in = Client()
    assert signed_in.login(username="ana", password="ana-pw-123")  # noqa: S106
    signed_in.get("/inbox/")
    _row, token = api_tokens.create(ana)
    assert APIClient().get("/api/v1/customers/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    customer = Customer.objects.create(name="Cliente de Ana", store=world.a.store, agent=ana_agent)
    ticket = Ticket.objects.create(subject="Abierto", customer=customer, agent=ana_agent, store=world.a.store)
    assert assignment.choose_agent(world.a.group, world.a.store.pk) == ana_agent

    for role in ("agent_a", "agent_b", "nobody"):
        assert world.client(role).post(f"/settings/agents/people/{ana.pk}/deactivate/").status_code == 403
    assert world.client("supervisor_b").post(f"/settings/agents/people/{ana.pk}/deactivate/").status_code == 404
    done = world.client("supervisor_a").post(f"/settings/agents/people/{ana.pk}/deactivate/")
    assert done.status_code == 302
    assert not User.objects.get(pk=ana.pk).is_active
    assert signed_in.get("/inbox/")["Location"].startswith("/login/")  # signed out everywhere
    assert APIClient().get("/api/v1/customers/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 401
    assert not Client().login(username="ana", password="ana-pw-123")  # noqa: S106
    chosen = assignment.choose_agent(world.a.group, world.a.store.pk)
    assert chosen != ana_agent
    customer.refresh_from_db()
    ticket.refresh_from_db()
    assert customer.agent is None and ticket.agent is None
    entry = AuditEntry.objects.filter(target_type="user", target_id=ana.pk).latest("id")
    assert entry.actor_name == "sara" and entry.changes == [{"field": "is_active", "old": True, "new": False}]
    # History stays: the user row and what she was given; an administrator can bring her back.
    assert _api(world, "admin").post(f"/api/v1/users/{ana.pk}/reactivate/").json()["is_active"]


def test_a_supervisor_manages_their_stores_groups(world: World):
    sara = world.client("supervisor_a")
    ana = world.agents["agent_a"]
    made = sara.post("/settings/agent-groups/new/", {"name": "Ventas A", "store": world.a.store.pk,
                                                     "agents": [ana.pk]})
    assert made.status_code == 302, made.content.decode()[:2000]
    group = AgentGroup.objects.get(name="Ventas A")
    assert list(group.agents.all()) == [ana]
    renamed = sara.post(f"/settings/agent-groups/{group.pk}/", {"name": "Ventas Norte", "store": world.a.store.pk})
    assert renamed.status_code == 302 and AgentGroup.objects.get(pk=group.pk).name == "Ventas Norte"
    other_store = sara.post("/settings/agent-groups/new/", {"name": "Ajeno", "store": world.b.store.pk})
    assert other_store.status_code == 200 and not AgentGroup.objects.filter(name="Ajeno").exists()
    # The group an email account uses is kept, with the reason; an unused one goes.
    used = sara.get(f"/settings/agent-groups/{world.a.group.pk}/delete/").content.decode()
    assert world.a.account.email_address in used and 'id="confirm-delete"' not in used
    sara.post(f"/settings/agent-groups/{world.a.group.pk}/delete/")
    assert AgentGroup.objects.filter(pk=world.a.group.pk).exists()
    api = _api(world, "supervisor_a").delete(f"/api/v1/agent-groups/{world.a.group.pk}/")
    assert api.status_code == 400 and world.a.account.email_address in str(api.json())
    assert sara.post(f"/settings/agent-groups/{group.pk}/delete/").status_code == 302
    assert not AgentGroup.objects.filter(pk=group.pk).exists()
    for role, code in REFUSED.items():
        assert world.client(role).get(f"/settings/agent-groups/{world.a.group.pk}/").status_code == code, role
        assert _api(world, role).delete(f"/api/v1/agent-groups/{world.a.group.pk}/").status_code in (403, 404)
    actions = list(AuditEntry.objects.filter(target_type="group", target_id=group.pk).order_by("id")
                   .values_list("action", "actor_name"))
    assert actions == [("created", "sara"), ("changed", "sara"), ("deleted", "sara")]


def test_supervisors_changes_to_agents_are_audited(world: World):
    ana = world.agents["agent_a"]
    world.client("supervisor_a").post(f"/settings/agents/{ana.pk}/", {"status": "lunch",
                                                                       "groups": [world.a.group.pk]})
    entries = AuditEntry.objects.filter(target_type="user", target_id=ana.user_id).order_by("id")
    changes = [change for entry in entries for change in entry.changes]
    assert {"field": "status", "old": "offline", "new": "lunch"} in changes
    assert {"field": "groups", "old": [], "new": ["Equipo A"]} in changes
    assert {entry.actor_name for entry in entries} == {"sara"}
    # An agent's own status is theirs, not a setting: not logged.
    world.client("agent_a").post("/agent/status/", {"status": "free"})
    assert Agent.objects.get(pk=ana.pk).status == "free"
    assert AuditEntry.objects.filter(target_type="user", target_id=ana.user_id).count() == entries.count()
    log = world.client("admin").get("/settings/audit/?type=user").content.decode()
    assert "ana" in log and "lunch" in log


def test_editing_someone_who_is_not_an_agent_keeps_them_so(world: World):
    nadie = world.users["nobody"]
    admin = world.client("admin")
    listed = admin.get("/settings/agents/").content.decode()
    assert f'data-person="{nadie.username}"' in listed
    saved = admin.post(f"/settings/agents/people/{nadie.pk}/", {"username": "nadie", "first_name": "Nadia",
                                                                "language": "es"})
    assert saved.status_code == 302
    assert User.objects.get(pk=nadie.pk).first_name == "Nadia" and not Agent.objects.filter(user=nadie).exists()
    assert UserPreferences.objects.get(user=nadie).language == "es"
    admin.post(f"/settings/agents/people/{nadie.pk}/", {"username": "nadie", "first_name": "Nadia"})
    assert UserPreferences.objects.get(user=nadie).language == ""  # back to the site's language
    given = admin.post(f"/settings/agents/people/{nadie.pk}/", {"username": "nadie", "stores": [world.b.store.pk]})
    assert given.status_code == 302 and list(Agent.objects.get(user=nadie).stores.all()) == [world.b.store]


def test_a_new_sites_home_page_leads_to_creating_agents(db):
    root = User.objects.create_user("root", password="root-pw-123", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)
    home = client.get("/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    step = home.split('id="step-agents"')[1].split("</li>")[0]
    assert 'href="/settings/agents/new/"' in step and "Cree sus agentes" in step


def test_the_users_list_costs_no_query_per_person(world: World):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    api = _api(world, "admin")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get("/api/v1/users/").status_code == 200
        return len(captured)

    few = queries()
    for index in range(30):
        agent = Agent.objects.create(user=User.objects.create_user(f"agente{index:02d}"))
        agent.stores.add(world.a.store)
        agent.groups.add(world.a.group)
    assert queries() == few
    rows = api.get("/api/v1/users/?limit=200").json()["results"]
    assert {"username": "agente00", "stores": [world.a.store.pk], "groups": [world.a.group.pk]}.items() <= next(
        row for row in rows if row["username"] == "agente00").items()
