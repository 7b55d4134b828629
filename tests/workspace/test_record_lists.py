"""The customer, ticket, job-applicant, email-account, agent and people lists page by keyset: walking
the Older (Next) links shows every row once, in order, even when many rows share a timestamp; a page
of 50 rows costs the queries a page of one costs; nothing counts a table; each list's query walks an
index in its order; each role sees its own rows only; a cursor edited by hand is a 400, never a 500."""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from buzon.core.housekeeping import optimize_database
from buzon.crm.models import Customer, CustomerEmail, JobApplicant, Store, Ticket
from buzon.mailboxes.models import EmailAccount
from buzon.sync.models import SyncState
from buzon.web.views_accounts import unfilled_templates_q
from tests.security.conftest import World

pytestmark = pytest.mark.django_db

CUSTOMER = r'class="card-link" href="/customers/(\d+)/"'
TICKET = r"<td>T-(\d+)</td>"
APPLICANT = r'class="card-link" href="/job-applicants/(\d+)/"'
ACCOUNT = r'data-account="([^"]+)"'
PERSON = r'data-person="([^"]+)"'


def _walk(client: Client, url: str, pattern: str, prefix: str = "") -> tuple[list[str], list[int]]:
    """Every row the pages show, following the Older (Next) link; and each page's number of queries."""
    seen: list[str] = []
    costs: list[int] = []
    path = url.split("?")[0]
    while url:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, response.content[:300]
        body = response.content.decode()
        seen += re.findall(pattern, body)
        # No page counts a table (the bell's unread count of one person's notifications aside).
        counted = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]
        assert not [q for q in counted if "notification" not in q], counted
        costs.append(len(captured.captured_queries))
        older = re.search(rf'id="{prefix}older" href="([^"]+)"', body)
        url = path + older.group(1).replace("&amp;", "&") if older else ""
    return seen, costs


def _customers(store: Store, n: int, at: dt.datetime | None = None) -> list[Customer]:
    made = [Customer.objects.create(name=f"Cliente {store.pk}-{i}", store=store) for i in range(n)]
    for customer in made:
        CustomerEmail.objects.create(customer=customer, address=f"c{customer.pk}@example.test")
    if at is not None:
        Customer.objects.filter(pk__in=[c.pk for c in made]).update(created_at=at)
    return made


def _tickets(store: Store, n: int, at: dt.datetime | None = None, status: str = "open") -> list[Ticket]:
    customer = _customers(store, 1)[0]
    made = [Ticket.objects.create(subject=f"Consulta {i}", store=store, status=status, customer=customer)
            for i in range(n)]
    if at is not None:
        Ticket.objects.filter(pk__in=[t.pk for t in made]).update(updated_at=at)
    return made


def _applicants(store: Store, n: int, at: dt.datetime | None = None) -> list[JobApplicant]:
    made = [JobApplicant.objects.create(name=f"Candidata {i}", email=f"cv{i}@example.test", store=store)
            for i in range(n)]
    if at is not None:
        JobApplicant.objects.filter(pk__in=[a.pk for a in made]).update(created_at=at)
    return made


def _accounts(store: Store, n: int) -> list[EmailAccount]:
    made = [EmailAccount.objects.create(email_address=f"buzon{i:03d}@{store.pk}.tienda.test", store=store,
                                        incoming_enabled=True) for i in range(n)]
    for account in made[::3]:  # some downloading now: their progress bar is read with the row
        SyncState.objects.create(account=account, progress_done=5, progress_total=50,
                                 progress_started_at=timezone.now())
    return made


def _ids(model: type, order: tuple[str, ...], **where: object) -> list[str]:
    return [str(pk) for pk in model.objects.filter(**where).order_by(*order).values_list("pk", flat=True)]


LISTS: dict[str, tuple[str, str, Callable[[Store, int], object]]] = {
    "customers": ("/customers/", CUSTOMER, _customers),
    "tickets": ("/tickets/", TICKET, _tickets),
    "job applicants": ("/job-applicants/", APPLICANT, _applicants),
    "accounts": ("/settings/email/accounts/", ACCOUNT, _accounts),
}


@pytest.mark.parametrize("name", list(LISTS))
def test_a_page_of_fifty_costs_what_a_page_of_one_costs(world: World, name: str):
    url, pattern, make = LISTS[name]
    sara = world.client("supervisor_a")  # a role with the OR-ed condition (store, groups, agent)
    sara.get(url)  # warm: the first request of a session marks it seen (one write)
    with CaptureQueriesContext(connection) as one:
        body = sara.get(url).content.decode()
    assert len(re.findall(pattern, body)) == 1, name  # store A's one row of the world
    make(world.a.store, 60)
    with CaptureQueriesContext(connection) as fifty:
        body = sara.get(url).content.decode()
    assert len(re.findall(pattern, body)) == 50 and 'id="older"' in body
    assert len(fifty) == len(one), [q["sql"][:200] for q in fifty.captured_queries]


