"""Every option of seed 000 §3.4, checked in the bytes that reach a real SMTP server."""

from __future__ import annotations

import re
from email import message_from_bytes
from email.message import Message as EmailMessage
from email.policy import default
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from buzon.crm.models import Agent, Store, Ticket
from buzon.mailboxes.models import EmailAccount
from buzon.messages import targets
from buzon.messages.models import Direction, MessageStatus
from buzon.messages.models import Message as StoredMessage
from buzon.messages.outbox import SendRefused, choose_account, queue_outgoing
from buzon.outbound.sender import deliver_due

pytestmark = pytest.mark.django_db


def sent(server: Any, n: int = 0) -> EmailMessage:
    return message_from_bytes(server.messages[n].data, policy=default)


def body(mail: EmailMessage, subtype: str = "plain") -> str:
    part = mail.get_body(preferencelist=(subtype,))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


@pytest.fixture
def user(db: Any) -> Any:
    return get_user_model().objects.create_user("ana", "ana.perez@example.org", "pw", first_name="Ana",
                                                last_name="Pérez")


def test_signature_is_appended(smtp_starttls: Any, make_account: Any, pool: Any) -> None:
    account = make_account(smtp_starttls, add_signature=True, signature="Soporte — Tienda")
    queue_outgoing(to="c@example.org", subject="s", text="Hola", html="<p>Hola</p>", account=account)
    deliver_due(pool=pool)
    mail = sent(smtp_starttls)
    assert body(mail).rstrip().endswith("-- \nSoporte — Tienda")
    assert "Soporte — Tienda" in body(mail, "html")


# The From / Reply-To of mail agents send, in both sender modes: test_replies_come_home.py.


def test_replies_come_home_when_the_account_does_not_receive(smtp_starttls: Any, make_account: Any,
                                                            pool: Any) -> None:
    make_account(smtp_starttls, default_outgoing=True)
    EmailAccount.objects.create(email_address="buzon@example.test", incoming_enabled=True, default_incoming=True)
    queue_outgoing(to="c@example.org", subject="s", text="x")
    deliver_due(pool=pool)
    assert sent(smtp_starttls)["Reply-To"].addresses[0].addr_spec == "buzon@example.test"


def test_unsubscribe_link_and_rfc8058_headers(smtp_starttls: Any, make_account: Any, pool: Any) -> None:
    make_account(smtp_starttls, unsubscribe_link=True, default_outgoing=True)
    queue_outgoing(to="c@example.org", subject="news", text="Novedades", kind="bulk")
    deliver_due(pool=pool)
    mail = sent(smtp_starttls)
    link = re.fullmatch(r"<(.+)>", mail["List-Unsubscribe"])
    assert link is not None and "/unsubscribe/" in link.group(1)
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link.group(1) in body(mail)
    assert mail["Precedence"] == "bulk"


def test_open_tracking_pixel_even_for_text_mail(smtp_starttls: Any, make_account: Any, pool: Any) -> None:
    account = make_account(smtp_starttls, track_opens=True)
    queue_outgoing(to="c@example.org", subject="s", text="solo texto", account=account)
    deliver_due(pool=pool)
    html = body(sent(smtp_starttls), "html")
    assert re.search(r'<img src="http[^"]+/o/[^"]+\.gif" width="1" height="1"', html)
    assert "solo texto" in html


def test_auto_reply_header_and_threading(smtp_starttls: Any, make_account: Any, pool: Any) -> None:
    account = make_account(smtp_starttls, incoming_enabled=True)
    ticket = Ticket.objects.create(subject="Pedido roto")
    parent = StoredMessage.objects.create(
        direction=Direction.INCOMING, account=account, status=MessageStatus.PROCESSED,
        message_id="<orig@example.org>", references="<root@example.org>", subject="Pedido roto",
        from_address="c@example.org", record=ticket)
    reply = queue_outgoing(to="c@example.org", subject="Re: Pedido roto", text="Recibido", kind="auto_reply",
                           account=account, in_reply_to=parent)
    deliver_due(pool=pool)
    mail = sent(smtp_starttls)
    assert mail["Auto-Submitted"] == "auto-replied"
    assert mail["In-Reply-To"] == "<orig@example.org>"
    assert mail["References"] == "<root@example.org> <orig@example.org>"
    assert mail["X-Buzon-Ref"] == f"m={reply.pk}-{targets.ref_tag(reply.pk)}; {targets.record_token(ticket)}"
    assert targets.record_token(ticket) in mail["Subject"]
    assert reply.record == ticket


