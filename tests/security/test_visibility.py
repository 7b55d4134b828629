"""What each role sees in lists, search and downloads: store A's rows never reach store B's agent."""

from __future__ import annotations

import pytest
from django.apps import apps
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from buzon.crm import roles
from tests.security.conftest import World

LISTS = {
    "/api/v1/messages/": lambda w, s: [s.message.pk, s.sent.pk],
    "/api/v1/customers/": lambda w, s: [s.customer.pk],
    "/api/v1/contacts/": lambda w, s: [s.contact.pk],
    "/api/v1/tickets/": lambda w, s: [s.ticket.pk],
    "/api/v1/job-applicants/": lambda w, s: [s.applicant.pk],
    "/api/v1/email-accounts/": lambda w, s: [s.account.pk],
    "/api/v1/email-domains/": lambda w, s: [s.domain.pk],
    "/api/v1/stores/": lambda w, s: [s.store.pk],
    "/api/v1/agent-groups/": lambda w, s: [s.group.pk],
}


def test_every_scope_names_a_real_model():
    for label in roles.SCOPES:
        apps.get_model(label)  # LookupError for a mistyped app label (messages is "messages_app")


def _ids(client: APIClient, url: str) -> set[int]:
    body = client.get(url + "?limit=1000").json()
    return {row["id"] for row in (body["results"] if isinstance(body, dict) else body)}


@pytest.mark.parametrize("url", sorted(LISTS))
def test_api_lists_through_a_token_show_only_the_users_stores(world: World, url: str):
    """A token acts as its user: store B's agent never lists store A's rows, and the reverse."""
    for role, mine, other in (("agent_b", world.b, world.a), ("agent_a", world.a, world.b)):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=world.users[role]).key}")
        seen = _ids(client, url)
        assert set(LISTS[url](world, mine)) <= seen, (role, url)
        assert not set(LISTS[url](world, other)) & seen, (role, url)
    admin = APIClient()
    admin.force_authenticate(world.users["admin"])
    assert set(LISTS[url](world, world.a)) | set(LISTS[url](world, world.b)) <= _ids(admin, url)


def test_web_lists_and_search_show_only_the_users_stores(world: World):
    client = world.client("agent_b")
    for page in ("/inbox/", "/inbox/?q=Fotos", "/customers/", "/tickets/", "/job-applicants/",
                 "/settings/email/accounts/", "/settings/stores/", "/settings/email/domains/", "/"):
        html = client.get(page).content.decode()
        assert "[A]" not in html and "ventas@tienda-a.test" not in html and "Tienda A" not in html, page
        assert "cliente-a@example.test" not in html and "Candidata A" not in html, page
    assert "[B] Fotos" in client.get("/inbox/?q=Fotos").content.decode()
    assert "[A] Fotos" in world.client("agent_a").get("/inbox/?q=Fotos").content.decode()


def test_conversation_and_raw_download_are_scoped(world: World):
    agent_b = APIClient()
    agent_b.force_authenticate(world.users["agent_b"])
    assert agent_b.get(f"/api/v1/messages/{world.a.message.pk}/raw/").status_code == 404
    assert agent_b.get(f"/api/v1/messages/{world.b.message.pk}/raw/").status_code == 200
    assert world.client("agent_b").get(f"/inbox/attachments/{world.a.attachment.pk}/").status_code == 404
    assert world.client("agent_a").get(f"/inbox/attachments/{world.a.attachment.pk}/").status_code == 200


def test_agents_change_no_settings_and_supervisors_only_their_stores(world: World):
    supervisor = APIClient()
    supervisor.force_authenticate(world.users["supervisor_a"])
    moved = supervisor.patch(f"/api/v1/email-accounts/{world.a.account.pk}/", {"store": world.b.store.pk},
                             format="json")
    assert moved.status_code == 403
    assert supervisor.patch(f"/api/v1/email-accounts/{world.b.account.pk}/", {"display_name": "x"},
                            format="json").status_code == 404
    agent = APIClient()
    agent.force_authenticate(world.users["agent_a"])
    assert agent.patch(f"/api/v1/email-accounts/{world.a.account.pk}/", {"display_name": "x"},
                       format="json").status_code == 403
    assert agent.post("/api/v1/stores/", {"name": "Nueva"}, format="json").status_code == 403
    assert roles.can_manage_accounts(world.users["supervisor_a"], world.a.store)
    assert not roles.can_manage_accounts(world.users["supervisor_a"], world.b.store)
    assert not roles.can_manage_accounts(world.users["supervisor_a"], None)  # store-less: administrators only


def test_an_agent_cannot_send_from_or_on_another_stores_records(world: World):
    agent_b = APIClient()
    agent_b.force_authenticate(world.users["agent_b"])
    refused = agent_b.post("/api/v1/messages/send/", {"to": ["x@example.test"], "subject": "hola", "text": "x",
                                                      "account": world.a.account.pk}, format="json")
    assert refused.status_code == 404
    on_record = agent_b.post("/api/v1/messages/send/", {"to": ["x@example.test"], "subject": "hola", "text": "x",
                                                        "record": {"type": "ticket", "id": world.a.ticket.pk}},
                             format="json")
    assert on_record.status_code == 404
    page = world.client("agent_b").get(f"/compose/template/?record_type=ticket&record_id={world.a.ticket.pk}")
    assert page.status_code == 403


def test_writes_cannot_point_at_another_stores_rows(world: World):
    agent_b = APIClient()
    agent_b.force_authenticate(world.users["agent_b"])
    ticket = agent_b.post("/api/v1/tickets/", {"subject": "x", "customer": world.a.customer.pk}, format="json")
    assert ticket.status_code == 400 and "customer" in ticket.json()
    moved = agent_b.patch(f"/api/v1/customers/{world.b.customer.pk}/", {"store": world.a.store.pk}, format="json")
    assert moved.status_code == 400 and "store" in moved.json()
    own = agent_b.post("/api/v1/tickets/", {"subject": "y", "customer": world.b.customer.pk}, format="json")
    assert own.status_code == 201, own.content


def test_supervisor_command_grants_and_removes_the_role(world: World):
    from io import StringIO

    from django.core.management import call_command

    user = world.users["agent_a"]
    out = StringIO()
    call_command("supervisor", "ana", stdout=out)
    assert "Tienda A" in out.getvalue()
    fresh = type(user).objects.get(pk=user.pk)  # roles caches per user object
    assert roles.role(fresh) == "supervisor" and roles.can_manage_accounts(fresh, world.a.store)
    call_command("supervisor", "ana", "--remove", stdout=out)
    assert roles.role(type(user).objects.get(pk=user.pk)) == "agent"