def test_rows_sharing_a_timestamp_are_each_shown_once_in_order(world: World):
    same = timezone.now() - dt.timedelta(days=1)
    admin = world.client("admin")
    admin.get("/customers/")
    _customers(world.a.store, 70, same)
    _customers(world.b.store, 45, same)
    seen, costs = _walk(admin, "/customers/", CUSTOMER)
    assert seen == _ids(Customer, ("-created_at", "-id")) and len(costs) == 3 and len(set(costs)) == 1
    _tickets(world.a.store, 70, same)
    _tickets(world.a.store, 40, same, status="closed")
    seen, _ = _walk(admin, "/tickets/?status=open", TICKET)
    assert seen == _ids(Ticket, ("-updated_at", "-id"), status="open") and len(seen) > 70
    _applicants(world.a.store, 55, same)
    seen, _ = _walk(admin, "/job-applicants/", APPLICANT)
    assert seen == _ids(JobApplicant, ("-created_at", "-id"))


def test_newer_leads_back_to_the_page_before(world: World):
    _tickets(world.a.store, 120, timezone.now())
    ana = world.client("agent_a")
    first = ana.get("/tickets/").content.decode()
    older = re.search(r'id="older" href="([^"]+)"', first)
    assert older is not None and 'id="newer"' not in first
    second = ana.get("/tickets/" + older.group(1).replace("&amp;", "&")).content.decode()
    newer = re.search(r'id="newer" href="([^"]+)"', second)
    assert newer is not None
    back = ana.get("/tickets/" + newer.group(1).replace("&amp;", "&")).content.decode()
    assert re.findall(TICKET, back) == re.findall(TICKET, first)
    assert not set(re.findall(TICKET, second)) & set(re.findall(TICKET, first))


def test_each_role_walks_only_its_own_rows(world: World):
    for make in (_customers, _tickets, _applicants, _accounts):
        make(world.a.store, 60)
        make(world.b.store, 3)
    bruno, nobody = world.client("agent_b"), world.client("nobody")
    b = world.b.store.pk
    for url, pattern, _make in LISTS.values():
        seen, _costs = _walk(bruno, url, pattern)
        assert seen, url
        assert re.findall(pattern, nobody.get(url).content.decode()) == [], url  # in no store: nothing
        if url == "/settings/email/accounts/":
            assert set(EmailAccount.objects.filter(email_address__in=seen).values_list("store", flat=True)) == {b}
        else:
            model = {"/customers/": Customer, "/tickets/": Ticket, "/job-applicants/": JobApplicant}[url]
            assert set(model.objects.filter(pk__in=seen).values_list("store", flat=True)) == {b}, url


def test_the_customer_column_of_tickets_costs_no_query_per_row(world: World):
    customer = _customers(world.a.store, 1)[0]
    Customer.objects.filter(pk=customer.pk).update(name="")  # shown by address
    for i in range(30):
        Ticket.objects.create(subject=f"Sin nombre {i}", store=world.a.store, customer=customer)
    admin = world.client("admin")
    admin.get("/tickets/")
    with CaptureQueriesContext(connection) as captured:
        body = admin.get("/tickets/").content.decode()
    assert body.count(f"c{customer.pk}@example.test") == 30
    addresses = [q for q in captured.captured_queries if "crm_customeremail" in q["sql"]]
    assert len(addresses) <= 1, addresses  # read in the list's own query


@pytest.mark.parametrize("url", ["/customers/", "/tickets/", "/job-applicants/", "/settings/email/accounts/",
                                 "/settings/agents/", "/tickets/?status=open"])
def test_a_forged_cursor_is_a_clean_answer(world: World, url: str):
    admin = world.client("admin")
    joiner = "&" if "?" in url else "?"
    for forged in ("ayer~1", "2026-13-45T10:00:00~1", "x~" + "9" * 25, "~", "a%00b~1", "zzz", "1~-1"):
        for key in ("before", "after"):
            status = admin.get(f"{url}{joiner}{key}={forged}").status_code
            assert status in (200, 400), (url, key, forged, status)
    assert admin.get(f"{url}{joiner}before=ayer~x").status_code == 400
    assert admin.get("/tickets/?status=shipped").status_code == 400