def test_attachments_travel(smtp_starttls: Any, make_account: Any, pool: Any) -> None:
    from buzon.messages.outbox import Attachment

    account = make_account(smtp_starttls)
    queue_outgoing(to="c@example.org", subject="s", text="x", account=account,
                   attachments=[Attachment("factura.pdf", b"%PDF-1.4 test", "application/pdf")])
    deliver_due(pool=pool)
    parts = list(sent(smtp_starttls).iter_attachments())
    assert [(p.get_filename(), p.get_content()) for p in parts] == [("factura.pdf", b"%PDF-1.4 test")]


@pytest.mark.parametrize(("text", "html", "encoding"), [
    ("Short ASCII lines.\nSecond line.", "", "7bit"),
    ("Pedido enviado: ñandú, café, 10 €\n" + "línea larga " * 20 + "\n.una línea que empieza con punto\n"
     "trailing spaces   \n=3D stays literal", "", "quoted-printable"),
    ("x" * 200, "<p>Hola <b>ñ</b></p>" + "<br>" * 60, "quoted-printable"),
])
def test_bodies_arrive_exactly_as_written(smtp_starttls: Any, make_account: Any, pool: Any, text: str, html: str,
                                          encoding: str) -> None:
    account = make_account(smtp_starttls)
    queue_outgoing(to="c@example.org", subject="s", text=text, html=html, account=account)
    deliver_due(pool=pool)
    raw = smtp_starttls.messages[0].data
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78  # DKIM- and relay-safe line lengths
    mail = sent(smtp_starttls)
    plain = mail.get_body(preferencelist=("plain",))
    assert plain is not None and plain["Content-Transfer-Encoding"] == encoding
    assert plain.get_content_charset() == "utf-8"
    assert body(mail).rstrip("\n") == text
    if html:
        assert mail.get_content_type() == "multipart/alternative"
        assert body(mail, "html").rstrip("\n") == html
    else:
        assert mail.get_content_type() == "text/plain" and mail["MIME-Version"] == "1.0"


def test_bcc_is_delivered_but_not_shown(smtp_starttls: Any, make_account: Any, pool: Any) -> None:
    account = make_account(smtp_starttls)
    queue_outgoing(to="a@example.org", cc="b@example.org", bcc="hidden@example.org", subject="s", text="x",
                   account=account)
    deliver_due(pool=pool)
    assert sorted(smtp_starttls.messages[0].rcpt_tos) == ["a@example.org", "b@example.org", "hidden@example.org"]
    assert b"hidden@example.org" not in smtp_starttls.messages[0].data


