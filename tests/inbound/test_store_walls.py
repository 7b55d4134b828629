"""Stores are walls for incoming mail: a hostile tester's cases, through the pipeline with raw mail.

Two stores, each with an account, an agent group and an agent. Every case runs one message at a
time (run_pipeline) and in bulk (run_batch), and is checked as each store's agent sees it: the API
(404 for what is another store's) and the inbox pages.

- a customer of store B writing to store A's mailbox gets a store A card and a store A agent;
- one mail addressed to both stores is one message in each;
- store B's tokens, plus addresses, Message-IDs and X-Buzon-Ref sent to store A start a new store A
  conversation, never joining store B's ticket;
- within one store, a guessed (untagged) token from a stranger or a forged check code is refused,
  the tagged token is accepted from anyone, and an old untagged token from the customer still works.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import translation
from rest_framework.test import APIClient

from buzon.crm.models import Agent, AgentGroup, Customer, CustomerEmail, Notification, Store, Ticket
from buzon.inbound import pipeline
from buzon.inbound.batch import run_batch
from buzon.inbound.context import describe
from buzon.mailboxes.models import EmailAccount
from buzon.messages import outbox, targets
from buzon.messages.models import Direction, Message, MessageStatus
from buzon.outbound import confirm
from tests.inbound.helpers import mail, store_raw, support_account

pytestmark = pytest.mark.django_db


@dataclass
class Shop:
    store: Store
    group: AgentGroup
    user: User
    agent: Agent
    account: EmailAccount
    api: APIClient
    web: Client

    @property
    def address(self) -> str:
        return self.account.email_address


def _shop(key: str, status: str = Agent.Status.FREE) -> Shop:
    store = Store.objects.create(name=f"Tienda {key.upper()}")
    group = AgentGroup.objects.create(name=f"Grupo {key.upper()}", store=store)
    user = User.objects.create_user(f"agente_{key}", email=f"agente_{key}@tienda{key}.test")
    agent = Agent.objects.create(user=user, status=status)
    agent.stores.add(store)
    agent.groups.add(group)
    account = support_account(email_address=f"hola@tienda{key}.test", store=store, agent_group=group,
                              notify_agent=True, outgoing_enabled=True)
    confirm.mark_confirmed(account)  # it may send (a store's answers leave through it)
    api, web = APIClient(), Client()
    api.force_authenticate(user)
    web.force_login(user)
    return Shop(store, group, user, agent, account, api, web)


@pytest.fixture
def shops() -> tuple[Shop, Shop]:
    return _shop("a"), _shop("b")


def _one_by_one(ids: list[int]) -> None:
    for raw_id in ids:
        pipeline.run_pipeline(raw_id)


def _bulk(ids: list[int]) -> None:
    run_batch(ids)


@pytest.fixture(params=[_one_by_one, _bulk], ids=["one by one", "bulk"])
def process(request) -> Callable[[list[int]], None]:
    return request.param  # type: ignore[no-any-return]


def _deliver(process: Callable[[list[int]], None], *items: tuple[Shop, bytes]) -> list[Message | None]:
    """Store the raw mail at each shop's account, process it, and return each one's Message (or None)."""
    ids = [store_raw(data, shop.account).pk for shop, data in items]
    process(ids)
    return [Message.objects.filter(raw_id=raw_id).first() for raw_id in ids]


def _invisible_to(shop: Shop, message: Message) -> None:
    """``shop``'s agent cannot reach the message, its record or its customer: like missing ones."""
    urls = [f"/api/v1/messages/{message.pk}/", f"/api/v1/messages/{message.pk}/pipeline/",
            f"/api/v1/customers/{message.customer_id}/"]
    if isinstance(message.record, Ticket):
        urls.append(f"/api/v1/tickets/{message.record_id}/")
    for url in urls:
        response = shop.api.get(url)
        assert response.status_code == 404, (url, response.content)
    assert shop.web.get(f"/inbox/{message.pk}/").status_code == 404
    assert f"/inbox/{message.pk}/" not in shop.web.get("/inbox/").content.decode()
    assert message.pk not in [m["id"] for m in shop.api.get("/api/v1/messages/").json()["results"]]


