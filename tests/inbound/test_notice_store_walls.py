"""Stores are walls for the notices about a store's mail too.

Two stores; the site's default outgoing account is store A's. A customer mails store B: store B's
agent is told twice by mail ("Customer … has been assigned to you", "New email from …" with the
customer's words). Those notices carry store B's mail, so they leave through store B's own outgoing
account (its SMTP login at the sink) and their rows are store B's; when store B has no outgoing
account they leave through the default (store A's login) and are still store B's rows, as is the
auto-reply store B's receive-only mailbox sends through it. Store A's agent sees none of it: not in
the API's message and conversation lists and details, nor /sent/<id>/, /inbox/<id>/ or the inbox
(404 like a missing id).
"""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from buzon.crm.models import Agent, AgentGroup, Store
from buzon.inbound import pipeline
from buzon.mailboxes.models import EmailAccount
from buzon.messages.models import Direction, Message
from buzon.outbound import confirm
from buzon.outbound.sender import deliver_due
from buzon.outbound.smtp import SMTPPool
from tests.inbound.helpers import mail, store_raw, support_account
from tests.support.smtpd import SMTPServer

pytestmark = pytest.mark.django_db
SECRETS = {"hola@tiendaa.test": "secret-a", "hola@tiendab.test": "secret-b"}
MISSING = 2**31 - 7


@pytest.fixture
def sink(test_certs: Any) -> Iterator[SMTPServer]:
    server = SMTPServer(test_certs, mode="starttls", users=dict(SECRETS)).start()
    yield server
    server.stop()


def _store(key: str, sink: SMTPServer, *, outgoing: bool, default_outgoing: bool = False,
           auto_reply: str = "") -> tuple[Store, User, EmailAccount]:
    store = Store.objects.create(name=f"Tienda {key.upper()}")
    group = AgentGroup.objects.create(name=f"Grupo {key.upper()}", store=store)
    user = User.objects.create_user(f"agente_{key}", email=f"agente_{key}@staff{key}.test")
    agent = Agent.objects.create(user=user, status=Agent.Status.FREE)
    agent.stores.add(store)
    agent.groups.add(group)
    address = f"hola@tienda{key}.test"
    account = support_account(
        email_address=address, store=store, agent_group=group, notify_agent=True, outgoing_enabled=outgoing,
        default_outgoing=default_outgoing, smtp_host="localhost", smtp_port=sink.port, smtp_security="starttls",
        smtp_auth=True, auto_reply_enabled=bool(auto_reply), auto_reply_message=auto_reply)
    account.set_password(SECRETS[address])
    account.save()
    confirm.mark_confirmed(account)
    return store, user, account


def _deliver() -> None:
    pool = SMTPPool(per_account=2, timeout=10)
    try:
        deliver_due(pool=pool)
    finally:
        pool.shutdown()


