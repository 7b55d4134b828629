"""Who answered a conversation (buzon.messages.replies): a ticket goes Open -> Replied when an agent
replies (API and compose page), back to Open on the customer's next mail (pipeline); an auto-reply
answers neither; "notify if unreplied" (seed 000 §3.3) alerts once per conversation, with a link."""

from __future__ import annotations

import datetime as dt
import io
from email import message_from_bytes
from email.policy import default
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from freezegun import freeze_time

from buzon.core.models import UserPreferences
from buzon.crm.models import Agent, AgentGroup, Notification, Store, Ticket
from buzon.inbound import pipeline
from buzon.inbound.unreplied import notify_unreplied
from buzon.mailboxes.models import EmailAccount
from buzon.messages.models import Direction, Message
from buzon.outbound import confirm
from buzon.outbound.sender import deliver_due
from buzon.outbound.smtp import SMTPPool
from tests.inbound.helpers import mail, store_raw

pytestmark = pytest.mark.django_db
PASSWORD = "pw-agent-123"


@pytest.fixture
def shop(smtp_starttls: Any) -> dict[str, Any]:
    """A store whose support mailbox makes tickets, answers automatically, alerts its boss after 30
    minutes without a reply, and sends through the aiosmtpd sink; one agent works there."""
    store = Store.objects.create(name="Tienda")
    group = AgentGroup.objects.create(name="Soporte", store=store)
    user = User.objects.create_user("lucia", email="lucia@shop.test", password=PASSWORD)
    agent = Agent.objects.create(user=user, status=Agent.Status.FREE)
    agent.stores.add(store)
    agent.groups.add(group)
    User.objects.create_user("jefa", email="Jefa@shop.test", password=PASSWORD)
    account = EmailAccount(
        email_address="sender@example.test", store=store, incoming_enabled=True, outgoing_enabled=True,
        default_outgoing=True, smtp_host="localhost", smtp_port=smtp_starttls.port, smtp_security="starttls",
        smtp_auth=True, append_to="ticket", auto_link=True, agent_group=group, auto_reply_enabled=True,
        auto_reply_message="Hemos recibido su mensaje.", notify_unreplied_after_minutes=30,
        notify_unreplied_to="jefa@shop.test, otro@shop.test")
    account.set_password("smtp-secret")
    account.save()
    confirm.mark_confirmed(account)
    return {"account": account, "user": user, "sink": smtp_starttls}


def _receive(shop: dict[str, Any], **fields: Any) -> Message:
    raw = store_raw(mail(to="sender@example.test", **fields), shop["account"])
    assert pipeline.run_pipeline(raw.pk) == "processed"
    return Message.objects.get(raw=raw)


def _signed_in(name: str = "lucia") -> Client:
    browser = Client()
    assert browser.post("/login/", {"username": name, "password": PASSWORD}).status_code == 302
    return browser


def _api_token(name: str = "lucia") -> Client:
    out = io.StringIO()
    call_command("token", name, stdout=out)
    return Client(HTTP_AUTHORIZATION=f"Token {out.getvalue().strip()}")


def _status(ticket: Ticket) -> str:
    ticket.refresh_from_db(fields=["status"])
    return ticket.status