def _visible_to(shop: Shop, message: Message) -> None:
    assert shop.api.get(f"/api/v1/messages/{message.pk}/").status_code == 200
    assert f"/inbox/{message.pk}/" in shop.web.get("/inbox/").content.decode()
    page = shop.web.get(f"/inbox/{message.pk}/")
    assert page.status_code == 200 and message.subject in page.content.decode()


def _steps(shop: Shop, message: Message) -> list[str]:
    """The pipeline's decisions on the message as its store's agent reads them in the API."""
    return [step["text"] for step in shop.api.get(f"/api/v1/messages/{message.pk}/pipeline/").json()["steps"]]


def test_a_customer_of_store_b_writing_to_store_a_is_a_store_a_card_with_a_store_a_agent(process, shops):
    a, b = shops
    # Store A's group also holds an agent who works only in store B, free while A's own agent is busy.
    outsider = Agent.objects.create(user=User.objects.create_user("de_b", email="de_b@tiendab.test"),
                                    status=Agent.Status.FREE)
    outsider.stores.add(b.store)
    outsider.groups.add(a.group)
    Agent.objects.filter(pk=a.agent.pk).update(status=Agent.Status.BUSY)
    [in_b] = _deliver(process, (b, mail(sender="Ana <ana@cliente.test>", to=b.address, subject="Pedido en B")))
    assert in_b is not None and in_b.customer.store == b.store and in_b.agent == b.agent
    notices_of_b = Notification.objects.filter(user=b.user).count()

    [in_a] = _deliver(process, (a, mail(sender="Ana <ana@cliente.test>", to=a.address, subject="Pregunta a A")))

    assert in_a is not None
    card = in_a.customer
    assert card != in_b.customer and card.store == a.store
    assert card.agent == a.agent and in_a.agent == a.agent  # not the free outsider of store B
    assert in_a.store == a.store
    ticket = in_a.record
    assert isinstance(ticket, Ticket) and ticket.store == a.store and ticket.agent == a.agent
    assert Customer.objects.get(pk=in_b.customer_id).agent == b.agent  # B's card is left as it was
    assert Notification.objects.filter(user=b.user).count() == notices_of_b
    _invisible_to(b, in_a)
    _visible_to(a, in_a)
    _invisible_to(a, in_b)
    by_address = {shop.store.name: [c["id"] for c in shop.api.get("/api/v1/customers/?email=ana@cliente.test")
                                    .json()["results"]] for shop in (a, b)}
    assert by_address == {"Tienda A": [card.pk], "Tienda B": [in_b.customer_id]}


def test_one_mail_to_two_stores_is_one_message_in_each(process, shops):
    a, b = shops
    data = mail(sender="luis@cliente.test", to=a.address, subject="A las dos tiendas", message_id="<dos@cliente.test>",
                headers={"Cc": b.address})
    in_a, in_b, again_in_a = _deliver(process, (a, data), (b, data), (a, data))

    assert in_a is not None and in_b is not None and again_in_a is None  # a store dedupes its own copies
    assert (in_a.store, in_b.store) == (a.store, b.store)
    assert in_a.customer.store == a.store and in_b.customer.store == b.store
    assert (in_a.agent, in_b.agent) == (a.agent, b.agent)
    _visible_to(a, in_a)
    _visible_to(b, in_b)
    _invisible_to(a, in_b)
    _invisible_to(b, in_a)


def test_accounts_without_a_store_still_dedupe_against_each_other(process):
    one = support_account(email_address="uno@sinsede.test")
    two = support_account(email_address="dos@sinsede.test")
    data = mail(to="uno@sinsede.test", subject="Sin tienda", message_id="<sin@cliente.test>",
                headers={"Cc": "dos@sinsede.test"})
    ids = [store_raw(data, one).pk, store_raw(data, two).pk]
    process(ids)
    assert Message.objects.filter(subject="Sin tienda").count() == 1  # as before stores


