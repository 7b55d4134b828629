"""A reply, an account, a record: every reference a send request carries is resolved among what the
sender may see or send through, and one that is not theirs answers exactly like one that does not exist.

Store A's and store B's accounts send to a real SMTP sink (aiosmtpd, STARTTLS); each refused case is checked to
create no Message or queue row and to put nothing on the wire, after the delivery loop has run.
"""

from __future__ import annotations

import difflib
import html
import re
from email import message_from_bytes, policy
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from buzon.mailboxes.models import EmailAccount
from buzon.messages.models import Direction, Message
from buzon.outbound import confirm
from buzon.outbound.models import OutgoingEmail
from buzon.outbound.sender import deliver_due
from buzon.outbound.smtp import SMTPPool
from tests.security.conftest import World
from tests.support.smtpd import SMTPServer

MISSING_ID = 987654321
MISSING_MESSAGE_ID = "<not-here-at-all@example.invalid>"


@pytest.fixture(autouse=True)
def _tasks_wait_for_the_test(settings: Any) -> None:
    """Queueing starts no delivery by itself: each test runs the delivery loop when it wants to look."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend",
                                    "QUEUES": settings.TASK_QUEUES}}


@pytest.fixture
def pool() -> Any:
    pool = SMTPPool(per_account=2, timeout=10)
    yield pool
    pool.shutdown()


def _sends_to(account: EmailAccount, sink: SMTPServer, *, confirmed: bool = True, **fields: Any) -> EmailAccount:
    values = {"outgoing_enabled": True, "smtp_host": "localhost", "smtp_port": sink.port, "smtp_security": sink.mode,
              "smtp_auth": True, "login": "sender@example.test", **fields}
    for name, value in values.items():
        setattr(account, name, value)
    account.set_password("smtp-secret")
    account.save()
    if confirmed:
        confirm.mark_confirmed(account)
    return account


@pytest.fixture
def sending(world: World, smtp_starttls: SMTPServer) -> World:
    """Both stores' accounts send through the sink (store A's not yet confirmed as a sender: its
    refusal would name its address, which store B must never read)."""
    _sends_to(world.a.account, smtp_starttls, confirmed=False)
    _sends_to(world.b.account, smtp_starttls)
    for side in (world.a, world.b):  # the fixture's mail has none: give each a thread to answer
        side.message.message_id = f"<thread@{side.account.address_domain}>"
        side.message.save(update_fields=["message_id"])
    return world


def _api(world: World, role: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(world.users[role])
    return client


def _send(client: APIClient, **fields: Any) -> Any:
    return client.post("/api/v1/messages/send/", {"to": ["cliente@example.org"], "subject": "Re: hola",
                                                   "text": "Respuesta", **fields}, format="json")


def _rows() -> tuple[int, int]:
    return Message.objects.filter(direction=Direction.OUTGOING).count(), OutgoingEmail.objects.count()


def _nothing_on_the_wire(sink: SMTPServer, pool: SMTPPool) -> None:
    deliver_due(pool=pool)
    assert sink.messages == []


@pytest.mark.parametrize("role", ["agent_b", "supervisor_b", "nobody"])
def test_api_reply_to_another_stores_message_answers_like_a_missing_one(
        sending: World, role: str, smtp_starttls: SMTPServer, pool: SMTPPool) -> None:
    world, client = sending, _api(sending, role)
    before = _rows()
    missing = _send(client, in_reply_to=str(MISSING_ID))
    assert missing.status_code == 400
    assert missing.json() == {"in_reply_to": ["There is no message with this id or Message-ID that you can reply "
                                              "to."]}
    for reference in (str(world.a.message.pk), world.a.message.message_id, str(world.a.sent.pk),
                      MISSING_MESSAGE_ID, "99999999999999999999999"):
        refused = _send(client, in_reply_to=reference)
        assert (refused.status_code, refused.content) == (missing.status_code, missing.content), reference
    # Naming an account of one's own does not make the other store's message answerable either.
    if role.endswith("_b"):
        refused = _send(client, in_reply_to=str(world.a.message.pk), account=world.b.account.pk)
        assert (refused.status_code, refused.content) == (400, missing.content)
    assert _rows() == before
    _nothing_on_the_wire(smtp_starttls, pool)


@pytest.mark.parametrize("role", ["agent_b", "supervisor_b", "nobody"])
def test_api_another_stores_account_and_record_answer_like_missing_ones(
        sending: World, role: str, smtp_starttls: SMTPServer, pool: SMTPPool) -> None:
    world, client = sending, _api(sending, role)
    before = _rows()
    no_account = _send(client, account=MISSING_ID)
    assert no_account.status_code == 400
    assert no_account.json() == {"account": ["There is no email account with this id that you can send from."]}
    theirs = _send(client, account=world.a.account.pk)
    assert (theirs.status_code, theirs.content) == (400, no_account.content)
    no_record = _send(client, record={"type": "ticket", "id": MISSING_ID})
    assert no_record.status_code == 400
    assert no_record.json() == {"record": ["There is no such record that you can see."]}
    their_record = _send(client, record={"type": "ticket", "id": world.a.ticket.pk})
    assert (their_record.status_code, their_record.content) == (400, no_record.content)
    # The kinds that always leave through the default outgoing account: store A's is not theirs.
    EmailAccount.objects.filter(pk=world.a.account.pk).update(default_outgoing=True)
    bulk = _send(client, kind="bulk")
    assert bulk.status_code == 400 and "tienda-a" not in bulk.content.decode()
    assert _rows() == before
    _nothing_on_the_wire(smtp_starttls, pool)


def test_api_reply_in_ones_own_store_leaves_through_the_conversations_account(
        sending: World, smtp_starttls: SMTPServer, pool: SMTPPool) -> None:
    world = sending
    confirm.mark_confirmed(world.a.account)
    response = _send(_api(world, "agent_a"), in_reply_to=world.a.message.message_id)
    assert response.status_code == 202, response.content
    assert response.json()["account"] == str(world.a.account)
    reply = Message.objects.get(pk=response.json()["id"])
    assert reply.record == world.a.message.record and reply.record is not None
    deliver_due(pool=pool)
    [received] = smtp_starttls.messages
    mail = message_from_bytes(received.data, policy=policy.default)
    assert mail["In-Reply-To"] == world.a.message.message_id
    assert received.mail_from == world.a.account.email_address


def test_api_administrator_replies_to_any_store(sending: World, smtp_starttls: SMTPServer, pool: SMTPPool) -> None:
    world = sending
    response = _send(_api(world, "admin"), in_reply_to=str(world.b.message.pk))
    assert response.status_code == 202, response.content
    assert Message.objects.get(pk=response.json()["id"]).account == world.b.account
    deliver_due(pool=pool)
    assert [m.mail_from for m in smtp_starttls.messages] == [world.b.account.email_address]


def test_automatic_account_for_a_reply_is_one_the_sender_may_use(
        sending: World, smtp_starttls: SMTPServer, pool: SMTPPool) -> None:
    """Store B's agent sees a store A message assigned to them, but the reply never leaves as store A."""
    world = sending
    world.a.message.agent = world.agents["agent_b"]
    world.a.message.save(update_fields=["agent"])
    # Store B's own account does not send here, so only accounts outside store B remain to choose from.
    EmailAccount.objects.filter(pk=world.b.account.pk).update(outgoing_enabled=False)
    client = _api(world, "agent_b")
    refused = _send(client, in_reply_to=str(world.a.message.pk))
    assert refused.status_code == 400, refused.content
    assert "tienda-a" not in refused.content.decode()  # neither its address nor its confirmation state
    assert refused.json() == {"detail": ["There is no outgoing email account you may send this from. "
                                         "Ask an administrator to give you one."]}  # not advice only they can take
    # The installation's own outgoing account (no store) carries the mail of those without one.
    house = _sends_to(EmailAccount(email_address="buzon@example.test"), smtp_starttls, default_outgoing=True)
    sent = _send(client, in_reply_to=str(world.a.message.pk))
    assert sent.status_code == 202, sent.content
    reply = Message.objects.get(pk=sent.json()["id"])
    assert reply.account == house
    assert reply.record is None  # store A's ticket is not store B's agent's to write on
    deliver_due(pool=pool)
    assert [m.mail_from for m in smtp_starttls.messages] == ["buzon@example.test"]