class TestAccountChoice:
    @pytest.fixture
    def store(self, user: Any) -> Store:
        """The user is an agent of this store: its accounts are theirs to send through (roles)."""
        store = Store.objects.create(name="Tienda")
        Agent.objects.create(user=user).stores.add(store)
        return store

    def test_given_account_wins(self, make_account: Any, user: Any, store: Store) -> None:
        default = make_account(address="default@example.test", default_outgoing=True)
        mine = make_account(address="mine@example.test", owner=user)
        given = make_account(address="given@example.test", store=store)
        assert choose_account(account=given, kind="normal", user=user) == given
        assert choose_account(account=None, kind="normal", user=user) == mine
        assert choose_account(account=None, kind="normal") == default

    def test_conversation_account_before_user_account(self, make_account: Any, user: Any, store: Store) -> None:
        make_account(address="mine@example.test", owner=user)
        conv = make_account(address="conv@example.test", store=store)
        ticket = Ticket.objects.create(subject="t")
        StoredMessage.objects.create(direction=Direction.INCOMING, account=conv, status=MessageStatus.PROCESSED,
                                     record=ticket)
        assert choose_account(account=None, kind="normal", record=ticket, user=user) == conv

    def test_a_person_sends_only_through_accounts_they_may_use(self, make_account: Any, user: Any,
                                                               store: Store) -> None:
        """Another store's account: refused when named, passed over when the conversation ran through it."""
        elsewhere = make_account(address="other@example.test", store=Store.objects.create(name="Otra"))
        with pytest.raises(SendRefused, match="no email account with this id that you can send from"):
            choose_account(account=elsewhere, kind="normal", user=user)
        ticket = Ticket.objects.create(subject="t")
        StoredMessage.objects.create(direction=Direction.INCOMING, account=elsewhere,
                                     status=MessageStatus.PROCESSED, record=ticket)
        mine = make_account(address="mine@example.test", owner=user)
        assert choose_account(account=None, kind="normal", record=ticket, user=user) == mine
        assert choose_account(account=None, kind="normal", record=ticket) == elsewhere  # Buzón's own mail

    def test_notifications_and_bulk_always_use_default(self, make_account: Any, user: Any) -> None:
        default = make_account(address="default@example.test", default_outgoing=True)
        given = make_account(address="given@example.test")
        assert choose_account(account=given, kind="notification") == default
        assert choose_account(account=given, kind="bulk", user=user) == default

    def test_no_account_at_all_is_refused_in_plain_words(self, db: Any) -> None:
        with pytest.raises(SendRefused, match="no outgoing email account"):
            choose_account(account=None, kind="normal")

    def test_account_that_does_not_send_is_refused(self, make_account: Any) -> None:
        silent = make_account(address="in@example.test", outgoing_enabled=False)
        with pytest.raises(SendRefused, match="does not send"):
            choose_account(account=silent, kind="normal")


def _compose_claim(n: int, account: EmailAccount, authors: list[Any], tickets: list[Ticket]) -> tuple[int, list[Any]]:
    """Queue n replies on tickets by turns of authors, claim them, compose each: (queries, composed)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from buzon.outbound import compose, queue, sender
    from buzon.outbound.signing import Signer

    for i in range(n):
        queue_outgoing(to=[f"cliente{i}@example.org"], subject=f"Pedido {i}", text="Enviado hoy.", account=account,
                       record=tickets[i % len(tickets)], user=authors[i % len(authors)])
    ids = queue.claim_due("w", n)
    with CaptureQueriesContext(connection) as queries:
        signer, home = Signer(), compose._home_address()
        composed = [(o, sender._prepare(o, signer, home)) for o in sender._claimed(ids)]
    return len(queries), composed


def test_a_claim_is_composed_in_the_same_queries_for_few_messages_as_for_many(make_account: Any) -> None:
    """The delivery loop reads a claim's accounts, authors and records together, not once per message."""
    account = make_account(replies_to_agent=True)
    authors = [get_user_model().objects.create_superuser(name, f"{name}@tienda.example", "x-pass-1")
               for name in ("marta", "luis")]
    tickets = [Ticket.objects.create(subject=f"Pedido {i}") for i in range(3)]
    few, _composed = _compose_claim(3, account, authors, tickets)
    many, composed = _compose_claim(24, account, authors, tickets)
    assert many == few
    for i, (outgoing, item) in enumerate(composed):
        mail = message_from_bytes(item.data, policy=default)
        assert mail["To"] == f"cliente{i}@example.org"
        assert targets.record_token(tickets[i % 3]) in mail["X-Buzon-Ref"]
        assert mail["Reply-To"].addresses[0].addr_spec == f"{authors[i % 2].username}@tienda.example"
        assert outgoing.message.account.email_address == account.email_address
