"""Every page and API list of the workspace asks the database at most 15 times, whatever it holds:
a list of 1 row or of 50, a thread of 1 message or of 30 with notes, for an agent of one store, a
supervisor and an administrator. (How long they take at 1,000,000 messages: bench/bench_workspace.py.)

On SQLite here, and on PostgreSQL in its pass, where the search asks more of its own."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from buzon.crm.models import Customer, JobApplicant, Notification, Ticket
from buzon.inbound import pipeline
from buzon.messages.models import Message
from buzon.sync.models import RawContent
from buzon.workspace import actions
from tests.inbound.helpers import mail, store_raw, support_account
from tests.security.conftest import World

pytestmark = pytest.mark.django_db

MOST = 15
ROLES = ("agent_a", "supervisor_a", "admin")
PAGES = (
    "/conversations/?view=", "/conversations/?view=mine", "/conversations/?view=unassigned",
    "/conversations/?view=stores",
    "/conversations/?status=open", "/conversations/?store={store}", "/conversations/?account={account}",
    "/conversations/?agent={agent}", "/conversations/?customer={customer}", "/conversations/?q=pedido",
    "/conversations/{conversation}/", "/customers/", "/customers/{customer}/", "/tickets/", "/job-applicants/",
    "/notifications/", "/inbox/", "/settings/email/accounts/",
    "/api/v1/conversations/", "/api/v1/conversations/{conversation}/", "/api/v1/messages/", "/api/v1/customers/",
    "/api/v1/tickets/", "/api/v1/job-applicants/", "/api/v1/notifications/", "/api/v1/email-accounts/",
    "/api/v1/search/?q=pedido",
)
ADMIN_PAGES = ("/settings/audit/", "/api/v1/audit/")


THREAD = "<hilo@correo.test>"


def _thread() -> Message:
    return Message.objects.get(message_id=THREAD)


def _grow(world: World, n: int, start: int) -> None:
    """``n`` more of everything the pages list, in store A: conversations from new customers, replies
    in one thread (addressed to the store and a colleague, so a reply-all has someone to copy),
    internal notes, tickets, applicants, notifications, email accounts."""
    account = world.a.account
    if start == 0:
        first = mail(sender="Lucía Pérez <lucia@correo.test>", to=account.email_address, subject="Pedido 1000",
                     body="¿Dónde está mi pedido?", message_id=THREAD)
        assert pipeline.run_pipeline(store_raw(first, account).pk) == "processed"
    thread = _thread()
    for i in range(start, start + n):
        sender = f"Cliente {i} <cliente{i}@correo.test>"
        for raw in (mail(sender=sender, to=account.email_address, subject=f"Pedido {i}", body="Mi pedido no llega."),
                    mail(sender=thread.from_address, to=f"{account.email_address}, colega{i}@correo.test",
                         subject=f"Re: {thread.subject}", body=f"Otra pregunta sobre el pedido {i}.",
                         headers={"In-Reply-To": THREAD, "References": THREAD})):
            assert pipeline.run_pipeline(store_raw(raw, account).pk) == "processed"
        actions.do_add_note(world.users["agent_a"], thread.conversation_id, f"Nota {i} sobre el pedido")
        customer = Customer.objects.get(emails__address=f"cliente{i}@correo.test")
        Ticket.objects.get_or_create(customer=customer, defaults={"subject": f"Pedido {i}", "store": world.a.store})
        JobApplicant.objects.create(name=f"Candidata {i}", email=f"cv{i}@correo.test", store=world.a.store)
        for user in (world.users[role] for role in ROLES):
            Notification.objects.create(user=user, kind="new_email", text=f"Correo {i}", url="/conversations/",
                                        key=f"budget-{i}")
        support_account(email_address=f"buzon{i}@tienda-a.test", store=world.a.store)
    assert Message.objects.filter(conversation_id=thread.conversation_id).count() == start + n + 1


def _costs(world: World) -> dict[tuple[str, str], int]:
    thread = _thread()
    values = {"store": world.a.store.pk, "account": world.a.account.pk, "agent": world.agents["agent_a"].pk,
              "customer": thread.customer_id, "conversation": thread.conversation_id}
    costs = {}
    for role in ROLES:
        client = world.client(role)
        for page in PAGES + (ADMIN_PAGES if role == "admin" else ()):
            url = page.format(**values)
            client.get(url)  # warm: the session, caches of the process
            with CaptureQueriesContext(connection) as captured:
                response = client.get(url)
            assert response.status_code == 200, (role, url, response.status_code)
            costs[(role, url)] = len(captured.captured_queries)
    return costs


def _budgets_hold(world: World) -> None:
    _grow(world, 1, 0)
    few = _costs(world)
    _grow(world, 50, 1)
    many = _costs(world)
    over = {page: (few[page], cost) for page, cost in many.items() if cost > MOST or few[page] > MOST}
    assert not over, f"pages over {MOST} queries (1 row, 50 rows): {over}"
    # The account filter reads the chosen account on its own once it is not among the 50 it lists.
    grew = {page: (few[page], cost) for page, cost in many.items()
            if cost > few[page] + (1 if "account=" in page[1] else 0)}
    assert not grew, f"pages whose queries grew with their rows: {grew}"


def test_every_page_and_api_list_takes_at_most_15_queries_at_any_size(world: World):
    _budgets_hold(world)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # emptied by TRUNCATE after: no dead rows left in the indexes
def test_on_postgresql_every_page_and_api_list_takes_at_most_15_queries_at_any_size(world: World, postgres_url: str):
    assert connection.vendor == "postgresql"
    _budgets_hold(world)



def test_message_lists_read_neither_raw_mail_nor_bodies(world: World):
    """A list reads what it shows: the message lists (the web's and the API's) never select the raw
    mail (tens of KB a row), the text and HTML bodies or the pipeline's decisions; the conversation
    list shows each conversation's snippet, kept on its row."""
    _grow(world, 3, 0)
    heavy = [f'"{Message._meta.db_table}"."{name}"' for name in ("text", "html", "decisions")]
    heavy.append(f'"{RawContent._meta.db_table}"')
    for role in ROLES:
        client = world.client(role)
        for url in ("/inbox/", "/api/v1/messages/", "/conversations/?view=", "/api/v1/conversations/"):
            with CaptureQueriesContext(connection) as captured:
                response = client.get(url)
            assert response.status_code == 200, (role, url)
            selects = [q["sql"].split(" FROM ")[0] for q in captured.captured_queries if q["sql"].startswith("SELECT")]
            read = [column for column in heavy if any(column in select for select in selects)]
            assert not read, (role, url, read)