def test_a_store_account_as_default_carries_no_other_stores_mail(sending: World) -> None:
    world = sending
    EmailAccount.objects.filter(pk=world.a.account.pk).update(default_outgoing=True)
    EmailAccount.objects.filter(pk=world.b.account.pk).update(outgoing_enabled=False)
    before = _rows()
    for role in ("agent_b", "nobody"):  # no account of their own that sends: the automatic choice is the default
        refused = _send(_api(world, role))
        assert refused.json() == {"detail": ["There is no outgoing email account you may send this from. "
                                             "Ask an administrator to give you one."]}, role
    assert _rows() == before
    EmailAccount.objects.filter(pk=world.b.account.pk).update(outgoing_enabled=True)
    named = _send(_api(world, "agent_b"), account=world.b.account.pk)  # store B's own account: theirs
    assert named.status_code == 202, named.content
    assert Message.objects.get(pk=named.json()["id"]).account == world.b.account
    mine = _send(_api(world, "agent_a"))
    assert mine.status_code == 400 and "has not been confirmed as a sender" in mine.content.decode()


# The web compose form, through the real CSRF flow (token from the page, cookie from the response).

_TOKENS = re.compile(rb'(name="csrfmiddlewaretoken" value="|"X-CSRFToken": ")[^"]+"')