def test_agent_replies_set_replied_and_the_customers_next_mail_reopens(shop):
    first = _receive(shop, subject="Pedido roto", message_id="<p1@customer.test>")
    ticket = first.record
    assert isinstance(ticket, Ticket) and _status(ticket) == Ticket.Status.OPEN
    auto = Message.objects.get(direction=Direction.OUTGOING, in_reply_to="<p1@customer.test>")
    assert auto.text == "Hemos recibido su mensaje." and _status(ticket) == Ticket.Status.OPEN  # not an answer

    api = _api_token()
    sent = api.post("/api/v1/messages/send/", {"to": ["ana@customer.test"], "subject": "Re: Pedido roto",
                                               "text": "Le enviamos otro.", "in_reply_to": str(first.pk)},
                    content_type="application/json")
    assert sent.status_code == 202, sent.content
    assert _status(ticket) == Ticket.Status.REPLIED
    assert api.get(f"/api/v1/tickets/{ticket.pk}/").json()["status"] == "replied"

    reply_id = Message.objects.get(pk=sent.json()["id"]).message_id
    again = _receive(shop, subject="Re: Pedido roto", headers={"In-Reply-To": reply_id})
    assert again.record == ticket and _status(ticket) == Ticket.Status.OPEN

    page = _signed_in().post("/compose/", {"to": "ana@customer.test", "subject": "Re: Pedido roto",
                                           "text": "Ya salió.", "record_type": "ticket",
                                           "record_id": str(ticket.pk), "account": str(shop["account"].pk)})
    assert page.status_code == 302, page.content.decode()[:2000]
    assert _status(ticket) == Ticket.Status.REPLIED
    Ticket.objects.filter(pk=ticket.pk).update(status=Ticket.Status.CLOSED)
    _receive(shop, subject=f"Re: Pedido roto {ticket.pk}", headers={"In-Reply-To": reply_id})
    assert _status(ticket) == Ticket.Status.OPEN


def test_a_notification_sent_by_a_person_is_not_a_reply(shop):
    first = _receive(shop, subject="Pedido roto")
    sent = _api_token().post("/api/v1/messages/send/", {"to": ["ana@customer.test"], "subject": "Aviso",
                                                        "text": "x", "kind": "notification",
                                                        "record": {"type": "ticket", "id": first.record_id}},
                             content_type="application/json")
    assert sent.status_code == 202, sent.content
    assert _status(first.record) == Ticket.Status.OPEN


def _alerts(shop: dict[str, Any]) -> list[Any]:
    pool = SMTPPool(per_account=2, timeout=10)
    try:
        deliver_due(pool=pool)
    finally:
        pool.shutdown()
    return [message_from_bytes(m.data, policy=default) for m in shop["sink"].messages
            if "otro@shop.test" in m.rcpt_tos]


def test_unreplied_alerts_once_per_conversation_even_with_the_auto_reply_on(shop):
    start = timezone.now()
    with freeze_time(start) as clock:
        first = _receive(shop, subject="Pedido roto", message_id="<p1@customer.test>")
        clock.tick(dt.timedelta(minutes=5))
        _receive(shop, subject="Re: Pedido roto", headers={"In-Reply-To": "<p1@customer.test>"})
        _receive(shop, sender="Luis <luis@customer.test>", subject="Factura")  # another conversation
        auto_replies = Message.objects.filter(direction=Direction.OUTGOING, text="Hemos recibido su mensaje.")
        assert auto_replies.count() == 2  # one per new conversation: they answer nobody's wait
        clock.tick(dt.timedelta(minutes=24))
        assert notify_unreplied() == 0  # 29 minutes: not yet
        clock.tick(dt.timedelta(minutes=2))
        assert notify_unreplied() == 1  # the first conversation is due; its second mail is not yet
        clock.tick(dt.timedelta(minutes=10))
        assert notify_unreplied() == 1  # "Factura"; the second mail of the first is covered by its alert
        clock.tick(dt.timedelta(minutes=60))
        assert notify_unreplied() == 0  # once

        alerts = _alerts(shop)
        assert sorted(a["Subject"] for a in alerts) == [
            "No reply yet to the email from ana@customer.test received at sender@example.test: Pedido roto",
            "No reply yet to the email from luis@customer.test received at sender@example.test: Factura"]
        ana_alert = next(a for a in alerts if "Pedido roto" in a["Subject"])
        assert f"/inbox/{first.pk}/" in ana_alert.get_body(preferencelist=("plain",)).get_content()
        boss = User.objects.get(username="jefa")  # her address is written differently: still hers
        assert Notification.objects.filter(user=boss, kind="unreplied").count() == 2

        # A person answers; the customer writes again and waits: a new alert for the new wait.
        _api_token().post("/api/v1/messages/send/", {"to": ["ana@customer.test"], "subject": "Re: Pedido roto",
                                                     "text": "Ya va.", "in_reply_to": str(first.pk)},
                          content_type="application/json")
        clock.tick(dt.timedelta(minutes=1))
        _receive(shop, subject="Re: Pedido roto", headers={"In-Reply-To": "<p1@customer.test>"})
        clock.tick(dt.timedelta(minutes=31))
        out = io.StringIO()
        call_command("notify_unreplied", stdout=out)
        assert out.getvalue().strip() == "1 conversation(s) notified"


