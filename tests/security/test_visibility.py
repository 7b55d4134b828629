"""What each role sees in lists, search and downloads: store A's rows never reach store B's agent."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from rest_framework.test import APIClient

from buzon.core import api_tokens
from buzon.crm import roles
from buzon.crm.models import AgentGroup, JobApplicant, Ticket
from buzon.inbound import pipeline
from buzon.mailboxes.models import EmailDomain
from buzon.messages.models import Attachment, Message
from tests.inbound.helpers import store_raw, support_account
from tests.security.conftest import DATA, World

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
        client.credentials(HTTP_AUTHORIZATION=f"Token {api_tokens.create(world.users[role])[1]}")
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
    """Refused exactly as an id that does not exist is (tests/security/test_reply_references.py goes further)."""
    agent_b = APIClient()
    agent_b.force_authenticate(world.users["agent_b"])

    def send(**fields):
        return agent_b.post("/api/v1/messages/send/", {"to": ["x@example.test"], "subject": "hola", "text": "x",
                                                        **fields}, format="json")

    refused, missing = send(account=world.a.account.pk), send(account=987654321)
    assert (refused.status_code, refused.content) == (400, missing.content)
    on_record, no_record = (send(record={"type": "ticket", "id": world.a.ticket.pk}),
                            send(record={"type": "ticket", "id": 987654321}))
    assert (on_record.status_code, on_record.content) == (400, no_record.content)
    page = world.client("agent_b").get(f"/compose/template/?record_type=ticket&record_id={world.a.ticket.pk}")
    assert page.status_code == 200 and b"[A]" not in page.content


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


def _storeless(world: World, group: AgentGroup | None, address: str, tag: str) -> dict[str, Any]:
    """Mail of an account with no store (in ``group``, or none), run through the real pipeline."""
    account = support_account(email_address=address, agent_group=group,
                              domain=EmailDomain.objects.create(domain_name=address.split("@")[1]))
    raw = (DATA / "rfc2231-inline-winmail.eml").read_bytes().replace(b"Subject:", f"Subject: [{tag}]".encode(), 1)
    raw = raw.replace(b"ana@example.test", f"cliente-{tag.lower()}@example.test".encode())
    pipeline.run_pipeline(store_raw(raw, account).pk)
    message = Message.objects.filter(account=account).latest("id")
    assert message.customer is not None and message.customer.store_id is None
    return {"account": account, "message": message, "customer": message.customer,
            "attachment": Attachment.objects.filter(message=message).first(),
            "ticket": Ticket.objects.filter(customer=message.customer).first(),
            "applicant": JobApplicant.objects.create(name=f"Candidata {tag}", email=f"cv-{tag}@example.test")}


def test_rows_with_no_store_reach_administrators_and_the_group_that_brought_them_in(world: World):
    """A store-less account's mail, customers and tickets: administrators, and the agents of the
    account's group; never every signed-in user (the other store's people, a user in no store)."""
    group = AgentGroup.objects.create(name="Equipo sin tienda")
    world.agents["agent_b"].groups.add(group)
    grouped = _storeless(world, group, "hola@grupo.test", "G")
    orphan = _storeless(world, None, "nadie@huerfana.test", "O")
    assert grouped["ticket"] is not None
    sees = {"admin": {"G", "O"}, "agent_b": {"G"}, "agent_a": set(), "supervisor_a": set(), "supervisor_b": set(),
            "nobody": set()}
    for role, tags in sees.items():
        client, api = world.client(role), APIClient()
        api.force_authenticate(world.users[role])
        for tag, side in (("G", grouped), ("O", orphan)):
            allowed = tag in tags
            inbox = client.get(f"/inbox/?q=%5B{tag}%5D").content.decode()  # search
            assert (f"[{tag}] Fotos" in inbox) is allowed, (role, tag, "search")
            customers = client.get("/customers/").content.decode()
            assert (f"cliente-{tag.lower()}@example.test" in customers) is allowed, (role, tag, "customers")
            for url in (f"/inbox/{side['message'].pk}/", f"/inbox/attachments/{side['attachment'].pk}/",
                        f"/api/v1/messages/{side['message'].pk}/raw/", f"/api/v1/customers/{side['customer'].pk}/",
                        f"/api/v1/tickets/{side['ticket'].pk}/", f"/settings/email/accounts/{side['account'].pk}/"):
                status = (api if url.startswith("/api/") else client).get(url).status_code
                assert (status == 200) is allowed or (url.startswith("/settings/") and role == "admin"
                                                      and status == 302), (role, tag, url, status)
            # Job applicants have no group: store-less ones are the administrators' alone.
            listed = _ids(api, "/api/v1/job-applicants/")
            assert (side["applicant"].pk in listed) is (role == "admin"), (role, tag, "applicant")
            accounts = _ids(api, "/api/v1/email-accounts/")
            assert (side["account"].pk in accounts) is allowed, (role, tag, "accounts")


def test_an_agent_keeps_sight_of_a_customer_they_create(world: World):
    api = APIClient()
    api.force_authenticate(world.users["agent_b"])
    # Naming no store, an agent of one store creates the customer in it (only administrators make
    # store-less ones): they see it through their store, so it is not assigned to them.
    created = api.post("/api/v1/customers/", {"name": "Sin tienda", "emails": ["st@example.test"]}, format="json")
    assert created.status_code == 201 and created.json()["agent"] is None
    assert created.json()["store"] == world.b.store.pk
    assert api.get(f"/api/v1/customers/{created.json()['id']}/").status_code == 200
    other = APIClient()
    other.force_authenticate(world.users["agent_a"])
    assert other.get(f"/api/v1/customers/{created.json()['id']}/").status_code == 404
    # A record they can see anyway (their store's) is not assigned to them just for creating it.
    ticket = api.post("/api/v1/tickets/", {"subject": "x", "customer": world.b.customer.pk, "store": world.b.store.pk},
                      format="json")
    assert ticket.status_code == 201 and ticket.json()["agent"] is None
