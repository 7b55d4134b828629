"""Customer cards, job applicant cards and record cards (web and API): who sees which (every role;
another store's card answers like a missing one everywhere, merge included), what a card shows,
editing it, merging two cards of a store (everything moves, in one transaction, audited; across
stores refused in words), a constant number of queries per page, and Spanish."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType

from buzon.crm.models import Contact, Customer, CustomerEmail, JobApplicant, Ticket
from buzon.mailboxes.models import AuditEntry
from buzon.messages.conversations import Conversation
from buzon.messages.models import Direction, Message
from buzon.workspace.customer_merge import merge_customers
from buzon.workspace.models import ConversationEvent
from tests.security.conftest import ROLES, World

pytestmark = pytest.mark.django_db
SEES_A = {"agent_a", "supervisor_a", "admin"}


def _second_card(world: World, address: str = "ana.trabajo@example.test", *, subject: str = "Otra dirección",
                 store: Any = None, account: Any = None) -> Customer:
    """A second card of store A (the same person writing from another address), with a conversation,
    a ticket and a contact of its own."""
    other = Customer.objects.create(name="", store=store or world.a.store)
    CustomerEmail.objects.create(customer=other, address=address)
    Message.objects.create(direction=Direction.INCOMING, account=account or world.a.account, subject=subject,
                           from_address=address, customer=other, text="Escribo desde el trabajo.")
    Ticket.objects.create(subject=subject, customer=other, store=other.store)
    Contact.objects.create(customer=other, name="Contable", email="contable@example.test", phone="+34 600 000 000")
    return other


def _snapshot(*customers: Customer) -> dict[str, Any]:
    """Every row that points at these cards, to show a refused merge changed nothing."""
    ids = [c.pk for c in customers]
    return {
        "customers": sorted(Customer.objects.filter(pk__in=ids).values_list("pk", "name", "agent_id")),
        "emails": sorted(CustomerEmail.objects.filter(customer__in=ids).values_list("customer_id", "address")),
        "messages": sorted(Message.objects.filter(customer__in=ids).values_list("pk", "customer_id")),
        "conversations": sorted(Conversation.objects.filter(customer__in=ids).values_list("pk", "customer_id")),
        "tickets": sorted(Ticket.objects.filter(customer__in=ids).values_list("pk", "customer_id")),
        "contacts": sorted(Contact.objects.filter(customer__in=ids).values_list("pk", "customer_id")),
        "audit": AuditEntry.objects.filter(target_type="customer").count(),
    }


def test_every_role_sees_only_the_cards_it_may(world: World):
    a = world.a
    pages = [f"/customers/{a.customer.pk}/", f"/api/v1/customers/{a.customer.pk}/",
             f"/job-applicants/{a.applicant.pk}/", f"/records/ticket/{a.ticket.pk}/"]
    for role in ROLES:
        client = world.client(role)
        for path in pages:
            status = client.get(path).status_code
            if role == "anonymous":
                assert status in ((401, 403) if path.startswith("/api/") else (302,)), (role, path)
            else:
                assert status == (200 if role in SEES_A else 404), (role, path, status)
        if role != "anonymous":
            for missing in ("/customers/999999/", "/api/v1/customers/999999/", "/job-applicants/999999/",
                            "/records/ticket/999999/", "/records/no-such-thing/1/"):
                assert client.get(missing).status_code == 404, (role, missing)
    # A customer "record" card is the customer card.
    assert world.client("agent_a").get(f"/records/customer/{a.customer.pk}/")["Location"] == \
        f"/customers/{a.customer.pk}/"


def test_the_card_shows_addresses_contacts_store_agent_and_every_conversation(world: World):
    customer = world.a.customer
    Customer.objects.filter(pk=customer.pk).update(agent=world.agents["agent_a"])
    Message.objects.create(direction=Direction.INCOMING, account=world.a.account, subject="Segunda pregunta",
                           from_address="cliente-a@example.test", customer=customer, text="¿Y el envío?")
    conversations = list(Conversation.objects.filter(customer=customer, last_message_at__isnull=False)
                         .order_by("-last_message_at", "-id"))
    assert len(conversations) == 2  # the first mail's and this one (as the inbox lists them)
    body = world.client("agent_a").get(f"/customers/{customer.pk}/").content.decode()
    listed = [int(n) for n in re.findall(r'<tr class="[^"]*" data-conversation="(\d+)"', body)]
    assert listed == [c.pk for c in conversations]  # newest activity first
    for conversation in conversations:
        assert f'href="/conversations/{conversation.pk}/"' in body
    for text in ("cliente-a@example.test", "Tienda A", "ana", "Contacto A", "c-A@example.test", "Segunda pregunta"):
        assert text in body, text
    count = sum(Conversation.objects.filter(customer=customer).values_list("message_count", flat=True))
    assert count >= 3  # every message of their conversations, received and sent
    assert f"{count} messages" in body
    assert 'href="/compose/?to=cliente-a%40example.test"' in body
    compose = world.client("agent_a").get("/compose/?to=cliente-a%40example.test").content.decode()
    assert 'value="cliente-a@example.test"' in compose
    # The lists open the cards, and a conversation names its customer with a link to the card.
    assert f'href="/customers/{customer.pk}/"' in world.client("agent_a").get("/customers/").content.decode()
    applicants = world.client("agent_a").get("/job-applicants/").content.decode()
    assert f'href="/job-applicants/{world.a.applicant.pk}/"' in applicants
    thread = world.client("agent_a").get(f"/conversations/{conversations[0].pk}/").content.decode()
    assert f'href="/customers/{customer.pk}/"' in thread


def test_the_api_card_has_addresses_agent_store_and_latest_conversations(world: World):
    customer = world.a.customer
    data = world.client("agent_a").get(f"/api/v1/customers/{customer.pk}/").json()
    assert data["addresses"] == [{"address": "cliente-a@example.test", "undeliverable": False}]
    assert data["store"] == world.a.store.pk and data["store_name"] == "Tienda A"
    assert [c["id"] for c in data["conversations"]] == list(
        Conversation.objects.filter(customer=customer, last_message_at__isnull=False).order_by(
            "-last_message_at", "-id").values_list("pk", flat=True))
    assert "conversations" not in world.client("agent_a").get("/api/v1/customers/").json()["results"][0]


def test_editing_the_card(world: World):
    customer, client = world.a.customer, world.client("agent_a")
    sara = world.agents["supervisor_a"]
    response = client.post(f"/customers/{customer.pk}/edit/", {
        "name": "Ana Pérez", "addresses": "cliente-a@example.test\nANA.Casa@Example.test", "agent": str(sara.pk)})
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.name == "Ana Pérez" and customer.agent_id == sara.pk
    assert sorted(customer.emails.values_list("address", flat=True)) == ["ana.casa@example.test",
                                                                         "cliente-a@example.test"]
    entry = AuditEntry.objects.get(target_type="customer", target_id=customer.pk)
    assert entry.actor_name == "ana" and {c["field"] for c in entry.changes} == {"name", "addresses", "agent"}
    # Removing an address; an agent of another store, an address of another card, a bad address: refused.
    assert client.post(f"/customers/{customer.pk}/edit/", {"name": "Ana Pérez", "addresses": "ana.casa@example.test",
                                                            "agent": str(sara.pk)}).status_code == 302
    assert list(customer.emails.values_list("address", flat=True)) == ["ana.casa@example.test"]
    _second_card(world, "otra@example.test")
    for form, words in (({"agent": str(world.agents["agent_b"].pk), "addresses": "ana.casa@example.test"},
                         "Select a valid choice"),
                        ({"addresses": "ana.casa@example.test otra@example.test"}, "otra@example.test already belongs"),
                        ({"addresses": "not-an-address"}, "not-an-address is not an email address")):
        refused = client.post(f"/customers/{customer.pk}/edit/", {"name": "X", **form})
        assert refused.status_code == 400 and words in refused.content.decode(), words
    customer.refresh_from_db()
    assert customer.name == "Ana Pérez" and customer.agent_id == sara.pk
    # Another store's agent: a 404, and nothing changes.
    before = _snapshot(customer)
    assert world.client("agent_b").post(f"/customers/{customer.pk}/edit/", {"name": "B"}).status_code == 404
    assert _snapshot(customer) == before


def test_merging_a_second_card_moves_everything_and_deletes_it(world: World):
    keep = world.a.customer
    other = _second_card(world)
    Customer.objects.filter(pk=other.pk).update(agent=world.agents["agent_a"])
    moved = _snapshot(other)
    kept = _snapshot(keep)
    response = world.client("agent_a").post(f"/customers/{keep.pk}/merge/", {"other": str(other.pk)})
    assert response.status_code == 302 and response["Location"] == f"/customers/{keep.pk}/"
    assert not Customer.objects.filter(pk=other.pk).exists()
    keep.refresh_from_db()
    assert keep.agent_id == world.agents["agent_a"].pk  # the kept card had none: it takes the other's
    assert sorted(keep.emails.values_list("address", flat=True)) == ["ana.trabajo@example.test",
                                                                      "cliente-a@example.test"]
    for kind in ("messages", "conversations", "tickets", "contacts"):
        now = set(_snapshot(keep)[kind])
        assert {(pk, keep.pk) for pk, _ in moved[kind]} | set(kept[kind]) == now, kind
    entries = AuditEntry.objects.filter(target_type="customer").order_by("id")
    assert [(e.action, e.target_id) for e in entries] == [("changed", keep.pk), ("deleted", other.pk)]
    assert entries[0].changes[0]["field"] == "merged" and "ana.trabajo@example.test" in entries[0].changes[0]["old"]
    page = world.client("agent_a").get(f"/customers/{keep.pk}/").content.decode()
    assert "Otra dirección" in page and "ana.trabajo@example.test" in page
    # Mail from the other address now links to the kept card.
    from buzon.crm.records import find_customer
    assert find_customer("ana.trabajo@example.test", world.a.store) == keep


def test_a_merge_outside_ones_reach_is_a_404_and_changes_nothing(world: World):
    a_other = _second_card(world)
    b_card = world.b.customer
    before = _snapshot(world.a.customer, a_other, b_card)
    # An agent of store A naming store B's card (either side), and store B's agent naming A's cards.
    attempts = [("agent_a", world.a.customer.pk, b_card.pk), ("agent_a", b_card.pk, world.a.customer.pk),
                ("agent_b", world.a.customer.pk, a_other.pk), ("agent_b", b_card.pk, a_other.pk),
                ("nobody", world.a.customer.pk, a_other.pk), ("agent_a", world.a.customer.pk, 999999)]
    for role, keep, other in attempts:
        client = world.client(role)
        assert client.post(f"/customers/{keep}/merge/", {"other": str(other)}).status_code == 404, (role, keep, other)
        api = client.post(f"/api/v1/customers/{keep}/merge/", {"other": other}, content_type="application/json")
        assert api.status_code == 404, (role, keep, other)
    anonymous = world.client("anonymous")
    assert anonymous.post(f"/customers/{world.a.customer.pk}/merge/", {"other": str(a_other.pk)}).status_code == 302
    assert anonymous.post(f"/api/v1/customers/{world.a.customer.pk}/merge/", {"other": a_other.pk},
                          content_type="application/json").status_code in (401, 403)
    assert _snapshot(world.a.customer, a_other, b_card) == before


def test_merging_across_stores_is_refused_in_words(world: World):
    before = _snapshot(world.a.customer, world.b.customer)
    admin = world.client("admin")
    api = admin.post(f"/api/v1/customers/{world.a.customer.pk}/merge/", {"other": world.b.customer.pk},
                     content_type="application/json")
    assert api.status_code == 400 and "different stores" in api.json()["other"][0]
    web = admin.post(f"/customers/{world.a.customer.pk}/merge/", {"other": str(world.b.customer.pk)}, follow=True)
    assert "Customers of different stores cannot be merged" in web.content.decode()
    same = admin.post(f"/api/v1/customers/{world.a.customer.pk}/merge/", {"other": world.a.customer.pk},
                      content_type="application/json")
    assert same.status_code == 400
    garbage = admin.post(f"/api/v1/customers/{world.a.customer.pk}/merge/", {"other": "x"},
                         content_type="application/json")
    assert garbage.status_code == 400 and "other" in garbage.json()
    spanish = world.client("admin")
    spanish.cookies["django_language"] = "es"
    words = spanish.post(f"/api/v1/customers/{world.a.customer.pk}/merge/", {"other": world.b.customer.pk},
                         content_type="application/json", HTTP_ACCEPT_LANGUAGE="es").json()["other"][0]
    assert "tiendas distintas" in words
    assert _snapshot(world.a.customer, world.b.customer) == before


@pytest.mark.parametrize("role", ["admin", "supervisor_a", "agent_a"])
def test_the_api_merge_for_each_role_of_the_store(world: World, role: str):
    other = _second_card(world)
    response = world.client(role).post(f"/api/v1/customers/{world.a.customer.pk}/merge/", {"other": other.pk},
                                       content_type="application/json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert {a["address"] for a in data["addresses"]} == {"cliente-a@example.test", "ana.trabajo@example.test"}
    assert "Otra dirección" in {c["subject"] for c in data["conversations"]}
    assert not Customer.objects.filter(pk=other.pk).exists()


def test_two_cards_each_with_its_own_history_become_one_conversation(world: World):
    """Accounts whose mail goes to the customer's history (append_to customer): each card has one
    conversation as its record; merged, the kept card keeps one, with every message."""
    keep = world.a.customer
    other = Customer.objects.create(store=world.a.store)
    CustomerEmail.objects.create(customer=other, address="ana.trabajo@example.test")
    kind = ContentType.objects.get_for_model(Customer)
    for card, address in ((keep, "cliente-a@example.test"), (other, "ana.trabajo@example.test")):
        Message.objects.create(direction=Direction.INCOMING, account=world.a.account, subject=f"Historia {card.pk}",
                               from_address=address, customer=card, record_type=kind, record_id=card.pk)
    mine = Conversation.objects.get(record_type=kind, record_id=keep.pk)
    theirs = Conversation.objects.get(record_type=kind, record_id=other.pk)
    merge_customers(world.users["agent_a"], keep.pk, other.pk)
    theirs.refresh_from_db()
    assert theirs.merged_into_id == mine.pk and theirs.record_id is None
    assert Message.objects.filter(record_type=kind, record_id=keep.pk, conversation=mine).count() == 2
    assert ConversationEvent.objects.filter(conversation=mine, kind="merged").exists()


def _more_conversations(world: World, customer: Customer, n: int) -> None:
    for i in range(n):
        Message.objects.create(direction=Direction.INCOMING, account=world.a.account, subject=f"Pregunta {i}",
                               from_address="cliente-a@example.test", customer=customer,
                               agent=world.agents["agent_a"], text=f"Texto {i}")


@pytest.mark.parametrize("path", ["/customers/{pk}/", "/api/v1/customers/{pk}/"])
def test_a_card_costs_the_same_queries_with_1_or_many_conversations(world: World, path: str,
                                                                   django_assert_max_num_queries: Any):
    customer = world.a.customer
    Conversation.objects.filter(customer=customer).delete()
    _more_conversations(world, customer, 1)
    client, url = world.client("agent_a"), path.format(pk=customer.pk)
    client.get(url)  # warm: the session, the language
    with django_assert_max_num_queries(30) as one:
        assert client.get(url).status_code == 200
    _more_conversations(world, customer, 40)
    with django_assert_max_num_queries(len(one.captured_queries)):
        response = client.get(url)
    assert response.status_code == 200
    if path.startswith("/api/"):
        assert len(response.json()["conversations"]) == 10
    else:
        assert len(re.findall(r'<tr class="[^"]*" data-conversation=', response.content.decode())) == 25
        older = re.search(r'id="older" href="([^"]+)"', response.content.decode())
        assert older is not None
        rest = client.get(url + older.group(1).replace("&amp;", "&")).content.decode()
        assert len(re.findall(r'<tr class="[^"]*" data-conversation=', rest)) == 41 - 25


def test_an_applicant_card_costs_the_same_queries_with_1_or_many_messages(world: World,
                                                                          django_assert_max_num_queries: Any):
    applicant = world.a.applicant
    kind = ContentType.objects.get_for_model(JobApplicant)

    def mail(n: int) -> None:
        for i in range(n):
            Message.objects.create(direction=Direction.INCOMING, account=world.a.account, subject=f"CV {i}",
                                   from_address=applicant.email, record_type=kind, record_id=applicant.pk)

    mail(1)
    client, url = world.client("agent_a"), f"/job-applicants/{applicant.pk}/"
    client.get(url)
    with django_assert_max_num_queries(30) as one:
        body = client.get(url).content.decode()
    assert "Candidata A" in body and "cv-A@example.test" in body and "CV 0" in body
    assert f'href="/compose/?record=job_applicant%3A{applicant.pk}&amp;to=cv-A%40example.test"' in body
    mail(40)
    with django_assert_max_num_queries(len(one.captured_queries)):
        body = client.get(url).content.decode()
    assert len(re.findall(r"<tr data-message=", body)) == 25


def test_the_card_in_spanish(world: World):
    client = world.client("agent_a")
    client.cookies["django_language"] = "es"
    body = client.get(f"/customers/{world.a.customer.pk}/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    for words in ("Direcciones de correo", "Agente asignado", "Conversaciones", "Nuevo correo",
                  "Fusionar otra ficha con esta", "Cliente desde"):
        assert words in body, words
    record = client.get(f"/job-applicants/{world.a.applicant.pk}/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Conversaciones" in record and "Mensajes" in record


def test_a_ticket_opens_its_conversation_and_one_without_mail_its_record_card(world: World):
    client = world.client("agent_a")
    quiet = Ticket.objects.create(subject="Llamada sin correo", store=world.a.store, customer=world.a.customer)
    listed = client.get("/tickets/").content.decode()
    conversation = Conversation.objects.get(record_type=ContentType.objects.get_for_model(Ticket),
                                            record_id=world.a.ticket.pk)
    assert f'href="/conversations/{conversation.pk}/"' in listed
    assert f'href="/records/ticket/{quiet.pk}/"' in listed
    card = client.get(f"/records/ticket/{quiet.pk}/").content.decode()
    assert "Llamada sin correo" in card and "No conversation yet." in card and f"[#T-{quiet.pk}-" in card
    assert world.client("agent_b").get(f"/records/ticket/{quiet.pk}/").status_code == 404


def test_a_records_mail_pages_by_cursor_without_gaps(world: World):
    applicant = world.a.applicant
    kind = ContentType.objects.get_for_model(JobApplicant)
    for i in range(30):
        Message.objects.create(direction=Direction.INCOMING, account=world.a.account, subject=f"CV {i}",
                               from_address=applicant.email, record_type=kind, record_id=applicant.pk)
    expected = list(Message.objects.filter(record_type=kind, record_id=applicant.pk).order_by("-created_at", "-id")
                    .values_list("pk", flat=True))
    client, url = world.client("agent_a"), f"/job-applicants/{applicant.pk}/"
    first = client.get(url).content.decode()
    older = re.search(r'id="older" href="([^"]+)"', first)
    assert older is not None and 'id="newer"' not in first
    second = client.get(url + older.group(1).replace("&amp;", "&")).content.decode()
    pages = [[int(n) for n in re.findall(r"<tr data-message=\"(\d+)\"", body)] for body in (first, second)]
    assert pages[0] + pages[1] == expected
    newer = re.search(r'id="newer" href="([^"]+)"', second)
    assert newer is not None
    back = client.get(url + newer.group(1).replace("&amp;", "&")).content.decode()
    assert [int(n) for n in re.findall(r"<tr data-message=\"(\d+)\"", back)] == pages[0]
    assert client.get(url + "?before=nonsense").status_code == 404


def test_a_customers_mail_through_the_api_holds_their_mail_and_the_replies_to_it(world: World):
    """GET /api/v1/customers/<id>/messages/: the mail the customer sent and what the store answered
    (a reply is linked to the customer it answers), whatever the account appends mail to; another
    store's agent gets a 404."""
    from buzon.inbound import pipeline
    from buzon.outbound import confirm
    from buzon.workspace import actions
    from tests.inbound.helpers import mail, store_raw

    account = world.a.account
    account.append_to = ""  # mail that makes no record: linked to the customer only
    account.outgoing_enabled, account.smtp_host, account.smtp_port = True, "localhost", 2525
    account.save()
    confirm.mark_confirmed(account)
    raw = store_raw(mail(sender="Diego <diego@cliente.test>", to=world.a.account.email_address, subject="Hola",
                         body="¿Tienen la talla 42?"), world.a.account)
    assert pipeline.run_pipeline(raw.pk) == "processed"
    received = Message.objects.get(raw=raw)
    assert received.customer_id is not None and received.record_id is None
    reply = actions.do_reply(world.users["agent_a"], received.conversation_id, text="Sí, la tenemos.")
    assert reply.customer_id == received.customer_id
    url = f"/api/v1/customers/{received.customer_id}/messages/"
    found = world.client("agent_a").get(url).json()
    assert [(m["id"], m["direction"]) for m in found] == [(received.pk, "in"), (reply.pk, "out")]
    assert world.client("agent_b").get(url).status_code == 404
