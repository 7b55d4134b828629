"""Two stores, each with an account, mail run through the real pipeline (ticket, customer, an
attachment), and the people who may or may not see it: administrator, store A's supervisor, store
A's agent, store B's agent and supervisor, and a signed-in user with no role."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from buzon.crm import roles
from buzon.crm.models import Agent, AgentGroup, Contact, Customer, JobApplicant, Notification, Store, Ticket
from buzon.inbound import pipeline
from buzon.mailboxes.models import EmailAccount, EmailDomain
from buzon.messages.models import Attachment, Direction, Message, MessageStatus
from buzon.outbound.models import EmailTemplate
from tests.inbound.helpers import store_raw, support_account

DATA = Path(__file__).resolve().parents[1] / "data" / "parse"
ROLES = ("anonymous", "nobody", "agent_b", "supervisor_b", "agent_a", "supervisor_a", "admin")


@dataclass
class Side:
    store: Store
    account: EmailAccount
    message: Message
    attachment: Attachment
    customer: Customer
    ticket: Ticket
    group: AgentGroup
    applicant: JobApplicant
    contact: Contact
    sent: Message
    domain: EmailDomain


@dataclass
class World:
    """Side a belongs to store A (whose agent and supervisor may see it); side b to store B."""

    a: Side
    b: Side
    users: dict[str, User | None]
    agents: dict[str, Agent]

    def client(self, role: str) -> Client:
        client = Client()
        user = self.users[role]
        if user is not None:
            client.force_login(user)
        return client


def _side(name: str, address: str) -> Side:
    store = Store.objects.create(name=f"Tienda {name}")
    group = AgentGroup.objects.create(name=f"Equipo {name}", store=store)
    domain = EmailDomain.objects.create(domain_name=address.split("@")[1])
    account = support_account(email_address=address, store=store, agent_group=group, domain=domain)
    raw = (DATA / "rfc2231-inline-winmail.eml").read_bytes().replace(b"Subject:", f"Subject: [{name}]".encode(), 1)
    raw = raw.replace(b"ana@example.test", f"cliente-{name.lower()}@example.test".encode())
    pipeline.run_pipeline(store_raw(raw, account).pk)
    message = Message.objects.filter(account=account).latest("id")
    attachment = Attachment.objects.filter(message=message).first()
    assert attachment is not None and message.customer is not None
    ticket = Ticket.objects.filter(customer=message.customer).first() or Ticket.objects.create(
        subject=name, customer=message.customer, store=store)
    applicant = JobApplicant.objects.create(name=f"Candidata {name}", email=f"cv-{name}@example.test", store=store)
    contact = Contact.objects.create(customer=message.customer, name=f"Contacto {name}", email=f"c-{name}@example.test")
    sent = Message.objects.create(direction=Direction.OUTGOING, account=account, subject=f"[{name}] Respuesta",
                                  status=MessageStatus.SENT, customer=message.customer, to=["x@example.test"])
    return Side(store, account, message, attachment, message.customer, ticket, group, applicant, contact, sent, domain)


def _agent(username: str, store: Store, *, supervisor: bool = False) -> tuple[User, Agent]:
    user = User.objects.create_user(username, email=f"{username}@shop.test", password=f"{username}-pw-123")
    agent = Agent.objects.create(user=user)
    agent.stores.add(store)
    if supervisor:
        user.groups.add(Group.objects.get_or_create(name=roles.SUPERVISOR_GROUP)[0])
    return user, agent


@pytest.fixture
def world(db: Any) -> World:
    EmailTemplate.objects.get_or_create(key="security-test", language="es",
                                        defaults={"name": "Prueba", "subject": "Hola", "body": "Hola {{ customer }}"})
    a = _side("A", "ventas@tienda-a.test")
    b = _side("B", "ventas@tienda-b.test")
    admin = User.objects.create_user("root", password="root-pw-123", is_staff=True, is_superuser=True)
    supervisor_user, supervisor = _agent("sara", a.store, supervisor=True)
    agent_a_user, agent_a = _agent("ana", a.store)
    agent_b_user, agent_b = _agent("bruno", b.store)
    supervisor_b_user, supervisor_b = _agent("sergio", b.store, supervisor=True)
    nobody = User.objects.create_user("nadie", password="nadie-pw-123")
    Notification.objects.create(user=agent_a_user, kind="new_email", text="Correo nuevo", url="/inbox/", key="t1")
    return World(a=a, b=b, users={"anonymous": None, "nobody": nobody, "agent_b": agent_b_user,
                                  "supervisor_b": supervisor_b_user, "agent_a": agent_a_user,
                                  "supervisor_a": supervisor_user, "admin": admin},
                 agents={"supervisor_a": supervisor, "agent_a": agent_a, "agent_b": agent_b,
                         "supervisor_b": supervisor_b})
