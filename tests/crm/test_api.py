"""/api/v1/ for customers, contacts, tickets, job applicants, agents, agent groups, notifications,
and the pipeline's decisions on a message."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from buzon.crm.models import Agent, AgentGroup, Notification, Store, Ticket
from buzon.inbound import pipeline
from buzon.messages import targets
from buzon.messages.models import Message
from tests.inbound.helpers import mail, store_raw, support_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent_client():
    user = User.objects.create_user("ana", email="ana@shop.test", password="x")
    agent = Agent.objects.create(user=user, status=Agent.Status.FREE)
    client = APIClient()
    client.force_authenticate(user)
    return client, agent


@pytest.fixture
def staff_client():
    client = APIClient()
    client.force_authenticate(User.objects.create_user("boss", is_staff=True))
    return client


def test_anonymous_is_refused():
    assert APIClient().get("/api/v1/tickets/").status_code in (401, 403)


def test_customer_with_addresses_round_trip(agent_client):
    client, agent = agent_client
    agent.stores.add(Store.objects.create(name="Tienda"))  # only administrators create store-less customers
    created = client.post("/api/v1/customers/", {"name": "Luis", "emails": ["Luis@Example.test"]}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["emails"] == ["luis@example.test"]
    clash = client.post("/api/v1/customers/", {"name": "Otro", "emails": ["luis@example.test"]}, format="json")
    assert clash.status_code == 400 and "another customer" in str(clash.json())
    found = client.get("/api/v1/customers/?email=LUIS@example.test").json()
    assert len(found["results"]) == 1


def test_tickets_filters_and_conversation(agent_client):
    client, agent = agent_client
    group = AgentGroup.objects.create(name="Soporte")
    agent.groups.add(group)
    account = support_account(agent_group=group)
    pipeline.run_pipeline(store_raw(mail(subject="Ayuda"), account).pk)
    ticket = Ticket.objects.get()
    mine = client.get("/api/v1/tickets/?assigned=me&status=open").json()
    assert [t["id"] for t in mine["results"]] == [ticket.pk]
    assert mine["results"][0]["token"] == targets.record_token(ticket)
    assert client.get("/api/v1/tickets/?assigned=unassigned").json()["results"].__len__() == 0
    conversation = client.get(f"/api/v1/tickets/{ticket.pk}/messages/").json()
    assert [m["subject"] for m in conversation] == ["Ayuda"]
    closed = client.patch(f"/api/v1/tickets/{ticket.pk}/", {"status": "closed"}, format="json")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"


def _in_group(agent: Agent) -> AgentGroup:
    """Mail of an account reaches the agents of its group (store-less mail is not everyone's)."""
    group = AgentGroup.objects.create(name="Soporte")
    agent.groups.add(group)
    return group


def test_message_pipeline_decisions(agent_client):
    client, agent = agent_client
    pipeline.run_pipeline(store_raw(mail(), support_account(agent_group=_in_group(agent))).pk)
    message = Message.objects.get()
    body = client.get(f"/api/v1/messages/{message.pk}/pipeline/").json()
    assert body["classification"] == "normal" and body["record"]["type"] == "ticket"
    assert body["customer"] == message.customer_id
    assert [s["step"] for s in body["steps"]][:2] == ["parse", "deduplicate"]
    assert all(s["text"] for s in body["steps"])
    assert client.get("/api/v1/messages/999999/pipeline/").status_code == 404


def test_agent_sets_own_status_but_only_staff_manage_agents(agent_client, staff_client):
    client, agent = agent_client
    response = client.post("/api/v1/agents/me/", {"status": "lunch"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "lunch"
    assert client.post("/api/v1/agents/me/", {"status": "asleep"}, format="json").status_code == 400
    assert client.patch(f"/api/v1/agents/{agent.pk}/", {"status": "free"}, format="json").status_code == 403
    group = staff_client.post("/api/v1/agent-groups/", {"name": "Ventas", "agents": [agent.pk]}, format="json")
    assert group.status_code == 201 and group.json()["agents"] == [agent.pk]


def test_notifications_bell(agent_client):
    client, agent = agent_client
    for index in range(3):
        Notification.objects.create(user=agent.user, kind="new_email", key=f"m{index}", text=f"n{index}")
    Notification.objects.create(user=User.objects.create_user("other"), kind="new_email", key="x", text="not mine")
    assert client.get("/api/v1/notifications/unread-count/").json() == {"unread": 3}
    first = client.get("/api/v1/notifications/").json()["results"][0]["id"]
    assert client.post("/api/v1/notifications/read/", {"ids": [first]}, format="json").json()["unread"] == 2
    assert client.post("/api/v1/notifications/read/", {}, format="json").json()["unread"] == 0
    assert client.get("/api/v1/notifications/?unread=1").json()["results"].__len__() == 0


def test_message_detail_shows_the_pipeline(agent_client):
    client, agent = agent_client
    pipeline.run_pipeline(store_raw(mail(), support_account(agent_group=_in_group(agent))).pk)
    message = Message.objects.get()
    body = client.get(f"/api/v1/messages/{message.pk}/").json()
    assert body["pipeline"]["record"]["type"] == "ticket"
    assert body["pipeline"]["steps"][0]["step"] == "parse"
