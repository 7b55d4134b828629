"""classify: bounces mark the failed recipient undeliverable and our sent message bounced;
auto-replies and list mail are recognised and create no customer or record."""

from __future__ import annotations

import pytest

from buzon.crm.models import Contact, Customer, CustomerEmail, Ticket
from buzon.inbound import pipeline
from buzon.messages import targets
from buzon.messages.models import Classification, Direction, Message, MessageStatus, UndeliverableAddress
from tests.inbound.helpers import mail, store_raw, support_account

pytestmark = pytest.mark.django_db


def _dsn(original_headers: str, recipient: str = "gone@customer.test", action: str = "failed",
         status: str = "5.1.1") -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.customer.test>\r\nTo: support@shop.test\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nDate: Tue, 3 Nov 2026 10:00:00 +0000\r\n"
        "Message-ID: <dsn-1@mx.customer.test>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.test\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
        f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\n{original_headers}\r\n--b--\r\n"
    ).encode()


def test_dsn_marks_recipient_undeliverable_and_our_message_bounced():
    account = support_account()
    customer = Customer.objects.create()
    CustomerEmail.objects.create(customer=customer, address="gone@customer.test")
    Contact.objects.create(email="Gone@customer.test")
    ticket = Ticket.objects.create(subject="x")
    sent = Message.objects.create(direction=Direction.OUTGOING, status=MessageStatus.SENT, account=account,
                                  message_id="<ours-1@shop.test>", record=ticket)
    headers = f"From: support@shop.test\r\nTo: gone@customer.test\r\nMessage-ID: <rewritten@provider.test>\r\n" \
              f"X-Buzon-Ref: {targets.ref_header(sent.pk, ticket)}"
    assert pipeline.run_pipeline(store_raw(_dsn(headers), account).pk) == "processed"
    bounce = Message.objects.get(direction=Direction.INCOMING)
    assert bounce.classification == Classification.BOUNCE
    assert bounce.record == ticket  # filed with the conversation it is about
    sent.refresh_from_db()
    assert sent.status == MessageStatus.BOUNCED and "user unknown" in sent.status_reason
    assert UndeliverableAddress.objects.get().address == "gone@customer.test"
    assert CustomerEmail.objects.get().undeliverable and Contact.objects.get().undeliverable
    assert Ticket.objects.count() == 1 and Customer.objects.count() == 1  # no customer for MAILER-DAEMON


def test_bounce_found_by_original_message_id_and_delay_is_not_permanent():
    account = support_account()
    sent = Message.objects.create(direction=Direction.OUTGOING, status=MessageStatus.SENT, account=account,
                                  message_id="<ours-2@shop.test>")
    raw = _dsn("Message-ID: <ours-2@shop.test>", action="delayed", status="4.4.1")
    pipeline.run_pipeline(store_raw(raw, account).pk)
    sent.refresh_from_db()
    assert sent.status == MessageStatus.SENT
    assert not UndeliverableAddress.objects.exists()


def test_non_standard_qmail_bounce():
    raw = (b"From: MAILER-DAEMON@mail.customer.test\r\nTo: support@shop.test\r\nSubject: failure notice\r\n"
           b"Date: Tue, 3 Nov 2026 10:00:00 +0000\r\n\r\nHi. This is the qmail-send program.\r\n"
           b"<nobody@customer.test>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n")
    pipeline.run_pipeline(store_raw(raw, support_account()).pk)
    assert Message.objects.get().classification == Classification.BOUNCE
    assert UndeliverableAddress.objects.get().address == "nobody@customer.test"


def test_bounce_from_unknown_sender_is_skipped_when_only_customers_are_imported():
    account = support_account(create_customer_if_not_found=False)
    assert pipeline.run_pipeline(store_raw(_dsn("Message-ID: <not-ours@x>"), account).pk) == "skipped"


@pytest.mark.parametrize("headers,expected", [
    ({"Auto-Submitted": "auto-replied"}, Classification.AUTO_REPLY),
    ({"X-Autoreply": "yes"}, Classification.AUTO_REPLY),
    ({"List-Id": "Noticias <news.customer.test>"}, Classification.LIST),
    ({"Precedence": "bulk"}, Classification.LIST),
    ({"Auto-Submitted": "no"}, Classification.NORMAL),
])
def test_automatic_mail_is_classified_and_creates_no_customer(headers, expected):
    pipeline.run_pipeline(store_raw(mail(headers=headers), support_account()).pk)
    assert Message.objects.get().classification == expected
    assert Customer.objects.exists() == (expected == Classification.NORMAL)


def test_out_of_office_subject_without_headers():
    pipeline.run_pipeline(store_raw(mail(subject="Respuesta automática: Pedido"), support_account()).pk)
    assert Message.objects.get().classification == Classification.AUTO_REPLY