def _store_b_ticket(process, b: Shop) -> tuple[Ticket, Message]:
    """A ticket of store B's customer, and the answer store B sent about it."""
    [first] = _deliver(process, (b, mail(sender="eva@cliente.test", to=b.address, subject="Pedido 184",
                                         message_id="<pedido-184@cliente.test>")))
    assert first is not None and isinstance(first.record, Ticket)
    sent = outbox.queue_outgoing(to="eva@cliente.test", subject="Re: Pedido 184", text="Lo miramos.",
                                 account=b.account, record=first.record)
    Message.objects.filter(pk=sent.pk).update(status=MessageStatus.SENT)
    return first.record, sent


def test_store_b_references_sent_to_store_a_start_new_store_a_conversations(process, shops):
    a, b = shops
    ticket_b, sent_b = _store_b_ticket(process, b)
    before = Message.objects.filter(record_id=ticket_b.pk, record_type__model="ticket").count()
    token = targets.record_token(ticket_b)

    by_token, by_reply, by_plus, by_ref = _deliver(
        process,
        (a, mail(sender="eva@cliente.test", to=a.address, subject=f"Re: Pedido 184 {token}")),
        (a, mail(sender="eva@cliente.test", to=a.address, subject="Re: Pedido 184",
                 headers={"In-Reply-To": sent_b.message_id, "References": "<pedido-184@cliente.test>"})),
        (a, mail(sender="eva@cliente.test", to=targets.plus_address(a.address, ticket_b), subject="Por plus")),
        (a, mail(sender="eva@cliente.test", to=a.address, subject="Con cabecera",
                 headers={"X-Buzon-Ref": targets.ref_header(sent_b.pk, ticket_b)})),
    )

    assert Message.objects.filter(record_id=ticket_b.pk, record_type__model="ticket").count() == before
    tickets = set()
    for message in (by_token, by_reply, by_plus, by_ref):
        assert message is not None and message.store == a.store, message
        assert isinstance(message.record, Ticket) and message.record.store == a.store
        assert message.record != ticket_b and message.agent == a.agent
        tickets.add(message.record_id)
        _invisible_to(b, message)
    assert len(tickets) == 4  # each a conversation of its own
    assert by_reply.decisions[3]["decision"] == "new"  # store B's Message-ID is not a parent here
    assert f"[#T-{ticket_b.pk}] names no record of this account's store: ignored." in _steps(a, by_token)
    plus = targets.plus_address(a.address, ticket_b)
    assert f"{plus} names no record of this account's store: ignored." in _steps(a, by_plus)
    sent_b.refresh_from_db()
    assert sent_b.provider_message_id == ""  # the forged X-Buzon-Ref changed nothing of store B's mail


def test_a_guessed_or_forged_token_is_refused_and_the_tagged_or_the_customers_own_is_accepted(process, shops):
    _, b = shops
    ticket, _ = _store_b_ticket(process, b)
    number = ticket.pk
    guessed, forged, tagged, own, own_plus, stranger_plus = _deliver(
        process,
        (b, mail(sender="intruso@x.test", to=b.address, subject=f"[#T-{number}] adjunto esto")),
        (b, mail(sender="intruso@x.test", to=b.address, subject=f"[#T-{number}-abcdefgh] adjunto esto")),
        (b, mail(sender="colega@cliente.test", to=b.address, subject=f"Re: {targets.record_token(ticket)}")),
        (b, mail(sender="EVA@cliente.test", to=b.address, subject=f"Re: Pedido 184 [#T-{number}]")),
        (b, mail(sender="eva@cliente.test", to=f"hola+ticket-{number}@tiendab.test", subject="Plus de antes")),
        (b, mail(sender="intruso@x.test", to=f"hola+ticket-{number}@tiendab.test", subject="Plus adivinado")),
    )

    for message in (tagged, own, own_plus):
        assert message is not None and message.record == ticket, message.subject
    for message in (guessed, forged, stranger_plus):
        assert message is not None and isinstance(message.record, Ticket) and message.record != ticket
    steps = _steps(b, guessed)
    assert (f"[#T-{number}] has no check code, so only the record's own customer may use it, and "
            "intruso@x.test is not one of their addresses: ignored.") in steps
    assert "Starts a new conversation." in steps
    assert f"[#T-{number}] carries a wrong check code: ignored." in _steps(b, forged)
    entry = next(d for d in guessed.decisions if d["decision"] == "name_refused")
    with translation.override("es"):
        assert describe(entry) == (f"[#T-{number}] no lleva código de comprobación, así que solo puede usarlo el "
                                   "propio cliente del registro, y intruso@x.test no es una de sus direcciones: "
                                   "se ignora.")