def test_a_persons_reply_in_time_means_no_alert(shop):
    with freeze_time(timezone.now()) as clock:
        first = _receive(shop, subject="Pedido roto")
        clock.tick(dt.timedelta(minutes=10))
        page = _signed_in().post("/compose/", {"to": "ana@customer.test", "subject": "Re: Pedido roto",
                                               "text": "Ya salió.", "in_reply_to": str(first.pk),
                                               "account": str(shop["account"].pk)})
        assert page.status_code == 302, page.content.decode()[:2000]
        clock.tick(dt.timedelta(minutes=40))
        assert notify_unreplied() == 0
        assert not Notification.objects.filter(kind="unreplied").exists()


def test_a_reply_on_a_ticket_someone_cannot_see_is_refused_and_changes_nothing(shop):
    first = _receive(shop, subject="Pedido roto")
    ticket = first.record
    other_store = Store.objects.create(name="Otra tienda")
    intruder = User.objects.create_user("pablo", email="pablo@otra.test", password=PASSWORD)
    Agent.objects.create(user=intruder, status=Agent.Status.FREE).stores.add(other_store)
    User.objects.create_user("nadie", email="nadie@shop.test", password=PASSWORD)  # in no store
    for name in ("pablo", "nadie"):
        api = _api_token(name)
        for forged in ({"record": {"type": "ticket", "id": ticket.pk}}, {"in_reply_to": str(first.pk)},
                       {"in_reply_to": first.message_id}):
            response = api.post("/api/v1/messages/send/", {"to": ["ana@customer.test"], "subject": "Re: x",
                                                           "text": "x", **forged}, content_type="application/json")
            assert response.status_code in (400, 403, 404), (name, forged, response.content)
        page = _signed_in(name).post("/compose/", {"to": "ana@customer.test", "subject": "Re: x", "text": "x",
                                                   "record_type": "ticket", "record_id": str(ticket.pk)})
        assert page.status_code != 302, (name, page.status_code)
    assert _status(ticket) == Ticket.Status.OPEN
    assert not Message.objects.filter(direction=Direction.OUTGOING, created_by__isnull=False).exists()


def test_the_unreplied_alert_is_written_in_each_recipients_language(shop):
    boss = User.objects.get(username="jefa")
    UserPreferences.objects.create(user=boss, language="es")
    with freeze_time(timezone.now()) as clock:
        first = _receive(shop, subject="Pedido roto")
        clock.tick(dt.timedelta(minutes=31))
        assert notify_unreplied() == 1
        sent = _delivered_to(shop)  # the alerts are due at the clock's time
    subject = "received at sender@example.test: Pedido roto"
    assert sent["jefa@shop.test"]["Subject"] == (
        "Todavía sin respuesta al correo de ana@customer.test recibido en sender@example.test: Pedido roto")
    assert sent["otro@shop.test"]["Subject"].endswith(subject)  # not a user: the site's language
    assert f"/inbox/{first.pk}/" in sent["jefa@shop.test"].get_body(preferencelist=("plain",)).get_content()
    browser = _signed_in("jefa")
    page = browser.get("/notifications/").content.decode()
    assert "Todavía sin respuesta al correo de ana@customer.test" in page and f'href="/inbox/{first.pk}/"' in page


def _delivered_to(shop: dict[str, Any]) -> dict[str, Any]:
    _alerts(shop)
    found = {}
    for received in shop["sink"].messages:
        for address in received.rcpt_tos:
            found[address] = message_from_bytes(received.data, policy=default)
    return found