def _api(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _web(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _ids(page: dict[str, Any]) -> set[int]:
    return {row["id"] for row in page["results"]}


def _sees_nothing_of(user: User, rows: list[Message], secret: str) -> None:
    api, web = _api(user), _web(user)
    missing = api.get(f"/api/v1/messages/{MISSING}/")
    assert missing.status_code == 404
    assert not _ids(api.get("/api/v1/messages/?page_size=100").json()) & {m.pk for m in rows}
    conversations = api.get("/api/v1/conversations/")
    assert conversations.status_code == 200 and secret not in conversations.content.decode()
    for row in rows:
        seen = api.get(f"/api/v1/messages/{row.pk}/")
        assert (seen.status_code, seen.json()) == (404, missing.json())
        for path in (f"/sent/{row.pk}/", f"/inbox/{row.pk}/"):
            assert web.get(path).status_code == 404, path
        assert row.conversation_id is not None
        assert api.get(f"/api/v1/conversations/{row.conversation_id}/").status_code == 404
    for path in ("/inbox/", "/conversations/"):
        page = web.get(path)
        assert page.status_code == 200 and secret not in page.content.decode(), path


@pytest.mark.parametrize("b_sends", [True, False], ids=["store-b-has-outgoing", "store-b-only-receives"])
def test_notices_about_store_b_mail_are_store_bs_and_leave_through_its_account(sink, b_sends):
    store_a, agent_a, account_a = _store("a", sink, outgoing=True, default_outgoing=True)
    store_b, agent_b, account_b = _store("b", sink, outgoing=b_sends, auto_reply="Gracias, Tienda B responde pronto.")
    raw = mail(sender="Cliente B <custb@cliente.test>", to=account_b.email_address, subject="Factura secreta 77",
               body="Mi IBAN es ES00 1234 secreto.")
    pipeline.run_pipeline(store_raw(raw, account_b).pk)
    _deliver()

    sent_from = account_b.email_address if b_sends else account_a.email_address
    to_agent = [m for m in sink.messages if agent_b.email in m.rcpt_tos]
    assert {m.login for m in to_agent} == {sent_from}  # store B's login when it has one
    notices = {str(message_from_bytes(m.data, policy=default)["Subject"]):
               message_from_bytes(m.data, policy=default) for m in to_agent}
    assert set(notices) == {"Customer Cliente B has been assigned to you.",
                            "New email from Cliente B: Factura secreta 77"}
    for notice in notices.values():
        assert isinstance(notice, EmailMessage)
        assert notice["From"].addresses[0].addr_spec == sent_from
    body = notices["New email from Cliente B: Factura secreta 77"].get_body(preferencelist=("plain",))
    assert body is not None and "Mi IBAN es ES00 1234 secreto." in body.get_content()
    assert not [m for m in sink.messages if agent_a.email in m.rcpt_tos]

    outgoing = list(Message.objects.filter(direction=Direction.OUTGOING))
    assert len(outgoing) == 3  # the two notices and the auto-reply to the customer
    assert {m.store_id for m in outgoing} == {store_b.pk}  # whoever's account carried them
    assert {m.account_id for m in outgoing} == {account_b.pk if b_sends else account_a.pk}
    received = Message.objects.get(direction=Direction.INCOMING)

    _sees_nothing_of(agent_a, [*outgoing, received], "Factura secreta 77")
    # Store B's agent sees their store's mail, the notices included.
    mine = _ids(_api(agent_b).get("/api/v1/messages/?page_size=100").json())
    assert {m.pk for m in outgoing} | {received.pk} <= mine


def test_a_notice_about_store_less_content_stays_store_less(sink):
    """An invitation carries no store's content: it is store-less (administrators only), even when
    the default outgoing account that carries it is store A's."""
    from buzon.messages.outbox import queue_outgoing

    _store_a, agent_a, account_a = _store("a", sink, outgoing=True, default_outgoing=True)
    notice = queue_outgoing(to=["nuevo@staff.test"], subject="Invitación privada", text="Enlace secreto",
                            kind="notification")
    notice.refresh_from_db()
    assert (notice.store_id, notice.account_id) == (None, account_a.pk)
    _sees_nothing_of(agent_a, [notice], "Invitación privada")
    admin = User.objects.create_superuser("jefa", "jefa@staff.test", "pw-jefa-123")
    assert _api(admin).get(f"/api/v1/messages/{notice.pk}/").status_code == 200


@pytest.mark.parametrize("b_sends", [True, False], ids=["store-b-has-outgoing", "store-b-only-receives"])
def test_the_unreplied_alert_about_store_b_mail_is_store_bs(sink, b_sends):
    import datetime as dt

    from django.utils import timezone

    from buzon.inbound.unreplied import notify_unreplied

    _store_a, agent_a, account_a = _store("a", sink, outgoing=True, default_outgoing=True)
    store_b, _agent_b, account_b = _store("b", sink, outgoing=b_sends)
    account_b.notify_unreplied_after_minutes, account_b.notify_unreplied_to = 5, "jefa-b@staffb.test"
    account_b.save()
    raw = mail(sender="custb@cliente.test", to=account_b.email_address, subject="Reclamación secreta 12")
    pipeline.run_pipeline(store_raw(raw, account_b).pk)
    assert notify_unreplied(now=timezone.now() + dt.timedelta(minutes=10)) == 1
    _deliver()

    sent_from = account_b.email_address if b_sends else account_a.email_address
    alerts = [m for m in sink.messages if "jefa-b@staffb.test" in m.rcpt_tos]
    assert [m.login for m in alerts] == [sent_from]
    alert = message_from_bytes(alerts[0].data, policy=default)
    assert str(alert["Subject"]) == ("No reply yet to the email from custb@cliente.test received at "
                                     "hola@tiendab.test: Reclamación secreta 12")
    row = Message.objects.get(direction=Direction.OUTGOING, to=["jefa-b@staffb.test"])
    assert row.store_id == store_b.pk
    _sees_nothing_of(agent_a, list(Message.objects.all()), "Reclamación secreta 12")