def _spread(world: World, n: int = 4000) -> None:
    """``n`` customers, tickets and applicants spread over ten stores, as a site's lists are."""
    stores = [world.a.store, world.b.store, *(Store.objects.create(name=f"Tienda {i}") for i in range(8))]
    rng = random.Random(5)
    Customer.objects.bulk_create([Customer(name=f"c{i}", store=rng.choice(stores)) for i in range(n)])
    Ticket.objects.bulk_create([Ticket(subject=f"t{i}", store=rng.choice(stores), status=rng.choice(["open", "closed"]))
                                for i in range(n)])
    JobApplicant.objects.bulk_create([JobApplicant(name=f"a{i}", store=rng.choice(stores)) for i in range(n)])


@pytest.mark.parametrize(("url", "table"), [("/customers/", "crm_customer"), ("/tickets/", "crm_ticket"),
                                            ("/tickets/?status=open", "crm_ticket"),
                                            ("/job-applicants/", "crm_jobapplicant")])
@pytest.mark.parametrize("role", ["admin", "agent_a"])
def test_each_list_reads_an_index_in_its_order(world: World, url: str, table: str, role: str):
    """The page's query walks an index ending in the list's order: no sort of the visible rows
    (SQLite's plan says "USE TEMP B-TREE FOR ORDER BY" when it sorts) and no DISTINCT. SQLite's
    planner decides with the statistics Buzón's housekeeping gathers (buzon.core.housekeeping):
    without any, it would gather an agent's store and assigned rows by two indexes and sort them."""
    if connection.vendor != "sqlite":
        pytest.skip("the plan text is SQLite's; PostgreSQL's is measured in bench/")
    _spread(world)
    assert table in optimize_database()
    client = world.client(role)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    listing = [q["sql"] for q in captured.captured_queries
               if f'FROM "{table}"' in q["sql"] and "LIMIT 51" in q["sql"]]
    assert len(listing) == 1, [q["sql"][:200] for q in captured.captured_queries]
    assert "DISTINCT" not in listing[0]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {listing[0]}")
        plan = " | ".join(str(row[-1]) for row in cursor.fetchall())
    assert "TEMP B-TREE" not in plan, plan
    assert f"SCAN {table} USING INDEX" in plan or f"SEARCH {table} USING INDEX" in plan, plan


def test_the_accounts_list_finds_pages_and_shows_progress(world: World):
    _accounts(world.a.store, 70)
    admin = world.client("admin")
    admin.get("/settings/email/accounts/")
    seen, costs = _walk(admin, "/settings/email/accounts/", ACCOUNT)
    listed = EmailAccount.objects.exclude(unfilled_templates_q()).order_by("email_address")
    assert seen == list(listed.values_list("email_address", flat=True))
    assert len(costs) == 2 and costs[0] == costs[1]
    first = admin.get("/settings/email/accounts/").content.decode()
    assert 'id="account-search"' in first and "of 50 messages" in first  # a progress bar, read with its row
    found = admin.get("/settings/email/accounts/?q=buzon007").content.decode()
    assert re.findall(ACCOUNT, found) == [f"buzon007@{world.a.store.pk}.tienda.test"]
    none = admin.get("/settings/email/accounts/?q=nada-parecido", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert 'id="no-account-found"' in none and "contiene" in none
    assert admin.get("/settings/email/accounts/?q=%00").status_code == 200


def test_the_agents_and_people_lists_page_by_name(world: World):
    for i in range(55):
        User.objects.create_user(f"persona{i:02d}")
    admin = world.client("admin")
    admin.get("/settings/agents/")  # warm: the session's first request marks it seen
    seen, costs = _walk(admin, "/settings/agents/", PERSON, prefix="people_")
    expected = list(User.objects.filter(agent__isnull=True).order_by("username").values_list("username", flat=True))
    assert seen == expected and len(expected) > 50 and costs[0] == costs[1]
    # The people's pages keep the agents' own cursor, and the other way round.
    first = admin.get("/settings/agents/?before=ana~1").content.decode()
    nxt = re.search(r'id="people_older" href="([^"]+)"', first)
    assert nxt is not None and "before=ana~1" in nxt.group(1)


def test_the_api_account_list_reads_each_sync_state_with_its_row(world: World):
    sara = world.client("supervisor_a")
    sara.get("/api/v1/email-accounts/")
    with CaptureQueriesContext(connection) as one:
        assert len(sara.get("/api/v1/email-accounts/").json()["results"]) == 1
    _accounts(world.a.store, 60)
    with CaptureQueriesContext(connection) as many:
        rows = sara.get("/api/v1/email-accounts/?limit=50").json()["results"]
    assert len(rows) == 50 and any(row.get("progress") for row in rows)
    assert len(many) == len(one), [q["sql"][:150] for q in many.captured_queries]