def _signed_in(world: World, role: str) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users[role])
    return client


def _page(client: Client, url: str) -> Any:
    response = client.get(url)
    assert response.status_code == 200
    return response


def _post(client: Client, **fields: Any) -> Any:
    form = _page(client, "/compose/").content
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    assert token is not None
    data = {"csrfmiddlewaretoken": token.group(1).decode(), "to": "cliente@example.org", "subject": "Re: hola",
            "text": "Respuesta", **fields}
    return client.post("/compose/", data)


def _same_page(one: Any, other: Any, *replaced: tuple[str, str]) -> None:
    """Byte for byte, but for the CSRF token (masked afresh for every page) and the reference the page
    echoes back as it was given (in a hidden field, or in the page's own address)."""
    first, second = _TOKENS.sub(rb"\1", one.content), _TOKENS.sub(rb"\1", other.content)
    for old, new in ((html.escape(a), html.escape(b)) for a, b in replaced):
        echoed = re.compile(rb'(name="(?:in_reply_to|record_id)" value="|\?reply=|record=ticket:|record_id=)'
                            + re.escape(old.encode()) + rb'(["&])')
        first = echoed.sub(rb"\g<1>" + new.encode() + rb"\2", first)
    assert one.status_code == other.status_code
    assert first == second, "\n".join(difflib.unified_diff(
        second.decode().splitlines(), first.decode().splitlines(), "missing", "refused", lineterm=""))


def test_web_post_without_the_csrf_token_is_refused(sending: World) -> None:
    client = _signed_in(sending, "agent_a")
    before = _rows()
    response = client.post("/compose/", {"to": "cliente@example.org", "text": "x"})
    assert response.status_code == 403
    assert _rows() == before


@pytest.mark.parametrize("role", ["agent_b", "nobody"])
def test_web_compose_refuses_another_stores_references_like_missing_ones(
        sending: World, role: str, smtp_starttls: SMTPServer, pool: SMTPPool) -> None:
    world = sending
    client = _signed_in(world, role)
    before = _rows()
    theirs, missing = str(world.a.message.pk), str(MISSING_ID)
    # ?reply= and ?record= prefill nothing from another store: the page is the empty compose form.
    _same_page(_page(client, f"/compose/?reply={theirs}"), _page(client, f"/compose/?reply={missing}"),
               (theirs, missing))
    assert b"tienda-a" not in _page(client, f"/compose/?reply={theirs}").content
    _same_page(_page(client, f"/compose/?record=ticket:{world.a.ticket.pk}"),
               _page(client, f"/compose/?record=ticket:{missing}"), (str(world.a.ticket.pk), missing))
    # The hidden field, posted by hand.
    refused, absent = _post(client, in_reply_to=theirs), _post(client, in_reply_to=missing)
    assert refused.status_code == 200
    assert b"There is no message with this id or Message-ID that you can reply to." in refused.content
    _same_page(refused, absent, (theirs, missing))
    by_header = _post(client, in_reply_to=world.a.message.message_id)
    _same_page(by_header, _post(client, in_reply_to=MISSING_MESSAGE_ID),
               (world.a.message.message_id, MISSING_MESSAGE_ID))
    # Another store's record, and another store's account.
    ticket = str(world.a.ticket.pk)
    _same_page(_post(client, record_type="ticket", record_id=ticket),
               _post(client, record_type="ticket", record_id=missing), (ticket, missing))
    account = str(world.a.account.pk)
    _same_page(_post(client, account=account), _post(client, account=missing), (account, missing))
    # The template helper renders another store's record exactly like a missing one.
    template = "/compose/template/?record_type=ticket&subject=s&text=t&record_id="
    _same_page(_page(client, template + ticket), _page(client, template + missing), (ticket, missing))
    assert _rows() == before
    _nothing_on_the_wire(smtp_starttls, pool)