def test_mail_a_store_sends_is_that_stores_and_names_its_record_with_the_check_code(process, shops):
    a, b = shops
    ticket, sent = _store_b_ticket(process, b)
    assert sent.store == b.store and sent.direction == Direction.OUTGOING
    assert sent.subject == f"Re: Pedido 184 {targets.record_token(ticket)}"
    assert targets.find_tokens(sent.subject)[0].tag_valid
    assert a.api.get(f"/api/v1/messages/{sent.pk}/").status_code == 404
    assert b.api.get(f"/api/v1/messages/{sent.pk}/").status_code == 200


def test_the_api_keeps_an_address_to_one_customer_per_store(shops):
    a, b = shops
    admin = APIClient()
    admin.force_authenticate(User.objects.create_user("jefa", is_staff=True))
    in_b = admin.post("/api/v1/customers/", {"name": "Ana", "store": b.store.pk, "emails": ["ana@cliente.test"]},
                      format="json")
    assert in_b.status_code == 201, in_b.content
    in_a = a.api.post("/api/v1/customers/", {"name": "Ana", "store": a.store.pk, "emails": ["Ana@Cliente.test"]},
                      format="json")
    assert in_a.status_code == 201, in_a.content  # store A's own card for the same person
    card = in_a.json()["id"]
    assert in_a.json()["emails"] == ["ana@cliente.test"]
    assert b.api.get(f"/api/v1/customers/{card}/").status_code == 404
    twice = a.api.post("/api/v1/customers/", {"name": "Otra", "store": a.store.pk, "emails": ["ana@cliente.test"]},
                       format="json")
    assert twice.status_code == 400
    assert twice.json() == {"emails": ["ana@cliente.test already belongs to another customer."]}

    # Moving store A's card into store B, which has a card with that address: refused, nothing moves.
    moved = admin.patch(f"/api/v1/customers/{card}/", {"store": b.store.pk}, format="json")
    assert moved.status_code == 400 and "emails" in moved.json()
    assert Customer.objects.get(pk=card).store == a.store
    assert CustomerEmail.objects.get(customer_id=card).store == a.store
    # Adding an address store A has on another card: refused the same way.
    taken = admin.post("/api/v1/customers/", {"store": a.store.pk, "emails": ["luis@cliente.test"]}, format="json")
    assert taken.status_code == 201
    added = a.api.patch(f"/api/v1/customers/{card}/", {"emails": ["ana@cliente.test", "luis@cliente.test"]},
                        format="json")
    assert added.status_code == 400 and "luis@cliente.test" in str(added.json())
    # A card whose addresses are free in the other store moves there with them, and mail finds it there.
    luis = taken.json()["id"]
    assert admin.patch(f"/api/v1/customers/{luis}/", {"store": b.store.pk}, format="json").status_code == 200
    assert CustomerEmail.objects.get(customer_id=luis).store == b.store
    pipeline.run_pipeline(store_raw(mail(sender="luis@cliente.test", to=b.address, subject="Soy Luis"), b.account).pk)
    assert Message.objects.get(subject="Soy Luis").customer_id == luis
