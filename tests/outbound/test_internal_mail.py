"""Mail to staff is not customer mail: agent notifications and unreplied alerts leave through the
default outgoing account without signature, unsubscribe link or tracking pixel, and stay out of its
Sent folder, where a customer reply lands (real pipeline, queue, aiosmtpd and Dovecot)."""

from __future__ import annotations

import datetime as dt
import re
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest
from django.utils import timezone

from buzon.crm.models import Agent
from buzon.inbound import pipeline
from buzon.inbound.unreplied import notify_unreplied
from buzon.messages.models import Message
from buzon.messages.outbox import queue_outgoing
from buzon.outbound import confirm
from buzon.outbound.models import OutgoingEmail
from buzon.outbound.sender import deliver_due
from tests.inbound.helpers import free_agent_in_group, mail, store_raw

pytestmark = pytest.mark.django_db

SIGNATURE = "Equipo de Soporte — Tienda"


def received(server: Any, to: str) -> list[EmailMessage]:
    return [message_from_bytes(m.data, policy=default) for m in server.messages if to in m.rcpt_tos]


def text_of(mail: EmailMessage) -> str:
    return "\n".join(str(part.get_content()) for part in mail.walk() if part.get_content_maintype() == "text")


def assert_internal(mail: EmailMessage, account: Any) -> None:
    body = text_of(mail)
    assert SIGNATURE not in body and "/unsubscribe/" not in body and "<img" not in body, body
    assert mail["List-Unsubscribe"] is None and mail["List-Unsubscribe-Post"] is None
    assert mail["Reply-To"] is None
    assert mail["From"].addresses[0].addr_spec == account.email_address
    assert mail["Auto-Submitted"] == "auto-generated"


def test_notifications_carry_nothing_for_customers_and_stay_out_of_the_sent_folder(
        smtp_starttls: Any, dovecot: Any, make_account: Any, pool: Any, settings: Any,
        django_capture_on_commit_callbacks: Any) -> None:
    user, agent, group = free_agent_in_group()
    address = dovecot.add_user(password="smtp-secret")
    smtp_starttls.users[address] = "smtp-secret"
    # The set-up the defect came from: the shared support mailbox is also the default outgoing account.
    account = make_account(
        smtp_starttls, address=address, default_outgoing=True, incoming_enabled=True, incoming_protocol="imap",
        incoming_host="localhost", incoming_port=dovecot.imap_port, incoming_security="starttls",
        append_to_sent=True, add_signature=True, signature=SIGNATURE, unsubscribe_link=True, track_opens=True,
        notify_agent=True, agent_group=group, append_to="ticket", auto_link=True,
        notify_unreplied_after_minutes=5, notify_unreplied_to="jefa@shop.test")
    assert agent.status == Agent.Status.FREE

    pipeline.run_pipeline(store_raw(mail(to=address, subject="Pedido roto"), account).pk)
    pipeline.run_pipeline(store_raw(mail(sender="Luis <luis@customer.test>", to=address, subject="Factura"),
                                    account).pk)
    first = Message.objects.get(subject="Pedido roto")
    reply = queue_outgoing(to="ana@customer.test", subject="Re: Pedido roto", text="Se lo cambiamos.",
                           in_reply_to=first, user=user)
    assert notify_unreplied(now=timezone.now() + dt.timedelta(minutes=10)) == 1  # "Factura" has no answer

    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend",
                                    "QUEUES": settings.TASK_QUEUES}}
    with django_capture_on_commit_callbacks(execute=True):
        stats = deliver_due(pool=pool)
    assert stats.failed == 0

    to_agent = received(smtp_starttls, user.email)
    assert len(to_agent) >= 2  # "customer assigned to you" and "new email" (twice)
    for notification in [*to_agent, *received(smtp_starttls, "jefa@shop.test")]:
        assert_internal(notification, account)
    assert received(smtp_starttls, "jefa@shop.test"), "the unreplied alert was sent"

    # The customer reply is customer mail: signature, unsubscribe link, pixel — and filed in Sent.
    (to_customer,) = received(smtp_starttls, "ana@customer.test")
    assert SIGNATURE in text_of(to_customer) and to_customer["List-Unsubscribe"] is not None
    assert re.search(r'<img src="[^"]+/o/', text_of(to_customer))
    assert dovecot.message_count(address, "Sent") == 1
    filed = message_from_bytes(next((dovecot.maildir(address, "Sent") / "cur").iterdir()).read_bytes(), policy=default)
    assert filed["Message-ID"] == reply.message_id
    internal = OutgoingEmail.objects.filter(kind="notification")
    assert internal.count() == len(to_agent) + 1 and not internal.filter(appended_to_sent=True).exists()


def test_sender_confirmation_goes_through_the_notifications_account(smtp_starttls: Any, smtp_plain: Any,
                                                                   make_account: Any) -> None:
    notifications = make_account(smtp_plain, address="avisos@example.test", smtp_security="none",
                                 default_outgoing=True, display_name="Avisos")
    smtp_plain.users["avisos@example.test"] = "smtp-secret"
    new = make_account(smtp_starttls, address="ventas@example.test", confirmed=False)
    confirm.start(new)
    assert smtp_starttls.messages == []  # not through the account being confirmed
    (sent,) = smtp_plain.messages
    assert sent.rcpt_tos == ["ventas@example.test"] and sent.mail_from == notifications.email_address
    parsed = message_from_bytes(sent.data, policy=default)
    assert parsed["From"].addresses[0].addr_spec == "avisos@example.test"
    assert parsed["From"].addresses[0].display_name == "Avisos"
    code = re.search(r"\b(\d{6})\b", text_of(parsed))
    assert code is not None and confirm.confirm_code(new, code.group(1))