def test_web_reply_in_ones_own_store_is_queued_on_its_record(
        sending: World, smtp_starttls: SMTPServer, pool: SMTPPool) -> None:
    world = sending
    confirm.mark_confirmed(world.a.account)
    client = _signed_in(world, "agent_a")
    page = _page(client, f"/compose/?reply={world.a.message.pk}").content.decode()
    assert f'name="in_reply_to" value="{world.a.message.pk}"' in page
    response = _post(client, in_reply_to=str(world.a.message.pk), record_type="ticket",
                     record_id=str(world.a.ticket.pk))
    assert response.status_code == 302, response.content.decode()
    reply = Message.objects.filter(direction=Direction.OUTGOING).latest("id")
    assert reply.account == world.a.account and reply.record == world.a.ticket
    deliver_due(pool=pool)
    [received] = smtp_starttls.messages
    assert message_from_bytes(received.data, policy=policy.default)["In-Reply-To"] == world.a.message.message_id


def test_agent_groups_of_another_store_answer_like_missing_ones(world: World) -> None:
    """A supervisor naming another store's group for their agent: no refusal naming that group."""
    client = _api(world, "supervisor_b")
    agent = world.agents["agent_b"].pk
    theirs, missing = world.a.group.pk, MISSING_ID
    refused = client.patch(f"/api/v1/agents/{agent}/", {"groups": [theirs]}, format="json")
    absent = client.patch(f"/api/v1/agents/{agent}/", {"groups": [missing]}, format="json")
    assert refused.status_code == absent.status_code == 400
    assert refused.content.replace(str(theirs).encode(), str(missing).encode()) == absent.content
    assert world.a.group.name.encode() not in refused.content
    assert client.patch(f"/api/v1/agents/{agent}/", {"groups": [world.b.group.pk]},
                        format="json").status_code == 200


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_browser_compose_with_a_forged_reply_field_is_refused(world: World, browser_page: Any,
                                                              smtp_starttls: SMTPServer, pool: SMTPPool) -> None:
    """Store B's agent, in Chromium: the hidden reply field set by hand to store A's message is refused
    on the page with the words for a missing message; the same form without it sends as store B."""
    from tests.support.browser import screenshot, sign_in

    _sends_to(world.b.account, smtp_starttls)
    page = browser_page
    sign_in(page, "bruno", "bruno-pw-123")
    page.goto(f"/compose/?reply={world.a.message.pk}")
    assert page.input_value("#id_subject") == "" and page.input_value("#id_in_reply_to") == ""
    page.fill("#id_to", "cliente@example.org")
    page.fill("#id_subject", "Re: hola")
    page.fill("#id_text", "Respuesta")
    page.locator("#id_in_reply_to").evaluate("(field, value) => { field.value = value; }", str(world.a.message.pk))
    page.click("#send")
    page.wait_for_selector("#form-errors")
    assert "There is no message with this id or Message-ID that you can reply to." in page.inner_text("#form-errors")
    assert "tienda-a" not in page.content()
    screenshot(page, "security-forged-reply-refused")
    assert not Message.objects.filter(direction=Direction.OUTGOING, subject__startswith="Re: hola").exists()
    page.locator("#id_in_reply_to").evaluate("field => { field.value = ''; }")
    page.click("#send")
    page.wait_for_selector("#status")
    sent = Message.objects.get(direction=Direction.OUTGOING, subject="Re: hola")
    assert sent.account == world.b.account
    deliver_due(pool=pool)
    assert [m.mail_from for m in smtp_starttls.messages] == [world.b.account.email_address]


@pytest.mark.django_db
def test_a_template_filled_for_another_stores_ticket_shows_nothing_of_it(world: World):
    """The compose page's template helper fills in the record being answered: another store's ticket
    gives exactly what a missing one gives (the template without it), never its subject or customer."""
    from buzon.outbound.models import EmailTemplate

    world.a.ticket.subject = "Pedido secreto 4471 de la tienda A"
    world.a.ticket.save(update_fields=["subject"])
    template = EmailTemplate.objects.create(key="respuesta", language="es", name="Respuesta",
                                            subject="Re: {{ record.subject }}", body="Hola {{ customer.name }}")
    client = world.client("agent_b")

    def filled(record_id: int) -> str:
        response = client.get("/compose/template/", {"template": template.pk, "record_type": "ticket",
                                                     "record_id": record_id})
        assert response.status_code == 200
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())

    theirs, missing = filled(world.a.ticket.pk), filled(MISSING_ID)
    assert "Pedido secreto 4471" not in theirs
    assert theirs == missing
    own = world.client("agent_a").get("/compose/template/", {"template": template.pk, "record_type": "ticket",
                                                              "record_id": world.a.ticket.pk})
    assert "Pedido secreto 4471" in html.unescape(own.content.decode())  # the store's own agent gets it
